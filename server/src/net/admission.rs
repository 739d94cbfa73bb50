//! Who may start a handshake. Peers that have not proved they hold the key are bounded in
//! two ways, neither of which turns a burst of honest clients away:
//!
//! - **At once, node-wide** (`max_handshakes`): when that many connections are in the
//!   handshake, the node stops accepting until one finishes; new connections wait in the
//!   kernel's listen backlog (queued, not refused).
//! - **Per source address** (`max_handshakes_per_address`): one address cannot take more
//!   than its share; a connection past it is refused with a `#REFUSED#` frame that says why.
//! - **After wrong keys** (`wrong_keys`, `super::backoff`): an address that sent too many
//!   is refused for a while, with a `#REFUSED#` frame that says why and for how long.
//!
//! A silent peer holds its place only until the first-answer deadline
//! (`first_answer_timeout`), so silent peers cannot starve the clients that answer.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tracing::warn;

use super::backoff::WrongKeys;
use super::log_limit::LogLimit;
use crate::config::WrongKeyPolicy;

/// Unauthenticated connections per source address, and the addresses refused for wrong
/// keys.
pub(crate) struct PerAddress {
    limit: usize,
    counts: Mutex<HashMap<IpAddr, usize>>,
    wrong_keys: WrongKeys,
}

impl PerAddress {
    pub(crate) fn new(limit: usize, wrong_keys: WrongKeyPolicy) -> Arc<Self> {
        Arc::new(PerAddress {
            limit,
            counts: Mutex::new(HashMap::new()),
            wrong_keys: WrongKeys::new(wrong_keys),
        })
    }

    /// A place for one more handshake from `ip`, or the reason there is none.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<AddressSlot, String> {
        if let Some(left) = self.wrong_keys.refused(ip, Instant::now()) {
            return Err(format!(
                "too many wrong keys from {ip}: its connections are refused for {} s more \
                 (the node's wrong-key back-off)",
                left.as_secs() + 1
            ));
        }
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(ip).or_insert(0);
        if *n >= self.limit {
            return Err(format!(
                "{} connections from {ip} are already in the handshake (the node's \
                 per-address limit); retry once they finish",
                self.limit
            ));
        }
        *n += 1;
        Ok(AddressSlot {
            table: self.clone(),
            ip,
        })
    }
}

/// One handshake's place in its address's count, given back on drop.
pub(crate) struct AddressSlot {
    table: Arc<PerAddress>,
    ip: IpAddr,
}

impl AddressSlot {
    /// The peer answered the challenge with a wrong key: counted against its address, and
    /// logged (rate-limited) if that starts a penalty.
    fn wrong_key(&self, peer: SocketAddr) {
        static PENALTY: LogLimit = LogLimit::new();
        let Some(penalty) = self.table.wrong_keys.wrong_key(self.ip, Instant::now()) else {
            return;
        };
        if let Some(left_out) = PENALTY.allow() {
            warn!(
                %peer,
                left_out,
                penalty_secs = penalty.as_secs(),
                "too many wrong keys from {}: refusing its connections for {penalty:?}",
                self.ip
            );
        }
    }

    /// The peer proved it holds the key: its address's wrong keys are forgotten.
    fn right_key(&self) {
        self.table.wrong_keys.right_key(self.ip);
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut counts = self.table.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                // The table holds only addresses with handshakes in progress.
                counts.remove(&self.ip);
            }
        }
    }
}

/// What an unauthenticated connection holds until it has authenticated (dropped then).
pub(crate) struct HandshakeSlots {
    _node_wide: tokio::sync::OwnedSemaphorePermit,
    address: AddressSlot,
}

impl HandshakeSlots {
    pub(crate) fn new(node_wide: tokio::sync::OwnedSemaphorePermit, address: AddressSlot) -> Self {
        HandshakeSlots {
            _node_wide: node_wide,
            address,
        }
    }

    /// The handshake failed on a wrong key (see [`AddressSlot::wrong_key`]).
    pub(crate) fn wrong_key(&self, peer: SocketAddr) {
        self.address.wrong_key(peer);
    }

    /// The peer authenticated; its address's wrong keys are forgotten.
    pub(crate) fn right_key(&self) {
        self.address.right_key();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_share_and_others_are_unaffected() {
        let table = PerAddress::new(2, WrongKeyPolicy::default());
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let first = table.admit(a).unwrap();
        let _second = table.admit(a).unwrap();
        let refused = table.admit(a).err().unwrap();
        assert!(refused.contains("127.0.0.2"), "{refused}");
        assert!(table.admit(b).is_ok(), "another address is unaffected");
        drop(first);
        assert!(
            table.admit(a).is_ok(),
            "a finished handshake frees its place"
        );
    }

    #[test]
    fn addresses_leave_the_table_when_their_handshakes_finish() {
        let table = PerAddress::new(8, WrongKeyPolicy::default());
        let slots: Vec<_> = (0..4)
            .map(|i| table.admit(IpAddr::from([10, 0, 0, i])).unwrap())
            .collect();
        drop(slots);
        assert!(table.counts.lock().unwrap().is_empty());
    }
}
