"""Waits on a Condition a Rust client made over its Lock: usage: condition_share.py COND LOCK HOST PORT KEYHEX.

Takes the Condition, prints `waiting`, waits (30 s at most) and prints `notified`; then
checks that it holds the lock again, through the Lock's own proxy from another thread,
releases it and prints `OK`.
"""

import multiprocessing.managers as mm
import threading

import by_id

(cond_id, lock_id), proxy = by_id.connect(2)

c = proxy(mm.ConditionProxy, "Condition", cond_id)
lock = proxy(mm.AcquirerProxy, "Lock", lock_id)
with c:
    print("waiting", flush=True)
    assert c.wait(30), "never notified"
    print("notified", flush=True)
    other = []
    t = threading.Thread(target=lambda: other.append(lock.acquire(False)))
    t.start()
    t.join(30)
    assert other == [False], "the lock is free while the Condition is held"
print("OK", flush=True)
