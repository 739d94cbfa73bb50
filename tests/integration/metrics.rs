//! Metrics: a node started with `--metrics-bind` serves Prometheus text at `GET /metrics`,
//! and its counts follow the work done to it: calls and their waits, sessions and how they
//! end, handshakes and how they fail, objects, waiters, bytes, reply queues. A bad HTTP
//! request harms nothing.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use syncman_client::Manager;
use syncman_protocol::message::{CONTROL_OBJECT, HELLO_ID};
use syncman_protocol::Value;
use syncman_tests::metrics::{
    http_exchange, http_get, scrape, wait_for_metric, wait_until_metric, Scrape,
};
use syncman_tests::python::Py;
use syncman_tests::{RawSession, TestNode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn with_metrics(extra: &[&str]) -> TestNode {
    let mut args = vec!["--metrics-bind", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    TestNode::start_with(&args)
}

const DICT_SET: [(&str, &str); 2] = [("typeid", "dict"), ("method", "__setitem__")];
const QUEUE_GET: [(&str, &str); 2] = [("typeid", "Queue"), ("method", "get")];
const QUEUE_PUT: [(&str, &str); 2] = [("typeid", "Queue"), ("method", "put")];

fn sessions(s: &Scrape, dialect: &str) -> f64 {
    s.value("syncman_sessions", &[("dialect", dialect)])
}

fn ended(s: &Scrape, reason: &str) -> f64 {
    s.value("syncman_sessions_ended_total", &[("reason", reason)])
}

fn failures(s: &Scrape, reason: &str) -> f64 {
    s.value("syncman_handshake_failures_total", &[("reason", reason)])
}

/// The histogram's series of one (typeid, method): its `le` buckets in order, sum and count.
fn histogram(s: &Scrape, labels: &[(&str, &str)]) -> (Vec<(f64, f64)>, f64, f64) {
    let name = "syncman_call_duration_seconds";
    let buckets = s
        .samples
        .iter()
        .filter(|x| x.name == format!("{name}_bucket"))
        .filter(|x| {
            labels
                .iter()
                .all(|(k, v)| x.labels.iter().any(|(a, b)| a == k && b == v))
        })
        .map(|x| {
            let le = x
                .labels
                .iter()
                .find(|(k, _)| k == "le")
                .expect("le")
                .1
                .clone();
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().expect("le is a number")
            };
            (le, x.value)
        })
        .collect();
    let sum = s.value(&format!("{name}_sum"), labels);
    let count = s.value(&format!("{name}_count"), labels);
    (buckets, sum, count)
}

#[tokio::test]
async fn a_scrape_counts_calls_waits_sessions_and_objects() {
    let node = with_metrics(&[]);
    let metrics = node.metrics_addr();
    let before = scrape(metrics).await;
    assert_eq!(sessions(&before, "native"), 0.0);
    assert_eq!(before.value("syncman_objects", &[("typeid", "dict")]), 0.0);
    assert_eq!(before.get("syncman_calls_total", &DICT_SET), None);

    let a = node.manager().await;
    let d = a.dict::<String, u64>("d").await.unwrap();
    const N: u64 = 25;
    for i in 0..N {
        d.insert(&format!("key {i}"), &i).await.unwrap();
    }
    let s = scrape(metrics).await;
    assert_eq!(s.value("syncman_calls_total", &DICT_SET), N as f64);
    let (buckets, sum, count) = histogram(&s, &DICT_SET);
    assert_eq!(count, N as f64);
    assert!(sum > 0.0, "{sum}");
    assert_eq!(buckets.len(), 18, "{buckets:?}");
    assert_eq!(buckets.last(), Some(&(f64::INFINITY, N as f64)));
    assert!(
        buckets
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
        "buckets rise: {buckets:?}"
    );
    assert_eq!(sessions(&s, "native"), 1.0);
    assert_eq!(s.value("syncman_objects", &[("typeid", "dict")]), 1.0);
    // The bytes gauge is the node's own count, as `status` reports it.
    let status = a.status().await.unwrap();
    let s = scrape(metrics).await;
    assert_eq!(
        Some(s.value("syncman_object_bytes", &[]) as u64),
        status.bytes
    );
    assert!(s.value("syncman_object_bytes", &[]) > 0.0);
    assert_eq!(
        Some(s.value("syncman_object_bytes_limit", &[]) as u64),
        status.max_bytes
    );

    // A get that waits: the waiter shows while it waits, and its wait is in its latency.
    let b = node.manager().await;
    let q = b.queue::<u64>("q").await.unwrap();
    let getter = tokio::spawn(async move { q.get().await });
    wait_for_metric(metrics, "syncman_waiters", &[("typeid", "Queue")], 1.0).await;
    let parked_by = Instant::now();
    // Some work while it waits (a scrape and a control call), so the wait is measurable.
    let s = scrape(metrics).await;
    assert_eq!(
        s.get("syncman_calls_total", &QUEUE_GET),
        None,
        "counted at its end"
    );
    assert_eq!(sessions(&s, "native"), 2.0);
    let qa = a.queue::<u64>("q").await.unwrap();
    let waited_at_least = parked_by.elapsed();
    qa.put(&7).await.unwrap();
    assert_eq!(getter.await.unwrap().unwrap(), 7);
    let s = wait_for_metric(metrics, "syncman_calls_total", &QUEUE_GET, 1.0).await;
    assert_eq!(s.value("syncman_calls_total", &QUEUE_PUT), 1.0);
    assert_eq!(s.value("syncman_waiters", &[("typeid", "Queue")]), 0.0);
    assert_eq!(s.value("syncman_objects", &[("typeid", "Queue")]), 1.0);
    let (_, get_sum, _) = histogram(&s, &QUEUE_GET);
    assert!(
        get_sum >= waited_at_least.as_secs_f64(),
        "the get waited over {waited_at_least:?}, but its latency is {get_sum} s"
    );
    let (_, put_sum, _) = histogram(&s, &QUEUE_PUT);
    assert!(put_sum < get_sum, "put {put_sum} s, get {get_sum} s");

    // An anonymous object is counted while it lives.
    let list = a.new_list::<u64>().await.unwrap();
    list.push(&1).await.unwrap();
    wait_for_metric(metrics, "syncman_objects", &[("typeid", "list")], 1.0).await;
    drop(list);
    wait_for_metric(metrics, "syncman_objects", &[("typeid", "list")], 0.0).await;

    // A client that leaves ends its session.
    drop(b);
    let s = wait_for_metric(metrics, "syncman_sessions", &[("dialect", "native")], 1.0).await;
    assert_eq!(ended(&s, "client_closed"), 1.0);
    for reason in ["heartbeat_expired", "shutdown", "backend_lost", "error"] {
        assert_eq!(ended(&s, reason), 0.0, "{reason}");
    }
    // Nothing failed a handshake.
    for reason in ["wrong_key", "timeout", "refused", "closed", "tls", "other"] {
        assert_eq!(failures(&s, reason), 0.0, "{reason}");
    }
    assert_eq!(s.value("syncman_connections_handshaking", &[]), 0.0);
}

/// Reads until the node closes the connection (bounded); true if it did.
async fn closed_by_node(stream: &mut TcpStream) -> bool {
    let mut sink = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut sink));
    read.await.is_ok()
}

