//! Operations that come in pairs, on one connection, one pair at a time: a queue put then
//! get, a lock acquire then release (syncman, CPython's manager; Redis `LPUSH` then `LPOP`);
//! and connect + authenticate + first call.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Serialize;
use syncman_client::Manager;

use crate::stats::Measured;

#[derive(Clone, Copy, Serialize)]
pub enum Pair {
    QueuePutGet,
    LockAcquireRelease,
}

impl Pair {
    pub fn name(self) -> &'static str {
        match self {
            Pair::QueuePutGet => "queue put + get",
            Pair::LockAcquireRelease => "lock acquire + release",
        }
    }

    /// The mode of `bench/cpython_clients.py` that runs this pair.
    pub fn python_mode(self) -> &'static str {
        match self {
            Pair::QueuePutGet => "queue",
            Pair::LockAcquireRelease => "lock",
        }
    }
}

/// Pairs per second and the latency of each pair, for `run`.
pub async fn syncman(
    addr: SocketAddr,
    authkey: &[u8],
    pair: Pair,
    run: Duration,
) -> Option<Measured> {
    let m = Manager::connect(addr, authkey).await.ok()?;
    let q = m.new_queue::<u64>().await.ok()?;
    let lock = m.new_lock().await.ok()?;
    let start = Instant::now();
    let mut samples = Vec::new();
    let mut n = 0u64;
    while start.elapsed() < run {
        let at = Instant::now();
        match pair {
            Pair::QueuePutGet => {
                q.put(&n).await.ok()?;
                q.get().await.ok()?;
            }
            Pair::LockAcquireRelease => lock.acquire().await.ok()?.release().await.ok()?,
        }
        samples.push(at.elapsed());
        n += 1;
    }
    Measured::from_samples(samples, start.elapsed())
}

/// `tries` sequential connects, each authenticated and followed by a `ping`; the latency of
/// each (ops/s is connects per second).
pub async fn syncman_connect(addr: SocketAddr, authkey: &[u8], tries: usize) -> Option<Measured> {
    let start = Instant::now();
    let mut samples = Vec::with_capacity(tries);
    for _ in 0..tries {
        let at = Instant::now();
        let m = Manager::connect(addr, authkey).await.ok()?;
        m.ping().await.ok()?;
        samples.push(at.elapsed());
        drop(m);
    }
    Measured::from_samples(samples, start.elapsed())
}

/// Two rates of one connection's requests, measured in two runs, as one pair: the rate and
/// latencies add up. An estimate: a sum of two p99s is not the p99 of pairs.
pub fn combine(a: &Measured, b: &Measured) -> Measured {
    Measured {
        ops_per_s: 1.0 / (1.0 / a.ops_per_s + 1.0 / b.ops_per_s),
        p50_us: a.p50_us + b.p50_us,
        p99_us: a.p99_us + b.p99_us,
        p999_us: None,
    }
}
