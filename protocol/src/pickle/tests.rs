//! Unit tests: each opcode family, the rejections, the limits, and the encoder's round trip.
//! (The CPython interop test is `protocol/tests/pickle_cpython.rs`.)

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

fn load(data: &[u8]) -> Result<Pickle, PickleError> {
    loads(data, &Limits::default())
}

fn ok(data: &[u8]) -> Pickle {
    match load(data) {
        Ok(v) => v,
        Err(e) => panic!("{data:?}: {e}"),
    }
}

fn err(data: &[u8]) -> PickleErrorKind {
    match load(data) {
        Ok(v) => panic!("{data:?} decoded to {v:?}"),
        Err(e) => e.kind,
    }
}

fn s(v: &str) -> Pickle {
    Pickle::Str(v.to_owned())
}

fn int(v: i128) -> Pickle {
    Pickle::Int(v)
}

fn list(v: Vec<Pickle>) -> Pickle {
    Pickle::List(v)
}

fn tuple(v: Vec<Pickle>) -> Pickle {
    Pickle::Tuple(v)
}

fn reduce(callable: Pickle, args: Pickle) -> Pickle {
    Pickle::Reduce {
        callable: Box::new(callable),
        args: Box::new(args),
    }
}

fn is_invalid(kind: &PickleErrorKind, opcode: &str) -> bool {
    matches!(kind, PickleErrorKind::Invalid { opcode: o, .. } if *o == opcode)
}

// ---- framing and meta ----

#[test]
fn proto_and_frame_are_accepted() {
    assert_eq!(
        ok(b"\x80\x04\x95\x02\x00\x00\x00\x00\x00\x00\x00N."),
        Pickle::None
    );
    assert_eq!(ok(b"\x80\x05N."), Pickle::None);
    assert_eq!(ok(b"N."), Pickle::None); // protocol 0 has no PROTO
}

#[test]
fn bad_framing_is_rejected() {
    assert_eq!(err(b"\x80\x06N."), PickleErrorKind::Protocol(6));
    // A frame longer than the input.
    assert_eq!(
        err(b"\x80\x04\x95\xff\x00\x00\x00\x00\x00\x00\x00N."),
        PickleErrorKind::Truncated
    );
    assert_eq!(err(b""), PickleErrorKind::Truncated);
    assert_eq!(err(b"N"), PickleErrorKind::Truncated);
    assert_eq!(err(b"N.N"), PickleErrorKind::TrailingBytes(1));
    assert_eq!(err(b"N.\x00\x00"), PickleErrorKind::TrailingBytes(2));
    assert_eq!(err(b"."), PickleErrorKind::StackUnderflow("STOP"));
    assert_eq!(
        err(b"NN."),
        PickleErrorKind::Unbalanced("values on the stack")
    );
    assert_eq!(err(b"(N."), PickleErrorKind::Unbalanced("an open MARK"));
}

#[test]
fn errors_carry_the_offset_of_the_opcode() {
    let e = load(b"\x80\x04N\xff.").unwrap_err();
    assert_eq!(e.offset, 3);
    assert_eq!(e.kind, PickleErrorKind::UnknownOpcode(0xff));
    assert!(e.to_string().contains("byte 3"), "{e}");
}

#[test]
fn pop_pop_mark_and_dup() {
    assert_eq!(ok(b"K\x01K\x020."), int(1));
    // POP with nothing above the last MARK removes the MARK (as CPython does).
    assert_eq!(ok(b"K\x01(0."), int(1));
    assert_eq!(ok(b"K\x01(K\x02K\x031."), int(1));
    assert_eq!(ok(b"K\x012\x86."), tuple(vec![int(1), int(1)]));
    assert_eq!(err(b"0."), PickleErrorKind::StackUnderflow("POP"));
    assert_eq!(err(b"1N."), PickleErrorKind::MarkNotFound("POP_MARK"));
    assert_eq!(err(b"2."), PickleErrorKind::StackUnderflow("DUP"));
    assert_eq!(err(b"N(2."), PickleErrorKind::StackUnderflow("DUP"));
}

// ---- memo ----

#[test]
fn memo_references_are_copied_into_the_tree() {
    // [a, a] with a = [1], protocol 4: EMPTY_LIST MEMOIZE MARK EMPTY_LIST MEMOIZE
    // BININT1 1 APPEND BINGET 1 APPENDS STOP.
    let v = ok(b"\x80\x04]\x94(]\x94K\x01ah\x01e.");
    let a = list(vec![int(1)]);
    assert_eq!(v, list(vec![a.clone(), a]));
}

#[test]
fn every_memo_opcode() {
    // PUT/GET (protocol 0), BINPUT/BINGET, LONG_BINPUT/LONG_BINGET, MEMOIZE.
    assert_eq!(ok(b"K\x07p12\n0g12\n."), int(7));
    assert_eq!(ok(b"K\x07p007\n0g7\n."), int(7)); // int() allows leading zeros
    assert_eq!(ok(b"K\x07q\x090h\x09."), int(7));
    assert_eq!(ok(b"K\x07r\x00\x00\x01\x000j\x00\x00\x01\x00."), int(7));
    // MEMOIZE twice stores keys 0 and 1, then 2 for the 8.
    assert_eq!(
        ok(b"K\x07\x94\x94K\x08\x94h\x01\x87."),
        tuple(vec![int(7), int(8), int(7)])
    );
    // A key far from the others (kept apart from the small ones) counts in `len(memo)`:
    // the MEMOIZE after it stores key 1.
    assert_eq!(
        ok(b"K\x07r\x00\x00\x01\x000K\x08\x94h\x01j\x00\x00\x01\x00\x87."),
        tuple(vec![int(8), int(8), int(7)])
    );
    assert_eq!(err(b"h\x00."), PickleErrorKind::MemoNotFound(0));
    assert_eq!(err(b"g5\n."), PickleErrorKind::MemoNotFound(5));
    assert!(is_invalid(&err(b"Np-1\n."), "PUT"));
    assert!(is_invalid(&err(b"Npx\n."), "PUT"));
    assert_eq!(err(b"\x94."), PickleErrorKind::StackUnderflow("MEMOIZE"));
    assert_eq!(err(b"(q\x00."), PickleErrorKind::StackUnderflow("BINPUT"));
}