#[tokio::test]
async fn handshake_failures_are_counted_by_reason() {
    let node = with_metrics(&[
        "--first-answer-timeout",
        "0.5",
        "--max-handshakes-per-address",
        "1",
    ]);
    let metrics = node.metrics_addr();
    // A peer that says nothing holds a handshake place...
    let mut silent = TcpStream::connect(node.addr()).await.unwrap();
    wait_for_metric(metrics, "syncman_connections_handshaking", &[], 1.0).await;
    // ...so a second one from the same address is refused...
    let mut refused = TcpStream::connect(node.addr()).await.unwrap();
    assert!(closed_by_node(&mut refused).await);
    wait_for_metric(
        metrics,
        "syncman_handshake_failures_total",
        &[("reason", "refused")],
        1.0,
    )
    .await;
    // ...and the silent one is let go when its time to answer passes.
    assert!(closed_by_node(&mut silent).await);
    let s = wait_for_metric(
        metrics,
        "syncman_handshake_failures_total",
        &[("reason", "timeout")],
        1.0,
    )
    .await;
    assert_eq!(s.value("syncman_connections_handshaking", &[]), 0.0);

    // A client with another key.
    let wrong = Manager::connect(node.addr(), b"not the key").await;
    assert!(wrong.is_err(), "a wrong key got in");
    wait_for_metric(
        metrics,
        "syncman_handshake_failures_total",
        &[("reason", "wrong_key")],
        1.0,
    )
    .await;

    // A peer that hangs up mid-handshake (a TCP health check).
    drop(TcpStream::connect(node.addr()).await.unwrap());
    wait_for_metric(
        metrics,
        "syncman_handshake_failures_total",
        &[("reason", "closed")],
        1.0,
    )
    .await;

    // A good client is no failure; each reason counted exactly once.
    let m = node.manager().await;
    m.ping().await.unwrap();
    let s = scrape(metrics).await;
    let counts: Vec<_> = ["wrong_key", "timeout", "refused", "closed", "tls", "other"]
        .map(|r| (r, failures(&s, r)))
        .to_vec();
    assert_eq!(
        counts,
        [
            ("wrong_key", 1.0),
            ("timeout", 1.0),
            ("refused", 1.0),
            ("closed", 1.0),
            ("tls", 0.0),
            ("other", 0.0)
        ]
    );
    assert_eq!(s.value("syncman_connections_handshaking", &[]), 0.0);
    assert_eq!(sessions(&s, "native"), 1.0);
}

