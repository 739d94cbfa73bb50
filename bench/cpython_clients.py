"""CPython manager clients for syncman-bench: PROCS client processes, each with its own
SyncManager connection and dict, alternating `d[k] = n` and `d[k]` for SECONDS against
HOST:PORT (CPython's own server or a syncman node; the clients cannot tell).

    python3 cpython_clients.py HOST PORT AUTHKEY_HEX PROCS SECONDS [dict|queue|lock|append]

`queue` times a `q.put(n)` + `q.get()` pair and `lock` a `lock.acquire()` + `lock.release()`
pair instead of one dict operation. Prints one JSON object: ops_per_s, p50_us, p99_us, p999_us (all operations of all
processes, over the wall time from the common start to the last finish) and
client_cpu_us_per_op (the processes' CPU time in their timed loops, per operation).

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


def client(address, key, seconds, mode, ready, start, results):
    m = SyncManager(address=address, authkey=key)
    m.connect()
    d, q, lock, items = m.dict(), m.Queue(), m.Lock(), m.list()
    d["k"] = 0
    ready.put(None)
    if not start.wait(timeout=180):
        return
    deadline = time.perf_counter() + seconds
    cpu = time.process_time()
    samples = []
    n = 0
    while True:
        t = time.perf_counter()
        if t >= deadline:
            break
        if mode == "queue":
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
    results.put((samples, time.process_time() - cpu))


def fill(host, port, key, entries, kind):
    m = SyncManager(address=(host, port), authkey=key)
    m.connect()
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
    m = SyncManager(address=(host, port), authkey=key)
    m.connect()
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
    # Daemons: if one fails, the others are not waited for at exit.
    workers = [
        mp.Process(
            target=client,
            args=((host, port), key, seconds, mode, ready, start, results),
            daemon=True,
        )
        for _ in range(procs)
    ]
    for w in workers:
        w.start()
    for _ in workers:
        ready.get(timeout=120)  # every client connected
    began = time.perf_counter()
    start.set()
    samples = []
    cpu = 0.0
    for _ in workers:
        times, spent = results.get(timeout=seconds + 120)
        samples.extend(times)
        cpu += spent
    wall = time.perf_counter() - began
    for w in workers:
        w.join()
    samples.sort()

    def at(p):
        return samples[round((len(samples) - 1) * p)] * 1e6

    print(json.dumps({
        "ops_per_s": len(samples) / wall,
        "p50_us": at(0.5),
        "p99_us": at(0.99),
        "p999_us": at(0.999),
        "client_cpu_us_per_op": cpu / len(samples) * 1e6,
    }))


if __name__ == "__main__":
    main()
