"""Writes the seed corpus of the `pickle_requests` fuzz target (fuzz/README.md).

Each seed is a short session of a CPython client, its requests pickled exactly as
`multiprocessing.connection.Connection.send` pickles them (`ForkingPickler.dumps`, the
default protocol), against the objects the harness makes before reading an input
(`SEEDED` in server/src/fuzzing/pickle_requests.rs: ident "1" is a dict, "2" a list, ...).

A record is a routing byte and one request; records are separated by SEPARATOR. Routing:
0 a new one-shot connection, 1-3 a proxy connection, | 0x80 the client closes it after.

    python3 fuzz/seeds/pickle_requests.py fuzz/corpus/pickle_requests
"""

import array
import datetime
import decimal
import os
import sys
from multiprocessing import managers
from multiprocessing.reduction import ForkingPickler

SEPARATOR = b"\n%%\n"
ADDRESS = ("127.0.0.1", 50000)

(DICT, LIST, QUEUE, JQUEUE, LOCK, RLOCK, COND, EVENT, SEM, BSEM, BARRIER, NS, VALUE,
 ARRAY, JOBS) = (str(i) for i in range(1, 16))
# The first object an input makes gets the next id.
NEXT = "16"

ONE_SHOT, A, B, C = 0, 1, 2, 3
CLOSE = 0x80


def token(typeid, ident):
    return managers.Token(typeid, ADDRESS, ident)


def proxy(cls, typeid, ident):
    """A proxy as a client pickles one inside a value (no connection is made)."""
    if cls is managers.AutoProxy:
        return cls(token(typeid, ident), "pickle", exposed=("put", "get"), incref=False)
    return cls(token(typeid, ident), "pickle", incref=False)


def nested(depth):
    value = 0
    for _ in range(depth):
        value = [value]
    return value


def control(method, *args, **kwds):
    return (ONE_SHOT, (None, method, args, kwds))


def call(conn, ident, method, *args, **kwds):
    return (conn, (ident, method, args, kwds))


def accept(conn):
    return (conn, (None, "accept_connection", ("MainProcess|Thread-1",), {}))


def encode(records):
    return SEPARATOR.join(bytes([route]) + bytes(ForkingPickler.dumps(req))
                          for route, req in records)