#[tokio::test]
async fn sessions_ended_by_a_bad_frame_or_a_missed_heartbeat_are_told_apart() {
    let node = with_metrics(&[]);
    let metrics = node.metrics_addr();
    // 0xc1 is never valid MessagePack: the node closes this connection.
    let mut bad = RawSession::connect(node.addr(), node.authkey()).await;
    bad.send_raw(&[0xc1]).await;
    assert!(bad.closed_by_node().await);
    wait_for_metric(
        metrics,
        "syncman_sessions_ended_total",
        &[("reason", "error")],
        1.0,
    )
    .await;
    // Asks for the shortest heartbeat deadline (1 s), then falls silent.
    let (mut silent, granted) = RawSession::connect_with_heartbeat(
        node.addr(),
        node.authkey(),
        Some(Duration::from_millis(10)),
    )
    .await;
    assert_eq!(granted, Some(Duration::from_secs(1)));
    let s = wait_for_metric(
        metrics,
        "syncman_sessions_ended_total",
        &[("reason", "heartbeat_expired")],
        1.0,
    )
    .await;
    // The node said why, then closed.
    let (id, notice) = silent.recv().await;
    assert!(id == HELLO_ID && notice.is_err(), "{id} {notice:?}");
    assert!(silent.closed_by_node().await);
    assert_eq!(ended(&s, "error"), 1.0);
    assert_eq!(ended(&s, "client_closed"), 0.0);
    assert_eq!(sessions(&s, "native"), 0.0);
}

