"""An unmodified CPython SyncManager client against a syncman node: every SyncManager type
used the plain way, checked against what CPython's own server answers.

Usage: SYNCMAN_BIN=path/to/syncman smoke.py HOST PORT AUTHKEY_HEX (the binary answers
`syncman status`, to see a call parked). Prints `PASS <check>` or `FAIL <check>: <why>` per
check and `DONE <passed>/<total>`; exits 0 only if every check passed.
"""

import array
import multiprocessing
import multiprocessing.managers as mm
import os
import queue
import sys
import threading
import traceback

host, port, key = sys.argv[1], int(sys.argv[2]), bytes.fromhex(sys.argv[3])
# Proxies unpickled from replies authenticate with the process key (CPython's quirk).
multiprocessing.current_process().authkey = key
m = mm.SyncManager(address=(host, port), authkey=key)
m.connect()

checks = []


def check(fn):
    checks.append(fn)
    return fn


@check
def dict_basics():
    d = m.dict()
    d["a"] = 1
    d[(1, 2)] = [3, (4,)]
    d[1] = "int"
    d[1.0] = "float replaces int"  # 1 == 1.0: one key
    assert d["a"] == 1
    assert d[(1, 2)] == [3, (4,)], d[(1, 2)]
    assert d[1] == "float replaces int"
    assert len(d) == 3
    assert sorted(map(str, d.keys())) == ["(1, 2)", "1", "a"], d.keys()
    assert ("a", 1) in d.items(), d.items()
    assert d.get("missing") is None and d.get("missing", 7) == 7
    try:
        d["missing"]
    except KeyError as e:
        assert e.args == ("missing",), e.args
    else:
        raise AssertionError("no KeyError")
    try:
        d[[1]] = 2
    except TypeError as e:
        assert "unhashable" in str(e), e
    else:
        raise AssertionError("a list key was accepted")
    d.update({"b": 2}, c=3)
    assert d.pop("b") == 2 and d.setdefault("c", 9) == 3
    assert d.copy() == {"a": 1, (1, 2): [3, (4,)], 1: "float replaces int", "c": 3}
    assert str(d) == repr(d.copy()), (str(d), repr(d.copy()))
    assert d.popitem() == ("c", 3)
    assert sorted(map(str, iter(d))) == ["(1, 2)", "1", "a"]


@check
def dict_values_of_every_type():
    d = m.dict()
    vals = (None, True, False, 0, 255, 65536, -1, 2**63, 10**30, 1.5, float("inf"),
            "café", b"\x00\xff", [1, 2], {"k": "v"}, {1, 2}, frozenset({3}),
            bytearray(b"ba"), 1j, slice(1, None, 2))
    d["vals"] = vals
    got = d["vals"]
    assert got == vals, (got, vals)
    assert type(got) is tuple and type(got[14]) is dict and type(got[15]) is set


@check
def dict_iteration_sees_changes():
    d = m.dict(a=1, b=2)
    it = iter(d)
    assert next(it) in ("a", "b")
    d["c"] = 3
    try:
        next(it)
    except RuntimeError as e:
        assert "changed size" in str(e), e
    else:
        raise AssertionError("no RuntimeError")


@check
def list_basics():
    l = m.list(range(5))
    assert l[:] == [0, 1, 2, 3, 4] and l[::2] == [0, 2, 4] and l[-1] == 4
    l[1:3] = ["x"]
    assert l[:] == [0, "x", 3, 4]
    l.append(5)
    l.extend([6])
    l += [7]
    assert len(l) == 7 and l.index(3) == 2 and l.count("x") == 1
    del l[1]
    l.reverse()
    assert l[0] == 7
    l.sort()
    assert l[:] == [0, 3, 4, 5, 6, 7], l[:]
    l.sort(reverse=True)
    assert l.pop() == 0 and l.pop(0) == 7
    try:
        l[100]
    except IndexError:
        pass
    else:
        raise AssertionError("no IndexError")
    assert list(reversed(l)) == [3, 4, 5, 6]
    assert str(l) == "[6, 5, 4, 3]", str(l)
    l2 = m.list(["a"])
    l2 *= 2
    assert l2[:] == ["a", "a"]


@check
def lists_extend_by_any_iterable_python_sends():
    l = m.list()
    l.extend((1, 2))
    l.extend(range(3, 5))
    l.extend("ab")
    l.extend({"k": 0})
    l.extend(b"\x07")
    l += (8,)
    l += range(9, 10)
    assert l[:] == [1, 2, 3, 4, "a", "b", "k", 7, 8, 9], l[:]
    l[0:2] = (0,)
    l[1:1] = range(2)
    assert l[:4] == [0, 0, 1, 3], l[:]
    # Builtin iterators over data, as CPython pickles them; map() would run a function.
    assert m.dict(zip("ab", [1, 2])).copy() == {"a": 1, "b": 2}
    assert m.list(enumerate("xy", 1))[:] == [(1, "x"), (2, "y")]
    it = iter([5, 6, 7])
    next(it)
    assert m.list(it)[:] == [6, 7]
    assert m.list(reversed([1, 2]))[:] == [2, 1]
    try:
        m.list(map(str, [1]))
    except mm.RemoteError as e:
        assert "send a list" in str(e), e
    else:
        raise AssertionError("map() was expanded")
    try:
        l + (1,)
    except TypeError as e:
        assert 'can only concatenate list (not "tuple") to list' in str(e), e
    else:
        raise AssertionError("list + tuple was accepted")
    try:
        l.extend(range(10**9))
    except TypeError as e:
        assert "too many" in str(e), e
    else:
        raise AssertionError("a billion items were expanded")


