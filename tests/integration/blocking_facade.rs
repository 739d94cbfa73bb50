//! The blocking facade (`syncman_client::blocking`): plain threads, no async runtime, the
//! real node. Every wait is bounded: calls that park use their timeout forms, and threads
//! are joined with a deadline.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use syncman_client::blocking::Manager;
use syncman_client::Error;
use syncman_tests::TestNode;

const LONG: Duration = Duration::from_secs(10);

fn connect(node: &TestNode) -> Manager {
    Manager::connect(node.addr(), node.authkey()).expect("blocking connect to the test node")
}

/// Joins `handle` if it finishes within `within`; panics (with the thread's panic) otherwise.
fn join_within<T>(handle: JoinHandle<T>, within: Duration) -> T {
    let end = Instant::now() + within;
    while !handle.is_finished() {
        assert!(
            Instant::now() < end,
            "thread still running after {within:?}"
        );
        thread::sleep(Duration::from_millis(5));
    }
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

#[test]
fn dict_and_list_are_shared_between_two_managers() {
    let node = Arc::new(TestNode::start());
    let a = connect(&node);
    let scores = a.dict::<String, i64>("scores").unwrap();
    scores.insert(&"alice".into(), &3).unwrap();
    let log = a.list::<String>("log").unwrap();
    log.push(&"from a".into()).unwrap();

    // A second manager, connected on another thread, sees and changes the same objects.
    let other = thread::spawn({
        let node = node.clone();
        move || {
            let b = connect(&node);
            let scores = b.dict::<String, i64>("scores").unwrap();
            let before = scores.get(&"alice".into()).unwrap();
            scores.insert(&"bob".into(), &7).unwrap();
            let log = b.list::<String>("log").unwrap();
            log.extend(["from b".to_string(), "again b".to_string()])
                .unwrap();
            before
        }
    });
    assert_eq!(join_within(other, LONG), Some(3));

    assert_eq!(scores.get(&"bob".into()).unwrap(), Some(7));
    assert_eq!(scores.get(&"carol".into()).unwrap(), None);
    let all: BTreeMap<String, i64> = scores.to_map().unwrap();
    assert_eq!(
        all,
        BTreeMap::from([("alice".into(), 3), ("bob".into(), 7)])
    );
    assert_eq!(log.to_vec().unwrap(), vec!["from a", "from b", "again b"]);
    assert_eq!(log.slice(1..).unwrap(), vec!["from b", "again b"]);
    assert_eq!(log.pop().unwrap().as_deref(), Some("again b"));
    assert_eq!(log.len().unwrap(), 2);
}

#[test]
fn queue_moves_300_items_from_3_producers_to_3_consumers_exactly_once() {
    const PRODUCERS: u64 = 3;
    const CONSUMERS: usize = 3;
    const PER_PRODUCER: u64 = 100;
    const PER_CONSUMER: usize = (PRODUCERS * PER_PRODUCER) as usize / CONSUMERS;
    let node = Arc::new(TestNode::start());
    // Consumers first, so some of them park on the empty queue.
    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|_| {
            let node = node.clone();
            thread::spawn(move || {
                let q = connect(&node).queue::<u64>("work").unwrap();
                (0..PER_CONSUMER)
                    .map(|_| {
                        q.get_timeout(LONG)
                            .unwrap()
                            .expect("an item within the timeout")
                    })
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let node = node.clone();
            thread::spawn(move || {
                let q = connect(&node).queue::<u64>("work").unwrap();
                for i in 0..PER_PRODUCER {
                    q.put(&(p * 1000 + i)).unwrap();
                }
            })
        })
        .collect();
    for p in producers {
        join_within(p, LONG * 3);
    }
    let mut got = Vec::new();
    for c in consumers {
        let items = join_within(c, LONG * 3);
        // FIFO: one consumer sees each producer's items in the order they were put.
        for p in 0..PRODUCERS {
            let from_p: Vec<u64> = items.iter().copied().filter(|v| v / 1000 == p).collect();
            assert!(
                from_p.windows(2).all(|w| w[0] < w[1]),
                "out of order from producer {p}: {from_p:?}"
            );
        }
        got.extend(items);
    }
    got.sort_unstable();
    let mut expected: Vec<u64> = (0..PRODUCERS)
        .flat_map(|p| (0..PER_PRODUCER).map(move |i| p * 1000 + i))
        .collect();
    expected.sort_unstable();
    assert_eq!(got, expected, "every item got exactly once");
    let q = connect(&node).queue::<u64>("work").unwrap();
    assert_eq!(q.try_get().unwrap(), None);
}

#[test]
fn lock_serialises_a_counter_across_4_threads() {
    const THREADS: usize = 4;
    const ROUNDS: usize = 25;
    let node = Arc::new(TestNode::start());
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let node = node.clone();
            thread::spawn(move || {
                let m = connect(&node);
                let lock = m.lock("counter-lock").unwrap();
                let counter = m.value("counter", 0u64).unwrap();
                let mut tokens = Vec::new();
                for round in 0..ROUNDS {
                    let guard = lock
                        .acquire_timeout(LONG)
                        .unwrap()
                        .expect("the lock within the timeout");
                    tokens.push(guard.fencing_token());
                    // A read-modify-write that loses updates without mutual exclusion.
                    let v = counter.get().unwrap();
                    thread::yield_now();
                    counter.set(&(v + 1)).unwrap();
                    if round % 2 == 0 {
                        guard.release().unwrap();
                    } else {
                        drop(guard); // released by the drop
                    }
                }
                tokens
            })
        })
        .collect();
    let mut tokens = Vec::new();
    for w in workers {
        let mine = join_within(w, LONG * 6);
        assert!(
            mine.windows(2).all(|t| t[0] < t[1]),
            "tokens grow: {mine:?}"
        );
        tokens.extend(mine);
    }
    let m = connect(&node);
    assert_eq!(
        m.value("counter", 0u64).unwrap().get().unwrap(),
        (THREADS * ROUNDS) as u64
    );
    let distinct: HashSet<u64> = tokens.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        THREADS * ROUNDS,
        "every grant has its own token"
    );
    assert!(!m.lock("counter-lock").unwrap().locked().unwrap());
}

