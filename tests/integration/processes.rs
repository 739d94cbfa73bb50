//! Separate client processes (the examples in `examples/`) against one node: a work queue
//! that hands every item out exactly once while consumers are SIGKILLed, a lock and a
//! barrier shared across processes, and what a killed holder or party leaves behind.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use syncman_client::proxy::is_broken_barrier;
use syncman_tests::netns::NetPair;
use syncman_tests::{example_bin, syncman_bin, wait_for_sessions, TestNode};

/// The bound on every wait for a process or a line.
const LONG: Duration = Duration::from_secs(20);

/// A child process running one example with the node's address and key, killed on drop.
/// A thread collects its stdout, line by line (only complete lines count).
struct Proc {
    label: String,
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
}

impl Proc {
    fn spawn(node: &TestNode, example: &str, args: &[&str]) -> Proc {
        Self::spawn_cmd(Command::new(example_bin(example)), node, example, args)
    }

    /// As [`Proc::spawn`], with a heartbeat deadline of `ttl` seconds (`"0"`: none).
    fn spawn_with_heartbeat(node: &TestNode, ttl: &str, example: &str, args: &[&str]) -> Proc {
        let mut cmd = Command::new(example_bin(example));
        cmd.env("SYNCMAN_HEARTBEAT_TTL", ttl);
        Self::spawn_cmd(cmd, node, example, args)
    }

    /// Runs the example on another host: inside network namespace `netns`.
    fn spawn_in(net: &NetPair, netns: &str, node: &TestNode, example: &str, args: &[&str]) -> Proc {
        Self::spawn_cmd(net.exec(netns, example_bin(example)), node, example, args)
    }

