//! The queue of frames waiting for the connection's writer, bounded in bytes: when the
//! node (or the network) is slower than the program, calls wait for room instead of
//! piling up in memory without limit.
//!
//! Calls reserve room before they register (so a call dropped while it waits has sent
//! nothing and left nothing behind). Fire-and-forget frames from destructors (releases,
//! cancels, undos, heartbeats) cannot wait: they are counted but never held back.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, Notify};

/// The senders' side, shared by the handles and the reader task.
#[derive(Clone)]
pub(crate) struct Outgoing {
    tx: mpsc::UnboundedSender<Bytes>,
    room: Arc<Room>,
}

/// A weak [`Outgoing`], which does not keep the writer running (the heartbeat's).
pub(crate) struct WeakOutgoing {
    tx: mpsc::WeakUnboundedSender<Bytes>,
    room: Arc<Room>,
}

/// The writer's side.
pub(crate) struct OutgoingReceiver {
    rx: mpsc::UnboundedReceiver<Bytes>,
    room: Arc<Room>,
}

struct Room {
    /// Bytes sent to the writer and not yet written.
    queued: AtomicUsize,
    max: usize,
    /// Calls waiting for room: the writer wakes them only when there are some.
    waiting: AtomicUsize,
    freed: Notify,
}

/// The writer is gone: the connection is closed.
#[derive(Debug)]
pub(crate) struct Closed;

/// A new queue holding at most `max` bytes for calls that wait for room.
pub(crate) fn outgoing(max: usize) -> (Outgoing, OutgoingReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    let room = Arc::new(Room {
        queued: AtomicUsize::new(0),
        max: max.max(1),
        waiting: AtomicUsize::new(0),
        freed: Notify::new(),
    });
    let sender = Outgoing {
        tx,
        room: room.clone(),
    };
    (sender, OutgoingReceiver { rx, room })
}

/// Room taken for one frame; given back if the frame is never sent.
pub(crate) struct Reserved<'a> {
    outgoing: &'a Outgoing,
    len: usize,
}

impl Reserved<'_> {
    /// Queues the frame the room was taken for.
    pub(crate) fn send(self, frame: Bytes) -> Result<(), Closed> {
        let outgoing = self.outgoing;
        // The room now belongs to the frame in the queue.
        std::mem::forget(self);
        outgoing.tx.send(frame).map_err(|_| Closed)
    }
}

impl Drop for Reserved<'_> {
    fn drop(&mut self) {
        self.outgoing.room.give_back(self.len);
    }
}

impl Outgoing {
    /// Waits until `len` bytes fit (a frame larger than the whole room waits for an empty
    /// queue), then takes them.
    pub(crate) async fn reserve(&self, len: usize) -> Result<Reserved<'_>, Closed> {
        loop {
            if self.tx.is_closed() {
                return Err(Closed);
            }
            if self.room.try_take(len) {
                return Ok(Reserved {
                    outgoing: self,
                    len,
                });
            }
            let freed = self.room.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            self.room.waiting.fetch_add(1, Ordering::SeqCst);
            // Checked again after registering, so a wake-up between the two is not missed.
            if !self.room.try_take_probe(len) {
                freed.await;
            }
            self.room.waiting.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Queues a frame now, whatever the queue holds (fire-and-forget frames).
    pub(crate) fn send_now(&self, frame: Bytes) -> Result<(), Closed> {
        self.room.queued.fetch_add(frame.len(), Ordering::SeqCst);
        let len = frame.len();
        self.tx.send(frame).map_err(|_| {
            self.room.give_back(len);
            Closed
        })
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Bytes queued and not yet written.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.room.queued.load(Ordering::SeqCst)
    }

    pub(crate) fn downgrade(&self) -> WeakOutgoing {
        WeakOutgoing {
            tx: self.tx.downgrade(),
            room: self.room.clone(),
        }
    }
}

impl WeakOutgoing {
    pub(crate) fn upgrade(&self) -> Option<Outgoing> {
        Some(Outgoing {
            tx: self.tx.upgrade()?,
            room: self.room.clone(),
        })
    }
}

impl OutgoingReceiver {
    pub(crate) async fn recv(&mut self) -> Option<Bytes> {
        self.rx.recv().await
    }

    pub(crate) fn try_recv(&mut self) -> Option<Bytes> {
        self.rx.try_recv().ok()
    }

    /// `n` bytes were written to the socket: their room is free.
    pub(crate) fn written(&self, n: usize) {
        self.room.give_back(n);
    }
}

impl Room {
    /// Takes `len` bytes if they fit, or if the queue is empty (a frame larger than the
    /// room still goes, alone).
    fn try_take(&self, len: usize) -> bool {
        self.queued
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |queued| {
                (queued == 0 || queued.saturating_add(len) <= self.max).then_some(queued + len)
            })
            .is_ok()
    }

    /// Whether `len` bytes would fit now (not taking them).
    fn try_take_probe(&self, len: usize) -> bool {
        let queued = self.queued.load(Ordering::SeqCst);
        queued == 0 || queued.saturating_add(len) <= self.max
    }

    fn give_back(&self, n: usize) {
        self.queued.fetch_sub(n, Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.freed.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Yields until `n` calls wait for room (bounded).
    async fn until_waiting(tx: &Outgoing, n: usize) {
        for _ in 0..10_000 {
            if tx.room.waiting.load(Ordering::SeqCst) == n {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("never {n} calls waiting for room");
    }

    #[tokio::test]
    async fn a_full_queue_holds_calls_back_until_the_writer_frees_room() {
        let (tx, mut rx) = outgoing(100);
        tx.reserve(60)
            .await
            .unwrap()
            .send(Bytes::from(vec![0; 60]))
            .unwrap();
        // 60 + 60 > 100: the second call waits.
        let second = tokio::spawn({
            let tx = tx.clone();
            async move {
                tx.reserve(60)
                    .await
                    .unwrap()
                    .send(Bytes::from(vec![1; 60]))
                    .unwrap()
            }
        });
        until_waiting(&tx, 1).await;
        assert!(!second.is_finished());
        assert_eq!(tx.queued_bytes(), 60);
        // Fire-and-forget frames are never held back.
        tx.send_now(Bytes::from_static(b"cancel")).unwrap();
        let first = rx.recv().await.unwrap();
        let cancel = rx.recv().await.unwrap();
        rx.written(first.len() + cancel.len());
        second.await.unwrap();
        assert_eq!(tx.queued_bytes(), 60);
        // Room given back by a reservation that was never used.
        drop(tx.reserve(10).await);
        assert_eq!(tx.queued_bytes(), 60);
        // A frame larger than the room goes alone, once the queue is empty.
        let big = tokio::spawn({
            let tx = tx.clone();
            async move { tx.reserve(500).await.map(drop).is_ok() }
        });
        until_waiting(&tx, 1).await;
        assert!(!big.is_finished());
        let second = rx.recv().await.unwrap();
        rx.written(second.len());
        assert!(big.await.unwrap());
    }
}
