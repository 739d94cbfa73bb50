//! Issue 15's targets, judged from one run, each beside what the echo floor itself reaches
//! in the same run.
//!
//! The echo answers each frame with no work at all, so no server can beat it with the same
//! clients: where the floor's own figure misses a target on this machine (Redis close to
//! the echo, say), the target cannot be met here by any server, and the run says so rather
//! than leave it to whoever reads the table. Figures are the run's; nothing is assumed.

use serde::Serialize;

use crate::pairs::Pair;
use crate::report::{PairRow, Report, Row};

/// The memory target's entries, and the connections its idle target is measured at: a
/// smaller run (`--quick`) shows its figures but does not judge them.
const TARGET_ENTRIES: usize = 1_000_000;
const TARGET_IDLE_CONNECTIONS: usize = 10_000;

/// The echo's fastest round over its slowest above which a shape's targets are marked
/// unsteady: the machine moved more between rounds than a verdict near its limit can bear.
pub const UNSTEADY: f64 = 1.25;

/// The servers' CPUs for the many-core target (`--pin --server-cpus 4`).
const MANY_CORES: usize = 4;

/// One target, as this run found it.
#[derive(Serialize, Debug, PartialEq)]
pub struct Judged {
    pub target: String,
    /// syncman's figure, as the target states it (a ratio, bytes, µs).
    pub reached: Option<f64>,
    /// Whether `reached` meets the target; `None` when the run cannot judge it (a peer
    /// missing, or a target for pinned runs in an unpinned one).
    pub met: Option<bool>,
    /// The same figure for the echo floor (a server that does nothing), where it has one.
    pub floor: Option<f64>,
    pub note: &'static str,
    /// The echo's fastest round ÷ its slowest in the shape this was judged from, when over
    /// [`UNSTEADY`]: the verdict stands, marked as taken on an unsteady machine.
    pub unsteady: Option<f64>,
}

/// Which way a target points.
#[derive(Clone, Copy)]
enum Goal {
    AtMost(f64),
    AtLeast(f64),
}

impl Goal {
    /// Judged as printed: a ratio shown as "1.10" meets "≤ 1.10×".
    fn met(self, value: f64) -> bool {
        let shown = as_printed(value);
        match self {
            Goal::AtMost(limit) => shown <= limit,
            Goal::AtLeast(limit) => shown >= limit,
        }
    }
}

/// A figure as the report prints it, to two decimals: a verdict must agree with what its
/// reader sees beside it.
fn as_printed(value: f64) -> f64 {
    format!("{value:.2}").parse().unwrap_or(value)
}

fn judged(
    target: String,
    goal: Goal,
    reached: Option<f64>,
    floor: Option<f64>,
    note: &'static str,
) -> Judged {
    Judged {
        target,
        met: reached.map(|r| goal.met(r)),
        reached,
        floor,
        note,
        unsteady: None,
    }
}

/// Marks `j` when the machine was unsteady while its shape or pair ran: `echo_spread` is
/// that row's echo, fastest round ÷ slowest (see [`UNSTEADY`]).
fn steadiness(mut j: Judged, echo_spread: Option<f64>) -> Judged {
    // Judged as printed: a spread shown as "1.25" is not over 1.25.
    j.unsteady = echo_spread.filter(|&s| as_printed(s) > UNSTEADY);
    j
}

/// A memory target is judged only at the target's own size: smaller (`--quick`), the
/// figure is shown with `note` and no verdict.
fn at_full_size(mut j: Judged, full_size: bool, note: &'static str) -> Judged {
    if !full_size {
        j.met = None;
        j.note = note;
    }
    j
}

