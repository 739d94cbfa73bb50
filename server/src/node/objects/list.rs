//! `list`: elements stored encoded; decoded only to compare (`index`, `count`, `remove`,
//! `in`, `sort`). Indexes and slices follow Python, negative indexes included.

use parking_lot::Mutex;
use std::cmp::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use syncman_protocol::value::{decode, split_array, split_sequence, to_keep, Needle};
use syncman_protocol::{Args, ErrorKind, RemoteError, Value};

use crate::node::budget::{ByteBudget, HeldBytes};
use crate::node::object::{
    unknown_method, CallCtx, MethodSpec, Outcome, Reply, SharedObject, ANSWER_OVERHEAD,
};
use syncman_protocol::value::encode;

/// Python's `list` methods as exposed by `ListProxy`, with their argument counts.
const METHODS: &[MethodSpec] = &[
    ("__getitem__", 1, 1),
    ("__setitem__", 2, 2),
    ("__delitem__", 1, 1),
    ("__len__", 0, 0),
    ("__contains__", 1, 1),
    ("__add__", 1, 1),
    ("__iadd__", 1, 1),
    ("__mul__", 1, 1),
    ("__rmul__", 1, 1),
    ("__imul__", 1, 1),
    ("append", 1, 1),
    ("extend", 1, 1),
    ("insert", 2, 2),
    ("pop", 0, 1),
    ("remove", 1, 1),
    ("index", 1, 3),
    ("count", 1, 1),
    ("reverse", 0, 0),
    ("sort", 0, 1),
    ("clear", 0, 0),
    ("copy", 0, 0),
];

/// Repetition (`*`) that would build more than this many encoded bytes is refused.
const MAX_REPEAT_BYTES: usize = 256 * 1024 * 1024;

pub struct List {
    state: Mutex<State>,
}

struct State {
    items: Vec<Bytes>,
    /// The items' encoded sizes, charged to the node's budget.
    held: HeldBytes,
}

/// What items cost the budget: their encoded sizes.
fn size(items: &[Bytes]) -> usize {
    items.iter().map(Bytes::len).sum()
}

impl List {
    /// `list()` or `list(iterable)`.
    pub fn new(mut args: Args<'_>) -> Result<List, RemoteError> {
        let items = match args.opt_raw() {
            Some(init) => sequence(&init)?,
            None => Vec::new(),
        };
        args.finish()?;
        let mut held = HeldBytes::default();
        held.force_grow(size(&items));
        Ok(List {
            state: Mutex::new(State { items, held }),
        })
    }
}

impl SharedObject for List {
    fn typeid(&self) -> &str {
        "list"
    }

    fn methods(&self) -> Option<&'static [MethodSpec]> {
        Some(METHODS)
    }

    fn call(&self, method: &str, mut args: Args<'_>, ctx: &mut CallCtx) -> Outcome {
        Outcome::Ready(self.dispatch(method, &mut args, ctx))
    }

    fn bind_budget(&self, budget: &Arc<ByteBudget>) -> Result<(), RemoteError> {
        self.state.lock().held.bind(budget)
    }

    fn describe(&self) -> String {
        let st = self.state.lock();
        format!("list, {} items, {} bytes", st.items.len(), st.held.bytes())
    }
}

/// The items of an encoded list, tuple, set or frozenset, to store: none pins much more
/// than itself.
fn sequence(raw: &Bytes) -> Result<Vec<Bytes>, RemoteError> {
    let items = split_sequence(raw)?.ok_or_else(|| {
        RemoteError::type_error(format!("'{}' object is not iterable", type_of(raw)))
    })?;
    Ok(items
        .into_iter()
        .map(|item| to_keep(item, raw.len()))
        .collect())
}

/// An index or a slice argument (of a list, or of an `Array`).
pub(super) enum Index {
    At(i128),
    Slice(Option<i128>, Option<i128>, Option<i128>),
}

