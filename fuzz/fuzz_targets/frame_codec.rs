#![no_main]
//! FrameCodec and SkippingFrameCodec on arbitrary byte streams fed in arbitrary pieces, and
//! frames built by FrameBuilder decoding to their payloads.
//! The properties: `syncman_protocol::fuzzing::check_frame_codec`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| syncman_protocol::fuzzing::check_frame_codec(data));
