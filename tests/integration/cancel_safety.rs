//! Dropping a destructive call at any point never loses or duplicates an item: for each
//! such method, many calls are cut short after a random number of polls, and every item put
//! in is found exactly once afterwards, either received by a call that finished or still in
//! the object. The same holds when a whole `Manager` is dropped with a call in flight, and
//! when a result cannot be decoded into the caller's type.
//!
//! `SYNCMAN_CANCEL_ITERS` sets the calls per method (default 2,000; the figure was
//! measured with 20,000).

use std::collections::BTreeMap;
use std::future::Future;
use std::task::Poll;
use std::time::{Duration, Instant};

use syncman_client::{Error, Manager};
use syncman_tests::TestNode;

use super::bad_input::within;

fn iterations() -> usize {
    std::env::var("SYNCMAN_CANCEL_ITERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000)
}

/// A small deterministic generator (no dependency): where to cut each call.
struct Cuts(u64);

impl Cuts {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

/// Polls `fut` at most `polls` times, yielding between polls so the connection's tasks and
/// the node make progress; drops it unfinished otherwise.
async fn poll_at_most<F: Future>(fut: F, polls: u64) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    for _ in 0..polls {
        if let Poll::Ready(out) =
            std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await
        {
            return Some(out);
        }
        tokio::task::yield_now().await;
    }
    None
}

/// Waits (bounded) until `received` plus what the object still holds accounts for every
/// item: undos of late answers are fire-and-forget, so they may still be on their way.
async fn settle<F, Fut>(what: &str, received: usize, total: usize, mut held: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = usize>,
{
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let now = held().await;
        if received + now >= total {
            return;
        }
        assert!(
            Instant::now() < end,
            "{what}: {received} received + {now} held < {total} put: items were lost"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Every item put is found exactly once among those received and those left.
fn assert_each_once(what: &str, total: u64, received: &[u64], left: &[u64]) {
    let mut seen = BTreeMap::new();
    for item in received.iter().chain(left) {
        *seen.entry(*item).or_insert(0) += 1;
    }
    let lost: Vec<_> = (0..total).filter(|i| !seen.contains_key(i)).collect();
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        lost.is_empty() && twice.is_empty() && seen.len() as u64 == total,
        "{what}: lost {lost:?}, duplicated {twice:?}"
    );
    eprintln!(
        "{what}: {total} items, {} received by calls that finished, {} left, none lost or \
         duplicated",
        received.len(),
        left.len()
    );
}

async fn node_and_manager() -> (TestNode, Manager) {
    let node = TestNode::start();
    let m = within("connect", node.manager()).await;
    (node, m)
}

#[tokio::test]
async fn dropped_queue_gets_lose_nothing() {
    let (_node, m) = node_and_manager().await;
    let n = iterations();
    let mut cuts = Cuts(1);
    for method in ["get", "get_timeout", "try_get"] {
        let q = m.new_queue::<u64>().await.unwrap();
        for i in 0..n as u64 {
            q.put(&i).await.unwrap();
        }
        let mut received = Vec::new();
        for _ in 0..n {
            let polls = cuts.next(8);
            let got = match method {
                "get" => poll_at_most(q.get(), polls).await.map(|r| r.map(Some)),
                "get_timeout" => poll_at_most(q.get_timeout(Duration::from_secs(5)), polls).await,
                _ => poll_at_most(q.try_get(), polls).await,
            };
            if let Some(item) = got.transpose().unwrap().flatten() {
                received.push(item);
            }
        }
        settle(method, received.len(), n, || async {
            q.len().await.unwrap()
        })
        .await;
        let mut left = Vec::new();
        while let Some(item) = q.try_get().await.unwrap() {
            left.push(item);
        }
        assert_each_once(&format!("Queue.{method}"), n as u64, &received, &left);
    }
}

/// Lease-style gets cut at random points: a lease whose answer came too late is given
/// back (`nack`); every lease taken is acknowledged; each item ends up acknowledged or in
/// the queue, once.
#[tokio::test]
async fn dropped_lease_gets_lose_nothing() {
    let (_node, m) = node_and_manager().await;
    let n = iterations();
    let mut cuts = Cuts(7);
    for method in ["get_lease", "get_lease_timeout", "try_get_lease"] {
        let q = m.new_queue::<u64>().await.unwrap();
        for i in 0..n as u64 {
            q.put(&i).await.unwrap();
        }
        let mut received = Vec::new();
        for _ in 0..n {
            let polls = cuts.next(8);
            let got = match method {
                "get_lease" => poll_at_most(q.get_lease(), polls)
                    .await
                    .map(|r| r.map(Some)),
                "get_lease_timeout" => {
                    poll_at_most(q.get_lease_timeout(Duration::from_secs(5)), polls).await
                }
                _ => poll_at_most(q.try_get_lease(), polls).await,
            };
            if let Some(lease) = got.transpose().unwrap().flatten() {
                received.push(lease.ack().await.unwrap());
            }
        }
        settle(method, received.len(), n, || async {
            q.len().await.unwrap()
        })
        .await;
        let mut left = Vec::new();
        while let Some(item) = q.try_get().await.unwrap() {
            left.push(item);
        }
        assert_each_once(&format!("Queue.{method}"), n as u64, &received, &left);
    }
}

#[tokio::test]
async fn dropped_parked_gets_lose_nothing_while_a_producer_puts() {
    let (node, m) = node_and_manager().await;
    let producer = within("connect", node.manager()).await;
    let n = iterations();
    let q = m.queue::<u64>("handoff").await.unwrap();
    let pq = producer.queue::<u64>("handoff").await.unwrap();
    // Items arrive while gets are parked, so answers race the drops on the node.
    let puts = tokio::spawn(async move {
        for i in 0..n as u64 {
            pq.put(&i).await.unwrap();
            if i % 4 == 0 {
                tokio::task::yield_now().await;
            }
        }
    });
    let mut cuts = Cuts(7);
    let mut received = Vec::new();
    for _ in 0..n {
        if let Some(item) = poll_at_most(q.get(), cuts.next(12)).await {
            received.push(item.unwrap());
        }
    }
    within("the producer", puts).await.unwrap();
    settle("parked get", received.len(), n, || async {
        q.len().await.unwrap()
    })
    .await;
    let mut left = Vec::new();
    while let Some(item) = q.try_get().await.unwrap() {
        left.push(item);
    }
    assert_each_once("Queue.get (parked)", n as u64, &received, &left);
}

#[tokio::test]
async fn dropped_list_pops_lose_nothing() {
    let (_node, m) = node_and_manager().await;
    let n = iterations();
    let mut cuts = Cuts(3);
    for method in ["pop", "pop_at"] {
        let l = m.new_list::<u64>().await.unwrap();
        l.extend(0..n as u64).await.unwrap();
        let mut received = Vec::new();
        for _ in 0..n {
            let polls = cuts.next(8);
            let got = match method {
                "pop" => poll_at_most(l.pop(), polls).await,
                _ => poll_at_most(l.pop_at(0), polls).await.map(|r| r.map(Some)),
            };
            match got {
                Some(Ok(Some(item))) => received.push(item),
                Some(Err(e)) if e.kind() == Some(&syncman_client::ErrorKind::IndexError) => {}
                Some(Ok(None)) | None => {}
                Some(Err(e)) => panic!("{method}: {e}"),
            }
        }
        settle(method, received.len(), n, || async {
            l.len().await.unwrap()
        })
        .await;
        let left = l.to_vec().await.unwrap();
        assert_each_once(&format!("list.{method}"), n as u64, &received, &left);
    }
}

#[tokio::test]
async fn dropped_dict_removals_lose_nothing() {
    let (_node, m) = node_and_manager().await;
    let n = iterations();
    let mut cuts = Cuts(5);
    for method in ["remove", "pop_item"] {
        let d = m.new_dict::<u64, u64>().await.unwrap();
        d.update((0..n as u64).map(|i| (i, i))).await.unwrap();
        let mut received = Vec::new();
        for i in 0..n as u64 {
            let polls = cuts.next(8);
            let got = match method {
                "remove" => poll_at_most(d.remove(&i), polls)
                    .await
                    .map(|r| r.map(|v| v.map(|v| (i, v)))),
                _ => poll_at_most(d.pop_item(), polls).await,
            };
            if let Some((k, v)) = got.transpose().unwrap().flatten() {
                assert_eq!(k, v, "a value came back under another key");
                received.push(k);
            }
        }
        settle(method, received.len(), n, || async {
            d.len().await.unwrap()
        })
        .await;
        let left = d.keys().await.unwrap();
        assert_each_once(&format!("dict.{method}"), n as u64, &received, &left);
    }
}

#[tokio::test]
async fn a_manager_dropped_with_a_get_in_flight_gives_the_item_back() {
    let node = TestNode::start();
    let owner = within("connect", node.manager()).await;
    let q = owner.queue::<u64>("jobs").await.unwrap();
    let rounds = (iterations() / 20).max(40);
    for i in 0..rounds as u64 {
        q.put(&i).await.unwrap();
    }
    let mut cuts = Cuts(11);
    let mut received = Vec::new();
    for _ in 0..rounds {
        let consumer = within("connect", node.manager()).await;
        let cq = consumer.queue::<u64>("jobs").await.unwrap();
        if let Some(item) = poll_at_most(cq.get(), cuts.next(10)).await {
            received.push(item.unwrap());
        }
        // The call and then the whole Manager go; the connection stays open until any
        // item already handed over has been given back.
        drop(cq);
        drop(consumer);
    }
    settle("Manager drop", received.len(), rounds, || async {
        q.len().await.unwrap()
    })
    .await;
    let mut left = Vec::new();
    while let Some(item) = q.try_get().await.unwrap() {
        left.push(item);
    }
    assert_each_once(
        "Queue.get, Manager dropped",
        rounds as u64,
        &received,
        &left,
    );
}

#[test]
fn an_item_that_cannot_be_decoded_goes_back_blocking_facade_too() {
    let node = TestNode::start();
    let m = syncman_client::blocking::Manager::connect(node.addr(), node.authkey()).unwrap();
    let words = m.queue::<String>("words").unwrap();
    words.put(&"not a number".to_string()).unwrap();
    // The same queue read as numbers: the item cannot be decoded into a u64.
    let numbers = m.queue::<u64>("words").unwrap();
    match numbers.get() {
        Err(Error::Decode(_)) => {}
        other => panic!("expected a decode error, got {other:?}"),
    }
    // It went back: a reader of the right type gets it.
    assert_eq!(
        words
            .get_timeout(Duration::from_secs(5))
            .unwrap()
            .as_deref(),
        Some("not a number")
    );
    // The same for a list pop and a dict removal.
    let list = m.list::<String>("l").unwrap();
    list.push(&"x".to_string()).unwrap();
    assert!(matches!(
        m.list::<u64>("l").unwrap().pop(),
        Err(Error::Decode(_))
    ));
    assert_eq!(list.to_vec().unwrap(), vec!["x".to_string()]);
    let dict = m.dict::<String, String>("d").unwrap();
    dict.insert(&"k".to_string(), &"v".to_string()).unwrap();
    assert!(matches!(
        m.dict::<String, u64>("d").unwrap().remove(&"k".to_string()),
        Err(Error::Decode(_))
    ));
    assert_eq!(dict.get(&"k".to_string()).unwrap().as_deref(), Some("v"));
}

/// `pop_at` gives an item back where it was, counted from either end: from the end, the
/// list is one shorter when the item goes back.
#[tokio::test]
async fn an_item_popped_at_an_index_goes_back_to_the_same_place() {
    let (_node, m) = node_and_manager().await;
    let signed = m.list::<i64>("l").await.unwrap();
    // The same list read as u64: a negative item cannot be decoded, and goes back.
    let unsigned = m.list::<u64>("l").await.unwrap();
    for (items, index) in [
        (vec![1, 2, -5, 3], -2),
        (vec![1, 2, 3, -5], -1),
        (vec![-5, 1, 2], -3),
        (vec![-5, 1, 2], 0),
        (vec![1, -5, 2], 1),
        (vec![1, 2, -5], 2),
    ] {
        signed.clear().await.unwrap();
        signed.extend(items.clone()).await.unwrap();
        match unsigned.pop_at(index).await {
            Err(Error::Decode(_)) => {}
            other => panic!("pop_at({index}) of {items:?}: {other:?}"),
        }
        // The undo was sent before the error came back, so it is on the node before this.
        assert_eq!(signed.to_vec().await.unwrap(), items, "pop_at({index})");
    }
}

#[tokio::test]
async fn a_dropped_condition_wait_leaves_the_lock_held_by_its_guard_or_released() {
    let node = TestNode::start();
    let m = within("connect", node.manager()).await;
    let observer = within("connect", node.manager()).await;
    let c = m.condition("c").await.unwrap();
    let oc = observer.condition("c").await.unwrap();
    // Another connection notifies all the time, so waits end at every point of the race.
    let stop = tokio_util::sync::CancellationToken::new();
    let notifier = tokio::spawn({
        let (oc, stop) = (oc.clone(), stop.clone());
        async move {
            while !stop.is_cancelled() {
                if let Some(g) = oc.acquire_timeout(Duration::from_millis(50)).await.unwrap() {
                    g.notify_all().await.unwrap();
                    g.release().await.unwrap();
                }
                tokio::task::yield_now().await;
            }
        }
    });
    let mut cuts = Cuts(13);
    let (mut completed, mut dropped) = (0, 0);
    for round in 0..(iterations() / 4).max(200) {
        // Bounded: a hold that no guard knows of would block this forever.
        let mut guard = within("acquire", c.acquire()).await.unwrap();
        // A wait dropped before its first poll never began: the guard still holds.
        drop(guard.wait());
        assert!(guard.is_held());
        // Cut at one of the first polls, or (one round in ten) never: how many polls a wait
        // needs to complete depends on the machine, and a completed wait is the other side
        // of the race, which a test must see, not hope for.
        let polls = if round % 10 == 9 {
            u64::MAX
        } else {
            1 + cuts.next(10)
        };
        let cut = within(
            "a wait, completed or cut",
            poll_at_most(guard.wait(), polls),
        );
        match cut.await {
            Some(result) => {
                result.unwrap();
                assert!(guard.is_held(), "a wait that returned holds the lock");
                completed += 1;
            }
            None => {
                assert!(!guard.is_held(), "a dropped wait says the lock is released");
                dropped += 1;
            }
        }
        // Whatever happened, no hold is left that no guard knows of: once this guard lets
        // go (if it holds), another connection can take the lock.
        drop(guard);
    }
    stop.cancel();
    within("the notifier", notifier).await.unwrap();
    let free = within("the lock comes free", async {
        loop {
            if let Some(g) = oc.try_acquire().await.unwrap() {
                break g;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    free.release().await.unwrap();
    eprintln!("Condition.wait: {completed} completed, {dropped} dropped, lock free at the end");
    assert!(
        completed > 0 && dropped > 0,
        "both sides of the race were exercised"
    );
}