/// Every target this run measured.
pub fn judge(report: &Report) -> Vec<Judged> {
    let mut out = Vec::new();
    let row = |conns: usize, in_flight: usize| {
        report
            .rows
            .iter()
            .find(|r| r.conns == conns && r.in_flight == in_flight)
    };
    let ops = |m: &Option<crate::stats::Measured>| m.as_ref().map(|m| m.ops_per_s);
    let ratio = |a: Option<f64>, b: Option<f64>| Some(a? / b?);

    if let Some(r) = row(1, 1) {
        let p50 = |m: &Option<crate::stats::Measured>| m.as_ref().map(|m| m.p50_us);
        let j = judged(
            "1 connection, request/response: p50 ≤ 1.10× the echo's".into(),
            Goal::AtMost(1.10),
            ratio(p50(&r.syncman), p50(&r.echo)),
            Some(1.0),
            "",
        );
        out.push(steadiness(j, r.echo_spread));
    }
    if let Some(r) = row(1, 16) {
        let j = judged(
            "1 connection, 16 calls in flight: ≥ 1.2× Redis -P 16".into(),
            Goal::AtLeast(1.2),
            ratio(ops(&r.syncman), ops(&r.redis)),
            ratio(ops(&r.echo), ops(&r.redis)),
            "floor: the echo's own rate ÷ Redis'",
        );
        out.push(steadiness(j, r.echo_spread));
    }
    for conns in [16, 64, 256] {
        if let Some(r) = row(conns, 1) {
            out.push(steadiness(
                many_connections(r, report.server_cpus),
                r.echo_spread,
            ));
        }
    }
    if report.server_cpus == Some(MANY_CORES) {
        for conns in [16, 64, 256] {
            if let Some(r) = row(conns, 1) {
                let j = judged(
                    format!("{conns} connections, servers on {MANY_CORES} cores: ≥ 3× Redis"),
                    Goal::AtLeast(3.0),
                    ratio(ops(&r.syncman), ops(&r.redis)),
                    ratio(ops(&r.echo), ops(&r.redis)),
                    "floor: the echo's own rate ÷ Redis'",
                );
                out.push(steadiness(j, r.echo_spread));
            }
        }
    }
    for p in [Pair::QueuePutGet, Pair::LockAcquireRelease] {
        let Some(row) = report.pairs.iter().find(|r| r.operation == p.name()) else {
            continue;
        };
        // Each pair's row has Redis' LPUSH + LPOP and the echo's round trip, measured in
        // turn with it.
        let j = judged(
            format!("{}: ≥ 1.2× Redis LPUSH + LPOP pairs", p.name()),
            Goal::AtLeast(1.2),
            ratio(ops(&row.syncman), ops(&row.redis)),
            // At the floor a pair is two echo round trips, one after the other.
            ratio(ops(&row.echo).map(|e| e / 2.0), ops(&row.redis)),
            "floor: half the echo's one-connection rate ÷ Redis' pairs",
        );
        out.push(steadiness(j, row.echo_spread));
        out.push(steadiness(pair_latency(p, row), row.echo_spread));
    }
    for row in &report.memory {
        let per_entry = |h: &Option<crate::memory::Held>| h.as_ref().map(|h| h.bytes_per_entry);
        let j = judged(
            format!(
                "1,000,000 × {}: less RSS than Redis (syncman ÷ Redis bytes per entry < 1)",
                row.workload
            ),
            Goal::AtMost(0.999_999),
            ratio(per_entry(&row.syncman), per_entry(&row.redis)),
            None,
            "",
        );
        out.push(at_full_size(
            j,
            row.entries >= TARGET_ENTRIES,
            "fewer entries than the target's (--quick): not judged",
        ));
    }
    if let Some(idle) = &report.idle {
        let j = judged(
            "RSS per idle authenticated connection ≤ 5 KiB".into(),
            Goal::AtMost(5.0),
            idle.syncman_bytes_per_connection.map(|b| b / 1024.0),
            None,
            "this run's figure in KiB",
        );
        out.push(at_full_size(
            j,
            idle.connections >= TARGET_IDLE_CONNECTIONS,
            "fewer connections than the target's 10,000 (--quick): not judged",
        ));
    }
    if let Some(c) = &report.connect {
        out.push(judged(
            "connect + authenticate + first call: median ≤ 1 ms".into(),
            Goal::AtMost(1000.0),
            Some(c.p50_us),
            None,
            "this run's figure in µs",
        ));
    }
    out
}

