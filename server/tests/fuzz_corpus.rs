//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) of the server's targets
//! through the same property checks the fuzz targets run (`syncman_server::fuzzing`), so
//! `cargo test` keeps every input the fuzzer found interesting passing, crash reproducers
//! included. The protocol crate's targets are replayed by `protocol/tests/fuzz_corpus.rs`.

use std::path::{Path, PathBuf};

use syncman_server::fuzzing::TARGETS;

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

/// Runs every file of one target's corpus; fails naming each input whose check failed.
fn replay(target: &str) {
    let (_, check) = TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .unwrap_or_else(|| panic!("no fuzz target {target}"));
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
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