#[tokio::test]
async fn a_client_that_does_not_read_shows_in_the_reply_queue() {
    let node = with_metrics(&[]);
    let metrics = node.metrics_addr();
    let mut raw = RawSession::connect(node.addr(), node.authkey()).await;
    let Ok(Value::Int(d)) = raw
        .call(
            CONTROL_OBJECT,
            "get_or_create",
            &[Value::Str("dict".into()), Value::Str("big".into())],
        )
        .await
    else {
        panic!("get_or_create returns an id")
    };
    let d = d as u64;
    let big = Value::Bytes(vec![7; 1 << 20]);
    raw.call(d, "__setitem__", &[Value::Str("k".into()), big])
        .await
        .unwrap();
    // 40 MiB of answers, more than the sockets' buffers hold: the rest waits in the queue.
    const GETS: usize = 40;
    for _ in 0..GETS {
        raw.feed(d, "__getitem__", &[Value::Str("k".into())]).await;
    }
    raw.flush().await;
    // More than one reply waiting: more than the sockets' buffers took.
    let queued = wait_until_metric(metrics, "syncman_replies_queued", &[], "above 1", |n| {
        n.is_some_and(|n| n > 1.0)
    })
    .await;
    let replies = queued.value("syncman_replies_queued", &[]);
    let bytes = queued.value("syncman_reply_bytes_queued", &[]);
    assert!(replies <= GETS as f64, "{replies}");
    // Every reply waiting is whole but the one being written.
    let reply = (1 << 20) as f64;
    assert!(
        bytes > (replies - 1.0) * reply && bytes <= replies * (reply + 64.0),
        "{replies} replies in {bytes} bytes"
    );
    // Once the client reads them all, the queue is empty.
    for _ in 0..GETS {
        let (_, reply) = raw.recv().await;
        assert!(reply.is_ok());
    }
    let s = wait_for_metric(metrics, "syncman_replies_queued", &[], 0.0).await;
    assert_eq!(s.value("syncman_reply_bytes_queued", &[]), 0.0);
}

