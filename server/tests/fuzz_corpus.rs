//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) of the server's targets
//! through the same property checks the fuzz targets run (`syncman_server::fuzzing`), so
//! `cargo test` keeps every input the fuzzer found interesting passing, crash reproducers
//! included. The protocol crate's targets are replayed by `protocol/tests/fuzz_corpus.rs`.

use std::path::Path;

use syncman_protocol::fuzzing::replay_corpus;
use syncman_server::fuzzing::TARGETS;

fn replay(target: &str) {
    replay_corpus(
        TARGETS,
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz"),
        target,
    );
}

#[test]
fn pickle_requests_corpus() {
    replay("pickle_requests");
}

#[test]
fn every_target_has_a_corpus_test() {
    let covered = ["pickle_requests"];
    for (name, _) in TARGETS {
        assert!(covered.contains(name), "add a replay test for {name}");
    }
}
