#!/usr/bin/env python3
"""Run CPython's own SyncManager server, as a reference to compare syncman with.

    SYNCMAN_AUTHKEY=secret python3 tests/python/cpython_server.py [--bind 127.0.0.1:0]
    python3 tests/python/cpython_server.py --authkey-hex 736563726574

Prints `listening on HOST:PORT` (the same line as `syncman serve`) on stdout once the socket
is bound, then serves until SIGTERM/SIGINT or a client's `shutdown` request. The key is
SYNCMAN_AUTHKEY's bytes (as for syncman) unless --authkey-hex is given.

The process authkey is set to the same key: CPython's server increfs proxies it receives for
another address with its process key (spec 3.7), and Pool workers (run_cpython_manager_tests
--no-skips) inherit it.
"""

import argparse
import multiprocessing
import os
import signal
import sys
from multiprocessing.managers import SyncManager


def parse_bind(text):
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bind", type=parse_bind, default=("127.0.0.1", 0),
                    help="HOST:PORT to listen on (default 127.0.0.1:0, a free port)")
    ap.add_argument("--authkey-hex", help="key as hex (default: bytes of $SYNCMAN_AUTHKEY)")
    args = ap.parse_args()

    if args.authkey_hex is not None:
        key = bytes.fromhex(args.authkey_hex)
    elif os.environ.get("SYNCMAN_AUTHKEY"):
        key = os.fsencode(os.environ["SYNCMAN_AUTHKEY"])
    else:
        ap.error("no authkey: pass --authkey-hex HEX or set SYNCMAN_AUTHKEY")

    # 'fork' so that a Pool started inside the server (--no-skips) needs no importable __main__.
    multiprocessing.set_start_method("fork", force=True)
    multiprocessing.current_process().authkey = key

    manager = SyncManager(address=args.bind, authkey=key)
    server = manager.get_server()
    host, port = server.address[:2]
    print(f"listening on {host}:{port}", flush=True)
    print(f"cpython {sys.version.split()[0]} pid {os.getpid()}", file=sys.stderr, flush=True)

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever()  # returns/exits via sys.exit on a client's shutdown request
    except SystemExit:
        pass
    finally:
        try:
            server.listener.close()
        except Exception:
            pass


if __name__ == "__main__":
    main()
