//! Ints: the little-endian two's complement of `LONG1`/`LONG4`, and the decimal text of
//! protocol 0's `INT`/`LONG`, to and from [`Pickle::Int`]/[`Pickle::BigInt`].

use super::Pickle;

/// CPython refuses to convert longer decimal strings (`sys.int_info.default_max_str_digits`),
/// which also keeps the quadratic conversion below cheap.
pub(super) const MAX_DECIMAL_DIGITS: usize = 4300;

/// Drops redundant sign bytes: the shortest two's complement of the same value (empty for 0,
/// as CPython's `encode_long(0)`).
pub(super) fn minimal(bytes: &[u8]) -> &[u8] {
    let mut len = bytes.len();
    while len > 1 {
        let (last, prev) = (bytes[len - 1], bytes[len - 2]);
        if (last == 0x00 && prev & 0x80 == 0) || (last == 0xff && prev & 0x80 != 0) {
            len -= 1;
        } else {
            break;
        }
    }
    if len == 1 && bytes[0] == 0 {
        len = 0;
    }
    &bytes[..len]
}

/// Canonical int from little-endian two's complement.
pub(super) fn int_from_le(bytes: &[u8]) -> Pickle {
    let bytes = minimal(bytes);
    if bytes.len() <= 16 {
        let fill = if bytes.last().is_some_and(|b| b & 0x80 != 0) {
            0xff
        } else {
            0
        };
        let mut buf = [fill; 16];
        buf[..bytes.len()].copy_from_slice(bytes);
        Pickle::Int(i128::from_le_bytes(buf))
    } else {
        Pickle::BigInt(bytes.to_vec())
    }
}

/// Minimal little-endian two's complement of an `i128` (empty for 0).
pub(super) fn i128_to_le(v: i128) -> Vec<u8> {
    minimal(&v.to_le_bytes()).to_vec()
}

/// A decimal int as CPython's picklers write it: optional sign, ASCII digits, surrounding
/// ASCII whitespace allowed (as `int()` does). `None` for anything else, including leading
/// zeros when `allow_leading_zeros` is false (`int(s, 0)` rejects them) and more than
/// [`MAX_DECIMAL_DIGITS`] digits.
pub(super) fn parse_decimal(text: &[u8], allow_leading_zeros: bool) -> Option<Pickle> {
    let text = text.trim_ascii();
    let (negative, digits) = match text.first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > MAX_DECIMAL_DIGITS {
        return None;
    }
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if !allow_leading_zeros && digits.len() > 1 && digits[0] == b'0' {
        // `int('00', 0)` is 0, `int('007', 0)` an error: only all-zero strings pass.
        if digits.iter().any(|&d| d != b'0') {
            return None;
        }
    }
    // Magnitude in base 2^32 limbs, little-endian, fed 9 digits at a time.
    let mut limbs: Vec<u32> = Vec::new();
    for chunk in digits.chunks(9) {
        let mut value = 0u64;
        for &d in chunk {
            value = value * 10 + u64::from(d - b'0');
        }
        let mut carry = value;
        let factor = 10u64.pow(chunk.len() as u32);
        for limb in limbs.iter_mut() {
            let product = u64::from(*limb) * factor + carry;
            *limb = product as u32;
            carry = product >> 32;
        }
        while carry != 0 {
            limbs.push(carry as u32);
            carry >>= 32;
        }
    }
    let mut bytes: Vec<u8> = limbs.iter().flat_map(|l| l.to_le_bytes()).collect();
    bytes.push(0); // room for the sign bit
    if negative {
        // Two's complement: invert and add one.
        let mut carry = true;
        for b in bytes.iter_mut() {
            let (v, c) = (!*b).overflowing_add(u8::from(carry));
            *b = v;
            carry = c;
        }
    }
    Some(int_from_le(&bytes))
}
