"""Differential check: the same SyncManager operations against CPython's own manager server
and against a syncman node, compared result by result.

Usage: differential.py HOST PORT AUTHKEY_HEX. Starts CPython's `SyncManager` in-process
(`start()`, a forked server on a Unix socket), connects to the node at HOST:PORT, runs every
operation below once against each, and compares normalized results: the repr of the value
(object addresses masked), or for an exception its class name and args. A `RemoteError`
(the server's traceback as text) is compared by class only, plus the class named on the
traceback's last line. Operations marked `loose` compare exception classes only: their
messages are worded differently on purpose (see KNOWN_DIFFERENCES).

Prints `PASS <name>` or `DIFF <name>: cpython=... syncman=...` per operation and
`DONE <matched>/<total>`; exits 0 only if every operation matched. Every blocking call has a
timeout and a watchdog ends the run if anything hangs anyway.

KNOWN_DIFFERENCES (left out of the comparison, or compared loosely):
- `map` and `filter` as arguments (`m.list(map(str, x))`): they name a function, which the
  node never calls; send a list. (`zip`, `enumerate`, `iter` and `reversed` over data are
  compared below, `zip(strict=True)` of unequal lengths included.)
- Array slice assignment, and Array typecode 'u': not supported by the node.
- Ordering of sets/frozensets by subset (`sort` of sets): the node orders only totally
  ordered values.
- Strings with lone surrogates: not representable on the node.
- Values nested deeper than ~124 levels: the node's pickle reader has a depth limit.
- Equality between Decimal/Fraction/complex and int/float (`d.get(Decimal(1))`,
  `l.index(Fraction(3))`): the node does not evaluate Python's cross-type `__eq__`/`__hash__`
  for opaque types.
- NaN keys and NaN identity: CPython matches the very same NaN object by identity; the node
  has no object identity.
- Exceptions as values compared by identity, and shared references inside one value
  (`[x, x]` comes back as two equal objects, not one).
- A failed sort's partial order, `sort(key=...)`, `Barrier(action=...)`: Python code or
  CPython's in-place sort internals the node does not reproduce.
- Error message wording (operations marked `loose`: the class must match, not the text).
- repr of opaque values (Decimal, datetime, complex) inside `str(container)`: the node
  renders containers itself and does not run their `__repr__`.
- Object addresses in proxy reprs (masked before comparing).
- Ordering datetimes or times whose tzinfo is not a fixed-offset `datetime.timezone`
  (`zoneinfo`, `pytz`: their offsets are Python code), or Decimal/Fraction: the node has no
  `<` for them (TypeError). Big ints and `datetime`'s date, time, datetime and timedelta
  are compared below. Equality of aware datetimes at one instant with different offsets,
  of naive ones differing only in `fold`, and of a big int with the float of the same value,
  is by stored form on the node, and so is their order: a sort puts such "equal" values in
  the order of their stored forms, where CPython keeps their original order.
- `m.list(dict_proxy)`: CPython's own server deadlocks on it (it iterates a proxy to itself).
"""

import array
import datetime
import decimal
import faulthandler
import fractions
import multiprocessing
import multiprocessing.managers as mm
import os
import re
import sys
import threading

host, port, key = sys.argv[1], int(sys.argv[2]), bytes.fromhex(sys.argv[3])
# Proxies unpickled from replies authenticate with the process key (CPython's quirk).
multiprocessing.current_process().authkey = key

# A short timeout for calls that are expected to time out.
T = 0.05
# A generous timeout for calls that are expected to succeed.
LONG = 10
# A bound on the whole run.
WATCHDOG = 60

OPS = []


def op(name, loose=False):
    """Registers `fn(m)`; its result on both managers must match."""

    def register(fn):
        OPS.append((name, fn, loose))
        return fn

    return register


def steps(name, setup, *cases, loose=()):
    """Registers one operation per `(label, fn(obj))` in `cases`, run in order on the object
    `setup(m)` makes once per manager: for state that builds up step by step."""
    objs = {}

    for i, (label, fn) in enumerate(cases):

        def run(m, fn=fn, first=(i == 0)):
            if first or id(m) not in objs:
                objs[id(m)] = setup(m)
            return fn(objs[id(m)])

        OPS.append(("%s: %s" % (name, label), run, label in loose))


ADDRESS = re.compile(r" at 0x[0-9a-f]+")


def remote_class(e):
    lines = [l for l in str(e).splitlines() if l.strip() and not l.startswith("---")]
    return lines[-1].split(":")[0].strip() if lines else ""


def outcome(fn, m, loose):
    try:
        value = fn(m)
    except mm.RemoteError as e:
        return "RemoteError(%s)" % remote_class(e)
    except Exception as e:
        if loose:
            return "raised %s" % type(e).__name__
        return "raised %s%r" % (type(e).__name__, e.args)
    return ADDRESS.sub(" at 0x?", repr(value))


# --- helpers -----------------------------------------------------------------------------


def then(*values):
    """`(a(), b())` reads better as `then(a(), b())` when the first calls mutate."""
    return values[-1]


def catch(f):
    """The exception `f()` raises, by class name and args, or its value."""
    try:
        return ("ok", f())
    except mm.RemoteError as e:
        return ("RemoteError", remote_class(e))
    except Exception as e:
        return (type(e).__name__, e.args)


# --- dict --------------------------------------------------------------------------------

op("dict() empty")(lambda m: m.dict().copy())
op("dict(kwargs)")(lambda m: m.dict(a=1, b=2).copy())
op("dict(mapping, kwargs)")(lambda m: m.dict({"a": 1}, b=2).copy())
op("dict(pairs list)")(lambda m: m.dict([("a", 1), ("b", 2)]).copy())
op("dict(pairs tuple)")(lambda m: m.dict(((1, 2), (3, 4))).copy())
op("dict(dict items)")(lambda m: m.dict(list({"a": 1}.items())).copy())
op("dict(proxy)")(lambda m: m.dict(m.dict(x=1)).copy())

