//! Quotas: objects per session and per node, bytes held by all objects (parked puts
//! included), and the client's outgoing queue. Each is reached through the real binary;
//! a refused call is a `MemoryError` that changes nothing, and the node carries on.

use std::time::Duration;

use syncman_client::{ConnectOptions, Error, ErrorKind, Manager, QueueProxy};
use syncman_tests::{wait_for_object_waiters, TestNode};

fn is_memory_error(e: &Error) -> bool {
    e.kind() == Some(&ErrorKind::Other("MemoryError".into()))
}

#[tokio::test]
async fn objects_per_session_and_per_node_are_bounded() {
    let node = TestNode::start_with(&["--max-objects", "8", "--max-objects-per-session", "3"]);
    let a = node.manager().await;
    let mut mine = Vec::new();
    for _ in 0..3 {
        mine.push(a.new_list::<i32>().await.unwrap());
    }
    let e = a.new_list::<i32>().await.unwrap_err();
    assert!(is_memory_error(&e), "{e}");
    assert_eq!(
        a.status().await.unwrap().objects.len(),
        3,
        "a refused create left an object"
    );

    // Another session has its own allowance; named objects count towards the node's.
    let b = node.manager().await;
    let _theirs = b.new_dict::<String, i32>().await.unwrap();
    for i in 0..4 {
        b.dict::<String, i32>(&format!("named-{i}")).await.unwrap();
    }
    let e = b.dict::<String, i32>("one-too-many").await.unwrap_err();
    assert!(is_memory_error(&e), "{e}");
    let e = a.new_list::<i32>().await.unwrap_err();
    assert!(is_memory_error(&e), "{e}");

    // Room again once an object goes.
    mine.pop();
    b.delete("named-0").await.unwrap();
    let end = tokio::time::Instant::now() + Duration::from_secs(10);
    while a.status().await.unwrap().objects.len() > 6 {
        assert!(
            tokio::time::Instant::now() < end,
            "the dropped list was never freed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    mine.push(a.new_list::<i32>().await.unwrap());
    b.dict::<String, i32>("one-too-many").await.unwrap();
    assert_eq!(a.status().await.unwrap().objects.len(), 8);
}

#[tokio::test]
async fn bytes_held_are_bounded_and_a_refused_call_changes_nothing() {
    let node = TestNode::start_with(&["--max-bytes", "64K"]);
    let m = node.manager().await;
    let status = m.status().await.unwrap();
    assert_eq!(status.max_bytes, Some(64 * 1024));
    let d = m.dict::<u32, String>("d").await.unwrap();
    let value = "v".repeat(1000);
    let mut stored = 0;
    let refused = loop {
        match d.insert(&stored, &value).await {
            Ok(()) => stored += 1,
            Err(e) => break e,
        }
        assert!(stored < 1000, "the budget never ran out");
    };
    assert!(is_memory_error(&refused), "{refused}");
    assert_eq!(
        d.len().await.unwrap(),
        stored as usize,
        "a refused set changed the dict"
    );
    let held = m.status().await.unwrap().bytes.unwrap();
    assert!(held <= 64 * 1024, "{held} bytes held");

    // A bounded queue's parked puts hold their items too: they are refused as well.
    let q = m.bounded_queue::<String>("q", 1).await.unwrap();
    d.remove(&0).await.unwrap();
    d.remove(&1).await.unwrap();
    q.put(&"x".repeat(900)).await.unwrap();
    let parked = tokio::spawn({
        let q = q.clone();
        let item = "p".repeat(900);
        async move { q.put(&item).await }
    });
    wait_for_object_waiters(&m, q.id(), 1).await;
    let e = q.put(&"y".repeat(900)).await.unwrap_err();
    assert!(is_memory_error(&e), "{e}");

    // What was taken out frees room: everything carries on.
    assert_eq!(q.get().await.unwrap().len(), 900);
    parked.await.unwrap().unwrap();
    d.remove(&2).await.unwrap();
    d.insert(&0, &value).await.unwrap();
    drop(d);
    m.delete("d").await.unwrap();
    let end = tokio::time::Instant::now() + Duration::from_secs(10);
    while m.status().await.unwrap().bytes.unwrap() > 1000 {
        assert!(
            tokio::time::Instant::now() < end,
            "deleting the dict freed no bytes"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The outgoing queue's limit in the stalled-node tests.
const LIMIT: usize = 1 << 20;
/// Each put's item: a 64 KiB string.
const ITEM: usize = 64 * 1024;

/// A node stopped with SIGSTOP while `n` puts of [`ITEM`] bytes wait on a client whose
/// outgoing queue holds [`LIMIT`] bytes; returned once that queue is full (the positive
/// signal that calls now wait for room).
struct Stalled {
    node: TestNode,
    m: Manager,
    q: QueueProxy<String>,
    puts: Vec<tokio::task::JoinHandle<syncman_client::Result<()>>>,
}

impl Stalled {
    async fn with_puts(n: usize) -> Stalled {
        let node = TestNode::start();
        let opts = ConnectOptions {
            max_outgoing_bytes: LIMIT,
            heartbeat_ttl: None,
            ..ConnectOptions::default()
        };
        let m = Manager::connect_with(node.addr(), node.authkey(), opts)
            .await
            .unwrap();
        let q = m.queue::<String>("sink").await.unwrap();
        let stalled = Stalled {
            node,
            m,
            q,
            puts: Vec::new(),
        };
        syncman_tests::stop_process(stalled.node.pid().expect("node pid"));
        let item = "i".repeat(ITEM);
        let puts = (0..n)
            .map(|_| {
                let (q, item) = (stalled.q.clone(), item.clone());
                tokio::spawn(async move { q.put(&item).await })
            })
            .collect();
        let end = tokio::time::Instant::now() + Duration::from_secs(20);
        while stalled.m.outgoing_bytes() + ITEM < LIMIT {
            assert!(tokio::time::Instant::now() < end, "the queue never filled");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Stalled { puts, ..stalled }
    }

    fn signal(&self, sig: &str) {
        let pid = self.node.pid().expect("node pid").to_string();
        let ok = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    }
}

/// With the node stopped (SIGSTOP), a program that keeps calling fills its socket and then
/// its outgoing queue, which stops at the limit: calls wait instead of queueing 64 MiB.
/// Resumed, every call completes.
#[tokio::test]
async fn a_stalled_node_holds_the_clients_outgoing_queue_at_its_limit() {
    let stalled = Stalled::with_puts(1024).await;
    // The queue stays at its limit while 64 MiB of puts wait.
    let mut highest = 0;
    for _ in 0..50 {
        highest = highest.max(stalled.m.outgoing_bytes());
        tokio::task::yield_now().await;
    }
    let frame = ITEM + 64;
    assert!(
        highest <= LIMIT + frame,
        "{highest} bytes queued past a {LIMIT} limit"
    );
    assert!(
        stalled.puts.iter().any(|p| !p.is_finished()),
        "every put finished on a stopped node"
    );
    stalled.signal("-CONT");
    for p in stalled.puts {
        tokio::time::timeout(Duration::from_secs(30), p)
            .await
            .expect("a put never completed")
            .unwrap()
            .unwrap();
    }
    assert_eq!(stalled.q.len().await.unwrap(), 1024);
    eprintln!("outgoing queue peaked at {highest} bytes (limit {LIMIT})");
}

/// The node dies while calls wait for room in the client's outgoing queue: every call
/// fails, as every call in flight does when the connection is lost; none waits for ever.
#[tokio::test]
async fn calls_waiting_for_room_fail_when_the_node_dies() {
    let stalled = Stalled::with_puts(256).await;
    assert!(
        stalled.puts.iter().any(|p| !p.is_finished()),
        "every put finished on a stopped node"
    );
    stalled.signal("-KILL");
    for p in stalled.puts {
        let put = tokio::time::timeout(Duration::from_secs(30), p)
            .await
            .expect("a call waiting for room still waits after the node died")
            .unwrap();
        assert!(put.is_err(), "a put succeeded on a dead node");
    }
}
