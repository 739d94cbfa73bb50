//! syncman: a `dict` get/set per operation, through the Rust client, against a node this
//! benchmark starts (`syncman serve`, release build).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use syncman_client::Manager;

use crate::stats::Measured;

/// `conns` connections (one `Manager` each) with `in_flight` tasks each, alternating
/// `insert` and `get` on one key of a dict per connection, for `run`.
pub async fn measure(
    addr: SocketAddr,
    authkey: &[u8],
    conns: usize,
    in_flight: usize,
    run: Duration,
) -> Option<Measured> {
    let mut managers = Vec::new();
    let mut dicts = Vec::new();
    for _ in 0..conns {
        let m = Manager::connect(addr, authkey).await.ok()?;
        dicts.push(m.new_dict::<u64, u64>().await.ok()?);
        managers.push(m);
    }
    let start = Instant::now();
    let deadline = start + run;
    let mut tasks = Vec::new();
    for dict in &dicts {
        for task in 0..in_flight as u64 {
            let dict = dict.clone();
            tasks.push(tokio::spawn(async move {
                let mut samples = Vec::new();
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let at = Instant::now();
                    if n.is_multiple_of(2) {
                        dict.insert(&task, &n).await.ok()?;
                    } else {
                        dict.get(&task).await.ok()?;
                    }
                    samples.push(at.elapsed());
                    n += 1;
                }
                Some(samples)
            }));
        }
    }
    let mut samples = Vec::new();
    for t in tasks {
        samples.extend(t.await.ok()??);
    }
    Measured::from_samples(samples, start.elapsed())
}

/// `calls` calls on `conns` connections to the node at `SYNCMAN_ADDR` (key in
/// `SYNCMAN_AUTHKEY`), `in_flight` at a time on each, alternating `insert` and `get` as
/// [`measure`] does: a fixed amount of work, for counting instructions or CPU time per call
/// (`bench/instructions.sh`).
pub async fn drive(calls: u64, conns: u64, in_flight: u64) -> Result<(), String> {
    let addr = std::env::var("SYNCMAN_ADDR").map_err(|_| "set SYNCMAN_ADDR")?;
    let key = std::env::var("SYNCMAN_AUTHKEY").map_err(|_| "set SYNCMAN_AUTHKEY")?;
    let mut managers = Vec::new();
    let mut dicts = Vec::new();
    for _ in 0..conns.max(1) {
        let m = Manager::connect(addr.as_str(), key.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        dicts.push(m.new_dict::<u64, u64>().await.map_err(|e| e.to_string())?);
        managers.push(m);
    }
    let tasks_in_all = dicts.len() as u64 * in_flight.max(1);
    let tasks: Vec<_> = (0..tasks_in_all)
        .map(|task| {
            let dict = dicts[(task % dicts.len() as u64) as usize].clone();
            // This task's share of the calls.
            let share = calls / tasks_in_all + u64::from(task < calls % tasks_in_all);
            tokio::spawn(async move {
                for n in 0..share {
                    if n.is_multiple_of(2) {
                        dict.insert(&task, &n).await?;
                    } else {
                        dict.get(&task).await?;
                    }
                }
                Ok::<_, syncman_client::Error>(())
            })
        })
        .collect();
    for t in tasks {
        t.await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}
