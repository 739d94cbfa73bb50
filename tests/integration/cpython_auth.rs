//! Real CPython `multiprocessing.connection.Client`s authenticating against the real node.
//!
//! CPython 3.11 (`python3`, answers the node's `{sha256}` challenge with raw HMAC-MD5), 3.12
//! (`PYENV_VERSION=3.12.1 python3`) and 3.13 (`PYENV_VERSION=3.13.0 python3`, both answer with
//! `{sha256}` HMAC-SHA256). The interpreter must report the expected version: pyenv silently
//! falls back to the system Python for a version it does not have, so a missing version fails
//! the test instead of quietly testing 3.11 again.
//!
//! The node only speaks the native dialect after authentication, so a Python client just
//! completes the handshake and closes. Each case checks the Python side's verdict, the node's
//! log (matched to that very connection by the client's local address where the client gets
//! one), and that a native client still works afterwards.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::time::Duration;

use syncman_tests::python::{Py, PyOutcome};
use syncman_tests::TestNode;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{timeout, timeout_at, Instant};

/// Upper bound for every single wait in this file.
const WAIT: Duration = Duration::from_secs(20);

/// `Client((host, port), authkey=bytes.fromhex(key_hex))`; on success prints `OK <local addr>`.
const CLIENT_SCRIPT: &str = r#"
import socket
import sys
import multiprocessing.connection as mc
print("VERSION %d.%d" % sys.version_info[:2], flush=True)
host, port, key = sys.argv[1], int(sys.argv[2]), bytes.fromhex(sys.argv[3])
try:
    conn = mc.Client((host, port), authkey=key)
except mc.AuthenticationError as e:
    print("AUTH_ERROR", e, flush=True)
    sys.exit(3)
with socket.fromfd(conn.fileno(), socket.AF_INET, socket.SOCK_STREAM) as s:
    local = s.getsockname()
print("OK %s:%d" % local, flush=True)
conn.close()
"#;

/// What CPython's `answer_challenge` raises when the node answers `#FAILURE#`.
const PY_WE_WERE_REJECTED: &str = "AUTH_ERROR digest sent was rejected";

