"""Proxies of objects a Rust client made, by id, for the scripts that share objects with it.

`ids, proxy = by_id.connect(n)` reads `ID... HOST PORT KEYHEX` from the command line (`n`
ids), connects a `SyncManager` to the node, and returns the ids and
`proxy(cls, typeid, ident, **kwds)`, which builds a proxy of class `cls` for object `ident`.
"""

import multiprocessing
import multiprocessing.managers as mm
import sys


def connect(n):
    *ids, host, port, key = sys.argv[1 : n + 4]
    port, key = int(port), bytes.fromhex(key)
    # Proxies unpickled from replies authenticate with the process key (CPython's quirk).
    multiprocessing.current_process().authkey = key
    m = mm.SyncManager(address=(host, port), authkey=key)
    m.connect()

    def proxy(cls, typeid, ident, **kwds):
        token = mm.Token(typeid, (host, port), ident)
        return cls(token, "pickle", manager=m, authkey=key, **kwds)

    return ids, proxy