KEYS = [1, 1.5, "a", b"b", None, True, False, (1, 2), ((1,), "x"), frozenset([1, 2]),
        -5, 2**70, 0.0, -0.0, float("inf"), ("a", (None, b"z")), "", (), "é☃😀"]


def filled(m):
    d = m.dict()
    for k in KEYS:
        d[k] = repr(k)
    return d


steps(
    "dict keys",
    filled,
    ("len", len),
    ("copy", lambda d: d.copy()),
    ("keys", lambda d: d.keys()),
    ("values", lambda d: d.values()),
    ("items", lambda d: d.items()),
    ("list(d)", list),
    ("for k in d", lambda d: [k for k in d]),
    ("str", str),
    ("_getvalue", lambda d: d._getvalue()),
    ("get 1.0", lambda d: d.get(1.0)),
    ("get True", lambda d: d.get(True)),
    ("get 0", lambda d: d.get(0)),
    ("[-0.0]", lambda d: d[-0.0]),
    ("get (1.0, 2)", lambda d: d.get((1.0, 2))),
    ("get frozenset", lambda d: d.get(frozenset([2, 1]))),
    ("get float(2**70)", lambda d: d.get(float(2**70))),
    ("1.0 in", lambda d: 1.0 in d),
    ("(1, 2) in", lambda d: (1, 2) in d),
    ("'zz' in", lambda d: "zz" in d),
    ("[1] in (unhashable)", lambda d: [1] in d),
    ("set [1] key", lambda d: d.__setitem__([1], 2)),
    ("set {} key", lambda d: d.__setitem__({}, 2)),
    ("set set key", lambda d: d.__setitem__({1}, 2)),
    ("set ([1],) key", lambda d: d.__setitem__(([1],), 2)),
    ("missing str", lambda d: d["nope"]),
    ("missing tuple", lambda d: d[(9, 9)]),
    ("missing float", lambda d: d[3.25]),
    ("missing 2**100", lambda d: d[2**100]),
    ("del missing", lambda d: d.__delitem__("nope")),
    ("pop missing", lambda d: d.pop("nope")),
    ("pop missing default", lambda d: d.pop("nope", None)),
    ("pop 1.0", lambda d: d.pop(1.0)),
    ("popitem", lambda d: d.popitem()),
    ("setdefault new", lambda d: d.setdefault("sd")),
    ("setdefault existing", lambda d: d.setdefault("sd", 5)),
    ("setdefault new value", lambda d: d.setdefault("sd2", [1])),
    ("get default", lambda d: d.get("zz", 3)),
    ("update dict", lambda d: then(d.update({"u": 1}), d.copy())),
    ("update kwargs", lambda d: then(d.update(v=2, w=3), len(d))),
    ("update pairs+kwargs", lambda d: then(d.update([("x", 1)], y=2), d.copy())),
    ("update proxy", lambda d: then(d.update(m_of(d).dict(pp=1)), d.get("pp"))),
    ("update two args", lambda d: d.update({}, {})),
    ("del", lambda d: then(d.__delitem__("u"), "u" in d, len(d))),
    ("overwrite True key", lambda d: then(d.__setitem__(True, "T"), d[1], d[1.0])),
    ("clear", lambda d: then(d.clear(), d.copy(), len(d))),
    ("popitem empty", lambda d: d.popitem()),
    ("str empty", str),
)

# The manager a proxy belongs to, for steps that make new objects.
MANAGERS = {}


def m_of(proxy):
    return MANAGERS[proxy._token.address]


op("dict == dict")(lambda m: m.dict(a=1) == {"a": 1})
op("dict != dict")(lambda m: m.dict(a=1) != {"a": 1})
op("dict(proxy) local")(lambda m: dict(m.dict(a=1, b=[2])))
op("dict popitem order")(lambda m: (lambda d: [d.popitem() for _ in range(3)])(m.dict(a=1, b=2, c=3)))
op("dict str nested")(lambda m: str(m.dict(a=[1, (2, "x")], b={"c": None}, c=b"q", d=1.5)))
op("dict str floats")(
    lambda m: str(m.dict(a=0.1, b=1e16, c=1e-05, e=-0.0, f=1.0, g=123456789.123, h=float("inf")))
)
op("dict str strings")(
    lambda m: str(m.dict(a="it's", b='say "hi"', c="a\nb", d="\x00", e="ü", f="\u200b",
                         g=b"'\"", h="\t", i="\\"))
)
op("for k in m.dict() (temporary proxy)")(lambda m: [k for k in m.dict(a=1, b=2)])
op("iter(temporary proxy)")(lambda m: list(iter(m.dict(a=1))))
op("dict len after updates")(lambda m: (lambda d: then(d.update(a=1), d.update(a=2), len(d)))(m.dict()))

# --- list --------------------------------------------------------------------------------