@check
def iterating_a_dict_nobody_else_holds_keeps_it_alive():
    assert [k for k in m.dict(a=1, b=2)] == ["a", "b"]
    it = iter(m.dict(x=1))
    import gc

    gc.collect()  # the dict's proxy is gone; the iterator still holds the dict
    assert list(it) == ["x"]


@check
def a_proxy_where_python_iterates_is_read_as_its_contents():
    d = m.dict(a=1)
    d.update(m.dict(b=2))
    assert d.copy() == {"a": 1, "b": 2}, d.copy()
    l = m.list([0])
    l.extend(m.list([1, 2]))
    l += m.list([3])
    assert l[:] == [0, 1, 2, 3], l[:]
    assert m.list(m.list([4]))[:] == [4]
    assert m.dict(m.dict(k=5)).copy() == {"k": 5}
    inner = m.list([6])
    d["stored"] = inner  # stored as a value, a proxy stays a proxy
    d["stored"].append(7)
    assert inner[:] == [6, 7], inner[:]


@check
def str_of_proxies_is_python_s():
    assert str(m.list([1e16, 1e-5, float("nan"), "\x00\t", b"'"])) == (
        "[1e+16, 1e-05, nan, '\\x00\\t', b\"'\"]"
    ), str(m.list([1e16, 1e-5, float("nan"), "\x00\t", b"'"]))
    big = [2**130, -(2**130), 10**40]
    assert str(m.list(big)) == str(big), str(m.list(big))
    assert str(m.Array("i", [1, 2])) == "array('i', [1, 2])", str(m.Array("i", [1, 2]))
    assert str(m.Array("d", [])) == "array('d')"
    assert str(m.Value("i", 5)) == "Value('i', 5)", str(m.Value("i", 5))


@check
def a_constructor_error_is_a_remote_error_as_from_cpython_s_server():
    # CPython's server reports every error of `create` as a traceback (RemoteError).
    for make in (lambda: m.list(5), lambda: m.dict(5), lambda: m.Namespace(1)):
        try:
            make()
        except mm.RemoteError as e:
            assert "TypeError" in str(e), e
        else:
            raise AssertionError("a bad constructor argument was accepted")


@check
def queues():
    q = m.Queue(2)
    q.put(1)
    q.put(2, timeout=0.05)
    try:
        q.put(3, timeout=0.01)
    except queue.Full:
        pass
    else:
        raise AssertionError("no Full")
    assert q.qsize() == 2 and q.full()
    assert q.get() == 1 and q.get_nowait() == 2 and q.empty()
    try:
        q.get(timeout=0.01)
    except queue.Empty:
        pass
    else:
        raise AssertionError("no Empty")
    jq = m.JoinableQueue()
    jq.put("job")
    jq.get()
    jq.task_done()
    jq.join()


@check
def locks_and_events():
    lock = m.Lock()
    assert lock.acquire(False)
    assert not lock.acquire(False)
    lock.release()
    with lock:
        pass
    rlock = m.RLock()
    with rlock:
        with rlock:
            pass
    sem = m.Semaphore(2)
    assert sem.acquire() and sem.acquire() and not sem.acquire(timeout=0.01)
    sem.release()
    bsem = m.BoundedSemaphore(1)
    try:
        bsem.release()
    except ValueError:
        pass
    else:
        raise AssertionError("no ValueError")
    ev = m.Event()
    assert not ev.is_set() and not ev.wait(0.01)
    threading.Timer(0.05, ev.set).start()
    assert ev.wait(10)
    cond = m.Condition()
    with cond:
        assert not cond.wait(0.01)
        cond.notify_all()


def wait_for_waiters(proxy, n, within=10.0):
    """Waits until the node reports `n` calls parked on `proxy`'s object (`syncman status`,
    the binary named by SYNCMAN_BIN), so what follows meets a waiting call."""
    import json, subprocess, time

    status = [os.environ["SYNCMAN_BIN"], "status", "--addr", f"{host}:{port}", "--json"]
    env = dict(os.environ, SYNCMAN_AUTHKEY=key.decode())
    end = time.monotonic() + within
    while True:
        out = subprocess.run(status, env=env, capture_output=True, check=True).stdout
        objects = json.loads(out)["objects"]
        waiters = [o["waiters"] for o in objects if str(o["id"]) == proxy._token.id]
        if waiters == [n]:
            return
        if time.monotonic() > end:
            raise AssertionError(f"{n} waiter(s) never reported: {waiters}")
        time.sleep(0.02)  # polling the node's report, bounded above


