//! The frames on their way to the node: a queue bounded in bytes, the writer task that
//! drains it, and, on plain TCP, a shortcut past both.
//!
//! When the node (or the network) is slower than the program, calls wait for room instead
//! of piling up in memory without limit. Calls reserve room before they register (so a call
//! dropped while it waits has sent nothing and left nothing behind). Room is handed out in
//! the order calls asked for it (a FIFO semaphore), so a large request waiting for room is
//! not overtaken for ever by a stream of small ones that fit. Fire-and-forget frames
//! from destructors (releases, cancels, undos, heartbeats) cannot wait: they are counted
//! but never held back.
//!
//! # Writing without a hand-off
//! A call's request sent while no other call is in flight and the writer task is idle
//! (nothing queued, nothing being written) is written by the caller itself, with a
//! non-blocking write on the socket: one call at a time costs no wake-up of another task.
//! Calls made together queue instead, so their requests leave in one write. Whatever the
//! socket does not take at once goes to the queue, and the writer is busy until the queue
//! is empty again. Whether the writer is busy is decided under one lock, which every sender
//! takes, so frames leave in the order they were sent. Over TLS the writer task writes
//! everything.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Buf, BufMut, BytesMut};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{mpsc, Semaphore, TryAcquireError};
use tokio_util::sync::CancellationToken;

/// The socket's write half.
pub(crate) enum WriteHalf {
    /// Plain TCP: callers may write themselves while the writer is idle.
    Tcp(Arc<OwnedWriteHalf>),
    /// Anything else (TLS): only the writer task writes.
    Stream(Box<dyn AsyncWrite + Send + Unpin>),
}

/// A frame in the queue, with the room it holds until it is written (none for
/// fire-and-forget frames).
struct Queued {
    frame: BytesMut,
    room: u32,
}

/// The senders' side, shared by the handles and the reader task.
#[derive(Clone)]
pub(crate) struct Outgoing {
    tx: mpsc::UnboundedSender<Queued>,
    room: Arc<Room>,
    /// The socket, for writing without the writer task (plain TCP only).
    direct: Option<Arc<OwnedWriteHalf>>,
}

/// A weak [`Outgoing`], which does not keep the writer running (the heartbeat's).
pub(crate) struct WeakOutgoing {
    tx: mpsc::WeakUnboundedSender<Queued>,
    room: Arc<Room>,
}

/// The writer's side.
pub(crate) struct OutgoingReceiver {
    rx: mpsc::UnboundedReceiver<Queued>,
    room: Arc<Room>,
}

struct Room {
    /// Room for frames not yet written, one permit per byte; fair (first come, first
    /// served), and closed when the writer stops, which fails every call waiting for it.
    free: Semaphore,
    /// The room in all: a frame larger than this takes all of it (so it waits for an
    /// empty queue, then goes alone).
    max: u32,
    /// Bytes handed to the writer's queue and not yet written (what
    /// `Manager::outgoing_bytes` shows), fire-and-forget frames included.
    queued: AtomicUsize,
    /// Calls waiting for room (for tests, which wait until a call is held back).
    waiting: AtomicUsize,
    /// True while the writer task has frames to write; senders queue behind them. False:
    /// the queue is empty and a sender may write itself.
    writer_busy: Mutex<bool>,
    /// Writes to the socket so far, by anyone (the heartbeat's sign of traffic).
    writes: AtomicU64,
}

/// The writer is gone: the connection is closed.
#[derive(Debug)]
pub(crate) struct Closed;

/// A new queue holding at most `max` bytes (capped at 4 GiB) for calls that wait for room,
/// in front of `half`.
pub(crate) fn outgoing(max: usize, half: &WriteHalf) -> (Outgoing, OutgoingReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    let max = max.clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize)) as u32;
    let room = Arc::new(Room {
        free: Semaphore::new(max as usize),
        max,
        queued: AtomicUsize::new(0),
        waiting: AtomicUsize::new(0),
        writer_busy: Mutex::new(false),
        writes: AtomicU64::new(0),
    });
    let direct = match half {
        WriteHalf::Tcp(tcp) => Some(tcp.clone()),
        WriteHalf::Stream(_) => None,
    };
    let sender = Outgoing {
        tx,
        room: room.clone(),
        direct,
    };
    (sender, OutgoingReceiver { rx, room })
}

