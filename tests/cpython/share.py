"""Uses objects a Rust client made, by id: usage: share.py QUEUE DICT LOCK HOST PORT KEYHEX.

Puts (7, 'from python') on the queue, reads the dict's 'from rust' and writes it back under
'echo', writes 'from python': [3, 4], then waits for the lock (held by Rust) and prints
`got the lock`, then `OK`.
"""

import multiprocessing.managers as mm

import by_id

(q_id, d_id, lock_id), proxy = by_id.connect(3)

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
