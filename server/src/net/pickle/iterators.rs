//! Builtin iterators a client sends where Python iterates its argument: `m.dict(zip(keys,
//! values))`, `l.extend(enumerate(names))`, `m.list(iter(t))`. CPython pickles each as data
//! over its source (`zip(iter('ab'), iter([1, 2]))`, the position as `BUILD` state), which
//! the node reads without running anything. `map` and `filter` name a function: they stay
//! unreadable, and the caller is told to send a list.

use syncman_protocol::pickle::{self, Pickle};

use super::errors::ArgError;

/// What expanding a source gives: its items, or why not.
type Items = Result<Vec<Pickle>, ArgError>;

/// The items a builtin iterator would still yield; `None` if `p` is not one. `items_of`
/// expands its sources (the list under `iter`, the iterators under `zip`).
pub(super) fn expand(p: &Pickle, items_of: &dyn Fn(Pickle) -> Items) -> Option<Items> {
    match p {
        // `iter(seq)` or `reversed(seq)` with its position, or `zip(...)` with `strict`.
        Pickle::Build { object, state } => match (builtin(object)?, &**state) {
            (("iter", [seq]), Pickle::Int(at)) => Some(from_position(seq, *at, items_of)),
            (("reversed", [seq]), Pickle::Int(at)) => Some(backwards_from(seq, *at, items_of)),
            (("zip", sources), Pickle::Bool(strict)) => Some(zip(sources, *strict, items_of)),
            _ => None,
        },
        other => match builtin(other)? {
            ("iter", [seq]) => Some(items_of(seq.clone())),
            ("reversed", [seq]) => Some(items_of(seq.clone()).map(|mut v| {
                v.reverse();
                v
            })),
            ("zip", sources) => Some(zip(sources, false, items_of)),
            ("enumerate", [source, Pickle::Int(start)]) => {
                Some(enumerate(source, *start, items_of))
            }
            _ => None,
        },
    }
}

/// `builtins.name(*args)` as a `REDUCE`: its name and arguments.
fn builtin(p: &Pickle) -> Option<(&str, &[Pickle])> {
    let Pickle::Reduce { callable, args } = p else {
        return None;
    };
    let ("builtins", name) = pickle::as_global(callable)? else {
        return None;
    };
    match &**args {
        Pickle::Tuple(args) => Some((name, args.as_slice())),
        _ => None,
    }
}

/// A forward iterator over `seq` that has yielded `at` items.
fn from_position(seq: &Pickle, at: i128, items_of: &dyn Fn(Pickle) -> Items) -> Items {
    let items = items_of(seq.clone())?;
    let skip = usize::try_from(at).unwrap_or(0).min(items.len());
    Ok(items.into_iter().skip(skip).collect())
}

/// A `reversed` iterator whose next item is `seq[at]`.
fn backwards_from(seq: &Pickle, at: i128, items_of: &dyn Fn(Pickle) -> Items) -> Items {
    let mut items = items_of(seq.clone())?;
    let Ok(at) = usize::try_from(at) else {
        return Ok(Vec::new());
    };
    items.truncate(at.saturating_add(1));
    items.reverse();
    Ok(items)
}

