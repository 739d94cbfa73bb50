//! Rate-limited log lines: a storm of the same event (failed handshakes, refusals) writes a
//! few lines a second and then one line that says how many it left out, instead of filling
//! the log and the disk.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Lines of one kind allowed per second; the rest are counted.
const LINES_PER_SECOND: u32 = 10;

/// The state of one kind of log line.
pub(crate) struct LogLimit {
    window: Mutex<Window>,
}

struct Window {
    started: Option<Instant>,
    shown: u32,
    suppressed: u64,
}

impl LogLimit {
    pub(crate) const fn new() -> Self {
        LogLimit {
            window: Mutex::new(Window {
                started: None,
                shown: 0,
                suppressed: 0,
            }),
        }
    }

    /// `Some(left_out)` if this line may be written, with the number of lines of its kind
    /// left out since the last one written; `None` if it is to be left out.
    pub(crate) fn allow(&self) -> Option<u64> {
        let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if w.started
            .is_none_or(|s| now.duration_since(s) >= Duration::from_secs(1))
        {
            w.started = Some(now);
            w.shown = 0;
        }
        if w.shown < LINES_PER_SECOND {
            w.shown += 1;
            Some(std::mem::take(&mut w.suppressed))
        } else {
            w.suppressed += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_storm_writes_a_few_lines_and_counts_the_rest() {
        let limit = LogLimit::new();
        let shown = (0..1000).filter(|_| limit.allow().is_some()).count();
        // All 1000 within one window (a slow machine may straddle two).
        assert!((10..=20).contains(&shown), "{shown} lines shown");
    }
}
