//! One measured shape: operations per second and latency percentiles.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What one peer did in one shape.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Measured {
    pub ops_per_s: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    /// Not every peer's tool reports it (redis-benchmark's CSV stops at p99).
    pub p999_us: Option<f64>,
    /// The server's CPU time per operation, in µs (`cpu.rs`).
    #[serde(default)]
    pub server_cpu_us_per_op: Option<f64>,
    /// The clients' CPU time per operation, in µs (`cpu.rs`).
    #[serde(default)]
    pub client_cpu_us_per_op: Option<f64>,
}

impl Measured {
    /// From the latencies of every operation and the wall time they took together.
    pub fn from_samples(mut samples: Vec<Duration>, wall: Duration) -> Option<Measured> {
        if samples.is_empty() || wall.is_zero() {
            return None;
        }
        samples.sort_unstable();
        let at = |p: f64| {
            let i = ((samples.len() - 1) as f64 * p).round() as usize;
            samples[i].as_secs_f64() * 1e6
        };
        Some(Measured {
            ops_per_s: samples.len() as f64 / wall.as_secs_f64(),
            p50_us: at(0.50),
            p99_us: at(0.99),
            p999_us: Some(at(0.999)),
            server_cpu_us_per_op: None,
            client_cpu_us_per_op: None,
        })
    }

    /// One peer's figures from interleaved rounds of the same shape: each the median of
    /// the rounds' (a round that failed is left out). Rounds taken in turn with the other
    /// peers' see the same moments of a shared machine, which one long window per peer
    /// does not.
    pub fn median_of(rounds: Vec<Measured>) -> Option<Measured> {
        let first = rounds.first()?;
        let all = |f: fn(&Measured) -> f64| median(rounds.iter().map(f).collect());
        let some = |f: fn(&Measured) -> Option<f64>| {
            let values: Vec<f64> = rounds.iter().filter_map(f).collect();
            (!values.is_empty()).then(|| median(values))
        };
        Some(Measured {
            ops_per_s: all(|m| m.ops_per_s),
            p50_us: all(|m| m.p50_us),
            p99_us: all(|m| m.p99_us),
            p999_us: first.p999_us.and(some(|m| m.p999_us)),
            server_cpu_us_per_op: some(|m| m.server_cpu_us_per_op),
            client_cpu_us_per_op: some(|m| m.client_cpu_us_per_op),
        })
    }
}

/// The fastest round's rate ÷ the slowest's; `None` with fewer than two rounds. Of the
/// echo, which does no work, it says how much the machine itself moved while a shape ran.
pub fn spread(rounds: &[Measured]) -> Option<f64> {
    if rounds.len() < 2 {
        return None;
    }
    let rates = rounds.iter().map(|m| m.ops_per_s);
    let fastest = rates.clone().fold(f64::NEG_INFINITY, f64::max);
    let slowest = rates.fold(f64::INFINITY, f64::min);
    (slowest > 0.0).then(|| fastest / slowest)
}

/// The middle value; between the two middle ones for an even count.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(ops_per_s: f64, server_cpu: Option<f64>) -> Measured {
        Measured {
            ops_per_s,
            p50_us: 1e6 / ops_per_s,
            p99_us: 2e6 / ops_per_s,
            p999_us: None,
            server_cpu_us_per_op: server_cpu,
            client_cpu_us_per_op: None,
        }
    }

    #[test]
    fn the_median_of_rounds_sets_an_outlier_aside() {
        let m = Measured::median_of(vec![
            round(100.0, Some(3.0)),
            round(10.0, None),
            round(120.0, Some(5.0)),
        ])
        .unwrap();
        assert_eq!(m.ops_per_s, 100.0);
        assert_eq!(m.p50_us, 1e4);
        assert_eq!(m.server_cpu_us_per_op, Some(4.0), "two rounds had it");
        assert_eq!(m.client_cpu_us_per_op, None);
        assert_eq!(m.p999_us, None);
        assert!(Measured::median_of(Vec::new()).is_none());
    }

    #[test]
    fn the_spread_of_rounds_is_the_fastest_over_the_slowest() {
        let rounds = [round(100.0, None), round(50.0, None), round(80.0, None)];
        assert_eq!(spread(&rounds), Some(2.0));
        assert_eq!(spread(&rounds[..1]), None, "one round has no spread");
        assert_eq!(spread(&[round(100.0, None), round(0.0, None)]), None);
    }
}
