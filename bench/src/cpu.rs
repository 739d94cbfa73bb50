//! CPU time per operation, beside the rates: on a machine with few cores a rate shows which
//! side ran out of CPU first, and CPU per operation shows what each side spent on it.
//!
//! The server's time comes from `/proc/<pid>/stat`; the clients' from `getrusage` (this
//! process for the Rust clients, waited-for children for `redis-benchmark`), or from the
//! Python clients themselves, which time only their measured loop.

use std::time::Duration;

use crate::stats::Measured;

/// User + system time of process `pid`, from `/proc/<pid>/stat`.
pub fn of_process(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of the whole line (utime, stime): 11 and 12 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks_to_duration(ticks))
}

fn ticks_to_duration(ticks: u64) -> Duration {
    // SAFETY: sysconf only reads a configuration value.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let per_second = u64::try_from(per_second).unwrap_or(100).max(1);
    Duration::from_micros(ticks * 1_000_000 / per_second)
}

/// Whose `getrusage` counts a peer's client.
#[derive(Clone, Copy)]
pub enum Clients {
    /// Tasks of this process (the Rust clients: syncman's and the echo floor's).
    InProcess,
    /// Child processes this process waited for (`redis-benchmark`).
    Children,
    /// The clients report their own time (the Python clients).
    SelfReported,
}

fn rusage(who: libc::c_int) -> Option<Duration> {
    // SAFETY: a zeroed rusage is valid for getrusage to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage.
    if unsafe { libc::getrusage(who, &mut usage) } != 0 {
        return None;
    }
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    Some(time(usage.ru_utime) + time(usage.ru_stime))
}

fn of_clients(clients: Clients) -> Option<Duration> {
    match clients {
        Clients::InProcess => rusage(libc::RUSAGE_SELF),
        Clients::Children => rusage(libc::RUSAGE_CHILDREN),
        Clients::SelfReported => None,
    }
}

/// CPU times read before a measurement.
pub struct Meter {
    server_pid: u32,
    server: Option<Duration>,
    clients_kind: Clients,
    clients: Option<Duration>,
}

impl Meter {
    /// Reads the server's and the clients' CPU time so far.
    pub fn start(server_pid: u32, clients: Clients) -> Meter {
        Meter {
            server_pid,
            server: of_process(server_pid),
            clients_kind: clients,
            clients: of_clients(clients),
        }
    }

    /// Adds CPU per operation to `measured`, for the operations `ops` counts in it since
    /// [`Meter::start`]. The time includes the measurement's set-up (connecting, creating
    /// the objects), which is small beside its calls.
    pub fn finish(
        self,
        measured: Option<Measured>,
        ops: impl FnOnce(&Measured) -> f64,
    ) -> Option<Measured> {
        let mut m = measured?;
        let ops = ops(&m);
        if ops < 1.0 {
            return Some(m);
        }
        let per_op = |before: Option<Duration>, after: Option<Duration>| {
            Some(after?.checked_sub(before?)?.as_secs_f64() * 1e6 / ops)
        };
        m.server_cpu_us_per_op = per_op(self.server, of_process(self.server_pid));
        if !matches!(self.clients_kind, Clients::SelfReported) {
            m.client_cpu_us_per_op = per_op(self.clients, of_clients(self.clients_kind));
        }
        Some(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_used_some_cpu_and_the_count_grows() {
        let pid = std::process::id();
        let before = of_process(pid).expect("our own /proc stat");
        // Spins until the count shows 20 ms more (bounded: a loaded machine may give this
        // thread little of each second).
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut x = 0u64;
        loop {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_add(1));
            }
            let now = of_process(pid).expect("our own /proc stat");
            if now >= before + Duration::from_millis(20) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the count stayed at {now:?} from {before:?}"
            );
        }
        assert!(rusage(libc::RUSAGE_SELF).is_some());
    }
}