op("list() empty")(lambda m: m.list()[:])
op("list(range)")(lambda m: m.list(range(5))[:])
op("list(range step)")(lambda m: m.list(range(10, 0, -3))[:])
op("list(str)")(lambda m: m.list("abc")[:])
op("list(tuple)")(lambda m: m.list((1, 2))[:])
op("list(int set)")(lambda m: m.list({3, 1, 2})[:])
op("list(dict)")(lambda m: m.list({"a": 1, "b": 2})[:])
op("list(bytes)")(lambda m: m.list(b"ab")[:])
op("list(proxy)")(lambda m: m.list(m.list([1, 2]))[:])
op("list(zip)")(lambda m: m.list(zip("ab", [1, 2], (True, None)))[:])
op("list(enumerate)")(lambda m: m.list(enumerate(["x", "y"], 5))[:])
op("list(reversed)")(lambda m: m.list(reversed([1, 2, 3]))[:])
op("list(iter advanced)")(lambda m: (lambda it: then(next(it), m.list(it)[:]))(iter((1, 2, 3))))
op("dict(zip)")(lambda m: m.dict(zip("ab", range(2))).copy())
op("dict(enumerate)")(lambda m: m.dict(enumerate("xy")).copy())
op("dict.update(zip)")(lambda m: (lambda d: then(d.update(zip([1], [2])), d.copy()))(m.dict(a=0)))
op("list.extend(enumerate)")(lambda m: (lambda l: then(l.extend(enumerate("ab")), l[:]))(m.list([0])))
op("list(zip strict, longer)")(lambda m: m.list(zip([1], [2, 3], strict=True))[:])
op("list(zip strict, shorter third)")(lambda m: m.list(zip([1, 2], [3, 4], [5], strict=True))[:])
op("list.extend(zip strict, 2 3 1)")(
    lambda m: (lambda l: then(l.extend(zip([1, 2], [3, 4, 5], [6], strict=True)), l[:]))(m.list()))
op("list.extend(zip strict)")(
    lambda m: (lambda l: then(l.extend(zip([1, 2], [3], strict=True)), l[:]))(m.list()))
op("dict(triples)")(lambda m: m.dict([(1, 2, 3)]).copy())
op("dict.update(triples)")(lambda m: (lambda d: then(d.update([(1, 2, 3)]), d.copy()))(m.dict()))
op("dict.update(ints)")(lambda m: (lambda d: then(d.update([1]), d.copy()))(m.dict()))
op("str(list of big ints)")(lambda m: str(m.list([2**130, -(2**130), 10**40, 2**127])))

steps(
    "list index",
    lambda m: m.list(range(10)),
    ("[-1]", lambda l: l[-1]),
    ("[-10]", lambda l: l[-10]),
    ("[10]", lambda l: l[10]),
    ("[-11]", lambda l: l[-11]),
    ("[True]", lambda l: l[True]),
    ("['a']", lambda l: l["a"]),
    ("[1.0]", lambda l: l[1.0]),
    ("[::2]", lambda l: l[::2]),
    ("[::-1]", lambda l: l[::-1]),
    ("[8:2:-2]", lambda l: l[8:2:-2]),
    ("[-3:]", lambda l: l[-3:]),
    ("[:100]", lambda l: l[:100]),
    ("[5:2]", lambda l: l[5:2]),
    ("[None:3]", lambda l: l[None:3]),
    ("[2**70:]", lambda l: l[2**70:]),
    ("[-2**70:2]", lambda l: l[-2**70:2]),
    ("[1:-1:3]", lambda l: l[1:-1:3]),
    ("[::0]", lambda l: l[::0]),
    ("index", lambda l: l.index(3)),
    ("index start", lambda l: l.index(3, 2)),
    ("index start stop", lambda l: l.index(3, 2, 4)),
    ("index negative start", lambda l: l.index(8, -3)),
    ("index big stop", lambda l: l.index(3, 0, 2**70)),
    ("index missing in range", lambda l: l.index(3, 4)),
    ("index missing", lambda l: l.index(99)),
    ("index 3.0", lambda l: l.index(3.0)),
    ("index True", lambda l: l.index(True)),
    ("count", lambda l: l.count(1)),
    ("count 1.0", lambda l: l.count(1.0)),
    ("count missing", lambda l: l.count("x")),
    ("in", lambda l: 5 in l),
    ("in 5.0", lambda l: 5.0 in l),
    ("not in", lambda l: 55 not in l),
    ("len", len),
    ("bool", bool),
    ("iter", lambda l: [x for x in l]),
    ("reversed", lambda l: list(reversed(l))),
    ("str", str),
    ("[2] = x", lambda l: then(l.__setitem__(2, "x"), l[:])),
    ("[-1] = y", lambda l: then(l.__setitem__(-1, "y"), l[:])),
    ("[20] = z", lambda l: l.__setitem__(20, "z")),
    ("[::2] = 5 items", lambda l: then(l.__setitem__(slice(None, None, 2), [0] * 5), l[:])),
    ("[::2] = wrong size", lambda l: l.__setitem__(slice(None, None, 2), [0] * 3)),
    ("[1:3] = longer", lambda l: then(l.__setitem__(slice(1, 3), "abcd"), l[:])),
    ("[0:2] = tuple", lambda l: then(l.__setitem__(slice(0, 2), (7, 7)), l[:])),
    ("[0:2] = range", lambda l: then(l.__setitem__(slice(0, 2), range(3)), l[:])),
    ("del [0]", lambda l: then(l.__delitem__(0), l[:])),
    ("del [-1]", lambda l: then(l.__delitem__(-1), l[:])),
    ("del [::3]", lambda l: then(l.__delitem__(slice(None, None, 3)), l[:])),
    ("del [1:3]", lambda l: then(l.__delitem__(slice(1, 3)), l[:])),
    ("del [50]", lambda l: l.__delitem__(50)),
    ("del [100:200]", lambda l: then(l.__delitem__(slice(100, 200)), l[:])),
)

