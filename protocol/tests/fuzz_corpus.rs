//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the same property
//! checks the fuzz targets run (`syncman_protocol::fuzzing`), so `cargo test` keeps every
//! input the fuzzer found interesting passing, crash reproducers included.

use std::path::Path;

use syncman_protocol::fuzzing::{replay_corpus, TARGETS};

fn replay(target: &str) {
    replay_corpus(
        TARGETS,
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz"),
        target,
    );
}

#[test]
fn frame_codec_corpus() {
    replay("frame_codec");
}

#[test]
fn handshake_corpus() {
    replay("handshake");
}

#[test]
fn envelope_corpus() {
    replay("envelope");
}

#[test]
fn value_corpus() {
    replay("value");
}

#[test]
fn pickle_corpus() {
    replay("pickle");
}

#[test]
fn every_target_has_a_corpus_test() {
    let covered = ["frame_codec", "handshake", "envelope", "value", "pickle"];
    for (name, _) in TARGETS {
        assert!(covered.contains(name), "add a replay test for {name}");
    }
}
