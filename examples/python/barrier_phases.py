"""Separate processes moving through phases in step, with a shared barrier.

    SYNCMAN_AUTHKEY=secret syncman serve --bind 127.0.0.1:50000 --typeid get_barrier=Barrier:phases
    SYNCMAN_AUTHKEY=secret python3 barrier_phases.py 3 3      # twice
    SYNCMAN_AUTHKEY=secret cargo run --example barrier_phases -- phases 3 3

`barrier_phases.py PARTIES PHASES`: for each phase p, waits on the barrier (made for
PARTIES if new) and prints `phase <p> index <i>` with its arrival index.
"""

import sys
from multiprocessing.managers import BarrierProxy, BaseManager

from common import address, authkey, say


class PhaseManager(BaseManager):
    pass


PhaseManager.register("get_barrier", proxytype=BarrierProxy)


def main(argv):
    if len(argv) != 2:
        sys.exit(__doc__)
    parties, phases = int(argv[0]), int(argv[1])
    m = PhaseManager(address=address(), authkey=authkey())
    m.connect()
    barrier = m.get_barrier(parties)
    for phase in range(phases):
        index = barrier.wait(timeout=60)
        say("phase", phase, "index", index)


if __name__ == "__main__":
    main(sys.argv[1:])
