//! One dict entry in as little memory as it can take: the key's canonical encoding (what
//! lookups compare), the key as the client sent it when that differs (Python keeps the
//! first key object: `1.0` stays `1.0`), and the value, all in one block.
//!
//! Small entries (a u64 key and value take 18 bytes) live inline in the 24 bytes of the
//! enum; larger ones take one heap block, not three `Bytes` handles and their allocations.

/// Bytes of entry data that fit inline (after the three length bytes).
const INLINE_DATA: usize = 20;

/// A dict entry; see the module doc. Layout of both variants: the lengths of the
/// canonical key, of the original key (0 when it is the canonical one) and of the value,
/// then those bytes in that order.
pub enum PackedEntry {
    /// Three one-byte lengths, then up to [`INLINE_DATA`] bytes.
    Inline([u8; 3 + INLINE_DATA]),
    /// Lengths as [`put_len`] writes them, then the bytes.
    Heap(Box<[u8]>),
}

/// An entry that cannot be held: one of its parts is longer than 4 GiB.
#[derive(Debug)]
pub struct TooLarge;

impl PackedEntry {
    /// Packs an entry. `original` is the key as sent; pass the canonical key again (or an
    /// equal slice) when they are the same and it is not stored twice.
    pub fn new(canon: &[u8], original: &[u8], value: &[u8]) -> Result<PackedEntry, TooLarge> {
        let original: &[u8] = if original == canon { &[] } else { original };
        let data = canon.len() + original.len() + value.len();
        let short = |n: usize| u8::try_from(n).ok();
        if let (true, Some(c), Some(o), Some(v)) = (
            data <= INLINE_DATA,
            short(canon.len()),
            short(original.len()),
            short(value.len()),
        ) {
            let mut inline = [0u8; 3 + INLINE_DATA];
            inline[..3].copy_from_slice(&[c, o, v]);
            let mut at = 3;
            for part in [canon, original, value] {
                inline[at..at + part.len()].copy_from_slice(part);
                at += part.len();
            }
            return Ok(PackedEntry::Inline(inline));
        }
        let mut block = Vec::with_capacity(data + 3);
        for part in [canon, original] {
            put_len(&mut block, part.len())?;
        }
        for part in [canon, original, value] {
            block.extend_from_slice(part);
        }
        Ok(PackedEntry::Heap(block.into_boxed_slice()))
    }

    /// The same key with another value.
    pub fn with_value(&self, value: &[u8]) -> Result<PackedEntry, TooLarge> {
        let (canon, original, _) = self.parts();
        PackedEntry::new(
            canon,
            if original.is_empty() { canon } else { original },
            value,
        )
    }

    /// The key's canonical encoding: what lookups compare and hash.
    pub fn canon(&self) -> &[u8] {
        self.parts().0
    }

    /// The key as the client first sent it.
    pub fn key(&self) -> &[u8] {
        match self.parts() {
            (canon, [], _) => canon,
            (_, original, _) => original,
        }
    }

    pub fn value(&self) -> &[u8] {
        self.parts().2
    }

    /// Canonical key, original key (empty when it is the canonical one), value.
    fn parts(&self) -> (&[u8], &[u8], &[u8]) {
        match self {
            PackedEntry::Inline(inline) => {
                let [c, o, v] = [inline[0], inline[1], inline[2]].map(usize::from);
                split3(&inline[3..3 + c + o + v], c, o)
            }
            PackedEntry::Heap(block) => {
                let (c, rest) = get_len(block);
                let (o, rest) = get_len(rest);
                split3(rest, c, o)
            }
        }
    }
}

fn split3(data: &[u8], first: usize, second: usize) -> (&[u8], &[u8], &[u8]) {
    let (a, rest) = data.split_at(first);
    let (b, c) = rest.split_at(second);
    (a, b, c)
}

/// A length below 255 as one byte; longer ones as 255 and four little-endian bytes.
fn put_len(out: &mut Vec<u8>, n: usize) -> Result<(), TooLarge> {
    match u8::try_from(n) {
        Ok(short) if short < u8::MAX => out.push(short),
        _ => {
            out.push(u8::MAX);
            out.extend_from_slice(&u32::try_from(n).map_err(|_| TooLarge)?.to_le_bytes());
        }
    }
    Ok(())
}

/// Reads what [`put_len`] wrote (the node's own bytes, never a peer's).
fn get_len(bytes: &[u8]) -> (usize, &[u8]) {
    match bytes {
        [u8::MAX, a, b, c, d, rest @ ..] => (u32::from_le_bytes([*a, *b, *c, *d]) as usize, rest),
        [short, rest @ ..] => (usize::from(*short), rest),
        [] => (0, bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_takes_24_bytes_and_a_missing_one_no_more() {
        assert_eq!(std::mem::size_of::<PackedEntry>(), 24);
        assert_eq!(std::mem::size_of::<Option<PackedEntry>>(), 24);
    }

    /// Canonical key, original key, value, and whether they fit inline.
    type Case<'a> = (&'a [u8], &'a [u8], &'a [u8], bool);

    #[test]
    fn parts_come_back_as_packed_inline_or_on_the_heap() {
        let long = vec![7u8; 300];
        let cases: [Case; 6] = [
            (b"\x01", b"\x01", b"\x02", true),
            (
                b"\xcd\x01\x00",
                b"\xcd\x01\x00",
                b"\xce\x00\x01\x00\x00",
                true,
            ),
            (b"\x01", b"\xc3", b"v", true),
            (b"\xa3abc", b"\xa3abc", &long, false),
            (&long, b"\xc3", b"", false),
            (b"", b"", b"", true),
        ];
        for (canon, original, value, inline) in cases {
            let e = PackedEntry::new(canon, original, value).unwrap();
            assert_eq!(matches!(e, PackedEntry::Inline(_)), inline);
            assert_eq!(e.canon(), canon);
            assert_eq!(e.key(), original);
            assert_eq!(e.value(), value);
            let other = e.with_value(b"\xc0").unwrap();
            assert_eq!(
                (other.canon(), other.key(), other.value()),
                (canon, original, &b"\xc0"[..])
            );
        }
    }

    #[test]
    fn the_largest_inline_entry_and_the_smallest_heap_one() {
        let e = PackedEntry::new(&[1; 10], &[1; 10], &[2; 10]).unwrap();
        assert!(matches!(e, PackedEntry::Inline(_)));
        assert_eq!(e.value(), &[2; 10]);
        let e = PackedEntry::new(&[1; 10], &[1; 10], &[2; 11]).unwrap();
        assert!(matches!(e, PackedEntry::Heap(_)));
        assert_eq!(
            (e.canon(), e.key(), e.value()),
            (&[1u8; 10][..], &[1u8; 10][..], &[2u8; 11][..])
        );
    }

    #[test]
    fn lengths_of_255_and_more_take_five_bytes() {
        for n in [254, 255, 256, 70_000] {
            let key = vec![3u8; n];
            let e = PackedEntry::new(&key, &key, b"x").unwrap();
            assert_eq!(e.canon(), &key[..]);
            assert_eq!(e.key(), &key[..]);
            assert_eq!(e.value(), b"x");
        }
    }
}
