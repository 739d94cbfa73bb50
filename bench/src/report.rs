//! The results: a table on stdout, JSON, and an SVG chart of throughput against connections.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::idle::IdleRow;
use crate::memory::MemoryRow;
use crate::stats::Measured;
use crate::targets::{self, Judged, UNSTEADY};
use crate::Shape;

/// One shape, every peer.
#[derive(Serialize)]
pub struct Row {
    pub shape: &'static str,
    pub conns: usize,
    pub in_flight: usize,
    pub syncman: Option<Measured>,
    pub echo: Option<Measured>,
    pub redis: Option<Measured>,
    /// CPython's server with CPython's clients.
    pub cpython: Option<Measured>,
    /// The same CPython clients against the syncman node.
    pub python_on_syncman: Option<Measured>,
    /// The echo's fastest round ÷ its slowest (`stats::spread`): how steady the machine
    /// was while this shape ran.
    pub echo_spread: Option<f64>,
}

impl Row {
    pub fn new(shape: Shape) -> Row {
        Row {
            shape: shape.name,
            conns: shape.conns,
            in_flight: shape.in_flight,
            syncman: None,
            echo: None,
            redis: None,
            cpython: None,
            python_on_syncman: None,
            echo_spread: None,
        }
    }
}

/// The line under a table that says, per shape or pair, how steady the machine was.
fn steadiness<'a>(t: &mut String, spreads: impl Iterator<Item = (&'a str, Option<f64>)>) {
    let spreads: Vec<String> = spreads
        .filter_map(|(what, spread)| Some(format!("{what} {:.2}", spread?)))
        .collect();
    if !spreads.is_empty() {
        let _ = writeln!(
            t,
            "\nSteadiness, the echo's fastest round ÷ its slowest (it does no work: only the machine moves it; over {UNSTEADY:.2} the targets judged from it are marked unsteady): {}.",
            spreads.join("; ")
        );
    }
}

/// A line of the chart: its label, colour and the value it takes from a row.
type Series = (&'static str, &'static str, fn(&Row) -> Option<f64>);

#[derive(Serialize)]
pub struct Report {
    pub machine: Machine,
    /// When pinned (`--pin`), how many CPUs the servers had (0 to N-1), the clients having
    /// the rest; `None` unpinned.
    pub server_cpus: Option<usize>,
    pub seconds_per_shape: f64,
    /// The calls shapes' seconds run in this many rounds, the peers taking turns; each
    /// figure is the median of its rounds.
    pub rounds_per_shape: u32,
    pub rows: Vec<Row>,
    pub pairs: Vec<PairRow>,
    /// syncman: connect, authenticate and `ping`, one after another.
    pub connect: Option<Measured>,
    pub memory: Vec<MemoryRow>,
    pub idle: Option<IdleRow>,
    /// Issue 15's targets as this run found them (`targets.rs`).
    pub targets: Vec<Judged>,
}

/// An operation (or a pair of them) on one connection, one at a time; or a barrier round.
#[derive(Serialize)]
pub struct PairRow {
    pub operation: &'static str,
    /// The echo floor's round trip (1 connection, request/response), measured in turn
    /// with this row's pair, round after round (the queue and lock pairs; the table
    /// divides the other rows' p50 by the first of these).
    pub echo: Option<Measured>,
    /// The echo's fastest round ÷ its slowest, where this row measured it.
    pub echo_spread: Option<f64>,
    pub syncman: Option<Measured>,
    /// What Redis ran for it (`LPUSH + LPOP`, `RPUSH`).
    pub redis_name: &'static str,
    pub redis: Option<Measured>,
    /// CPython's server with CPython's clients.
    pub cpython: Option<Measured>,
    /// The same CPython clients against the syncman node.
    pub python_on_syncman: Option<Measured>,
}

#[derive(Serialize)]
pub struct Machine {
    /// CPUs online: the machine's, not the ones this process may use (fewer when pinned).
    pub cpus: usize,
    /// The CPUs the run was started on (its affinity, as `taskset` sets it), before `--pin`
    /// divides them: every peer and its clients share these.
    pub usable_cpus: usize,
    /// On a virtual machine with Linux's haltpoll idle driver: how long an idle CPU polls
    /// before it halts (`guest_halt_poll_ns`). At 0 a wake-up across CPUs waits for the host
    /// to run the halted CPU again, which can cost more than the call itself.
    pub guest_halt_poll_ns: Option<u64>,
    pub unix_time: u64,
}

