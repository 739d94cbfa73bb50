//! Arguments shared by blocking methods: Python's `block`/`blocking` flags and timeouts.
//!
//! Python treats a timeout differently in each class, and the node follows each one
//! exactly (checked against CPython 3.11 to 3.13):
//!
//! | Python method | `None` | `0` | negative | NaN | timeout with `block=False` |
//! |---|---|---|---|---|---|
//! | `Queue.get`, `Queue.put` ([`queue_wait`]) | forever | poll | `ValueError` | forever | ignored |
//! | `Lock`/`RLock`/`Condition` `.acquire` ([`lock_wait`]) | forever (the proxy omits it) | poll | `-1`: forever, others `ValueError` | `ValueError` | `ValueError` (but `-1`) |
//! | `Semaphore.acquire` ([`semaphore_wait`]) | forever | poll | poll | forever | `ValueError` |
//! | `Event.wait`, `Condition.wait` ([`condition_wait`]) | forever | poll | poll | poll | — |
//! | `Barrier.wait` ([`deadline_wait`]) | the barrier's default | poll | poll | forever | — |
//!
//! `Queue.put` checks its timeout only on a bounded queue (an unbounded one ignores it).
//! `Condition.wait_for` runs on the client (CPython's proxy and the Rust client both loop
//! over `wait`), so the node never sees its timeout. A poll is one attempt without waiting:
//! `Empty`/`Full`, `False`, or a broken barrier unless the call completes the round.

use syncman_protocol::{Args, RemoteError, Value};
use tokio::time::Instant;

use crate::node::object::{Reply, WithdrawReason};

/// Longest timeout honoured; longer ones (and infinities) wait forever.
const MAX_TIMEOUT_SECS: f64 = 100.0 * 365.0 * 24.0 * 3600.0;

/// How a blocking call may wait.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Wait {
    /// Do not wait at all (`block=False`, or a zero timeout).
    No,
    /// Wait until this instant, or forever.
    Until(Option<Instant>),
}

/// A timeout argument as given: `None` when absent or nil, else its seconds (any sign, NaN
/// included); a `TypeError` if it is not a number (`True` is 1, as in Python).
pub fn seconds(v: Option<Value>) -> Result<Option<f64>, RemoteError> {
    match v {
        None | Some(Value::Nil) => Ok(None),
        Some(v) => v.as_f64().map(Some).ok_or_else(|| {
            RemoteError::type_error(format!("timeout must be a number, not '{}'", v.type_name()))
        }),
    }
}

/// A non-negative timeout (or none) as a [`Wait`]: 0 is a poll, over 100 years forever.
fn until(secs: Option<f64>) -> Wait {
    match secs {
        None => Wait::Until(None),
        Some(secs) if secs <= 0.0 => Wait::No,
        Some(secs) if secs.is_nan() || secs >= MAX_TIMEOUT_SECS => Wait::Until(None),
        Some(secs) => Wait::Until(Some(
            Instant::now() + std::time::Duration::from_secs_f64(secs),
        )),
    }
}

/// Python's loops over a deadline (`Semaphore.acquire`, `Barrier.wait` through
/// `Condition.wait_for`, a queue once its timeout is checked): `None` waits forever, a zero
/// or negative timeout gives up after one try (a poll), and NaN never reaches its deadline
/// (every comparison with it is false), so it waits forever.
pub fn deadline_wait(secs: Option<f64>) -> Wait {
    until(secs)
}

/// Python's `Condition.wait(timeout)` (and `Event.wait`, which calls it): `None` waits
/// forever, a positive timeout until it passes, anything else (0, negative, NaN: `timeout
/// > 0` is false) is a poll.
pub fn condition_wait(secs: Option<f64>) -> Wait {
    match secs {
        Some(secs) if secs.is_nan() => Wait::No,
        other => until(other),
    }
}

/// A Python flag: absent is `True`; otherwise its truth.
fn flag(v: Option<Value>) -> bool {
    v.is_none_or(|v| v.truthy())
}

