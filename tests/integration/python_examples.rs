//! The Python example programs (`examples/python/`), plain CPython clients written as
//! CPython's documentation writes remote-manager clients (`BaseManager.register('get_queue')`),
//! run unchanged against `syncman serve --typeid ...` beside the Rust examples, on the same
//! named objects: a work queue, a counter under a lock, a barrier and a dict.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::Duration;

use syncman_tests::python::Py;
use syncman_tests::{example_bin, TestNode};

/// Bound on any one program.
const WAIT: Duration = Duration::from_secs(60);

/// What each Python example asks for, served as the named objects the Rust examples use.
const TYPEIDS: [&str; 5] = [
    "get_queue=Queue:jobs",
    "get_lock=Lock:counter-lock",
    "get_counter=Value:counter",
    "get_barrier=Barrier:phases",
    "get_board=dict:board",
];

fn node() -> TestNode {
    let args: Vec<&str> = TYPEIDS.iter().flat_map(|t| ["--typeid", t]).collect();
    TestNode::start_with(&args)
}

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/python")
}

fn env(node: &TestNode, cmd: &mut tokio::process::Command) {
    cmd.env("SYNCMAN_ADDR", node.addr().to_string())
        .env(
            "SYNCMAN_AUTHKEY",
            std::str::from_utf8(node.authkey()).expect("the test key is text"),
        )
        .current_dir(examples_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
}

/// Runs `python3 examples/python/<script> args...` against the node.
async fn python(node: &TestNode, script: &str, args: &[&str]) -> Output {
    let mut cmd = tokio::process::Command::from(Py::V311.command());
    cmd.arg(script).args(args);
    env(node, &mut cmd);
    finish(format!("python3 {script} {args:?}"), cmd).await
}

/// Runs the Rust example `name` against the node.
async fn rust(node: &TestNode, name: &str, args: &[&str]) -> Output {
    let mut cmd = tokio::process::Command::new(example_bin(name));
    cmd.args(args);
    env(node, &mut cmd);
    finish(format!("{name} {args:?}"), cmd).await
}

async fn finish(what: String, mut cmd: tokio::process::Command) -> Output {
    let child = cmd.spawn().unwrap_or_else(|e| panic!("{what}: {e}"));
    let out = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {WAIT:?}"))
        .expect("output");
    assert!(
        out.status.success(),
        "{what}: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The numbers of a consumer's `got <n>` lines.
fn got(out: &Output) -> Vec<i64> {
    lines(out)
        .iter()
        .filter_map(|l| l.strip_prefix("got ")?.parse().ok())
        .collect()
}

#[tokio::test]
async fn python_and_rust_examples_share_a_work_queue_a_counter_a_barrier_and_a_dict() {
    let node = node();

    // Work queue: two Python producers, then a Python and a Rust consumer draining it.
    let (a, b) = tokio::join!(
        python(&node, "work_queue.py", &["produce", "0", "100"]),
        python(&node, "work_queue.py", &["produce", "100", "200"]),
    );
    assert_eq!(lines(&a), ["produced 100"]);
    assert_eq!(lines(&b), ["produced 100"]);
    let (py_consumer, rust_consumer) = tokio::join!(
        python(&node, "work_queue.py", &["consume", "1"]),
        rust(&node, "work_queue", &["consume", "jobs", "1000"]),
    );
    let mut all = got(&py_consumer);
    all.extend(got(&rust_consumer));
    all.sort();
    assert_eq!(all, (0..200).collect::<Vec<_>>(), "each item exactly once");

    // A counter under a lock: two Python processes and one Rust process, 30 rounds each.
    let (p1, p2, r) = tokio::join!(
        python(&node, "lock_counter.py", &["30"]),
        python(&node, "lock_counter.py", &["30"]),
        rust(&node, "lock_counter", &["counter-lock", "counter", "30"]),
    );
    assert_eq!(lines(&p1), ["done"]);
    assert_eq!(lines(&p2), ["done"]);
    assert_eq!(lines(&r).last().map(String::as_str), Some("done"));
    let m = node.manager().await;
    let counter = m.value::<u64>("counter", 0).await.unwrap();
    assert_eq!(counter.get().await.unwrap(), 90, "no increment lost");

    // A barrier of three parties, two Python and one Rust, through three phases.
    let (p1, p2, r) = tokio::join!(
        python(&node, "barrier_phases.py", &["3", "3"]),
        python(&node, "barrier_phases.py", &["3", "3"]),
        rust(&node, "barrier_phases", &["phases", "3", "3"]),
    );
    let mut arrivals: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in [p1, p2, r].iter().flat_map(lines) {
        let (phase, index) = line.split_once(" index ").expect("phase <p> index <i>");
        arrivals
            .entry(phase.to_owned())
            .or_default()
            .push(index.to_owned());
    }
    assert_eq!(arrivals.len(), 3, "{arrivals:?}");
    for (phase, indices) in &mut arrivals {
        indices.sort();
        assert_eq!(indices, &["0", "1", "2"], "{phase}");
    }

    // A dict: Python writes, Rust reads and writes, Python reads it all.
    python(&node, "shared_dict.py", &["set", "from-python", "[1, 2]"]).await;
    let board = m.dict::<String, Vec<i64>>("board").await.unwrap();
    assert_eq!(
        board.get(&"from-python".into()).await.unwrap(),
        Some(vec![1, 2])
    );
    board.insert(&"from-rust".into(), &vec![3]).await.unwrap();
    let shown = python(&node, "shared_dict.py", &["show"]).await;
    assert_eq!(lines(&shown), ["from-python=[1, 2]", "from-rust=[3]"]);
}

#[tokio::test]
async fn a_served_typeid_must_name_a_type_the_node_serves() {
    for (bad, why) in [
        ("get_pool=Pool:p", "not a type the node serves"),
        ("dict=Queue", "SyncManager already has that typeid"),
        ("get_queue", "TYPEID=TYPE or TYPEID=TYPE:NAME"),
        ("get_b=dict:jobs", "served as a Queue and as a dict"),
    ] {
        let out = std::process::Command::new(syncman_tests::syncman_bin())
            .args([
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--typeid",
                "get_a=Queue:jobs",
            ])
            .args(["--typeid", bad])
            .env("SYNCMAN_AUTHKEY", "k")
            .output()
            .expect("run syncman");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad} was accepted");
        assert!(stderr.contains(why), "{bad}: {stderr}");
    }
}
