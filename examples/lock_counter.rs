//! A shared counter incremented under a shared lock by separate processes.
//!
//! ```text
//! # terminal 1: a node
//! SYNCMAN_AUTHKEY=secret cargo run -p syncman-server -- serve --bind 127.0.0.1:50000
//!
//! # terminals 2 and 3: two counters, 100 increments each (the counter ends at 200)
//! SYNCMAN_AUTHKEY=secret cargo run --example lock_counter -- counter-lock counter 100
//! SYNCMAN_AUTHKEY=secret cargo run --example lock_counter -- counter-lock counter 100
//!
//! # or: hold the lock until killed (Ctrl-C); counters wait, then carry on
//! SYNCMAN_AUTHKEY=secret cargo run --example lock_counter -- hold counter-lock
//! ```
//!
//! Roles (positional arguments):
//! - `<lock-name> <value-name> <rounds>`: `rounds` times, takes the lock, prints
//!   `token <t>` (the grant's fencing token), reads the `Value<u64>` and sets it to one
//!   more, then releases the lock. Finally prints `done`.
//! - `hold <lock-name>`: takes the lock, prints `holding <t>`, then sleeps forever. When
//!   the process dies the node releases the lock and the next waiter gets a larger token.
//! - `hold-watch <lock-name>`: as `hold`, but asks the node every 200 ms whether the lock
//!   is still locked; when that call fails (the session ended: say the process was stopped
//!   past its heartbeat deadline), prints `lost: <error>` and `held <true|false>` (what the
//!   guard says) and exits.
//!
//! Every line is flushed as it is printed. The node address comes from `SYNCMAN_ADDR`
//! (default `127.0.0.1:50000`), the key from `SYNCMAN_AUTHKEY`.

use std::process::ExitCode;

mod common;

use common::{connect, say, BoxError};

const USAGE: &str = "usage: lock_counter <lock-name> <value-name> <rounds>\n       \
                     lock_counter hold <lock-name>\n       \
                     lock_counter hold-watch <lock-name>";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["hold", lock] => hold(lock).await,
        ["hold-watch", lock] => hold_watch(lock).await,
        [lock, value, rounds] => match rounds.parse() {
            Ok(rounds) => count(lock, value, rounds).await,
            Err(_) => return common::usage(USAGE),
        },
        _ => return common::usage(USAGE),
    };
    common::finish("lock_counter", result)
}

async fn count(lock: &str, value: &str, rounds: u64) -> Result<(), BoxError> {
    let mgr = connect().await?;
    let lock = mgr.lock(lock).await?;
    let counter = mgr.value(value, 0u64).await?;
    for _ in 0..rounds {
        let guard = lock.acquire().await?;
        say(format_args!("token {}", guard.fencing_token()))?;
        // A read-modify-write that would lose updates without the lock.
        let v = counter.get().await?;
        counter.set(&(v + 1)).await?;
        guard.release().await?;
    }
    say(format_args!("done"))?;
    Ok(())
}

async fn hold(lock: &str) -> Result<(), BoxError> {
    let mgr = connect().await?;
    let lock = mgr.lock(lock).await?;
    let guard = lock.acquire().await?;
    say(format_args!("holding {}", guard.fencing_token()))?;
    // Never released: only the process's death frees the lock.
    std::future::pending::<()>().await;
    drop(guard);
    Ok(())
}

async fn hold_watch(lock: &str) -> Result<(), BoxError> {
    let mgr = connect().await?;
    let lock = mgr.lock(lock).await?;
    let guard = lock.acquire().await?;
    say(format_args!("holding {}", guard.fencing_token()))?;
    let lost = loop {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        if let Err(e) = lock.locked().await {
            break e;
        }
    };
    say(format_args!("lost: {lost}"))?;
    say(format_args!("held {}", guard.is_held()))?;
    Ok(())
}
