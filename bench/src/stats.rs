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
}
