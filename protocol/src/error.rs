//! Errors that cross the wire: a kind named after the Python exception a CPython user would
//! see, and a message.

use std::fmt;

/// The kind of a remote error, tied to Python's exception names on the wire.
///
/// `Other` keeps a name this build does not know, so a newer server's errors still arrive
/// intact at an older client.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    KeyError,
    IndexError,
    ValueError,
    TypeError,
    AttributeError,
    RuntimeError,
    OverflowError,
    /// `queue.Empty`: a non-blocking or timed-out get found nothing.
    Empty,
    /// `queue.Full`: a non-blocking or timed-out put found no room.
    Full,
    /// A wait ran out of time where Python returns no value to signal it.
    Timeout,
    /// `threading.BrokenBarrierError`.
    BrokenBarrier,
    /// The object or method does not exist (Python raises `AttributeError` or `KeyError`).
    NotFound,
    /// The call was withdrawn because its caller cancelled it.
    Cancelled,
    /// The node is stopping; parked calls end with this.
    ShuttingDown,
    /// A per-session limit was reached; the caller may retry later.
    Busy,
    /// The node ended the session because the client stopped heartbeating (a stopped or
    /// wedged process): what it held was released, and its guards are void.
    SessionExpired,
    /// The request was not understood (bad envelope, wrong argument encoding).
    ProtocolError,
    Other(String),
}

impl ErrorKind {
    /// The name on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            ErrorKind::KeyError => "KeyError",
            ErrorKind::IndexError => "IndexError",
            ErrorKind::ValueError => "ValueError",
            ErrorKind::TypeError => "TypeError",
            ErrorKind::AttributeError => "AttributeError",
            ErrorKind::RuntimeError => "RuntimeError",
            ErrorKind::OverflowError => "OverflowError",
            ErrorKind::Empty => "Empty",
            ErrorKind::Full => "Full",
            ErrorKind::Timeout => "Timeout",
            ErrorKind::BrokenBarrier => "BrokenBarrierError",
            ErrorKind::NotFound => "NotFound",
            ErrorKind::Cancelled => "Cancelled",
            ErrorKind::ShuttingDown => "ShuttingDown",
            ErrorKind::Busy => "Busy",
            ErrorKind::SessionExpired => "SessionExpired",
            ErrorKind::ProtocolError => "ProtocolError",
            ErrorKind::Other(name) => name,
        }
    }

    pub fn from_name(name: &str) -> ErrorKind {
        match name {
            "KeyError" => ErrorKind::KeyError,
            "IndexError" => ErrorKind::IndexError,
            "ValueError" => ErrorKind::ValueError,
            "TypeError" => ErrorKind::TypeError,
            "AttributeError" => ErrorKind::AttributeError,
            "RuntimeError" => ErrorKind::RuntimeError,
            "OverflowError" => ErrorKind::OverflowError,
            "Empty" => ErrorKind::Empty,
            "Full" => ErrorKind::Full,
            "Timeout" => ErrorKind::Timeout,
            "BrokenBarrierError" => ErrorKind::BrokenBarrier,
            "NotFound" => ErrorKind::NotFound,
            "Cancelled" => ErrorKind::Cancelled,
            "ShuttingDown" => ErrorKind::ShuttingDown,
            "Busy" => ErrorKind::Busy,
            "SessionExpired" => ErrorKind::SessionExpired,
            "ProtocolError" => ErrorKind::ProtocolError,
            other => ErrorKind::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error raised by a method on the node, as the caller receives it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct RemoteError {
    pub kind: ErrorKind,
    pub message: String,
}

impl RemoteError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        RemoteError {
            kind,
            message: message.into(),
        }
    }
}

/// Shorthands for the errors object code raises most.
macro_rules! constructors {
    ($($fn_name:ident => $kind:ident),* $(,)?) => {
        impl RemoteError {
            $(pub fn $fn_name(message: impl Into<String>) -> Self {
                RemoteError::new(ErrorKind::$kind, message)
            })*
        }
    };
}

constructors! {
    key_error => KeyError,
    index_error => IndexError,
    value_error => ValueError,
    type_error => TypeError,
    attribute_error => AttributeError,
    runtime_error => RuntimeError,
    overflow_error => OverflowError,
    not_found => NotFound,
    protocol_error => ProtocolError,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_survive() {
        for kind in [
            ErrorKind::KeyError,
            ErrorKind::Empty,
            ErrorKind::BrokenBarrier,
            ErrorKind::ShuttingDown,
        ] {
            assert_eq!(ErrorKind::from_name(kind.as_str()), kind);
        }
        assert_eq!(
            ErrorKind::from_name("ZeroDivisionError"),
            ErrorKind::Other("ZeroDivisionError".into())
        );
        assert_eq!(RemoteError::key_error("'x'").to_string(), "KeyError: 'x'");
    }
}
