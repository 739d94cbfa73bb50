//! The dict's storage: entries in insertion order in one vector, found through a hash
//! index of their positions, as CPython lays out its own dicts.
//!
//! A deleted entry leaves a hole, so deleting keeps the order and costs O(1); the vector is
//! compacted once holes outnumber entries. Per entry this takes the 24-byte
//! [`PackedEntry`] (amortised over the vector's spare capacity) and about 10 bytes of
//! index, where a linked hash map of `Bytes` took over 150.

use std::hash::BuildHasher;

use hashbrown::hash_table::{Entry, HashTable};
use hashbrown::DefaultHashBuilder;

use super::packed::{PackedEntry, TooLarge};

#[derive(Default)]
pub struct OrderedTable {
    /// In insertion order; `None` where an entry was deleted.
    slots: Vec<Option<PackedEntry>>,
    /// Positions in `slots` of the live entries, hashed by canonical key.
    index: HashTable<u32>,
    /// Seeded per table: keys come from clients, so collisions must not be predictable.
    hasher: DefaultHashBuilder,
}

/// Why an entry could not be added.
#[derive(Debug)]
pub struct Full;

impl From<TooLarge> for Full {
    fn from(_: TooLarge) -> Full {
        Full
    }
}

impl OrderedTable {
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn get(&self, canon: &[u8]) -> Option<&PackedEntry> {
        let hash = self.hasher.hash_one(canon);
        let at = *self
            .index
            .find(hash, |&at| is_key(&self.slots, at, canon))?;
        self.slots[at as usize].as_ref()
    }

    /// Sets the value of `canon`, keeping its original key and position, or adds the entry
    /// at the end. Answers the value it replaced, if any, as its length.
    pub fn set(&mut self, canon: &[u8], key: &[u8], value: &[u8]) -> Result<Option<usize>, Full> {
        let hash = self.hasher.hash_one(canon);
        let (slots, hasher) = (&mut self.slots, &self.hasher);
        match self.index.entry(
            hash,
            |&at| is_key(slots, at, canon),
            |&at| rehash(hasher, slots, at),
        ) {
            Entry::Occupied(found) => {
                let slot = &mut slots[*found.get() as usize];
                let old = slot.as_ref().map_or(0, |e| e.value().len());
                if let Some(entry) = slot {
                    *entry = entry.with_value(value)?;
                }
                Ok(Some(old))
            }
            Entry::Vacant(vacant) => {
                let at = u32::try_from(slots.len()).map_err(|_| Full)?;
                slots.push(Some(PackedEntry::new(canon, key, value)?));
                vacant.insert(at);
                Ok(None)
            }
        }
    }

    pub fn remove(&mut self, canon: &[u8]) -> Option<PackedEntry> {
        let hash = self.hasher.hash_one(canon);
        let found = self
            .index
            .find_entry(hash, |&at| is_key(&self.slots, at, canon))
            .ok()?;
        let (at, _) = found.remove();
        let removed = self.slots[at as usize].take();
        self.tidy();
        removed
    }

    /// The last entry added, as `popitem` takes it.
    pub fn last(&self) -> Option<&PackedEntry> {
        self.slots.iter().rev().find_map(Option::as_ref)
    }

    pub fn pop_last(&mut self) -> Option<PackedEntry> {
        // No trailing holes (see `tidy`), so the last slot is the last entry.
        let last = self.slots.pop()??;
        let at = self.slots.len() as u32;
        let hash = self.hasher.hash_one(last.canon());
        if let Ok(found) = self.index.find_entry(hash, |&i| i == at) {
            found.remove();
        }
        self.tidy();
        Some(last)
    }

    /// The entries in insertion order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &PackedEntry> {
        Entries {
            slots: self.slots.iter(),
            left: self.len(),
        }
    }

    /// Drops trailing holes at once, and compacts when holes outnumber entries, so the
    /// vector stays within twice the live entries and `last` finds one in O(1) amortised.
    fn tidy(&mut self) {
        while matches!(self.slots.last(), Some(None)) {
            self.slots.pop();
        }
        let holes = self.slots.len() - self.len();
        if holes > 8 && holes > self.len() {
            self.slots.retain(Option::is_some);
            self.slots.shrink_to(self.slots.len() * 2);
            self.index.clear();
            let (slots, hasher) = (&self.slots, &self.hasher);
            for (at, entry) in slots.iter().enumerate() {
                let hash = entry.as_ref().map_or(0, |e| hasher.hash_one(e.canon()));
                // `at` fits: the vector only shrank.
                self.index
                    .insert_unique(hash, at as u32, |&i| rehash(hasher, slots, i));
            }
        }
    }
}

