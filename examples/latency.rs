//! Round-trip latency and pipelined throughput of one connection (a quick check, not the
//! benchmark suite that compares syncman with CPython's manager and Redis).
//!
//! ```text
//! terminal 1:  SYNCMAN_AUTHKEY=secret cargo run --release -p syncman-server -- serve --bind 127.0.0.1:50000
//! terminal 2:  SYNCMAN_AUTHKEY=secret cargo run --release --example latency -- 20000
//! ```

use std::process::ExitCode;
use std::time::{Duration, Instant};

mod common;

use common::{connect, say, BoxError};

#[tokio::main]
async fn main() -> ExitCode {
    let calls = match std::env::args().nth(1).map(|n| n.parse::<usize>()) {
        None => 10_000,
        Some(Ok(n)) if n >= 100 => n,
        _ => return common::usage("usage: latency [calls (>= 100)]"),
    };
    common::finish("latency", run(calls).await)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn run(calls: usize) -> Result<(), BoxError> {
    let mgr = connect().await?;
    let dict = mgr.new_dict::<String, u64>().await?;
    let key = "key".to_string();
    dict.insert(&key, &1).await?;

    // One call at a time: each waits for the previous reply.
    let mut samples = Vec::with_capacity(calls);
    for _ in 0..calls {
        let start = Instant::now();
        dict.get(&key).await?;
        samples.push(start.elapsed());
    }
    samples.sort_unstable();
    say(format_args!(
        "sequential get: {calls} calls, median {:?}, p90 {:?}, p99 {:?}",
        percentile(&samples, 0.5),
        percentile(&samples, 0.9),
        percentile(&samples, 0.99)
    ))?;

    // Many calls in flight on the same connection.
    const TASKS: usize = 32;
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(TASKS);
    for _ in 0..TASKS {
        let (dict, key) = (dict.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..calls / TASKS {
                dict.get(&key).await?;
            }
            Ok::<_, syncman_client::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let total = (calls / TASKS) * TASKS;
    let elapsed = start.elapsed();
    say(format_args!(
        "pipelined get: {total} calls from {TASKS} tasks in {elapsed:?}, {:.0} calls/s",
        total as f64 / elapsed.as_secs_f64()
    ))?;
    Ok(())
}
