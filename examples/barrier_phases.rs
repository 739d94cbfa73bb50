//! Separate processes moving through phases in step, with a shared barrier.
//!
//! ```text
//! # terminal 1: a node
//! SYNCMAN_AUTHKEY=secret cargo run -p syncman-server -- serve --bind 127.0.0.1:50000
//!
//! # terminals 2, 3 and 4: three parties, three phases each
//! SYNCMAN_AUTHKEY=secret cargo run --example barrier_phases -- phases 3 3
//! SYNCMAN_AUTHKEY=secret cargo run --example barrier_phases -- phases 3 3
//! SYNCMAN_AUTHKEY=secret cargo run --example barrier_phases -- phases 3 3
//!
//! # or: a party that waits until killed (Ctrl-C), which breaks the barrier for the others
//! SYNCMAN_AUTHKEY=secret cargo run --example barrier_phases -- wait-forever pair 2
//! SYNCMAN_AUTHKEY=secret cargo run --example barrier_phases -- pair 2 1
//! ```
//!
//! Roles (positional arguments):
//! - `<barrier-name> <parties> <phases>`: for each phase `p`, does a tiny piece of work,
//!   waits on the barrier (created for `parties` if absent), and prints
//!   `phase <p> index <i>` with its arrival index `i` (0..parties). Exits 0.
//! - `wait-forever <barrier-name> <parties>`: starts a wait on the barrier, prints
//!   `waiting` once the node has it parked, then waits (until killed, or until the barrier
//!   trips or breaks).
//!
//! Every line is flushed as it is printed. The node address comes from `SYNCMAN_ADDR`
//! (default `127.0.0.1:50000`), the key from `SYNCMAN_AUTHKEY`.

use std::process::ExitCode;
use std::time::Duration;

mod common;

use common::{connect, say, BoxError};

const USAGE: &str = "usage: barrier_phases <barrier-name> <parties> <phases>\n       \
                     barrier_phases wait-forever <barrier-name> <parties>";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["wait-forever", barrier, parties] => match parties.parse() {
            Ok(parties) => wait_forever(barrier, parties).await,
            Err(_) => return common::usage(USAGE),
        },
        [barrier, parties, phases] => match (parties.parse(), phases.parse()) {
            (Ok(parties), Ok(phases)) => run_phases(barrier, parties, phases).await,
            _ => return common::usage(USAGE),
        },
        _ => return common::usage(USAGE),
    };
    common::finish("barrier_phases", result)
}

async fn run_phases(barrier: &str, parties: u64, phases: u64) -> Result<(), BoxError> {
    let mgr = connect().await?;
    let barrier = mgr.barrier(barrier, parties).await?;
    for phase in 0..phases {
        // The "work": a few milliseconds that differ between processes and phases, so the
        // parties arrive in different orders.
        let ms = (u64::from(std::process::id()) + phase * 7) % 20;
        tokio::time::sleep(Duration::from_millis(ms)).await;
        let index = barrier.wait().await?;
        say(format_args!("phase {phase} index {index}"))?;
    }
    Ok(())
}

async fn wait_forever(barrier: &str, parties: u64) -> Result<(), BoxError> {
    let mgr = connect().await?;
    let barrier = mgr.barrier(barrier, parties).await?;
    let waiting = tokio::spawn({
        let barrier = barrier.clone();
        async move { barrier.wait().await }
    });
    // Say `waiting` only once the node has the wait parked, so whoever reads it knows a
    // kill from then on departs a waiting party.
    while barrier.n_waiting().await? == 0 && !waiting.is_finished() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    say(format_args!("waiting"))?;
    let index = waiting.await??;
    say(format_args!("passed index {index}"))?;
    Ok(())
}