/// Room taken for one frame; given back if the frame is never sent.
pub(crate) struct Reserved<'a> {
    outgoing: &'a Outgoing,
    room: u32,
}

impl Reserved<'_> {
    /// Sends the frame the room was taken for; `write_now`: written from this task if the
    /// writer is idle.
    pub(crate) fn send(self, frame: BytesMut, write_now: bool) -> Result<(), Closed> {
        let (outgoing, room) = (self.outgoing, self.room);
        // The room now belongs to the frame.
        std::mem::forget(self);
        outgoing.push(frame, room, write_now)
    }
}

impl Drop for Reserved<'_> {
    fn drop(&mut self) {
        self.outgoing.room.give_back(self.room);
    }
}

impl Outgoing {
    /// Waits until `len` bytes of room are free, in turn with the calls that asked before
    /// (a frame larger than the whole room waits for all of it), then takes them.
    pub(crate) async fn reserve(&self, len: usize) -> Result<Reserved<'_>, Closed> {
        let room = self.room.room_for(len);
        let taken = match self.room.free.try_acquire_many(room) {
            Ok(taken) => taken,
            Err(TryAcquireError::Closed) => return Err(Closed),
            Err(TryAcquireError::NoPermits) => {
                // Uncounted however this wait ends, the future dropped included.
                let _waiting = Waiting::count(&self.room.waiting);
                self.room
                    .free
                    .acquire_many(room)
                    .await
                    .map_err(|_| Closed)?
            }
        };
        // Given back by hand: when the frame is written, or by `Reserved`'s drop.
        taken.forget();
        Ok(Reserved {
            outgoing: self,
            room,
        })
    }

    /// Sends a frame now, whatever the queue holds (fire-and-forget frames).
    pub(crate) fn send_now(&self, frame: BytesMut) -> Result<(), Closed> {
        self.push(frame, 0, false)
    }

    /// Writes a frame holding `room` (`write_now`, when the writer is idle), or queues it
    /// for the writer.
    fn push(&self, mut frame: BytesMut, room: u32, write_now: bool) -> Result<(), Closed> {
        let mut busy = self.room.writer_busy();
        if !*busy {
            if let Some(tcp) = self.direct.as_ref().filter(|_| write_now) {
                // An error is left for the writer to meet (and end the connection).
                if let Ok(n) = tcp.try_write(&frame) {
                    self.room.writes.fetch_add(1, Ordering::Relaxed);
                    if n == frame.len() {
                        self.room.give_back(room);
                        return Ok(());
                    }
                    frame.advance(n);
                }
            }
            *busy = true;
        }
        let len = frame.len();
        self.room.queued.fetch_add(len, Ordering::SeqCst);
        self.tx.send(Queued { frame, room }).map_err(|_| {
            self.room.queued.fetch_sub(len, Ordering::SeqCst);
            self.room.give_back(room);
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
    /// A sender that always queues for the writer (it holds no socket of its own).
    pub(crate) fn upgrade(&self) -> Option<Outgoing> {
        Some(Outgoing {
            tx: self.tx.upgrade()?,
            room: self.room.clone(),
            direct: None,
        })
    }

    /// Writes to the socket so far.
    pub(crate) fn writes(&self) -> u64 {
        self.room.writes.load(Ordering::Relaxed)
    }
}

/// One call counted in [`Room::waiting`] while it waits for room.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn count(waiting: &'a AtomicUsize) -> Waiting<'a> {
        waiting.fetch_add(1, Ordering::SeqCst);
        Waiting(waiting)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Bytes one write takes at most from the queue.
const BATCH: usize = 64 * 1024;

impl OutgoingReceiver {
    /// The writer task: writes what is queued, coalescing whatever is waiting into one
    /// write, until every sender is gone (the handles and the reader) or the connection is
    /// `lost`; then fails every call waiting for room and closes the socket's write side
    /// (or, once lost, lets it go).
    pub(crate) async fn write_until_closed(mut self, mut half: WriteHalf, lost: CancellationToken) {
        let connection_lost = lost.clone();
        let mut buf = BytesMut::new();
        // Pinned once, not made afresh for every write.
        let lost = lost.cancelled();
        tokio::pin!(lost);
        let mut next = None;
        loop {
            let first = match next.take() {
                Some(first) => first,
                None => tokio::select! {
                    // Frames first: `lost` is polled only when none is waiting.
                    biased;
                    first = self.rx.recv() => match first {
                        Some(first) => first,
                        None => break,
                    },
                    _ = &mut lost => break,
                },
            };
            // Before each batch: calls woken by the same read of replies are making their
            // next requests; let them queue, so they leave in this write, not the next.
            to_the_back_of_the_run_queue().await;
            // The room of the batch's frames: at most `max` in all, as they hold it together.
            let mut room = self.take_into(&mut buf, first);
            while buf.len() < BATCH {
                match self.rx.try_recv() {
                    Ok(more) => room += self.take_into(&mut buf, more),
                    Err(_) => break,
                }
            }
            let len = buf.len();
            // A node that stops reading must not keep the writer from seeing the loss.
            let written = tokio::select! {
                result = half.write_all(&mut buf) => result.is_ok(),
                _ = &mut lost => false,
            };
            // Written or never to be: either way no longer queued.
            self.room.queued.fetch_sub(len, Ordering::SeqCst);
            if !written {
                break;
            }
            self.room.give_back(room);
            self.room.writes.fetch_add(1, Ordering::Relaxed);
            // Idle again unless more was queued meanwhile, decided under the senders' lock:
            // a sender either sees the writer busy and queues, or sees it idle and writes.
            let mut busy = self.room.writer_busy();
            match self.rx.try_recv() {
                Ok(more) => next = Some(more),
                Err(_) => *busy = false,
            }
        }
        // Nobody writes any more: senders queue, and find the queue closed; calls waiting
        // for room fail (the room closed first, so none waits on after).
        *self.room.writer_busy() = true;
        self.room.free.close();
        self.rx.close();
        // What stays unwritten is no longer queued: the count drops to what senders still
        // racing the close add and take back themselves.
        let unwritten: usize = next.iter().map(|q| q.frame.len()).sum();
        self.room.queued.fetch_sub(unwritten, Ordering::SeqCst);
        while let Ok(queued) = self.rx.try_recv() {
            self.room
                .queued
                .fetch_sub(queued.frame.len(), Ordering::SeqCst);
        }
        // A lost connection is dropped, not shut down: over TLS that writes a closing
        // record, which a node that stopped reading would never take.
        if !connection_lost.is_cancelled() {
            half.shutdown().await;
        }
    }

    /// Appends a queued frame to the batch; the room it holds.
    fn take_into(&self, buf: &mut BytesMut, queued: Queued) -> u32 {
        buf.put_slice(&queued.frame);
        queued.room
    }
}

/// Lets the tasks already waiting to run go first: the task wakes itself and waits once, so
/// the runtime puts it at the back of its run queue. (`tokio::task::yield_now` waits for
/// the worker to look at the sockets first, one `epoll_wait` more a batch: with 16 calls in
/// flight on one CPU, 2.0 a batch against 1.3.)
async fn to_the_back_of_the_run_queue() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if std::mem::replace(&mut yielded, true) {
            return std::task::Poll::Ready(());
        }
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    })
    .await;
}