/// Where Linux's haltpoll driver keeps its polling time, on a virtual machine that has it.
const GUEST_HALT_POLL_NS: &str = "/sys/module/haltpoll/parameters/guest_halt_poll_ns";

impl Report {
    /// `server_cpus`: the servers' CPUs when pinned (`--server-cpus`), `None` unpinned.
    pub fn new(server_cpus: Option<usize>, seconds: f64, rounds: u32) -> Report {
        // SAFETY: sysconf only reads a system setting.
        let cpus =
            usize::try_from(unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }).unwrap_or(1);
        Report {
            machine: Machine {
                cpus,
                usable_cpus: cpus,
                guest_halt_poll_ns: std::fs::read_to_string(GUEST_HALT_POLL_NS)
                    .ok()
                    .and_then(|ns| ns.trim().parse().ok()),
                unix_time: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            },
            server_cpus,
            seconds_per_shape: seconds,
            rounds_per_shape: rounds,
            rows: Vec::new(),
            pairs: Vec::new(),
            connect: None,
            memory: Vec::new(),
            idle: None,
            targets: Vec::new(),
        }
    }

    /// Says so when the run was held to fewer CPUs than the machine has (`taskset -c 0
    /// syncman-bench`: every server and client on one CPU, so each rate is set by the CPU
    /// time a call costs both sides, with no wake-up across CPUs).
    fn affinity_note(&self) -> String {
        let Machine {
            cpus, usable_cpus, ..
        } = self.machine;
        if usable_cpus >= cpus {
            return String::new();
        }
        format!(
            " The run was started on {usable_cpus} of the machine's {cpus} CPUs (an affinity mask such as `taskset` sets): every server and client shared {}.",
            if usable_cpus == 1 { "it" } else { "them" }
        )
    }

    /// On a virtual machine, how its idle CPUs wait, when a run spans CPUs: a halted CPU
    /// wakes only when the host runs it again, so with no polling the rates across CPUs are
    /// set by the host (docs/BENCHMARKS.md, "Virtual machines").
    fn halt_poll_note(&self) -> String {
        match self.machine.guest_halt_poll_ns {
            _ if self.machine.usable_cpus < 2 => String::new(),
            None => String::new(),
            Some(0) => format!(
                " Idle CPUs halt at once (`{GUEST_HALT_POLL_NS}` is 0): a wake-up across CPUs waits for the host, so the rates across CPUs are the host's more than the servers'."
            ),
            Some(ns) => format!(
                " Idle CPUs poll for up to {} µs before they halt (`{GUEST_HALT_POLL_NS}`).",
                ns / 1000
            ),
        }
    }

    /// Markdown: one line per shape and peer, then the ratios.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "Calls: {} s per shape and peer in {} round(s), the peers taking turns; each figure is the median of the rounds'.{}{}\n",
            self.seconds_per_shape,
            self.rounds_per_shape,
            self.affinity_note(),
            self.halt_poll_note()
        );
        let _ = writeln!(
            t,
            "| shape | peer | ops/s | p50 µs | p99 µs | p999 µs | syncman ÷ peer (ops/s) | server CPU µs/op | clients' CPU µs/op |\n|---|---|---|---|---|---|---|---|---|"
        );
        for row in &self.rows {
            let peers = [
                ("syncman", &row.syncman),
                ("TCP echo (floor)", &row.echo),
                ("Redis (redis-benchmark)", &row.redis),
                ("CPython manager", &row.cpython),
                ("CPython clients → syncman", &row.python_on_syncman),
            ];
            for (name, m) in peers {
                let Some(m) = m else { continue };
                let ratio = match (name, &row.syncman, &row.python_on_syncman) {
                    ("syncman" | "CPython clients → syncman", _, _) => String::from("—"),
                    ("CPython manager", _, Some(py)) => {
                        format!("{:.2} (Python clients)", py.ops_per_s / m.ops_per_s)
                    }
                    (_, Some(s), _) => format!("{:.2}", s.ops_per_s / m.ops_per_s),
                    _ => String::from("—"),
                };
                let p999 = m.p999_us.map_or("—".into(), |v| format!("{v:.0}"));
                let cpu = |v: Option<f64>| v.map_or("—".into(), |v| format!("{v:.1}"));
                let _ = writeln!(
                    t,
                    "| {} | {name} | {:.0} | {:.1} | {:.1} | {p999} | {ratio} | {} | {} |",
                    row.shape,
                    m.ops_per_s,
                    m.p50_us,
                    m.p99_us,
                    cpu(m.server_cpu_us_per_op),
                    cpu(m.client_cpu_us_per_op)
                );
            }
        }
        steadiness(&mut t, self.rows.iter().map(|r| (r.shape, r.echo_spread)));
        if !self.pairs.is_empty() {
            let _ = writeln!(
                t,
                "\n| operation, one at a time | peer | ops/s (pairs, rounds) | p50 µs | p99 µs | syncman ÷ peer | p50 ÷ echo p50 |\n|---|---|---|---|---|---|---|"
            );
        }
        let first_echo = self.pairs.iter().find_map(|r| r.echo.as_ref());
        for row in &self.pairs {
            let echo = row.echo.as_ref().or(first_echo);
            let peers = [
                ("TCP echo (floor), one round trip", &row.echo),
                ("syncman", &row.syncman),
                (row.redis_name, &row.redis),
                ("CPython manager", &row.cpython),
                ("CPython clients → syncman", &row.python_on_syncman),
            ];
            for (name, m) in peers {
                let Some(m) = m else { continue };
                // The Rust client against Redis; CPython's server against the same Python
                // clients on syncman (the Rust client's work is not a Python client's).
                let ratio = match (name, &row.syncman, &row.python_on_syncman) {
                    ("CPython manager", _, Some(py)) => {
                        format!("{:.2} (Python clients)", py.ops_per_s / m.ops_per_s)
                    }
                    (name, Some(s), _) if name == row.redis_name => {
                        format!("{:.2}", s.ops_per_s / m.ops_per_s)
                    }
                    _ => "—".into(),
                };
                let to_echo = echo.map_or("—".into(), |e| format!("{:.2}", m.p50_us / e.p50_us));
                let _ = writeln!(
                    t,
                    "| {} | {name} | {:.0} | {:.1} | {:.1} | {ratio} | {to_echo} |",
                    row.operation, m.ops_per_s, m.p50_us, m.p99_us
                );
            }
        }
        steadiness(
            &mut t,
            self.pairs.iter().map(|r| (r.operation, r.echo_spread)),
        );
        if let Some(c) = &self.connect {
            let _ = writeln!(
                t,
                "\nsyncman connect + authenticate + first call: p50 {:.0} µs, p99 {:.0} µs",
                c.p50_us, c.p99_us
            );
        }
        if !self.memory.is_empty() {
            let _ = writeln!(
                t,
                "\n| memory | peer | RSS after | grown by | bytes per entry | syncman ÷ peer |\n|---|---|---|---|---|---|"
            );
        }
        for row in &self.memory {
            let peers = [
                ("syncman", &row.syncman),
                ("Redis", &row.redis),
                ("CPython manager", &row.cpython),
            ];
            for (name, held) in peers {
                let Some(h) = held else { continue };
                let ratio = match (&row.syncman, name) {
                    (Some(s), "Redis" | "CPython manager") => {
                        format!("{:.2}", s.bytes_per_entry / h.bytes_per_entry)
                    }
                    _ => "—".into(),
                };
                let _ = writeln!(
                    t,
                    "| {} × {} | {name} | {:.1} MB | {:.1} MB | {:.0} | {ratio} |",
                    row.entries,
                    row.workload,
                    h.rss_after_bytes as f64 / 1e6,
                    h.grown_bytes as f64 / 1e6,
                    h.bytes_per_entry
                );
            }
        }
        if let Some(idle) = &self.idle {
            let kib = |b: Option<f64>| b.map_or("—".into(), |b| format!("{:.1} KiB", b / 1024.0));
            let _ = writeln!(
                t,
                "\nRSS per idle authenticated connection ({} connections): syncman {}, Redis {}, CPython manager {}",
                idle.connections,
                kib(idle.syncman_bytes_per_connection),
                kib(idle.redis_bytes_per_connection),
                kib(idle.cpython_bytes_per_connection)
            );
        }
        if !self.targets.is_empty() {
            t.push_str(&targets::table(&self.targets));
        }
        t
    }

    pub fn write_json(&self, path: &Path) -> Result<(), String> {
        let text = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Writes the chart ([`Report::svg`]).
    pub fn write_svg(&self, path: &Path) -> Result<(), String> {
        std::fs::write(path, self.svg()).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Throughput (ops/s) against connections, one line per peer, for the shapes with one
    /// call in flight per connection.
    fn svg(&self) -> String {
        let rows: Vec<&Row> = self.rows.iter().filter(|r| r.in_flight == 1).collect();
        let series: [Series; 5] = [
            ("syncman", "#d62728", |r| {
                r.syncman.as_ref().map(|m| m.ops_per_s)
            }),
            ("TCP echo", "#7f7f7f", |r| {
                r.echo.as_ref().map(|m| m.ops_per_s)
            }),
            ("Redis", "#1f77b4", |r| {
                r.redis.as_ref().map(|m| m.ops_per_s)
            }),
            ("CPython manager", "#2ca02c", |r| {
                r.cpython.as_ref().map(|m| m.ops_per_s)
            }),
            ("CPython clients → syncman", "#ff7f0e", |r| {
                r.python_on_syncman.as_ref().map(|m| m.ops_per_s)
            }),
        ];
        let (w, h, left, bottom) = (640.0, 400.0, 70.0, 40.0);
        let max_y = rows
            .iter()
            .flat_map(|r| series.iter().filter_map(move |(_, _, f)| f(r)))
            .fold(1.0f64, f64::max)
            * 1.1;
        let n = rows.len().max(2) as f64;
        let x = |i: usize| left + (w - left - 20.0) * i as f64 / (n - 1.0);
        let y = |v: f64| (h - bottom) - (h - bottom - 20.0) * v / max_y;
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{left}\" y=\"14\">ops/s against connections (one call in flight each){}</text>\n",
            match self.server_cpus {
                Some(1) => ", servers pinned to one CPU".to_string(),
                Some(n) => format!(", servers pinned to {n} CPUs"),
                None if self.machine.usable_cpus < self.machine.cpus => format!(
                    ", everything on {} of {} CPUs",
                    self.machine.usable_cpus, self.machine.cpus
                ),
                None => String::new(),
            }
        );
        let _ = writeln!(
            svg,
            "<line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/><line x1=\"{left}\" y1=\"20\" x2=\"{left}\" y2=\"{}\" stroke=\"black\"/>",
            h - bottom,
            w - 20.0,
            h - bottom,
            h - bottom
        );
        for k in 0..=4 {
            let v = max_y * k as f64 / 4.0;
            let _ = writeln!(
                svg,
                "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{:.0}k</text>",
                left - 5.0,
                y(v) + 4.0,
                v / 1e3
            );
        }
        for (i, r) in rows.iter().enumerate() {
            let _ = writeln!(
                svg,
                "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                x(i),
                h - bottom + 16.0,
                r.conns
            );
        }
        for (k, (name, color, f)) in series.iter().enumerate() {
            let points: Vec<String> = rows
                .iter()
                .enumerate()
                .filter_map(|(i, r)| f(r).map(|v| format!("{:.1},{:.1}", x(i), y(v))))
                .collect();
            if points.is_empty() {
                continue;
            }
            let _ = writeln!(
                svg,
                "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>\n<text x=\"{}\" y=\"{}\" fill=\"{color}\">{name}</text>",
                points.join(" "),
                left + 10.0,
                36.0 + 14.0 * k as f64
            );
        }
        svg.push_str("</svg>\n");
        svg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run held to fewer CPUs than the machine has says so in its table and chart; a run
    /// on all of them says nothing.
    #[test]
    fn a_run_on_fewer_cpus_than_the_machine_says_so() {
        let mut report = Report::new(None, 1.0, 1);
        report.machine.cpus = 2;
        report.machine.usable_cpus = 1;
        assert!(report
            .table()
            .contains("started on 1 of the machine's 2 CPUs (an affinity mask such as `taskset` sets): every server and client shared it."));
        assert!(report.svg().contains("everything on 1 of 2 CPUs"));
        report.machine.usable_cpus = 2;
        assert!(!report.table().contains("started on"));
        assert!(!report.svg().contains("everything on"));
    }

    /// A run across CPUs says how the virtual machine's idle CPUs wait; a run on one CPU, or
    /// on a machine without haltpoll, says nothing of it.
    #[test]
    fn a_run_across_cpus_says_how_idle_cpus_wait() {
        let mut report = Report::new(None, 1.0, 1);
        report.machine.cpus = 2;
        report.machine.usable_cpus = 2;
        report.machine.guest_halt_poll_ns = Some(0);
        assert!(report.table().contains("Idle CPUs halt at once"));
        report.machine.guest_halt_poll_ns = Some(200_000);
        assert!(report
            .table()
            .contains("Idle CPUs poll for up to 200 µs before they halt"));
        report.machine.guest_halt_poll_ns = None;
        assert!(!report.table().contains("Idle CPUs"));
        report.machine.guest_halt_poll_ns = Some(0);
        report.machine.usable_cpus = 1;
        assert!(!report.table().contains("Idle CPUs"));
    }
}
