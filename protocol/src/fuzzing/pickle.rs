//! The pickle codec (the CPython dialect's requests): `check_pickle`.

use crate::pickle::{check_globals, dumps, loads, normalize, Limits, Pickle, PickleErrorKind};

/// Small limits, so the fuzzer reaches them: a request may be any pickle, and the node must
/// turn an oversized one into an error, not into memory.
fn small_limits() -> Limits {
    Limits {
        max_depth: 24,
        max_nodes: 4096,
        max_bytes: 1 << 16,
        max_memo: 256,
        max_stack: 1024,
        max_marks: 24,
    }
}

/// Deepest nesting of a tree; a scalar is 1, as [`Limits::max_depth`] counts.
fn depth(p: &Pickle) -> usize {
    let mut deepest = 0;
    p.for_each_child(|child| deepest = deepest.max(depth(child)));
    1 + deepest
}

/// Input: a pickle, as a CPython client's request would carry it.
///
/// Reading never panics and, under small limits, fails with a limit error rather than
/// building past them. What it reads is in canonical form: written back ([`dumps`]) and read
/// again it is the same tree, and so is its normalised form once normalised.
/// A recursive structure is refused, never cut. Checking its globals never panics, and
/// normalising an accepted tree keeps it accepted (it only rewrites builtin forms).
pub fn check_pickle(data: &[u8]) {
    let limits = small_limits();
    let value = match loads(data, &limits) {
        Ok(value) => value,
        Err(e) => {
            assert!(e.offset <= data.len(), "{e} points past the input");
            if let PickleErrorKind::Limit { limit, .. } = e.kind {
                assert!(limit > 0);
            }
            return;
        }
    };
    assert!(
        depth(&value) <= limits.max_depth,
        "{} levels deep, past the limit",
        depth(&value)
    );
    let written = dumps(&value);
    let back = loads(&written, &Limits::default()).expect("what loads wrote reads back");
    assert_eq!(
        back, value,
        "dumps(loads(x)) does not load to the same tree"
    );
    let accepted = check_globals(&value).is_ok();
    let normal = normalize(value);
    if accepted {
        if let Err(e) = check_globals(&normal) {
            panic!("accepted, but its normal form is refused: {e}");
        }
    }
    let normal_back = loads(&dumps(&normal), &Limits::default())
        .expect("a normalised tree written out reads back");
    assert_eq!(
        normalize(normal_back),
        normal,
        "a normalised tree does not survive a round trip"
    );
}