/// `v` as an index of a `typename` (Python's `TypeError` for anything else).
pub(super) fn index_arg(v: Value, typename: &str) -> Result<Index, RemoteError> {
    match v {
        Value::Slice(a, b, c) => Ok(Index::Slice(a, b, c)),
        other => other.as_int().map(Index::At).ok_or_else(|| {
            RemoteError::type_error(format!(
                "{typename} indices must be integers or slices, not {}",
                other.type_name()
            ))
        }),
    }
}

/// The Python type name of an encoded value, for error messages.
fn type_of(raw: &Bytes) -> &'static str {
    decode(raw).map(|v| v.type_name()).unwrap_or("value")
}

/// Resolves a possibly negative index; `None` if out of range.
fn resolve(i: i128, len: usize) -> Option<usize> {
    let i = if i < 0 { i + len as i128 } else { i };
    (0..len as i128).contains(&i).then_some(i as usize)
}

/// `slice.indices(len)` then the positions it selects, in order.
pub(super) fn slice_positions(
    start: Option<i128>,
    stop: Option<i128>,
    step: Option<i128>,
    len: usize,
) -> Result<(Vec<usize>, i128), RemoteError> {
    if step == Some(0) {
        return Err(RemoteError::value_error("slice step cannot be zero"));
    }
    // As CPython clamps to the size range: a step past any length acts the same, and
    // the arithmetic below cannot overflow.
    const STEP_LIMIT: i128 = 1 << 62;
    let step = step.unwrap_or(1).clamp(-STEP_LIMIT, STEP_LIMIT);
    let len = len as i128;
    let adjust = |v: Option<i128>, if_none: i128| match v {
        None => if_none,
        Some(mut v) => {
            if v < 0 {
                v += len;
                if v < 0 {
                    v = if step < 0 { -1 } else { 0 };
                }
            } else if v >= len {
                v = if step < 0 { len - 1 } else { len };
            }
            v
        }
    };
    let start = adjust(start, if step < 0 { len - 1 } else { 0 });
    let stop = adjust(stop, if step < 0 { -1 } else { len });
    let count = if step < 0 {
        if stop < start {
            (start - stop - 1) / (-step) + 1
        } else {
            0
        }
    } else if start < stop {
        (stop - start - 1) / step + 1
    } else {
        0
    };
    let positions = (0..count).map(|k| (start + k * step) as usize).collect();
    Ok((positions, step))
}

/// An optional `index` bound: an integer or nil, else Python's `TypeError`.
fn bound(v: Option<Value>) -> Result<Option<i128>, RemoteError> {
    match v {
        None | Some(Value::Nil) => Ok(None),
        Some(v) => v.as_int().map(Some).ok_or_else(|| {
            RemoteError::type_error(format!(
                "slice indices must be integers or have an __index__ method, not '{}'",
                v.type_name()
            ))
        }),
    }
}

/// Start/stop for `index(x, start, stop)`: negative counts from the end, then clamped.
fn clamp_bound(v: Option<i128>, len: usize, default: usize) -> usize {
    match v {
        None => default,
        Some(v) if v < 0 => (v + len as i128).max(0) as usize,
        Some(v) => usize::try_from(v).unwrap_or(usize::MAX).min(len),
    }
}

/// `items * n`; `answer_limit`: the result is an answer, refused before it is built if its
/// encoding would not fit the caller's frames (a short request must not cost the node
/// hundreds of megabytes for an answer that cannot be sent).
fn repeat(
    items: &[Bytes],
    n: i128,
    answer_limit: Option<usize>,
) -> Result<Vec<Bytes>, RemoteError> {
    if n <= 0 || items.is_empty() {
        return Ok(Vec::new());
    }
    if let Some(limit) = answer_limit {
        let encoded: usize = items.iter().map(Bytes::len).sum();
        let n_usize = usize::try_from(n).unwrap_or(usize::MAX);
        let answer = encoded.saturating_mul(n_usize);
        if answer.saturating_add(ANSWER_OVERHEAD) > limit {
            return Err(RemoteError::value_error(format!(
                "repeating {} items {n} times would answer {answer} bytes, which exceeds \
                 the frame limit of {limit} bytes",
                items.len()
            )));
        }
    }
    // Each item costs its encoding plus its handle in the list.
    let per_copy: usize = items
        .iter()
        .map(|b| b.len() + std::mem::size_of::<Bytes>())
        .sum();
    let n_usize = usize::try_from(n).unwrap_or(usize::MAX);
    if per_copy.saturating_mul(n_usize) > MAX_REPEAT_BYTES {
        return Err(RemoteError::new(
            ErrorKind::Other("MemoryError".into()),
            format!("repeating {} items {n} times is too large", items.len()),
        ));
    }
    Ok(items
        .iter()
        .cloned()
        .cycle()
        .take(items.len() * n_usize)
        .collect())
}

