"""CPython's own server for the same typeids, to run these examples against CPython too
(they do not change): `SYNCMAN_AUTHKEY=secret python3 serve_cpython.py`.

It serves what `syncman serve --typeid ...` serves in each example's docstring: one named
object per typeid, shared by every client.
"""

import queue
import threading
from multiprocessing.managers import BaseManager, SyncManager

from common import address, authkey, say

jobs = queue.Queue()
lock = threading.Lock()
board = {}
barriers = {}
counters = {}


class Counter:
    def __init__(self, value):
        self.value = value

    def get(self):
        return self.value

    def set(self, value):
        self.value = value


def get_barrier(parties):
    return barriers.setdefault("phases", threading.Barrier(parties))


def get_counter(typecode, value):
    return counters.setdefault("counter", Counter(value))


class ExampleServer(BaseManager):
    pass


ExampleServer.register("get_queue", callable=lambda: jobs)
ExampleServer.register("get_lock", callable=lambda: lock, proxytype=SyncManager._registry["Lock"][-1])
ExampleServer.register("get_board", callable=lambda: board, proxytype=SyncManager._registry["dict"][-1])
ExampleServer.register("get_barrier", callable=get_barrier, proxytype=SyncManager._registry["Barrier"][-1])
ExampleServer.register("get_counter", callable=get_counter, proxytype=SyncManager._registry["Value"][-1])

if __name__ == "__main__":
    server = ExampleServer(address=address(), authkey=authkey()).get_server()
    say("listening on %s:%d" % server.address)
    server.serve_forever()
