#![no_main]
//! The node's and the client's side of CPython's HMAC handshake against arbitrary peer bytes:
//! nobody authenticates without the key; answers and verdicts follow CPython's rules.
//! The properties: `syncman_protocol::fuzzing::check_handshake`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| syncman_protocol::fuzzing::check_handshake(data));
