"""CPython manager clients for syncman-bench: PROCS client processes, each with its own
SyncManager connection and dict, alternating `d[k] = n` and `d[k]` for SECONDS against
HOST:PORT (CPython's own server or a syncman node; the clients cannot tell).

    python3 cpython_clients.py HOST PORT AUTHKEY_HEX PROCS SECONDS [dict|queue|lock|append|barrier]

`queue` times a `q.put(n)` + `q.get()` pair and `lock` a `lock.acquire()` + `lock.release()`
pair instead of one dict operation. `barrier` has the PROCS processes wait on one shared
`Barrier(PROCS)` round after round (its proxy handed to each, as a Python program shares it);
there ops_per_s is rounds per second, and each latency one process's `wait()`. Prints one
JSON object: ops_per_s, p50_us, p99_us, p999_us (all operations of all processes, over the
wall time from the common start to the last finish) and client_cpu_us_per_op (the
processes' CPU time in their timed loops, per operation).

    python3 cpython_clients.py fill HOST PORT AUTHKEY_HEX ENTRIES ints|str-bytes

fills one managed dict with ENTRIES entries (int → int, or 16-byte str → 32-byte bytes)
through `update` in batches, prints `filled`, and keeps it until stdin closes (the memory
table reads the server's RSS meanwhile).

    python3 cpython_clients.py calls HOST PORT AUTHKEY_HEX CALLS

makes CALLS dict operations, alternating as above, in this one process, then exits: a fixed
amount of work, for counting the server's instructions per call (`bench/instructions.sh`).
"""

import json
import multiprocessing as mp
import sys
import time
from multiprocessing.managers import SyncManager


def connected(address, key):
    """A SyncManager connected to the server at `address`, as a Python program makes one."""
    m = SyncManager(address=address, authkey=key)
    m.connect()
    return m


def client(address, key, seconds, mode, ready, start, results, barrier, party, stop):
    """Runs one client process; a failure reaches the parent at once (through whichever
    queue it waits on), not after its timeout."""
    told = ready
    try:
        m = connected(address, key)
        d, q, lock, items = m.dict(), m.Queue(), m.Lock(), m.list()
        d["k"] = 0
        ready.put(None)
        told = results
        if not start.wait(timeout=180):
            return
        results.put(timed_loop(seconds, mode, d, q, lock, items, barrier, party, stop))
    except BaseException as e:
        told.put(f"client process failed: {type(e).__name__}: {e}")
        raise


def timed_loop(seconds, mode, d, q, lock, items, barrier, party, stop):
    """The operations until the deadline: their latencies and this process's CPU time."""
    deadline = time.perf_counter() + seconds
    cpu = time.process_time()
    samples = []
    n = 0
    while True:
        t = time.perf_counter()
        if mode == "barrier":
            # Every party runs the same number of rounds, or the last would wait forever:
            # party 0 sets the count once the time is up (one more round, which releases
            # whoever already waits), and everyone checks it between rounds.
            if party == 0 and t >= deadline and stop.value < 0:
                stop.value = n + 1
            if 0 <= stop.value <= n:
                break
            barrier.wait()
        elif t >= deadline:
            break
        elif mode == "queue":
            q.put(n)
            q.get()
        elif mode == "lock":
            lock.acquire()
            lock.release()
        elif mode == "append":
            items.append(n)
        elif n % 2 == 0:
            d["k"] = n
        else:
            d["k"]
        samples.append(time.perf_counter() - t)
        n += 1
    return samples, time.process_time() - cpu


def fill(host, port, key, entries, kind):
    m = connected((host, port), key)
    d = m.dict()
    for start in range(0, entries, 10_000):
        end = min(start + 10_000, entries)
        if kind == "ints":
            d.update({i: i for i in range(start, end)})
        else:
            d.update({"%016d" % i: bytes(32) for i in range(start, end)})
    print("filled", flush=True)
    sys.stdin.read()


def calls(host, port, key, n):
    m = connected((host, port), key)
    d = m.dict()
    for i in range(n):
        if i % 2 == 0:
            d["k"] = i
        else:
            d["k"]


def main():
    if sys.argv[1] == "calls":
        host, port, key = sys.argv[2], int(sys.argv[3]), bytes.fromhex(sys.argv[4])
        return calls(host, port, key, int(sys.argv[5]))
    if sys.argv[1] == "fill":
        host, port, key = sys.argv[2], int(sys.argv[3]), bytes.fromhex(sys.argv[4])
        return fill(host, port, key, int(sys.argv[5]), sys.argv[6])
    host, port, key = sys.argv[1], int(sys.argv[2]), bytes.fromhex(sys.argv[3])
    procs, seconds = int(sys.argv[4]), float(sys.argv[5])
    mode = sys.argv[6] if len(sys.argv) > 6 else "dict"
    ready, results, start = mp.Queue(), mp.Queue(), mp.Event()
    # The rounds party 0 decided on (-1 until then), in shared memory: not a manager call.
    stop = mp.Value("q", -1, lock=False)
    barrier = None
    if mode == "barrier":
        owner = connected((host, port), key)
        barrier = owner.Barrier(procs)
    # Daemons: if one fails, the others are not waited for at exit.
    workers = [
        mp.Process(
            target=client,
            args=((host, port), key, seconds, mode, ready, start, results, barrier, i, stop),
            daemon=True,
        )
        for i in range(procs)
    ]
    for w in workers:
        w.start()
    for _ in workers:
        failed = ready.get(timeout=120)  # every client connected
        if failed:
            sys.exit(failed)
    began = time.perf_counter()
    start.set()
    samples = []
    cpu = 0.0
    for _ in workers:
        outcome = results.get(timeout=seconds + 120)
        if isinstance(outcome, str):
            sys.exit(outcome)
        times, spent = outcome
        samples.extend(times)
        cpu += spent
    wall = time.perf_counter() - began
    for w in workers:
        w.join()
    samples.sort()

    def at(p):
        return samples[round((len(samples) - 1) * p)] * 1e6

    # A barrier round is one wait of every process.
    per_op = procs if mode == "barrier" else 1
    print(json.dumps({
        "ops_per_s": len(samples) / per_op / wall,
        "p50_us": at(0.5),
        "p99_us": at(0.99),
        "p999_us": at(0.999),
        "client_cpu_us_per_op": cpu / (len(samples) / per_op) * 1e6,
    }))


if __name__ == "__main__":
    main()
