//! syncman-bench: syncman beside a raw TCP echo (the floor), Redis and CPython's manager, in
//! one run on one machine, with the same workload shapes. Prints a table of ops/s, latency
//! percentiles and ratios; writes JSON and an SVG chart of throughput against connections.
//!
//! ```text
//! cargo build --release -p syncman-server -p syncman-bench
//! target/release/syncman-bench                 # every shape, unpinned
//! target/release/syncman-bench --pin           # servers on CPU 0, clients on the others
//! target/release/syncman-bench --pin --server-cpus 4   # servers on CPUs 0-3 (many cores)
//! target/release/syncman-bench --quick         # a tiny smoke run (what CI runs)
//! ```
//!
//! Peers that are not installed (redis-server, python3) are left out of the table.

mod cpu;
mod cpython;
mod echo;
mod idle;
mod memory;
mod pairs;
mod redis;
mod report;
mod stats;
mod syncman;
mod targets;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use clap::Parser;

use report::{Report, Row};

#[derive(Parser)]
#[command(about = "Benchmarks syncman against a raw TCP echo, Redis and CPython's manager")]
struct Args {
    /// A tiny configuration (short runs, few connections): checks that everything runs.
    #[arg(long)]
    quick: bool,
    /// Servers on CPU 0 (`taskset`), this process and its clients on the other CPUs.
    #[arg(long)]
    pin: bool,
    /// With --pin: the servers get CPUs 0 to N-1, the clients the rest (the 4-core target
    /// needs a machine with more than 4 CPUs).
    #[arg(long, default_value_t = 1, requires = "pin", value_parser = clap::value_parser!(u16).range(1..))]
    server_cpus: u16,
    /// Seconds each shape runs per peer (default 2, or 0.2 with --quick).
    #[arg(long)]
    seconds: Option<f64>,
    /// The calls shapes' seconds are split into this many rounds, the peers taking turns,
    /// and each figure is the median of its rounds (default 3, or 1 with --quick).
    #[arg(long)]
    rounds: Option<u32>,
    /// Where to write the results as JSON.
    #[arg(long, default_value = "target/bench/results.json")]
    json: PathBuf,
    /// Where to write the throughput chart.
    #[arg(long, default_value = "target/bench/throughput.svg")]
    svg: PathBuf,
    /// The `syncman` binary (default: next to this one).
    #[arg(long)]
    syncman: Option<PathBuf>,
    /// Internal: serve the echo floor (started by the benchmark itself).
    #[arg(long, hide = true)]
    echo_server: bool,
    /// Internal (`bench/instructions.sh`): make this many calls (`--drive-op`) against the
    /// node at `SYNCMAN_ADDR`, with `--in-flight` calls in flight, then exit.
    #[arg(long, hide = true)]
    drive_calls: Option<u64>,
    /// Calls in flight on each connection, for `--drive-calls`.
    #[arg(long, hide = true, default_value_t = 1)]
    in_flight: u64,
    /// Connections for `--drive-calls`.
    #[arg(long, hide = true, default_value_t = 1)]
    connections: u64,
    /// What `--drive-calls` calls: dict insert/get, queue put/get or lock acquire/release,
    /// alternating.
    #[arg(long, hide = true, value_enum, default_value_t = syncman::DriveOp::Dict)]
    drive_op: syncman::DriveOp,
    /// Run only these parts (comma-separated); all of them by default.
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Part>,
}

/// The parts of a run, for `--only`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Part {
    /// Calls per second by connections and calls in flight, against every peer.
    Calls,
    /// Queue put+get and lock acquire+release pairs, list append, barrier rounds.
    Pairs,
    /// Connect + authenticate + first call.
    Connect,
    /// RSS per idle authenticated connection.
    Idle,
    /// RSS at 1,000,000 dict entries.
    Memory,
}

/// A workload shape: connections, and calls in flight on each.
#[derive(Clone, Copy)]
pub struct Shape {
    pub name: &'static str,
    pub conns: usize,
    pub in_flight: usize,
}

const SHAPES: &[Shape] = &[
    Shape {
        name: "1 connection, request/response",
        conns: 1,
        in_flight: 1,
    },
    Shape {
        name: "16 connections",
        conns: 16,
        in_flight: 1,
    },
    Shape {
        name: "64 connections",
        conns: 64,
        in_flight: 1,
    },
    Shape {
        name: "256 connections",
        conns: 256,
        in_flight: 1,
    },
    Shape {
        name: "1 connection, 16 calls in flight",
        conns: 1,
        in_flight: 16,
    },
];