steps(
    "list methods",
    lambda m: m.list([3, 1, 2]),
    ("append", lambda l: then(l.append(4), l[:])),
    ("extend list", lambda l: then(l.extend([5, 6]), l[:])),
    ("extend tuple", lambda l: then(l.extend((7, 8)), l[:])),
    ("extend range", lambda l: then(l.extend(range(2)), l[:])),
    ("extend str", lambda l: then(l.extend("ab"), l[:])),
    ("extend dict", lambda l: then(l.extend({"k": 1}), l[:])),
    ("extend int set", lambda l: then(l.extend({9}), l[:])),
    ("extend proxy", lambda l: then(l.extend(m_of(l).list([10])), l[:])),
    ("insert negative", lambda l: then(l.insert(-1, "n"), l[:])),
    ("insert past end", lambda l: then(l.insert(100, "b"), l[:])),
    ("insert very negative", lambda l: then(l.insert(-100, "a"), l[:])),
    ("pop", lambda l: l.pop()),
    ("pop 0", lambda l: l.pop(0)),
    ("pop -2", lambda l: l.pop(-2)),
    ("pop 100", lambda l: l.pop(100)),
    ("remove", lambda l: then(l.remove("n"), l[:])),
    ("remove missing", lambda l: l.remove("zz")),
    ("remove 1.0", lambda l: then(l.remove(1.0), l[:])),
    ("count", lambda l: l.count(7)),
    ("copy", lambda l: l[:]),
    ("clear via del", lambda l: then(l.__delitem__(slice(None)), l[:])),
    ("pop empty", lambda l: l.pop()),
)

steps(
    "list sort",
    lambda m: m.list([3, 1, 2, 5, 4]),
    ("sort", lambda l: then(l.sort(), l[:])),
    ("sort reverse", lambda l: then(l.sort(reverse=True), l[:])),
    ("sort key=None", lambda l: then(l.sort(key=None), l[:])),
    ("reverse", lambda l: then(l.reverse(), l[:])),
    ("+ list", lambda l: l + [9]),
    ("list +", lambda l: [0] + l),
    ("* 3", lambda l: l * 3),
    ("3 *", lambda l: 3 * l),
    ("* 0", lambda l: l * 0),
    ("* -1", lambda l: l * -1),
    ("== list", lambda l: l == [1, 2, 3, 4, 5]),
    ("== floats", lambda l: l == [1.0, 2.0, 3.0, 4.0, 5.0]),
    ("!= list", lambda l: l != [1, 2, 3, 4, 5]),
    ("< list", lambda l: l < [1, 3]),
    ("<= list", lambda l: l <= [1, 2, 3, 4, 5]),
    ("> list", lambda l: l > [1]),
    (">= list", lambda l: l >= [2]),
    ("== tuple", lambda l: l == (1, 2, 3, 4, 5)),
)


def sorted_list(values, **kw):
    def run(m):
        l = m.list(values)
        l.sort(**kw)
        return l[:]

    return run


op("sort mixed numbers")(sorted_list([2, 1.5, True, -1, 2**70, float("inf"), -0.0, 0, False,
                                      2**127 - 1, -2**64]))
op("sort stable equal numbers")(sorted_list([1, 1.0, True, 0, 0.0, False]))
op("sort strings")(sorted_list(["b", "B", "a", "é", "Z", "", "ab", "\U0001F600", "\uffff"]))
op("sort tuples")(sorted_list([(1, "b"), (1, "a"), (0,), (1,), (1, "a", 0)]))
op("sort bytes reverse")(sorted_list([b"b", b"a", b"\xff", b""], reverse=True))
op("sort lists")(sorted_list([[2], [1, 5], [1]]))
op("sort None and int")(sorted_list([None, 1]))
op("sort dicts")(sorted_list([{1: 2}, {0: 1}]))
op("sort str and int")(sorted_list(["a", 1]))
DT, TZ, TD = datetime.datetime, datetime.timezone, datetime.timedelta
op("sort big ints, ints and floats")(sorted_list([
    2**130, -2**130, 5, 2.5, 2.0**129, float("inf"), -float("inf"), 2**200, -2**127 - 1,
    1e300, -1e300, 2**1100, 2**127]))
op("sort naive datetimes")(sorted_list([
    DT(2024, 1, 2, 3, 4, 5, 6), DT(2023, 12, 31), DT(2024, 1, 2, 3, 4, 5, 5), DT(1, 1, 1),
    DT(9999, 12, 31, 23, 59, 59, 999999), DT(2024, 2, 29, fold=1), DT(2024, 2, 28, 23)]))
op("sort aware datetimes")(sorted_list([
    DT(2024, 1, 2, 12, tzinfo=TZ(TD(hours=2))), DT(2024, 1, 2, 11, tzinfo=TZ.utc),
    DT(2024, 1, 2, 0, tzinfo=TZ(TD(hours=-5), "EST")), DT(2024, 1, 2, 10, 30, tzinfo=TZ.utc),
    DT(2024, 1, 2, 4, tzinfo=TZ.utc)]))
op("sort dates reverse")(sorted_list([
    datetime.date(2000, 1, 1), datetime.date(1999, 12, 31), datetime.date(2000, 3, 1)],
    reverse=True))
op("sort times")(sorted_list([
    datetime.time(12), datetime.time(1, 2, 3, fold=1), datetime.time(1, 2, 3, 4),
    datetime.time(0)]))
op("sort timedeltas")(sorted_list([TD(days=-1, microseconds=5), TD(0), TD(seconds=1),
                                   TD(microseconds=999999), TD(days=-2)]))
op("sort tuples of datetimes")(sorted_list([
    (DT(2024, 1, 1), "b"), (DT(2024, 1, 1), "a"), (DT(2023, 1, 1), "z")]))
op("sort naive and aware datetimes")(sorted_list([DT(2024, 1, 1), DT(2024, 1, 1, tzinfo=TZ.utc)]))
# Worded as 3.11 and 3.12 word it; 3.13 says "'<' not supported between instances of ...".
op("sort date and datetime", loose=True)(sorted_list([datetime.date(2024, 1, 1), DT(2024, 1, 1)]))
op("sort datetime and int")(sorted_list([DT(2024, 1, 1), 1]))
op("sort big int and str")(sorted_list([2**130, "a"]))


def iadd(m):
    x = m.list([1])
    y = x
    x += [2]
    x += (3,)
    return (x is y, type(x).__name__, y[:])


def imul(m):
    x = m.list([1, 2])
    y = x
    x *= 2
    return (x is y, type(x).__name__, y[:])