/// `conns` connections against the echo: a target for a node pinned to one core.
fn many_connections(r: &Row, server_cpus: Option<usize>) -> Judged {
    let reached = match (&r.syncman, &r.echo) {
        (Some(s), Some(e)) => Some(s.ops_per_s / e.ops_per_s),
        _ => None,
    };
    let mut j = judged(
        format!(
            "{} connections, node pinned to one core: ≥ 0.9× the echo",
            r.conns
        ),
        Goal::AtLeast(0.9),
        reached,
        Some(1.0),
        "",
    );
    match server_cpus {
        Some(1) => {}
        Some(_) => {
            j.met = None;
            j.note = "servers on more than one CPU: judged with --server-cpus 1";
        }
        None => {
            j.met = None;
            j.note = "unpinned: judged only in a pinned run (--pin)";
        }
    }
    j
}

/// A pair's p50 against one echo round trip's: two round trips are 2.0.
fn pair_latency(p: Pair, row: &PairRow) -> Judged {
    judged(
        format!("{}: p50 ≤ 2.2× the echo's p50", p.name()),
        Goal::AtMost(2.2),
        match (&row.syncman, &row.echo) {
            (Some(s), Some(e)) => Some(s.p50_us / e.p50_us),
            _ => None,
        },
        Some(2.0),
        "floor: two echo round trips",
    )
}

