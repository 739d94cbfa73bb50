//! The node's errors as a CPython client expects them: an exception object it can raise
//! (`('#ERROR', KeyError('k'))`), or for failures that are not the method's own, the text
//! CPython's client raises as `RemoteError` (`('#TRACEBACK', text)`).

use syncman_protocol::pickle::{self, Pickle};
use syncman_protocol::{ErrorKind, RemoteError};

/// Python exceptions a client can unpickle, by the name the node's errors carry.
const BUILTIN_EXCEPTIONS: &[&str] = &[
    "ArithmeticError",
    "AssertionError",
    "AttributeError",
    "EOFError",
    "IndexError",
    "KeyError",
    "LookupError",
    "MemoryError",
    "NotImplementedError",
    "OverflowError",
    "RecursionError",
    "RuntimeError",
    "StopIteration",
    "TimeoutError",
    "TypeError",
    "ValueError",
    "ZeroDivisionError",
];

/// A reply to a failed call: `#ERROR` with an exception, or `#TRACEBACK` with text.
pub(crate) enum PyFailure {
    Error(Pickle),
    Traceback(String),
}

/// The Python form of a node error. `key` is the key a `KeyError` is about, when the
/// caller knows it (CPython's `KeyError` carries the key object itself).
pub(super) fn to_python(e: &RemoteError, key: Option<&Pickle>) -> PyFailure {
    let message = || vec![Pickle::Str(e.message.clone())];
    let exception = |module: &str, name: &str, args: Vec<Pickle>| {
        PyFailure::Error(pickle::exception(module, name, args))
    };
    match &e.kind {
        ErrorKind::KeyError => exception(
            "builtins",
            "KeyError",
            match key {
                Some(key) => vec![key.clone()],
                None => message(),
            },
        ),
        // `queue.Empty`, not CPython's own `_queue.Empty`: the same class on 3.7+, and
        // older clients can import it.
        ErrorKind::Empty => exception("queue", "Empty", vec![]),
        ErrorKind::Full => exception("queue", "Full", vec![]),
        ErrorKind::BrokenBarrier => exception("threading", "BrokenBarrierError", vec![]),
        ErrorKind::Timeout => exception("builtins", "TimeoutError", message()),
        ErrorKind::Other(name) if name == "StopIteration" => {
            exception("builtins", "StopIteration", vec![])
        }
        // Errors that are not the method's own (the object is gone, the node stops, a
        // limit): CPython's client raises them as `RemoteError` with this text.
        ErrorKind::NotFound
        | ErrorKind::Cancelled
        | ErrorKind::ShuttingDown
        | ErrorKind::Busy
        | ErrorKind::SessionExpired
        | ErrorKind::ProtocolError => {
            PyFailure::Traceback(format!("syncman: {}: {}", e.kind.as_str(), e.message))
        }
        kind => {
            let name = kind.as_str();
            if BUILTIN_EXCEPTIONS.contains(&name) {
                exception("builtins", name, message())
            } else {
                PyFailure::Traceback(format!("syncman: {name}: {}", e.message))
            }
        }
    }
}

/// Why a Python argument cannot become what the node takes: the exception Python raises
/// for the same argument.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(super) enum ArgError {
    /// Python's `TypeError` (most: not iterable, unhashable, too many arguments).
    #[error("{0}")]
    Type(String),
    /// Python's `ValueError` (a right type, a wrong length).
    #[error("{0}")]
    Value(String),
}

impl ArgError {
    /// As the node's error, for an `#ERROR` reply.
    pub(super) fn to_remote(&self) -> RemoteError {
        match self {
            ArgError::Type(m) => RemoteError::type_error(m.clone()),
            ArgError::Value(m) => RemoteError::value_error(m.clone()),
        }
    }

    /// Python's class name, for a `#TRACEBACK` line (`ValueError: ...`).
    pub(super) fn class(&self) -> &'static str {
        match self {
            ArgError::Type(_) => "TypeError",
            ArgError::Value(_) => "ValueError",
        }
    }
}

/// Most argument errors are Python's `TypeError`.
impl From<String> for ArgError {
    fn from(message: String) -> Self {
        ArgError::Type(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global_of(failure: &PyFailure) -> (String, String) {
        match failure {
            PyFailure::Error(p) => match super::super::convert::class_of(p) {
                Some((m, n)) => (m.to_owned(), n.to_owned()),
                None => panic!("not an exception: {p:?}"),
            },
            PyFailure::Traceback(t) => ("#TRACEBACK".into(), t.clone()),
        }
    }

    #[test]
    fn kinds_become_the_exceptions_cpython_clients_raise() {
        let cases = [
            (ErrorKind::Empty, ("queue", "Empty")),
            (ErrorKind::Full, ("queue", "Full")),
            (
                ErrorKind::BrokenBarrier,
                ("threading", "BrokenBarrierError"),
            ),
            (ErrorKind::ValueError, ("builtins", "ValueError")),
            (
                ErrorKind::Other("MemoryError".into()),
                ("builtins", "MemoryError"),
            ),
        ];
        for (kind, (module, name)) in cases {
            let got = global_of(&to_python(&RemoteError::new(kind, "m"), None));
            assert_eq!(got, (module.to_owned(), name.to_owned()));
        }
        let gone = to_python(&RemoteError::not_found("no object 7"), None);
        assert!(matches!(gone, PyFailure::Traceback(t) if t.contains("no object 7")));
    }
}