def imul0(m):
    x = m.list([1, 2])
    x *= 0
    return x[:]


op("list +=")(iadd)
op("list *=")(imul)
op("list *= 0")(imul0)
op("list += str")(lambda m: (lambda x: then(x.__iadd__("ab"), x[:]))(m.list()))
op("list += dict")(lambda m: (lambda x: then(x.__iadd__({"k": 1}), x[:]))(m.list()))
op("list + tuple", loose=True)(lambda m: m.list([1]) + (1,))
op("list + int", loose=True)(lambda m: m.list([1]) + 1)
op("list * float", loose=True)(lambda m: m.list([1]) * 1.5)
op("list index str start", loose=True)(lambda m: m.list([1]).index(1, "a"))
op("list index past start")(lambda m: m.list([1]).index(1, 5))
op("list == proxy")(lambda m: m.list([1]) == m.list([1]))
op("list str")(lambda m: str(m.list([1, "a", (2,), None, b"x", {1: 2}, {3}, 1.5, 2**100,
                                     [], (), True, -0.0])))
op("list _getvalue")(lambda m: m.list([1, (2,)])._getvalue())
op("list nested mutate")(lambda m: (lambda x: then(x[0].append(2), x[:]))(m.list([[1]])))

# --- queues ------------------------------------------------------------------------------

steps(
    "Queue",
    lambda m: m.Queue(),
    ("empty", lambda q: q.empty()),
    ("get_nowait empty", lambda q: q.get_nowait()),
    ("get(False) empty", lambda q: q.get(False)),
    ("get timeout", lambda q: q.get(timeout=T)),
    ("get(True, t)", lambda q: q.get(True, T)),
    ("get timeout=0", lambda q: q.get(timeout=0)),
    ("get block=False timeout", lambda q: q.get(block=False, timeout=5)),
    ("get timeout=-1", lambda q: q.get(timeout=-1)),
    ("put forms", lambda q: (q.put(1), q.put_nowait(2), q.put(3, True, LONG), q.put(4, block=False),
                             q.put(5, timeout=LONG))),
    ("qsize/empty/full", lambda q: (q.qsize(), q.empty(), q.full())),
    ("get forms", lambda q: (q.get(), q.get_nowait(), q.get(False), q.get(True, LONG),
                             q.get(timeout=LONG))),
    ("empty again", lambda q: (q.qsize(), q.empty())),
    ("task_done", lambda q: q.task_done()),
)

steps(
    "bounded Queue",
    lambda m: m.Queue(2),
    ("put", lambda q: (q.put(1), q.put(2), q.full(), q.qsize())),
    ("put_nowait full", lambda q: q.put_nowait(3)),
    ("put timeout full", lambda q: q.put(3, timeout=T)),
    ("put(x, False) full", lambda q: q.put(3, False)),
    ("put timeout=-1", lambda q: q.put(3, timeout=-1)),
    ("get then put", lambda q: (q.get_nowait(), q.put_nowait(3), q.full(), q.get(), q.get())),
)

op("Queue(maxsize=1)")(lambda m: (lambda q: (q.full(), q.put(1), q.full()))(m.Queue(maxsize=1)))
op("Queue(0) unbounded")(lambda m: (lambda q: (q.put(1), q.put(2), q.full(), q.qsize()))(m.Queue(0)))
op("Queue(-1) unbounded")(lambda m: (lambda q: (q.put(1), q.put(2), q.full(), q.qsize()))(m.Queue(-1)))


def queue_wakes(m):
    q = m.Queue()
    t = threading.Thread(target=q.put, args=("late",))
    t.start()
    got = q.get(timeout=LONG)
    t.join(LONG)
    return got


op("Queue get woken by a put")(queue_wakes)

steps(
    "JoinableQueue",
    lambda m: m.JoinableQueue(),
    ("task_done too many", lambda q: q.task_done()),
    ("join empty", lambda q: q.join()),
    ("put/get/task_done", lambda q: (q.put(1), q.put_nowait(2), q.get(timeout=LONG), q.task_done(),
                                     q.get_nowait(), q.task_done())),
    ("join done", lambda q: q.join()),
    ("get timeout", lambda q: q.get(timeout=T)),
    ("qsize", lambda q: q.qsize()),
)

# --- locks, semaphores, events, conditions, barriers ---------------------------------------

steps(
    "Lock",
    lambda m: m.Lock(),
    ("acquire", lambda l: l.acquire()),
    ("acquire(False) held", lambda l: l.acquire(False)),
    ("acquire(blocking=False) held", lambda l: l.acquire(blocking=False)),
    ("acquire(timeout) held", lambda l: l.acquire(timeout=T)),
    ("acquire(True, t) held", lambda l: l.acquire(True, T)),
    ("acquire(False, 1) held", lambda l: l.acquire(False, 1)),
    ("acquire(timeout=-2)", lambda l: l.acquire(timeout=-2)),
    ("release", lambda l: l.release()),
    ("release unlocked", lambda l: l.release()),
    ("acquire(timeout) free", lambda l: (l.acquire(timeout=LONG), l.release())),
    ("with", lambda l: then(l.__enter__(), (l.acquire(False), l.__exit__(None, None, None),
                                            l.acquire(False), l.release()))),
    loose=("acquire(timeout=-2)",),
)

steps(
    "RLock",
    lambda m: m.RLock(),
    ("acquire x3", lambda r: (r.acquire(), r.acquire(False), r.acquire(timeout=T))),
    ("release x3", lambda r: (r.release(), r.release(), r.release())),
    ("release unowned", lambda r: r.release()),
    ("with", lambda r: (r.__enter__(), r.__exit__(None, None, None))),
)


def other_thread(f):
    out = []

    def run():
        out.append(catch(f))

    t = threading.Thread(target=run)
    t.start()
    t.join(LONG)
    return out


