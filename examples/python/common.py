"""What every example shares: the address and key, from the same variables as the Rust
examples (SYNCMAN_ADDR, default 127.0.0.1:50000; SYNCMAN_AUTHKEY). Plain CPython: nothing
here knows about syncman."""

import os
import sys


def address():
    host, _, port = os.environ.get("SYNCMAN_ADDR", "127.0.0.1:50000").rpartition(":")
    return host, int(port)


def authkey():
    key = os.environ.get("SYNCMAN_AUTHKEY")
    if key is None:
        sys.exit("set SYNCMAN_AUTHKEY")
    return key.encode()


def say(*words):
    """One line, flushed at once, so whoever reads the output sees it even if killed."""
    print(*words, flush=True)
