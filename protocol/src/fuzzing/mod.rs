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

/// Replays every file of `target`'s corpus (`fuzz/corpus/<target>/` under `fuzz_dir`)
/// through its check from `targets`; panics naming each input whose check failed. The
/// corpus replay tests of this crate and the server's call it.
pub fn replay_corpus(targets: &[Target], fuzz_dir: &std::path::Path, target: &str) {
    let (_, check) = targets
        .iter()
        .find(|(name, _)| *name == target)
        .unwrap_or_else(|| panic!("no fuzz target {target}"));
    let dir = fuzz_dir.join("corpus").join(target);
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a corpus entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} holds no inputs", dir.display());
    let mut failed = Vec::new();
    for path in &files {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} {target} inputs failed their checks (messages above):\n{}",
        failed.len(),
        files.len(),
        failed.join("\n")
    );
}

/// Runs `f` to its end on this thread's current-thread runtime (made once per thread): a
/// check drives async code without a runtime of the fuzzer's.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime");
    }
    RUNTIME.with(|rt| rt.block_on(f))
}

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