def lock_released_by_other_thread(m):
    lock = m.Lock()
    lock.acquire()
    return (other_thread(lock.release), lock.acquire(False), lock.release())


def rlock_held_by_other_thread(m):
    r = m.RLock()
    r.acquire()
    got = other_thread(lambda: r.acquire(timeout=T))
    released = other_thread(r.release)
    r.release()
    return (got, [c for c, _ in released], other_thread(lambda: (r.acquire(False), r.release())))


op("Lock released by another thread")(lock_released_by_other_thread)
op("RLock held by another thread", loose=True)(rlock_held_by_other_thread)

steps(
    "Semaphore",
    lambda m: m.Semaphore(2),
    ("acquire forms", lambda s: (s.acquire(), s.acquire(), s.acquire(False), s.acquire(timeout=T),
                                 s.acquire(blocking=False))),
    ("get_value", lambda s: s.get_value()),
    ("release x3", lambda s: (s.release(), s.release(), s.release())),
    ("get_value after", lambda s: s.get_value()),
    ("with", lambda s: (s.__enter__(), s.get_value(), s.__exit__(None, None, None), s.get_value())),
)
op("Semaphore(0)")(lambda m: m.Semaphore(0).acquire(timeout=T))
op("Semaphore(value=1)")(lambda m: (lambda s: (s.acquire(False), s.acquire(False)))(m.Semaphore(value=1)))
op("Semaphore() default")(lambda m: (lambda s: (s.acquire(False), s.acquire(False)))(m.Semaphore()))
op("Semaphore(-1)")(lambda m: m.Semaphore(-1))

steps(
    "BoundedSemaphore",
    lambda m: m.BoundedSemaphore(1),
    ("acquire", lambda s: (s.acquire(), s.acquire(False), s.acquire(timeout=T))),
    ("release", lambda s: s.release()),
    ("over-release", lambda s: s.release()),
    ("with", lambda s: (s.__enter__(), s.acquire(False), s.__exit__(None, None, None))),
    ("acquire after with", lambda s: (s.acquire(False), s.release())),
)
op("BoundedSemaphore() default")(
    lambda m: (lambda s: (s.acquire(False), s.acquire(False)))(m.BoundedSemaphore())
)
op("BoundedSemaphore(2) over-release")(
    lambda m: (lambda s: catch(lambda: (s.acquire(), s.release(), s.release())))(m.BoundedSemaphore(2))
)

steps(
    "Event",
    lambda m: m.Event(),
    ("is_set", lambda e: e.is_set()),
    ("wait(t)", lambda e: e.wait(T)),
    ("wait(timeout=t)", lambda e: e.wait(timeout=T)),
    ("wait(0)", lambda e: e.wait(0)),
    ("wait(-1)", lambda e: e.wait(-1)),
    ("set", lambda e: (e.set(), e.is_set(), e.wait(), e.wait(0), e.wait(T))),
    ("set twice", lambda e: (e.set(), e.is_set())),
    ("clear", lambda e: (e.clear(), e.is_set(), e.wait(0))),
)


def event_wakes(m):
    e = m.Event()
    t = threading.Thread(target=e.set)
    t.start()
    r = e.wait(LONG)
    t.join(LONG)
    return r


op("Event wait woken by a set")(event_wakes)

steps(
    "Condition",
    lambda m: m.Condition(),
    ("wait unacquired", lambda c: c.wait(T)),
    ("notify unacquired", lambda c: c.notify()),
    ("notify_all unacquired", lambda c: c.notify_all()),
    ("acquire", lambda c: c.acquire()),
    ("wait(t)", lambda c: c.wait(T)),
    ("wait(timeout=t)", lambda c: c.wait(timeout=T)),
    ("wait_for true", lambda c: c.wait_for(lambda: True, T)),
    ("wait_for false", lambda c: c.wait_for(lambda: False, T)),
    ("wait_for value", lambda c: c.wait_for(lambda: "v", T)),
    ("wait_for zero", lambda c: c.wait_for(lambda: 0, T)),
    ("notify nobody waiting", lambda c: (c.notify(), c.notify(3), c.notify_all(), c.notify(n=2))),
    ("release", lambda c: c.release()),
    ("release again", lambda c: c.release()),
    ("acquire(False) x2", lambda c: (c.acquire(False), c.acquire(False), c.release(), c.release())),
    ("acquire(timeout)", lambda c: (c.acquire(timeout=T), c.release())),
    ("with", lambda c: (c.__enter__(), c.wait(T), c.__exit__(None, None, None))),
    ("release after with", lambda c: c.release()),
)


def condition_over_lock(m):
    lock = m.Lock()
    c = m.Condition(lock)
    c.acquire()
    held = lock.acquire(False)
    waited = c.wait(T)
    c.release()
    return (held, waited, lock.acquire(False), lock.release())


def condition_wakes(m):
    c = m.Condition()
    ready = m.Event()
    woke = []

    def waiter():
        with c:
            ready.set()
            woke.append(c.wait(LONG))

    t = threading.Thread(target=waiter)
    t.start()
    ready.wait(LONG)
    # The waiter set `ready` holding the lock: once we hold it, it is waiting.
    with c:
        c.notify()
    t.join(LONG)
    return woke


op("Condition over a Lock")(condition_over_lock)
op("Condition wait woken by notify")(condition_wakes)

steps(
    "Barrier",
    lambda m: m.Barrier(2, timeout=T),
    ("attributes", lambda b: (b.parties, b.n_waiting, b.broken)),
    ("wait times out", lambda b: b.wait()),
    ("broken after timeout", lambda b: (b.broken, b.n_waiting)),
    ("wait when broken", lambda b: b.wait(T)),
    ("reset", lambda b: (b.reset(), b.broken)),
    ("abort", lambda b: (b.abort(), b.broken)),
    ("reset again", lambda b: (b.reset(), b.broken, b.n_waiting)),
)
op("Barrier(1) wait")(lambda m: m.Barrier(1).wait(LONG))
op("Barrier(3) defaults")(lambda m: (lambda b: (b.parties, b.n_waiting, b.broken))(m.Barrier(3)))
op("Barrier wait(timeout)")(lambda m: m.Barrier(2).wait(T))


