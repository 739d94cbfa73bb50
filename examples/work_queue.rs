//! A work queue shared by separate producer and consumer processes.
//!
//! ```text
//! # terminal 1: a node
//! SYNCMAN_AUTHKEY=secret cargo run -p syncman-server -- serve --bind 127.0.0.1:50000
//!
//! # terminals 2 and 3: consumers (each exits after 2 s without an item)
//! SYNCMAN_AUTHKEY=secret cargo run --example work_queue -- consume jobs 2000
//! SYNCMAN_AUTHKEY=secret cargo run --example work_queue -- consume jobs 2000
//!
//! # terminal 4: a producer putting 0, 1, ..., 99
//! SYNCMAN_AUTHKEY=secret cargo run --example work_queue -- produce jobs 0 100
//! ```
//!
//! Roles (positional arguments):
//! - `produce <queue> <from> <to>`: puts the integers `from..to` (`to` excluded), then
//!   prints `produced <count>`.
//! - `consume <queue> <idle-ms>`: gets items with `get_timeout(idle-ms)` until none comes
//!   within `idle-ms`, then exits 0. Each item it receives is printed as `got <n>` on its
//!   own line, and stdout is flushed after every line, so whoever reads its output knows
//!   what it received even if it is killed at any moment.
//! - `consume-lease <queue> <idle-ms>`: the same with `get_lease_timeout`: prints `got <n>`,
//!   acknowledges the lease, then prints `acked <n>`. An item leased by a consumer that is
//!   killed before acknowledging it goes back to the queue: nothing is lost, and only an
//!   item printed as `got` but not `acked` can be seen twice (at-least-once).
//! - `hold-lease <queue>`: takes one item on a lease, prints `holding <n>` and never
//!   acknowledges it; when the process dies, the item goes back to the queue's front.
//!
//! The node address comes from `SYNCMAN_ADDR` (default `127.0.0.1:50000`), the key from
//! `SYNCMAN_AUTHKEY`.

use std::process::ExitCode;
use std::time::Duration;

mod common;

use common::{connect, say, BoxError};

const USAGE: &str = "usage: work_queue produce <queue> <from> <to>\n       \
                     work_queue consume <queue> <idle-ms>\n       \
                     work_queue consume-lease <queue> <idle-ms>\n       \
                     work_queue hold-lease <queue>";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["produce", queue, from, to] => match (from.parse(), to.parse()) {
            (Ok(from), Ok(to)) => produce(queue, from, to).await,
            _ => return common::usage(USAGE),
        },
        ["consume", queue, idle_ms] => match idle_ms.parse() {
            Ok(ms) => consume(queue, Duration::from_millis(ms)).await,
            Err(_) => return common::usage(USAGE),
        },
        ["hold-lease", queue] => hold_lease(queue).await,
        ["consume-lease", queue, idle_ms] => match idle_ms.parse() {
            Ok(ms) => consume_leases(queue, Duration::from_millis(ms)).await,
            Err(_) => return common::usage(USAGE),
        },
        _ => return common::usage(USAGE),
    };
    common::finish("work_queue", result)
}

async fn produce(queue: &str, from: i64, to: i64) -> Result<(), BoxError> {
    let mgr = connect().await?;
    let q = mgr.queue::<i64>(queue).await?;
    let mut count = 0u64;
    for n in from..to {
        q.put(&n).await?;
        count += 1;
    }
    say(format_args!("produced {count}"))?;
    Ok(())
}

async fn consume(queue: &str, idle: Duration) -> Result<(), BoxError> {
    let mgr = connect().await?;
    let q = mgr.queue::<i64>(queue).await?;
    while let Some(n) = q.get_timeout(idle).await? {
        say(format_args!("got {n}"))?;
    }
    Ok(())
}

async fn consume_leases(queue: &str, idle: Duration) -> Result<(), BoxError> {
    let mgr = connect().await?;
    let q = mgr.queue::<i64>(queue).await?;
    while let Some(lease) = q.get_lease_timeout(idle).await? {
        say(format_args!("got {}", *lease))?;
        let n = lease.ack().await?;
        say(format_args!("acked {n}"))?;
    }
    Ok(())
}

async fn hold_lease(queue: &str) -> Result<(), BoxError> {
    let mgr = connect().await?;
    let q = mgr.queue::<i64>(queue).await?;
    let lease = q.get_lease().await?;
    say(format_args!("holding {}", *lease))?;
    // Never acknowledged: only the process's death ends the lease.
    std::future::pending::<()>().await;
    drop(lease);
    Ok(())
}