/// A guard that kills the Python process if the test fails before it exits.
struct ChildGuard(Option<Child>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs the Python client against `addr` with `key`, bounded by [`WAIT`]; checks that the
/// interpreter is the version `py` names.
async fn run_python_client(py: Py, addr: SocketAddr, key: &[u8]) -> PyOutcome {
    let key_hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let mut cmd = py.command();
    cmd.arg("-c")
        .arg(CLIENT_SCRIPT)
        .args([addr.ip().to_string(), addr.port().to_string(), key_hex])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `{}`: {e}", py.command_line()));

    let (line_tx, mut lines) = mpsc::unbounded_channel();
    let out = child.stdout.take().expect("piped stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if line_tx.send(line).is_err() {
                break;
            }
        }
    });
    let (err_tx, err_rx) = oneshot::channel();
    let mut err = child.stderr.take().expect("piped stderr");
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = err.read_to_string(&mut text);
        let _ = err_tx.send(text);
    });
    let mut guard = ChildGuard(Some(child));

    // The script has nobody to wait for but the node, so it must end within WAIT; the pipes
    // close when it exits.
    let deadline = Instant::now() + WAIT;
    let mut stdout = Vec::new();
    let mut timed_out = false;
    loop {
        match timeout_at(deadline, lines.recv()).await {
            Ok(Some(line)) => stdout.push(line),
            Ok(None) => break,
            Err(_) => {
                timed_out = true;
                break;
            }
        }
    }
    if timed_out {
        drop(guard); // kills it, so stderr closes
        let stderr = match timeout(Duration::from_secs(2), err_rx).await {
            Ok(Ok(text)) => text,
            _ => "<unavailable>".to_string(),
        };
        panic!(
            "`{}` did not exit within {WAIT:?}\n--- stdout ---\n{}\n--- stderr ---\n{stderr}",
            py.command_line(),
            stdout.join("\n")
        );
    }
    let stderr = timeout_at(deadline, err_rx)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_else(|| "<unavailable>".to_string());
    let status = loop {
        // Both pipes are closed: the process is exiting; reap it (bounded).
        let child = guard.0.as_mut().expect("child");
        if let Some(status) = child.try_wait().expect("try_wait") {
            guard.0 = None;
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "`{}` closed its pipes but did not exit",
            py.command_line()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let outcome = PyOutcome {
        who: py.command_line(),
        status,
        stdout,
        stderr,
    };
    let expected = format!("VERSION {}", py.version());
    assert!(
        outcome.stdout.first() == Some(&expected),
        "`{}` is not Python {} (CI has it; install it with pyenv). Note that pyenv falls back \
         to the system python3 for a PYENV_VERSION it does not have; {outcome}",
        py.command_line(),
        py.version()
    );
    outcome
}

/// True when `line` names `addr` as a whole (`127.0.0.1:4000` does not match `…:40001`).
fn names_addr(line: &str, addr: SocketAddr) -> bool {
    let needle = addr.to_string();
    line.match_indices(&needle).any(|(i, _)| {
        !line[i + needle.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}

/// Waits (bounded) for a log line containing `text` and naming `peer`.
async fn wait_for_peer_line(node: &TestNode, text: &str, peer: SocketAddr) -> bool {
    let deadline = Instant::now() + WAIT;
    loop {
        if node
            .log()
            .lines()
            .any(|l| l.contains(text) && names_addr(l, peer))
        {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The node's log lines containing `text`.
fn log_lines(node: &TestNode, text: &str) -> Vec<String> {
    node.log()
        .lines()
        .filter(|l| l.contains(text))
        .map(str::to_string)
        .collect()
}

async fn assert_native_client_works(node: &TestNode) {
    let manager = timeout(WAIT, node.manager())
        .await
        .expect("native client connect timed out");
    timeout(WAIT, manager.ping())
        .await
        .expect("ping timed out")
        .expect("a native client still works");
}

/// A CPython client with the node's key authenticates; the node logs it for that connection.
async fn python_client_authenticates(node: &TestNode, py: Py) {
    let outcome = run_python_client(py, node.addr(), node.authkey()).await;
    let local = outcome
        .authenticated_from()
        .unwrap_or_else(|| panic!("the Python client did not authenticate; {outcome}"));
    assert!(
        wait_for_peer_line(node, "authenticated", local).await,
        "the node logged no `authenticated` for {local}; {outcome}"
    );
    // Exactly this connection's lines: no failure was logged for it.
    let failures: Vec<_> = log_lines(node, "failed")
        .into_iter()
        .filter(|l| names_addr(l, local))
        .collect();
    assert!(failures.is_empty(), "unexpected: {failures:?}");
}

/// A CPython client with a wrong key is refused, and the node says why.
async fn python_client_is_refused(node: &TestNode, py: Py, key: &[u8], node_reason: &str) {
    let before = log_lines(node, "authentication failed").len();
    let outcome = run_python_client(py, node.addr(), key).await;
    outcome.assert_auth_error(PY_WE_WERE_REJECTED);
    // `wait_for_log` polls with a blocking sleep; fine here, nothing else runs meanwhile.
    assert!(
        node.wait_for_log("authentication failed", WAIT),
        "the node logged no `authentication failed`; {outcome}"
    );
    let failures = log_lines(node, "authentication failed");
    assert_eq!(
        failures.len(),
        before + 1,
        "one refused connection, one log line: {failures:?}"
    );
    let last = failures.last().expect("a failure line");
    assert!(
        last.contains(node_reason),
        "the node's reason should mention {node_reason:?}: {last}"
    );
    assert!(
        log_lines(node, "authenticated").is_empty(),
        "a connection with a wrong key got in: {:?}",
        log_lines(node, "authenticated")
    );
}

fn wrong_key(node: &TestNode) -> Vec<u8> {
    let mut key = node.authkey().to_vec();
    let last = key.last_mut().expect("the test node has a non-empty key");
    *last ^= 1;
    key
}

async fn right_key(py: Py) {
    let node = TestNode::start();
    python_client_authenticates(&node, py).await;
    assert_native_client_works(&node).await;
}

async fn wrong_key_case(py: Py) {
    let node = TestNode::start();
    python_client_is_refused(&node, py, &wrong_key(&node), "authkey mismatch").await;
    assert_native_client_works(&node).await;
    // The refusal left nothing behind: the right key still gets in.
    python_client_authenticates(&node, py).await;
}

#[tokio::test]
async fn python_3_11_client_authenticates() {
    right_key(Py::V311).await;
}

#[tokio::test]
async fn python_3_12_client_authenticates() {
    right_key(Py::V312).await;
}

#[tokio::test]
async fn python_3_13_client_authenticates() {
    right_key(Py::V313).await;
}

#[tokio::test]
async fn python_3_11_client_with_a_wrong_key_is_refused() {
    wrong_key_case(Py::V311).await;
}

#[tokio::test]
async fn python_3_12_client_with_a_wrong_key_is_refused() {
    wrong_key_case(Py::V312).await;
}

#[tokio::test]
async fn python_3_13_client_with_a_wrong_key_is_refused() {
    wrong_key_case(Py::V313).await;
}

/// `--require-sha256` locks out 3.11's raw MD5 answer but lets 3.12 and 3.13 in.
#[tokio::test]
async fn require_sha256_refuses_python_3_11_and_admits_3_12_and_3_13() {
    let node = TestNode::start_with(&["--require-sha256"]);
    python_client_is_refused(&node, Py::V311, node.authkey(), "MD5").await;
    python_client_authenticates(&node, Py::V312).await;
    python_client_authenticates(&node, Py::V313).await;
    assert_native_client_works(&node).await;
}
