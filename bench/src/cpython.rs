//! CPython's manager as a peer: its own server (`tests/python/cpython_server.py`) and
//! client processes (`bench/cpython_clients.py`), which also run against the syncman node
//! (the same unmodified Python clients, another server).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::cpu;
use crate::stats::Measured;

/// A server the Python clients run against: its process (for its CPU time) and address.
#[derive(Clone, Copy)]
pub struct Target {
    pub pid: u32,
    pub addr: SocketAddr,
}

pub struct Python {
    root: PathBuf,
}

impl Python {
    /// `None` when `python3` does not run, or when its scripts are not where this binary
    /// was built (a prebuilt binary carried to another machine).
    pub fn find() -> Option<Python> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let scripts = ["tests/python/cpython_server.py", "bench/cpython_clients.py"];
        if !scripts.iter().all(|s| root.join(s).is_file()) {
            return None;
        }
        let ok = Command::new("python3")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Python { root })
    }

    /// CPython's SyncManager server with `authkey`, on a free port.
    pub fn server(&self, authkey: &str, server_cpus: Option<usize>) -> Command {
        let script = self.root.join("tests/python/cpython_server.py");
        let mut cmd = crate::spawn_pinned(
            "python3",
            &[script.to_string_lossy().into_owned()],
            server_cpus,
        );
        cmd.env("SYNCMAN_AUTHKEY", authkey);
        cmd
    }

    /// The client script (its `fill` mode serves the memory table).
    pub fn clients_script(&self) -> PathBuf {
        self.root.join("bench/cpython_clients.py")
    }

    /// The same Python clients against CPython's server and against the syncman node,
    /// taking turns round after round like the other peers (measured one after the other
    /// in one stretch each, a drift of the machine's speed would decide which led): the
    /// median of each server's rounds, with the server's CPU per operation.
    #[allow(clippy::too_many_arguments)]
    pub fn take_turns(
        &self,
        cpython: Target,
        syncman: Target,
        authkey: &str,
        procs: usize,
        round_seconds: f64,
        rounds: u32,
        mode: &str,
    ) -> (Option<Measured>, Option<Measured>) {
        let (mut on_cpython, mut on_syncman) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            for (server, figures) in [(cpython, &mut on_cpython), (syncman, &mut on_syncman)] {
                let meter = cpu::Meter::start(server.pid, cpu::Clients::SelfReported);
                let measured = self.measure(server.addr, authkey, procs, round_seconds, mode);
                // The operations of the timed window (rounds, for a barrier).
                figures.extend(meter.finish(measured, |m| m.ops_per_s * round_seconds));
            }
        }
        (
            Measured::median_of(on_cpython),
            Measured::median_of(on_syncman),
        )
    }

    /// `procs` client processes against `addr` for `seconds`, timing dict operations
    /// (`mode` "dict"), queue/lock pairs ("queue", "lock"), `list.append` ("append") or
    /// rounds of one barrier of `procs` parties ("barrier").
    pub fn measure(
        &self,
        addr: SocketAddr,
        authkey: &str,
        procs: usize,
        seconds: f64,
        mode: &str,
    ) -> Option<Measured> {
        let key: String = authkey.bytes().map(|b| format!("{b:02x}")).collect();
        let out = Command::new("python3")
            .arg(self.clients_script())
            .args([
                addr.ip().to_string(),
                addr.port().to_string(),
                key,
                procs.to_string(),
                seconds.to_string(),
                mode.to_string(),
            ])
            .stderr(Stdio::inherit())
            .output()
            .ok()?;
        serde_json::from_slice(&out.stdout).ok()
    }
}
