//! CPython's own manager tests against a syncman node, on 3.11, 3.12 and 3.13.
//!
//! `tests/python/run_cpython_manager_tests.py` runs the manager flavour of each version's
//! `Lib/test/_test_multiprocessing.py` with `multiprocessing.Manager()` connected to the node
//! under test; `tests/python/skips.py` lists the tests that need the server to run Python
//! code or that start their own CPython manager (`tests/python/README.md`). Every other test
//! must pass. A binary of its own, so its three interpreters (each about a minute, mostly
//! waiting in the tests' own sleeps) do not run beside the timing-sensitive integration
//! tests.

use std::path::PathBuf;
use std::time::Duration;

use syncman_tests::python::Py;
use syncman_tests::TestNode;

/// Bound on one interpreter's whole run (the harness's own limit is 900 s).
const WAIT: Duration = Duration::from_secs(600);

/// Fewer passing tests than this means the harness found or ran far less than it should
/// (each version has 54-57 tests that pass against CPython's own server).
const AT_LEAST_OK: u64 = 50;

/// The harness's last line: `SUMMARY selected=N run=N ok=N failed=N errors=N ...`.
fn summary_field(line: &str, name: &str) -> Option<u64> {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
}

async fn suite(py: Py) {
    let node = TestNode::start();
    let harness =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/run_cpython_manager_tests.py");
    let out =
        syncman_tests::cpython::run_against(py, node.addr(), node.authkey(), &[&harness], WAIT)
            .await;
    let stdout = out.stdout.join("\n");
    let report = out.to_string();
    let first = stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!("CPython {}.", py.version())),
        "not the interpreter asked for\n{report}"
    );
    let summary = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with("SUMMARY "))
        .unwrap_or_else(|| panic!("no SUMMARY line\n{report}"));
    for bad in ["failed", "errors", "timeouts"] {
        assert_eq!(summary_field(summary, bad), Some(0), "{bad}\n{report}");
    }
    let ok = summary_field(summary, "ok").unwrap_or(0);
    assert!(ok >= AT_LEAST_OK, "only {ok} passed\n{report}");
    assert!(out.status.success(), "{report}");
    eprintln!("{}: {summary}", py.command_line());
    // The node is fine afterwards.
    node.manager().await.ping().await.unwrap();
}

/// The harness runs in a directory of its own: the three interpreters start from the same
/// one at once, and a test that makes a fixed name there (`tempcwd`) failed when another
/// interpreter's run (or a killed one's leftover) held it.
#[tokio::test]
async fn the_harness_does_not_share_its_working_directory() {
    let node = TestNode::start();
    let caller = std::env::temp_dir().join(format!("syncman-suite-cwd-{}", std::process::id()));
    std::fs::create_dir_all(caller.join("tempcwd")).unwrap();
    let harness =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/run_cpython_manager_tests.py");
    let only = "WithManagerTestQueue.test_no_import_lock_contention";
    let args = [harness.as_os_str(), "--only".as_ref(), only.as_ref()];
    let out = syncman_tests::cpython::run_against_from(
        Some(&caller),
        Py::V311,
        node.addr(),
        node.authkey(),
        &args,
        WAIT,
    )
    .await;
    let _ = std::fs::remove_dir_all(&caller);
    let report = out.to_string();
    let summary = out
        .stdout
        .iter()
        .rev()
        .find(|l| l.starts_with("SUMMARY "))
        .unwrap_or_else(|| panic!("no SUMMARY line\n{report}"));
    assert_eq!(summary_field(summary, "ok"), Some(1), "{report}");
    assert_eq!(summary_field(summary, "errors"), Some(0), "{report}");
}

#[tokio::test]
async fn cpython_3_11_manager_tests_pass() {
    suite(Py::V311).await;
}

#[tokio::test]
async fn cpython_3_12_manager_tests_pass() {
    suite(Py::V312).await;
}

#[tokio::test]
async fn cpython_3_13_manager_tests_pass() {
    suite(Py::V313).await;
}
