//! Back-off for wrong keys, per source IP address: after `limit` wrong keys from one
//! address within `window`, the node refuses that address's new connections for a penalty
//! (a `#REFUSED#` frame that says why and for how long), doubled each time the address
//! earns another, up to `max_penalty`. A right key from the address forgets it; so does a
//! quiet spell as long as `max_penalty`.
//!
//! Only the address that sent the wrong keys is refused: every other address is looked up
//! and let through. The table is an LRU of at most `table_size` addresses, so a flood from
//! many addresses costs a bounded amount of memory (the least recently seen address is
//! forgotten first).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use hashlink::LruCache;
use parking_lot::Mutex;

use crate::config::WrongKeyPolicy;

/// What the node remembers of one address's wrong keys.
struct Record {
    /// Start of the window in which `failures` are counted.
    window_start: Instant,
    failures: u32,
    /// Penalties earned so far: the next lasts `penalty * 2^strikes` (capped).
    strikes: u32,
    last_failure: Instant,
    /// New connections from the address are refused until then.
    refused_until: Option<Instant>,
}

/// The per-address table of wrong keys.
pub(crate) struct WrongKeys {
    policy: WrongKeyPolicy,
    table: Mutex<LruCache<IpAddr, Record>>,
}

impl WrongKeys {
    pub(crate) fn new(policy: WrongKeyPolicy) -> Self {
        let capacity = if policy.limit == 0 {
            0
        } else {
            policy.table_size
        };
        WrongKeys {
            policy,
            table: Mutex::new(LruCache::new(capacity)),
        }
    }

    fn enabled(&self) -> bool {
        self.policy.limit > 0
    }

    /// How much longer `ip`'s connections are refused, if they are.
    pub(crate) fn refused(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        if !self.enabled() {
            return None;
        }
        let mut table = self.table.lock();
        let until = table.get(&key(ip))?.refused_until?;
        (until > now).then(|| until - now)
    }

    /// Counts a wrong key from `ip`; returns the penalty if this one starts it.
    pub(crate) fn wrong_key(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        if !self.enabled() {
            return None;
        }
        let policy = &self.policy;
        let mut table = self.table.lock();
        let ip = key(ip);
        if table.get(&ip).is_none() {
            // Evicts the least recently seen address when the table is full.
            table.insert(
                ip,
                Record {
                    window_start: now,
                    failures: 0,
                    strikes: 0,
                    last_failure: now,
                    refused_until: None,
                },
            );
        }
        let r = table.get_mut(&ip)?;
        let quiet_since = r
            .refused_until
            .map_or(r.last_failure, |u| u.max(r.last_failure));
        if now.saturating_duration_since(quiet_since) >= policy.max_penalty {
            r.strikes = 0;
        }
        if now.saturating_duration_since(r.window_start) >= policy.window {
            r.window_start = now;
            r.failures = 0;
        }
        r.failures += 1;
        r.last_failure = now;
        if r.failures < policy.limit {
            return None;
        }
        let penalty = policy
            .penalty
            .saturating_mul(1 << r.strikes.min(31))
            .min(policy.max_penalty);
        r.strikes = r.strikes.saturating_add(1);
        r.failures = 0;
        r.window_start = now;
        r.refused_until = Some(now + penalty);
        Some(penalty)
    }

    /// A right key from `ip`: whatever it did before is forgotten.
    pub(crate) fn right_key(&self, ip: IpAddr) {
        if self.enabled() {
            self.table.lock().remove(&key(ip));
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.lock().len()
    }
}

/// An IPv4 client reaching an IPv6 socket (`::ffff:a.b.c.d`) is the IPv4 address.
fn key(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    fn policy() -> WrongKeyPolicy {
        WrongKeyPolicy {
            limit: 3,
            window: 60 * SEC,
            penalty: 10 * SEC,
            max_penalty: 35 * SEC,
            table_size: 100,
        }
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn the_limit_starts_a_penalty_for_that_address_only() {
        let t = WrongKeys::new(policy());
        let now = Instant::now();
        assert_eq!(t.wrong_key(ip(2), now), None);
        assert_eq!(t.wrong_key(ip(2), now), None);
        assert_eq!(t.refused(ip(2), now), None, "under the limit");
        assert_eq!(t.wrong_key(ip(2), now), Some(10 * SEC));
        assert_eq!(t.refused(ip(2), now + SEC), Some(9 * SEC));
        assert_eq!(t.refused(ip(1), now + SEC), None, "another address");
        assert_eq!(t.refused(ip(2), now + 10 * SEC), None, "served its time");
    }

    #[test]
    fn penalties_double_up_to_the_cap_and_a_right_key_forgets() {
        let t = WrongKeys::new(policy());
        let mut now = Instant::now();
        let mut penalties = Vec::new();
        for _ in 0..4 {
            let mut got = None;
            for _ in 0..3 {
                got = t.wrong_key(ip(2), now);
            }
            let penalty = got.expect("a penalty");
            penalties.push(penalty);
            now += penalty;
        }
        assert_eq!(penalties, [10 * SEC, 20 * SEC, 35 * SEC, 35 * SEC]);
        t.right_key(ip(2));
        for _ in 0..2 {
            assert_eq!(t.wrong_key(ip(2), now), None);
        }
        assert_eq!(t.wrong_key(ip(2), now), Some(10 * SEC), "back to the first");
    }

    #[test]
    fn failures_outside_the_window_and_strikes_after_a_quiet_spell_are_forgotten() {
        let t = WrongKeys::new(policy());
        let start = Instant::now();
        t.wrong_key(ip(2), start);
        t.wrong_key(ip(2), start);
        let later = start + 61 * SEC;
        assert_eq!(t.wrong_key(ip(2), later), None, "the window restarted");
        t.wrong_key(ip(2), later);
        assert_eq!(t.wrong_key(ip(2), later), Some(10 * SEC));
        // Quiet for max_penalty after the penalty ended: the doubling starts over.
        let quiet = later + 10 * SEC + 35 * SEC;
        t.wrong_key(ip(2), quiet);
        t.wrong_key(ip(2), quiet);
        assert_eq!(t.wrong_key(ip(2), quiet), Some(10 * SEC));
    }

    #[test]
    fn ipv4_mapped_addresses_are_their_ipv4_address() {
        let t = WrongKeys::new(policy());
        let now = Instant::now();
        let mapped: IpAddr = "::ffff:127.0.0.2".parse().unwrap();
        t.wrong_key(mapped, now);
        t.wrong_key(ip(2), now);
        assert!(t.wrong_key(mapped, now).is_some());
        assert!(t.refused(ip(2), now).is_some());
    }

    #[test]
    fn the_table_stays_bounded_under_many_addresses() {
        let t = WrongKeys::new(policy());
        let now = Instant::now();
        for i in 0..10_000u32 {
            t.wrong_key(IpAddr::from((0x0a00_0000 + i).to_be_bytes()), now);
            assert!(t.len() <= 100);
        }
        assert_eq!(t.len(), 100);
        // The most recent addresses are the ones remembered.
        let last = IpAddr::from((0x0a00_0000u32 + 9_999).to_be_bytes());
        t.wrong_key(last, now);
        assert!(t.wrong_key(last, now).is_some());
    }

    #[test]
    fn a_limit_of_zero_turns_it_off() {
        let t = WrongKeys::new(WrongKeyPolicy {
            limit: 0,
            ..policy()
        });
        let now = Instant::now();
        for _ in 0..100 {
            assert_eq!(t.wrong_key(ip(2), now), None);
        }
        assert_eq!(t.refused(ip(2), now), None);
        assert_eq!(t.len(), 0);
    }
}
