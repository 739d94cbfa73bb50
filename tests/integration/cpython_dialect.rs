//! Unmodified CPython `SyncManager` clients against the real node: the pickle dialect.
//!
//! `tests/cpython/smoke.py` uses every SyncManager type the plain way and checks CPython's
//! answers, on 3.11, 3.12 and 3.13; `tests/cpython/differential.py` runs the same operations
//! against CPython's own manager server and the node and compares every result; the sharing
//! test has Python and Rust use the same objects at once.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use syncman_tests::python::{Py, PyOutcome};
use syncman_tests::{wait_for_object_waiters, TestNode};

/// Bound on one Python run.
const WAIT: Duration = Duration::from_secs(60);

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/cpython")
        .join(name)
}

/// Runs `python <args...> HOST PORT KEYHEX` under `py`, bounded by [`WAIT`].
async fn run_python(py: Py, addr: SocketAddr, authkey: &[u8], args: &[&str]) -> PyOutcome {
    syncman_tests::cpython::run_against(py, addr, authkey, args, WAIT).await
}

async fn smoke(py: Py) {
    let node = TestNode::start();
    let path = script("smoke.py");
    let path = path.to_str().expect("utf-8 path");
    let outcome = run_python(py, node.addr(), node.authkey(), &[path]).await;
    let version = outcome.stdout.first().cloned().unwrap_or_default();
    assert!(
        outcome.status.success() && outcome.last_line().is_some_and(|l| l.starts_with("DONE")),
        "{version}\n{outcome}"
    );
    // The node is fine afterwards: a native client works.
    let m = node.manager().await;
    m.ping().await.unwrap();
}

#[tokio::test]
async fn cpython_3_11_syncmanager_smoke() {
    smoke(Py::V311).await;
}

#[tokio::test]
async fn cpython_3_12_syncmanager_smoke() {
    smoke(Py::V312).await;
}

#[tokio::test]
async fn cpython_3_13_syncmanager_smoke() {
    smoke(Py::V313).await;
}

/// Runs `differential.py` under `py`: each operation against CPython's own `SyncManager`
/// server (started by the script) and against the node, with every result compared. The
/// script prints a `DIFF` line per mismatch and exits non-zero if there is any.
async fn differential(py: Py) {
    let node = TestNode::start();
    let path = script("differential.py");
    let path = path.to_str().expect("utf-8 path");
    let outcome = run_python(py, node.addr(), node.authkey(), &[path]).await;
    let version = outcome.stdout.first().cloned().unwrap_or_default();
    let diffs: Vec<&String> = outcome
        .stdout
        .iter()
        .filter(|l| l.starts_with("DIFF"))
        .collect();
    assert!(
        outcome.status.success()
            && diffs.is_empty()
            && outcome.last_line().is_some_and(|l| l.starts_with("DONE")),
        "{version}: {} differences\n{outcome}",
        diffs.len()
    );
    // The node is fine afterwards: a native client works.
    let m = node.manager().await;
    m.ping().await.unwrap();
}

#[tokio::test]
async fn cpython_3_11_differential() {
    differential(Py::V311).await;
}

#[tokio::test]
async fn cpython_3_12_differential() {
    differential(Py::V312).await;
}

#[tokio::test]
async fn cpython_3_13_differential() {
    differential(Py::V313).await;
}

/// Python and Rust on the same objects: Rust makes them, Python reaches them through
/// proxies built from their ids, values cross both ways, and a Python thread waits for a
/// lock a Rust task holds.
#[tokio::test]
async fn python_and_rust_share_a_queue_a_dict_and_a_lock() {
    let node = TestNode::start();
    let m = node.manager().await;
    let q = m.new_queue::<(i64, String)>().await.unwrap();
    let d = m.new_dict::<String, Vec<i64>>().await.unwrap();
    let lock = m.new_lock().await.unwrap();
    d.insert(&"from rust".into(), &vec![1, 2]).await.unwrap();
    let guard = lock.acquire().await.unwrap();

    let share = script("share.py");
    let ids = [q.id(), d.id(), lock.id()].map(|id| id.to_string());
    let python = tokio::spawn({
        let (addr, key) = (node.addr(), node.authkey().to_vec());
        let args: Vec<String> = [share.to_str().unwrap().to_owned()]
            .into_iter()
            .chain(ids)
            .collect();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run_python(Py::V311, addr, &key, &args).await
        }
    });
    // Python's items arrive; its acquire waits for the Rust holder.
    let (n, word) = tokio::time::timeout(WAIT, q.get()).await.unwrap().unwrap();
    assert_eq!((n, word.as_str()), (7, "from python"));
    wait_for_object_waiters(&m, lock.id(), 1).await;
    assert_eq!(
        d.get(&"from python".into()).await.unwrap(),
        Some(vec![3, 4])
    );
    guard.release().await.unwrap();
    let outcome = python.await.unwrap();
    assert!(
        outcome.status.success() && outcome.last_line() == Some("OK"),
        "{outcome}"
    );
    assert!(
        outcome.stdout.iter().any(|l| l == "got the lock"),
        "{outcome}"
    );
    assert_eq!(d.get(&"echo".into()).await.unwrap(), Some(vec![1, 2]));
}

