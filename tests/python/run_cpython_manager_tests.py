#!/usr/bin/env python3
"""Run CPython's own multiprocessing.managers tests against an external manager server.

    python3 run_cpython_manager_tests.py HOST PORT AUTHKEY_HEX [--only NAMES] [--list] ...

The tests are the manager flavour of Lib/test/_test_multiprocessing.py, taken from the `test`
package of the interpreter running this script (so each CPython version runs its own copy):
the WithManager* classes that install_tests_in_module_dict(g, 'fork', only_type='manager')
generates, plus the plain TestCase classes that use a manager (TestSyncManagerTypes,
TestInitializers, and TestManagerExceptions on 3.13+). multiprocessing.Manager() and
TestSyncManagerTypes.manager_class are replaced by ExternalManager, a SyncManager that
connect()s to HOST:PORT instead of starting a server process.

Tests in skips.py (need server-side Python code, or start their own CPython manager) are
skipped with their reason unless --no-skips. Ends with one line

    SUMMARY selected=N run=N ok=N failed=N errors=N skipped=N skip_list=N timeouts=N seconds=S

and exits 0 only if nothing failed or errored (1 otherwise, 2 for bad usage or an
unreachable server, 3 on the global timeout).
"""

import sys

if __name__ == "__main__":
    # Re-enter as the importable module `run_cpython_manager_tests` (this file's directory is
    # sys.path[0]), so the generated test classes have a module name another process can import
    # (CPython's server pickles classmethods by module and class name when running a Pool).
    import run_cpython_manager_tests as _self

    sys.exit(_self.main())

import argparse
import atexit
import faulthandler
import fnmatch
import multiprocessing
import multiprocessing.managers
import os
import shutil
import signal
import tempfile
import threading
import time
import traceback
import unittest

from test import support as _support
from test import _test_multiprocessing as _tmp

# The WithManager* classes, generated into this module's namespace so that their __module__
# is this (importable) module. Pure class creation: no manager is touched at import time.
_GENERATED = set()


def _install():
    g = {"__name__": __name__}
    _tmp.install_tests_in_module_dict(g, "fork", only_type="manager")
    for name, obj in g.items():
        if isinstance(obj, type) and issubclass(obj, unittest.TestCase):
            _GENERATED.add(name)
    # setUpModule/tearDownModule too: unittest runs them for this module's classes (they set
    # the 'fork' start method and check for leaked processes/threads).
    globals().update(g)


_install()

# Plain unittest.TestCase classes that only_type='manager' does not install but that use the
# manager: (name, why). Present in every version unless absent from its _test_multiprocessing.
_EXTRA_CLASSES = ("TestSyncManagerTypes", "TestInitializers", "TestManagerExceptions")

HERE = os.path.dirname(os.path.abspath(__file__))


# --------------------------------------------------------------------------------------------
# The external manager
# --------------------------------------------------------------------------------------------

class ExternalManager(multiprocessing.managers.SyncManager):
    """A SyncManager whose start() connects to the server under test.

    shutdown()/join() are no-ops: the server is not ours (and a connect()ed BaseManager has
    neither a shutdown finalizer nor a _process).
    """

    ADDRESS = None
    AUTHKEY = None

    def __init__(self, address=None, authkey=None, *args, **kwds):
        super().__init__(self.ADDRESS, self.AUTHKEY, *args, **kwds)

    def start(self, initializer=None, initargs=()):
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        self.connect()

    def shutdown(self):
        pass

    def join(self, timeout=None):
        pass


def _external_manager(*args, **kwds):
    m = ExternalManager()
    m.start()
    return m


# --------------------------------------------------------------------------------------------
# Timeouts
# --------------------------------------------------------------------------------------------

class TestTimeout(Exception):
    """Raised in the main thread by SIGALRM when a test (or class fixture) runs too long."""


_alarm_reason = ["test"]


def _on_alarm(signum, frame):
    raise TestTimeout(f"harness timeout: {_alarm_reason[0]} ran longer than allowed "
                      f"(the server did not answer or a child process hung)")


def _arm(seconds, reason):
    _alarm_reason[0] = reason
    signal.setitimer(signal.ITIMER_REAL, seconds)


def _disarm():
    signal.setitimer(signal.ITIMER_REAL, 0)


def _reap_children(timeout=2.0):
    """Terminate (then kill) the local child processes a timed-out test left behind."""
    children = multiprocessing.active_children()
    for p in children:
        try:
            p.terminate()
        except Exception:
            pass
    deadline = time.monotonic() + timeout
    for p in children:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            try:
                p.kill()
                p.join(1.0)
            except Exception:
                pass


# --------------------------------------------------------------------------------------------
# Result collection
# --------------------------------------------------------------------------------------------

