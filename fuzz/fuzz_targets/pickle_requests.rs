#![no_main]
//! A CPython client's requests (control calls and proxy connections' calls), through the
//! node's pickle dialect against an in-memory node.
//! The properties: `syncman_server::fuzzing::check_pickle_requests`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| syncman_server::fuzzing::check_pickle_requests(data));
