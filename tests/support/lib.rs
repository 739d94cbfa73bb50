//! Test support: a guard around a real `syncman` process.
//!
//! [`TestNode::start`] builds the binary once per test run (so it is never stale), starts
//! it on `127.0.0.1:0`, waits for its `listening on` ready line (and its `listening with
//! TLS on` line when it serves TLS), and kills it on drop. Its log is kept in a temporary
//! file and printed if the test panics. Later stdout lines (the `metrics on` line) are kept
//! for [`TestNode::stdout_line`].

pub mod cpython;
pub mod metrics;
pub mod netns;
pub mod python;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::Receiver;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The cargo profile this test executable was built with (`debug`, `release`, ...): the
/// `syncman` binary and the examples are built with the same one, so a test never runs a
/// binary older than the code it tests.
fn profile_dir() -> PathBuf {
    // target/<profile>/deps/<test-exe> -> target/<profile>
    let exe = std::env::current_exe().expect("current test executable");
    exe.parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps")
        .to_path_buf()
}

/// Runs `cargo build --quiet <args>` in this package, with the test executable's profile.
fn cargo_build(args: &[&str], what: &str) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let profile = profile_dir()
        .file_name()
        .and_then(|p| p.to_str())
        .unwrap_or("debug")
        .to_owned();
    // Cargo's names for the built-in profiles' folders.
    let profile = match profile.as_str() {
        "debug" => "dev".to_owned(),
        other => other.to_owned(),
    };
    let status = Command::new(cargo)
        .args(["build", "--quiet", "--profile", &profile])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap_or_else(|e| panic!("run cargo build for {what}: {e}"));
    assert!(status.success(), "building {what} failed");
}

/// Path of the `syncman` binary, built on first use (so it is never stale), or
/// `SYNCMAN_BIN` if set.
pub fn syncman_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(path) = std::env::var_os("SYNCMAN_BIN") {
            return PathBuf::from(path);
        }
        cargo_build(
            &["-p", "syncman-server", "--bin", "syncman"],
            "the syncman binary",
        );
        profile_dir().join("syncman")
    })
}

/// A running `syncman serve`, killed on drop.
pub struct TestNode {
    child: Option<Child>,
    /// The plain listener (none with `--tls-only`).
    addr: Option<SocketAddr>,
    /// The TLS listener (with `--tls-bind`).
    tls_addr: Option<SocketAddr>,
    authkey: Vec<u8>,
    log: tempfile_path::TempLog,
    /// Stdout lines after the ready lines: those read so far, and the rest as they come.
    stdout: Mutex<(Vec<String>, Receiver<String>)>,
}

/// Stdout lines kept after the ready lines; the rest are read and dropped, so the node never
/// blocks on a full pipe.
const KEPT_STDOUT_LINES: usize = 64;

mod tempfile_path {
    use std::path::PathBuf;

    /// A log file under the system temp dir, removed on drop unless the thread panicked.
    pub struct TempLog(pub PathBuf);

    impl TempLog {
        pub fn new() -> TempLog {
            use std::sync::atomic::{AtomicU64, Ordering};
            static N: AtomicU64 = AtomicU64::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            TempLog(
                std::env::temp_dir().join(format!("syncman-test-{}-{n}.log", std::process::id())),
            )
        }
    }

    impl Drop for TempLog {
        fn drop(&mut self) {
            if !std::thread::panicking() {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }
}

/// A fresh random authkey.
pub fn random_key() -> Vec<u8> {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut key = Vec::new();
    for _ in 0..4 {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(std::process::id() as u64);
        key.extend_from_slice(format!("{:016x}", h.finish()).as_bytes());
    }
    key
}

impl TestNode {
    /// Starts a node with a random authkey and default settings.
    pub fn start() -> TestNode {
        Self::start_with(&[])
    }

    /// Starts a node with extra `syncman serve` arguments.
    pub fn start_with(extra: &[&str]) -> TestNode {
        Self::launch(
            Command::new(syncman_bin()),
            Some("127.0.0.1:0"),
            extra,
            random_key(),
        )
    }