/// `Queue.get(block=True, timeout=None)` and `Queue.put(item, block=True, timeout=None)`.
///
/// With `block` false the timeout is ignored, whatever it is. Otherwise, where Python checks
/// it (`get` always, `put` only on a bounded queue: `checked`), a negative timeout is
/// `ValueError("'timeout' must be a non-negative number")`; an unchecked one is never used,
/// since an unbounded queue never makes a `put` wait.
pub fn queue_wait(args: &mut Args<'_>, checked: bool) -> Result<Wait, RemoteError> {
    let block = flag(args.opt_value()?);
    let timeout = args.opt_value()?;
    if !block {
        return Ok(Wait::No);
    }
    if !checked {
        return Ok(Wait::Until(None));
    }
    let secs = seconds(timeout)?;
    if secs.is_some_and(|s| s < 0.0) {
        return Err(RemoteError::value_error(
            "'timeout' must be a non-negative number",
        ));
    }
    Ok(deadline_wait(secs))
}

/// `Lock.acquire(blocking=True, timeout=-1)`, as `_thread`'s locks parse it (`Lock`,
/// `RLock`, and a `Condition`'s `acquire`, which is its `RLock`'s).
///
/// `-1` (to the nanosecond, rounded away from zero as CPython converts it) means no
/// timeout: wait forever, or with `blocking` false, just try. `None`, which CPython's
/// `AcquirerProxy` never sends (it leaves the timeout out), means the same. NaN is
/// `ValueError("Invalid value NaN (not a number)")`; any other timeout with `blocking` false
/// is `ValueError("can't specify a timeout for a non-blocking call")`; any other negative
/// one is `ValueError("timeout value must be a non-negative number")` (CPython 3.13's
/// wording; 3.11 and 3.12 say "timeout value must be positive").
pub fn lock_wait(args: &mut Args<'_>) -> Result<Wait, RemoteError> {
    let blocking = flag(args.opt_value()?);
    let secs = match seconds(args.opt_value()?)? {
        Some(s) if s.is_nan() => {
            return Err(RemoteError::value_error("Invalid value NaN (not a number)"))
        }
        // CPython compares nanoseconds, rounded away from zero, with -1 s.
        Some(s) if s < 0.0 && (s * 1e9).floor() == -1e9 => None,
        other => other,
    };
    if !blocking {
        return match secs {
            None => Ok(Wait::No),
            Some(_) => Err(RemoteError::value_error(
                "can't specify a timeout for a non-blocking call",
            )),
        };
    }
    if secs.is_some_and(|s| s < 0.0) {
        return Err(RemoteError::value_error(
            "timeout value must be a non-negative number",
        ));
    }
    Ok(until(secs))
}

/// `Semaphore.acquire(blocking=True, timeout=None)` (`threading.Semaphore`): a timeout with
/// `blocking` false, even `0`, is `ValueError("can't specify timeout for non-blocking
/// acquire")`; otherwise a deadline loop ([`deadline_wait`]): a negative timeout is a poll.
pub fn semaphore_wait(args: &mut Args<'_>) -> Result<Wait, RemoteError> {
    let blocking = flag(args.opt_value()?);
    let timeout = args.opt_value()?;
    let given = !matches!(timeout, None | Some(Value::Nil));
    if !blocking {
        return if given {
            Err(RemoteError::value_error(
                "can't specify timeout for non-blocking acquire",
            ))
        } else {
            Ok(Wait::No)
        };
    }
    Ok(deadline_wait(seconds(timeout)?))
}

