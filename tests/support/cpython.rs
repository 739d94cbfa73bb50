//! Running a CPython script against a node, bounded: the tests of the pickle dialect, the
//! CPython suite and the Python examples all start interpreters this way.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::python::{Py, PyOutcome};

/// Runs `py` with `args` followed by the node's `HOST PORT AUTHKEY_HEX`, killed if it is
/// still running after `deadline`.
pub async fn run_against<S: AsRef<OsStr>>(
    py: Py,
    addr: SocketAddr,
    authkey: &[u8],
    args: &[S],
    deadline: Duration,
) -> PyOutcome {
    run_against_from(None, py, addr, authkey, args, deadline).await
}

/// [`run_against`], started in the working directory `cwd` (this process's when `None`).
pub async fn run_against_from<S: AsRef<OsStr>>(
    cwd: Option<&Path>,
    py: Py,
    addr: SocketAddr,
    authkey: &[u8],
    args: &[S],
    deadline: Duration,
) -> PyOutcome {
    let key: String = authkey.iter().map(|b| format!("{b:02x}")).collect();
    let mut cmd = tokio::process::Command::from(py.command());
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    cmd.args(args)
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .arg(key)
        // For scripts that ask the node what it holds (`syncman status`).
        .env("SYNCMAN_BIN", crate::syncman_bin())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().expect("start python3");
    let out = tokio::time::timeout(deadline, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{} did not finish within {deadline:?}", py.command_line()))
        .expect("python3 output");
    PyOutcome {
        who: py.command_line(),
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
