//! The properties the server's fuzz targets (`fuzz/fuzz_targets/`) check, written once: the
//! targets call these on every input libFuzzer makes, and `tests/fuzz_corpus.rs` replays
//! the committed corpus (`fuzz/corpus/<target>/`) through them under `cargo test`. Each
//! takes arbitrary bytes and panics when a property fails. Not part of the API.
//!
//! The wire below the dialects (framing, handshake, envelopes, values, the pickle codec) is
//! fuzzed by `syncman_protocol::fuzzing`; these targets drive what the node makes of it.
//!
//! - [`check_pickle_requests`]: a CPython client's request frames, one-shot control calls
//!   and calls on up to three proxy connections, through the pickle dialect
//!   (`net/pickle/`) against an in-memory node: every request gets the replies CPython's
//!   server would send, each a well-formed pickle that names no code; the node's books
//!   (sessions, objects, references, bytes, waiters, locks) stay consistent; and the node
//!   still serves a known-good sequence afterwards.

mod pickle_requests;

#[cfg(test)]
pub(crate) use pickle_requests::request;
pub use pickle_requests::{check_pickle_requests, SEPARATOR};

/// A fuzz target: its name (the target and its corpus folder) and its check.
pub use syncman_protocol::fuzzing::Target;

/// Every target.
pub const TARGETS: &[Target] = &[("pickle_requests", check_pickle_requests)];