/// `zip(*sources)`: tuples until the shortest source ends (all the same length if `strict`).
fn zip(sources: &[Pickle], strict: bool, items_of: &dyn Fn(Pickle) -> Items) -> Items {
    let columns = sources
        .iter()
        .map(|s| items_of(s.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    let shortest = columns.iter().map(Vec::len).min().unwrap_or(0);
    if strict {
        if let Some(why) = unequal(&columns) {
            return Err(ArgError::Value(why));
        }
    }
    let mut columns: Vec<_> = columns.into_iter().map(Vec::into_iter).collect();
    Ok((0..shortest)
        .map(|_| Pickle::Tuple(columns.iter_mut().filter_map(Iterator::next).collect()))
        .collect())
}

/// Python's message for `zip(strict=True)` of unequal lengths, as CPython's `zip` finds
/// it: in the round where the shortest argument runs out, the first argument that is out is
/// "shorter" than those before it; if that is the first argument, the first of the others
/// that still has an item is "longer".
fn unequal(columns: &[Vec<Pickle>]) -> Option<String> {
    let shortest = columns.iter().map(Vec::len).min()?;
    let out = columns.iter().position(|c| c.len() == shortest)?;
    let (i, which) = match out {
        0 => (columns.iter().position(|c| c.len() > shortest)?, "longer"),
        i => (i, "shorter"),
    };
    let than = match i {
        1 => "argument 1".to_owned(),
        i => format!("arguments 1-{i}"),
    };
    Some(format!("zip() argument {} is {which} than {than}", i + 1))
}

/// `enumerate(source, start)`: `(start + i, item)` tuples.
fn enumerate(source: &Pickle, start: i128, items_of: &dyn Fn(Pickle) -> Items) -> Items {
    let items = items_of(source.clone())?;
    Ok(items
        .into_iter()
        .zip(start..)
        .map(|(item, i)| Pickle::Tuple(vec![Pickle::Int(i), item]))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::super::convert::iterable_to_list;
    use super::ArgError;
    use syncman_protocol::pickle::{self, Pickle};

    /// A pickle CPython 3.11 wrote (`pickle.dumps(obj, 4).hex()`), expanded as `list(obj)`.
    fn list_of(hex: &str) -> Result<Pickle, ArgError> {
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        iterable_to_list(pickle::loads(&bytes, &pickle::Limits::default()).unwrap())
    }

    fn ints(v: &[i128]) -> Vec<Pickle> {
        v.iter().map(|&i| Pickle::Int(i)).collect()
    }

    fn s(text: &str) -> Pickle {
        Pickle::Str(text.into())
    }

    #[test]
    fn builtin_iterators_expand_as_python_iterates_them() {
        // zip('ab', [1, 2])
        let zip = "80049549000000000000008c086275696c74696e73948c037a69709493948c086275696c74696e73948c04697465729493948c02616294859452944b006268055d94284b014b0265859452944b0062869452942e";
        assert_eq!(
            list_of(zip).unwrap(),
            Pickle::List(vec![
                Pickle::Tuple(vec![s("a"), Pickle::Int(1)]),
                Pickle::Tuple(vec![s("b"), Pickle::Int(2)]),
            ])
        );
        // enumerate(['x', 'y'], 1)
        let enumerate = "80049547000000000000008c086275696c74696e73948c09656e756d65726174659493948c086275696c74696e73948c04697465729493945d94288c0178948c01799465859452944b00624b01869452942e";
        assert_eq!(
            list_of(enumerate).unwrap(),
            Pickle::List(vec![
                Pickle::Tuple(vec![Pickle::Int(1), s("x")]),
                Pickle::Tuple(vec![Pickle::Int(2), s("y")]),
            ])
        );
        // it = iter([1, 2, 3]); next(it)
        let iter_advanced = "80049526000000000000008c086275696c74696e73948c04697465729493945d94284b014b024b0365859452944b01622e";
        assert_eq!(list_of(iter_advanced).unwrap(), Pickle::List(ints(&[2, 3])));
        // it = reversed([1, 2, 3]); next(it)
        let reversed_advanced = "8004952a000000000000008c086275696c74696e73948c0872657665727365649493945d94284b014b024b0365859452944b01622e";
        assert_eq!(
            list_of(reversed_advanced).unwrap(),
            Pickle::List(ints(&[2, 1]))
        );
        // iter((1, 2))
        let iter_tuple = "80049522000000000000008c086275696c74696e73948c04697465729493944b014b028694859452944b00622e";
        assert_eq!(list_of(iter_tuple).unwrap(), Pickle::List(ints(&[1, 2])));
    }

    #[test]
    fn unequal_lengths_are_named_as_python_names_them() {
        let columns = |lens: &[usize]| -> Vec<Vec<Pickle>> {
            lens.iter().map(|&n| vec![Pickle::None; n]).collect()
        };
        // From CPython 3.11's `list(zip(*columns, strict=True))`.
        for (lens, message) in [
            (&[1, 2][..], "zip() argument 2 is longer than argument 1"),
            (&[2, 1], "zip() argument 2 is shorter than argument 1"),
            (&[1, 1, 2], "zip() argument 3 is longer than arguments 1-2"),
            (&[2, 2, 1], "zip() argument 3 is shorter than arguments 1-2"),
            // Found in review: not the first length that differs from the first's.
            (&[2, 3, 1], "zip() argument 3 is shorter than arguments 1-2"),
            (&[3, 2, 1], "zip() argument 3 is shorter than arguments 1-2"),
            (
                &[1, 1, 3, 2],
                "zip() argument 3 is longer than arguments 1-2",
            ),
        ] {
            assert_eq!(super::unequal(&columns(lens)).as_deref(), Some(message));
        }
        assert_eq!(super::unequal(&columns(&[3, 3, 3])), None);
    }

    #[test]
    fn strict_zip_of_unequal_lengths_and_map_are_refused() {
        // zip([1], [2, 3], strict=True)
        let zip_strict = "8004954b000000000000008c086275696c74696e73948c037a69709493948c086275696c74696e73948c04697465729493945d944b0161859452944b006268055d94284b024b0365859452944b00628694529488622e";
        assert_eq!(
            list_of(zip_strict),
            Err(ArgError::Value(
                "zip() argument 2 is longer than argument 1".into()
            ))
        );
        // map(str, [1]): a function to call, which the node never does.
        let map = "80049542000000000000008c086275696c74696e73948c036d617094939468008c037374729493948c086275696c74696e73948c04697465729493945d944b0161859452944b0062869452942e";
        assert!(list_of(map)
            .unwrap_err()
            .to_string()
            .ends_with("send a list"));
    }
}