#[test]
fn a_mutation_after_a_memo_reference_is_seen_through_it() {
    // L0 = [] (memo 0); L1 = [L0] (memo 1); POP; L0.append(5); POP; GET 1 → [[5]], as
    // CPython's pickle.loads gives.
    assert_eq!(
        ok(b"]q\x00]q\x01h\x00a0K\x05a0h\x01."),
        list(vec![list(vec![int(5)])])
    );
}

#[test]
fn recursive_structures_are_rejected() {
    let recursive = PickleErrorKind::Recursive;
    // l = []; l.append(l), protocol 4 (from CPython) and protocol 0.
    assert_eq!(
        err(b"\x80\x04\x95\x06\x00\x00\x00\x00\x00\x00\x00]\x94h\x00a."),
        recursive
    );
    assert_eq!(err(b"(lp0\ng0\na."), recursive);
    // d = {}; d['d'] = d, protocol 2.
    assert_eq!(
        err(b"\x80\x02}q\x00X\x01\x00\x00\x00dq\x01h\x00s."),
        recursive
    );
    // t = ([],); t[0].append(t), protocols 0 and 1 (POP/POP_MARK, then a GET).
    assert_eq!(err(b"((lp0\n(g0\ntp1\na00g1\n."), recursive);
    assert_eq!(err(b"(]q\x00(h\x00tq\x01a1h\x01."), recursive);
    // Through DUP, a set, and an object whose state holds it.
    assert_eq!(err(b"]2a."), recursive);
    assert_eq!(err(b"\x8f\x94(h\x00\x90."), recursive);
    assert_eq!(err(b"cm\nC\n)\x81\x94}(\x8c\x04selfh\x00ub."), recursive);
    assert!(recursive
        .to_string()
        .contains("recursive structures are not supported"));
}

#[test]
fn a_shared_reference_that_is_not_a_cycle_is_fine() {
    // x = [1]; [x, [x]]: x reached twice, on different paths.
    let v = ok(b"](]\x94K\x01a]h\x00ae.");
    let x = list(vec![int(1)]);
    assert_eq!(v, list(vec![x.clone(), list(vec![x])]));
}

// ---- scalars ----

#[test]
fn scalars() {
    assert_eq!(ok(b"N."), Pickle::None);
    assert_eq!(ok(b"\x88."), Pickle::Bool(true));
    assert_eq!(ok(b"\x89."), Pickle::Bool(false));
    assert_eq!(ok(b"I01\n."), Pickle::Bool(true));
    assert_eq!(ok(b"I00\n."), Pickle::Bool(false));
    assert_eq!(ok(b"I0\n."), int(0));
    assert_eq!(ok(b"I-123\n."), int(-123));
    assert_eq!(ok(b"I99999999999\n."), int(99_999_999_999));
    assert!(is_invalid(&err(b"I007\n."), "INT")); // int('007', 0) is an error
    assert!(is_invalid(&err(b"I0x10\n."), "INT"));
    assert!(is_invalid(&err(b"I\n."), "INT"));
    assert_eq!(err(b"I12"), PickleErrorKind::Truncated);
    assert_eq!(ok(b"J\xff\xff\xff\xff."), int(-1));
    assert_eq!(ok(b"J\x00\x00\x00\x80."), int(i128::from(i32::MIN)));
    assert_eq!(ok(b"K\xff."), int(255));
    assert_eq!(ok(b"M\xff\xff."), int(65535));
    assert_eq!(ok(b"L18446744073709551616L\n."), int(1 << 64));
    assert_eq!(ok(b"L-5\n."), int(-5));
    assert_eq!(ok(b"\x8a\x00."), int(0));
    assert_eq!(ok(b"\x8a\x01\xff."), int(-1));
    assert_eq!(
        ok(b"\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01."),
        int(1 << 64)
    );
    assert_eq!(ok(b"\x8b\x02\x00\x00\x00\x00\x80."), int(-32768));
    assert!(is_invalid(&err(b"\x8b\xff\xff\xff\xff."), "LONG4"));
    assert_eq!(ok(b"F1.5\n."), Pickle::Float(1.5));
    assert_eq!(ok(b"F-0.0\n."), Pickle::Float(-0.0));
    assert_ne!(ok(b"F-0.0\n."), Pickle::Float(0.0));
    assert_eq!(ok(b"Finf\n."), Pickle::Float(f64::INFINITY));
    assert_eq!(ok(b"Fnan\n."), Pickle::Float(f64::NAN));
    assert_eq!(ok(b"F1e+16\n."), Pickle::Float(1e16));
    assert!(is_invalid(&err(b"Fabc\n."), "FLOAT"));
    assert_eq!(ok(b"G?\xf8\x00\x00\x00\x00\x00\x00."), Pickle::Float(1.5));
    // A NaN's payload survives BINFLOAT both ways.
    let odd_nan = f64::from_bits(0x7ff8_dead_beef_0001);
    let v = ok(&dumps(&Pickle::Float(odd_nan)));
    assert!(matches!(v, Pickle::Float(f) if f.to_bits() == odd_nan.to_bits()));
}

#[test]
fn big_ints() {
    // -2**100 as CPython's protocol 2 writes it.
    let v = ok(b"\x80\x02\x8a\x0d\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xf0.");
    assert_eq!(v, int(-(1i128 << 100)));
    // 2**127 does not fit an i128: minimal two's complement, a 0 sign byte on top.
    let mut le = vec![0u8; 16];
    le[15] = 0x80;
    le.push(0);
    let mut op = vec![0x8a, 17];
    op.extend_from_slice(&le);
    op.push(b'.');
    assert_eq!(ok(&op), Pickle::BigInt(le.clone()));
    // Redundant sign bytes are dropped: the same value padded to 40 bytes.
    let mut padded = le.clone();
    padded.resize(40, 0);
    let mut op = vec![0x8a, 40];
    op.extend_from_slice(&padded);
    op.push(b'.');
    assert_eq!(ok(&op), Pickle::BigInt(le));
    // And a padded small value is an Int.
    assert_eq!(ok(b"\x8a\x04\x05\x00\x00\x00."), int(5));
    assert_eq!(ok(b"\x8a\x04\xfb\xff\xff\xff."), int(-5));
    // 10**30 and -(10**40) in decimal (protocol 0 LONG) and back out.
    assert_eq!(
        ok(b"L1000000000000000000000000000000L\n."),
        int(10i128.pow(30))
    );
    let big = ok(b"L-10000000000000000000000000000000000000000L\n.");
    assert!(
        matches!(&big, Pickle::BigInt(b) if b.len() == 17 && b[16] == 0xe2),
        "{big:?}"
    );
    assert_eq!(ok(&dumps(&big)), big);
    // Python refuses more than 4300 digits; so do we.
    let mut long = b"L".to_vec();
    long.extend(std::iter::repeat_n(b'9', 4301));
    long.extend_from_slice(b"\n.");
    assert!(is_invalid(&err(&long), "LONG"));
    assert_eq!(Pickle::int_from_le_bytes(&[]), int(0));
    assert_eq!(Pickle::int_from_le_bytes(&[0xff; 30]), int(-1));
}

