//! The CPython interpreters interop tests run: `python3` (3.11) and pyenv's 3.12 and 3.13.
//!
//! Shared by `tests/` (through `syncman_tests::python`) and `protocol/tests/` (included by
//! path, since the protocol crate cannot depend on the test package).

use std::process::Command;

/// A CPython version under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Py {
    V311,
    V312,
    V313,
}

impl Py {
    /// `major.minor` the interpreter must report (pyenv silently falls back to the
    /// system python for a version it lacks, so tests check this).
    pub fn version(self) -> &'static str {
        match self {
            Py::V311 => "3.11",
            Py::V312 => "3.12",
            Py::V313 => "3.13",
        }
    }

    /// The pyenv version to select, or `None` for the default `python3`.
    pub fn pyenv(self) -> Option<&'static str> {
        match self {
            Py::V311 => None,
            Py::V312 => Some("3.12.1"),
            Py::V313 => Some("3.13.0"),
        }
    }

    /// How a person would run this interpreter (for messages).
    pub fn command_line(self) -> String {
        match self.pyenv() {
            Some(v) => format!("PYENV_VERSION={v} python3"),
            None => "python3".to_string(),
        }
    }

    /// `python3` with the environment that selects this version.
    pub fn command(self) -> Command {
        let mut cmd = Command::new("python3");
        match self.pyenv() {
            Some(v) => cmd.env("PYENV_VERSION", v),
            None => cmd.env_remove("PYENV_VERSION"),
        };
        cmd
    }
}

/// How a Python script ended: what the interop tests assert on and print when they fail.
pub struct PyOutcome {
    pub who: String,
    pub status: std::process::ExitStatus,
    pub stdout: Vec<String>,
    pub stderr: String,
}

impl std::fmt::Display for PyOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.who,
            self.status,
            self.stdout.join("\n"),
            self.stderr
        )
    }
}

impl PyOutcome {
    /// The script's last line of output.
    pub fn last_line(&self) -> Option<&str> {
        self.stdout.last().map(String::as_str)
    }

    /// The script succeeded: exit 0, last line `OK`.
    pub fn assert_ok(&self) {
        assert!(
            self.status.success() && self.last_line() == Some("OK"),
            "expected the Python side to succeed; {self}"
        );
    }

    /// The client's local address, if it authenticated (it printed `OK <addr>`).
    pub fn authenticated_from(&self) -> Option<std::net::SocketAddr> {
        if !self.status.success() {
            return None;
        }
        self.last_line()?.strip_prefix("OK ")?.parse().ok()
    }

    /// The scripts exit with 3 after printing `AUTH_ERROR <message>` when CPython raises
    /// `AuthenticationError`.
    pub fn assert_auth_error(&self, expected_line: &str) {
        assert!(
            self.status.code() == Some(3) && self.last_line() == Some(expected_line),
            "expected the Python side to raise AuthenticationError ({expected_line:?}); {self}"
        );
    }
}
