//! The handshake against real CPython `multiprocessing.connection` peers, both directions.
//!
//! Every case runs against CPython 3.11 (`python3`, legacy MD5 answers and 20-byte challenges),
//! 3.12 (`PYENV_VERSION=3.12.1 python3`, `{sha256}` digests) and 3.13
//! (`PYENV_VERSION=3.13.0 python3`). The interpreter must report the expected version: pyenv
//! silently falls back to the system Python for a version it does not have, and a test that
//! then ran against 3.11 three times would prove nothing, so a missing version fails the test.
//!
//! The Python side is a short `-c` script. It prints `VERSION x.y` first, then (as a listener)
//! `PORT n`, and finally `OK` (exit 0) or `AUTH_ERROR <message>` (exit 3); anything else is a
//! traceback on stderr and another exit code. Every wait is bounded by [`WAIT`], and a Python
//! process still running when its guard drops is killed.

use std::future::Future;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::time::Duration;

use syncman_protocol::handshake::{
    client_handshake, server_handshake, ChallengePolicy, HandshakeError,
};
use syncman_protocol::FrameCodec;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{timeout, timeout_at, Instant};
use tokio_util::codec::Framed;
// Included by path: the protocol crate cannot depend on the test package, and uses only
// part of the module.
#[allow(dead_code)]
#[path = "../../tests/support/python.rs"]
mod python;
use python::{Py, PyOutcome};

/// Upper bound for every single wait in this file.
const WAIT: Duration = Duration::from_secs(20);

/// The authkey both sides hold in the "right key" cases: not ASCII, not valid UTF-8, with a NUL.
const KEY: &[u8] = b"syncman\x00\xff\x80-interop-key";
/// Differs from [`KEY`] in its last byte only.
const WRONG_KEY: &[u8] = b"syncman\x00\xff\x80-interop-kex";

/// `Client(("127.0.0.1", port), authkey=bytes.fromhex(key_hex))`.
const CLIENT_SCRIPT: &str = r#"
import sys
import multiprocessing.connection as mc
print("VERSION %d.%d" % sys.version_info[:2], flush=True)
port, key = int(sys.argv[1]), bytes.fromhex(sys.argv[2])
try:
    conn = mc.Client(("127.0.0.1", port), authkey=key)
except mc.AuthenticationError as e:
    print("AUTH_ERROR", e, flush=True)
    sys.exit(3)
print("OK", flush=True)
conn.close()
"#;

/// `Listener(("127.0.0.1", 0), authkey=bytes.fromhex(key_hex))`, prints its port, accepts once.
const LISTENER_SCRIPT: &str = r#"
import sys
import multiprocessing.connection as mc
print("VERSION %d.%d" % sys.version_info[:2], flush=True)
key = bytes.fromhex(sys.argv[1])
with mc.Listener(("127.0.0.1", 0), authkey=key) as listener:
    print("PORT", listener.address[1], flush=True)
    try:
        conn = listener.accept()
    except mc.AuthenticationError as e:
        print("AUTH_ERROR", e, flush=True)
        sys.exit(3)
    print("OK", flush=True)
    conn.close()
"#;

/// What CPython's `answer_challenge` raises when the other side sends `#FAILURE#`.
const PY_WE_WERE_REJECTED: &str = "AUTH_ERROR digest sent was rejected";
/// What CPython's `deliver_challenge` raises when the answer's MAC is wrong.
const PY_PEER_WAS_WRONG: &str = "AUTH_ERROR digest received was wrong";

/// A running Python script. Killed on drop if still running.
struct PyProc {
    py: Py,
    child: Option<Child>,
    stdout: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
    stderr: Option<oneshot::Receiver<String>>,
}

impl PyProc {
    /// Starts `script` and checks the interpreter's version line.
    async fn spawn(py: Py, script: &str, args: &[&str]) -> PyProc {
        let mut cmd = py.command();
        cmd.arg("-c")
            .arg(script)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `{}`: {e}", py.command_line()));

        let (line_tx, stdout) = mpsc::unbounded_channel();
        let out = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                match line {
                    Ok(line) => {
                        if line_tx.send(line).is_err() {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
        });
        let (err_tx, stderr) = oneshot::channel();
        let mut err = child.stderr.take().expect("piped stderr");
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            let _ = err_tx.send(text);
        });