#[test]
fn int_encoding_follows_cpython() {
    let cases: &[(i128, &[u8])] = &[
        (0, b"K\x00"),
        (255, b"K\xff"),
        (256, b"M\x00\x01"),
        (65535, b"M\xff\xff"),
        (65536, b"J\x00\x00\x01\x00"),
        (-1, b"J\xff\xff\xff\xff"),
        (-(1 << 31), b"J\x00\x00\x00\x80"),
        (1 << 31, b"\x8a\x05\x00\x00\x00\x80\x00"),
        (
            i128::MIN,
            b"\x8a\x10\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80",
        ),
    ];
    for &(v, expected) in cases {
        let out = dumps(&int(v));
        assert_eq!(&out[2..out.len() - 1], expected, "{v}");
        assert_eq!(ok(&out), int(v));
    }
}

// ---- strings and bytes ----

#[test]
fn strings() {
    assert_eq!(ok(b"\x8c\x03abc."), s("abc"));
    assert_eq!(ok(b"X\x05\x00\x00\x00caf\xc3\xa9."), s("caf\u{e9}"));
    // A length one too long swallows the STOP.
    assert_eq!(
        err(b"X\x06\x00\x00\x00caf\xc3\xa9."),
        PickleErrorKind::Truncated
    );
    // One too short cuts the \xc3\xa9 in half.
    assert!(is_invalid(
        &err(b"X\x04\x00\x00\x00caf\xc3\xa9."),
        "BINUNICODE"
    ));
}

#[test]
fn string_opcodes() {
    assert_eq!(ok(b"\x8d\x02\x00\x00\x00\x00\x00\x00\x00hi."), s("hi"));
    assert_eq!(
        ok(b"Vcaf\xe9 \\u20ac \\U0001f600\n."),
        s("caf\u{e9} \u{20ac} \u{1f600}")
    );
    // raw-unicode-escape: an even run of backslashes escapes nothing.
    assert_eq!(ok(b"Va\\\\u0041\n."), s("a\\\\u0041"));
    assert!(is_invalid(&err(b"V\\u12\n."), "UNICODE"));
    assert!(is_invalid(&err(b"V\\U00110000\n."), "UNICODE"));
    // Python 2 strings: ASCII only (CPython's default encoding='ASCII').
    assert_eq!(ok(b"S'a\\n\\x41\\101\\'b'\n."), s("a\nAA'b"));
    assert_eq!(ok(b"S\"q\"\n."), s("q"));
    assert!(is_invalid(&err(b"Sabc\n."), "STRING"));
    assert!(is_invalid(&err(b"S'\\xZZ'\n."), "STRING"));
    assert!(is_invalid(&err(b"S'\\x80'\n."), "STRING"));
    assert_eq!(ok(b"T\x02\x00\x00\x00ab."), s("ab"));
    assert_eq!(ok(b"U\x02ab."), s("ab"));
    assert!(is_invalid(&err(b"U\x01\xff."), "SHORT_BINSTRING"));
    assert!(is_invalid(&err(b"T\xff\xff\xff\xffab."), "BINSTRING"));
    // Invalid UTF-8 (not a surrogate either) is rejected, as CPython does.
    assert!(is_invalid(&err(b"\x8c\x01\xff."), "SHORT_BINUNICODE"));
    assert!(is_invalid(&err(b"\x8c\x02\xc0\x80."), "SHORT_BINUNICODE")); // overlong
}

#[test]
fn surrogates_round_trip_exactly() {
    // '\ud800' as CPython's protocol 4 writes it ('surrogatepass').
    let lone = ok(b"\x8c\x03\xed\xa0\x80.");
    assert_eq!(lone, Pickle::SurrogateStr(vec![0xed, 0xa0, 0x80]));
    assert_eq!(lone.code_points(), Some(vec![0xd800]));
    assert_eq!(ok(&dumps(&lone)), lone);
    // Protocol 0 spells it \ud800; the same value.
    assert_eq!(ok(b"V\\ud800\n."), lone);
    // A surrogate *pair* written as two escapes stays two code points, as in Python.
    let pair = ok(b"V\\ud83d\\ude00\n.");
    assert_eq!(pair.code_points(), Some(vec![0xd83d, 0xde00]));
    assert_ne!(pair, s("\u{1f600}"));
    assert_eq!(ok(&dumps(&pair)), pair);
    // Mixed with ordinary text; constructors agree with the decoder.
    let mixed = Pickle::str_from_code_points(&[0x61, 0xdfff, 0x1f600]).unwrap();
    assert!(matches!(mixed, Pickle::SurrogateStr(_)));
    assert_eq!(ok(&dumps(&mixed)), mixed);
    assert_eq!(
        Pickle::str_from_surrogatepass("ok".as_bytes().to_vec()),
        Some(s("ok"))
    );
    assert_eq!(Pickle::str_from_surrogatepass(vec![0xff]), None);
    assert_eq!(Pickle::str_from_code_points(&[0x110000]), None);
}

#[test]
fn bytes_opcodes() {
    assert_eq!(ok(b"C\x02\x00\xff."), Pickle::Bytes(vec![0, 0xff]));
    assert_eq!(ok(b"B\x01\x00\x00\x00x."), Pickle::Bytes(b"x".to_vec()));
    assert_eq!(
        ok(b"\x8e\x01\x00\x00\x00\x00\x00\x00\x00x."),
        Pickle::Bytes(b"x".to_vec())
    );
    assert_eq!(
        ok(b"\x96\x01\x00\x00\x00\x00\x00\x00\x00x."),
        Pickle::ByteArray(b"x".to_vec())
    );
}

