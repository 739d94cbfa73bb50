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