def _test_id(test):
    """'Class.method' for a test, or the unittest description of a class/module fixture."""
    if hasattr(test, "test_case") and hasattr(test, "_subDescription"):  # a subTest
        return f"{_test_id(test.test_case)} {test._subDescription()}"
    if isinstance(test, unittest.TestCase) and hasattr(test, "_testMethodName"):
        return f"{type(test).__name__}.{test._testMethodName}"
    return str(test)  # _ErrorHolder: "setUpClass (module.Class)" etc.


def _one_line(err_text, limit=240):
    lines = [l for l in err_text.strip().splitlines() if l.strip()]
    last = lines[-1].strip() if lines else "?"
    return last if len(last) <= limit else last[: limit - 3] + "..."


class Result(unittest.TestResult):
    def __init__(self, args, harness_skips):
        super().__init__()
        self.args = args
        self.harness_skips = harness_skips  # test id -> (category, reason), filled on skip
        self.records = []  # (kind, id, seconds, detail, traceback text)
        # test id -> outcome. Our own count of tests run: TestResult.testsRun is not comparable
        # across versions (3.12 does not call startTest for decorator-skipped tests).
        self.outcomes = {}
        self.ok = 0
        self.timeouts = 0
        self._t0 = None
        self._timed_out = False

    # timing / alarms
    def startTest(self, test):
        super().startTest(test)
        self._t0 = time.monotonic()
        self._timed_out = False
        _arm(self.args.test_timeout, f"test {_test_id(test)}")
        if self.args.verbose:
            print(f"... {_test_id(test)}", flush=True)

    def stopTest(self, test):
        # Re-arm for what runs until the next startTest (tearDown/Class fixtures).
        _arm(self.args.fixture_timeout, f"class fixture after {_test_id(test)}")
        if self._timed_out:
            _reap_children()
        super().stopTest(test)

    def _elapsed(self):
        return time.monotonic() - self._t0 if self._t0 is not None else 0.0

    def _note(self, kind, test, err=None, detail=""):
        if isinstance(test, unittest.TestCase):
            self.outcomes[_test_id(getattr(test, "test_case", test))] = kind
        text = ""
        if err is not None:
            text = self._exc_info_to_string(err, test) if isinstance(err, tuple) else str(err)
            if isinstance(err, tuple) and err[0] is not None and issubclass(err[0], TestTimeout):
                self.timeouts += 1
                self._timed_out = True
            detail = _one_line(text)
        self.records.append((kind, _test_id(test), self._elapsed(), detail, text))
        if self.args.verbose or (self.args.tracebacks and text):
            print(f"{kind:5} {_test_id(test)}: {detail}", flush=True)
            if self.args.tracebacks and text:
                print(text.rstrip(), flush=True)

    def addSuccess(self, test):
        super().addSuccess(test)
        self.ok += 1
        self.outcomes.setdefault(_test_id(test), "ok")
        if self.args.verbose:
            print(f"ok    {_test_id(test)} ({self._elapsed():.2f}s)", flush=True)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._note("FAIL", test, err)

    def addError(self, test, err):
        super().addError(test, err)
        if not isinstance(test, unittest.TestCase):
            self._t0 = None  # class/module fixture error: no test timing
        self._note("ERROR", test, err)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._note("SKIP", test, detail=reason)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self.ok += 1
        self.outcomes.setdefault(_test_id(test), "ok")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._note("UNEXP", test, detail="unexpected success")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            kind = "FAIL" if issubclass(err[0], test.failureException) else "ERROR"
            self._note(kind, subtest, err)
            # TestResult.addSubTest appended to failures/errors already.


# --------------------------------------------------------------------------------------------
# Selection and skips
# --------------------------------------------------------------------------------------------

def _all_classes():
    classes = [(name, globals()[name]) for name in sorted(_GENERATED)]
    for name in _EXTRA_CLASSES:
        cls = getattr(_tmp, name, None)
        if cls is not None:
            classes.append((name, cls))
    return classes


def _load_skips():
    sys.path.insert(0, HERE)
    try:
        import skips
    finally:
        sys.path.remove(HERE)
    return dict(skips.SKIPS)


def _apply_skips(classes, skip_map):
    """Mark skip-list entries skipped (with reason). Returns (applied selectors, unmatched)."""
    loader = unittest.TestLoader()
    by_name = dict(classes)
    applied, unmatched = [], []
    for sel, (category, reason) in skip_map.items():
        cls_name, _, meth = sel.partition(".")
        cls = by_name.get(cls_name)
        if cls is None or (meth and meth not in loader.getTestCaseNames(cls)):
            unmatched.append(sel)
            continue
        why = f"[skip-list:{category}] {reason}"
        if meth:
            setattr(cls, meth, unittest.skip(why)(getattr(cls, meth)))
        else:
            # Class-level skip: unittest skips setUpClass and reports every test as skipped.
            cls.__unittest_skip__ = True
            cls.__unittest_skip_why__ = why
        applied.append(sel)
    return applied, unmatched