#[test]
fn declared_lengths_beyond_the_input_allocate_nothing() {
    let start = Instant::now();
    for data in [
        &b"\x8e\xff\xff\xff\xff\xff\xff\xff\x7fx."[..],
        b"\x96\xff\xff\xff\xff\xff\xff\xff\xffx.",
        b"\x8d\xff\xff\xff\xff\xff\xff\xff\xffx.",
        b"X\xff\xff\xff\xffx.",
        b"B\xff\xff\xff\xffx.",
        b"\x8b\xff\xff\xff\x7fx.",
        b"T\xff\xff\xff\x7fx.",
    ] {
        assert_eq!(err(data), PickleErrorKind::Truncated, "{data:?}");
    }
    assert!(start.elapsed() < Duration::from_secs(1));
}

// ---- containers ----

#[test]
fn containers() {
    assert_eq!(ok(b")."), tuple(vec![]));
    assert_eq!(ok(b"K\x01\x85."), tuple(vec![int(1)]));
    assert_eq!(ok(b"K\x01K\x02\x86."), tuple(vec![int(1), int(2)]));
    assert_eq!(
        ok(b"K\x01K\x02K\x03\x87."),
        tuple(vec![int(1), int(2), int(3)])
    );
    assert_eq!(
        ok(b"(K\x01K\x02K\x03K\x04t."),
        tuple((1..=4).map(int).collect())
    );
    assert_eq!(ok(b"]."), list(vec![]));
    assert_eq!(ok(b"(K\x01K\x02l."), list(vec![int(1), int(2)]));
    assert_eq!(
        ok(b"]K\x01a(K\x02K\x03e."),
        list((1..=3).map(int).collect())
    );
    assert_eq!(ok(b"}."), Pickle::Dict(vec![]));
    let kv = Pickle::Dict(vec![(s("a"), int(1)), (s("b"), int(2))]);
    assert_eq!(ok(b"}\x8c\x01aK\x01s(\x8c\x01bK\x02u."), kv);
    assert_eq!(ok(b"(\x8c\x01aK\x01\x8c\x01bK\x02d."), kv);
    assert!(is_invalid(&err(b"(K\x01d."), "DICT"));
    assert!(is_invalid(&err(b"}(K\x01u."), "SETITEMS"));
    assert_eq!(
        ok(b"\x8f(K\x01K\x02\x90."),
        Pickle::Set(vec![int(1), int(2)])
    );
    assert_eq!(ok(b"(K\x03\x91."), Pickle::FrozenSet(vec![int(3)]));
    // Items go onto plain containers only.
    assert!(is_invalid(&err(b")K\x01a."), "APPEND"));
    assert!(is_invalid(&err(b"]K\x01K\x02s."), "SETITEM"));
    assert!(is_invalid(&err(b"(\x91(K\x01\x90."), "ADDITEMS"));
    assert!(is_invalid(&err(b"K\x01(K\x02e."), "APPENDS"));
}

#[test]
fn stack_and_mark_misuse() {
    assert_eq!(err(b"K\x01t."), PickleErrorKind::MarkNotFound("TUPLE"));
    assert_eq!(err(b"]e."), PickleErrorKind::MarkNotFound("APPENDS"));
    assert_eq!(err(b"\x85."), PickleErrorKind::StackUnderflow("TUPLE1"));
    // Values below a MARK are out of reach.
    assert_eq!(
        err(b"K\x01(\x85."),
        PickleErrorKind::StackUnderflow("TUPLE1")
    );
    assert_eq!(err(b"](a."), PickleErrorKind::StackUnderflow("APPEND"));
    assert_eq!(err(b"](K\x01a."), PickleErrorKind::StackUnderflow("APPEND"));
    assert_eq!(err(b"NR."), PickleErrorKind::StackUnderflow("REDUCE"));
    assert_eq!(
        err(b"(o."),
        PickleErrorKind::Invalid {
            opcode: "OBJ",
            why: "no class after the MARK".into()
        }
    );
}

// ---- objects ----

#[test]
fn objects_stay_inert() {
    let point = global("m", "Point");
    assert_eq!(ok(b"cm\nPoint\n."), point);
    assert_eq!(ok(b"\x8c\x01m\x8c\x05Point\x93."), point);
    assert!(is_invalid(&err(b"K\x01\x8c\x01x\x93."), "STACK_GLOBAL"));
    assert!(is_invalid(&err(b"cm\xff\nx\n."), "GLOBAL"));
    assert_eq!(
        ok(b"cm\nPoint\nK\x01K\x02\x86R."),
        reduce(point.clone(), tuple(vec![int(1), int(2)]))
    );
    assert_eq!(
        ok(b"cm\nPoint\n)\x81."),
        Pickle::NewObj {
            class: Box::new(point.clone()),
            args: Box::new(tuple(vec![])),
            kwargs: None,
        }
    );
    assert_eq!(
        ok(b"cm\nPoint\n)}\x92."),
        Pickle::NewObj {
            class: Box::new(point.clone()),
            args: Box::new(tuple(vec![])),
            kwargs: Some(Box::new(Pickle::Dict(vec![]))),
        }
    );
    let state = Pickle::Dict(vec![(s("x"), int(1))]);
    assert_eq!(
        ok(b"cm\nPoint\n)\x81}\x8c\x01xK\x01sb."),
        Pickle::Build {
            object: Box::new(Pickle::NewObj {
                class: Box::new(point.clone()),
                args: Box::new(tuple(vec![])),
                kwargs: None,
            }),
            state: Box::new(state),
        }
    );
    // Protocol 0/1 instances: OBJ and INST are the same node.
    let obj = Pickle::Obj {
        class: Box::new(point.clone()),
        args: vec![int(1)],
    };
    assert_eq!(ok(b"(cm\nPoint\nK\x01o."), obj);
    assert_eq!(ok(b"(K\x01im\nPoint\n."), obj);
    assert_eq!(ok(&dumps(&obj)), obj);
    // BUILD sets state on objects only.
    assert!(is_invalid(&err(b"]}b."), "BUILD"));
    assert!(is_invalid(&err(b"cm\nC\n}b."), "BUILD"));
}

