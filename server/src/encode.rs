//! Encoding results. Constant answers are static bytes: no allocation per call.

use bytes::{BufMut, Bytes, BytesMut};

pub static NIL: Bytes = Bytes::from_static(&[0xc0]);
pub static TRUE: Bytes = Bytes::from_static(&[0xc3]);
pub static FALSE: Bytes = Bytes::from_static(&[0xc2]);

pub fn nil() -> Bytes {
    NIL.clone()
}

pub fn bool(b: bool) -> Bytes {
    if b {
        TRUE.clone()
    } else {
        FALSE.clone()
    }
}

pub fn int(i: i128) -> Bytes {
    syncman_protocol::Value::Int(i).to_bytes()
}

pub fn str(s: &str) -> Bytes {
    let mut out = Vec::with_capacity(s.len() + 5);
    let _ = rmp::encode::write_str(&mut out, s);
    Bytes::from(out)
}

/// An array of already-encoded items.
pub fn array<'a>(items: impl ExactSizeIterator<Item = &'a Bytes>) -> Bytes {
    let mut out = BytesMut::new();
    let _ = rmp::encode::write_array_len(&mut (&mut out).writer(), items.len() as u32);
    for item in items {
        out.put_slice(item);
    }
    out.freeze()
}

/// A map of already-encoded keys and values.
pub fn map<'a>(pairs: impl ExactSizeIterator<Item = (&'a Bytes, &'a Bytes)>) -> Bytes {
    let mut out = BytesMut::new();
    let _ = rmp::encode::write_map_len(&mut (&mut out).writer(), pairs.len() as u32);
    for (k, v) in pairs {
        out.put_slice(k);
        out.put_slice(v);
    }
    out.freeze()
}

/// An array of `[key, value]` pairs (what Python's `items()` gives).
pub fn pairs<'a>(pairs: impl ExactSizeIterator<Item = (&'a Bytes, &'a Bytes)>) -> Bytes {
    let mut out = BytesMut::new();
    let _ = rmp::encode::write_array_len(&mut (&mut out).writer(), pairs.len() as u32);
    for (k, v) in pairs {
        out.put_u8(0x92);
        out.put_slice(k);
        out.put_slice(v);
    }
    out.freeze()
}