def _select(classes, only):
    """Filter (class, [test names]) by --only selectors: 'Class' or 'Class.test', fnmatch ok."""
    loader = unittest.TestLoader()
    selected = []
    used = set()
    for name, cls in classes:
        tests = []
        for t in loader.getTestCaseNames(cls):
            for sel in only or ["*"]:
                c_pat, _, m_pat = sel.partition(".")
                if fnmatch.fnmatchcase(name, c_pat) and (not m_pat or fnmatch.fnmatchcase(t, m_pat)):
                    tests.append(t)
                    used.add(sel)
                    break
        if tests:
            selected.append((name, cls, tests))
    unused = [s for s in (only or []) if s not in used]
    return selected, unused


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------

def _parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="run_cpython_manager_tests.py",
        description="Run CPython's manager tests against an external manager server.")
    ap.add_argument("host", nargs="?")
    ap.add_argument("port", nargs="?", type=int)
    ap.add_argument("authkey_hex", nargs="?", metavar="AUTHKEY_HEX")
    ap.add_argument("--only", action="append", default=[], metavar="NAMES",
                    help="comma-separated Class or Class.test_name (fnmatch patterns); repeatable")
    ap.add_argument("--list", action="store_true",
                    help="list the classes/tests (and skip-list matches) and exit")
    ap.add_argument("--no-skips", action="store_true",
                    help="also run the skip-list tests (only meaningful against CPython's server)")
    ap.add_argument("--test-timeout", type=float, default=30.0,
                    help="seconds one test may run before it is failed (default 30)")
    ap.add_argument("--fixture-timeout", type=float, default=30.0,
                    help="seconds allowed between tests (setUpClass/tearDownClass; default 30)")
    ap.add_argument("--timeout", type=float, default=900.0,
                    help="global seconds for the whole run, then exit 3 (default 900)")
    ap.add_argument("--tracebacks", action="store_true", help="print full tracebacks")
    ap.add_argument("-v", "--verbose", action="store_true", help="one line per test as it runs")
    args = ap.parse_args(argv)
    args.only = [s.strip() for item in args.only for s in item.split(",") if s.strip()]
    if not args.list and (args.host is None or args.port is None or args.authkey_hex is None):
        ap.error("HOST PORT AUTHKEY_HEX are required (except with --list)")
    if args.authkey_hex is not None:
        try:
            args.authkey = bytes.fromhex(args.authkey_hex)
        except ValueError:
            ap.error("AUTHKEY_HEX is not hex")
    return args


def _print_list(selected, skip_map, unmatched, no_skips):
    total = 0
    for name, cls, tests in selected:
        cls_skip = None if no_skips else skip_map.get(name)
        print(f"{name} ({len(tests)})" + (f"  SKIP[{cls_skip[0]}]" if cls_skip else ""))
        for t in tests:
            s = None if no_skips else skip_map.get(f"{name}.{t}")
            print(f"  {t}" + (f"  SKIP[{s[0]}]" if s else ""))
        total += len(tests)
    print(f"{len(selected)} classes, {total} tests")
    if unmatched:
        print("skip-list entries not in this version: " + ", ".join(sorted(unmatched)))


def _summary_line(result, seconds, selected):
    skipped = len(result.skipped)
    skip_list = sum(1 for _, why in result.skipped if why.startswith("[skip-list:"))
    return (f"SUMMARY selected={selected} run={len(result.outcomes)} ok={result.ok} "
            f"failed={len(result.failures)} errors={len(result.errors)} skipped={skipped} "
            f"skip_list={skip_list} timeouts={result.timeouts} seconds={seconds:.1f}")


def _report(result, seconds, warnings, selected):
    # Skips: one line per class-level skip, one per other skipped test.
    class_skips = {}
    for kind, tid, _, detail, _ in result.records:
        if kind != "SKIP":
            continue
        cls = tid.split(".")[0]
        class_skips.setdefault((cls, detail), []).append(tid)
    for (cls, detail), tids in class_skips.items():
        if getattr(globals().get(cls) or getattr(_tmp, cls, None),
                                     "__unittest_skip__", False):
            print(f"SKIP  {cls} ({len(tids)} tests): {detail}")
        else:
            for tid in tids:
                print(f"SKIP  {tid}: {detail}")
    for kind, tid, secs, detail, _ in result.records:
        if kind in ("FAIL", "ERROR", "UNEXP"):
            print(f"{kind:5} {tid} ({secs:.1f}s): {detail}")
    for cls, msg in warnings:
        print(f"WARN  {cls}: {msg}")
    print(_summary_line(result, seconds, selected), flush=True)