const QUICK_SHAPES: &[Shape] = &[
    Shape {
        name: "1 connection, request/response",
        conns: 1,
        in_flight: 1,
    },
    Shape {
        name: "4 connections",
        conns: 4,
        in_flight: 1,
    },
    Shape {
        name: "1 connection, 4 calls in flight",
        conns: 1,
        in_flight: 4,
    },
];

/// CPython's clients are one process per connection: past this many the machine runs out
/// before the server does.
const MAX_PYTHON_PROCS: usize = 16;

fn main() -> ExitCode {
    let args = Args::parse();
    // Read before `--pin` narrows this process' own mask.
    let usable_cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Pinned before the runtime starts its worker threads, so that they inherit the mask
    // (an affinity set later covers only the calling thread) and the runtime sizes itself
    // to the CPUs the clients may use.
    if args.pin && args.drive_calls.is_none() && !args.echo_server {
        if let Err(e) = pin_self_off_servers(args.server_cpus.into()) {
            eprintln!("syncman-bench: {e}");
            return ExitCode::FAILURE;
        }
    }
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    if args.echo_server {
        return match runtime.block_on(echo::serve()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("echo server: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if let Some(calls) = args.drive_calls {
        return match runtime.block_on(syncman::drive(
            calls,
            args.connections,
            args.in_flight,
            args.drive_op,
        )) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("syncman-bench --drive-calls: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match runtime.block_on(run(&args, usable_cpus)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("syncman-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The whole benchmark; `usable_cpus` is how many CPUs the run was started on.
async fn run(args: &Args, usable_cpus: usize) -> Result<(), String> {
    // The servers' CPUs, 0 to N-1, when pinned.
    let server_cpus = args.pin.then_some(usize::from(args.server_cpus));
    if let Some(n) = server_cpus {
        check_no_thread_on_servers(n)?;
    }
    let shapes = if args.quick { QUICK_SHAPES } else { SHAPES };
    let seconds = args.seconds.unwrap_or(if args.quick { 0.2 } else { 2.0 });
    let run = Duration::from_secs_f64(seconds);
    let rounds = args.rounds.unwrap_or(if args.quick { 1 } else { 3 }).max(1);

    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let syncman_bin = args
        .syncman
        .clone()
        .unwrap_or_else(|| me.with_file_name("syncman"));
    if !syncman_bin.exists() {
        return Err(format!(
            "{} not found: build it first (cargo build --release -p syncman-server)",
            syncman_bin.display()
        ));
    }
    let authkey = format!("bench-{}", std::process::id());

    let mut echo = Server::start(&mut spawn_pinned(
        &me.to_string_lossy(),
        &["--echo-server".into()],
        server_cpus,
    ))?;
    let start_node = || {
        Server::start(
            spawn_pinned(
                &syncman_bin.to_string_lossy(),
                // Room for the 10,000 idle connections (the default is 8,192), within
                // a common open-file limit of 20,000.
                &[
                    "serve",
                    "--bind",
                    "127.0.0.1:0",
                    "--max-connections",
                    "12000",
                ]
                .map(String::from),
                server_cpus,
            )
            .env("SYNCMAN_AUTHKEY", &authkey)
            .env("SYNCMAN_LOG", "warn"),
        )
    };
    let mut node = start_node()?;
    let redis = redis::Redis::start(server_cpus);
    let python = cpython::Python::find();
    let mut cpython_server = match &python {
        Some(py) => Some(Server::start(&mut py.server(&authkey, server_cpus))?),
        None => None,
    };

    let wants = |part: Part| args.only.is_empty() || args.only.contains(&part);
    let mut report = Report::new(server_cpus, seconds, rounds);
    report.machine.usable_cpus = usable_cpus;
    // Each round of a calls shape runs this long per peer.
    let round_run = run / rounds;
    // `procs` Python client processes running `mode` against CPython's server and against
    // syncman, taking turns round after round (nothing without Python).
    let python_turns = |procs: usize, mode: &str| match (&python, &cpython_server) {
        (Some(py), Some(server)) => py.take_turns(
            server.target(),
            node.target(),
            &authkey,
            procs,
            round_run.as_secs_f64(),
            rounds,
            mode,
        ),
        _ => (None, None),
    };
    for &shape in shapes.iter().filter(|_| wants(Part::Calls)) {
        eprintln!("{} ...", shape.name);
        let mut row = Row::new(shape);
        // CPU per operation divides by the operations of the timed window: one round's.
        let timed_ops = |m: &stats::Measured| m.ops_per_s * round_run.as_secs_f64();
        let (mut echo_rounds, mut syncman_rounds, mut redis_rounds) =
            (Vec::new(), Vec::new(), Vec::new());
        // The peers take turns, round after round: a slow moment of the machine falls on
        // one round of one peer, and the median sets it aside.
        for _ in 0..rounds {
            let meter = cpu::Meter::start(echo.child.id(), cpu::Clients::InProcess);
            let measured = echo::measure(echo.addr, shape.conns, shape.in_flight, round_run).await;
            echo_rounds.extend(meter.finish(measured, timed_ops));
            let meter = cpu::Meter::start(node.child.id(), cpu::Clients::InProcess);
            let measured = syncman::measure(
                node.addr,
                authkey.as_bytes(),
                shape.conns,
                shape.in_flight,
                round_run,
            )
            .await;
            let measured = meter.finish(measured, timed_ops);
            if let Some(redis) = &redis {
                // About as many requests as syncman managed, so both run about as long.
                let requests = measured
                    .as_ref()
                    .map_or(10_000, |m| timed_ops(m) as usize)
                    .max(1_000);
                let meter = cpu::Meter::start(redis.pid(), cpu::Clients::Children);
                // As many SETs as GETs.
                let measured = redis.measure(shape.conns, shape.in_flight, requests / 2);
                redis_rounds.extend(meter.finish(measured, |_| (requests / 2 * 2) as f64));
            }
            syncman_rounds.extend(measured);
        }
        row.echo_spread = stats::spread(&echo_rounds);
        row.echo = stats::Measured::median_of(echo_rounds);
        row.syncman = stats::Measured::median_of(syncman_rounds);
        row.redis = stats::Measured::median_of(redis_rounds);
        if shape.in_flight == 1 && shape.conns <= MAX_PYTHON_PROCS {
            (row.cpython, row.python_on_syncman) = python_turns(shape.conns, "dict");
        }
        report.rows.push(row);
    }
    let pair_kinds = [pairs::Pair::QueuePutGet, pairs::Pair::LockAcquireRelease];
    for pair in pair_kinds.into_iter().filter(|_| wants(Part::Pairs)) {
        eprintln!("{} ...", pair.name());
        // Like the calls shapes: the echo's round trip (the floor), syncman's pair and
        // Redis' LPUSH + LPOP take turns round after round, each figure the median.
        let (mut echo_rounds, mut syncman_rounds, mut redis_rounds) =
            (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            echo_rounds.extend(echo::measure(echo.addr, 1, 1, round_run).await);
            syncman_rounds.extend(
                on_worker({
                    let (addr, key) = (node.addr, authkey.clone());
                    async move { pairs::syncman(addr, key.as_bytes(), pair, round_run).await }
                })
                .await,
            );
            if let Some(redis) = &redis {
                let requests = (20_000.0 * round_run.as_secs_f64()) as usize;
                redis_rounds.extend(
                    redis
                        .run("lpush,lpop", 1, 1, requests.max(1_000))
                        .and_then(|r| Some(pairs::combine(r.first()?, r.get(1)?))),
                );
            }
        }
        let mut row = report::PairRow {
            operation: pair.name(),
            echo_spread: stats::spread(&echo_rounds),
            echo: stats::Measured::median_of(echo_rounds),
            syncman: stats::Measured::median_of(syncman_rounds),
            redis_name: "Redis (LPUSH + LPOP)",
            redis: stats::Measured::median_of(redis_rounds),
            cpython: None,
            python_on_syncman: None,
        };
        (row.cpython, row.python_on_syncman) = python_turns(1, pair.python_mode());
        report.pairs.push(row);
    }
    if wants(Part::Pairs) {
        eprintln!("list append ...");
        let mut append = report::PairRow {
            operation: "list append",
            echo: None,
            echo_spread: None,
            syncman: on_worker({
                let (addr, key) = (node.addr, authkey.clone());
                async move { pairs::syncman_append(addr, key.as_bytes(), run).await }
            })
            .await,
            redis_name: "Redis (RPUSH)",
            redis: redis.as_ref().and_then(|r| {
                let requests = (20_000.0 * seconds) as usize;
                r.run("rpush", 1, 1, requests.max(1_000))?
                    .into_iter()
                    .next()
            }),
            cpython: None,
            python_on_syncman: None,
        };
        (append.cpython, append.python_on_syncman) = python_turns(1, "append");
        report.pairs.push(append);
        eprintln!("barrier rounds ...");
        let mut barrier = report::PairRow {
            operation: "barrier round, 4 parties (one connection each)",
            echo: None,
            echo_spread: None,
            syncman: on_worker({
                let (addr, key) = (node.addr, authkey.clone());
                async move { pairs::syncman_barrier(addr, key.as_bytes(), 4, run).await }
            })
            .await,
            redis_name: "Redis",
            redis: None,
            cpython: None,
            python_on_syncman: None,
        };
        // Four processes, each with its connection, sharing one Barrier(4) proxy.
        (barrier.cpython, barrier.python_on_syncman) = python_turns(4, "barrier");
        report.pairs.push(barrier);
    }
    if wants(Part::Connect) {
        let tries = if args.quick { 20 } else { 500 };
        report.connect = on_worker({
            let (addr, key) = (node.addr, authkey.clone());
            async move { pairs::syncman_connect(addr, key.as_bytes(), tries).await }
        })
        .await;
    }

    let connections = if args.quick { 100 } else { 10_000 };
    if wants(Part::Idle) {
        eprintln!("{connections} idle connections ...");
        idle::raise_open_file_limit();
        let fresh = start_node()?;
        let mut row = idle::IdleRow {
            connections,
            syncman_bytes_per_connection: idle::syncman(
                fresh.addr,
                authkey.as_bytes(),
                fresh.child.id(),
                connections,
            )
            .await,
            redis_bytes_per_connection: None,
            cpython_bytes_per_connection: None,
        };
        if let Some(redis) = redis::Redis::start(server_cpus) {
            row.redis_bytes_per_connection = idle::redis(redis.port(), redis.pid(), connections);
        }
        // A fresh server, started after the file limit was raised (it inherits it).
        if let Some(py) = &python {
            let fresh = Server::start(&mut py.server(&authkey, server_cpus))?;
            row.cpython_bytes_per_connection = idle::cpython(
                fresh.addr,
                authkey.as_bytes(),
                fresh.child.id(),
                connections,
            )
            .await;
        }
        report.idle = Some(row);
    }

    let entries = if args.quick { 10_000 } else { 1_000_000 };
    // Fresh servers for each workload: memory a server freed is reused without growing its
    // RSS, which would flatter whoever came second.
    let kinds = [memory::Kind::Ints, memory::Kind::StrBytes];
    for kind in kinds.into_iter().filter(|_| wants(Part::Memory)) {
        eprintln!("memory: {} entries, {} ...", entries, kind.name());
        let fresh = start_node()?;
        let mut row = memory::MemoryRow {
            workload: kind.name(),
            entries,
            syncman: memory::syncman(
                fresh.addr,
                authkey.as_bytes(),
                fresh.child.id(),
                kind,
                entries,
            )
            .await,
            redis: None,
            cpython: None,
        };
        drop(fresh);
        if let Some(redis) = redis::Redis::start(server_cpus) {
            row.redis = memory::redis(redis.port(), redis.pid(), kind, entries);
        }
        if let Some(py) = &python {
            let server = Server::start(&mut py.server(&authkey, server_cpus))?;
            row.cpython = memory::cpython(
                &py.clients_script(),
                server.addr,
                &authkey,
                server.child.id(),
                kind,
                entries,
            );
        }
        report.memory.push(row);
    }
    echo.stop();
    node.stop();
    if let Some(s) = cpython_server.as_mut() {
        s.stop();
    }
    drop(redis);

    report.targets = targets::judge(&report);
    print!("{}", report.table());
    for path in [&args.json, &args.svg] {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
    }
    report.write_json(&args.json)?;
    report.write_svg(&args.svg)?;
    eprintln!("wrote {} and {}", args.json.display(), args.svg.display());
    Ok(())
}

/// Runs a measurement in a task of the runtime, as the shapes' clients and the echo floor's
/// run, rather than on the thread that started the runtime: woken from a worker, that
/// thread would pay a thread wake-up per call that the others do not.
async fn on_worker<T: Send + 'static>(
    measure: impl std::future::Future<Output = Option<T>> + Send + 'static,
) -> Option<T> {
    tokio::spawn(measure).await.ok().flatten()
}

/// `program args`, through `taskset` on the servers' CPUs (0 to `cpus` - 1) when pinned.
pub fn spawn_pinned(program: &str, args: &[String], cpus: Option<usize>) -> Command {
    let mut cmd = match cpus {
        Some(n) => {
            let mut c = Command::new("taskset");
            let list = if n <= 1 {
                "0".into()
            } else {
                format!("0-{}", n - 1)
            };
            c.args(["-c", &list, program]);
            c
        }
        None => Command::new(program),
    };
    cmd.args(args);
    cmd
}

/// This thread on every CPU from `servers` on (the servers have 0 to `servers` - 1), and so
/// every thread and client process it starts after: call it before the runtime starts its
/// workers.
fn pin_self_off_servers(servers: usize) -> Result<(), String> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus <= servers {
        return Err(format!(
            "--pin with {servers} server CPU(s) needs at least {} CPUs; this process may use {cpus}",
            servers + 1
        ));
    }
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET stays within it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for cpu in servers..cpus {
            libc::CPU_SET(cpu, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(format!(
                "sched_setaffinity: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// Every thread of this process is kept off the servers' CPUs (0 to `servers` - 1): a pinned
/// run whose clients could share the servers' CPUs would measure something else.
fn check_no_thread_on_servers(servers: usize) -> Result<(), String> {
    let tasks =
        std::fs::read_dir("/proc/self/task").map_err(|e| format!("/proc/self/task: {e}"))?;
    for task in tasks.flatten() {
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        let allowed = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .map(str::trim)
            .unwrap_or_default();
        if reaches_below(allowed, servers) {
            return Err(format!(
                "--pin: thread {} may run on a server CPU (allowed: {allowed})",
                task.file_name().to_string_lossy()
            ));
        }
    }
    Ok(())
}

/// Whether a CPU list as `/proc` writes it (`1-3,5`) holds a CPU below `n`. The lowest CPU
/// of each range is its first; what does not read as a number (a thread gone meanwhile
/// leaves nothing to read) is passed over.
fn reaches_below(list: &str, n: usize) -> bool {
    list.split(',').any(|range| {
        range
            .split('-')
            .next()
            .and_then(|c| c.trim().parse::<usize>().ok())
            .is_some_and(|first| first < n)
    })
}

/// A server process that prints `listening on ADDR` first; killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    /// What the Python clients need of it.
    fn target(&self) -> cpython::Target {
        cpython::Target {
            pid: self.child.id(),
            addr: self.addr,
        }
    }

    fn start(cmd: &mut Command) -> Result<Server, String> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("{cmd:?}: {e}"))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok());
        match (read, addr) {
            (Ok(_), Some(addr)) => Ok(Server { child, addr }),
            (read, _) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!(
                    "{cmd:?} printed {line:?}, not `listening on ADDR` ({read:?})"
                ))
            }
        }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::{reaches_below, spawn_pinned};

    #[test]
    fn pinned_servers_get_cpus_from_zero() {
        let args = |cpus| {
            let cmd = spawn_pinned("server", &["--flag".into()], cpus);
            let args: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into()).collect();
            (cmd.get_program().to_string_lossy().into_owned(), args)
        };
        assert_eq!(
            args(Some(1)),
            (
                "taskset".into(),
                vec!["-c".into(), "0".into(), "server".into(), "--flag".into()]
            )
        );
        assert_eq!(
            args(Some(4)),
            (
                "taskset".into(),
                vec!["-c".into(), "0-3".into(), "server".into(), "--flag".into()]
            )
        );
        assert_eq!(args(None), ("server".into(), vec!["--flag".into()]));
    }

    #[test]
    fn a_cpu_list_reaches_below_the_clients_first_cpu() {
        assert!(!reaches_below("1", 1));
        assert!(reaches_below("0-1", 1));
        assert!(!reaches_below("4-15", 4));
        assert!(reaches_below("2,5-7", 4));
        assert!(reaches_below("5-7,3", 4));
        // A thread gone between listing and reading leaves nothing: passed over.
        assert!(!reaches_below("", 4));
    }
}
