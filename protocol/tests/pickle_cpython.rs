//! The pickle codec against real CPython 3.11 (`python3`), 3.12 (`PYENV_VERSION=3.12.1 python3`)
//! and 3.13 (`PYENV_VERSION=3.13.0 python3`). A version whose interpreter is missing (pyenv
//! refuses it, or silently runs another version) is skipped with a note.
//!
//! One Python process per version runs [`SCRIPT`]:
//! 1. it pickles a corpus (`corpus()` in the script) with protocols 0-5 and prints each as
//!    `CASE <index> <name> <protocol> <hex>`, then `END`;
//! 2. Rust `loads` each (checking some decoded shapes itself, see [`check_decoded`]) and
//!    answers `RT <index> <hex of dumps(value)> <hex of dumps(normalize(value))>`, plus
//!    `SHAPE <name> <hex>` lines for the replies the server builds ([`shapes`]);
//! 3. Python `pickle.loads` every answer with both the C and the pure-Python unpickler,
//!    compares with the original value (`same()`: `==`, plus `repr` for floats and the type
//!    and state of objects), prints `FAIL ...` for each mismatch and `SUMMARY checked=N
//!    failed=M` last.
//!
//! Proxies are loaded with an unpickler that turns `RebuildProxy(...)` into a tuple (running it
//! would connect to a manager); the user classes live in a module written to a temporary
//! directory on `PYTHONPATH`.
//!
//! The same exchange checks [`check_globals`]: every corpus pickle, plus `ORDINARY` pickles of
//! more everyday values (enums, nested classes, dataclasses, uuid, pathlib, re, zoneinfo,
//! logging records, method references, ...), must pass it, and every `HOSTILE` pickle
//! (reducers calling `os.system`, `eval`, `subprocess`, name resolvers, nested unpicklers,
//! bound methods of built objects, ...) must be refused, in every protocol.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use syncman_protocol::pickle::{
    as_complex, as_global, as_range, as_rebuild_proxy, as_slice, as_token, check_globals, dumps,
    exception, global, loads, normalize, token, Limits, Pickle, PickleErrorKind, SliceArgs,
    MANAGERS,
};
// Included by path: the protocol crate cannot depend on the test package.
#[allow(dead_code)]
#[path = "../../tests/support/python.rs"]
mod python;
use python::Py;

/// How long one interpreter may take for the whole exchange.
const DEADLINE: Duration = Duration::from_secs(120);

/// The Python side (see the module docs).
const SCRIPT: &str = r##"
import sys, io, math, pickle, datetime, decimal, fractions, collections, array, queue, threading
import multiprocessing.managers as mm
import usermod

print("VERSION %d.%d" % sys.version_info[:2], flush=True)


class SafeUnpickler(pickle.Unpickler):
    """Loads a RebuildProxy as a plain tuple: running it would connect to a manager."""

    def find_class(self, module, name):
        if (module, name) == ("multiprocessing.managers", "RebuildProxy"):
            return lambda *args: ("RebuildProxy",) + args
        return pickle.Unpickler.find_class(self, module, name)


class SafePyUnpickler(pickle._Unpickler):
    """The same, on the pure-Python unpickler."""

    def find_class(self, module, name):
        if (module, name) == ("multiprocessing.managers", "RebuildProxy"):
            return lambda *args: ("RebuildProxy",) + args
        return pickle._Unpickler.find_class(self, module, name)


def safe_loads(data, pure=False):
    cls = SafePyUnpickler if pure else SafeUnpickler
    return cls(io.BytesIO(data)).load()


