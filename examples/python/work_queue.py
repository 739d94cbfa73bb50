"""A work queue shared by separate producer and consumer processes, written as CPython's
documentation writes a remote manager client (`QueueManager.register('get_queue')`).

    # a node serving get_queue as the Queue named "jobs" (Rust clients use that name)
    SYNCMAN_AUTHKEY=secret syncman serve --bind 127.0.0.1:50000 --typeid get_queue=Queue:jobs

    SYNCMAN_AUTHKEY=secret python3 work_queue.py produce 0 100
    SYNCMAN_AUTHKEY=secret python3 work_queue.py consume 2
    SYNCMAN_AUTHKEY=secret cargo run --example work_queue -- consume jobs 2000   # a Rust consumer

Roles:
- `produce FROM TO`: puts the integers FROM..TO-1, then prints `produced <count>`.
- `consume IDLE_SECONDS`: gets items until none comes within IDLE_SECONDS, printing
  `got <n>` for each.
"""

import queue
import sys
from multiprocessing.managers import BaseManager

from common import address, authkey, say


class QueueManager(BaseManager):
    pass


QueueManager.register("get_queue")


def main(argv):
    m = QueueManager(address=address(), authkey=authkey())
    m.connect()
    jobs = m.get_queue()
    if argv[:1] == ["produce"] and len(argv) == 3:
        first, end = int(argv[1]), int(argv[2])
        for n in range(first, end):
            jobs.put(n)
        say("produced", end - first)
    elif argv[:1] == ["consume"] and len(argv) == 2:
        idle = float(argv[1])
        while True:
            try:
                n = jobs.get(timeout=idle)
            except queue.Empty:
                break
            say("got", n)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
