//! Text: CPython's `'surrogatepass'` UTF-8 (how `BINUNICODE` carries a `str`), and the
//! escapes of protocol 0's `UNICODE` (`raw-unicode-escape`) and `STRING` (`escape_decode`).

use super::Pickle;

/// `Str` when valid UTF-8, `SurrogateStr` when valid apart from surrogates (`ED A0..BF xx`),
/// else `None`: exactly what `bytes.decode('utf-8', 'surrogatepass')` accepts.
pub(super) fn str_from_surrogatepass(bytes: Vec<u8>) -> Option<Pickle> {
    match String::from_utf8(bytes) {
        Ok(s) => Some(Pickle::Str(s)),
        Err(e) => {
            let bytes = e.into_bytes();
            surrogatepass_valid(&bytes).then_some(Pickle::SurrogateStr(bytes))
        }
    }
}

/// UTF-8 validation with surrogate code points (U+D800..U+DFFF) allowed.
fn surrogatepass_valid(b: &[u8]) -> bool {
    let mut i = 0;
    let cont = |i: usize| b.get(i).is_some_and(|&c| c & 0xc0 == 0x80);
    while i < b.len() {
        let lead = b[i];
        let (len, second_ok) = match lead {
            0x00..=0x7f => (1, true),
            0xc2..=0xdf => (2, cont(i + 1)),
            0xe0 => (3, b.get(i + 1).is_some_and(|&c| (0xa0..=0xbf).contains(&c))),
            // 0xED is where the surrogates live: allowed here, unlike strict UTF-8.
            0xe1..=0xef => (3, cont(i + 1)),
            0xf0 => (4, b.get(i + 1).is_some_and(|&c| (0x90..=0xbf).contains(&c))),
            0xf1..=0xf3 => (4, cont(i + 1)),
            0xf4 => (4, b.get(i + 1).is_some_and(|&c| (0x80..=0x8f).contains(&c))),
            _ => return false,
        };
        if !second_ok || !(2..len).all(|k| cont(i + k)) {
            return false;
        }
        i += len;
    }
    true
}

/// The code points of (already validated) surrogatepass UTF-8.
pub(super) fn code_points(b: &[u8]) -> Vec<u32> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let lead = u32::from(b[i]);
        let c = |k: usize| u32::from(b.get(i + k).copied().unwrap_or(0x80) & 0x3f);
        let (cp, len) = match lead {
            0x00..=0x7f => (lead, 1),
            0xc0..=0xdf => (((lead & 0x1f) << 6) | c(1), 2),
            0xe0..=0xef => (((lead & 0x0f) << 12) | (c(1) << 6) | c(2), 3),
            _ => (((lead & 0x07) << 18) | (c(1) << 12) | (c(2) << 6) | c(3), 4),
        };
        out.push(cp);
        i += len;
    }
    out
}

/// A `str` from code points, surrogates allowed; `None` past U+10FFFF.
pub(super) fn str_from_code_points(cps: &[u32]) -> Option<Pickle> {
    let mut bytes = Vec::with_capacity(cps.len());
    for &cp in cps {
        if (0xd800..=0xdfff).contains(&cp) {
            bytes.extend_from_slice(&[
                0xe0 | (cp >> 12) as u8,
                0x80 | ((cp >> 6) & 0x3f) as u8,
                0x80 | (cp & 0x3f) as u8,
            ]);
        } else {
            let ch = char::from_u32(cp)?;
            bytes.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
        }
    }
    str_from_surrogatepass(bytes)
}

/// `bytes.decode('raw-unicode-escape')`: bytes are Latin-1 code points, except `\uXXXX` and
/// `\UXXXXXXXX` after an odd number of backslashes.
pub(super) fn raw_unicode_escape(data: &[u8]) -> Result<Vec<u32>, &'static str> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        let c = data[i];
        i += 1;
        if c != b'\\' || i >= data.len() {
            out.push(u32::from(c));
            continue;
        }
        let d = data[i];
        i += 1;
        let count = match d {
            b'u' => 4,
            b'U' => 8,
            _ => {
                // A backslash pair (or any other escape) stays as it is.
                out.push(u32::from(c));
                out.push(u32::from(d));
                continue;
            }
        };
        let hex = data
            .get(i..i + count)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .ok_or("truncated \\uXXXX escape")?;
        let value = hex.iter().fold(0u32, |v, &h| {
            (v << 4) | (h as char).to_digit(16).unwrap_or(0)
        });
        if value > 0x10ffff {
            return Err("\\Uxxxxxxxx out of range");
        }
        out.push(value);
        i += count;
    }
    Ok(out)
}

/// `codecs.escape_decode`: the body of a quoted protocol 0 `STRING`.
pub(super) fn escape_decode(data: &[u8]) -> Result<Vec<u8>, &'static str> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        let c = data[i];
        i += 1;
        if c != b'\\' {
            out.push(c);
            continue;
        }
        let Some(&e) = data.get(i) else {
            return Err("trailing \\ in string");
        };
        i += 1;
        match e {
            b'\n' => {}
            b'\\' | b'\'' | b'"' => out.push(e),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b't' => out.push(9),
            b'n' => out.push(10),
            b'r' => out.push(13),
            b'v' => out.push(11),
            b'a' => out.push(7),
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                for _ in 0..2 {
                    match data.get(i) {
                        Some(&o @ b'0'..=b'7') => {
                            v = (v << 3) + u32::from(o - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push(v as u8); // CPython keeps the low byte of \400..\777
            }
            b'x' => {
                let hex = data
                    .get(i..i + 2)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                    .ok_or("invalid \\x escape")?;
                let hi = (hex[0] as char).to_digit(16).unwrap_or(0);
                let lo = (hex[1] as char).to_digit(16).unwrap_or(0);
                out.push((hi * 16 + lo) as u8);
                i += 2;
            }
            _ => {
                // Unknown escapes are kept, backslash included.
                out.push(b'\\');
                out.push(e);
            }
        }
    }
    Ok(out)
}
