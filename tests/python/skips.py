"""Tests of CPython's manager suite that syncman cannot pass, or that never reach the server under test.

run_cpython_manager_tests.py skips these on purpose, so they show up as skipped with the
reason below rather than as failures. The list is for syncman, a server that does not run
Python code. Against CPython's own server they would pass: `--no-skips` runs them too, to
compare.

An entry is either a class name (the whole class is skipped, so its setUpClass is not run
either) or "Class.test_method". A name that does not exist in the running CPython version is
ignored (the runner's --list shows which entries matched).

Keep this list short. An entry belongs here only if:
  * "python": the test needs the server to run Python code (call a pickled callable, run a
    Pool of Python workers, use a custom typeid whose callable is a Python class); or
  * "own-server": the test starts and stops its own CPython manager process and never talks
    to the server under test (it checks CPython's server lifecycle, not the protocol).
A test that fails against syncman for any other reason is a syncman bug and must not be
listed here.
"""

# selector -> (category, reason)
SKIPS = {
    # --- needs the server to execute Python code -------------------------------------
    "WithManagerTestPool": (
        "python",
        "manager.Pool(): the server runs a multiprocessing.Pool whose workers call pickled "
        "Python functions (apply/map/imap/... and the AsyncResult/Iterator typeids)",
    ),
    "TestSyncManagerTypes.test_pool": (
        "python",
        "manager.Pool(): the server runs Python worker processes",
    ),
    "WithManagerTestBarrier.test_action": (
        "python",
        "Barrier(n, action=AppendTrue(list_proxy)): the server must call a pickled Python "
        "object when the barrier trips",
    ),
    # --- starts its own CPython manager; never talks to the server under test -----------
    "WithManagerTestMyManager": (
        "own-server",
        "starts its own CPython BaseManager with Python-class typeids (FooBar, a generator "
        "with IteratorProxy) and checks its process exit code",
    ),
    "WithManagerTestRemoteManager": (
        "own-server",
        "starts its own CPython QueueManager (get_queue typeid, xmlrpclib serializer)",
    ),
    "WithManagerTestManagerRestart": (
        "own-server",
        "restarts its own CPython manager on the same address (server process lifecycle)",
    ),
    "TestInitializers.test_manager_initializer": (
        "own-server",
        "SyncManager.start(initializer): starts its own CPython manager and runs a Python "
        "initializer in that server process",
    ),
}
