//! Object lifetimes, sessions, concurrency on one connection, and stopping the node.

use std::time::Duration;

use syncman_client::{ErrorKind, Manager};
use syncman_protocol::Value;
use syncman_tests::{wait_for_sessions, wait_for_waiters, RawSession, TestNode};

/// Polls `status()` until `pred` holds on the number of objects (bounded).
async fn wait_for_objects(m: &Manager, pred: impl Fn(usize) -> bool) -> usize {
    let end = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let n = m.status().await.unwrap().objects.len();
        if pred(n) || tokio::time::Instant::now() > end {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn anonymous_objects_are_freed_with_their_last_reference() {
    let node = TestNode::start();
    let observer = node.manager().await;
    let a = node.manager().await;

    // Dropping the last proxy releases the object.
    let scratch = a.new_list::<f64>().await.unwrap();
    scratch.push(&1.0).await.unwrap();
    let copy = scratch.clone();
    assert_eq!(wait_for_objects(&observer, |n| n == 1).await, 1);
    drop(scratch);
    // A clone still holds it.
    copy.push(&2.0).await.unwrap();
    drop(copy);
    assert_eq!(wait_for_objects(&observer, |n| n == 0).await, 0);

    // A session that vanishes without releasing anything (as a crashed client would)
    // still frees everything it held.
    let mut raw = RawSession::connect(node.addr(), node.authkey()).await;
    for typeid in ["dict", "list", "Namespace"] {
        raw.call(0, "create", &[Value::Str(typeid.into())])
            .await
            .unwrap();
    }
    assert_eq!(wait_for_objects(&observer, |n| n == 3).await, 3);
    drop(raw);
    assert_eq!(
        wait_for_objects(&observer, |n| n == 0).await,
        0,
        "objects survived their session"
    );
    drop(a);
}

#[tokio::test]
async fn an_adopted_object_lives_until_every_holder_is_gone() {
    let node = TestNode::start();
    let observer = node.manager().await;
    let a = node.manager().await;
    let b = node.manager().await;
    let sessions = observer.status().await.unwrap().sessions;
    let list = a.new_list::<i32>().await.unwrap();
    list.push(&7).await.unwrap();
    let adopted = b.adopt(list.id()).await.unwrap();
    let typed = syncman_client::ListProxy::<i32>::from_handle(adopted.clone());
    assert_eq!(typed.to_vec().await.unwrap(), vec![7]);
    drop(typed);
    drop(list);
    drop(a);
    // b still holds a reference: the object survives a's departure (a's session has
    // ended, and with it every reference a held).
    wait_for_sessions(&observer, sessions - 1).await;
    let status = observer.status().await.unwrap();
    assert_eq!(status.objects.len(), 1, "{status:?}");
    assert_eq!(adopted.id(), status.objects[0].id);
    assert_eq!(status.objects[0].refs, 1, "only b's reference is left");
    drop(adopted);
    drop(b);
    assert_eq!(wait_for_objects(&observer, |n| n == 0).await, 0);
    // Adopting an id that does not exist is a clear error.
    let err = observer.adopt(999_999).await.unwrap_err();
    assert_eq!(err.kind(), Some(&ErrorKind::NotFound));
}

#[tokio::test]
async fn named_objects_outlive_sessions_until_deleted() {
    let node = TestNode::start();
    {
        let a = node.manager().await;
        a.dict::<String, i32>("kept")
            .await
            .unwrap()
            .insert(&"x".into(), &1)
            .await
            .unwrap();
    }
    let b = node.manager().await;
    let d = b.dict::<String, i32>("kept").await.unwrap();
    assert_eq!(d.get(&"x".into()).await.unwrap(), Some(1));
    b.delete("kept").await.unwrap();
    assert_eq!(
        d.len().await.unwrap_err().kind(),
        Some(&ErrorKind::NotFound)
    );
    assert_eq!(
        b.delete("kept").await.unwrap_err().kind(),
        Some(&ErrorKind::KeyError)
    );
    // The name can be reused, even with another typeid, once deleted.
    b.list::<i32>("kept").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_share_one_connection() {
    let node = TestNode::start();
    let m = node.manager().await;
    let d = m.dict::<String, u64>("shared").await.unwrap();
    let l = m.list::<u64>("appends").await.unwrap();
    const TASKS: u64 = 40;
    const OPS: u64 = 50;
    let mut joins = Vec::new();
    for t in 0..TASKS {
        let (d, l) = (d.clone(), l.clone());
        joins.push(tokio::spawn(async move {
            for i in 0..OPS {
                let key = format!("{t}-{i}");
                d.insert(&key, &(t * 1000 + i)).await.unwrap();
                assert_eq!(d.get(&key).await.unwrap(), Some(t * 1000 + i));
                l.push(&(t * 1000 + i)).await.unwrap();
            }
        }));
    }
    for j in joins {
        j.await.unwrap();
    }
    assert_eq!(d.len().await.unwrap() as u64, TASKS * OPS);
    let mut all = l.to_vec().await.unwrap();
    all.sort_unstable();
    let mut expected: Vec<u64> = (0..TASKS)
        .flat_map(|t| (0..OPS).map(move |i| t * 1000 + i))
        .collect();
    expected.sort_unstable();
    assert_eq!(all, expected, "every append arrived exactly once");
}

#[tokio::test]
async fn a_client_can_shut_the_node_down() {
    let mut node = TestNode::start();
    let m = node.manager().await;
    m.dict::<String, i32>("d").await.unwrap();
    m.shutdown().await.unwrap();
    let status = node
        .wait(Duration::from_secs(10))
        .expect("node exited after shutdown");
    assert!(status.success(), "exit status {status:?}");
    assert!(node.log().contains("stopped"));
    // The connection is gone: calls fail as disconnected, not hang.
    let err = tokio::time::timeout(Duration::from_secs(5), m.ping())
        .await
        .expect("no hang")
        .unwrap_err();
    assert!(err.is_disconnected(), "{err}");
}

#[tokio::test]
async fn sigterm_stops_the_node_cleanly() {
    let mut node = TestNode::start();
    let m = node.manager().await;
    m.ping().await.unwrap();
    let status = node
        .terminate(Duration::from_secs(10))
        .expect("node exited on SIGTERM");
    assert!(status.success(), "exit status {status:?}");
    assert!(node.log().contains("signal received"));
}

#[tokio::test]
async fn stopping_the_node_ends_parked_calls_with_shutting_down() {
    let mut node = TestNode::start();
    let m = node.manager().await;
    let q = m.queue::<i32>("q").await.unwrap();
    let parked = tokio::spawn({
        let q = q.clone();
        async move { q.get().await }
    });
    wait_for_waiters(&m, "q", 1).await;
    let status = node
        .terminate(Duration::from_secs(10))
        .expect("node stopped");
    assert!(status.success());
    let err = tokio::time::timeout(Duration::from_secs(5), parked)
        .await
        .expect("parked get ended")
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), Some(&ErrorKind::ShuttingDown), "{err}");
}

#[tokio::test]
async fn too_many_parked_calls_get_busy_not_a_stall() {
    let node = TestNode::start_with(&["--max-parked", "3"]);
    let m = node.manager().await;
    let e = m.event("e").await.unwrap();
    let mut waits = Vec::new();
    for _ in 0..3 {
        let e = e.clone();
        waits.push(tokio::spawn(async move { e.wait().await }));
    }
    wait_for_waiters(&m, "e", 3).await;
    let err = e.wait().await.unwrap_err();
    assert_eq!(err.kind(), Some(&ErrorKind::Busy), "{err}");
    // A refused call changes nothing: the barrier is not broken, the condition's lock
    // is still held.
    let b = m.barrier("b", 2).await.unwrap();
    assert_eq!(b.wait().await.unwrap_err().kind(), Some(&ErrorKind::Busy));
    assert!(!b.broken().await.unwrap());
    assert_eq!(b.n_waiting().await.unwrap(), 0);
    let c = m.condition("c").await.unwrap();
    let mut guard = c.acquire().await.unwrap();
    assert_eq!(
        guard.wait().await.unwrap_err().kind(),
        Some(&ErrorKind::Busy)
    );
    assert!(guard.is_held(), "a refused wait leaves the lock held");
    guard.release().await.unwrap();
    // Another connection has its own allowance, and the refused wait left nothing behind.
    let other = node.manager().await.event("e").await.unwrap();
    assert!(!other.wait_timeout(Duration::from_millis(10)).await.unwrap());
    e.set().await.unwrap();
    for w in waits {
        tokio::time::timeout(Duration::from_secs(5), w)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

#[tokio::test]
async fn syncman_status_shows_objects_holders_and_waiters() {
    let node = TestNode::start();
    let m = node.manager().await;
    let q = m.queue::<i32>("jobs").await.unwrap();
    let lock = m.lock("migration").await.unwrap();
    let _guard = lock.acquire().await.unwrap();
    let parked = tokio::spawn({
        let q = q.clone();
        async move { q.get().await }
    });
    let status = |key: &[u8]| {
        std::process::Command::new(syncman_tests::syncman_bin())
            .args(["status", "--addr", &node.addr().to_string()])
            .env("SYNCMAN_AUTHKEY", std::str::from_utf8(key).unwrap())
            .output()
            .expect("run syncman status")
    };
    let end = tokio::time::Instant::now() + Duration::from_secs(5);
    let text = loop {
        let out = status(node.authkey());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.contains("1 getters") || tokio::time::Instant::now() > end {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        text.contains("jobs") && text.contains("Queue") && text.contains("1 getters"),
        "{text}"
    );
    assert!(
        text.contains("migration") && text.contains("held by session"),
        "{text}"
    );
    let refused = status(b"wrong-key");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("authkey mismatch"));
    parked.abort();
}

#[tokio::test]
async fn requests_that_arrived_before_shutdown_are_answered() {
    let mut node = TestNode::start();
    let mut raw = RawSession::connect(node.addr(), node.authkey()).await;
    let dict = match raw
        .call(
            0,
            "get_or_create",
            &[Value::Str("dict".into()), Value::Str("d".into())],
        )
        .await
        .unwrap()
    {
        Value::Int(id) => id as u64,
        other => panic!("{other:?}"),
    };
    // One write: a shutdown request followed by twenty more calls.
    let mut ids = vec![raw.feed(0, "shutdown", &[]).await];
    for i in 0..20 {
        ids.push(
            raw.feed(dict, "__setitem__", &[Value::Int(i), Value::Int(i)])
                .await,
        );
    }
    raw.flush().await;
    let mut answered = Vec::new();
    for _ in 0..ids.len() {
        let (id, result) = tokio::time::timeout(Duration::from_secs(5), raw.recv())
            .await
            .expect("reply");
        assert!(result.is_ok(), "call {id}: {result:?}");
        answered.push(id);
    }
    answered.sort_unstable();
    assert_eq!(
        answered, ids,
        "every request that reached the node got its reply"
    );
    assert!(node
        .wait(Duration::from_secs(10))
        .expect("node stopped")
        .success());
}

#[tokio::test]
async fn deleting_an_object_ends_the_calls_waiting_on_it() {
    let node = TestNode::start();
    let m = node.manager().await;
    let q = m.queue::<i32>("doomed").await.unwrap();
    let lock = m.lock("doomed-lock").await.unwrap();
    let _held = lock.acquire().await.unwrap();
    let other = node.manager().await;
    let waiting_get = tokio::spawn({
        let q = q.clone();
        async move { q.get().await }
    });
    let waiting_lock = tokio::spawn({
        let l = other.lock("doomed-lock").await.unwrap();
        async move { l.acquire().await.map(|g| g.fencing_token()) }
    });
    wait_for_waiters(&m, "doomed", 1).await;
    wait_for_waiters(&m, "doomed-lock", 1).await;
    m.delete("doomed").await.unwrap();
    m.delete("doomed-lock").await.unwrap();
    for result in [
        tokio::time::timeout(Duration::from_secs(5), waiting_get)
            .await
            .expect("get ended")
            .unwrap()
            .map(|_| ()),
        tokio::time::timeout(Duration::from_secs(5), waiting_lock)
            .await
            .expect("acquire ended")
            .unwrap()
            .map(|_| ()),
    ] {
        assert_eq!(result.unwrap_err().kind(), Some(&ErrorKind::NotFound));
    }
}

#[tokio::test]
async fn shutdown_ends_every_session_even_one_whose_client_does_not_read() {
    let mut node = TestNode::start_with(&["--drain-timeout", "1"]);
    let m = node.manager().await;
    let q = m.queue::<i32>("q").await.unwrap();
    let parked = tokio::spawn({
        let q = q.clone();
        async move { q.get().await }
    });
    wait_for_waiters(&m, "q", 1).await;
    // A client that asks for 400 MiB of replies and reads none: its session stops on the
    // reply byte budget (64 MiB) and waits for it to read.
    let mut raw = RawSession::connect(node.addr(), node.authkey()).await;
    let list = match raw
        .call(0, "create", &[Value::Str("list".into())])
        .await
        .unwrap()
    {
        Value::Int(id) => id as u64,
        other => panic!("{other:?}"),
    };
    raw.call(list, "append", &[Value::Str("x".repeat(4 << 20))])
        .await
        .unwrap();
    for _ in 0..100 {
        raw.feed(list, "copy", &[]).await;
    }
    raw.flush().await;
    assert!(
        node.wait_for_log("reply queue full", Duration::from_secs(10)),
        "the unread session never filled its reply queue"
    );

    let stopping = std::time::Instant::now();
    let status = node
        .terminate(Duration::from_secs(20))
        .expect("node stopped");
    assert!(status.success());
    assert!(
        stopping.elapsed() < Duration::from_secs(10),
        "stopping took {:?} with a 1 s drain",
        stopping.elapsed()
    );
    let err = tokio::time::timeout(Duration::from_secs(5), parked)
        .await
        .expect("parked get ended")
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), Some(&ErrorKind::ShuttingDown), "{err}");
    // `run` returned only after every session had ended, the unread one included.
    let log = node.log();
    let stopped = log
        .find("stopped: every session has ended")
        .expect("the node logged that it stopped");
    let before = &log[..stopped];
    assert_eq!(
        before.matches("session started").count(),
        before.matches("session ended").count(),
        "a session was still running when the node stopped:\n{log}"
    );
    drop(raw);
}