#[test]
fn items_onto_opaque_objects_are_kept() {
    // A list subclass: NEWOBJ, then APPENDS batches and a single APPEND, merged; then BUILD.
    let data = b"cm\nL\n)\x81(K\x01K\x02eK\x03a}b.";
    let new = Pickle::NewObj {
        class: Box::new(global("m", "L")),
        args: Box::new(tuple(vec![])),
        kwargs: None,
    };
    let expected = Pickle::Build {
        object: Box::new(Pickle::Appends {
            target: Box::new(new.clone()),
            items: (1..=3).map(int).collect(),
        }),
        state: Box::new(Pickle::Dict(vec![])),
    };
    assert_eq!(ok(data), expected);
    assert_eq!(ok(&dumps(&expected)), expected);
    // A dict subclass (SETITEM + SETITEMS) and a set subclass (ADDITEMS).
    let d = ok(b"cm\nD\n)\x81K\x01K\x02s(K\x03K\x04u.");
    assert_eq!(
        d,
        Pickle::SetItems {
            target: Box::new(Pickle::NewObj {
                class: Box::new(global("m", "D")),
                args: Box::new(tuple(vec![])),
                kwargs: None,
            }),
            items: vec![(int(1), int(2)), (int(3), int(4))],
        }
    );
    assert_eq!(ok(&dumps(&d)), d);
    let set = ok(b"cm\nS\n)R(K\x01\x90.");
    assert_eq!(
        set,
        Pickle::AddItems {
            target: Box::new(reduce(global("m", "S"), tuple(vec![]))),
            items: vec![int(1)],
        }
    );
    assert_eq!(ok(&dumps(&set)), set);
    // The memo sees the items appended after MEMOIZE.
    let shared = ok(b"(cm\nL\n)\x81\x94K\x01ah\x00t.");
    let Pickle::Tuple(items) = &shared else {
        panic!("{shared:?}")
    };
    assert_eq!(items[0], items[1]);
    assert!(matches!(items[0], Pickle::Appends { .. }));
}

#[test]
fn protocol_0_to_2_names_are_translated() {
    // What `pickle.dumps(KeyError('x'), 0)` writes.
    let v = ok(b"cexceptions\nKeyError\np0\n(Vx\np1\ntp2\nRp3\n.");
    assert_eq!(v, exception("builtins", "KeyError", vec![s("x")]));
    assert_eq!(
        ok(b"\x80\x02c__builtin__\nxrange\n."),
        global("builtins", "range")
    );
    assert_eq!(
        ok(b"\x80\x02ccopy_reg\n_reconstructor\n."),
        global("copyreg", "_reconstructor")
    );
    assert_eq!(ok(b"\x80\x02cQueue\nEmpty\n."), global("queue", "Empty"));
    // Protocol 3 and later are taken literally, as CPython does.
    assert_eq!(
        ok(b"\x80\x03c__builtin__\nset\n."),
        global("__builtin__", "set")
    );
}

#[test]
fn refused_opcodes() {
    let unsupported = |data: &[u8], name: &str| match err(data) {
        PickleErrorKind::Unsupported { opcode, .. } => assert_eq!(opcode, name),
        other => panic!("{other:?}"),
    };
    unsupported(b"P1\n.", "PERSID");
    unsupported(
        b"N Q."
            .as_slice()
            .get(1..)
            .map(|_| b"NQ.".as_slice())
            .unwrap(),
        "BINPERSID",
    );
    unsupported(b"\x82\x01.", "EXT1");
    unsupported(b"\x83\x01\x00.", "EXT2");
    unsupported(b"\x84\x01\x00\x00\x00.", "EXT4");
    unsupported(b"\x97.", "NEXT_BUFFER");
    unsupported(b"N\x98.", "READONLY_BUFFER");
    for op in [0x00u8, b'A', b'z', 0x99, 0xff] {
        assert_eq!(err(&[op, b'.']), PickleErrorKind::UnknownOpcode(op));
    }
}

// ---- limits ----

/// `depth` nested lists: `[[[...]]]`.
fn nested_lists(depth: usize) -> Vec<u8> {
    let mut data = vec![b']'; depth];
    data.extend(std::iter::repeat_n(b'a', depth - 1));
    data.push(b'.');
    data
}

#[test]
fn depth_limit() {
    let limits = Limits::default();
    assert!(loads(&nested_lists(limits.max_depth), &limits).is_ok());
    let e = loads(&nested_lists(limits.max_depth + 1), &limits).unwrap_err();
    assert_eq!(
        e.kind,
        PickleErrorKind::Limit {
            what: "nested too deeply",
            limit: 200
        }
    );
    // Deep through opaque wrappers too: BUILD on BUILD on ...
    let mut data = b"cm\nC\n)\x81".to_vec();
    for _ in 0..1000 {
        data.extend_from_slice(b"Nb");
    }
    data.push(b'.');
    assert!(matches!(
        err(&data),
        PickleErrorKind::Limit {
            what: "nested too deeply",
            ..
        }
    ));
    // A million nested lists fail fast, without recursion.
    let start = Instant::now();
    let deep = nested_lists(1_000_000);
    assert!(matches!(err(&deep), PickleErrorKind::Limit { .. }));
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_tree_at_the_depth_limit_is_safe_on_a_small_stack() {
    // Decoding never recurses; clone, compare, encode, normalize and drop recurse once per
    // level. Measured at depth 200: clone < 384 KiB in debug builds, < 64 KiB optimised; the
    // rest less. Tokio's workers have 2 MiB.
    let handle = std::thread::Builder::new()
        .stack_size(512 * 1024)
        .spawn(|| {
            let limits = Limits::default();
            let v = loads(&nested_lists(limits.max_depth), &limits).unwrap();
            let copy = v.clone();
            assert_eq!(copy, v);
            assert_eq!(loads(&dumps(&v), &limits).unwrap(), v);
            let normal = normalize(copy);
            drop(normal);
            drop(v);
        })
        .unwrap();
    handle.join().unwrap();
}

/// `levels` doublings of a memoized list: 2^levels leaves once expanded.
fn billion_laughs(levels: usize) -> Vec<u8> {
    let mut data = b"\x80\x04]\x940".to_vec(); // memo 0 = []
    for level in 0..levels {
        // memo level+1 = [memo level, memo level]
        data.extend_from_slice(&[b'(', b'h', level as u8, b'h', level as u8, b'l', 0x94, b'0']);
    }
    data.extend_from_slice(&[b'h', levels as u8, b'.']);
    data
}

#[test]
fn billion_laughs_hits_the_node_limit_fast() {
    let start = Instant::now();
    let e = load(&billion_laughs(60)).unwrap_err();
    assert_eq!(
        e.kind,
        PickleErrorKind::Limit {
            what: "too many objects",
            limit: 1 << 20
        }
    );
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "{:?}",
        start.elapsed()
    );
    // Just under the limit it decodes: 2^19 leaves + 2^19 - 1 lists... plus the top.
    assert!(load(&billion_laughs(19)).is_ok());
    assert!(load(&billion_laughs(20)).is_err());
}

