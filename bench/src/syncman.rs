//! syncman: a `dict` get/set per operation, through the Rust client, against a node this
//! benchmark starts (`syncman serve`, release build).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};
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

/// What `--drive-calls` calls, alternating: each pair is two calls.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum DriveOp {
    /// `dict` insert, then get.
    Dict,
    /// `dict` insert, then get, all of a connection's calls made by one task, which keeps
    /// `--in-flight` of them going at once (a window: the next starts as one ends).
    DictOneTask,
    /// `queue` put, then get (each task's get follows its own put).
    Queue,
    /// `lock` acquire, then release.
    Lock,
}

/// The object a connection's tasks call, for [`drive`].
#[derive(Clone)]
enum Driven {
    Dict(syncman_client::DictProxy<u64, u64>),
    Queue(syncman_client::QueueProxy<u64>),
    Lock(syncman_client::LockProxy),
}

/// `calls` calls on `conns` connections to the node at `SYNCMAN_ADDR` (key in
/// `SYNCMAN_AUTHKEY`), `in_flight` at a time on each, alternating as `op` says (a dict's
/// `insert` and `get`, as [`measure`] does): a fixed amount of work, for counting
/// instructions or CPU time per call (`bench/instructions.sh`).
pub async fn drive(calls: u64, conns: u64, in_flight: u64, op: DriveOp) -> Result<(), String> {
    let addr = std::env::var("SYNCMAN_ADDR").map_err(|_| "set SYNCMAN_ADDR")?;
    let key = std::env::var("SYNCMAN_AUTHKEY").map_err(|_| "set SYNCMAN_AUTHKEY")?;
    let fail = |e: syncman_client::Error| e.to_string();
    let mut managers = Vec::new();
    let mut objects = Vec::new();
    for _ in 0..conns.max(1) {
        let m = Manager::connect(addr.as_str(), key.as_bytes())
            .await
            .map_err(fail)?;
        objects.push(match op {
            DriveOp::Dict | DriveOp::DictOneTask => Driven::Dict(m.new_dict().await.map_err(fail)?),
            DriveOp::Queue => Driven::Queue(m.new_queue().await.map_err(fail)?),
            DriveOp::Lock => Driven::Lock(m.new_lock().await.map_err(fail)?),
        });
        managers.push(m);
    }
    if let DriveOp::DictOneTask = op {
        return drive_one_task_each(calls, in_flight, objects).await;
    }
    let tasks_in_all = objects.len() as u64 * in_flight.max(1);
    let tasks: Vec<_> = (0..tasks_in_all)
        .map(|task| {
            let on = objects[(task % objects.len() as u64) as usize].clone();
            // This task's share of the calls.
            let share = calls / tasks_in_all + u64::from(task < calls % tasks_in_all);
            tokio::spawn(async move {
                let mut held = None;
                for n in 0..share {
                    let first = n.is_multiple_of(2);
                    match &on {
                        Driven::Dict(d) if first => d.insert(&task, &n).await.map(drop)?,
                        Driven::Dict(d) => d.get(&task).await.map(drop)?,
                        Driven::Queue(q) if first => q.put(&n).await?,
                        Driven::Queue(q) => q.get().await.map(drop)?,
                        Driven::Lock(lock) if first => held = Some(lock.acquire().await?),
                        Driven::Lock(_) => {
                            if let Some(guard) = held.take() {
                                guard.release().await?;
                            }
                        }
                    }
                }
                Ok::<_, syncman_client::Error>(())
            })
        })
        .collect();
    for t in tasks {
        t.await.map_err(|e| e.to_string())?.map_err(fail)?;
    }
    Ok(())
}

/// [`drive`] with one task per connection, keeping `in_flight` dict calls going at once on
/// its own: call `n` inserts or gets key `n % in_flight`, alternating per key.
async fn drive_one_task_each(
    calls: u64,
    in_flight: u64,
    objects: Vec<Driven>,
) -> Result<(), String> {
    let (conns, in_flight) = (objects.len() as u64, in_flight.max(1));
    let tasks: Vec<_> = objects
        .into_iter()
        .enumerate()
        .map(|(conn, on)| {
            let share = calls / conns + u64::from((conn as u64) < calls % conns);
            tokio::spawn(async move {
                let Driven::Dict(dict) = on else {
                    return Ok(());
                };
                let call = |n: u64| {
                    let dict = &dict;
                    async move {
                        let key = n % in_flight;
                        if (n / in_flight).is_multiple_of(2) {
                            dict.insert(&key, &n).await.map(drop)
                        } else {
                            dict.get(&key).await.map(drop)
                        }
                    }
                };
                let mut going: FuturesUnordered<_> = (0..in_flight.min(share)).map(call).collect();
                let mut next = going.len() as u64;
                while let Some(done) = going.next().await {
                    done?;
                    if next < share {
                        going.push(call(next));
                        next += 1;
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