#[test]
fn barrier_of_3_threads_gives_indexes_0_1_2() {
    let node = Arc::new(TestNode::start());
    let parties: Vec<_> = (0..3)
        .map(|_| {
            let node = node.clone();
            thread::spawn(move || {
                let b = connect(&node).barrier("phase", 3).unwrap();
                b.wait_timeout(LONG).unwrap()
            })
        })
        .collect();
    let mut indexes: Vec<u64> = parties
        .into_iter()
        .map(|p| join_within(p, LONG * 2))
        .collect();
    indexes.sort_unstable();
    assert_eq!(indexes, vec![0, 1, 2]);
}

#[test]
fn get_timeout_returns_none_after_the_timeout() {
    let node = TestNode::start();
    let q = connect(&node).new_queue::<String>().unwrap();
    assert_eq!(q.try_get().unwrap(), None);
    let start = Instant::now();
    assert_eq!(q.get_timeout(Duration::from_millis(300)).unwrap(), None);
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(290) && waited < Duration::from_secs(5),
        "returned after {waited:?}"
    );
    // The queue still works, and nothing was taken by the timed-out get.
    q.put(&"late".into()).unwrap();
    assert_eq!(q.len().unwrap(), 1);
    assert_eq!(q.get_timeout(LONG).unwrap().as_deref(), Some("late"));
}

#[test]
fn an_event_set_on_one_thread_wakes_waiters_on_others() {
    let node = Arc::new(TestNode::start());
    let m = connect(&node);
    let e = m.event("go").unwrap();
    assert!(!e.wait_timeout(Duration::from_millis(50)).unwrap());
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let node = node.clone();
            thread::spawn(move || {
                let e = connect(&node).event("go").unwrap();
                let woke = e.wait_timeout(LONG).unwrap();
                (woke, Instant::now())
            })
        })
        .collect();
    // All three are parked on the node before the flag is set.
    syncman_tests::wait_for_waiters_blocking(&m, "go", 3);
    let set_at = Instant::now();
    let setter = thread::spawn(move || e.set().unwrap());
    join_within(setter, LONG);
    for w in waiters {
        let (woke, at) = join_within(w, LONG * 2);
        assert!(woke, "the wait ended with the flag set");
        assert!(at >= set_at, "a waiter returned before the set");
    }
    assert!(m.event("go").unwrap().is_set().unwrap());
}

#[test]
fn condition_wait_for_takes_a_blocking_predicate() {
    let node = Arc::new(TestNode::start());
    let m = connect(&node);
    let c = m.condition("c").unwrap();
    let flag = m.value("flag", false).unwrap();
    let mut guard = c.acquire().unwrap();
    let start = Instant::now();
    assert!(!guard
        .wait_for(|| flag.get(), Some(Duration::from_millis(200)))
        .unwrap());
    assert!(start.elapsed() >= Duration::from_millis(190));
    guard.release().unwrap();

    let waiter = thread::spawn({
        let (c, flag) = (c.clone(), flag.clone());
        move || {
            let mut guard = c.acquire().unwrap();
            let ok = guard.wait_for(|| flag.get(), Some(LONG)).unwrap();
            guard.release().unwrap();
            ok
        }
    });
    // Another thread of the same Manager changes the flag under the lock and notifies:
    // it can take the lock only because the waiter's wait released it.
    syncman_tests::wait_for_waiters_blocking(&m, "c", 1);
    let g2 = c.acquire().unwrap();
    m.value("flag", false).unwrap().set(&true).unwrap();
    g2.notify_all().unwrap();
    g2.release().unwrap();
    assert!(join_within(waiter, LONG * 2));
}