impl Drop for OutgoingReceiver {
    /// However the writer ends (a runtime shutting down drops it unpolled), no call waits
    /// for room it will never free.
    fn drop(&mut self) {
        self.room.free.close();
    }
}

impl WriteHalf {
    async fn write_all(&mut self, buf: &mut BytesMut) -> std::io::Result<()> {
        match self {
            WriteHalf::Stream(stream) => stream.write_all_buf(buf).await,
            WriteHalf::Tcp(tcp) => {
                while !buf.is_empty() {
                    tcp.writable().await?;
                    match tcp.try_write(buf) {
                        Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                        Ok(n) => buf.advance(n),
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            }
        }
    }

    /// Closes the write side. On TCP, once the senders are gone this is the last handle
    /// on it; otherwise the last one to go closes it (a dropped write half shuts down).
    async fn shutdown(self) {
        match self {
            WriteHalf::Stream(mut stream) => {
                let _ = stream.shutdown().await;
            }
            WriteHalf::Tcp(tcp) => {
                if let Ok(mut tcp) = Arc::try_unwrap(tcp) {
                    let _ = tcp.shutdown().await;
                }
            }
        }
    }
}

impl Room {
    /// The room a frame of `len` bytes takes: all of it for a frame larger than the room.
    fn room_for(&self, len: usize) -> u32 {
        u32::try_from(len).map_or(self.max, |len| len.min(self.max))
    }

    /// Frees the room of one frame.
    fn give_back(&self, room: u32) {
        if room > 0 {
            self.free.add_permits(room as usize);
        }
    }

    fn writer_busy(&self) -> MutexGuard<'_, bool> {
        self.writer_busy.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
impl OutgoingReceiver {
    /// The next queued frame, taken by hand (no writer task).
    async fn recv(&mut self) -> Option<Queued> {
        self.rx.recv().await
    }

    /// Frames taken by hand are written: their room is free again.
    fn written(&self, frames: &[Queued]) {
        for queued in frames {
            self.room
                .queued
                .fetch_sub(queued.frame.len(), Ordering::SeqCst);
            self.room.give_back(queued.room);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

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

    /// A call that waits for `len` bytes of room, sending a frame of that size once it has
    /// them.
    fn call(tx: &Outgoing, len: usize, byte: u8) -> tokio::task::JoinHandle<bool> {
        let tx = tx.clone();
        tokio::spawn(async move {
            match tx.reserve(len).await {
                Ok(room) => room
                    .send(BytesMut::from(&vec![byte; len][..]), true)
                    .is_ok(),
                Err(Closed) => false,
            }
        })
    }

    #[tokio::test]
    async fn a_full_queue_holds_calls_back_until_the_writer_frees_room() {
        // No socket of its own: every frame goes through the queue, read here by hand.
        let (tx, mut rx) = outgoing(100, &WriteHalf::Stream(Box::new(tokio::io::sink())));
        assert!(call(&tx, 60, 0).await.unwrap());
        // 60 + 60 > 100: the second call waits.
        let second = call(&tx, 60, 1);
        until_waiting(&tx, 1).await;
        assert!(!second.is_finished());
        assert_eq!(tx.queued_bytes(), 60);
        // Fire-and-forget frames are never held back.
        tx.send_now(BytesMut::from(&b"cancel"[..])).unwrap();
        assert_eq!(tx.queued_bytes(), 66);
        let first = rx.recv().await.unwrap();
        let cancel = rx.recv().await.unwrap();
        rx.written(&[first, cancel]);
        assert!(second.await.unwrap());
        assert_eq!(tx.queued_bytes(), 60);
        // Room given back by a reservation that was never used.
        drop(tx.reserve(10).await);
        assert_eq!(tx.room.free.available_permits(), 40);
        // A frame larger than the room goes alone, once the queue is empty.
        let big = call(&tx, 500, 2);
        until_waiting(&tx, 1).await;
        assert!(!big.is_finished());
        let second = rx.recv().await.unwrap();
        rx.written(&[second]);
        assert!(big.await.unwrap());
        assert_eq!(tx.queued_bytes(), 500);
        let big = rx.recv().await.unwrap();
        rx.written(&[big]);
        assert_eq!(tx.room.free.available_permits(), 100);
    }

    /// A call waiting for more room than is free is not overtaken by later calls that
    /// would fit: room goes to calls in the order they asked for it.
    #[tokio::test]
    async fn a_call_waiting_for_room_is_not_overtaken_by_smaller_ones() {
        let (tx, mut rx) = outgoing(100, &WriteHalf::Stream(Box::new(tokio::io::sink())));
        assert!(call(&tx, 50, 0).await.unwrap());
        // 50 + 80 > 100: waits.
        let large = call(&tx, 80, 1);
        until_waiting(&tx, 1).await;
        // 50 + 10 would fit, but the large call asked first.
        let small = call(&tx, 10, 2);
        until_waiting(&tx, 2).await;
        assert!(!large.is_finished() && !small.is_finished());
        assert_eq!(tx.queued_bytes(), 50, "a later call took room first");
        let first = rx.recv().await.unwrap();
        rx.written(&[first]);
        assert!(large.await.unwrap());
        assert!(small.await.unwrap());
        let (a, b) = (rx.recv().await.unwrap(), rx.recv().await.unwrap());
        assert_eq!((a.frame[0], b.frame[0]), (1, 2), "room went out of order");
        rx.written(&[a, b]);
        assert_eq!(tx.queued_bytes(), 0);
    }

    /// Frames written by their senders while the writer is idle, and queued behind the
    /// writer once the socket is full, arrive whole and in the order they were sent.
    #[tokio::test]
    async fn frames_keep_their_order_between_direct_writes_and_the_queue() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        // A small send buffer, so the socket fills up sooner.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_send_buffer_size(16 * 1024).unwrap();
        let client = socket
            .connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        let (_rd, wr) = client.into_split();
        let half = WriteHalf::Tcp(Arc::new(wr));
        let (tx, rx) = outgoing(usize::MAX, &half);
        let writer = tokio::spawn(rx.write_until_closed(half, CancellationToken::new()));
        // Nobody reads yet: sends go straight to the socket until it is full, then queue.
        const FRAMES: u32 = 20_000;
        const LEN: usize = 1000;
        let frame = |i: u32| {
            let mut f = i.to_be_bytes().to_vec();
            f.resize(LEN, (i % 251) as u8);
            BytesMut::from(&f[..])
        };
        let mut saw_queueing = false;
        let mut saw_direct = false;
        for i in 0..FRAMES {
            let writes = tx.room.writes.load(Ordering::Relaxed);
            // Every third frame as fire-and-forget (always queued), the rest written
            // directly whenever the writer is idle.
            if i % 100 == 99 {
                // The writer runs (this runtime has one thread).
                tokio::task::yield_now().await;
            }
            if i % 3 == 2 {
                tx.send_now(frame(i)).unwrap();
            } else {
                let room = tx.reserve(LEN).await.unwrap();
                let was_idle = !*tx.room.writer_busy();
                room.send(frame(i), true).unwrap();
                saw_direct |= was_idle && tx.room.writes.load(Ordering::Relaxed) > writes;
            }
            saw_queueing |= *tx.room.writer_busy();
        }
        assert!(saw_direct, "no frame was written by its sender");
        assert!(
            saw_queueing,
            "the socket never filled up: nothing was queued"
        );
        drop(tx);
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        writer.await.unwrap();
        assert_eq!(got.len(), FRAMES as usize * LEN);
        for (i, chunk) in got.chunks(LEN).enumerate() {
            assert_eq!(chunk, &frame(i as u32)[..], "frame {i}");
        }
    }

    /// The connection is lost while the node does not read: the writer, stuck in a write,
    /// still stops, a call waiting for room fails instead of waiting for ever, and nothing
    /// is counted as queued any more.
    #[tokio::test]
    async fn calls_waiting_for_room_fail_once_the_connection_is_lost() {
        // A peer that never reads: the writer's first write never finishes.
        let (wr, _peer) = tokio::io::duplex(64);
        let half = WriteHalf::Stream(Box::new(wr));
        let (tx, rx) = outgoing(100, &half);
        let lost = CancellationToken::new();
        let writer = tokio::spawn(rx.write_until_closed(half, lost.clone()));
        tx.reserve(100)
            .await
            .unwrap()
            .send(BytesMut::from(&[0; 100][..]), true)
            .unwrap();
        let waiter = tokio::spawn({
            let tx = tx.clone();
            async move { tx.reserve(100).await.map(drop) }
        });
        until_waiting(&tx, 1).await;
        lost.cancel();
        let bound = std::time::Duration::from_secs(10);
        let waited = tokio::time::timeout(bound, waiter).await;
        assert!(
            matches!(waited, Ok(Ok(Err(Closed)))),
            "a call waiting for room did not fail: {waited:?}"
        );
        tokio::time::timeout(bound, writer)
            .await
            .expect("the writer never stopped")
            .unwrap();
        assert!(tx.is_closed());
        // Nothing is on its way any more: the count says so, rather than what was queued
        // when the connection went.
        assert_eq!(tx.queued_bytes(), 0);
    }

    /// A call dropped while it waits for room is no longer counted as waiting (the writer
    /// would otherwise wake nobody on every write from then on).
    #[tokio::test]
    async fn a_call_dropped_while_waiting_for_room_is_not_counted() {
        let (tx, _rx) = outgoing(100, &WriteHalf::Stream(Box::new(tokio::io::sink())));
        tx.reserve(100)
            .await
            .unwrap()
            .send(BytesMut::from(&[0; 100][..]), true)
            .unwrap();
        {
            let wait = tx.reserve(10);
            tokio::pin!(wait);
            let waker = std::task::Waker::noop();
            let mut cx = std::task::Context::from_waker(waker);
            assert!(std::future::Future::poll(wait.as_mut(), &mut cx).is_pending());
            assert_eq!(tx.room.waiting.load(Ordering::SeqCst), 1);
        }
        assert_eq!(tx.room.waiting.load(Ordering::SeqCst), 0, "still counted");
    }
}