/// The answer for a withdrawn call: `on_timeout()` when its own timeout passed (Python's
/// `False`, `Empty`, ...), else the cancellation or shutdown error.
pub fn withdrawn_reply(why: WithdrawReason, on_timeout: impl FnOnce() -> Reply) -> Reply {
    match why {
        WithdrawReason::Timeout => on_timeout(),
        other => Err(other.error()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::objects::testing::args;
    use syncman_protocol::ErrorKind;

    fn is_forever(w: Wait) -> bool {
        w == Wait::Until(None)
    }

    fn is_deadline(w: Wait) -> bool {
        matches!(w, Wait::Until(Some(_)))
    }

    fn value_error(r: Result<Wait, RemoteError>) -> String {
        let e = r.unwrap_err();
        assert_eq!(e.kind, ErrorKind::ValueError);
        e.message
    }

    #[test]
    fn condition_and_deadline_waits_differ_only_for_nan() {
        for f in [condition_wait, deadline_wait] {
            assert!(is_forever(f(None)));
            assert_eq!(f(Some(0.0)), Wait::No);
            assert_eq!(f(Some(-1.0)), Wait::No);
            assert_eq!(f(Some(-0.0)), Wait::No);
            assert!(is_deadline(f(Some(1.5))));
            assert!(is_forever(f(Some(f64::INFINITY))));
            assert!(is_forever(f(Some(MAX_TIMEOUT_SECS))));
        }
        assert_eq!(condition_wait(Some(f64::NAN)), Wait::No);
        assert!(is_forever(deadline_wait(Some(f64::NAN))));
    }

    #[test]
    fn a_lock_timeout_of_minus_one_to_the_nanosecond_is_no_timeout() {
        for t in [-1.0, -0.999_999_999_9] {
            assert!(is_forever(
                lock_wait(&mut args(&[Value::Bool(true), Value::Float(t)])).unwrap()
            ));
            assert_eq!(
                lock_wait(&mut args(&[Value::Bool(false), Value::Float(t)])).unwrap(),
                Wait::No
            );
        }
        for t in [-1.000_000_000_1, -1e-10, -2.0] {
            assert_eq!(
                value_error(lock_wait(&mut args(&[Value::Bool(true), Value::Float(t)]))),
                "timeout value must be a non-negative number",
                "{t}"
            );
        }
        // -0.0 is not negative for Python either.
        assert_eq!(
            lock_wait(&mut args(&[Value::Bool(true), Value::Float(-0.0)])).unwrap(),
            Wait::No
        );
    }

    #[test]
    fn a_lock_checks_nan_before_the_blocking_flag() {
        for block in [true, false] {
            assert_eq!(
                value_error(lock_wait(&mut args(&[
                    Value::Bool(block),
                    Value::Float(f64::NAN)
                ]))),
                "Invalid value NaN (not a number)"
            );
        }
        // A bool is a number: acquire(False, False) is a timeout of 0 with blocking False.
        assert_eq!(
            value_error(lock_wait(&mut args(&[
                Value::Bool(false),
                Value::Bool(false)
            ]))),
            "can't specify a timeout for a non-blocking call"
        );
    }

    #[test]
    fn a_semaphore_refuses_any_timeout_without_blocking_even_a_bad_one() {
        for t in [Value::Int(0), Value::Int(-1), Value::Str("x".into())] {
            assert_eq!(
                value_error(semaphore_wait(&mut args(&[Value::Bool(false), t]))),
                "can't specify timeout for non-blocking acquire"
            );
        }
        assert_eq!(
            semaphore_wait(&mut args(&[Value::Bool(false), Value::Nil])).unwrap(),
            Wait::No
        );
        assert!(is_forever(
            semaphore_wait(&mut args(&[Value::Bool(true), Value::Float(f64::NAN)])).unwrap()
        ));
    }

    #[test]
    fn a_queue_ignores_its_timeout_without_block() {
        for t in [
            Value::Int(-1),
            Value::Float(f64::NAN),
            Value::Str("x".into()),
        ] {
            assert_eq!(
                queue_wait(&mut args(&[Value::Bool(false), t.clone()]), true).unwrap(),
                Wait::No
            );
            // An unbounded put ignores it even when blocking.
            assert!(is_forever(
                queue_wait(&mut args(&[Value::Bool(true), t]), false).unwrap()
            ));
        }
        assert!(is_forever(
            queue_wait(
                &mut args(&[Value::Bool(true), Value::Float(f64::NAN)]),
                true
            )
            .unwrap()
        ));
        let e = queue_wait(
            &mut args(&[Value::Bool(true), Value::Str("x".into())]),
            true,
        );
        assert_eq!(e.unwrap_err().kind, ErrorKind::TypeError);
    }
}