@check
def a_waiting_get_is_woken_by_another_connection():
    q = m.Queue()
    out = []
    t = threading.Thread(target=lambda: out.append(q.get(timeout=10)))
    t.start()
    wait_for_waiters(q, 1)
    q.put("hello")
    t.join(10)
    assert out == ["hello"], out


@check
def barrier_namespace_value_array():
    b = m.Barrier(1)
    assert b.wait() == 0 and b.parties == 1 and not b.broken
    ns = m.Namespace(name="Bob")
    ns.age = 3
    assert ns.name == "Bob" and ns.age == 3 and not hasattr(ns, "missing")
    del ns.age
    assert str(ns) == "Namespace(name='Bob')", str(ns)
    v = m.Value("i", 5)
    v.value += 1
    assert v.value == 6
    a = m.Array("i", [1, 2, 3])
    a[0] = 9
    assert len(a) == 3 and a[0] == 9 and a[2] == 3
    assert a[:] == array.array("i", [9, 2, 3]) and a[::-2] == array.array("i", [3, 9]), a[:]
    assert m.Array("d", range(2))[:] == array.array("d", [0.0, 1.0])
    assert m.Array("b", (1, 2))[1] == 2



@check
def values_too_deep_are_refused_and_the_node_carries_on():
    def nested(depth):
        v = 1
        for _ in range(depth):
            v = [v]
        return v

    d = m.dict()
    d["ok"] = nested(100)
    assert d["ok"] == nested(100)
    try:
        d["deep"] = nested(150)
    except ValueError as e:  # syncman refuses what it could not read back
        assert "nested deeper" in str(e), e
    else:
        raise AssertionError("a value nested 150 deep was accepted")
    try:
        d["deeper"] = nested(400)  # past the pickle reader's own limit
    except mm.RemoteError:
        pass
    else:
        raise AssertionError("a pickle nested 400 deep was accepted")
    assert sorted(d.keys()) == ["ok"], d.keys()
    assert d["ok"] == nested(100)


@check
def nested_proxies_keep_their_objects_whatever_address_the_client_used():
    # A second client that reached the node as "localhost": its tokens carry that address.
    other = mm.SyncManager(address=("localhost", port), authkey=key)
    other.connect()
    q = other.Queue()
    d = other.dict(x=1)
    outer = m.list([q])  # stored through the 127.0.0.1 client
    outer.append({"d": d})
    del q, d  # only the stored proxies keep the objects now
    import gc
    gc.collect()
    got = outer[0]
    got.put(5)
    assert got.get() == 5
    assert outer[1]["d"]["x"] == 1
    outer[1]["d"]["y"] = 2
    assert outer[1]["d"].copy() == {"x": 1, "y": 2}


class RunsAShellCommand:
    """Unpickling it would run a command: the node must not store it for other readers."""

    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


@check
def pickles_naming_code_are_refused_and_the_node_carries_on():
    d = m.dict()
    try:
        d["evil"] = RunsAShellCommand()
    except mm.RemoteError as e:
        assert "could run code" in str(e), e
    else:
        raise AssertionError("a pickle naming os.system was stored")
    try:
        m.list([[1, {"k": RunsAShellCommand()}]])
    except mm.RemoteError as e:
        assert "could run code" in str(e), e
    else:
        raise AssertionError("a nested pickle naming os.system was stored")
    import datetime
    import decimal

    d["ok"] = (datetime.date(2020, 1, 2), decimal.Decimal("1.5"))  # ordinary data still fine
    assert d["ok"] == (datetime.date(2020, 1, 2), decimal.Decimal("1.5"))
    assert "evil" not in d


@check
def getvalue_copies_values_namespaces_and_arrays_as_cpython_does():
    v = m.Value("i", 5)._getvalue()
    assert type(v) is mm.Value and v.value == 5 and repr(v) == "Value('i', 5)", repr(v)
    ns = m.Namespace(a=1, b="x")._getvalue()
    assert type(ns) is mm.Namespace and repr(ns) == "Namespace(a=1, b='x')", repr(ns)
    a = m.Array("i", [1, 2])._getvalue()
    assert a == array.array("i", [1, 2]), a
    assert m.dict(k=[1])._getvalue() == {"k": [1]}
    try:
        m.Queue()._getvalue()  # CPython's server cannot pickle a queue either
    except mm.RemoteError:
        pass
    else:
        raise AssertionError("a queue was copied")

passed = 0
for fn in checks:
    try:
        fn()
    except Exception:
        print("FAIL %s: %s" % (fn.__name__, traceback.format_exc().replace("\n", " | ")), flush=True)
    else:
        passed += 1
        print("PASS %s" % fn.__name__, flush=True)
print("DONE %d/%d" % (passed, len(checks)), flush=True)
sys.exit(0 if passed == len(checks) else 1)
