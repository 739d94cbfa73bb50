//! Polls a rarely ready future only once something has woken it.
//!
//! A session's loop polls every branch of its `select!` on each turn, and some branches
//! are ready once in a session's life: the node's shutdown, the session's end. Polling
//! `tokio_util`'s cancellation future takes its token's mutex and then the `Notify`'s
//! waiter lock, every turn, on lines that are cold when hundreds of sessions take turns.
//! Behind this gate a turn costs registering the task's waker and one atomic swap, and the
//! inner future is polled again only after what it waits on has woken it. Measured with
//! callgrind (docs/BENCHMARKS.md, after run 18): 6,293 → 6,165 node instructions per call on
//! one connection, 5,108 → 4,759 at 256; the price is the gate's allocation per session.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;

/// `inner`, polled only when it has been woken since its last poll (and on the first poll).
pub(crate) struct WakeGated<'a, F> {
    inner: Pin<&'a mut F>,
    gate: Arc<Gate>,
}

/// The waker the inner future is given: it notes the wake-up and passes it on to the task.
struct Gate {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Gate {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl<'a, F: Future> WakeGated<'a, F> {
    pub fn new(inner: Pin<&'a mut F>) -> Self {
        WakeGated {
            inner,
            gate: Arc::new(Gate {
                // The first poll reaches the inner future, which then registers the gate.
                woken: AtomicBool::new(true),
                task: AtomicWaker::new(),
            }),
        }
    }
}

impl<F: Future> Future for WakeGated<'_, F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        // Registered before the flag is read, so a wake-up between the two still wakes
        // this task.
        this.gate.task.register(cx.waker());
        if !this.gate.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        let waker = Waker::from(this.gate.clone());
        this.inner.as_mut().poll(&mut Context::from_waker(&waker))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Ready once `ready` is set; counts its polls and keeps the last waker it was given.
    #[derive(Default)]
    struct Probe {
        polls: AtomicUsize,
        ready: AtomicBool,
        waker: std::sync::Mutex<Option<Waker>>,
    }

    impl Future for &Probe {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, Ordering::SeqCst);
            *self.waker.lock().unwrap() = Some(cx.waker().clone());
            if self.ready.load(Ordering::SeqCst) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }
    }

    /// Counts how often the task was woken.
    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn the_inner_future_is_polled_again_only_after_a_wake_up() {
        let task = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(task.clone());
        let mut cx = Context::from_waker(&waker);
        let probe = Probe::default();
        let mut inner = &probe;
        let mut gated = WakeGated::new(Pin::new(&mut inner));
        for _ in 0..5 {
            assert!(Pin::new(&mut gated).poll(&mut cx).is_pending());
        }
        assert_eq!(
            probe.polls.load(Ordering::SeqCst),
            1,
            "polled on the first turn only"
        );
        // Ready but not woken: still not polled.
        probe.ready.store(true, Ordering::SeqCst);
        assert!(Pin::new(&mut gated).poll(&mut cx).is_pending());
        assert_eq!(probe.polls.load(Ordering::SeqCst), 1);
        // The probe wakes the waker it was given: the task hears of it, and the next turn
        // polls the probe.
        let given = probe.waker.lock().unwrap().take().expect("a waker");
        given.wake();
        assert_eq!(task.0.load(Ordering::SeqCst), 1, "the task is woken");
        assert!(Pin::new(&mut gated).poll(&mut cx).is_ready());
        assert_eq!(probe.polls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_wake_up_reaches_the_task_and_lets_the_inner_future_finish() {
        let task = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(task.clone());
        let mut cx = Context::from_waker(&waker);
        let token = tokio_util::sync::CancellationToken::new();
        let cancelled = token.cancelled();
        let mut cancelled = std::pin::pin!(cancelled);
        let mut gated = WakeGated::new(cancelled.as_mut());
        assert!(Pin::new(&mut gated).poll(&mut cx).is_pending());
        assert!(Pin::new(&mut gated).poll(&mut cx).is_pending());
        assert_eq!(task.0.load(Ordering::SeqCst), 0);
        token.cancel();
        assert_eq!(task.0.load(Ordering::SeqCst), 1, "the task is woken");
        assert!(Pin::new(&mut gated).poll(&mut cx).is_ready());
    }
}