        let mut proc = PyProc {
            py,
            child: Some(child),
            stdout,
            seen: Vec::new(),
            stderr: Some(stderr),
        };
        let first = proc.line("the VERSION line").await;
        let expected = format!("VERSION {}", py.version());
        if first != expected {
            proc.fail(&format!(
                "`{}` runs Python {:?}, but this test needs Python {} (CI has it; install it \
                 with pyenv). Note that pyenv falls back to the system python3 for a \
                 PYENV_VERSION it does not have",
                py.command_line(),
                first.strip_prefix("VERSION ").unwrap_or(&first),
                py.version()
            ))
            .await;
        }
        proc
    }

    /// The next stdout line (bounded); fails the test if the script ends first.
    async fn line(&mut self, what: &str) -> String {
        match timeout(WAIT, self.stdout.recv()).await {
            Ok(Some(line)) => {
                self.seen.push(line.clone());
                line
            }
            Ok(None) => self.fail(&format!("stdout closed before {what}")).await,
            Err(_) => self.fail(&format!("no {what} within {WAIT:?}")).await,
        }
    }

    /// Runs `fut` (bounded), failing early if the script prints or exits meanwhile: for steps
    /// during which the script can only be waiting on us.
    async fn while_waiting<T>(&mut self, what: &str, fut: impl Future<Output = T>) -> T {
        let early = tokio::select! {
            r = timeout(WAIT, fut) => match r {
                Ok(v) => return v,
                Err(_) => format!("timed out after {WAIT:?} waiting for {what}"),
            },
            line = self.stdout.recv() => match line {
                Some(line) => {
                    self.seen.push(line);
                    format!("the Python side printed a line while we waited for {what}")
                }
                None => format!("the Python side exited while we waited for {what}"),
            },
        };
        self.fail(&early).await
    }

    /// Waits (bounded) for the script to end and returns what it printed and its status.
    async fn finish(mut self) -> PyOutcome {
        let deadline = Instant::now() + WAIT;
        loop {
            match timeout_at(deadline, self.stdout.recv()).await {
                Ok(Some(line)) => self.seen.push(line),
                Ok(None) => break,
                Err(_) => self.fail("the script did not exit").await,
            }
        }
        let stderr = match timeout_at(deadline, self.stderr.take().expect("stderr")).await {
            Ok(text) => text.unwrap_or_default(),
            Err(_) => self.fail("the script did not close stderr").await,
        };
        let status = loop {
            // Both pipes are closed: the process is exiting; reap it (bounded).
            let child = self.child.as_mut().expect("child");
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                break status;
            }
            if Instant::now() > deadline {
                self.fail("the script closed its pipes but did not exit")
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        PyOutcome {
            who: self.py.command_line(),
            status,
            stdout: std::mem::take(&mut self.seen),
            stderr,
        }
    }

    /// Kills the script and fails the test, showing everything it wrote.
    async fn fail(&mut self, why: &str) -> ! {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        while let Ok(line) = self.stdout.try_recv() {
            self.seen.push(line);
        }
        let stderr = match self.stderr.take() {
            Some(rx) => match timeout(Duration::from_secs(2), rx).await {
                Ok(Ok(text)) => text,
                _ => "<unavailable>".to_string(),
            },
            None => "<already read>".to_string(),
        };
        panic!(
            "{} (`{}`)\n--- stdout ---\n{}\n--- stderr ---\n{}",
            why,
            self.py.command_line(),
            self.seen.join("\n"),
            stderr
        );
    }
}

impl Drop for PyProc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Our `server_handshake` (holding `ours`) against a CPython `Client` (holding `theirs`).
async fn our_server(
    py: Py,
    ours: &[u8],
    theirs: &[u8],
    policy: ChallengePolicy,
) -> (Result<(), HandshakeError>, PyOutcome) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("local addr").port();
    let mut proc = PyProc::spawn(py, CLIENT_SCRIPT, &[&port.to_string(), &hex(theirs)]).await;
    let (stream, _) = proc
        .while_waiting("the Python client to connect", listener.accept())
        .await
        .expect("accept");
    let mut framed = Framed::new(stream, FrameCodec::handshake());
    let result = timeout(WAIT, server_handshake(&mut framed, ours, policy))
        .await
        .unwrap_or_else(|_| panic!("our server_handshake did not finish within {WAIT:?}"));
    // Close our end before waiting, so a Python side still reading sees EOF, not a hang.
    drop(framed);
    (result, proc.finish().await)
}