/// The judged targets as Markdown.
pub fn table(judged: &[Judged]) -> String {
    let mut t = String::from(
        "\n| target (issue 15) | this run | met | the echo floor | note |\n|---|---|---|---|---|\n",
    );
    let figure = |v: Option<f64>| v.map_or("—".into(), |v| format!("{v:.2}"));
    for j in judged {
        let met = match j.met {
            Some(true) => "yes",
            Some(false) => "no",
            None => "—",
        };
        let note = match j.unsteady {
            Some(spread) if j.note.is_empty() => {
                format!("unsteady: the echo's rounds differ by {spread:.2}×")
            }
            Some(spread) => format!(
                "{}; unsteady: the echo's rounds differ by {spread:.2}×",
                j.note
            ),
            None => j.note.to_string(),
        };
        t.push_str(&format!(
            "| {} | {} | {met} | {} | {note} |\n",
            j.target,
            figure(j.reached),
            figure(j.floor),
        ));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Measured;
    use crate::Shape;

    fn measured(ops_per_s: f64, p50_us: f64) -> Option<Measured> {
        Some(Measured {
            ops_per_s,
            p50_us,
            p99_us: p50_us * 2.0,
            p999_us: None,
            server_cpu_us_per_op: None,
            client_cpu_us_per_op: None,
        })
    }

    fn row(conns: usize, in_flight: usize, syncman: f64, echo: f64, redis: f64) -> Row {
        let mut r = Row::new(Shape {
            name: "shape",
            conns,
            in_flight,
        });
        r.syncman = measured(syncman, 1e6 / syncman);
        r.echo = measured(echo, 1e6 / echo);
        r.redis = measured(redis, 1e6 / redis);
        r
    }

    fn find<'a>(judged: &'a [Judged], start: &str) -> &'a Judged {
        judged
            .iter()
            .find(|j| j.target.starts_with(start))
            .unwrap_or_else(|| panic!("no target starting {start:?} in {judged:?}"))
    }

    fn report(pinned: bool) -> Report {
        let mut report = Report::new(pinned.then_some(1), 1.0, 1);
        report.rows = vec![
            // p50 ratio 12,000 / 10,000 inverted: 1e6/10,000 ÷ 1e6/12,000 = 1.2.
            row(1, 1, 10_000.0, 12_000.0, 11_000.0),
            row(1, 16, 150_000.0, 250_000.0, 200_000.0),
            row(16, 1, 95_000.0, 100_000.0, 60_000.0),
            row(64, 1, 85_000.0, 100_000.0, 60_000.0),
        ];
        report.pairs = vec![
            PairRow {
                operation: Pair::QueuePutGet.name(),
                echo: measured(12_000.0, 100.0),
                echo_spread: None,
                syncman: measured(4_000.0, 210.0),
                redis_name: "Redis (LPUSH + LPOP)",
                redis: measured(5_000.0, 190.0),
                cpython: None,
                python_on_syncman: None,
            },
            PairRow {
                operation: Pair::LockAcquireRelease.name(),
                echo: measured(10_000.0, 100.0),
                echo_spread: None,
                syncman: measured(6_500.0, 230.0),
                redis_name: "Redis (LPUSH + LPOP)",
                redis: measured(4_000.0, 200.0),
                cpython: None,
                python_on_syncman: None,
            },
        ];
        report
    }

    #[test]
    fn each_target_is_judged_from_the_run_beside_the_floor() {
        let judged = judge(&report(true));
        let one = find(&judged, "1 connection, request/response");
        assert!((one.reached.unwrap() - 1.2).abs() < 1e-9);
        assert_eq!(one.met, Some(false));

        let in_flight = find(&judged, "1 connection, 16 calls");
        assert_eq!(in_flight.reached, Some(0.75));
        assert_eq!(in_flight.floor, Some(1.25));
        assert_eq!(in_flight.met, Some(false));

        assert_eq!(find(&judged, "16 connections").met, Some(true));
        assert_eq!(find(&judged, "64 connections").met, Some(false));
        // No 256-connection row in this run: not judged at all.
        assert!(judged.iter().all(|j| !j.target.starts_with("256")));

        // Each pair against the Redis pair (LPUSH + LPOP) and the echo of its own rounds.
        let queue = find(&judged, "queue put + get: ≥");
        let lock = find(&judged, "lock acquire + release: ≥");
        assert_eq!(queue.reached, Some(0.8));
        assert_eq!(lock.reached, Some(1.625));
        assert_eq!(lock.met, Some(true));
        // Two echo round trips at 12,000 a second: 6,000 pairs, 1.2× Redis' 5,000.
        assert_eq!(queue.floor, Some(1.2));
        // At 10,000: 5,000 pairs, 1.25× the lock row's Redis (4,000).
        assert_eq!(lock.floor, Some(1.25));

        let queue_p50 = find(&judged, "queue put + get: p50");
        assert_eq!(queue_p50.reached, Some(2.1));
        assert_eq!(queue_p50.met, Some(true));
        assert_eq!(
            find(&judged, "lock acquire + release: p50").met,
            Some(false)
        );
    }

    #[test]
    fn a_shape_run_on_an_unsteady_machine_is_marked() {
        let mut report = report(true);
        report.rows[2].echo_spread = Some(1.8);
        report.rows[3].echo_spread = Some(1.1);
        let judged = judge(&report);
        let sixteen = find(&judged, "16 connections");
        assert_eq!(sixteen.unsteady, Some(1.8));
        assert_eq!(sixteen.met, Some(true), "the verdict stands, marked");
        assert_eq!(find(&judged, "64 connections").unsteady, None);
        assert_eq!(find(&judged, "1 connection, 16 calls").unsteady, None);
        let table = table(&judged);
        let line = |start: &str| {
            table
                .lines()
                .find(|l| l.starts_with(&format!("| {start}")))
                .unwrap_or_default()
                .to_string()
        };
        assert!(
            line("16 connections").ends_with("| unsteady: the echo's rounds differ by 1.80× |"),
            "{table}"
        );
        assert!(!line("64 connections").contains("unsteady"), "{table}");
    }

    #[test]
    fn a_pair_run_on_an_unsteady_machine_is_marked() {
        let mut report = report(true);
        report.pairs[0].echo_spread = Some(1.5);
        report.pairs[1].echo_spread = Some(1.2);
        let judged = judge(&report);
        assert_eq!(find(&judged, "queue put + get: ≥").unsteady, Some(1.5));
        assert_eq!(find(&judged, "queue put + get: p50").unsteady, Some(1.5));
        assert_eq!(find(&judged, "lock acquire + release: ≥").unsteady, None);
        assert_eq!(find(&judged, "lock acquire + release: p50").unsteady, None);
        // The calls shapes keep their own marks.
        assert_eq!(find(&judged, "16 connections").unsteady, None);
    }

    /// The spread is judged as the report prints it, to two decimals: one that reads
    /// "1.25" is not marked as over 1.25, one that reads "1.26" is.
    #[test]
    fn a_spread_is_judged_as_printed() {
        let mut report = report(true);
        report.rows[2].echo_spread = Some(1.2504);
        report.rows[3].echo_spread = Some(1.2551);
        let judged = judge(&report);
        assert_eq!(find(&judged, "16 connections").unsteady, None);
        let sixty_four = find(&judged, "64 connections");
        assert_eq!(sixty_four.unsteady, Some(1.2551));
        assert!(table(&judged).contains("unsteady: the echo's rounds differ by 1.26×"));
    }

    /// A target is judged on the figure as printed: a p50 ratio of 1.1024 reads "1.10" and
    /// meets "≤ 1.10×"; one of 1.1051 reads "1.11" and does not.
    #[test]
    fn a_target_is_judged_as_printed() {
        for (echo_p50, met, shown) in [
            (20.5, true, "| 1.10 | yes |"),
            (20.45, false, "| 1.11 | no |"),
        ] {
            let mut report = report(true);
            report.rows[0].syncman = measured(10_000.0, 22.6);
            report.rows[0].echo = measured(12_000.0, echo_p50);
            let judged = judge(&report);
            assert_eq!(
                find(&judged, "1 connection, request/response").met,
                Some(met)
            );
            assert!(table(&judged).contains(shown), "{}", table(&judged));
        }
    }

    #[test]
    fn the_many_core_target_is_judged_only_with_four_server_cpus() {
        let mut report = report(true);
        report.server_cpus = Some(4);
        let judged = judge(&report);
        // 95,000 against Redis' 60,000, the echo 100,000: 1.58× and 1.67×, short of 3×.
        let four = find(&judged, "16 connections, servers on 4 cores");
        assert!((four.reached.unwrap() - 95.0 / 60.0).abs() < 1e-9);
        assert!((four.floor.unwrap() - 100.0 / 60.0).abs() < 1e-9);
        assert_eq!(four.met, Some(false));
        assert!(judged
            .iter()
            .any(|j| j.target.starts_with("64 connections, servers on 4")));
        // The one-core target is not judged from servers on four.
        assert_eq!(find(&judged, "16 connections, node pinned").met, None);

        // Pinned to one CPU (what `report(true)` is): the reverse.
        let one = judge(&self::report(true));
        assert!(one.iter().all(|j| !j.target.contains("servers on 4 cores")));
        assert_eq!(find(&one, "16 connections, node pinned").met, Some(true));
    }

    #[test]
    fn many_connections_are_judged_only_when_pinned() {
        let judged = judge(&report(false));
        let sixteen = find(&judged, "16 connections");
        assert_eq!(sixteen.reached, Some(0.95));
        assert_eq!(sixteen.met, None);
    }

    #[test]
    fn memory_is_judged_only_at_the_targets_size() {
        let held = |bytes_per_entry| {
            Some(crate::memory::Held {
                rss_after_bytes: 0,
                grown_bytes: 0,
                bytes_per_entry,
            })
        };
        let mut report = report(true);
        for entries in [10_000, 1_000_000] {
            report.memory = vec![crate::memory::MemoryRow {
                workload: "u64 → u64",
                entries,
                syncman: held(35.0),
                redis: held(70.0),
                cpython: None,
            }];
            let memory = judge(&report).pop().expect("a memory target");
            assert_eq!(memory.reached, Some(0.5));
            assert_eq!(memory.met, (entries == 1_000_000).then_some(true));
        }
        report.memory.clear();
        for connections in [100, 10_000] {
            report.idle = Some(crate::idle::IdleRow {
                connections,
                syncman_bytes_per_connection: Some(3.0 * 1024.0),
                redis_bytes_per_connection: None,
                cpython_bytes_per_connection: None,
            });
            let judged = judge(&report);
            let idle = find(&judged, "RSS per idle");
            assert_eq!(idle.reached, Some(3.0));
            assert_eq!(idle.met, (connections == 10_000).then_some(true));
        }
    }
}