    /// Starts `syncman serve ARGS` with no `--bind` added (a config file among `args` may
    /// say where), and `SYNCMAN_AUTHKEY` set to `env_key`.
    pub fn serve(args: &[&str], env_key: Vec<u8>) -> TestNode {
        Self::launch(Command::new(syncman_bin()), None, args, env_key)
    }

    /// Starts a node inside network namespace `netns`, listening on `ip` (port chosen by
    /// the kernel): a separate host for multi-host tests (see [`netns::NetPair`]).
    pub fn start_in_netns(netns: &str, ip: &str, extra: &[&str]) -> TestNode {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", netns]).arg(syncman_bin());
        Self::launch(cmd, Some(&format!("{ip}:0")), extra, random_key())
    }

    fn launch(mut cmd: Command, bind: Option<&str>, extra: &[&str], authkey: Vec<u8>) -> TestNode {
        let log = tempfile_path::TempLog::new();
        let log_file = std::fs::File::create(&log.0).expect("create node log");
        // One ready line per listener: plain (unless `--tls-only`), then TLS.
        let flag = |name: &str| {
            extra
                .iter()
                .any(|a| *a == name || a.strip_prefix(name).is_some_and(|v| v.starts_with('=')))
        };
        let tls_only = flag("--tls-only");
        let ready_lines = usize::from(!tls_only) + usize::from(flag("--tls-bind"));
        cmd.arg("serve");
        if let Some(bind) = bind.filter(|_| !tls_only) {
            cmd.args(["--bind", bind]);
        }
        let mut child = cmd
            .args(extra)
            .env(
                "SYNCMAN_AUTHKEY",
                std::ffi::OsStr::new(std::str::from_utf8(&authkey).unwrap_or("")),
            )
            .env("SYNCMAN_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .expect("spawn syncman");
        let stdout = child.stdout.take().expect("node stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            for line in lines.by_ref().take(ready_lines + KEPT_STDOUT_LINES) {
                match line {
                    Ok(line) => {
                        let _ = tx.send(line);
                    }
                    Err(_) => break,
                }
            }
            // Keep draining so the node never blocks on a full pipe.
            for _ in lines {}
        });
        let (mut addr, mut tls_addr) = (None, None);
        let end = Instant::now() + Duration::from_secs(30);
        for _ in 0..ready_lines {
            let line = rx
                .recv_timeout(end.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("node printed no ready line; log:\n{}", read(&log.0)));
            let parse = |a: &str| a.trim().parse().ok();
            if let Some(a) = line.strip_prefix("listening on ").and_then(parse) {
                addr = Some(a);
            } else if let Some(a) = line.strip_prefix("listening with TLS on ").and_then(parse) {
                tls_addr = Some(a);
            } else {
                panic!("unexpected ready line {line:?}");
            }
        }
        TestNode {
            child: Some(child),
            addr,
            tls_addr,
            authkey,
            log,
            stdout: Mutex::new((Vec::new(), rx)),
        }
    }

    /// The first stdout line after the ready lines that starts with `prefix`, waiting up to
    /// `timeout` for it.
    pub fn stdout_line(&self, prefix: &str, timeout: Duration) -> Option<String> {
        let end = Instant::now() + timeout;
        let mut stdout = self.stdout.lock().unwrap_or_else(|e| e.into_inner());
        let (seen, rx) = &mut *stdout;
        loop {
            if let Some(line) = seen.iter().find(|l| l.starts_with(prefix)) {
                return Some(line.clone());
            }
            let left = end.checked_duration_since(Instant::now())?;
            seen.push(rx.recv_timeout(left).ok()?);
        }
    }

    /// The address of the node's metrics endpoint, from its `metrics on` line (the node
    /// must have been started with `--metrics-bind`).
    pub fn metrics_addr(&self) -> SocketAddr {
        self.stdout_line("metrics on ", Duration::from_secs(30))
            .and_then(|l| l.strip_prefix("metrics on ")?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no metrics line; log:\n{}", self.log()))
    }

    /// The plain listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
            .expect("this node has no plain listener (started with --tls-only)")
    }

    /// The TLS listener's address.
    pub fn tls_addr(&self) -> SocketAddr {
        self.tls_addr
            .expect("this node has no TLS listener (start it with --tls-bind)")
    }