#[test]
fn shared_strings_count_against_the_byte_limit() {
    // A 1000-byte string referenced 2^12 times through memo doublings: 4 MB expanded.
    let mut data = b"\x80\x04X\xe8\x03\x00\x00".to_vec();
    data.extend(std::iter::repeat_n(b'x', 1000));
    data.extend_from_slice(b"\x940");
    for level in 0..12u8 {
        data.extend_from_slice(&[b'h', level, b'h', level, 0x86, 0x94, b'0']);
    }
    data.extend_from_slice(b"h\x0c.");
    let small = Limits {
        max_bytes: 1 << 20,
        ..Limits::default()
    };
    let e = loads(&data, &small).unwrap_err();
    assert!(matches!(e.kind, PickleErrorKind::Limit { limit, .. } if limit == 1 << 20));
    assert!(loads(&data, &Limits::default()).is_ok());
}

#[test]
fn memo_stack_and_mark_limits() {
    let tight = Limits {
        max_memo: 2,
        max_stack: 3,
        max_marks: 2,
        max_nodes: 5,
        ..Limits::default()
    };
    assert!(loads(b"N\x94\x94.", &tight).is_ok());
    assert!(loads(b"N\x94q\x00\x94.", &tight).is_ok()); // overwriting is not a new entry
    let kind = |data: &[u8]| loads(data, &tight).unwrap_err().kind;
    assert!(matches!(
        kind(b"N\x94\x94\x94."),
        PickleErrorKind::Limit {
            what: "too many memo entries",
            ..
        }
    ));
    assert!(matches!(
        kind(b"NNNN."),
        PickleErrorKind::Limit {
            what: "unpickling stack too large",
            ..
        }
    ));
    assert!(matches!(
        kind(b"(((t."),
        PickleErrorKind::Limit {
            what: "too many open MARKs",
            ..
        }
    ));
    assert!(matches!(
        kind(b"N0N0N0N0N0N."),
        PickleErrorKind::Limit {
            what: "too many objects",
            ..
        }
    ));
}

// ---- encoder ----

#[test]
fn encoder_shapes() {
    // KeyError('x'): GLOBAL, args tuple, REDUCE.
    assert_eq!(
        dumps(&exception("builtins", "KeyError", vec![s("x")])),
        b"\x80\x04cbuiltins\nKeyError\n\x8c\x01x\x85R.".to_vec()
    );
    // Token: GLOBAL, (), NEWOBJ, (typeid, address, id), BUILD.
    let t = token("dict", tuple(vec![s("127.0.0.1"), int(50111)]), "7f00");
    assert_eq!(
        dumps(&t),
        b"\x80\x04cmultiprocessing.managers\nToken\n)\x81\x8c\x04dict\x8c\x09127.0.0.1M\xbf\xc3\x86\x8c\x047f00\x87b.".to_vec()
    );
    // Containers as CPython writes them.
    assert_eq!(dumps(&list(vec![int(1)])), b"\x80\x04]K\x01a.".to_vec());
    assert_eq!(
        dumps(&list(vec![int(1), int(2)])),
        b"\x80\x04](K\x01K\x02e.".to_vec()
    );
    assert_eq!(
        dumps(&Pickle::Dict(vec![(int(1), int(2))])),
        b"\x80\x04}K\x01K\x02s.".to_vec()
    );
    assert_eq!(dumps(&Pickle::Set(vec![])), b"\x80\x04\x8f.".to_vec());
    // A bytearray needs protocol 5's BYTEARRAY8.
    assert_eq!(
        dumps(&Pickle::ByteArray(b"ab".to_vec())),
        b"\x80\x05\x96\x02\x00\x00\x00\x00\x00\x00\x00ab.".to_vec()
    );
    // A name with a newline cannot be a GLOBAL line: STACK_GLOBAL.
    let odd = global("m", "a\nb");
    assert_eq!(dumps(&odd), b"\x80\x04\x8c\x01m\x8c\x03a\nb\x93.".to_vec());
    assert_eq!(ok(&dumps(&odd)), odd);
    // Long strings and bytes switch to 4-byte lengths.
    let long = s(&"y".repeat(300));
    assert_eq!(&dumps(&long)[2..7], b"X\x2c\x01\x00\x00");
    assert_eq!(ok(&dumps(&long)), long);
    let long = Pickle::Bytes(vec![7; 300]);
    assert_eq!(&dumps(&long)[2..7], b"B\x2c\x01\x00\x00");
    assert_eq!(ok(&dumps(&long)), long);
    let big = Pickle::int_from_le_bytes(&[0x55; 300]);
    assert_eq!(&dumps(&big)[2..7], b"\x8b\x2c\x01\x00\x00");
    assert_eq!(ok(&dumps(&big)), big);
}

