"""How long a fresh CPython client takes to connect and make its first call against the node
(the median of 15 tries): `connect.py HOST PORT AUTHKEY_HEX` prints `MEDIAN_MS <ms>`.

Each try opens the connections CPython opens: `connect()` (a handshake and `dummy`), `dict()`
(`create`, then `incref` and `decref` for the proxy), and the first method call
(`accept_connection` on the thread's connection).
"""

import statistics
import sys
import time
from multiprocessing.managers import SyncManager

host, port, key = sys.argv[1], int(sys.argv[2]), bytes.fromhex(sys.argv[3])
times = []
for _ in range(15):
    start = time.perf_counter()
    m = SyncManager(address=(host, port), authkey=key)
    m.connect()
    d = m.dict()
    d["k"] = 1
    times.append(time.perf_counter() - start)
    del d, m
print("MEDIAN_MS %.2f" % (statistics.median(times) * 1e3), flush=True)
