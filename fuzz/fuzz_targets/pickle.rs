#![no_main]
//! The pickle codec, as a CPython client's request reaches it.
//! The properties: `syncman_protocol::fuzzing::check_pickle`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| syncman_protocol::fuzzing::check_pickle(data));