/// A random value in canonical form (see [`Pickle`]).
fn random_value(rng: &mut StdRng, depth: usize) -> Pickle {
    let leaf = depth == 0 || rng.gen_bool(0.35);
    if leaf {
        return match rng.gen_range(0..12) {
            0 => Pickle::None,
            1 => Pickle::Bool(rng.gen()),
            2 => int(rng.gen_range(-70000..70000)),
            3 => int(rng.gen::<i128>() >> rng.gen_range(0..127)),
            4 => {
                let len = rng.gen_range(17..300);
                let bytes: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
                Pickle::int_from_le_bytes(&bytes)
            }
            5 => Pickle::Float(f64::from_bits(rng.gen())),
            6 => {
                let cps: Vec<u32> = (0..rng.gen_range(0..8))
                    .map(|_| match rng.gen_range(0..4) {
                        0 => rng.gen_range(0xd800..0xe000),
                        1 => rng.gen_range(0..0x80),
                        2 => rng.gen_range(0x80..0x10000),
                        _ => rng.gen_range(0x10000..0x110000),
                    })
                    .collect();
                Pickle::str_from_code_points(&cps).unwrap()
            }
            7 => Pickle::Bytes((0..rng.gen_range(0..10)).map(|_| rng.gen()).collect()),
            8 => Pickle::ByteArray((0..rng.gen_range(0..10)).map(|_| rng.gen()).collect()),
            9 => global(["m", "a.b", "x\ny"][rng.gen_range(0..3)], "N"),
            10 => s(&"z".repeat(rng.gen_range(0..400))),
            _ => tuple(vec![]),
        };
    }
    let d = depth - 1;
    let many = |rng: &mut StdRng| -> Vec<Pickle> {
        (0..rng.gen_range(0..5))
            .map(|_| random_value(rng, d))
            .collect()
    };
    let pairs = |rng: &mut StdRng| -> Vec<(Pickle, Pickle)> {
        (0..rng.gen_range(0..4))
            .map(|_| (random_value(rng, d), random_value(rng, d)))
            .collect()
    };
    let b = |rng: &mut StdRng| Box::new(random_value(rng, d));
    match rng.gen_range(0..13) {
        0 => Pickle::Tuple(many(rng)),
        1 => Pickle::List(many(rng)),
        2 => Pickle::Dict(pairs(rng)),
        3 => Pickle::Set(many(rng)),
        4 => Pickle::FrozenSet(many(rng)),
        5 => Pickle::Reduce {
            callable: b(rng),
            args: b(rng),
        },
        6 => Pickle::NewObj {
            class: b(rng),
            args: b(rng),
            kwargs: rng.gen_bool(0.5).then(|| b(rng)),
        },
        7 => Pickle::Obj {
            class: b(rng),
            args: many(rng),
        },
        8 => Pickle::Build {
            object: Box::new(random_opaque(rng, d)),
            state: b(rng),
        },
        9 => match random_opaque(rng, d) {
            Pickle::Appends { target, .. } => Pickle::Appends {
                target,
                items: many(rng),
            },
            other => Pickle::Appends {
                target: Box::new(other),
                items: many(rng),
            },
        },
        10 => match random_opaque(rng, d) {
            Pickle::SetItems { target, .. } => Pickle::SetItems {
                target,
                items: pairs(rng),
            },
            other => Pickle::SetItems {
                target: Box::new(other),
                items: pairs(rng),
            },
        },
        11 => match random_opaque(rng, d) {
            Pickle::AddItems { target, .. } => Pickle::AddItems {
                target,
                items: many(rng),
            },
            other => Pickle::AddItems {
                target: Box::new(other),
                items: many(rng),
            },
        },
        _ => Pickle::Str("leaf".into()),
    }
}

/// An opaque object (what BUILD and the item opcodes may wrap).
fn random_opaque(rng: &mut StdRng, depth: usize) -> Pickle {
    let v = random_value(rng, depth);
    match v {
        Pickle::Reduce { .. }
        | Pickle::NewObj { .. }
        | Pickle::Obj { .. }
        | Pickle::Build { .. }
        | Pickle::Appends { .. }
        | Pickle::SetItems { .. }
        | Pickle::AddItems { .. } => v,
        other => reduce(global("m", "f"), tuple(vec![other])),
    }
}

#[test]
fn loads_inverts_dumps_for_random_canonical_values() {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    for i in 0..3000 {
        let value = random_value(&mut rng, 6);
        let data = dumps(&value);
        match load(&data) {
            Ok(back) => assert_eq!(back, value, "case {i}"),
            Err(e) => panic!("case {i}: {e}\n{value:?}"),
        }
    }
}

#[test]
fn truncating_any_encoding_is_an_error_not_a_panic() {
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..200 {
        let data = dumps(&random_value(&mut rng, 4));
        for cut in 0..data.len() {
            assert!(load(&data[..cut]).is_err());
        }
        // Random corruption: any result, never a panic.
        let mut bad = data.clone();
        let at = rng.gen_range(0..bad.len());
        bad[at] = rng.gen();
        let _ = load(&bad);
    }
}

// ---- shapes ----

#[test]
fn token_and_proxy_recognisers() {
    let address = tuple(vec![s("127.0.0.1"), int(50111)]);
    let t = token("Queue", address.clone(), "7f5a");
    let r = as_token(&t).unwrap();
    assert_eq!((r.typeid, r.address, r.id), ("Queue", &address, "7f5a"));
    // Protocol 0's form of the same token (what CPython writes), after decoding.
    let p0 = ok(b"ccopy_reg\n_reconstructor\np0\n(cmultiprocessing.managers\nToken\np1\nc__builtin__\nobject\np2\nNtp3\nRp4\n(Vdict\np5\n(V127.0.0.1\np6\nI5000\ntp7\nVabc\np8\ntp9\nb.");
    let r = as_token(&p0).unwrap();
    assert_eq!((r.typeid, r.id), ("dict", "abc"));
    assert_eq!(r.address, &tuple(vec![s("127.0.0.1"), int(5000)]));
    assert!(as_token(&exception("builtins", "KeyError", vec![])).is_none());

    let kwds = Pickle::Dict(vec![(s("exposed"), tuple(vec![s("get")]))]);
    let proxy = reduce(
        global(MANAGERS, "RebuildProxy"),
        tuple(vec![
            global(MANAGERS, "AutoProxy"),
            t.clone(),
            s("pickle"),
            kwds.clone(),
        ]),
    );
    let p = as_rebuild_proxy(&proxy).unwrap();
    assert_eq!(p.func, &global(MANAGERS, "AutoProxy"));
    assert_eq!(p.token.id, "7f5a");
    assert_eq!(p.serializer, "pickle");
    assert_eq!(p.kwds, &kwds);
    assert!(as_rebuild_proxy(&t).is_none());
}