def same(a, b):
    """Equality that also sees nan, -0.0, object state and container subclasses."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (float, complex)):
        return repr(a) == repr(b)
    if isinstance(a, mm.Token):
        return (a.typeid, a.address, a.id) == (b.typeid, b.address, b.id)
    if isinstance(a, BaseException):
        return same(a.args, b.args) and same(vars(a), vars(b))
    if isinstance(a, (list, tuple)):
        if len(a) != len(b) or not all(same(x, y) for x, y in zip(a, b)):
            return False
    elif isinstance(a, dict):
        ia, ib = list(a.items()), list(b.items())
        if len(ia) != len(ib):
            return False
        for (ka, va), (kb, vb) in zip(ia, ib):
            if not (same(ka, kb) and same(va, vb)):
                return False
        if getattr(a, "default_factory", None) is not getattr(b, "default_factory", None):
            return False
    elif isinstance(a, (set, frozenset, array.array, datetime.date, datetime.time,
                        decimal.Decimal, fractions.Fraction, range, slice, str, bytes,
                        bytearray, int, type(None))):
        if a != b:
            return False
    elif not hasattr(a, "__dict__") and not hasattr(type(a), "__slots__"):
        return a == b
    slots = getattr(type(a), "__slots__", ())
    if not all(same(getattr(a, s, None), getattr(b, s, None)) for s in slots):
        return False
    # The instance's own attributes (a subclass of a builtin, a user class).
    return not hasattr(a, "__dict__") or same(vars(a), vars(b))


def corpus():
    shared = [1]
    exc = RuntimeError("r")
    exc.note = 1
    ul = usermod.MyList([1, 2, 3])
    ul.tag = "t"
    ud = usermod.MyDict(a=1, b=[2])
    ud.tag = "d"
    us = usermod.MySet({1, 2})
    token = mm.Token("dict", ("127.0.0.1", 50111), "7f5a022d9380")
    qtoken = mm.Token("Queue", ("127.0.0.1", 50111), "7f5a022d9f10")
    recursive = []
    recursive.append(recursive)
    deep = []
    for _ in range(150):
        deep = [deep]
    return [
        ("none", None), ("true", True), ("false", False),
        ("int0", 0), ("int_neg1", -1), ("int255", 255), ("int256", 256), ("int65535", 65535),
        ("int65536", 65536), ("int_i32min", -2**31), ("int_2_31", 2**31),
        ("int_2_64", 2**64), ("int_neg_2_100", -2**100), ("int_10_30", 10**30),
        ("int_huge", 3**2000), ("int_neg_huge", -(7**900)),
        ("float", 1.5), ("nan", math.nan), ("inf", math.inf), ("ninf", -math.inf),
        ("negzero", -0.0), ("denormal", 5e-324), ("float_1e16", 1e16),
        ("str", "hello"), ("str_empty", ""), ("surrogate", "\ud800"),
        ("surrogates_mixed", "a\udfffb\ud83d\ude00"), ("emoji", "\U0001f600 caf\xe9 \u20ac"),
        ("str_controls", "a\\b\nc\r\x00\x1a'\"\\u0041"), ("str_long", "x" * 70000),
        ("bytes", b"\x00\xff abc"), ("bytes_empty", b""), ("bytes_long", bytes(range(256)) * 300),
        ("bytearray", bytearray(b"ba\x00\xff")), ("bytearray_empty", bytearray()),
        ("tuple0", ()), ("tuple1", (1,)), ("tuple3", (1, "a", None)), ("tuple5", (1, 2, 3, 4, 5)),
        ("list", [1, 2.5, "x", [3, [4]]]), ("list_empty", []), ("list_big", list(range(2500))),
        ("dict_nested", {"a": {"b": {"c": [1, {"d": None}]}}, 1: (2, 3), (4, 5): b"x"}),
        ("dict_big", {i: str(i) for i in range(1200)}),
        ("set", {1, 2, 3}), ("set_empty", set()), ("frozenset", frozenset({"a", "b"})),
        ("frozenset_empty", frozenset()), ("sets_nested", ({1}, frozenset({2, frozenset({3})}))),
        ("complex", 1 + 2j), ("complex_j", 1j),
        ("slice", slice(1, None, None)), ("slice3", slice(-5, 10, 2)),
        ("range", range(3)), ("range3", range(10, 0, -3)),
        ("datetime", datetime.datetime(2024, 2, 29, 12, 30, 15, 123456)),
        ("datetime_tz", datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)),
        ("date", datetime.date(2020, 1, 2)), ("timedelta", datetime.timedelta(days=1, seconds=5)),
        ("decimal", decimal.Decimal("3.14159")), ("fraction", fractions.Fraction(22, 7)),
        ("ordered_dict", collections.OrderedDict([("z", 1), ("a", 2)])),
        ("defaultdict", collections.defaultdict(list, {"k": [1]})),
        ("deque", collections.deque([1, 2])),
        ("array_d", array.array("d", [1.0, 2.0])), ("array_i", array.array("i", [1, -2])),
        ("key_error", KeyError("x")), ("queue_empty", queue.Empty()), ("queue_full", queue.Full()),
        ("value_error", ValueError("bad", 2)), ("exc_with_attr", exc),
        ("broken_barrier", threading.BrokenBarrierError()),
        ("user_point", usermod.Point(1, [2, "y"])), ("user_slots", usermod.Slotted(1, "b")),
        ("user_kwonly", usermod.KwOnly(x=5)),
        ("user_list", ul), ("user_dict", ud), ("user_set", us),
        ("shared", [shared, shared]), ("shared_nested", {"x": shared, "y": [shared, (shared,)]}),
        ("shared_str", ["same string " * 3] * 3),
        ("token", token),
        ("proxy_dict", mm.DictProxy(token, "pickle", incref=False)),
        ("proxy_auto", mm.AutoProxy(qtoken, "pickle", exposed=("get", "put"), incref=False)),
        ("mixed", (None, True, False, 0, 255, 256, 65535, 65536, -1, -2**31, 2**31, 2**63, 2**64,
                   -2**64, 10**30, 1.5, "caf\xe9", b"\x00\xff", [1, 2], {"k": "v"}, {1, 2},
                   frozenset({3}), bytearray(b"ba"), 1j)),
        ("deep", deep),
        ("recursive", recursive),
    ]


class Evil:
    """A reducer calling `f(*a)` on whoever unpickles it."""

    def __init__(self, f, *a):
        self.f, self.a = f, a

    def __reduce__(self):
        return (self.f, self.a)


def ordinary():
    """Everyday values check_globals must let through (beyond the corpus)."""
    import enum, functools, ipaddress, logging, operator, os, pathlib, re, signal, socket
    import string, subprocess, time, types, uuid, zoneinfo
    record = logging.LogRecord("name", 10, "path.py", 1, "msg %s", ("a",), None)
    return [
        ("enum", usermod.Color.RED), ("int_flag", usermod.Perm.R | usermod.Perm.W),
        ("nested_class", usermod.Outer.Inner()), ("nested_enum", usermod.Outer.Kind.A),
        ("namedtuple", usermod.Pair(1, 2)), ("dataclass", usermod.Data(1, [2])),
        ("uuid", uuid.UUID(int=5)), ("path", pathlib.Path("/a/b")),
        ("pure_path", pathlib.PureWindowsPath("c:/x")), ("pattern", re.compile("a+", re.I)),
        ("namespace", types.SimpleNamespace(a=1)), ("zoneinfo", zoneinfo.ZoneInfo("UTC")),
        ("ip", ipaddress.ip_address("10.1.2.3")), ("network", ipaddress.ip_network("10.0.0.0/8")),
        ("struct_time", time.gmtime(0)), ("stat_result", os.stat_result(tuple(range(10)))),
        ("terminal_size", os.terminal_size((80, 24))), ("signal", signal.SIGTERM),
        ("address_family", socket.AF_INET), ("log_record", record),
        ("logger", logging.getLogger("x")),
        ("completed_process", subprocess.CompletedProcess(["ls"], 0, b"out")),
        ("called_process_error", subprocess.CalledProcessError(1, "cmd")),
        ("timeout_expired", subprocess.TimeoutExpired("cmd", 1.0)),
        ("partial", functools.partial(max, 1)), ("counter", collections.Counter("aab")),
        ("chain_map", collections.ChainMap({1: 2})), ("user_dict", collections.UserDict(a=1)),
        ("union_type", int | str), ("generic_alias", list[int]), ("none_type", type(None)),
        ("not_implemented", NotImplemented), ("ellipsis", Ellipsis), ("int_type", int),
        ("classmethod_ref", usermod.WithMethods.cm), ("staticmethod_ref", usermod.WithMethods.sm),
        ("function_ref", usermod.WithMethods.m), ("dict_fromkeys", dict.fromkeys),
        ("template", string.Template("$a")), ("decimal_context", decimal.Context()),
        ("bytes_io", io.BytesIO(b"x")), ("string_io", io.StringIO("x")),
        ("time", datetime.time(1, 2, tzinfo=datetime.timezone.utc)),
        ("remote_error", mm.RemoteError("x")),
        ("authentication_error", __import__("multiprocessing").AuthenticationError("x")),
        ("item_getter", operator.itemgetter(1)), ("namespace_obj", mm.Namespace(a=1)),
    ]


def hostile():
    """Pickles check_globals must refuse."""
    import atexit, codecs, code, ctypes, functools, gc, importlib, inspect, _thread, os
    import logging.config, marshal, multiprocessing.connection, multiprocessing.util
    import operator, pathlib, pkgutil, platform, pydoc, runpy, shutil, signal, socket
    import subprocess, tempfile, timeit, types, typing, urllib.request, webbrowser
    return [
        ("os_system", Evil(os.system, "echo hi")), ("os_popen", Evil(os.popen, "id")),
        ("os_execv", Evil(os.execv, "/bin/sh", ["sh"])), ("os_fork", Evil(os.fork)),
        ("subprocess_run", Evil(subprocess.run, ["id"])),
        ("subprocess_popen", Evil(subprocess.Popen, ["id"])),
        ("eval", Evil(eval, "1+1")), ("exec", Evil(exec, "import os")),
        ("compile", Evil(compile, "1", "f", "eval")), ("import", Evil(__import__, "os")),
        ("open", Evil(open, "/tmp/x", "w")), ("setattr", Evil(setattr, usermod.Point, "x", 1)),
        ("import_module", Evil(importlib.import_module, "os")),
        ("pydoc_locate", Evil(pydoc.locate, "os.system")),
        ("resolve_name", Evil(pkgutil.resolve_name, "os:system")),
        ("runpy", Evil(runpy.run_path, "/tmp/x.py")),
        ("interpreter", Evil(code.InteractiveInterpreter)),
        ("marshal", Evil(marshal.loads, b"")), ("pickle_loads", Evil(pickle.loads, b"N.")),
        ("webbrowser", Evil(webbrowser.open, "http://x")),
        ("ctypes", Evil(ctypes.CDLL, "libc.so.6")),
        ("socket", Evil(socket.create_connection, ("localhost", 1))),
        ("rmtree", Evil(shutil.rmtree, "/tmp/x")), ("mkstemp", Evil(tempfile.mkstemp)),
        ("atexit", Evil(atexit.register, print)),
        ("type_hints", Evil(typing.get_type_hints, types.SimpleNamespace())),
        ("attrgetter", operator.attrgetter("a.b")), ("methodcaller", operator.methodcaller("x")),
        ("partial_system", functools.partial(os.system, "id")),
        ("timeit", Evil(timeit.timeit, "import os")),
        ("urlopen", Evil(urllib.request.urlopen, "http://x")),
        ("spawnv_passfds", Evil(multiprocessing.util.spawnv_passfds, "/bin/sh", ["sh"], ())),
        ("connection_client", Evil(multiprocessing.connection.Client, ("localhost", 1))),
        ("sys_exit", Evil(sys.exit, 1)), ("raise_signal", Evil(signal.raise_signal, 9)),
        ("platform", Evil(platform.uname)), ("codecs_open", Evil(codecs.open, "/tmp/x", "w")),
        ("file_config", Evil(logging.config.fileConfig, "/tmp/x")),
        ("start_new_thread", Evil(_thread.start_new_thread, print, ())),
        ("copyreg_pickle", Evil(__import__("copyreg").pickle, int, print)),
        ("getmembers", Evil(inspect.getmembers, usermod.Point)), ("gc", Evil(gc.get_objects)),
        ("str_format", Evil(str.format, "{0.__class__}", 1)),
        ("make_class", Evil(type, "X", (object,), {})),
        ("bound_method", pathlib.Path("/tmp/x").write_text),
        ("nested_eval", [1, {"k": (Evil(eval, "1"),)}]),
        ("user_state_system", usermod.Point(1, Evil(os.system, "id"))),
    ]


def main():
    for tag, values in (("ORDINARY", ordinary()), ("HOSTILE", hostile())):
        for name, value in values:
            for proto in range(6):
                try:
                    data = pickle.dumps(value, proto)
                except Exception as e:
                    print("SKIP", name, proto, type(e).__name__, e, flush=True)
                    continue
                print(tag, name, proto, data.hex())
    cases = []
    for name, value in corpus():
        for proto in range(6):
            try:
                data = pickle.dumps(value, proto)
            except Exception as e:
                print("SKIP", name, proto, type(e).__name__, e, flush=True)
                continue
            expected = safe_loads(data) if name.startswith("proxy") else value
            cases.append((name, proto, expected))
            print("CASE", len(cases) - 1, name, proto, data.hex())
    print("END", flush=True)

    checked = failed = 0

    def fail(*what):
        nonlocal failed
        failed += 1
        print("FAIL", *what, flush=True)

    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "RT":
            i, hexes = int(parts[1]), parts[2:]
            name, proto, expected = cases[i]
            for label, h in zip(("dumps", "normalize+dumps"), hexes):
                for pure in (False, True):
                    checked += 1
                    try:
                        got = safe_loads(bytes.fromhex(h), pure)
                    except Exception as e:
                        fail(name, "protocol", proto, label, "pure" if pure else "C",
                             "pickle.loads raised", repr(e))
                        continue
                    try:
                        equal = same(got, expected)
                    except RecursionError:
                        fail(name, "protocol", proto, label, "comparison recursed")
                        continue
                    if not equal:
                        fail(name, "protocol", proto, label, "pure" if pure else "C",
                             "got", repr(got)[:300], "expected", repr(expected)[:300])
        elif parts[0] == "SHAPE":
            name, data = parts[1], bytes.fromhex(parts[2])
            checked += 1
            try:
                v = pickle.loads(data)
            except Exception as e:
                fail("shape", name, "pickle.loads raised", repr(e))
                continue
            ok = SHAPES[name](v)
            if not ok:
                fail("shape", name, "got", repr(v))
        else:
            fail("unknown line", line[:100])
    print("SUMMARY checked=%d failed=%d" % (checked, failed), flush=True)


def is_token(v, typeid, address, ident):
    return type(v) is mm.Token and (v.typeid, v.address, v.id) == (typeid, address, ident)


SHAPES = {
    "key_error": lambda v: type(v) is KeyError and v.args == ("x",),
    "queue_empty": lambda v: type(v) is queue.Empty and v.args == (),
    "stop_iteration": lambda v: type(v) is StopIteration and v.args == (),
    "value_error": lambda v: type(v) is ValueError and v.args == ("99 is not in list",),
    "broken_barrier": lambda v: type(v) is threading.BrokenBarrierError,
    "token": lambda v: is_token(v, "dict", ("127.0.0.1", 50111), "7f5a022d9380"),
    "token_unix": lambda v: is_token(v, "Queue", "/tmp/sock", "ab"),
    "reply_error": lambda v: type(v) is tuple and v[0] == "#ERROR" and type(v[1]) is KeyError
    and v[1].args == ("missing",),
    "reply_proxy": lambda v: v[0] == "#PROXY" and v[1][0] == ("__next__", "send")
    and is_token(v[1][1], "Iterator", ("127.0.0.1", 50111), "7f5a022c6c50"),
    "bytearray": lambda v: type(v) is bytearray and v == b"ba\x00",
}

main()
"##;

/// `usermod.py`: the user classes of the corpus.
const USERMOD: &str = r##""""User classes for syncman's pickle interop test: kept opaque by the Rust codec."""