    /// Whether the node printed a plain ready line.
    pub fn has_plain_listener(&self) -> bool {
        self.addr.is_some()
    }

    pub fn authkey(&self) -> &[u8] {
        &self.authkey
    }

    /// Everything the node has logged so far.
    pub fn log(&self) -> String {
        read(&self.log.0)
    }

    /// Waits until the log contains `needle` (up to `timeout`).
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Connects a client.
    pub async fn manager(&self) -> syncman_client::Manager {
        syncman_client::Manager::connect(self.addr(), &self.authkey)
            .await
            .expect("connect to the test node")
    }

    /// Sends SIGTERM and waits (up to `timeout`) for the node to exit.
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        self.wait(timeout)
    }

    /// Waits (up to `timeout`) for the node to exit by itself.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// The node's process id (e.g. to read its thread count from /proc).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The node's OS thread count, from /proc (Linux).
    pub fn threads(&self) -> Option<usize> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .and_then(|n| n.trim().parse().ok())
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- syncman log ({}) ----\n{}",
                self.log.0.display(),
                self.log()
            );
        }
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Sends SIGSTOP to process `pid` and waits (up to 10 s) until every one of its threads is
/// stopped. `kill` returns once the signal is sent, not once it has taken effect: the thread
/// that takes it must be scheduled first, and meanwhile the process's other threads run on
/// (on a busy machine, long enough for a node to answer calls sent after the `kill`).
pub fn stop_process(pid: u32) {
    let status = Command::new("kill")
        .args(["-STOP", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -STOP {pid}");
    let end = Instant::now() + Duration::from_secs(10);
    while !all_threads_stopped(pid) {
        assert!(Instant::now() < end, "process {pid} never stopped");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// True if every thread of `pid` is in the stopped state (`T` in `/proc`).
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|task| {
        read(&task.path().join("status"))
            .lines()
            .find_map(|l| l.strip_prefix("State:"))
            .is_some_and(|state| state.trim_start().starts_with('T'))
    })
}

/// Waits (bounded) until the node reports `n` calls parked on the object named `name`.
pub async fn wait_for_waiters(m: &syncman_client::Manager, name: &str, n: u64) {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let status = m.status().await.expect("status");
        let now = status.named(name).map_or(0, |o| o.waiters);
        if now == n {
            return;
        }
        assert!(
            Instant::now() < end,
            "{name}: {now} calls parked, never {n}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// [`wait_for_waiters`] for the blocking client.
pub fn wait_for_waiters_blocking(m: &syncman_client::blocking::Manager, name: &str, n: u64) {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let status = m.status().expect("status");
        let now = status.named(name).map_or(0, |o| o.waiters);
        if now == n {
            return;
        }
        assert!(
            Instant::now() < end,
            "{name}: {now} calls parked, never {n}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Raises this process's soft open-file limit to its hard limit, for tests that hold many
/// sockets at once (the usual soft limit is 1024). Returns the limit now in force.
pub fn raise_open_file_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
            limit = raised;
        }
    }
    limit.rlim_cur
}

/// A native-dialect connection driven by hand, for tests that need what the client crate
/// would never do (vanish without releasing, send odd requests).
pub struct RawSession {
    framed: tokio_util::codec::Framed<tokio::net::TcpStream, syncman_protocol::FrameCodec>,
    next_id: u64,
}

impl RawSession {
    /// Connects, authenticates and says hello.
    pub async fn connect(addr: SocketAddr, authkey: &[u8]) -> RawSession {
        Self::connect_with_heartbeat(addr, authkey, None).await.0
    }

    /// As [`RawSession::connect`], asking for a heartbeat deadline; returns the deadline
    /// the node granted.
    pub async fn connect_with_heartbeat(
        addr: SocketAddr,
        authkey: &[u8],
        heartbeat_ttl: Option<Duration>,
    ) -> (RawSession, Option<Duration>) {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let mut framed =
            tokio_util::codec::Framed::new(stream, syncman_protocol::FrameCodec::handshake());
        let opened = syncman_protocol::opening::open_native(
            &mut framed,
            authkey,
            syncman_protocol::DEFAULT_MAX_FRAME,
            heartbeat_ttl,
        )
        .await
        .expect("open a native session");
        (RawSession { framed, next_id: 1 }, opened.heartbeat_ttl)
    }

    /// Sends one frame as it is (one the node should refuse, say).
    pub async fn send_raw(&mut self, frame: &[u8]) {
        use futures_util::SinkExt;
        self.framed
            .send(bytes::Bytes::copy_from_slice(frame))
            .await
            .expect("send frame");
    }

    /// Sends one heartbeat.
    pub async fn heartbeat(&mut self) {
        use futures_util::SinkExt;
        let mut frame = bytes::BytesMut::new();
        syncman_protocol::message::encode_heartbeat(&mut frame);
        self.framed
            .send(frame.freeze())
            .await
            .expect("send heartbeat");
    }

    /// True once the node has closed the connection (waits for it).
    pub async fn closed_by_node(&mut self) -> bool {
        use futures_util::StreamExt;
        matches!(self.framed.next().await, None | Some(Err(_)))
    }

    /// One call; arguments and result as values.
    pub async fn call(
        &mut self,
        object: u64,
        method: &str,
        args: &[syncman_protocol::Value],
    ) -> Result<syncman_protocol::Value, syncman_protocol::RemoteError> {
        let id = self.feed(object, method, args).await;
        self.flush().await;
        let (got, result) = self.recv().await;
        assert_eq!(got, id, "reply id");
        result
    }

    /// Queues a request without flushing it (pipelining); returns its id.
    pub async fn feed(
        &mut self,
        object: u64,
        method: &str,
        args: &[syncman_protocol::Value],
    ) -> u64 {
        use futures_util::SinkExt;
        let id = self.next_id;
        self.next_id += 1;
        let mut req = bytes::BytesMut::new();
        syncman_protocol::message::encode_request_head(&mut req, id, object, method);
        syncman_protocol::message::encode_args_len(&mut req, args.len() as u32);
        for a in args {
            req.extend_from_slice(&a.to_bytes());
        }
        self.framed.feed(req.freeze()).await.expect("queue request");
        id
    }

    /// Sends every queued request in one write.
    pub async fn flush(&mut self) {
        use futures_util::SinkExt;
        SinkExt::<bytes::Bytes>::flush(&mut self.framed)
            .await
            .expect("flush requests");
    }

    /// The next reply: its id and result.
    pub async fn recv(
        &mut self,
    ) -> (
        u64,
        Result<syncman_protocol::Value, syncman_protocol::RemoteError>,
    ) {
        use futures_util::StreamExt;
        let frame = self.framed.next().await.expect("reply").expect("frame");
        let (id, result) =
            syncman_protocol::message::decode_response(frame.freeze()).expect("decode reply");
        (
            id,
            result.map(|raw| syncman_protocol::value::decode(&raw).expect("decode result")),
        )
    }
}

/// Path of the example program `name` (`examples/<name>.rs` of this package); all
/// examples are built on first use, so they are never stale.
pub fn example_bin(name: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        cargo_build(&["--examples"], "the examples");
        profile_dir().join("examples")
    });
    dir.join(name)
}

/// Waits (bounded) until the node reports `n` calls parked on the object with `id` (an
/// anonymous object's proxy gives its id with `.id()`).
pub async fn wait_for_object_waiters(m: &syncman_client::Manager, id: u64, n: u64) {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let status = m.status().await.expect("status");
        let now = status.object(id).map(|o| o.waiters);
        if now == Some(n) {
            return;
        }
        assert!(
            Instant::now() < end,
            "object {id}: {} calls parked, never {n}",
            now.map_or("no such object, so no".to_owned(), |w| w.to_string())
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits (bounded) until the node reports exactly `n` live sessions (e.g. that a dropped
/// client's session has ended, and with it everything the session held).
pub async fn wait_for_sessions(m: &syncman_client::Manager, n: u64) {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let now = m.status().await.expect("status").sessions;
        if now == n {
            return;
        }
        assert!(
            Instant::now() < end,
            "the node has {now} sessions, never {n}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