def barrier_two_threads(m):
    b = m.Barrier(2)
    out = []
    t = threading.Thread(target=lambda: out.append(b.wait(LONG)))
    t.start()
    mine = b.wait(LONG)
    t.join(LONG)
    return sorted(out + [mine])


op("Barrier(2) two threads")(barrier_two_threads)

# --- Namespace ---------------------------------------------------------------------------

steps(
    "Namespace",
    lambda m: m.Namespace(a=1, b=[1, 2]),
    ("get", lambda n: (n.a, n.b)),
    ("set", lambda n: then(setattr(n, "c", {"x": (1,)}), n.c)),
    ("overwrite", lambda n: then(setattr(n, "a", "A"), n.a)),
    ("del", lambda n: then(delattr(n, "c"), hasattr(n, "c"))),
    ("missing", lambda n: n.zzz),
    ("del missing", lambda n: delattr(n, "zzz")),
    ("str", str),
    ("private attribute is local", lambda n: then(setattr(n, "_p", 1), n._p)),
    ("_getvalue", lambda n: n._getvalue()),
    ("nested value is a copy", lambda n: then(n.b.append(3), n.b)),
    ("hasattr", lambda n: (hasattr(n, "a"), hasattr(n, "nope"))),
)
op("Namespace() empty str")(lambda m: str(m.Namespace()))
op("Namespace str types")(lambda m: str(m.Namespace(x=(1,), y=b"z", z=None, w="s", v=[1.5])))

# --- Value -------------------------------------------------------------------------------

VALUES = [("c", b"x", b"y"), ("b", -5, 7), ("B", 200, 0), ("h", -300, 300), ("H", 60000, 1),
          ("i", -70000, 70000), ("I", 4000000000, 0), ("l", -2**40, 2**40), ("L", 2**63, 1),
          ("q", -2**62, 2**62), ("Q", 2**64 - 1, 0), ("f", 1.1, 0.1), ("d", 1.1, -0.0),
          ("u", "ü", "a"), ("?", True, False)]
for tc, v, w in VALUES:
    op("Value %r" % tc)(
        lambda m, tc=tc, v=v, w=w: (lambda x: (x.value, then(setattr(x, "value", w), x.value),
                                               x.get(), x.set(v), x.value))(m.Value(tc, v))
    )
op("Value _getvalue")(lambda m: repr(m.Value("i", 7)._getvalue()))
op("Value i holds a big int")(lambda m: m.Value("i", 2**40).value)
op("Value lock=False")(lambda m: m.Value("i", 1, lock=False).value)
op("Value no args")(lambda m: m.Value().value)

# --- Array -------------------------------------------------------------------------------

ARRAYS = [("b", [-1, 2, 3]), ("B", [1, 255, 0]), ("h", [-3, 4, 5]), ("H", [3, 65535, 0]),
          ("i", [1, 2, 3]), ("I", [2**32 - 1, 0, 1]), ("l", [-2**40, 0, 1]), ("L", [2**63, 1, 2]),
          ("q", [-1, 0, 1]), ("Q", [2**64 - 1, 0, 1]), ("f", [1.5, 0.1, -2.0]),
          ("d", [1.5, 0.1, -0.0])]
for tc, vs in ARRAYS:
    op("Array %r" % tc)(
        lambda m, tc=tc, vs=vs: (lambda a: (len(a), a[0], a[-1], a[1:], a[::-1], a[::2], list(a),
                                            str(a), a._getvalue(), vs[1] in a))(m.Array(tc, vs))
    )

steps(
    "Array i",
    lambda m: m.Array("i", [1, 2, 3, 4, 5]),
    ("setitem", lambda a: then(a.__setitem__(0, 10), a[0])),
    ("setitem negative", lambda a: then(a.__setitem__(-1, 50), a[:])),
    ("setitem bool", lambda a: then(a.__setitem__(1, True), a[:])),
    ("setitem float", lambda a: a.__setitem__(0, 1.5)),
    ("index out of range", lambda a: a[5]),
    ("negative index out of range", lambda a: a[-6]),
    ("str index", lambda a: a["a"]),
    ("iter", lambda a: [x for x in a]),
    ("in", lambda a: (3 in a, 99 in a)),
    ("len", len),
    ("str", str),
    loose=("setitem float", "str index"),
)
op("Array(typecode, size)")(lambda m: m.Array("i", 3)[:])
op("Array from range")(lambda m: m.Array("i", range(3))[:])
op("Array from tuple")(lambda m: m.Array("d", (1, 2))[:])
op("Array d from big int")(lambda m: m.Array("d", [1, 2**70])[:])
op("Array empty")(lambda m: (lambda a: (len(a), a[:], str(a)))(m.Array("i", [])))
op("Array c")(lambda m: (lambda a: (a[:], a[0], str(a)))(m.Array("c", b"abc")))
op("Array lock=False")(lambda m: m.Array("i", [1], lock=False)[:])
op("Array d setitem int")(lambda m: (lambda a: then(a.__setitem__(0, 3), a[:]))(m.Array("d", [1.5])))
op("Array B setitem -1", loose=True)(lambda m: m.Array("B", [1]).__setitem__(0, -1))

# --- values round trip ---------------------------------------------------------------------