impl List {
    fn dispatch(&self, method: &str, args: &mut Args<'_>, ctx: &CallCtx) -> Reply {
        match method {
            "__getitem__" => {
                let index = index_arg(args.value("index")?, "list")?;
                let st = self.state.lock();
                let items = &st.items;
                match index {
                    Index::At(i) => resolve(i, items.len())
                        .map(|i| items[i].clone())
                        .ok_or_else(|| RemoteError::index_error("list index out of range")),
                    Index::Slice(a, b, c) => {
                        let (positions, _) = slice_positions(a, b, c, items.len())?;
                        Ok(encode::array(positions.iter().map(|&p| &items[p])))
                    }
                }
            }
            "__setitem__" => {
                let index = index_arg(args.value("index")?, "list")?;
                let value = args.raw("value")?;
                match index {
                    Index::At(i) => {
                        let mut st = self.state.lock();
                        let State { items, held } = &mut *st;
                        let at = resolve(i, items.len()).ok_or_else(|| {
                            RemoteError::index_error("list assignment index out of range")
                        })?;
                        held.replace(items[at].len(), value.len())?;
                        items[at] = value;
                    }
                    Index::Slice(a, b, c) => self.assign_slice(a, b, c, sequence(&value)?)?,
                }
                Ok(encode::nil())
            }
            "__delitem__" => {
                let index = index_arg(args.value("index")?, "list")?;
                let mut st = self.state.lock();
                let State { items, held } = &mut *st;
                match index {
                    Index::At(i) => {
                        let at = resolve(i, items.len()).ok_or_else(|| {
                            RemoteError::index_error("list assignment index out of range")
                        })?;
                        held.shrink(items.remove(at).len());
                    }
                    Index::Slice(a, b, c) => {
                        let (mut positions, _) = slice_positions(a, b, c, items.len())?;
                        positions.sort_unstable();
                        let mut drop_at = positions.into_iter().peekable();
                        let mut k = 0;
                        let mut freed = 0;
                        items.retain(|item| {
                            let gone = drop_at.peek() == Some(&k);
                            if gone {
                                drop_at.next();
                                freed += item.len();
                            }
                            k += 1;
                            !gone
                        });
                        held.shrink(freed);
                    }
                }
                Ok(encode::nil())
            }
            "__len__" => Ok(encode::int(self.state.lock().items.len() as i128)),
            "__contains__" => {
                let raw_needle = args.lend("value")?;
                let needle = Needle::new(raw_needle);
                let st = self.state.lock();
                Ok(encode::bool(st.items.iter().any(|x| needle.matches(x))))
            }
            "append" => {
                let value = args.raw("value")?;
                let mut st = self.state.lock();
                st.held.grow(value.len())?;
                st.items.push(value);
                Ok(encode::nil())
            }
            "extend" | "__iadd__" => {
                let more = sequence(&args.raw("iterable")?)?;
                let mut st = self.state.lock();
                st.held.grow(size(&more))?;
                st.items.extend(more);
                Ok(encode::nil())
            }
            "__add__" => {
                // `list + x` takes only a list, unlike `extend` and `+=`.
                let other = args.raw("other")?;
                let more = split_array(&other)?.ok_or_else(|| {
                    RemoteError::type_error(format!(
                        "can only concatenate list (not \"{}\") to list",
                        type_of(&other)
                    ))
                })?;
                let st = self.state.lock();
                Ok(encode::array(
                    st.items
                        .iter()
                        .chain(more.iter())
                        .collect::<Vec<_>>()
                        .into_iter(),
                ))
            }
            "__mul__" | "__rmul__" => {
                let n = args.int("n")?;
                let st = self.state.lock();
                Ok(encode::array(
                    repeat(&st.items, n, Some(ctx.reply_limit))?.iter(),
                ))
            }
            "__imul__" => {
                let n = args.int("n")?;
                let mut st = self.state.lock();
                let repeated = repeat(&st.items, n, None)?;
                let before = size(&st.items);
                st.held.replace(before, size(&repeated))?;
                st.items = repeated;
                // Like `+=`, nothing: Python's proxy returns itself, and an answer of the
                // whole list could exceed a frame after the list had changed.
                Ok(encode::nil())
            }
            "insert" => {
                let i = args.int("index")?;
                let value = args.raw("value")?;
                let mut st = self.state.lock();
                let len = st.items.len() as i128;
                let at = if i < 0 { (i + len).max(0) } else { i.min(len) };
                st.held.grow(value.len())?;
                st.items.insert(at as usize, value);
                Ok(encode::nil())
            }
            "pop" => {
                let i = match args.opt_value()? {
                    None => -1,
                    Some(v) => v.as_int().ok_or_else(|| {
                        RemoteError::type_error(format!(
                            "'{}' object cannot be interpreted as an integer",
                            v.type_name()
                        ))
                    })?,
                };
                let mut st = self.state.lock();
                if st.items.is_empty() {
                    return Err(RemoteError::index_error("pop from empty list"));
                }
                let at = resolve(i, st.items.len())
                    .ok_or_else(|| RemoteError::index_error("pop index out of range"))?;
                // An item the caller could not receive stays in the list.
                ctx.check_fits(&st.items[at])?;
                let item = st.items.remove(at);
                st.held.shrink(item.len());
                Ok(item)
            }
            "remove" => {
                let raw_needle = args.lend("value")?;
                let needle = Needle::new(raw_needle);
                let mut st = self.state.lock();
                let at = st
                    .items
                    .iter()
                    .position(|x| needle.matches(x))
                    .ok_or_else(|| RemoteError::value_error("list.remove(x): x not in list"))?;
                let item = st.items.remove(at);
                st.held.shrink(item.len());
                Ok(encode::nil())
            }
            "index" => {
                let raw_needle = args.lend("value")?;
                let needle = Needle::new(raw_needle);
                let start = bound(args.opt_value()?)?;
                let stop = bound(args.opt_value()?)?;
                let st = self.state.lock();
                let items = &st.items;
                let (lo, hi) = (
                    clamp_bound(start, items.len(), 0),
                    clamp_bound(stop, items.len(), items.len()),
                );
                (lo..hi.max(lo))
                    .find(|&i| needle.matches(&items[i]))
                    .map(|i| encode::int(i as i128))
                    .ok_or_else(|| {
                        let shown = decode(raw_needle).map(|v| v.py_repr()).unwrap_or_default();
                        RemoteError::value_error(format!("{shown} is not in list"))
                    })
            }
            "count" => {
                let raw_needle = args.lend("value")?;
                let needle = Needle::new(raw_needle);
                let st = self.state.lock();
                let n = st.items.iter().filter(|x| needle.matches(x)).count();
                Ok(encode::int(n as i128))
            }
            "reverse" => {
                self.state.lock().items.reverse();
                Ok(encode::nil())
            }
            "sort" => {
                let reverse = match args.opt_value()? {
                    None | Some(Value::Nil) => false,
                    Some(Value::Bool(b)) => b,
                    Some(other) => other.as_int().map(|i| i != 0).ok_or_else(|| {
                        RemoteError::type_error(
                            "sort(reverse) takes a bool; key functions cannot run on the node",
                        )
                    })?,
                };
                self.sort(reverse)?;
                Ok(encode::nil())
            }
            "clear" => {
                let mut st = self.state.lock();
                let old = std::mem::take(&mut st.items);
                st.held.clear();
                drop(st);
                drop(old);
                Ok(encode::nil())
            }
            "copy" => Ok(encode::array(self.state.lock().items.iter())),
            _ => unknown_method("list", method),
        }
    }

