//! The properties the fuzz targets (`fuzz/fuzz_targets/`) check, written once: the targets
//! call these on every input libFuzzer makes, and `tests/fuzz_corpus.rs` replays the
//! committed corpus (`fuzz/corpus/<target>/`) through them under `cargo test`. Each takes
//! arbitrary bytes and panics when a property fails. Not part of the API.
//!
//! - [`check_frame_codec`]: both frame codecs against a model of the framing, fed in
//!   arbitrary pieces; frames built three ways decode to their payloads.
//! - [`check_handshake`]: the node's and the client's side of the HMAC handshake against a
//!   peer that sends arbitrary frames: nobody authenticates without the key, and every
//!   answer and verdict is the one CPython's rules give.
//! - [`check_envelope`]: the native envelopes (request, cancel, release, heartbeat, hello,
//!   response) decode, re-encode and decode to the same, and their ids can be peeked.
//! - [`check_value`]: MessagePack values round-trip, nesting is bounded, and Python's
//!   equality, ordering and hashing agree with each other.
//! - [`check_pickle`]: the pickle reader never panics and stays within its limits, and what
//!   it reads writes back to itself.

mod envelope;
mod frame_codec;
mod handshake;
mod pickle;
mod value;

pub use envelope::check_envelope;
pub use frame_codec::check_frame_codec;
pub use handshake::check_handshake;
pub use pickle::check_pickle;
pub use value::check_value;

/// A fuzz target: its name (the target and its corpus folder) and its check.
pub type Target = (&'static str, fn(&[u8]));

/// Every target.
pub const TARGETS: &[Target] = &[
    ("frame_codec", check_frame_codec),
    ("handshake", check_handshake),
    ("envelope", check_envelope),
    ("value", check_value),
    ("pickle", check_pickle),
];

/// A small deterministic generator (xorshift64*), seeded from input bytes: it picks split
/// points and lengths, so one input always replays the same way.
struct Rng(u64);

impl Rng {
    fn new(seed: &[u8]) -> Rng {
        let mut s = 0xcbf2_9ce4_8422_2325u64;
        for &b in seed {
            s = (s ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        Rng(s | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
