//! Who may start a handshake. Peers that have not proved they hold the key are bounded in
//! two ways, neither of which turns a burst of honest clients away:
//!
//! - **At once, node-wide** (`max_handshakes`): when that many connections are in the
//!   handshake, the node stops accepting until one finishes; new connections wait in the
//!   kernel's listen backlog (queued, not refused).
//! - **Per source address** (`max_handshakes_per_address`): one address cannot take more
//!   than its share; a connection past it is refused with a `#REFUSED#` frame that says why.
//!
//! A silent peer holds its place only until the first-answer deadline
//! (`first_answer_timeout`), so silent peers cannot starve the clients that answer.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Unauthenticated connections per source address.
pub(crate) struct PerAddress {
    limit: usize,
    counts: Mutex<HashMap<IpAddr, usize>>,
}

impl PerAddress {
    pub(crate) fn new(limit: usize) -> Arc<Self> {
        Arc::new(PerAddress {
            limit,
            counts: Mutex::new(HashMap::new()),
        })
    }

    /// A place for one more handshake from `ip`, or the reason there is none.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<AddressSlot, String> {
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
    _address: AddressSlot,
}

impl HandshakeSlots {
    pub(crate) fn new(node_wide: tokio::sync::OwnedSemaphorePermit, address: AddressSlot) -> Self {
        HandshakeSlots {
            _node_wide: node_wide,
            _address: address,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_share_and_others_are_unaffected() {
        let table = PerAddress::new(2);
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
        let table = PerAddress::new(8);
        let slots: Vec<_> = (0..4)
            .map(|i| table.admit(IpAddr::from([10, 0, 0, i])).unwrap())
            .collect();
        drop(slots);
        assert!(table.counts.lock().unwrap().is_empty());
    }
}