class Point:
    def __init__(self, x, y):
        self.x = x
        self.y = y


class Slotted:
    __slots__ = ("a", "b")

    def __init__(self, a, b):
        self.a = a
        self.b = b


class KwOnly:
    """Pickled with NEWOBJ_EX (protocol 4+): __new__ takes keyword arguments."""

    def __new__(cls, *, x):
        self = super().__new__(cls)
        self.x = x
        return self

    def __getnewargs_ex__(self):
        return (), {"x": self.x}


class MyList(list):
    pass


class MyDict(dict):
    pass


class MySet(set):
    pass


import collections, dataclasses, enum


class Color(enum.Enum):
    RED = 1


class Perm(enum.IntFlag):
    R = 4
    W = 2


class Outer:
    class Inner:
        def __init__(self):
            self.v = 1

    class Kind(enum.Enum):
        A = "a"


@dataclasses.dataclass
class Data:
    a: int
    b: list


Pair = collections.namedtuple("Pair", "x y")


class WithMethods:
    def m(self):
        pass

    @classmethod
    def cm(cls):
        pass

    @staticmethod
    def sm():
        pass
"##;

#[test]
fn cpython_round_trips_through_the_rust_codec() {
    let dir = std::env::temp_dir().join(format!("syncman-pickle-cpython-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("usermod.py"), USERMOD).unwrap();
    let mut failures = Vec::new();
    let mut ran = 0;
    for py in [Py::V311, Py::V312, Py::V313] {
        match run(py, &dir) {
            Ok(report) => {
                ran += 1;
                println!(
                    "CPython {}: {} pickles decoded ({} refused by CPython itself), {} ordinary \
                     and {} hostile pickles for check_globals, {} Rust-side checks, {} \
                     Python-side checks, {} failures",
                    py.version(),
                    report.cases,
                    report.skipped,
                    report.ordinary,
                    report.hostile,
                    report.rust_checks,
                    report.python_checks,
                    report.failures.len()
                );
                failures.extend(
                    report
                        .failures
                        .into_iter()
                        .map(|f| format!("CPython {}: {f}", py.version())),
                );
            }
            Err(Skip(why)) => println!("NOTE: skipping CPython {}: {why}", py.version()),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    if ran == 0 {
        println!("NOTE: no CPython interpreter available; nothing was checked");
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

struct Skip(String);

#[derive(Default)]
struct Report {
    cases: usize,
    /// `ORDINARY` and `HOSTILE` pickles checked with `check_globals`.
    ordinary: usize,
    hostile: usize,
    skipped: usize,
    rust_checks: usize,
    python_checks: usize,
    failures: Vec<String>,
}

struct Case {
    index: usize,
    name: String,
    proto: u8,
    data: Vec<u8>,
}

fn run(py: Py, dir: &Path) -> Result<Report, Skip> {
    let mut cmd = py.command();
    cmd.arg("-c")
        .arg(SCRIPT)
        .env("PYTHONPATH", dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| Skip(format!("cannot run {}: {e}", py.command_line())))?;
    let (stdin, stdout, mut stderr) = (
        child.stdin.take().unwrap(),
        child.stdout.take().unwrap(),
        child.stderr.take().unwrap(),
    );
    let child = Arc::new(Mutex::new(child));
    let _watchdog = Watchdog::start(child.clone());
    let stderr_text = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut lines = BufReader::new(stdout).lines();

    // The interpreter must be the version asked for (pyenv may fall back silently).
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    let expected = format!("VERSION {}", py.version());
    if first != expected {
        let _ = child.lock().unwrap().kill();
        drop(stdin);
        let _ = child.lock().unwrap().wait();
        let stderr = stderr_text.join().unwrap_or_default();
        return Err(Skip(format!(
            "{} printed {first:?} instead of {expected:?} ({})",
            py.command_line(),
            stderr.trim()
        )));
    }

    let mut report = Report::default();
    let mut cases = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("reading the script's output");
        let mut parts = line.split(' ');
        match parts.next() {
            Some("CASE") => {
                let (index, name, proto, hex) = (
                    parts.next().unwrap().parse().unwrap(),
                    parts.next().unwrap().to_string(),
                    parts.next().unwrap().parse().unwrap(),
                    parts.next().unwrap(),
                );
                cases.push(Case {
                    index,
                    name,
                    proto,
                    data: unhex(hex),
                });
            }
            Some(tag @ ("ORDINARY" | "HOSTILE")) => {
                let (name, proto, hex) = (
                    parts.next().unwrap(),
                    parts.next().unwrap(),
                    parts.next().unwrap(),
                );
                report.rust_checks += 1;
                if tag == "HOSTILE" {
                    report.hostile += 1;
                } else {
                    report.ordinary += 1;
                }
                if let Err(why) = check_global_case(tag == "HOSTILE", &unhex(hex)) {
                    report
                        .failures
                        .push(format!("{tag} {name} (protocol {proto}): {why}"));
                }
            }
            Some("SKIP") => report.skipped += 1,
            Some("END") => break,
            _ => report.failures.push(format!("unexpected output: {line}")),
        }
    }
    report.cases = cases.len();

    // Decode everything, check what we can here, and prepare the answers.
    let limits = Limits::default();
    let mut answers = String::new();
    for case in &cases {
        let label = format!("{} (protocol {})", case.name, case.proto);
        let decoded = loads(&case.data, &limits);
        if case.name == "recursive" {
            report.rust_checks += 1;
            match decoded {
                Err(e) if e.kind == PickleErrorKind::Recursive => {}
                other => report.failures.push(format!(
                    "{label}: expected the recursion error, got {other:?}"
                )),
            }
            continue;
        }
        let value = match decoded {
            Ok(v) => v,
            Err(e) => {
                report.failures.push(format!("{label}: loads failed: {e}"));
                continue;
            }
        };
        report.rust_checks += 1;
        if let Err(why) = check_decoded(&case.name, case.proto, &value) {
            report.failures.push(format!("{label}: {why}"));
        }
        report.rust_checks += 1;
        if let Err(e) = check_global_case(false, &case.data) {
            report.failures.push(format!("{label}: {e}"));
        }
        let plain = dumps(&value);
        let normal = dumps(&normalize(value.clone()));
        for (what, bytes) in [("dumps", &plain), ("normalize+dumps", &normal)] {
            report.rust_checks += 1;
            match loads(bytes, &limits) {
                Ok(back) if what == "dumps" && back != value => report
                    .failures
                    .push(format!("{label}: loads(dumps(v)) != v: {back:?}")),
                Ok(_) => {}
                Err(e) => report
                    .failures
                    .push(format!("{label}: loads({what}) failed: {e}")),
            }
        }
        answers.push_str(&format!(
            "RT {} {} {}\n",
            case.index,
            hex(&plain),
            hex(&normal)
        ));
    }
    for (name, value) in shapes() {
        answers.push_str(&format!("SHAPE {name} {}\n", hex(&dumps(&value))));
    }

    // Answer from a thread: Python reports while it reads, and both pipes are bounded.
    let writer = std::thread::spawn(move || {
        let mut stdin = stdin;
        let _ = stdin.write_all(answers.as_bytes());
    });
    let mut summary = None;
    let mut rest = Vec::new();
    for line in lines {
        let line = line.expect("reading the script's output");
        if let Some(fail) = line.strip_prefix("FAIL ") {
            report.failures.push(format!("Python: {fail}"));
        } else if let Some(s) = line.strip_prefix("SUMMARY ") {
            summary = Some(s.to_string());
        } else {
            rest.push(line);
        }
    }
    let _ = writer.join();
    let status = child.lock().unwrap().wait();
    let stderr = stderr_text.join().unwrap_or_default();
    let status_ok = status.as_ref().is_ok_and(|s| s.success());
    match summary.as_deref().and_then(parse_summary) {
        Some((checked, _)) if status_ok => report.python_checks = checked,
        _ => report.failures.push(format!(
            "the script did not finish: {status:?}, summary {summary:?}\nstdout: {}\nstderr: {stderr}",
            rest.join("\n")
        )),
    }
    Ok(report)
}

/// Loads `data`, which must succeed, and checks its globals (and its normal form's): refused
/// if `hostile`, else accepted.
fn check_global_case(hostile: bool, data: &[u8]) -> Result<(), String> {
    let value = loads(data, &Limits::default()).map_err(|e| format!("loads failed: {e}"))?;
    let normal = normalize(value.clone());
    match (check_globals(&value), check_globals(&normal)) {
        (Ok(()), Ok(())) if hostile => Err(format!("check_globals accepted {value:?}")),
        (Err(e), _) | (_, Err(e)) if !hostile => Err(format!("check_globals refused it: {e}")),
        (Ok(()), Err(e)) => Err(format!("accepted, but its normal form is refused: {e}")),
        _ => Ok(()),
    }
}

fn parse_summary(s: &str) -> Option<(usize, usize)> {
    let mut it = s.split(' ');
    let checked = it.next()?.strip_prefix("checked=")?.parse().ok()?;
    let failed = it.next()?.strip_prefix("failed=")?.parse().ok()?;
    Some((checked, failed))
}

/// Kills the child if the exchange outlives [`DEADLINE`].
struct Watchdog {
    done: Arc<Mutex<bool>>,
}

impl Watchdog {
    fn start(child: Arc<Mutex<Child>>) -> Watchdog {
        let done = Arc::new(Mutex::new(false));
        let flag = done.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            while start.elapsed() < DEADLINE {
                std::thread::sleep(Duration::from_millis(100));
                if *flag.lock().unwrap() {
                    return;
                }
            }
            eprintln!("pickle_cpython: the Python side took longer than {DEADLINE:?}; killing it");
            if let Ok(mut child) = child.try_lock() {
                let _ = child.kill();
            }
        });
        Watchdog { done }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        *self.done.lock().unwrap() = true;
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn s(v: &str) -> Pickle {
    Pickle::Str(v.to_string())
}

fn address() -> Pickle {
    Pickle::Tuple(vec![s("127.0.0.1"), Pickle::Int(50111)])
}

/// The replies the server builds; the script checks what CPython makes of each.
fn shapes() -> Vec<(&'static str, Pickle)> {
    let key_error = |key: &str| exception("builtins", "KeyError", vec![s(key)]);
    vec![
        ("key_error", key_error("x")),
        ("queue_empty", exception("queue", "Empty", vec![])),
        (
            "stop_iteration",
            exception("builtins", "StopIteration", vec![]),
        ),
        (
            "value_error",
            exception("builtins", "ValueError", vec![s("99 is not in list")]),
        ),
        (
            "broken_barrier",
            exception("threading", "BrokenBarrierError", vec![]),
        ),
        ("token", token("dict", address(), "7f5a022d9380")),
        ("token_unix", token("Queue", s("/tmp/sock"), "ab")),
        (
            "reply_error",
            Pickle::Tuple(vec![s("#ERROR"), key_error("missing")]),
        ),
        (
            "reply_proxy",
            Pickle::Tuple(vec![
                s("#PROXY"),
                Pickle::Tuple(vec![
                    Pickle::Tuple(vec![s("__next__"), s("send")]),
                    token("Iterator", address(), "7f5a022c6c50"),
                ]),
            ]),
        ),
        ("bytearray", Pickle::ByteArray(b"ba\x00".to_vec())),
    ]
}

/// What the decoder must make of some corpus entries (every protocol).
fn check_decoded(name: &str, proto: u8, v: &Pickle) -> Result<(), String> {
    let n = normalize(v.clone());
    let ok = |good: bool, what: &str| {
        if good {
            Ok(())
        } else {
            Err(format!("expected {what}, decoded {v:?}"))
        }
    };
    let int = Pickle::Int;
    match name {
        "none" => ok(*v == Pickle::None, "None"),
        "true" => ok(*v == Pickle::Bool(true), "True"),
        "int_i32min" => ok(*v == int(-(1 << 31)), "-2**31"),
        "int_2_64" => ok(*v == int(1 << 64), "2**64"),
        "int_neg_2_100" => ok(*v == int(-(1 << 100)), "-2**100"),
        "int_10_30" => ok(*v == int(10i128.pow(30)), "10**30"),
        "int_huge" | "int_neg_huge" => ok(matches!(v, Pickle::BigInt(_)), "a BigInt"),
        "nan" => ok(matches!(v, Pickle::Float(f) if f.is_nan()), "nan"),
        "negzero" => ok(*v == Pickle::Float(-0.0), "-0.0"),
        "surrogate" => ok(
            *v == Pickle::SurrogateStr(vec![0xed, 0xa0, 0x80]),
            "'\\ud800'",
        ),
        "surrogates_mixed" => ok(
            v.code_points() == Some(vec![0x61, 0xdfff, 0x62, 0xd83d, 0xde00]),
            "five code points",
        ),
        "emoji" => ok(*v == s("\u{1f600} caf\u{e9} \u{20ac}"), "the emoji string"),
        "bytes" => ok(
            n == Pickle::Bytes(b"\x00\xff abc".to_vec()),
            "bytes once normalised",
        ),
        "bytearray" => ok(
            n == Pickle::ByteArray(b"ba\x00\xff".to_vec()),
            "a bytearray once normalised",
        ),
        "set" => ok(
            matches!(&n, Pickle::Set(items) if items.len() == 3),
            "a 3-item set once normalised",
        ),
        "frozenset" => ok(
            matches!(&n, Pickle::FrozenSet(items) if items.len() == 2),
            "a 2-item frozenset once normalised",
        ),
        "sets_nested" => ok(
            match &n {
                Pickle::Tuple(t) => match t.as_slice() {
                    [Pickle::Set(_), Pickle::FrozenSet(f)] => {
                        f.iter().any(|x| matches!(x, Pickle::FrozenSet(_)))
                    }
                    _ => false,
                },
                _ => false,
            },
            "(set, frozenset holding a frozenset) once normalised",
        ),
        "complex" => ok(as_complex(v) == Some((1.0, 2.0)), "complex(1, 2)"),
        "slice" => ok(
            as_slice(v)
                == Some(SliceArgs {
                    start: Some(1),
                    stop: None,
                    step: None,
                }),
            "slice(1, None, None)",
        ),
        "slice3" => ok(
            as_slice(v)
                == Some(SliceArgs {
                    start: Some(-5),
                    stop: Some(10),
                    step: Some(2),
                }),
            "slice(-5, 10, 2)",
        ),
        "range" => ok(
            as_range(v).map(|r| (r.start, r.stop, r.step)) == Some((0, 3, 1)),
            "range(3)",
        ),
        "range3" => ok(
            as_range(v).map(|r| (r.start, r.stop, r.step)) == Some((10, 0, -3)),
            "range(10, 0, -3)",
        ),
        "key_error" => ok(
            *v == exception("builtins", "KeyError", vec![s("x")]),
            "exception(builtins, KeyError, ['x'])",
        ),
        "queue_empty" => ok(
            matches!(v, Pickle::Reduce { callable, .. }
                if as_global(callable) == Some(("_queue", "Empty"))),
            "_queue.Empty()",
        ),
        "token" if proto >= 2 => ok(
            *v == token("dict", address(), "7f5a022d9380"),
            "exactly token(...)",
        ),
        "token" => ok(
            as_token(v).is_some_and(|t| {
                (t.typeid, t.id, t.address) == ("dict", "7f5a022d9380", &address())
            }),
            "a token (protocol 0/1 form)",
        ),
        "proxy_dict" => ok(
            as_rebuild_proxy(v).is_some_and(|p| {
                *p.func == global(MANAGERS, "DictProxy")
                    && p.token.typeid == "dict"
                    && p.serializer == "pickle"
                    && *p.kwds == Pickle::Dict(vec![])
            }),
            "RebuildProxy(DictProxy, Token('dict', ...), 'pickle', {})",
        ),
        "proxy_auto" => ok(
            as_rebuild_proxy(v).is_some_and(|p| {
                *p.func == global(MANAGERS, "AutoProxy")
                    && p.token.typeid == "Queue"
                    && p.token.id == "7f5a022d9f10"
                    && matches!(p.kwds, Pickle::Dict(kw) if kw.len() == 1 && kw[0].0 == s("exposed"))
            }),
            "RebuildProxy(AutoProxy, Token('Queue', ...), 'pickle', {'exposed': ...})",
        ),
        "shared" => {
            let a = Pickle::List(vec![int(1)]);
            ok(n == Pickle::List(vec![a.clone(), a]), "[[1], [1]]")
        }
        "user_list" if proto >= 2 => ok(
            matches!(v, Pickle::Build { object, .. } if matches!(**object, Pickle::Appends { .. })),
            "BUILD on APPENDS on the list subclass",
        ),
        "user_dict" if proto >= 2 => ok(
            matches!(v, Pickle::Build { object, .. } if matches!(**object, Pickle::SetItems { .. })),
            "BUILD on SETITEMS on the dict subclass",
        ),
        "user_kwonly" if proto >= 4 => ok(
            matches!(v, Pickle::Build { object, .. }
                if matches!(**object, Pickle::NewObj { kwargs: Some(_), .. })),
            "BUILD on NEWOBJ_EX",
        ),
        _ => Ok(()),
    }
}