/// A CPython proxy connection is a `pickle` session; its calls count like any other.
#[tokio::test]
async fn a_cpython_client_is_a_pickle_session_and_its_calls_count() {
    let node = with_metrics(&[]);
    let metrics = node.metrics_addr();
    let key: String = node.authkey().iter().map(|b| format!("{b:02x}")).collect();
    let script = format!(
        "import sys\n\
         from multiprocessing.managers import SyncManager\n\
         m = SyncManager(address=('{}', {}), authkey=bytes.fromhex('{key}'))\n\
         m.connect()\n\
         d = m.dict()\n\
         for i in range(3):\n    d[str(i)] = i\n\
         print('READY', flush=True)\n\
         sys.stdin.readline()\n",
        node.addr().ip(),
        node.addr().port()
    );
    let mut python = tokio::process::Command::from(Py::V311.command())
        .args(["-c", &script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start python3");
    let mut stdout = python.stdout.take().expect("stdout");
    let mut ready = [0u8; 5];
    tokio::time::timeout(Duration::from_secs(30), stdout.read_exact(&mut ready))
        .await
        .expect("python did not get ready")
        .expect("python's stdout");
    assert_eq!(&ready, b"READY");
    let s = scrape(metrics).await;
    assert_eq!(sessions(&s, "pickle"), 1.0);
    assert_eq!(sessions(&s, "native"), 0.0);
    assert_eq!(s.value("syncman_calls_total", &DICT_SET), 3.0);
    // Python leaves: its session ends.
    let mut stdin = python.stdin.take().expect("stdin");
    stdin.write_all(b"\n").await.unwrap();
    drop(stdin);
    let exit = tokio::time::timeout(Duration::from_secs(30), python.wait())
        .await
        .expect("python did not exit")
        .unwrap();
    assert!(exit.success(), "{exit}");
    let s = wait_for_metric(metrics, "syncman_sessions", &[("dialect", "pickle")], 0.0).await;
    assert_eq!(ended(&s, "client_closed"), 1.0);
}

/// Sends `request` to the metrics port; the status of the answer (0: closed without one).
async fn status_of(metrics: SocketAddr, request: &[u8]) -> u16 {
    http_exchange(metrics, request).await.0
}

#[tokio::test]
async fn bad_http_requests_do_not_harm_the_node() {
    let node = with_metrics(&[]);
    let metrics = node.metrics_addr();
    let m = node.manager().await;
    let d = m.dict::<String, u64>("d").await.unwrap();
    d.insert(&"k".into(), &1).await.unwrap();

    assert_eq!(http_get(metrics, "/").await.0, 404);
    assert_eq!(http_get(metrics, "/metrics/x").await.0, 404);
    let post = b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc";
    assert_eq!(status_of(metrics, post).await, 405);
    let head = http_exchange(metrics, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(head.0, 200, "{}", head.1);
    assert!(head.1.ends_with("\r\n\r\n"), "HEAD has no body: {}", head.1);
    // Not HTTP at all.
    let garbage = status_of(metrics, b"\x00\x01\x02 not http \xff\xfe\r\n\r\n").await;
    assert!(garbage == 400 || garbage == 0, "{garbage}");
    // A header over the endpoint's 16 KiB (hyper alone would take 400 KiB): refused.
    let mut big = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    big.extend(vec![b'a'; 64 << 10]);
    big.extend_from_slice(b"\r\n\r\n");
    assert_eq!(status_of(metrics, &big).await, 431);
    // A header of 1 MiB: refused (431), or cut off.
    let mut huge = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    huge.extend(vec![b'a'; 1 << 20]);
    huge.extend_from_slice(b"\r\n\r\n");
    let status = status_of(metrics, &huge).await;
    assert!(status == 431 || status == 0, "{status}");
    // Ten thousand headers.
    let mut many = b"GET /metrics HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..10_000 {
        many.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    let status = status_of(metrics, &many).await;
    assert!(status == 431 || status == 0, "{status}");

    // A client that starts a request and stalls does not hold up a scrape, and is let go
    // when its time to send headers passes (5 s).
    let mut stalled = TcpStream::connect(metrics).await.unwrap();
    stalled.write_all(b"GET /metr").await.unwrap();
    let s = scrape(metrics).await;
    assert_eq!(s.value("syncman_calls_total", &DICT_SET), 1.0);
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stalled.read_to_end(&mut answer));
    assert!(read.await.is_ok(), "a stalled request was never closed");

    // The node serves on, and so does its metrics endpoint.
    d.insert(&"k".into(), &2).await.unwrap();
    assert_eq!(d.get(&"k".into()).await.unwrap(), Some(2));
    let s = scrape(metrics).await;
    assert_eq!(s.value("syncman_calls_total", &DICT_SET), 2.0);
    assert_eq!(sessions(&s, "native"), 1.0);
}

#[test]
fn without_the_flag_there_is_no_metrics_line() {
    let mut node = TestNode::start();
    // The node answers calls only once past the point where it would print `metrics on`.
    // The runtime goes with the client, so its connection is closed before the node stops.
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async { node.manager().await.ping().await.unwrap() });
    assert!(
        node.terminate(Duration::from_secs(20)).is_some(),
        "the node exits on SIGTERM"
    );
    // The node has exited: every line it printed has been read.
    assert_eq!(
        node.stdout_line("metrics on", Duration::from_secs(10)),
        None
    );
}

/// An embedding program reads the metrics itself; sessions ended by the node's shutdown are
/// counted (the binary's endpoint stops with the node, so only an embedder sees them).
#[tokio::test]
async fn an_embedding_program_reads_its_metrics_after_shutdown() {
    let server = syncman_server::Server::builder(b"embedded".to_vec())
        .metrics()
        .build()
        .unwrap();
    let metrics = server.metrics().expect("metrics are on");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = server.shutdown_handle();
    let running = tokio::spawn(server.run(listener));

    let m = Manager::connect(addr, b"embedded").await.unwrap();
    let q = m.queue::<u64>("q").await.unwrap();
    let getter = tokio::spawn(async move { q.get().await });
    let end = Instant::now() + Duration::from_secs(10);
    while Scrape::parse(&metrics.encode().unwrap()).value("syncman_waiters", &[("typeid", "Queue")])
        != 1.0
    {
        assert!(Instant::now() < end, "the get never parked");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.shutdown();
    running.await.unwrap().unwrap();
    let shut_down = getter.await.unwrap();
    assert!(shut_down.is_err(), "{shut_down:?}");

    let s = Scrape::parse(&metrics.encode().unwrap());
    assert_eq!(ended(&s, "shutdown"), 1.0);
    assert_eq!(sessions(&s, "native"), 0.0);
    // The get ended with the shutdown, and was counted then.
    assert_eq!(s.value("syncman_calls_total", &QUEUE_GET), 1.0);
    assert_eq!(s.value("syncman_waiters", &[("typeid", "Queue")]), 0.0);
}
