//! Arguments shared by blocking methods: Python's `block`/`blocking` flags and timeouts.

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

/// A timeout argument: nil = forever; a non-negative number of seconds; negative values
/// are a `ValueError` (as Python's queue and semaphore raise), unless `minus_one_is_forever`
/// (Python's `Lock.acquire(timeout=-1)`).
pub fn timeout(v: Option<Value>, minus_one_is_forever: bool) -> Result<Option<f64>, RemoteError> {
    match v {
        None | Some(Value::Nil) => Ok(None),
        Some(v) => {
            let secs = v.as_f64().ok_or_else(|| {
                RemoteError::type_error(format!(
                    "timeout must be a number, not '{}'",
                    v.type_name()
                ))
            })?;
            if minus_one_is_forever && secs == -1.0 {
                return Ok(None);
            }
            if secs.is_nan() || secs < 0.0 {
                return Err(RemoteError::value_error(
                    "'timeout' must be a non-negative number",
                ));
            }
            Ok(Some(secs))
        }
    }
}

/// Turns `block` and `timeout` into a [`Wait`].
pub fn wait(block: bool, timeout: Option<f64>) -> Wait {
    match (block, timeout) {
        (false, _) => Wait::No,
        (true, None) => Wait::Until(None),
        (true, Some(secs)) if secs <= 0.0 => Wait::No,
        (true, Some(secs)) if secs >= MAX_TIMEOUT_SECS => Wait::Until(None),
        (true, Some(secs)) => Wait::Until(Some(
            Instant::now() + std::time::Duration::from_secs_f64(secs),
        )),
    }
}

/// Reads optional `(block=True, timeout=None)` arguments.
pub fn block_timeout(args: &mut Args, minus_one_is_forever: bool) -> Result<Wait, RemoteError> {
    let block = args.opt_value()?.is_none_or(|v| v.truthy());
    let secs = timeout(args.opt_value()?, minus_one_is_forever)?;
    Ok(wait(block, secs))
}

/// Reads an optional `(timeout=None)` argument (event/condition/barrier waits).
pub fn timeout_only(args: &mut Args) -> Result<Wait, RemoteError> {
    let secs = timeout(args.opt_value()?, false)?;
    Ok(wait(true, secs))
}

/// The answer for a withdrawn call: `on_timeout()` when its own timeout passed (Python's
/// `False`, `Empty`, ...), else the cancellation or shutdown error.
pub fn withdrawn_reply(why: WithdrawReason, on_timeout: impl FnOnce() -> Reply) -> Reply {
    match why {
        WithdrawReason::Timeout => on_timeout(),
        other => Err(other.error()),
    }
}
