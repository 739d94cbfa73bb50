"""A shared counter incremented under a shared lock by separate processes.

    SYNCMAN_AUTHKEY=secret syncman serve --bind 127.0.0.1:50000 \\
        --typeid get_lock=Lock:counter-lock --typeid get_counter=Value:counter
    SYNCMAN_AUTHKEY=secret python3 lock_counter.py 100
    SYNCMAN_AUTHKEY=secret cargo run --example lock_counter -- counter-lock counter 100

`lock_counter.py ROUNDS`: ROUNDS times, takes the lock, reads the counter and stores one
more, releases the lock; then prints `done`. Rust's lock_counter takes the same lock and
Value by their names.
"""

import sys
from multiprocessing.managers import AcquirerProxy, BaseManager, ValueProxy

from common import address, authkey, say


class CounterManager(BaseManager):
    pass


# The proxy types SyncManager uses for Lock and Value, for `with lock:` and `.value`.
CounterManager.register("get_lock", proxytype=AcquirerProxy)
CounterManager.register("get_counter", proxytype=ValueProxy)


def main(argv):
    if len(argv) != 1:
        sys.exit(__doc__)
    m = CounterManager(address=address(), authkey=authkey())
    m.connect()
    lock = m.get_lock()
    counter = m.get_counter("Q", 0)  # typecode and value, used only if "counter" is new
    for _ in range(int(argv[0])):
        with lock:
            counter.value = counter.value + 1
    say("done")


if __name__ == "__main__":
    main(sys.argv[1:])