SEEDS = {
    "dict": [
        call(A, DICT, "__setitem__", "a", 1),
        call(A, DICT, "__setitem__", (1, 2), [1.5, None, b"x"]),
        call(A, DICT, "__getitem__", "a"),
        call(A, DICT, "__getitem__", "missing"),
        call(A, DICT, "get", "missing", default=3),
        call(A, DICT, "setdefault", "s", {"n": {1, 2}}),
        call(A, DICT, "update", [("b", 2)], c=frozenset([3])),
        call(A, DICT, "__contains__", "b"),
        call(A, DICT, "__len__"),
        call(A, DICT, "keys"),
        call(A, DICT, "items"),
        call(A, DICT, "values"),
        call(A, DICT, "__iter__"),
        call(B, NEXT, "__next__"),
        call(A, DICT, "pop", "a"),
        call(A, DICT, "popitem"),
        call(A, DICT, "__setitem__", ["unhashable"], 1),
        call(A, DICT, "copy"),
        call(A, DICT, "#GETVALUE"),
        call(A, DICT, "__repr__"),
        call(A, DICT, "__delitem__", "zz"),
        call(A, DICT, "clear"),
    ],
    "list": [
        call(A, LIST, "append", 1),
        call(A, LIST, "extend", [3, 2, "x", (4,)]),
        call(A, LIST, "insert", 0, bytearray(b"ba")),
        call(A, LIST, "index", 2, 1),
        call(A, LIST, "count", 3),
        call(A, LIST, "__getitem__", slice(1, None, 2)),
        call(A, LIST, "__setitem__", -1, 9.5),
        call(A, LIST, "__delitem__", 0),
        call(A, LIST, "remove", "x"),
        call(A, LIST, "reverse"),
        call(A, LIST, "sort", reverse=True),
        call(A, LIST, "sort", key=len),
        call(A, LIST, "__add__", [7]),
        call(A, LIST, "__mul__", 3),
        call(A, LIST, "__imul__", 2),
        call(A, LIST, "__reversed__"),
        call(A, LIST, "__contains__", 9.5),
        call(A, LIST, "__len__"),
        call(A, LIST, "pop"),
        call(A, LIST, "#GETVALUE"),
        call(A, LIST, "__str__"),
    ],
    "queues": [
        call(A, QUEUE, "put", {"job": 1}),
        call(A, QUEUE, "put", 2, timeout=0.5),
        call(A, QUEUE, "put_nowait", 3),
        call(A, QUEUE, "qsize"),
        call(A, QUEUE, "get"),
        call(A, QUEUE, "get", block=False),
        call(A, QUEUE, "get_nowait"),
        call(A, QUEUE, "empty"),
        call(A, QUEUE, "get_nowait"),
        call(A, QUEUE, "full"),
        call(B, JQUEUE, "put", "t"),
        call(B, JQUEUE, "get"),
        call(B, JQUEUE, "task_done"),
        call(B, JQUEUE, "join"),
        call(B, JQUEUE, "task_done"),
        call(C, JOBS, "put", "for everyone"),
        call(C, JOBS, "get", True, 0.01),
    ],
    "queue_handoff": [
        call(A, QUEUE, "get"),
        call(B, QUEUE, "put", "handed over"),
        call(A, QUEUE, "qsize"),
        call(C, QUEUE, "get", timeout=5),
        call(C | CLOSE, QUEUE, "get"),
        call(B, QUEUE, "put", "after the waiter left"),
        accept(C),
        call(C, QUEUE, "get_nowait"),
    ],
    "locks": [
        call(A, LOCK, "acquire"),
        call(B, LOCK, "acquire", timeout=10),
        call(A, LOCK, "release"),
        call(B, LOCK, "release"),
        call(B, LOCK, "release"),
        call(A, RLOCK, "acquire"),
        call(A, RLOCK, "acquire", blocking=False),
        call(C, RLOCK, "acquire", False),
        call(A, RLOCK, "release"),
        call(C, RLOCK, "release"),
        call(B, LOCK, "acquire", True, -1),
        call(A | CLOSE, LOCK, "acquire"),
    ],
    "condition": [
        call(A, COND, "acquire"),
        call(A, COND, "wait", 5),
        call(B, COND, "acquire"),
        call(B, COND, "notify"),
        call(B, COND, "release"),
        call(A, COND, "notify_all"),
        call(A, COND, "release"),
        call(C, COND, "wait"),
    ],
    "event_semaphores": [
        call(A, EVENT, "wait"),
        call(B, EVENT, "is_set"),
        call(B, EVENT, "set"),
        call(A, EVENT, "wait", 0),
        call(A, EVENT, "clear"),
        call(A, SEM, "acquire"),
        call(A, SEM, "acquire", timeout=0.01),
        call(B, SEM, "acquire"),
        call(C, SEM, "release", n=2),
        call(A, BSEM, "release"),
        call(A, BSEM, "acquire", False),
        call(B | CLOSE, SEM, "acquire"),
    ],
    "barrier": [
        call(A, BARRIER, "__getattribute__", "parties"),
        call(A, BARRIER, "wait"),
        call(B, BARRIER, "wait", 5),
        call(A, BARRIER, "__getattribute__", "n_waiting"),
        call(C, BARRIER, "wait", timeout=0),
        call(A, BARRIER, "__getattribute__", "broken"),
        call(A, BARRIER, "reset"),
        call(A, BARRIER, "wait"),
        call(B, BARRIER, "abort"),
    ],
    "namespace_value_array": [
        call(A, NS, "__setattr__", "x", [1, 2]),
        call(A, NS, "__getattribute__", "x"),
        call(A, NS, "__getattribute__", "missing"),
        call(A, NS, "__repr__"),
        call(A, NS, "#GETVALUE"),
        call(A, NS, "__delattr__", "x"),
        call(A, VALUE, "get"),
        call(A, VALUE, "set", 42),
        call(A, VALUE, "set", value="not an int"),
        call(A, VALUE, "#GETVALUE"),
        call(A, ARRAY, "__len__"),
        call(A, ARRAY, "__getitem__", 1),
        call(A, ARRAY, "__setitem__", 0, 9),
        call(A, ARRAY, "__setitem__", slice(0, 2), array.array("i", [5, 6])),
        call(A, ARRAY, "#GETVALUE"),
        call(A, ARRAY, "__str__"),
    ],
    "control": [
        control("create", "Queue", maxsize=2),
        control("create", "list", range(5)),
        control("create", "dict", [("a", 1)], b=2),
        control("create", "Namespace", a=1),
        control("create", "Condition", proxy(managers.AcquirerProxy, "Lock", LOCK)),
        control("create", "Value", "d", 1.5, lock=False),
        control("create", "Array", "i", range(3)),
        control("create", "Barrier", 3, timeout=1.0),
        control("create", "Semaphore", value=0),
        control("create", "get_jobs"),
        control("create", "new_board", {"k": "v"}),
        control("create", "Pool"),
        control("create", "Barrier", 2, action=print),
        control("incref", NEXT),
        control("decref", NEXT),
        control("decref", NEXT),
        control("decref", "999"),
        control("incref", "not an id"),
        control("get_methods", token("Queue", QUEUE)),
        control("get_methods", token("Nonesuch", "1")),
        control("number_of_objects"),
        control("debug_info"),
        control("dummy"),
        control("frobnicate"),
        call(ONE_SHOT, DICT, "__len__"),
    ],
    "nested_proxies": [
        call(A, DICT, "__setitem__", "q", proxy(managers.AutoProxy, "Queue", QUEUE)),
        call(A, LIST, "append", proxy(managers.DictProxy, "dict", DICT)),
        call(A, LIST, "append", [proxy(managers.ListProxy, "list", "77")]),
        call(A, QUEUE, "put", proxy(managers.AcquirerProxy, "Lock", LOCK)),
        control("decref", QUEUE),
        call(B, DICT, "__getitem__", "q"),
        call(B, LIST, "#GETVALUE"),
        call(B, QUEUE, "get"),
    ],
    "connections": [
        call(A | CLOSE, DICT, "__setitem__", "k", 1),
        call(A, DICT, "__len__"),
        accept(A),
        call(A, DICT, "__len__"),
        call(B, None, "number_of_objects"),
        call(B, "nonesuch", "__len__"),
        call(B, DICT, "nonesuch"),
        call(B, DICT, "__getitem__"),
        call(B, DICT, "get", "k", default=0, extra=1),
        accept(ONE_SHOT),
        call(C, QUEUE, "get"),
        call(C, QUEUE, "qsize"),
        accept(C),
        call(C, QUEUE, "qsize"),
    ],
    "condition_rlock": [
        control("create", "Condition", proxy(managers.AcquirerProxy, "RLock", RLOCK)),
        call(A, NEXT, "acquire"),
        call(A, RLOCK, "acquire"),
        call(A, NEXT, "wait", timeout=30),
        call(B, RLOCK, "acquire"),
        call(B, NEXT, "notify_all"),
        call(B, RLOCK, "release"),
        call(A, NEXT, "release"),
        call(C, COND, "acquire"),
        call(C, COND, "wait"),
        call(C | CLOSE, COND, "notify"),
        call(A, RLOCK, "release"),
        control("decref", RLOCK),
        call(B, NEXT, "acquire", False),
    ],
    "joinable_wait": [
        call(A, JQUEUE, "put", 1),
        call(A, JQUEUE, "join"),
        call(B, JQUEUE, "get"),
        call(B, JQUEUE, "task_done"),
        control("create", "Queue", 1),
        call(C, NEXT, "put", "a"),
        call(C, NEXT, "put", "b"),
        call(B, NEXT, "get"),
        call(B, NEXT, "get"),
        call(C, NEXT, "put", "c", False),
        control("decref", NEXT),
        call(B, NEXT, "qsize"),
    ],
    "values_and_limits": [
        call(A, DICT, "__setitem__", "deep", nested(20)),
        call(A, DICT, "__setitem__", "deeper", nested(130)),
        call(A, DICT, "__setitem__", 2 ** 200, -(2 ** 127)),
        call(A, DICT, "__setitem__", "when", datetime.datetime(2024, 1, 2, 3, 4, 5)),
        call(A, DICT, "__setitem__", 1.0, "float key"),
        call(A, DICT, "__getitem__", 1),
        call(A, DICT, "__getitem__", True),
        call(A, DICT, "__setitem__", float("nan"), complex(1, 2)),
        call(A, DICT, "__setitem__", "surrogate", "\udc80"),
        call(A, DICT, "copy"),
        call(A, DICT, "__repr__"),
        call(A, LIST, "extend", range(1000)),
        call(A, LIST, "__imul__", 100),
        call(A, LIST, "__imul__", 100),
        call(A, LIST, "__getitem__", slice(None, None, -7)),
        call(A, LIST, "__iter__"),
    ] + [control("create", "Event")] * 40,
    "keys": [
        call(A, DICT, "__setitem__", key, i)
        for i, key in enumerate([
            -0.0, 0.0, True, 1.0, (1, 2.0), frozenset([1, 2.0]), 2 ** 200, -2 ** 127,
            "\udc80", b"\x00", datetime.date(2020, 1, 1), decimal.Decimal("1.0"),
            float("nan"), complex(0, 1), ((),), ("a", (b"b", (None,))), slice(1, 2), None,
            2 ** 64, -2 ** 63 - 1, "x" * 300, frozenset({(1,)}), int, Ellipsis,
        ])
    ] + [
        call(A, DICT, "__getitem__", 0),
        call(A, DICT, "get", (1.0, 2)),
        call(A, DICT, "pop", frozenset([2, 1])),
        call(A, DICT, "__delitem__", 2 ** 200),
        call(A, DICT, "keys"),
        call(A, DICT, "__iter__"),
        call(A, NEXT, "__next__"),
        call(A, DICT, "__setitem__", "more", 1),
        call(A, NEXT, "__next__"),
    ],
    "shutdown": [
        call(A, QUEUE, "get"),
        call(B, LOCK, "acquire"),
        control("shutdown"),
        call(B, LOCK, "release"),
    ],
}


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, records in SEEDS.items():
        with open(os.path.join(out, f"seed-{name}"), "wb") as f:
            f.write(encode(records))


if __name__ == "__main__":
    main()
