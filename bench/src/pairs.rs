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

/// `list.append` one item at a time on one connection (the list is cleared every 100,000
/// items so it stays small).
pub async fn syncman_append(addr: SocketAddr, authkey: &[u8], run: Duration) -> Option<Measured> {
    let m = Manager::connect(addr, authkey).await.ok()?;
    let list = m.new_list::<u64>().await.ok()?;
    let start = Instant::now();
    let mut samples = Vec::new();
    let mut n = 0u64;
    while start.elapsed() < run {
        let at = Instant::now();
        list.push(&n).await.ok()?;
        samples.push(at.elapsed());
        n += 1;
        if n.is_multiple_of(100_000) {
            list.clear().await.ok()?;
        }
    }
    Measured::from_samples(samples, start.elapsed())
}

/// Barrier rounds: `parties` connections (one task each) wait on one barrier over and over;
/// ops/s is rounds per second and the latency is each party's wait.
pub async fn syncman_barrier(
    addr: SocketAddr,
    authkey: &[u8],
    parties: usize,
    run: Duration,
) -> Option<Measured> {
    let name = format!("bench-barrier-{}", std::process::id());
    let mut barriers = Vec::new();
    let mut managers = Vec::new();
    for _ in 0..parties {
        let m = Manager::connect(addr, authkey).await.ok()?;
        barriers.push(m.barrier(&name, parties as u64).await.ok()?);
        managers.push(m);
    }
    // Every party runs the same number of rounds, so no one is left waiting at the end:
    // rounds are counted by party 0, which tells the others when to stop through the count
    // it reaches before the deadline (checked between rounds by all).
    let start = Instant::now();
    let deadline = start + run;
    let rounds = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(u64::MAX));
    let mut tasks = Vec::new();
    for (i, b) in barriers.into_iter().enumerate() {
        let rounds = rounds.clone();
        tasks.push(tokio::spawn(async move {
            use std::sync::atomic::Ordering;
            let mut samples = Vec::new();
            let mut done = 0u64;
            loop {
                if i == 0 && Instant::now() >= deadline && rounds.load(Ordering::SeqCst) == u64::MAX
                {
                    // Everyone stops after one more round, which releases whoever waits.
                    rounds.store(done + 1, Ordering::SeqCst);
                }
                if done >= rounds.load(Ordering::SeqCst) {
                    break;
                }
                let at = Instant::now();
                b.wait().await.ok()?;
                samples.push(at.elapsed());
                done += 1;
            }
            Some(samples)
        }));
    }
    let mut samples = Vec::new();
    for t in tasks {
        samples.extend(t.await.ok()??);
    }
    let wall = start.elapsed();
    // One round is `parties` waits.
    let mut m = Measured::from_samples(samples, wall)?;
    m.ops_per_s /= parties as f64;
    Some(m)
}

/// Two rates of one connection's requests, measured in two runs, as one pair: the rate and
/// latencies add up. An estimate: a sum of two p99s is not the p99 of pairs.
pub fn combine(a: &Measured, b: &Measured) -> Measured {
    Measured {
        ops_per_s: 1.0 / (1.0 / a.ops_per_s + 1.0 / b.ops_per_s),
        p50_us: a.p50_us + b.p50_us,
        p99_us: a.p99_us + b.p99_us,
        p999_us: None,
        server_cpu_us_per_op: None,
        client_cpu_us_per_op: None,
    }
}