/// Our `client_handshake` (holding `ours`) against a CPython `Listener` (holding `theirs`).
async fn our_client(py: Py, ours: &[u8], theirs: &[u8]) -> (Result<(), HandshakeError>, PyOutcome) {
    let mut proc = PyProc::spawn(py, LISTENER_SCRIPT, &[&hex(theirs)]).await;
    let line = proc.line("the PORT line").await;
    let port: u16 = match line.strip_prefix("PORT ").and_then(|p| p.parse().ok()) {
        Some(port) => port,
        None => proc.fail(&format!("expected `PORT n`, got {line:?}")).await,
    };
    let stream = proc
        .while_waiting(
            "our connection to the Python listener",
            TcpStream::connect(("127.0.0.1", port)),
        )
        .await
        .expect("connect to the Python listener");
    let mut framed = Framed::new(stream, FrameCodec::handshake());
    let result = timeout(WAIT, client_handshake(&mut framed, ours))
        .await
        .unwrap_or_else(|_| panic!("our client_handshake did not finish within {WAIT:?}"));
    drop(framed);
    (result, proc.finish().await)
}

async fn server_accepts_python_client_with_the_right_key(py: Py) {
    let (ours, theirs) = our_server(py, KEY, KEY, ChallengePolicy::default()).await;
    if let Err(e) = ours {
        panic!("our server_handshake failed: {e:?}; {theirs}");
    }
    theirs.assert_ok();
}

async fn server_rejects_python_client_with_a_wrong_key(py: Py) {
    let (ours, theirs) = our_server(py, KEY, WRONG_KEY, ChallengePolicy::default()).await;
    match &ours {
        Err(e @ HandshakeError::PeerRejected) => assert!(e.is_auth_failure()),
        other => panic!("expected Err(PeerRejected), got {other:?}; {theirs}"),
    }
    theirs.assert_auth_error(PY_WE_WERE_REJECTED);
}

/// CPython's `Client` authenticates even with `authkey=b''` (HMAC with an empty key); so do we.
async fn server_runs_the_handshake_with_an_empty_key(py: Py) {
    let (ours, theirs) = our_server(py, b"", b"", ChallengePolicy::default()).await;
    if let Err(e) = ours {
        panic!("our server_handshake with an empty key failed: {e:?}; {theirs}");
    }
    theirs.assert_ok();

    let (ours, theirs) = our_server(py, KEY, b"", ChallengePolicy::default()).await;
    match &ours {
        Err(e @ HandshakeError::PeerRejected) => assert!(e.is_auth_failure()),
        other => panic!("expected Err(PeerRejected) for an empty key, got {other:?}; {theirs}"),
    }
    theirs.assert_auth_error(PY_WE_WERE_REJECTED);
}

async fn client_is_accepted_by_python_listener_with_the_right_key(py: Py) {
    let (ours, theirs) = our_client(py, KEY, KEY).await;
    if let Err(e) = ours {
        panic!("our client_handshake failed: {e:?}; {theirs}");
    }
    theirs.assert_ok();
}

async fn client_is_rejected_by_python_listener_with_a_wrong_key(py: Py) {
    let (ours, theirs) = our_client(py, WRONG_KEY, KEY).await;
    match &ours {
        Err(e @ HandshakeError::WeWereRejected) => assert!(e.is_auth_failure()),
        other => panic!("expected Err(WeWereRejected), got {other:?}; {theirs}"),
    }
    theirs.assert_auth_error(PY_PEER_WAS_WRONG);
}

/// `require_sha256` refuses 3.11 (raw HMAC-MD5 answer) and accepts 3.12+ (`{sha256}` answer).
async fn require_sha256_policy(py: Py) {
    let strict = ChallengePolicy {
        require_sha256: true,
        ..ChallengePolicy::default()
    };
    let (ours, theirs) = our_server(py, KEY, KEY, strict).await;
    if py == Py::V311 {
        match &ours {
            Err(e @ HandshakeError::Md5Refused) => assert!(e.is_auth_failure()),
            other => panic!("expected Err(Md5Refused) for CPython 3.11, got {other:?}; {theirs}"),
        }
        theirs.assert_auth_error(PY_WE_WERE_REJECTED);
    } else {
        if let Err(e) = ours {
            panic!(
                "a SHA-256 policy refused CPython {}: {e:?}; {theirs}",
                py.version()
            );
        }
        theirs.assert_ok();
    }
}

/// One `#[tokio::test]` per Python version for an `async fn case(py: Py)`.
macro_rules! per_python {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            use super::Py;

            #[tokio::test]
            async fn python_3_11() {
                super::$case(Py::V311).await
            }

            #[tokio::test]
            async fn python_3_12() {
                super::$case(Py::V312).await
            }

            #[tokio::test]
            async fn python_3_13() {
                super::$case(Py::V313).await
            }
        }
    )*};
}

per_python!(
    server_accepts_python_client_with_the_right_key,
    server_rejects_python_client_with_a_wrong_key,
    server_runs_the_handshake_with_an_empty_key,
    client_is_accepted_by_python_listener_with_the_right_key,
    client_is_rejected_by_python_listener_with_a_wrong_key,
    require_sha256_policy,
);