    fn spawn_cmd(mut cmd: Command, node: &TestNode, example: &str, args: &[&str]) -> Proc {
        let label = format!("{example} {}", args.join(" "));
        let key = std::str::from_utf8(node.authkey()).expect("test keys are ASCII");
        let mut child = cmd
            .args(args)
            .env("SYNCMAN_ADDR", node.addr().to_string())
            .env("SYNCMAN_AUTHKEY", key)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {label}: {e}"));
        let stdout = child.stdout.take().expect("child stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let reader = std::thread::spawn({
            let lines = lines.clone();
            move || {
                let mut stdout = BufReader::new(stdout);
                let mut line = String::new();
                loop {
                    line.clear();
                    match stdout.read_line(&mut line) {
                        Ok(0) | Err(_) => break,
                        // A line cut short by a kill has no newline: it does not count.
                        Ok(_) if line.ends_with('\n') => {
                            lines.lock().unwrap().push(line.trim_end().to_string())
                        }
                        Ok(_) => {}
                    }
                }
            }
        });
        Proc {
            label,
            child,
            lines,
            reader: Some(reader),
        }
    }

    fn line_count(&self) -> usize {
        self.lines.lock().unwrap().len()
    }

    /// Waits (up to `LONG`) for a line starting with `prefix`; returns the rest of it.
    fn wait_for_line(&mut self, prefix: &str) -> String {
        let end = Instant::now() + LONG;
        loop {
            let found = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .find_map(|l| l.strip_prefix(prefix).map(str::to_string));
            if let Some(rest) = found {
                return rest;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited ({status}) before printing {prefix:?}",
                    self.label
                );
            }
            assert!(
                Instant::now() < end,
                "{} printed no {prefix:?} line",
                self.label
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends `signal` (`STOP`, `CONT`) to the process.
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {}", self.label);
    }

    /// SIGKILLs the process and reaps it; true if it was still running.
    fn kill(&mut self) -> bool {
        let was_running = self.running();
        let _ = self.child.kill();
        let _ = self.child.wait();
        was_running
    }

    /// Waits (up to `LONG`) for the process to exit and for the end of its output.
    fn finish(&mut self) -> (ExitStatus, Vec<String>) {
        let end = Instant::now() + LONG;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(
                Instant::now() < end,
                "{} did not exit within {LONG:?}",
                self.label
            );
            std::thread::sleep(Duration::from_millis(5));
        };
        if let Some(reader) = self.reader.take() {
            while !reader.is_finished() {
                assert!(
                    Instant::now() < end,
                    "{}: stdout still open after exit",
                    self.label
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            reader.join().expect("stdout reader");
        }
        (status, self.lines.lock().unwrap().clone())
    }

    /// As [`Proc::finish`], asserting a successful exit.
    fn finish_ok(&mut self) -> Vec<String> {
        let (status, lines) = self.finish();
        assert!(status.success(), "{} exited with {status}", self.label);
        lines
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A different number on every run, for "random-ish" moments.
fn seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    // splitmix64, so nearby clocks give unrelated numbers
    let mut z = nanos.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The numbers in a consumer's `got <n>` and `acked <n>` lines (any other line fails the
/// test).
fn received(label: &str, lines: &[String]) -> (Vec<i64>, Vec<i64>) {
    let (mut got, mut acked) = (Vec::new(), Vec::new());
    for l in lines {
        let parsed = |rest: &str| -> i64 {
            rest.parse()
                .unwrap_or_else(|_| panic!("{label}: unexpected line {l:?}"))
        };
        if let Some(n) = l.strip_prefix("got ") {
            got.push(parsed(n));
        } else if let Some(n) = l.strip_prefix("acked ") {
            acked.push(parsed(n));
        } else {
            panic!("{label}: unexpected line {l:?}");
        }
    }
    (got, acked)
}

/// What a work-queue run saw: how often each item was received, and which items a killed
/// consumer received without acknowledging (printed `got`, not `acked`).
struct WorkQueueRun {
    counts: HashMap<i64, u32>,
    killed: usize,
    unacked_by_killed: Vec<i64>,
    lost: Vec<i64>,
    unexpected: Vec<i64>,
    duplicates: u32,
}

/// Three producers put 0..3000 while four consumers (`role`: `consume` or `consume-lease`)
/// take them; two consumers are SIGKILLed at random moments and replaced. Whatever is left
/// afterwards is drained, and every item's receipts are counted.
fn run_work_queue(role: &str) -> WorkQueueRun {
    const QUEUE: &str = "jobs";
    const RANGES: [(i64, i64); 3] = [(0, 1000), (1000, 2000), (2000, 3000)];
    const TOTAL: usize = 3000;
    // Long enough that no consumer gives up while the producers start or still run, on a
    // loaded machine too (the victims are killed within 3 s of starting).
    const IDLE_MS: &str = "5000";
    let node = TestNode::start();
    let seed = seed();
    // Kill victims after they printed this many lines (each gets ~750 of 3000 items).
    let thresholds = [10 + seed % 240, 10 + (seed >> 16) % 240];
    println!("seed {seed:#x}: killing {role} consumers after {thresholds:?} lines");

    let consume = || Proc::spawn(&node, "work_queue", &[role, QUEUE, IDLE_MS]);
    let mut consumers: Vec<Proc> = (0..4).map(|_| consume()).collect();
    let mut producers: Vec<Proc> = RANGES
        .iter()
        .map(|(from, to)| {
            let (from, to) = (from.to_string(), to.to_string());
            Proc::spawn(&node, "work_queue", &["produce", QUEUE, &from, &to])
        })
        .collect();

    let mut killed = Vec::new();
    for (victim, threshold) in thresholds.into_iter().enumerate() {
        let threshold = threshold as usize;
        // Up to 1.5 s (less than the idle time, so the victim is still running).
        let end = Instant::now() + Duration::from_millis(1500);
        while consumers[victim].line_count() < threshold && Instant::now() < end {
            std::thread::sleep(Duration::from_micros(200));
        }
        let printed = consumers[victim].line_count();
        assert!(
            consumers[victim].kill(),
            "consumer {victim} had already exited when it was to be killed"
        );
        println!("killed consumer {victim} after it printed {printed} lines (or more)");
        killed.push(victim);
        consumers.push(consume());
    }

    for p in &mut producers {
        let lines = p.finish_ok();
        assert_eq!(lines, ["produced 1000"], "{}", p.label);
    }
    let mut counts = HashMap::<i64, u32>::new();
    let mut per_consumer = Vec::new();
    let mut unacked_by_killed = Vec::new();
    for (i, c) in consumers.iter_mut().enumerate() {
        let (status, lines) = c.finish();
        if !killed.contains(&i) {
            assert!(status.success(), "consumer {i} exited with {status}");
        }
        let (got, acked) = received(&c.label, &lines);
        per_consumer.push(got.len());
        if killed.contains(&i) {
            unacked_by_killed.extend(got.iter().filter(|n| !acked.contains(n)));
        }
        for n in got {
            *counts.entry(n).or_default() += 1;
        }
    }
    let by_consumers: usize = per_consumer.iter().sum();

    // Whatever is left (nothing, unless every consumer gave up early) is drained here.
    let drained = runtime().block_on(async {
        let m = node.manager().await;
        let q = m.queue::<i64>(QUEUE).await.unwrap();
        let mut drained = Vec::new();
        while let Some(n) = q.try_get().await.unwrap() {
            drained.push(n);
        }
        drained
    });
    for &n in &drained {
        *counts.entry(n).or_default() += 1;
    }

    let expected = |n: &i64| RANGES.iter().any(|(from, to)| (*from..*to).contains(n));
    let duplicates: u32 = counts.values().filter(|&&c| c > 1).map(|c| c - 1).sum();
    let unexpected: Vec<i64> = counts.keys().copied().filter(|n| !expected(n)).collect();
    let mut lost: Vec<i64> = RANGES
        .iter()
        .flat_map(|&(from, to)| from..to)
        .filter(|n| !counts.contains_key(n))
        .collect();
    lost.sort_unstable();
    println!(
        "{role}: put {TOTAL}, received by consumers {by_consumers} \
         (per consumer {per_consumer:?}, killed {killed:?}), drained {}, \
         kills {}, lost {} {lost:?}, duplicates {duplicates}, unexpected {}{}",
        drained.len(),
        killed.len(),
        lost.len(),
        unexpected.len(),
        if role == "consume-lease" {
            format!(", received but not acknowledged by killed consumers {unacked_by_killed:?}")
        } else {
            String::new()
        }
    );
    WorkQueueRun {
        counts,
        killed: killed.len(),
        unacked_by_killed,
        lost,
        unexpected,
        duplicates,
    }
}

#[test]
fn work_queue_hands_out_each_item_once_while_consumers_are_killed() {
    let run = run_work_queue("consume");
    assert_eq!(run.duplicates, 0, "items received more than once");
    assert!(
        run.unexpected.is_empty(),
        "items never put: {:?}",
        run.unexpected
    );
    assert!(
        run.lost.len() <= run.killed,
        "{} items lost with {} consumers killed (at most one get each in flight): {:?}",
        run.lost.len(),
        run.killed,
        run.lost
    );
}

/// With leases a killed consumer loses nothing: what it held unacknowledged goes back.
/// Only an item it printed but did not acknowledge may be received twice.
#[test]
fn work_queue_with_leases_loses_nothing_while_consumers_are_killed() {
    let run = run_work_queue("consume-lease");
    assert!(run.lost.is_empty(), "items lost: {:?}", run.lost);
    assert!(
        run.unexpected.is_empty(),
        "items never put: {:?}",
        run.unexpected
    );
    for (n, count) in &run.counts {
        assert!(
            *count == 1 || (*count == 2 && run.unacked_by_killed.contains(n)),
            "item {n} received {count} times; unacknowledged by killed consumers: {:?}",
            run.unacked_by_killed
        );
    }
}

/// A consumer killed while it holds a lease: its item goes back to the front of the queue.
#[test]
fn a_killed_consumers_leased_item_goes_back_to_the_front() {
    let node = TestNode::start();
    let rt = runtime();
    let m = rt.block_on(node.manager());
    let q = rt.block_on(m.queue::<i64>("leased")).unwrap();
    for n in 1..=3 {
        rt.block_on(q.put(&n)).unwrap();
    }
    let mut holder = Proc::spawn(&node, "work_queue", &["hold-lease", "leased"]);
    assert_eq!(holder.wait_for_line("holding "), "1");
    assert_eq!(rt.block_on(q.len()).unwrap(), 2, "the leased item is out");
    assert!(holder.kill(), "holder exited by itself");
    // The lease goes back when the node has ended the holder's session; a get before that
    // would rightly find 2 first.
    rt.block_on(wait_for_sessions(&m, 1));
    let back = rt.block_on(async {
        let mut got = Vec::new();
        while got.len() < 3 {
            match q.get_timeout(LONG).await.unwrap() {
                Some(n) => got.push(n),
                None => break,
            }
        }
        got
    });
    assert_eq!(back, [1, 2, 3], "the leased item comes back first");
}

#[test]
fn lock_counter_across_processes_loses_no_update() {
    const PROCS: usize = 4;
    const ROUNDS: usize = 50;
    let node = TestNode::start();
    let rounds = ROUNDS.to_string();
    let mut procs: Vec<Proc> = (0..PROCS)
        .map(|_| Proc::spawn(&node, "lock_counter", &["counter-lock", "counter", &rounds]))
        .collect();
    let mut tokens = Vec::new();
    for p in &mut procs {
        let lines = p.finish_ok();
        assert_eq!(
            lines.last().map(String::as_str),
            Some("done"),
            "{}",
            p.label
        );
        let mine: Vec<u64> = lines[..lines.len() - 1]
            .iter()
            .map(|l| {
                l.strip_prefix("token ")
                    .and_then(|t| t.parse().ok())
                    .unwrap_or_else(|| panic!("{}: unexpected line {l:?}", p.label))
            })
            .collect();
        assert_eq!(mine.len(), ROUNDS, "{}", p.label);
        assert!(
            mine.windows(2).all(|w| w[0] < w[1]),
            "{}: tokens not increasing: {mine:?}",
            p.label
        );
        tokens.extend(mine);
    }
    tokens.sort_unstable();
    tokens.dedup();
    assert_eq!(
        tokens.len(),
        PROCS * ROUNDS,
        "every grant has its own token"
    );
    let total = runtime().block_on(async {
        let m = node.manager().await;
        m.value("counter", 0u64).await.unwrap().get().await.unwrap()
    });
    assert_eq!(total, (PROCS * ROUNDS) as u64);
}

#[test]
fn a_killed_lock_holder_lets_the_next_process_in() {
    let node = TestNode::start();
    let rt = runtime();
    let m = rt.block_on(node.manager());
    let mut holder = Proc::spawn(&node, "lock_counter", &["hold", "L"]);
    let held: u64 = holder.wait_for_line("holding ").parse().unwrap();
    let mut counter = Proc::spawn(&node, "lock_counter", &["L", "V", "1"]);

    // Wait until the counter's acquire is parked behind the holder.
    rt.block_on(syncman_tests::wait_for_waiters(&m, "L", 1));
    assert_eq!(counter.line_count(), 0, "a grant while the holder lives");
    assert!(counter.running());

    assert!(holder.kill(), "holder exited by itself");
    let lines = counter.finish_ok();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let token: u64 = lines[0]
        .strip_prefix("token ")
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("unexpected line {:?}", lines[0]));
    assert!(token > held, "token {token} after the holder's {held}");
    assert_eq!(lines[1], "done");
    let v = rt.block_on(async { m.value("V", 0u64).await.unwrap().get().await.unwrap() });
    assert_eq!(v, 1);
}

/// A holder that is stopped (SIGSTOP: its kernel still answers TCP, so keepalive sees
/// nothing wrong) stops heartbeating: once its deadline passes the node ends its session,
/// and the waiter gets the lock with a larger token. Resumed, the holder learns why.
#[test]
fn a_stopped_lock_holder_loses_its_lock_when_its_heartbeat_deadline_passes() {
    const TTL: Duration = Duration::from_secs(2);
    let node = TestNode::start();
    let rt = runtime();
    let m = rt.block_on(node.manager());
    let ttl = TTL.as_secs().to_string();
    let mut holder = Proc::spawn_with_heartbeat(&node, &ttl, "lock_counter", &["hold-watch", "L"]);
    let held: u64 = holder.wait_for_line("holding ").parse().unwrap();
    let mut waiter = Proc::spawn(&node, "lock_counter", &["L", "V", "1"]);
    rt.block_on(syncman_tests::wait_for_waiters(&m, "L", 1));

    syncman_tests::stop_process(holder.child.id());
    let stopped_at = Instant::now();
    let token: u64 = waiter.wait_for_line("token ").parse().unwrap();
    let released_after = stopped_at.elapsed();
    assert!(token > held, "token {token} after the holder's {held}");
    // The last sign of life came at most a third of the deadline before the stop.
    assert!(
        released_after >= TTL / 2,
        "released {released_after:?} after the stop, before the deadline {TTL:?}"
    );
    // The bound: the waiter holds the lock within the deadline and a second.
    assert!(
        released_after <= TTL + Duration::from_secs(1),
        "released {released_after:?} after the stop, deadline {TTL:?}"
    );
    assert!(
        node.wait_for_log("session expired", LONG),
        "no expiry in the log"
    );
    waiter.finish_ok();

    holder.signal("CONT");
    let lines = holder.finish_ok();
    let lost = lines
        .iter()
        .find_map(|l| l.strip_prefix("lost: "))
        .unwrap_or_else(|| panic!("the holder did not report the loss: {lines:?}"));
    assert!(lost.starts_with("SessionExpired"), "lost: {lost}");
    assert_eq!(lines.last().map(String::as_str), Some("held false"));
    eprintln!("lock released {released_after:?} after the holder stopped (deadline {TTL:?})");
}

#[test]
fn barrier_phases_across_processes() {
    const PARTIES: usize = 3;
    const PHASES: usize = 3;
    let node = TestNode::start();
    let (parties, phases) = (PARTIES.to_string(), PHASES.to_string());
    let mut procs: Vec<Proc> = (0..PARTIES)
        .map(|_| Proc::spawn(&node, "barrier_phases", &["phases", &parties, &phases]))
        .collect();
    let mut by_phase = vec![Vec::new(); PHASES];
    for p in &mut procs {
        let lines = p.finish_ok();
        assert_eq!(lines.len(), PHASES, "{}: {lines:?}", p.label);
        for (phase, line) in lines.iter().enumerate() {
            let index: u64 = line
                .strip_prefix(&format!("phase {phase} index "))
                .and_then(|i| i.parse().ok())
                .unwrap_or_else(|| panic!("{}: unexpected line {line:?}", p.label));
            by_phase[phase].push(index);
        }
    }
    for (phase, indexes) in by_phase.iter_mut().enumerate() {
        indexes.sort_unstable();
        assert_eq!(*indexes, [0, 1, 2], "arrival indexes of phase {phase}");
    }
}

#[test]
fn a_killed_barrier_party_breaks_the_barrier() {
    let node = TestNode::start();
    let rt = runtime();
    let mut party = Proc::spawn(&node, "barrier_phases", &["wait-forever", "pair", "2"]);
    party.wait_for_line("waiting");
    rt.block_on(async {
        let m = node.manager().await;
        let b = m.barrier("pair", 2).await.unwrap();
        assert_eq!(b.n_waiting().await.unwrap(), 1);
        assert!(!b.broken().await.unwrap());

        assert!(party.kill(), "party exited by itself");
        let killed = tokio::time::Instant::now();
        // The node breaks the barrier once it sees the session end. (Waiting before that
        // would trip the barrier with the departed party's parked wait.)
        while !b.broken().await.unwrap() {
            assert!(
                killed.elapsed() < LONG,
                "barrier not broken by the killed party"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        println!("barrier broken {:?} after the kill", killed.elapsed());
        let err = tokio::time::timeout(LONG, b.wait())
            .await
            .expect("a wait on a broken barrier returns")
            .unwrap_err();
        assert!(is_broken_barrier(&err), "{err}");
    });
}

/// Waits (up to `LONG`) until `syncman status`, run inside `netns`, shows `n` calls parked
/// on the object `name`.
fn wait_for_waiters_in(net: &NetPair, netns: &str, node: &TestNode, name: &str, n: u64) {
    let key = std::str::from_utf8(node.authkey()).expect("test keys are ASCII");
    let end = Instant::now() + LONG;
    loop {
        let out = net
            .exec(netns, syncman_bin())
            .args(["status", "--addr", &node.addr().to_string()])
            .env("SYNCMAN_AUTHKEY", key)
            .output()
            .expect("run syncman status");
        let table = String::from_utf8_lossy(&out.stdout);
        // Columns: ID NAME TYPEID REFS WAITERS STATE.
        let waiters = table.lines().find_map(|row| {
            let cols: Vec<&str> = row.split_whitespace().collect();
            (cols.get(1) == Some(&name)).then(|| cols.get(4)?.parse::<u64>().ok())?
        });
        if waiters == Some(n) {
            return;
        }
        assert!(
            Instant::now() < end,
            "{name}: {waiters:?} waiters, not {n}: {table}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Two hosts: the node and a waiter on one, a lock holder on the other. The link to the
/// holder is cut (no FIN, no RST, the holder process lives on): the node's keepalive finds
/// the peer dead, ends its session, and the waiter gets the lock with a larger token.
#[test]
fn a_holder_cut_off_by_the_network_loses_its_lock() {
    let net = NetPair::new();
    let node = TestNode::start_in_netns(&net.a, &net.addr_a(), &["--keepalive", "1"]);
    // No heartbeat: the cut is found by keepalive alone.
    let mut holder = Proc::spawn_cmd(
        {
            let mut cmd = net.exec(&net.b, example_bin("lock_counter"));
            cmd.env("SYNCMAN_HEARTBEAT_TTL", "0");
            cmd
        },
        &node,
        "lock_counter",
        &["hold", "cut-lock"],
    );
    let held: u64 = holder.wait_for_line("holding ").parse().unwrap();
    let mut waiter = Proc::spawn_in(
        &net,
        &net.a,
        &node,
        "lock_counter",
        &["cut-lock", "cut-count", "1"],
    );
    wait_for_waiters_in(&net, &net.a, &node, "cut-lock", 1);
    assert_eq!(
        waiter.line_count(),
        0,
        "the waiter got the lock while it was held"
    );
    let cut_at = std::time::Instant::now();
    net.cut_b();
    let line = waiter.wait_for_line("token ");
    let token: u64 = line.parse().unwrap();
    assert!(token > held, "token {token} after {held}");
    assert!(
        holder.running(),
        "the holder must not have exited: the cut alone ended its session"
    );
    eprintln!("lock released {:?} after the cut", cut_at.elapsed());
    waiter.finish_ok();
}
