"""Uses objects a Rust client made, by id: usage: share.py QUEUE DICT LOCK HOST PORT KEYHEX.

Puts (7, 'from python') on the queue, reads the dict's 'from rust' and writes it back under
'echo', writes 'from python': [3, 4], then waits for the lock (held by Rust) and prints
`got the lock`, then `OK`.
"""

import multiprocessing
import multiprocessing.managers as mm
import sys

q_id, d_id, lock_id, host, port, key = sys.argv[1:7]
port, key = int(port), bytes.fromhex(key)
multiprocessing.current_process().authkey = key
m = mm.SyncManager(address=(host, port), authkey=key)
m.connect()


def proxy(cls, typeid, ident, **kwds):
    return cls(mm.Token(typeid, (host, port), ident), "pickle", manager=m, authkey=key, **kwds)


q = proxy(mm.AutoProxy, "Queue", q_id, exposed=("put", "get"))
d = proxy(mm.DictProxy, "dict", d_id)
lock = proxy(mm.AcquirerProxy, "Lock", lock_id)
q.put((7, "from python"))
d["echo"] = d["from rust"]
d["from python"] = [3, 4]
assert lock.acquire(timeout=30), "the lock never came"
print("got the lock", flush=True)
lock.release()
print("OK", flush=True)