    fn assign_slice(
        &self,
        start: Option<i128>,
        stop: Option<i128>,
        step: Option<i128>,
        new: Vec<Bytes>,
    ) -> Result<(), RemoteError> {
        let mut st = self.state.lock();
        let State { items, held } = &mut *st;
        let (positions, step) = slice_positions(start, stop, step, items.len())?;
        if step == 1 {
            // A plain slice may change the list's length: replace the range.
            let from = positions.first().copied().unwrap_or_else(|| {
                // Empty range: insert where the slice starts.
                let len = items.len() as i128;
                match start {
                    None => 0,
                    Some(s) if s < 0 => (s + len).max(0) as usize,
                    Some(s) => s.min(len) as usize,
                }
            });
            let to = from + positions.len();
            held.replace(size(&items[from..to]), size(&new))?;
            items.splice(from..to, new);
            return Ok(());
        }
        if positions.len() != new.len() {
            return Err(RemoteError::value_error(format!(
                "attempt to assign sequence of size {} to extended slice of size {}",
                new.len(),
                positions.len()
            )));
        }
        let old: usize = positions.iter().map(|&p| items[p].len()).sum();
        held.replace(old, size(&new))?;
        for (p, v) in positions.into_iter().zip(new) {
            items[p] = v;
        }
        Ok(())
    }

