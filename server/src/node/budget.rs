//! The node's byte budget: how many bytes all objects may hold, counted as the encoded size
//! of what they store (keys, values, items, and the items of parked `put`s), so one peer
//! cannot grow the node without bound. Over the budget a call fails with Python's
//! `MemoryError` and changes nothing.
//!
//! Each built-in object keeps its bytes in a [`HeldBytes`], bound to the node's budget when
//! the object enters the table ([`SharedObject::bind_budget`]); dropping the object gives its
//! bytes back, whenever and wherever that happens.
//!
//! [`SharedObject::bind_budget`]: super::object::SharedObject::bind_budget

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use syncman_protocol::{ErrorKind, RemoteError};

/// Bytes held by all objects of a node, and the most they may hold.
#[derive(Debug)]
pub struct ByteBudget {
    used: AtomicUsize,
    limit: usize,
}

impl ByteBudget {
    pub fn new(limit: usize) -> Arc<ByteBudget> {
        Arc::new(ByteBudget {
            used: AtomicUsize::new(0),
            limit,
        })
    }

    /// Bytes held now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Takes `n` bytes, or fails without taking any.
    fn reserve(&self, n: usize) -> Result<(), RemoteError> {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let wanted = used.saturating_add(n);
            if wanted > self.limit {
                return Err(out_of_budget(n, used, self.limit));
            }
            match self.used.compare_exchange_weak(
                used,
                wanted,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(now) => used = now,
            }
        }
    }

    /// Takes `n` bytes even over the limit: for what comes back (an item returned to its
    /// queue), which must never be refused.
    fn force(&self, n: usize) {
        self.used.fetch_add(n, Ordering::Relaxed);
    }

    fn release(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::Relaxed);
    }
}

/// Python's `MemoryError`: what every quota raises.
pub fn memory_error(message: impl Into<String>) -> RemoteError {
    RemoteError::new(ErrorKind::Other("MemoryError".into()), message)
}

/// The `MemoryError` of a full budget, naming the numbers.
fn out_of_budget(wanted: usize, used: usize, limit: usize) -> RemoteError {
    memory_error(format!(
        "the node's objects hold {used} of at most {limit} bytes; \
         {wanted} more do not fit (see --max-bytes)"
    ))
}

/// The bytes one object holds, charged to its node's budget. Unbound (an object made
/// outside a node, as in unit tests) it only counts.
#[derive(Debug, Default)]
pub struct HeldBytes {
    budget: Option<Arc<ByteBudget>>,
    bytes: usize,
}

impl HeldBytes {
    /// Binds to `budget`, charging what is held already (a constructor's contents).
    pub fn bind(&mut self, budget: &Arc<ByteBudget>) -> Result<(), RemoteError> {
        budget.reserve(self.bytes)?;
        if let Some(old) = self.budget.replace(budget.clone()) {
            old.release(self.bytes);
        }
        Ok(())
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Takes `n` more bytes, or fails (`MemoryError`) taking none.
    pub fn grow(&mut self, n: usize) -> Result<(), RemoteError> {
        if n == 0 {
            return Ok(());
        }
        if let Some(budget) = &self.budget {
            budget.reserve(n)?;
        }
        self.bytes += n;
        Ok(())
    }

    /// Takes `n` more bytes even over the limit (something coming back).
    pub fn force_grow(&mut self, n: usize) {
        if let Some(budget) = &self.budget {
            budget.force(n);
        }
        self.bytes += n;
    }

    /// Gives `n` bytes back.
    pub fn shrink(&mut self, n: usize) {
        let n = n.min(self.bytes);
        if let Some(budget) = &self.budget {
            budget.release(n);
        }
        self.bytes -= n;
    }

    /// From `old` to `new` bytes (a value replaced): grows or shrinks by the difference.
    pub fn replace(&mut self, old: usize, new: usize) -> Result<(), RemoteError> {
        if new >= old {
            self.grow(new - old)
        } else {
            self.shrink(old - new);
            Ok(())
        }
    }

    /// Gives everything back (the object was cleared).
    pub fn clear(&mut self) {
        self.shrink(self.bytes);
    }
}

impl Drop for HeldBytes {
    fn drop(&mut self) {
        if let Some(budget) = &self.budget {
            budget.release(self.bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_past_the_limit_fails_and_takes_nothing() {
        let budget = ByteBudget::new(100);
        let mut a = HeldBytes::default();
        a.grow(30).unwrap();
        a.bind(&budget).unwrap();
        assert_eq!(budget.used(), 30, "binding charges what is held");
        let mut b = HeldBytes::default();
        b.bind(&budget).unwrap();
        b.grow(70).unwrap();
        let e = a.grow(1).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Other("MemoryError".into()));
        assert_eq!((a.bytes(), budget.used()), (30, 100));
        b.shrink(20);
        a.grow(20).unwrap();
        a.force_grow(50);
        assert_eq!(budget.used(), 150, "what comes back is never refused");
        drop(a);
        assert_eq!(budget.used(), 50, "a dropped object gives its bytes back");
        b.clear();
        assert_eq!(budget.used(), 0);
    }
}
