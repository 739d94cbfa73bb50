#![no_main]
//! The native envelopes (request and its arguments, cancel, release, heartbeat, hello, hello
//! answer, response) and the ids peeked from their heads.
//! The properties: `syncman_protocol::fuzzing::check_envelope`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| syncman_protocol::fuzzing::check_envelope(data));
