#![no_main]
//! The MessagePack value decoder and Python's equality, ordering and hashing over it:
//! round trips, bounded nesting, consistency.
//! The properties: `syncman_protocol::fuzzing::check_value`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| syncman_protocol::fuzzing::check_value(data));