def main(argv=None):
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    t_start = time.monotonic()

    skip_map = {} if args.no_skips else _load_skips()
    classes = _all_classes()
    selected, unused = _select(classes, args.only)
    if unused:
        print(f"--only matched nothing: {', '.join(unused)} (see --list)", file=sys.stderr)
        return 2
    _, unmatched = _apply_skips(classes, skip_map)

    if args.list:
        _print_list(selected, _load_skips(), unmatched if not args.no_skips else [],
                    args.no_skips)
        return 0

    address = (args.host, args.port)
    ver = sys.version.split()[0]
    n_tests = sum(len(t) for _, _, t in selected)
    print(f"CPython {ver} manager tests ({os.path.dirname(_tmp.__file__)}) -> "
          f"{args.host}:{args.port}: {len(selected)} classes, {n_tests} tests", flush=True)

    # --- environment the suite expects -------------------------------------------------
    # A working directory of its own, as CPython's regrtest gives each run: some tests make
    # fixed names in it (test_no_import_lock_contention's `tempcwd`), and the three
    # interpreters of tests/cpython_suite.rs run at once from the same directory.
    # Removed at exit, whichever way the run ends (but the watchdog's os._exit).
    workdir = tempfile.mkdtemp(prefix="syncman-cpython-tests-")
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    os.chdir(workdir)
    faulthandler.enable()
    multiprocessing.set_start_method("fork", force=True)
    # Children inherit it; proxies unpickled from replies authenticate with it (spec 3.7).
    multiprocessing.current_process().authkey = args.authkey
    ExternalManager.ADDRESS = address
    ExternalManager.AUTHKEY = args.authkey
    multiprocessing.Manager = _external_manager
    _tmp.TestSyncManagerTypes.manager_class = ExternalManager

    # Collect the suite's warnings (leaked shared objects, lingering children) per class.
    warnings = []
    current = ["-"]

    def print_warning(msg):
        first = msg.splitlines()[0] if msg else ""
        if warnings and warnings[-1][0] == current[0] and first.startswith(("[", "{")):
            return  # the _debug_info() dump that follows "Shared objects which still exist"
        warnings.append((current[0], first[:200]))

    _support.print_warning = print_warning

    # --- global watchdog ---------------------------------------------------------------
    result = Result(args, skip_map)

    def watchdog():
        time.sleep(args.timeout)
        sys.stdout.write(f"GLOBAL TIMEOUT after {args.timeout:.0f}s; threads:\n")
        sys.stdout.flush()
        faulthandler.dump_traceback(file=sys.stdout, all_threads=True)
        try:
            _report(result, time.monotonic() - t_start, warnings, n_tests)
            _reap_children(1.0)  # os._exit skips multiprocessing's own cleanup of children
        finally:
            sys.stdout.flush()
            os._exit(3)

    threading.Thread(target=watchdog, name="harness-watchdog", daemon=True).start()
    # Backstop if the watchdog thread cannot run (GIL held in C code): dump and _exit(1).
    faulthandler.dump_traceback_later(args.timeout + 30, exit=True)
    signal.signal(signal.SIGALRM, _on_alarm)

    # --- preflight: is the server there and does it accept our key? --------------------
    try:
        _arm(args.fixture_timeout, "connecting to the server")
        ExternalManager().connect()
        _disarm()
    except BaseException as e:
        _disarm()
        print(f"ERROR cannot connect to {args.host}:{args.port}: {type(e).__name__}: {e}")
        print(f"SUMMARY selected={n_tests} run=0 ok=0 failed=0 errors=1 skipped=0 skip_list=0 "
              "timeouts=0 "
              f"seconds={time.monotonic() - t_start:.1f}", flush=True)
        faulthandler.cancel_dump_traceback_later()
        return 2

    # --- run -----------------------------------------------------------------------------
    suite = unittest.TestSuite()
    for name, cls, tests in selected:
        for t in tests:
            suite.addTest(cls(t))

    orig_start = result.startTest

    def start_test(test):
        current[0] = type(test).__name__
        orig_start(test)

    result.startTest = start_test
    _arm(args.fixture_timeout, "setUpModule/setUpClass")
    try:
        suite.run(result)
    finally:
        _disarm()

    _reap_children()
    _report(result, time.monotonic() - t_start, warnings, n_tests)
    # Interpreter exit runs multiprocessing's finalizers (decref of leftover proxies); bound it.
    faulthandler.cancel_dump_traceback_later()
    faulthandler.dump_traceback_later(30, exit=True)
    return 0 if result.wasSuccessful() else 1