/// `manager.Condition(lock)` on every CPython version: `condition_over_lock.py` checks that
/// the Condition and its lock's proxy share one hold, wait and notify across the two, the
/// Condition outliving the lock's proxy, and the refusal of a Condition over a non-lock.
#[tokio::test]
async fn cpython_condition_over_a_lock_shares_the_lock() {
    let node = TestNode::start();
    let path = script("condition_over_lock.py");
    let path = path.to_str().expect("utf-8 path");
    for py in [Py::V311, Py::V312, Py::V313] {
        let outcome = run_python(py, node.addr(), node.authkey(), &[path]).await;
        assert!(
            outcome.status.success() && outcome.last_line() == Some("OK"),
            "{}\n{outcome}",
            py.version()
        );
    }
}

/// A Rust client makes a Lock and a Condition over it; a Python thread waits on the
/// Condition. The wait releases the lock to a Rust guard taken through the Lock, which
/// keeps the Condition from Rust too; the Rust notify wakes Python, which holds the lock
/// again.
#[tokio::test]
async fn a_python_waiter_and_a_rust_notifier_share_a_condition_over_a_lock() {
    let node = TestNode::start();
    let m = node.manager().await;
    let lock = m.new_lock().await.unwrap();
    let cond = m.new_condition_over(&lock).await.unwrap();
    let share = script("condition_share.py");
    let python = tokio::spawn({
        let (addr, key) = (node.addr(), node.authkey().to_vec());
        let args = [
            share.to_str().unwrap().to_owned(),
            cond.id().to_string(),
            lock.id().to_string(),
        ];
        async move {
            let args = args.each_ref().map(String::as_str);
            run_python(Py::V311, addr, &key, &args).await
        }
    });
    // Python waits for a notify.
    wait_for_object_waiters(&m, cond.id(), 1).await;
    let guard = tokio::time::timeout(WAIT, lock.acquire())
        .await
        .expect("the wait released the lock")
        .unwrap();
    assert!(cond.try_acquire().await.unwrap().is_none());
    guard.release().await.unwrap();
    let held = cond.acquire().await.unwrap();
    held.notify(1).await.unwrap();
    held.release().await.unwrap();
    let outcome = python.await.unwrap();
    assert!(
        outcome.status.success() && outcome.last_line() == Some("OK"),
        "{outcome}"
    );
    assert!(outcome.stdout.iter().any(|l| l == "notified"), "{outcome}");
    assert!(!lock.locked().await.unwrap(), "Python released it");
}

/// CPython's client writes its last handshake frame and its first request back to back, and
/// with Nagle's algorithm (CPython leaves it on) the request waits for the node's ACK: about
/// 40 ms per connection, and a connect plus a first call opens four. The node acknowledges
/// at once after the handshake (`TCP_QUICKACK`), so the whole sequence takes a few ms (about
/// 220 ms against CPython's own server). The bound is loose: one delayed ACK alone would
/// pass 40 ms.
#[tokio::test]
async fn a_cpython_client_connects_and_makes_its_first_call_without_ack_delays() {
    let node = TestNode::start();
    let path = script("connect.py");
    let outcome = run_python(
        Py::V311,
        node.addr(),
        node.authkey(),
        &[path.to_str().unwrap()],
    )
    .await;
    let median: f64 = outcome
        .last_line()
        .and_then(|l| l.strip_prefix("MEDIAN_MS "))
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("no median\n{outcome}"));
    eprintln!("connect + dict() + first call, median of 15: {median} ms");
    assert!(
        median < 30.0,
        "{median} ms: a delayed ACK is back\n{outcome}"
    );
}

/// A CPython client that takes a value it cannot be sent (its pickle is over the node's
/// frame limit) hears why, and the value is not lost: it is back where it was, for a client
/// that can take it.
#[tokio::test]
async fn values_a_cpython_client_cannot_be_sent_are_not_lost_by_taking_them() {
    let node = TestNode::start_with(&["--max-frame", "4096"]);
    let m = node.manager().await;
    // 3,000 small ints: about 3 kB as stored, about 6 kB pickled.
    let big: Vec<u8> = (0..3000).map(|i| (i % 100) as u8).collect();
    let l = m.new_list::<Vec<u8>>().await.unwrap();
    // What `pop()`, `pop(-2)` and `pop(0)` take is large. One at a time: two are over a frame.
    let items = [big.clone(), vec![1], big.clone(), big.clone()];
    for item in &items {
        l.push(item).await.unwrap();
    }
    let d = m.new_dict::<String, Vec<u8>>().await.unwrap();
    d.insert(&"k".into(), &big).await.unwrap();
    let q = m.new_queue::<Vec<u8>>().await.unwrap();
    q.put(&big).await.unwrap();
    let ids = [l.id(), d.id(), q.id()].map(|id| id.to_string());
    let path = script("unsendable.py");
    let args: Vec<&str> = [path.to_str().unwrap()]
        .into_iter()
        .chain(ids.iter().map(String::as_str))
        .collect();
    let outcome = run_python(Py::V311, node.addr(), node.authkey(), &args).await;
    assert!(
        outcome.status.success() && outcome.last_line() == Some("OK"),
        "{outcome}"
    );
    assert_eq!(l.len().await.unwrap(), items.len());
    for (i, item) in items.iter().enumerate() {
        assert_eq!(
            l.get(i as i64).await.unwrap().as_ref(),
            Some(item),
            "item {i}"
        );
    }
    assert_eq!(
        d.items().await.unwrap(),
        vec![("k".to_string(), big.clone())]
    );
    assert_eq!(q.try_get().await.unwrap(), Some(big));
}
