//! The node's side of heartbeats: a session whose client asked for a deadline ends once
//! nothing has been heard from it for that long (a stopped or wedged process, which TCP
//! keepalive never notices because its kernel still answers).
//!
//! The clock stays off the request path: the session loop only stores a frame count, and a
//! small watchdog task compares it at ticks a tenth of the deadline apart. On expiry the
//! watchdog cancels the session's end token, which the loop already awaits for shutdown
//! (a child of the node's token), so watching costs the loop no extra `select!` branch.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::{CancellationToken, DropGuard};

/// The session loop's end of the watch. The watchdog stops when this is dropped.
pub(super) struct HeartbeatWatch {
    ttl: Duration,
    frames: u64,
    shared: Arc<Shared>,
    _stop: DropGuard,
}

struct Shared {
    /// Frames heard so far, stored by the loop, read by the watchdog.
    seen: AtomicU64,
    /// Set by the watchdog before it cancels the session's end token.
    expired: AtomicBool,
}

impl HeartbeatWatch {
    /// Starts watching a session granted `ttl`: when it passes in silence, `end` is
    /// cancelled and [`HeartbeatWatch::expired`] says why.
    pub(super) fn start(ttl: Duration, end: CancellationToken) -> HeartbeatWatch {
        let shared = Arc::new(Shared {
            seen: AtomicU64::new(0),
            expired: AtomicBool::new(false),
        });
        let stop = CancellationToken::new();
        tokio::spawn(watchdog(ttl, shared.clone(), end, stop.clone()));
        HeartbeatWatch {
            ttl,
            frames: 0,
            shared,
            _stop: stop.drop_guard(),
        }
    }

    /// A frame arrived: the client is alive.
    pub(super) fn heard(&mut self) {
        self.frames += 1;
        self.shared.seen.store(self.frames, Ordering::Relaxed);
    }

    /// The deadline, if it passed in silence (and so ended the session).
    pub(super) fn expired(&self) -> Option<Duration> {
        self.shared
            .expired
            .load(Ordering::Acquire)
            .then_some(self.ttl)
    }
}

/// Ticks a tenth of `ttl` apart; once `ttl` of ticks saw no new frame, marks the watch
/// expired and cancels `end`. Stops with the watch (`stop`) or when `end` is cancelled.
async fn watchdog(
    ttl: Duration,
    shared: Arc<Shared>,
    end: CancellationToken,
    stop: CancellationToken,
) {
    let period = (ttl / 10).max(Duration::from_millis(50));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut silence = Silence::new(ttl, period);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
            () = end.cancelled() => return,
        }
        if silence.expired_at(shared.seen.load(Ordering::Relaxed)) {
            shared.expired.store(true, Ordering::Release);
            end.cancel();
            return;
        }
    }
}

/// How long a session has been silent, counted in ticks.
struct Silence {
    ttl: Duration,
    period: Duration,
    frames_at_last_tick: u64,
    silent_for: Duration,
}

impl Silence {
    fn new(ttl: Duration, period: Duration) -> Silence {
        Silence {
            ttl,
            period,
            frames_at_last_tick: 0,
            silent_for: Duration::ZERO,
        }
    }

    /// At a tick, with the frame count now: true once nothing was heard for the deadline.
    fn expired_at(&mut self, frames: u64) -> bool {
        if frames == self.frames_at_last_tick {
            self.silent_for += self.period;
        } else {
            self.frames_at_last_tick = frames;
            self.silent_for = Duration::ZERO;
        }
        self.silent_for >= self.ttl
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_counts_only_ticks_without_frames() {
        let mut s = Silence::new(Duration::from_secs(1), Duration::from_millis(250));
        assert!(!s.expired_at(0));
        assert!(!s.expired_at(0));
        assert!(!s.expired_at(0));
        // A frame resets the count.
        assert!(!s.expired_at(1));
        for _ in 0..3 {
            assert!(!s.expired_at(1));
        }
        assert!(s.expired_at(1));
    }

    /// With time paused: a watch fed a frame every 300 ms outlives four deadlines; one
    /// never fed expires a deadline (plus at most a tick) after it started.
    #[tokio::test(start_paused = true)]
    async fn a_silent_watch_expires_and_a_heard_one_does_not() {
        let ttl = Duration::from_secs(1);
        let (heard_end, silent_end) = (CancellationToken::new(), CancellationToken::new());
        let mut heard = HeartbeatWatch::start(ttl, heard_end.clone());
        let silent = HeartbeatWatch::start(ttl, silent_end.clone());
        let started = tokio::time::Instant::now();
        let mut silent_expired_after = None;
        while started.elapsed() < 4 * ttl {
            tokio::select! {
                () = silent_end.cancelled(), if silent_expired_after.is_none() => {
                    assert_eq!(silent.expired(), Some(ttl));
                    silent_expired_after = Some(started.elapsed());
                }
                () = heard_end.cancelled() => panic!("a watch that heard frames expired"),
                () = tokio::time::sleep(Duration::from_millis(300)) => heard.heard(),
            }
        }
        assert_eq!(heard.expired(), None);
        let waited = silent_expired_after.expect("the silent watch never expired");
        assert!(waited >= ttl && waited <= ttl + ttl / 10, "{waited:?}");
    }
}