#[test]
fn slice_range_complex_recognisers() {
    let call = |name: &str, args: Vec<Pickle>| reduce(global("builtins", name), tuple(args));
    assert_eq!(
        as_slice(&call("slice", vec![int(1), Pickle::None, Pickle::None])),
        Some(SliceArgs {
            start: Some(1),
            stop: None,
            step: None
        })
    );
    assert_eq!(
        as_slice(&call("slice", vec![int(5)])),
        Some(SliceArgs {
            start: None,
            stop: Some(5),
            step: None
        })
    );
    assert_eq!(as_slice(&call("slice", vec![s("a")])), None);
    assert_eq!(as_slice(&call("range", vec![int(1)])), None);
    assert_eq!(
        as_range(&call("range", vec![int(0), int(3), int(1)])),
        Some(RangeArgs {
            start: 0,
            stop: 3,
            step: 1
        })
    );
    assert_eq!(as_range(&call("range", vec![int(0), int(3), int(0)])), None);
    assert_eq!(
        as_complex(&call(
            "complex",
            vec![Pickle::Float(0.0), Pickle::Float(1.0)]
        )),
        Some((0.0, 1.0))
    );
    assert_eq!(as_complex(&call("complex", vec![int(2)])), Some((2.0, 0.0)));
    assert_eq!(as_complex(&call("complex", vec![int(1 << 60)])), None);
    // What CPython's protocol 4 writes for slice(1, None, None).
    let v = ok(b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00\x8c\x08builtins\x94\x8c\x05slice\x94\x93\x94K\x01NN\x87\x94R\x94.");
    assert_eq!(as_slice(&v).map(|s| s.start), Some(Some(1)));
}

#[test]
fn normalize_rewrites_exact_builtin_forms_only() {
    let call = |name: &str, args: Vec<Pickle>| reduce(global("builtins", name), tuple(args));
    // Protocol 2's bytearray(b'ab'): bytearray(_codecs.encode('ab', 'latin1')).
    let v = ok(b"\x80\x02c__builtin__\nbytearray\nq\x00c_codecs\nencode\nq\x01X\x02\x00\x00\x00abq\x02X\x06\x00\x00\x00latin1q\x03\x86q\x04Rq\x05\x85q\x06Rq\x07.");
    assert_eq!(normalize(v), Pickle::ByteArray(b"ab".to_vec()));
    assert_eq!(
        normalize(call("bytearray", vec![Pickle::Bytes(b"x".to_vec())])),
        Pickle::ByteArray(b"x".to_vec())
    );
    assert_eq!(
        normalize(call("bytearray", vec![s("\u{ff}"), s("latin-1")])),
        Pickle::ByteArray(vec![0xff])
    );
    // Not latin-1 encodable: stays.
    let euro = call("bytearray", vec![s("\u{20ac}"), s("latin-1")]);
    assert_eq!(normalize(euro.clone()), euro);
    assert_eq!(normalize(call("bytes", vec![])), Pickle::Bytes(vec![]));
    // Protocol 0-3 sets, nested inside other values.
    let set = call("set", vec![list(vec![int(1), int(2)])]);
    assert_eq!(
        normalize(tuple(vec![set, call("frozenset", vec![list(vec![])])])),
        tuple(vec![
            Pickle::Set(vec![int(1), int(2)]),
            Pickle::FrozenSet(vec![])
        ])
    );
    assert_eq!(
        normalize(call("list", vec![tuple(vec![int(1)])])),
        list(vec![int(1)])
    );
    assert_eq!(
        normalize(call("dict", vec![Pickle::Dict(vec![(int(1), int(2))])])),
        Pickle::Dict(vec![(int(1), int(2))])
    );
    // list(a_set) iterates in hash order, not the pickle's: not rewritten.
    let from_set = call("list", vec![Pickle::Set(vec![int(3), int(1)])]);
    assert_eq!(normalize(from_set.clone()), from_set);
    // Other callables, and builtins under other modules, stay opaque.
    let other = reduce(global("m", "set"), tuple(vec![list(vec![])]));
    assert_eq!(normalize(other.clone()), other);
    let sl = call("slice", vec![int(1), int(2), Pickle::None]);
    assert_eq!(normalize(sl.clone()), sl);
}

/// Found by the `pickle` fuzz target: `APPENDS` onto `_codecs.encode(...)` (bytes, for
/// protocol 2). Rewriting the mutated object into `Bytes` made a tree that, written out, no
/// longer reads ("cannot append to bytes"). The object a `BUILD`, `APPENDS`, `SETITEMS` or
/// `ADDITEMS` mutates keeps its form; its insides are still normalised.
#[test]
fn normalize_keeps_the_form_of_an_object_that_is_mutated() {
    let encode = b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00aX\x06\x00\x00\x00latin1\x86R";
    let cases: [&[u8]; 4] = [
        b"(K\x01e.",      // APPENDS
        b"K\x01a.",       // APPEND
        b"}b.",           // BUILD
        b"(K\x01K\x02u.", // SETITEMS
    ];
    for tail in cases {
        let data = [&encode[..], tail].concat();
        let value = ok(&data);
        let normal = normalize(value.clone());
        assert_eq!(normal, value, "the mutated object is not rewritten");
        let back = load(&dumps(&normal)).expect("a normalised tree written out reads back");
        assert_eq!(normalize(back), normal);
    }
    // Inside the mutated object, exact forms are still rewritten: the argument of an
    // opaque constructor.
    let inner = b"\x80\x02cm\nC\nc_codecs\nencode\nX\x01\x00\x00\x00aX\x06\x00\x00\x00latin1\x86R\x85R(K\x01e.";
    let Pickle::Appends { target, .. } = normalize(ok(inner)) else {
        panic!("an Appends node");
    };
    assert_eq!(
        *target,
        reduce(global("m", "C"), tuple(vec![Pickle::Bytes(b"a".to_vec())]))
    );
}

#[test]
fn dumps_pair_into_appends_what_dumps_writes_for_the_pair() {
    for value in [
        Pickle::None,
        Pickle::Int(7),
        Pickle::List(vec![Pickle::Str("x".into()), Pickle::Int(-300)]),
        // Raises the protocol to 5: the byte patched is this pickle's, after the prefix.
        Pickle::ByteArray(b"ab".to_vec()),
    ] {
        let mut out = b"prefix".to_vec();
        dumps_pair_into(&mut out, "#RETURN", &value);
        let whole = dumps(&Pickle::Tuple(vec![Pickle::Str("#RETURN".into()), value]));
        assert_eq!(&out[..6], b"prefix");
        assert_eq!(&out[6..], &whole[..]);
    }
}