    /// Stable sort with Python's ordering; on a `TypeError` the list is left unchanged.
    fn sort(&self, reverse: bool) -> Result<(), RemoteError> {
        let mut st = self.state.lock();
        let items = &mut st.items;
        // Each item decoded once, with its order form (a datetime's, read from its pickle)
        // read once, not at each of the n log n comparisons.
        let mut decoded = Vec::with_capacity(items.len());
        for raw in items.iter() {
            let value = decode(raw)?;
            let form = value.order_form();
            decoded.push(((value, form), raw.clone()));
        }
        let mut failure = None;
        decoded.sort_by(|((a, fa), _), ((b, fb), _)| {
            let ord = a.py_cmp_known(b, Some((fa, fb))).unwrap_or_else(|e| {
                failure.get_or_insert(e);
                Ordering::Equal
            });
            if reverse {
                ord.reverse()
            } else {
                ord
            }
        });
        if let Some(e) = failure {
            return Err(e);
        }
        *items = decoded.into_iter().map(|(_, raw)| raw).collect();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_match_python() {
        let pos = |a, b, c, n| slice_positions(a, b, c, n).unwrap().0;
        assert_eq!(pos(None, None, None, 5), vec![0, 1, 2, 3, 4]);
        assert_eq!(pos(Some(1), Some(-1), None, 5), vec![1, 2, 3]);
        assert_eq!(pos(None, None, Some(-1), 5), vec![4, 3, 2, 1, 0]);
        assert_eq!(pos(None, None, Some(2), 5), vec![0, 2, 4]);
        assert_eq!(pos(Some(-100), Some(100), None, 3), vec![0, 1, 2]);
        assert_eq!(pos(Some(4), Some(1), Some(-2), 6), vec![4, 2]);
        assert!(pos(Some(3), Some(1), None, 5).is_empty());
        assert!(slice_positions(None, None, Some(0), 5).is_err());
        // Extreme steps and bounds neither overflow nor misbehave.
        assert_eq!(pos(None, None, Some(i128::MIN), 5), vec![4]);
        assert_eq!(pos(None, None, Some(i128::MAX), 5), vec![0]);
        assert_eq!(pos(Some(i128::MIN), Some(i128::MAX), None, 2), vec![0, 1]);
        assert_eq!(clamp_bound(Some(1 << 64), 3, 0), 3);
    }

    /// Python's `extend`, `+=` and slice assignment take a tuple or a set as they take a list;
    /// `+` takes only a list.
    #[test]
    fn extend_takes_tuples_and_sets_and_plus_takes_only_a_list() {
        use crate::node::objects::testing::args;
        let l = List::new(args(&[])).unwrap();
        let call = |method: &str, a: &[Value]| {
            let mut a = args(a);
            l.dispatch(method, &mut a, &CallCtx::new(1))
        };
        let ints = |v: &[i128]| v.iter().map(|&i| Value::Int(i)).collect::<Vec<_>>();
        call("extend", &[Value::Tuple(ints(&[1, 2]))]).unwrap();
        call("__iadd__", &[Value::Set(ints(&[3]))]).unwrap();
        call("extend", &[Value::FrozenSet(ints(&[4]))]).unwrap();
        call(
            "__setitem__",
            &[
                Value::Slice(Some(0), Some(1), None),
                Value::Tuple(ints(&[0, 0])),
            ],
        )
        .unwrap();
        let all = decode(&call("copy", &[]).unwrap()).unwrap();
        assert_eq!(all, Value::Array(ints(&[0, 0, 2, 3, 4])));
        let plus_tuple = call("__add__", &[Value::Tuple(ints(&[5]))]).unwrap_err();
        assert_eq!(plus_tuple.kind, ErrorKind::TypeError);
        assert_eq!(
            plus_tuple.message,
            "can only concatenate list (not \"tuple\") to list"
        );
        let not_iterable = call("extend", &[Value::Int(5)]).unwrap_err();
        assert_eq!(not_iterable.message, "'int' object is not iterable");
        let plus_list = decode(&call("__add__", &[Value::Array(ints(&[5]))]).unwrap()).unwrap();
        assert_eq!(plus_list, Value::Array(ints(&[0, 0, 2, 3, 4, 5])));
    }

    /// A sort whose items Python cannot all compare is a `TypeError` and leaves the list as
    /// it was, however the comparisons that failed fall among those that did not (the
    /// standard sort may panic on a comparison that is not a total order).
    #[test]
    fn a_sort_of_mixed_types_is_a_type_error_and_changes_nothing() {
        use crate::node::objects::testing::args;
        let mut seed = 7u64;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        for round in 0..200 {
            let items: Vec<Value> = (0..(2 + next(400)))
                .map(|_| match next(4) {
                    0 => Value::Str(format!("{}", next(50))),
                    1 => Value::Tuple(vec![Value::Int(next(3) as i128), Value::Str("x".into())]),
                    2 => Value::Tuple(vec![Value::Int(next(3) as i128), Value::Int(1)]),
                    _ => Value::Int(next(50) as i128),
                })
                .collect();
            let l = List::new(args(&[Value::Array(items.clone())])).unwrap();
            let call = |method: &str, a: &[Value]| {
                let mut a = args(a);
                l.dispatch(method, &mut a, &CallCtx::new(1))
            };
            if let Err(e) = call("sort", &[]) {
                assert_eq!(e.kind, ErrorKind::TypeError, "round {round}");
                let now = decode(&call("copy", &[]).unwrap()).unwrap();
                assert_eq!(now, Value::Array(items), "round {round}");
            }
        }
    }

    /// `l * n` whose answer could not reach the caller is refused before it is built.
    #[test]
    fn a_repetition_too_large_to_answer_is_refused_before_it_is_built() {
        use crate::node::objects::testing::args;
        let l = List::new(args(&[Value::Array(vec![Value::Str("x".repeat(100))])])).unwrap();
        let mut ctx = CallCtx::new(1);
        ctx.reply_limit = 10_000;
        let mul = |n: i128| l.dispatch("__mul__", &mut args(&[Value::Int(n)]), &ctx);
        let fits = decode(&mul(90).unwrap()).unwrap();
        assert!(matches!(fits, Value::Array(items) if items.len() == 90));
        let refused = mul(1_000_000).unwrap_err();
        assert_eq!(refused.kind, ErrorKind::ValueError);
        assert!(
            refused.message.contains("frame limit of 10000 bytes"),
            "{}",
            refused.message
        );
        // In place, the result is stored, not answered: the node's budget bounds it.
        let stored = l
            .dispatch("__imul__", &mut args(&[Value::Int(200)]), &ctx)
            .unwrap();
        assert_eq!(decode(&stored).unwrap(), Value::Nil);
        assert_eq!(l.state.lock().items.len(), 200);
    }

    /// A small item stored from a big request does not keep the request alive: after
    /// `extend([0, <big>])` and `del l[1]`, the byte budget would count 1 byte for the
    /// big request's memory. The big item itself may share its request (it is most of it).
    #[test]
    fn a_small_item_does_not_pin_a_big_request() {
        use crate::node::objects::testing::args;
        let big = Value::Bytes(vec![7u8; 100_000]);
        for through_extend in [false, true] {
            let sequence = Value::Array(vec![Value::Int(0), big.clone()]);
            let request = Value::Array(vec![sequence.clone()]).to_bytes();
            let within = |item: &Bytes| {
                let at = item.as_ptr() as usize;
                let start = request.as_ptr() as usize;
                at >= start && at < start + request.len()
            };
            let l = if through_extend {
                let l = List::new(args(&[])).unwrap();
                let mut request_args = Args::from_array(&request).unwrap();
                l.dispatch("extend", &mut request_args, &CallCtx::new(1))
                    .unwrap();
                l
            } else {
                List::new(Args::from_array(&request).unwrap()).unwrap()
            };
            let st = l.state.lock();
            assert_eq!(st.items.len(), 2);
            assert!(!within(&st.items[0]), "the 0 shares the 100 kB request");
            assert!(within(&st.items[1]), "the big item was copied for nothing");
        }
    }

    /// As for dicts: every mutation keeps the charge equal to the items' sizes, refused
    /// calls change nothing, and dropping the list gives everything back.
    #[test]
    fn the_byte_charge_follows_every_mutation() {
        use crate::node::objects::testing::args;
        let budget = crate::node::budget::ByteBudget::new(3_000);
        let l = List::new(args(&[Value::Array(vec![Value::Int(1)])])).unwrap();
        l.bind_budget(&budget).unwrap();
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let expected = |l: &List| size(&l.state.lock().items);
        let call = |l: &List, method: &str, a: &[Value]| match l.call(
            method,
            args(a),
            &mut CallCtx::new(1),
        ) {
            Outcome::Ready(r) => r,
            Outcome::Park(_) => panic!("a list never parks"),
        };
        let mut refused = 0;
        for step in 0..5_000 {
            let item = Value::Str("i".repeat(next(50) as usize));
            let at = Value::Int(next(8) as i128 - 4);
            let slice = Value::Slice(Some(next(6) as i128), Some(next(12) as i128), None);
            let before = expected(&l);
            let result = match next(13) {
                0 | 1 => call(&l, "append", &[item]),
                2 => call(&l, "extend", &[Value::Array(vec![item.clone(), item])]),
                3 => call(&l, "insert", &[at, item]),
                4 => call(&l, "__setitem__", &[at, item]),
                5 => call(
                    &l,
                    "__setitem__",
                    &[slice, Value::Array(vec![item.clone(), item])],
                ),
                6 => call(&l, "__delitem__", &[at]),
                7 => call(&l, "__delitem__", &[slice]),
                8 => call(&l, "pop", &[]),
                9 => call(&l, "remove", &[item]),
                10 => call(&l, "__imul__", &[Value::Int(next(3) as i128)]),
                11 => call(
                    &l,
                    "__setitem__",
                    &[Value::Slice(None, None, Some(2)), Value::Array(vec![])],
                ),
                _ if next(20) == 0 => call(&l, "clear", &[]),
                _ => Ok(encode::nil()),
            };
            if let Err(e) = &result {
                if e.kind == ErrorKind::Other("MemoryError".into()) {
                    refused += 1;
                    assert_eq!(
                        expected(&l),
                        before,
                        "step {step}: a refused call changed the list"
                    );
                }
            }
            let held = l.state.lock().held.bytes();
            assert_eq!(held, expected(&l), "step {step}");
            assert_eq!(budget.used(), held, "step {step}");
        }
        assert!(refused > 0, "the budget was never reached");
        drop(l);
        assert_eq!(budget.used(), 0);
    }
}