fn is_key(slots: &[Option<PackedEntry>], at: u32, canon: &[u8]) -> bool {
    matches!(&slots[at as usize], Some(e) if e.canon() == canon)
}

fn rehash(hasher: &DefaultHashBuilder, slots: &[Option<PackedEntry>], at: u32) -> u64 {
    slots[at as usize]
        .as_ref()
        .map_or(0, |e| hasher.hash_one(e.canon()))
}

/// Live entries in order; the count is known, so callers can size what they encode.
struct Entries<'a> {
    slots: std::slice::Iter<'a, Option<PackedEntry>>,
    left: usize,
}

impl<'a> Iterator for Entries<'a> {
    type Item = &'a PackedEntry;

    fn next(&mut self) -> Option<&'a PackedEntry> {
        let next = self.slots.find_map(Option::as_ref)?;
        self.left -= 1;
        Some(next)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Entries<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use hashlink::LinkedHashMap;

    fn keys(t: &OrderedTable) -> Vec<Vec<u8>> {
        t.iter().map(|e| e.canon().to_vec()).collect()
    }

    #[test]
    fn setting_keeps_the_position_and_deleting_keeps_the_order() {
        let mut t = OrderedTable::default();
        for k in [b"a", b"b", b"c"] {
            assert_eq!(t.set(k, k, b"1").unwrap(), None);
        }
        assert_eq!(t.set(b"a", b"a", b"22").unwrap(), Some(1));
        assert_eq!(
            t.remove(b"b").map(|e| e.value().to_vec()),
            Some(b"1".to_vec())
        );
        assert!(t.remove(b"b").is_none());
        assert_eq!(keys(&t), [b"a".to_vec(), b"c".to_vec()]);
        assert_eq!(t.get(b"a").map(PackedEntry::value), Some(&b"22"[..]));
        assert_eq!(
            t.pop_last().map(|e| e.canon().to_vec()),
            Some(b"c".to_vec())
        );
        assert_eq!(t.len(), 1);
    }

    /// Random operations against `hashlink`'s map as the model, with enough deletions to
    /// compact many times; order, lengths and values must agree throughout.
    #[test]
    fn agrees_with_a_linked_hash_map_under_random_operations() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let mut t = OrderedTable::default();
        let mut model: LinkedHashMap<Vec<u8>, Vec<u8>> = LinkedHashMap::new();
        for step in 0..20_000 {
            let key = next(300).to_le_bytes().to_vec();
            match next(10) {
                0..=4 => {
                    let value = vec![next(256) as u8; next(40) as usize];
                    let before = t.set(&key, &key, &value).unwrap();
                    let old = model.get(&key).map(Vec::len);
                    match model.get_mut(&key) {
                        Some(v) => *v = value,
                        None => {
                            model.insert(key.clone(), value);
                        }
                    }
                    assert_eq!(before, old, "step {step}");
                }
                5..=7 => {
                    let removed = t.remove(&key).map(|e| e.value().to_vec());
                    assert_eq!(removed, model.remove(&key), "step {step}");
                }
                8 => {
                    let popped = t.pop_last().map(|e| e.canon().to_vec());
                    assert_eq!(popped, model.pop_back().map(|(k, _)| k), "step {step}");
                }
                _ => {
                    let got = t.get(&key).map(|e| e.value().to_vec());
                    assert_eq!(got.as_ref(), model.get(&key), "step {step}");
                }
            }
            assert_eq!(t.len(), model.len(), "step {step}");
            assert!(
                t.slots.len() <= 2 * t.len() + 9,
                "step {step}: too many holes"
            );
            if step % 1000 == 0 {
                let order: Vec<Vec<u8>> = model.keys().cloned().collect();
                assert_eq!(keys(&t), order, "step {step}");
                assert_eq!(t.iter().len(), model.len());
            }
        }
    }
}
