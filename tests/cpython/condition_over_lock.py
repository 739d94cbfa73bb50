"""`manager.Condition(lock)`, unmodified CPython: usage: condition_over_lock.py HOST PORT KEYHEX.

For a `Lock` and an `RLock`, made with the lock positional and as `lock=`: a hold taken
through either proxy excludes the other; a thread waiting on the Condition releases the lock
for a thread that takes it through the lock's own proxy, is notified through the Condition,
and gets the lock back when it is released through the lock's proxy. The Condition works
on after the lock's proxy is gone. A Condition over something that is not a lock is
refused. Prints one line per step and `OK` at the end; any failed check raises.
"""

import multiprocessing
import multiprocessing.managers as mm
import sys
import threading

host, port, key = sys.argv[1:4]
port, key = int(port), bytes.fromhex(key)
multiprocessing.current_process().authkey = key
m = mm.SyncManager(address=(host, port), authkey=key)
m.connect()


def in_thread(fn):
    """`fn()` on another thread: another connection, so another owner for the node."""
    out = []
    t = threading.Thread(target=lambda: out.append(fn()))
    t.start()
    t.join(30)
    assert not t.is_alive(), "the other thread hung"
    return out[0]


def check(kind, make_lock, keyword):
    lk = make_lock()
    c = m.Condition(lock=lk) if keyword else m.Condition(lk)
    name = f"{kind}{' (lock=)' if keyword else ''}"

    # A hold through either proxy excludes every other thread, through either proxy.
    with c:
        assert not in_thread(lambda: lk.acquire(False)), "lock free while the Condition is held"
    assert lk.acquire(timeout=5)
    assert not in_thread(lambda: c.acquire(False)), "Condition free while the lock is held"
    # The holder itself: an RLock lets it in again, a Lock does not.
    assert c.acquire(False) == (kind == "RLock"), "re-entry"
    if kind == "RLock":
        c.release()
    lk.release()
    print(f"{name}: one hold", flush=True)

    # A waiter releases the lock; this thread takes it through the lock's proxy, which
    # can only happen once the wait has released it, then notifies through the Condition.
    holding = threading.Event()
    result = []

    def waiter():
        with c:
            holding.set()
            result.append(c.wait(30))
            # Back from wait: it holds the lock again.
            result.append(in_thread(lambda: lk.acquire(False)))

    t = threading.Thread(target=waiter)
    t.start()
    assert holding.wait(30)
    assert lk.acquire(timeout=30), "the wait did not release the lock"
    c.notify()
    lk.release()
    t.join(30)
    assert not t.is_alive(), "the waiter was never woken"
    assert result == [True, False], result
    print(f"{name}: wait and notify across the two proxies", flush=True)

    # Without the lock held, notify is refused as in Python.
    try:
        c.notify()
        raise AssertionError("notify without the lock")
    except RuntimeError as e:
        assert "un-acquired lock" in str(e), e

    # The lock's proxy goes (its object leaves the node): the Condition keeps the lock.
    before = m._number_of_objects()
    del lk
    assert m._number_of_objects() == before - 1, "the lock's object is still on the node"
    with c:
        assert c.wait(0) is False
        c.notify_all()
    print(f"{name}: outlives the lock's proxy", flush=True)


check("Lock", m.Lock, keyword=False)
check("RLock", m.RLock, keyword=True)

for not_a_lock in (m.Event(), 5):
    try:
        m.Condition(not_a_lock)
        raise AssertionError(f"Condition({not_a_lock!r}) was accepted")
    except Exception as e:
        assert "Lock or RLock" in str(e), repr(e)
        print(f"refused: {type(e).__name__}", flush=True)

print("OK", flush=True)
