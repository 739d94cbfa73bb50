//! The `syncman` command line, run as a real process: `--version`, `status` (text and
//! `--json`) and `shutdown`.

use std::process::Output;
use std::time::{Duration, Instant};

use syncman_tests::{syncman_bin, wait_for_waiters, TestNode};

/// Bound on one run of the binary.
const WAIT: Duration = Duration::from_secs(20);

/// Runs `syncman ARGS` with `SYNCMAN_AUTHKEY=key` (if any), bounded by [`WAIT`].
pub(crate) async fn syncman(args: &[&str], key: Option<&[u8]>) -> Output {
    let mut cmd = tokio::process::Command::new(syncman_bin());
    cmd.args(args)
        .env_remove("SYNCMAN_AUTHKEY")
        .kill_on_drop(true);
    if let Some(key) = key {
        cmd.env(
            "SYNCMAN_AUTHKEY",
            std::str::from_utf8(key).expect("text key"),
        );
    }
    tokio::time::timeout(WAIT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("syncman {args:?} did not finish within {WAIT:?}"))
        .expect("run syncman")
}

pub(crate) fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn version_prints_the_name_and_the_version() {
    for flag in ["--version", "-V"] {
        let out = syncman(&[flag], None).await;
        assert!(out.status.success(), "{flag}: {}", stderr(&out));
        assert_eq!(
            stdout(&out),
            format!("syncman {}\n", env!("CARGO_PKG_VERSION")),
            "{flag}"
        );
    }
}

/// `status --json` parsed and checked against the work done: a named dict and a queue
/// with a parked `get`, the node's version and an uptime no longer than the node has run.
#[tokio::test]
async fn status_json_reports_the_objects_waiters_version_and_uptime() {
    let before_start = Instant::now();
    let node = TestNode::start_with(&["--max-bytes", "3M"]);
    let m = node.manager().await;
    let settings = m.dict::<String, i64>("settings").await.unwrap();
    settings.insert(&"retries".into(), &3).await.unwrap();
    let jobs = m.queue::<i64>("jobs").await.unwrap();
    let parked = tokio::spawn(async move { jobs.get().await });
    wait_for_waiters(&m, "jobs", 1).await;

    let addr = node.addr().to_string();
    let out = syncman(&["status", "--json", "--addr", &addr], Some(node.authkey())).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let status: serde_json::Value =
        serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)));
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"), "{status}");
    let uptime = status["uptime"].as_f64().expect("uptime in seconds");
    assert!(
        uptime > 0.0 && uptime <= before_start.elapsed().as_secs_f64(),
        "uptime {uptime} s, but the node was started {:?} ago",
        before_start.elapsed()
    );
    assert!(status["sessions"].as_u64() >= Some(1), "{status}");
    assert_eq!(status["max_bytes"], 3 << 20, "{status}");
    assert!(status["bytes"].as_u64() > Some(0), "{status}");
    let objects = status["objects"].as_array().expect("objects");
    let named = |name: &str| {
        objects
            .iter()
            .find(|o| o["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {status}"))
    };
    let dict = named("settings");
    assert_eq!(dict["typeid"], "dict");
    assert_eq!(dict["waiters"], 0);
    assert!(dict["id"].as_u64().is_some() && dict["refs"].as_u64().is_some());
    let queue = named("jobs");
    assert_eq!(queue["typeid"], "Queue");
    assert_eq!(queue["waiters"], 1, "{queue}");
    assert!(queue["detail"]
        .as_str()
        .is_some_and(|d| d.contains("1 getters")));

    // The table for people says the same.
    let out = syncman(&["status", "--addr", &addr], Some(node.authkey())).await;
    let text = stdout(&out);
    assert!(
        text.starts_with(&format!("syncman {}, up ", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    assert!(
        text.contains("jobs") && text.contains("1 getters"),
        "{text}"
    );
    parked.abort();
}

#[tokio::test]
async fn shutdown_stops_the_node_once_it_has_acknowledged() {
    let mut node = TestNode::start();
    let m = node.manager().await;
    m.ping().await.unwrap();
    let addr = node.addr().to_string();
    let out = syncman(&["shutdown", "--addr", &addr], Some(node.authkey())).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("acknowledged the shutdown"),
        "{}",
        stdout(&out)
    );
    let exit = node
        .wait(Duration::from_secs(15))
        .expect("the node exits after a shutdown");
    assert!(exit.success(), "{exit}");
    assert!(node.log().contains("shutdown requested by a client"));
}

#[tokio::test]
async fn shutdown_with_a_wrong_key_or_no_node_fails_and_says_why() {
    let mut node = TestNode::start();
    let addr = node.addr().to_string();
    let out = syncman(&["shutdown", "--addr", &addr], Some(b"wrong-key")).await;
    assert!(!out.status.success(), "a wrong key shut the node down");
    assert!(
        stderr(&out).contains("authkey mismatch"),
        "{}",
        stderr(&out)
    );
    // Still serving.
    assert!(node.is_running());
    node.manager().await.ping().await.unwrap();

    let no_key = syncman(&["shutdown", "--addr", &addr], None).await;
    assert!(!no_key.status.success());
    assert!(
        stderr(&no_key).contains("no authkey"),
        "{}",
        stderr(&no_key)
    );

    // A port nobody listens on: take one, then free it.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gone = free.local_addr().unwrap().to_string();
    drop(free);
    let out = syncman(&["shutdown", "--addr", &gone], Some(node.authkey())).await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!("cannot connect to {gone}")),
        "{}",
        stderr(&out)
    );
    assert!(node.is_running());
}

/// Every line the node writes with `--log-format json` is one JSON object with the
/// standard fields, and an event's own fields (`peer`, `session`) sit beside them.
#[tokio::test]
async fn log_format_json_writes_one_object_per_line() {
    let mut node = TestNode::start_with(&["--log-format", "json"]);
    let m = node.manager().await;
    m.dict::<String, i64>("logged").await.unwrap();
    let wrong = syncman_client::Manager::connect(node.addr(), b"wrong-key").await;
    assert!(wrong.is_err());
    let addr = node.addr().to_string();
    let out = syncman(&["shutdown", "--addr", &addr], Some(node.authkey())).await;
    assert!(out.status.success(), "{}", stderr(&out));
    node.wait(Duration::from_secs(15))
        .expect("the node exits after a shutdown");

    let log = node.log();
    let events: Vec<serde_json::Value> = log
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"))
        })
        .collect();
    for event in &events {
        for field in ["timestamp", "level", "target", "message"] {
            assert!(event[field].is_string(), "no {field} in {event}");
        }
    }
    let has = |message: &str, fields: &[&str]| {
        events.iter().any(|e| {
            e["message"].as_str().is_some_and(|m| m.contains(message))
                && fields.iter().all(|f| !e[*f].is_null())
        })
    };
    assert!(has("session started", &["peer", "session"]), "{log}");
    assert!(has("created named object", &["name", "typeid"]), "{log}");
    assert!(has("authentication failed", &["peer"]), "{log}");
    assert!(has("stopped", &[]), "{log}");

    // The other subcommands take it too, their last words included.
    let gone = node.addr().to_string();
    let out = syncman(
        &["status", "--addr", &gone, "--log-format", "json"],
        Some(b"k"),
    )
    .await;
    assert!(!out.status.success());
    let error: serde_json::Value = serde_json::from_str(stderr(&out).trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stderr(&out)));
    assert_eq!(error["level"], "ERROR", "{error}");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("cannot connect")),
        "{error}"
    );
}
