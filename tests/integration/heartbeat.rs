//! Heartbeats: a client that asks for a deadline and falls silent loses its session (and
//! what it held); one that heartbeats keeps it however long it idles; a client that asks
//! for none (CPython's) is never expired.

use std::time::Duration;

use syncman_client::{ConnectOptions, ErrorKind, Manager};
use syncman_protocol::message::{CONTROL_OBJECT, HELLO_ID};
use syncman_protocol::Value;
use syncman_tests::{RawSession, TestNode};

fn str_(s: &str) -> Value {
    Value::Str(s.into())
}

/// A raw session that holds the lock `name`, asking for `ttl`; returns it with the
/// deadline the node granted.
async fn raw_holder(
    node: &TestNode,
    name: &str,
    ttl: Option<Duration>,
) -> (RawSession, Option<Duration>) {
    let (mut raw, granted) =
        RawSession::connect_with_heartbeat(node.addr(), node.authkey(), ttl).await;
    let Ok(Value::Int(lock)) = raw
        .call(CONTROL_OBJECT, "get_or_create", &[str_("Lock"), str_(name)])
        .await
    else {
        panic!("get_or_create returns an id")
    };
    // Through a grant, as the Rust client's guards take it: a plain `acquire` (CPython's)
    // would outlive the session, as in CPython, since anyone may release a plain Lock.
    let acquired = raw.call(lock as u64, "acquire_fenced", &[]).await;
    assert!(matches!(acquired, Ok(Value::Int(_))), "{acquired:?}");
    (raw, granted)
}

#[tokio::test]
async fn a_silent_session_expires_is_told_why_and_its_lock_is_freed() {
    let node = TestNode::start();
    // Asked for less than the node's floor (1 s): granted the floor.
    let (mut raw, granted) = raw_holder(&node, "L", Some(Duration::from_millis(10))).await;
    assert_eq!(granted, Some(Duration::from_secs(1)));

    let other = node.manager().await;
    let lock = other.lock("L").await.unwrap();
    let started = tokio::time::Instant::now();
    let guard = lock
        .acquire_timeout(Duration::from_secs(20))
        .await
        .unwrap()
        .expect("the silent session's lock was not freed");
    let waited = started.elapsed();
    assert!(guard.is_held());
    // The notice comes on the session's own id, then the node closes.
    let (id, notice) = tokio::time::timeout(Duration::from_secs(10), raw.recv())
        .await
        .expect("no notice");
    assert_eq!(id, HELLO_ID);
    let notice = notice.expect_err("an error notice");
    assert_eq!(notice.kind, ErrorKind::SessionExpired, "{notice}");
    assert!(raw.closed_by_node().await);
    assert!(node.wait_for_log("session expired", Duration::from_secs(10)));
    eprintln!("lock freed {waited:?} into a 1 s deadline");
}

#[tokio::test]
async fn a_session_that_heartbeats_outlives_its_deadline_many_times_over() {
    let node = TestNode::start();
    // A raw session heartbeating by hand, and the client's own heartbeat.
    let (mut raw, granted) = raw_holder(&node, "raw", Some(Duration::from_secs(1))).await;
    assert_eq!(granted, Some(Duration::from_secs(1)));
    let opts = ConnectOptions {
        heartbeat_ttl: Some(Duration::from_secs(1)),
        ..ConnectOptions::default()
    };
    let idle = Manager::connect_with(node.addr(), node.authkey(), opts)
        .await
        .unwrap();
    let guard = idle.lock("client").await.unwrap().acquire().await.unwrap();

    // Another session waits 3 s (three deadlines) for each lock and times out: the
    // positive sign that the time passed with both sessions alive. The raw session
    // heartbeats meanwhile, every 300 ms.
    let other = node.manager().await;
    let (raw_lock, client_lock) = (
        other.lock("raw").await.unwrap(),
        other.lock("client").await.unwrap(),
    );
    let waits = async {
        let a = raw_lock.acquire_timeout(Duration::from_secs(3));
        let b = client_lock.acquire_timeout(Duration::from_secs(3));
        let (a, b) = tokio::join!(a, b);
        (a.unwrap().is_some(), b.unwrap().is_some())
    };
    tokio::pin!(waits);
    let mut beat = tokio::time::interval(Duration::from_millis(300));
    let (raw_lost, client_lost) = loop {
        tokio::select! {
            got = &mut waits => break got,
            _ = beat.tick() => raw.heartbeat().await,
        }
    };
    assert!(
        !raw_lost,
        "the raw session's lock was freed while it heartbeat"
    );
    assert!(
        !client_lost,
        "the idle client's lock was freed: no heartbeat?"
    );
    assert!(guard.is_held());
    guard
        .release()
        .await
        .expect("the idle client still holds its lock");
    assert!(!node.log().contains("session expired"), "{}", node.log());
}

#[tokio::test]
async fn a_session_without_a_deadline_is_never_expired() {
    let node = TestNode::start();
    let (mut raw, granted) = raw_holder(&node, "L", None).await;
    assert_eq!(granted, None);
    // Silent for 2.5 s, longer than the node's smallest deadline twice over; the timed-out
    // wait is the sign that the time passed.
    let other = node.manager().await;
    let lock = other.lock("L").await.unwrap();
    let got = lock
        .acquire_timeout(Duration::from_millis(2500))
        .await
        .unwrap();
    assert!(
        got.is_none(),
        "the lock of a session without a deadline was freed"
    );
    assert_eq!(raw.call(CONTROL_OBJECT, "ping", &[]).await, Ok(Value::Nil));
}