#[test]
fn semaphores_and_values_work_too() {
    let node = TestNode::start();
    let m = connect(&node);
    let s = m.new_semaphore(2).unwrap();
    let p1 = s.acquire().unwrap();
    let p2 = s.try_acquire().unwrap().expect("a second unit");
    assert!(s.try_acquire().unwrap().is_none());
    assert!(s
        .acquire_timeout(Duration::from_millis(50))
        .unwrap()
        .is_none());
    p1.release().unwrap();
    assert_eq!(s.value().unwrap(), 1);
    p2.forget();
    assert_eq!(s.value().unwrap(), 1);

    let ns = m.namespace("cfg").unwrap();
    ns.set("retries", &3u8).unwrap();
    assert_eq!(ns.get::<u8>("retries").unwrap(), Some(3));
    assert!(ns.remove("retries").unwrap());
    assert_eq!(ns.get::<u8>("retries").unwrap(), None);

    let a = m.new_array(&[1i32, 2, 3]).unwrap();
    a.set(-1, 30).unwrap();
    assert_eq!(a.to_vec().unwrap(), vec![1, 2, 30]);
    let adopted = connect(&node).adopt(a.id()).unwrap();
    assert_eq!(adopted.id(), a.id());
}

/// Inside a runtime the facade refuses with a clear error instead of panicking, and a
/// manager made elsewhere can still be dropped there.
#[tokio::test]
async fn inside_a_runtime_the_facade_returns_inside_runtime() {
    let node = TestNode::start();
    let err = Manager::connect(node.addr(), node.authkey()).unwrap_err();
    assert!(matches!(err, Error::InsideRuntime), "{err:?}");
    assert!(err.to_string().contains("async runtime"), "{err}");

    // Connected on a plain thread, then used and dropped on this runtime.
    let (addr, key) = (node.addr(), node.authkey().to_vec());
    let made = thread::spawn(move || {
        Manager::connect(addr, key).map(|m| {
            let q = m.queue::<u8>("q").unwrap();
            (m, q)
        })
    });
    let (m, q) = join_within(made, LONG).unwrap();
    assert!(matches!(m.ping().unwrap_err(), Error::InsideRuntime));
    assert!(matches!(q.try_get().unwrap_err(), Error::InsideRuntime));
    drop(q);
    drop(m);
}

#[test]
fn an_rlock_excludes_two_threads_of_one_manager_and_reenters_through_its_guard() {
    let node = TestNode::start();
    let m = connect(&node);
    let r = m.rlock("r").unwrap();
    let held = r.acquire().unwrap();
    // Another thread of the same Manager is excluded while the guard holds the lock.
    let other = thread::spawn({
        let r = r.clone();
        move || r.try_acquire().unwrap().is_none()
    });
    assert!(join_within(other, LONG), "a second thread got a held RLock");
    // Re-entry goes through the guard.
    let again = held.reenter().unwrap();
    assert_eq!(again.fencing_token(), held.fencing_token());
    again.release().unwrap();
    let waiter = thread::spawn({
        let r = r.clone();
        move || r.acquire_timeout(LONG).unwrap().is_some()
    });
    syncman_tests::wait_for_waiters_blocking(&m, "r", 1);
    held.release().unwrap();
    assert!(
        join_within(waiter, LONG * 2),
        "the waiting thread got it once released"
    );
}

/// `condition_over`: the Condition and its `RLock` share one hold. A waiter's wait releases
/// the lock to a guard taken through the `RLock`, and a notify wakes it.
#[test]
fn a_condition_over_an_rlock_shares_its_hold() {
    let node = Arc::new(TestNode::start());
    let m = connect(&node);
    let lock = m.rlock("r").unwrap();
    let c = m.condition_over("c", &lock).unwrap();
    let guard = lock.acquire().unwrap();
    assert!(c.try_acquire().unwrap().is_none(), "held through the RLock");
    guard.release().unwrap();

    let waiter = thread::spawn({
        let c = c.clone();
        move || {
            let mut guard = c.acquire().unwrap();
            let notified = guard.wait_timeout(LONG).unwrap();
            guard.release().unwrap();
            notified
        }
    });
    syncman_tests::wait_for_waiters_blocking(&m, "c", 1);
    let guard = lock.acquire().unwrap();
    assert!(c.try_acquire().unwrap().is_none());
    guard.release().unwrap();
    let g = c.acquire().unwrap();
    g.notify(1).unwrap();
    g.release().unwrap();
    assert!(join_within(waiter, LONG * 2));
}