ROUND_TRIP = [
    0, -1, 255, 256, 2**31 - 1, 2**31, -2**31 - 1, 2**63 - 1, 2**63, -2**63, -2**63 - 1,
    2**64 - 1, 2**64, -2**64, 2**127 - 1, -2**127 - 1, 2**128, -2**128, 10**40, -10**40,
    0.1, float("inf"), float("-inf"), float("nan"), -0.0, 5e-324, 1.7976931348623157e308,
    1 + 2j, "", "héllo ☃ 😀 \x00", "x" * 70000, b"", b"\x00\xff", b"\x01" * 70000,
    bytearray(b"ab"), bytearray(), (), (1, (2,)), ([1],), {1, 2, 3}, set(), frozenset({(1, 2)}),
    frozenset(), {"a": [{1: (2, frozenset([3]))}], (1, (2,)): None}, {1: "a", 2.5: "b", None: "c"},
    [[[[[[[[[[1]]]]]]]]]], None, True, False, (True, 1, 1.0),
    datetime.datetime(2020, 1, 2, 3, 4, 5, 6), datetime.date(2020, 1, 1),
    datetime.timedelta(1, 2, 3), datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc),
    decimal.Decimal("1.10"), fractions.Fraction(1, 3), slice(1, None, 2), range(3),
    array.array("i", [1, 2]),
]


def described(v):
    return (v, type(v).__name__)


for i, v in enumerate(ROUND_TRIP):
    label = repr(v) if len(repr(v)) < 40 else "%s#%d" % (type(v).__name__, i)
    op("round trip Queue %s" % label)(
        lambda m, v=v: (lambda q: then(q.put(v), described(q.get(timeout=LONG))))(m.Queue())
    )
    op("round trip dict %s" % label)(
        lambda m, v=v: (lambda d: then(d.__setitem__("k", v), (described(d["k"]), d.copy() == {"k": v})))(m.dict())
    )

op("round trip list of all")(lambda m: [described(x) for x in m.list(ROUND_TRIP)[:]])
op("round trip Namespace")(lambda m: (lambda n: then(setattr(n, "x", ROUND_TRIP), n.x))(m.Namespace()))

# --- proxies inside values -----------------------------------------------------------------


def proxy_in_dict(m):
    d = m.dict()
    lp = m.list([1, 2])
    d["l"] = lp
    back = d["l"]
    back.append(3)
    return (type(back).__name__, lp[:], back[:], str(back), back == [1, 2, 3],
            type(d.copy()["l"]).__name__)


def queue_proxy_in_dict(m):
    d = m.dict()
    q = m.Queue()
    d["q"] = q
    d["q"].put(5)
    return q.get(timeout=LONG)


def lock_proxy_in_dict(m):
    d = m.dict()
    lock = m.Lock()
    d["lk"] = lock
    return (d["lk"].acquire(False), lock.acquire(False), lock.release(), d["lk"].acquire(False))


def dict_proxy_in_list(m):
    dd = m.dict(x=1)
    l = m.list([dd])
    l[0]["y"] = 2
    return (l[0]["x"], l[0].get("y"), dd.copy())


def proxy_through_queue(m):
    q = m.Queue()
    q.put(m.dict(y=2))
    got = q.get(timeout=LONG)
    return (type(got).__name__, got.copy())


def proxy_in_namespace(m):
    n = m.Namespace()
    lp = m.list([1])
    n.l = lp
    n.l.append(2)
    return lp[:]


def proxy_in_tuple_in_dict(m):
    d = m.dict()
    lp = m.list([1])
    d["t"] = (lp, 1)
    t = d["t"]
    t[0].append(2)
    return (type(t[0]).__name__, t[1], lp[:])


def proxy_outlives_its_maker(m):
    d = m.dict()
    d["tmp"] = m.list([7, 8])
    return d["tmp"][:]


op("proxy stored in a dict, used after reading back")(proxy_in_dict)
op("Queue proxy stored in a dict")(queue_proxy_in_dict)
op("Lock proxy stored in a dict")(lock_proxy_in_dict)
op("dict proxy stored in a list")(dict_proxy_in_list)
op("proxy sent through a Queue")(proxy_through_queue)
op("proxy stored in a Namespace")(proxy_in_namespace)
op("proxy inside a tuple in a dict")(proxy_in_tuple_in_dict)
op("nested proxy kept alive by its container")(proxy_outlives_its_maker)
op("dict.update(dict proxy)")(lambda m: (lambda d: then(d.update(m.dict(a=1, b=[2])), d.copy()))(m.dict(z=0)))
op("list.extend(list proxy)")(lambda m: (lambda l: then(l.extend(m.list([2, (3,)])), l[:]))(m.list([1])))
op("list += list proxy")(lambda m: (lambda l: then(l.__iadd__(m.list([2])), l[:]))(m.list([1])))

# --- run ---------------------------------------------------------------------------------


def watchdog(cpython):
    """Nothing here should block for long. If something does, dump the stacks, stop
    CPython's server (a forked process holding our stdout) and fail."""
    faulthandler.dump_traceback()
    print("TIMEOUT", flush=True)
    cpython._process.terminate()
    os._exit(2)


def main():
    cpython = mm.SyncManager(authkey=key)
    cpython.start()
    timer = threading.Timer(WATCHDOG, watchdog, (cpython,))
    timer.daemon = True
    timer.start()
    try:
        node = mm.SyncManager(address=(host, port), authkey=key)
        node.connect()
        MANAGERS[cpython.address] = cpython
        MANAGERS[node.address] = node
        print(sys.version.split()[0], flush=True)
        matched = 0
        for name, fn, loose in OPS:
            want = outcome(fn, cpython, loose)
            got = outcome(fn, node, loose)
            if want == got:
                matched += 1
                print("PASS %s" % name, flush=True)
            else:
                print("DIFF %s: cpython=%s syncman=%s" % (name, want, got), flush=True)
        print("DONE %d/%d" % (matched, len(OPS)), flush=True)
        return 0 if matched == len(OPS) else 1
    finally:
        timer.cancel()
        cpython.shutdown()


if __name__ == "__main__":
    sys.exit(main())
