//! Queues, locks, semaphores, conditions, events and barriers: waits park on the node,
//! other calls carry on, cancelled waits take nothing, departed sessions release.

use std::time::Duration;

use futures_util::FutureExt;
use syncman_client::{proxy::is_broken_barrier, ErrorKind};
use syncman_protocol::Value;
use syncman_tests::{wait_for_object_waiters, wait_for_waiters, RawSession, TestNode};
use tokio::time::{timeout, Instant};

const LONG: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_parked_get_does_not_stall_its_connection() {
    let node = TestNode::start();
    let m = node.manager().await;
    let q = m.queue::<String>("jobs").await.unwrap();
    let waiting = tokio::spawn({
        let q = q.clone();
        async move { q.get().await }
    });
    wait_for_waiters(&m, "jobs", 1).await;
    // The same connection keeps serving while the get is parked.
    let d = m.dict::<String, i32>("d").await.unwrap();
    for i in 0..20 {
        d.insert(&format!("k{i}"), &i).await.unwrap();
    }
    assert!(!waiting.is_finished());
    let other = node.manager().await;
    other
        .queue::<String>("jobs")
        .await
        .unwrap()
        .put(&"job-1".into())
        .await
        .unwrap();
    assert_eq!(
        timeout(LONG, waiting).await.unwrap().unwrap().unwrap(),
        "job-1"
    );
}

#[tokio::test]
async fn queue_timeouts_bounds_and_nowait() {
    let node = TestNode::start();
    let m = node.manager().await;
    let q = m.new_bounded_queue::<i32>(2).await.unwrap();
    assert_eq!(q.try_get().await.unwrap(), None);
    let start = Instant::now();
    assert_eq!(
        q.get_timeout(Duration::from_millis(200)).await.unwrap(),
        None
    );
    assert!(
        start.elapsed() >= Duration::from_millis(190),
        "returned after {:?}",
        start.elapsed()
    );
    assert!(q.try_put(&1).await.unwrap());
    q.put(&2).await.unwrap();
    assert!(q.is_full().await.unwrap());
    assert!(!q.try_put(&3).await.unwrap());
    assert!(!q.put_timeout(&3, Duration::from_millis(100)).await.unwrap());
    // A parked put is admitted as soon as a get makes room.
    let putter = tokio::spawn({
        let q = q.clone();
        async move { q.put(&3).await }
    });
    wait_for_object_waiters(&m, q.id(), 1).await;
    assert_eq!(q.get().await.unwrap(), 1);
    timeout(LONG, putter).await.unwrap().unwrap().unwrap();
    assert_eq!(q.len().await.unwrap(), 2);
    assert_eq!(q.get().await.unwrap(), 2);
    assert_eq!(q.get().await.unwrap(), 3);
    assert!(q.is_empty().await.unwrap());
}

#[tokio::test]
async fn a_dropped_get_takes_nothing() {
    let node = TestNode::start();
    let m = node.manager().await;
    let q = m.queue::<i32>("q").await.unwrap();
    // Give up on a parked get by dropping its future.
    let get = tokio::spawn({
        let q = q.clone();
        async move { q.get().await }
    });
    wait_for_waiters(&m, "q", 1).await;
    get.abort();
    assert!(get.await.unwrap_err().is_cancelled());
    q.put(&42).await.unwrap();
    // The withdrawn waiter did not take the item: the next get receives it.
    assert_eq!(timeout(LONG, q.get()).await.unwrap().unwrap(), 42);
    assert_eq!(q.try_get().await.unwrap(), None);
}

#[tokio::test]
async fn joinable_queue_task_done_and_join() {
    let node = TestNode::start();
    let m = node.manager().await;
    let q = m.new_joinable_queue::<u8>().await.unwrap();
    q.join().await.unwrap(); // nothing unfinished
    q.put(&1).await.unwrap();
    q.put(&2).await.unwrap();
    let joiner = tokio::spawn({
        let q = q.clone();
        async move { q.join().await }
    });
    q.get().await.unwrap();
    q.task_done().await.unwrap();
    // The join is parked on the node with one task still unfinished.
    wait_for_object_waiters(&m, q.id(), 1).await;
    assert!(
        !joiner.is_finished(),
        "join returned with a task unfinished"
    );
    q.get().await.unwrap();
    q.task_done().await.unwrap();
    timeout(LONG, joiner).await.unwrap().unwrap().unwrap();
    let err = q.task_done().await.unwrap_err();
    assert_eq!(err.kind(), Some(&ErrorKind::ValueError));
    // A plain Queue has them too, as CPython's (which registers queue.Queue for both).
    let plain = m.new_queue::<u8>().await.unwrap();
    assert_eq!(
        plain.task_done().await.unwrap_err().kind(),
        Some(&ErrorKind::ValueError)
    );
    plain.put(&1).await.unwrap();
    plain.get().await.unwrap();
    plain.task_done().await.unwrap();
    timeout(LONG, plain.join()).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_gives_mutual_exclusion_and_increasing_tokens() {
    let node = TestNode::start();
    const WORKERS: usize = 6;
    const ROUNDS: usize = 25;
    let mut joins = Vec::new();
    for _ in 0..WORKERS {
        let m = node.manager().await;
        joins.push(tokio::spawn(async move {
            let lock = m.lock("counter-lock").await.unwrap();
            let counter = m.value("counter", 0u64).await.unwrap();
            let mut tokens = Vec::new();
            for _ in 0..ROUNDS {
                let guard = lock.acquire().await.unwrap();
                tokens.push(guard.fencing_token());
                // A read-modify-write that loses updates without mutual exclusion.
                let v = counter.get().await.unwrap();
                counter.set(&(v + 1)).await.unwrap();
                guard.release().await.unwrap();
            }
            tokens
        }));
    }
    let mut all = Vec::new();
    for j in joins {
        all.extend(timeout(Duration::from_secs(60), j).await.unwrap().unwrap());
    }
    let m = node.manager().await;
    assert_eq!(
        m.value("counter", 0u64).await.unwrap().get().await.unwrap(),
        (WORKERS * ROUNDS) as u64
    );
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), WORKERS * ROUNDS, "every grant has its own token");
}

#[tokio::test]
async fn a_departed_holder_releases_its_lock_to_the_next_waiter() {
    let node = TestNode::start();
    let m = node.manager().await;
    let lock = m.lock("L").await.unwrap();

    // A raw session takes the lock and vanishes without releasing it.
    let mut raw = RawSession::connect(node.addr(), node.authkey()).await;
    let id = match raw
        .call(
            0,
            "get_or_create",
            &[
                Value::Str("Lock".into()),
                Value::Str("L".into()),
                Value::Array(vec![]),
            ],
        )
        .await
        .unwrap()
    {
        Value::Int(id) => id as u64,
        other => panic!("{other:?}"),
    };
    let first_token = match raw.call(id, "acquire_fenced", &[]).await.unwrap() {
        Value::Int(t) => t as u64,
        other => panic!("{other:?}"),
    };
    assert!(lock.try_acquire().await.unwrap().is_none(), "lock is held");
    let waiter = tokio::spawn({
        let lock = lock.clone();
        async move { lock.acquire().await.map(|g| g.fencing_token()) }
    });
    wait_for_waiters(&m, "L", 1).await;
    drop(raw);
    let token = timeout(LONG, waiter).await.unwrap().unwrap().unwrap();
    assert!(token > first_token, "token {token} after {first_token}");
}

#[tokio::test]
async fn lock_guard_drop_and_timeouts_and_rlock() {
    let node = TestNode::start();
    let m = node.manager().await;
    let other = node.manager().await;
    let lock = m.new_lock().await.unwrap();
    let guard = lock.acquire().await.unwrap();
    assert!(lock.locked().await.unwrap());
    let lock2 = other.lock("named").await.unwrap();
    let _g2 = lock2.acquire().await.unwrap();
    let lock2_here = m.lock("named").await.unwrap();
    let start = Instant::now();
    assert!(lock2_here
        .acquire_timeout(Duration::from_millis(150))
        .await
        .unwrap()
        .is_none());
    assert!(start.elapsed() >= Duration::from_millis(140));
    drop(guard); // released by the drop
    let end = Instant::now() + LONG;
    while lock.locked().await.unwrap() {
        assert!(Instant::now() < end, "dropped guard did not release");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let r = m.new_rlock().await.unwrap();
    let a = r.acquire().await.unwrap();
    // Re-entry goes through the guard; another acquire, even on this connection, waits.
    assert!(r.try_acquire().await.unwrap().is_none());
    let b = a.reenter().await.unwrap();
    assert_eq!(a.fencing_token(), b.fencing_token());
    b.release().await.unwrap();
    assert!(r.locked().await.unwrap());
    a.release().await.unwrap();
    assert!(!r.locked().await.unwrap());
    // A plain Lock is not re-entrant.
    let g = lock.acquire().await.unwrap();
    assert_eq!(
        g.reenter().await.unwrap_err().kind(),
        Some(&ErrorKind::RuntimeError)
    );
}

#[tokio::test]
async fn an_rlock_and_a_condition_exclude_two_tasks_of_one_manager() {
    let node = TestNode::start();
    let m = node.manager().await;
    for typeid in ["RLock", "Condition"] {
        let name = format!("shared-{typeid}");
        // Task A holds it; task B, on the same Manager, must wait until A lets go.
        let (a_holds, b_tries) = (
            std::sync::Arc::new(tokio::sync::Notify::new()),
            std::sync::Arc::new(tokio::sync::Notify::new()),
        );
        let holder = tokio::spawn({
            let (m, name) = (m.clone(), name.clone());
            let (a_holds, b_tries) = (a_holds.clone(), b_tries.clone());
            async move {
                if typeid == "RLock" {
                    let g = m.rlock(&name).await.unwrap().acquire().await.unwrap();
                    a_holds.notify_one();
                    b_tries.notified().await;
                    g.release().await.unwrap();
                } else {
                    let g = m.condition(&name).await.unwrap().acquire().await.unwrap();
                    a_holds.notify_one();
                    b_tries.notified().await;
                    g.release().await.unwrap();
                }
            }
        });
        a_holds.notified().await;
        let excluded = if typeid == "RLock" {
            let r = m.rlock(&name).await.unwrap();
            r.try_acquire().await.unwrap().is_none()
        } else {
            let c = m.condition(&name).await.unwrap();
            c.try_acquire().await.unwrap().is_none()
        };
        assert!(
            excluded,
            "{typeid}: a second task of the same Manager got it"
        );
        b_tries.notify_one();
        timeout(LONG, holder).await.unwrap().unwrap();
        // Once A let go, B gets it.
        let got = if typeid == "RLock" {
            let r = m.rlock(&name).await.unwrap();
            timeout(LONG, r.acquire()).await.unwrap().is_ok()
        } else {
            let c = m.condition(&name).await.unwrap();
            timeout(LONG, c.acquire()).await.unwrap().is_ok()
        };
        assert!(got, "{typeid}: B never got it");
    }
}

#[tokio::test]
async fn semaphores_count_and_bound() {
    let node = TestNode::start();
    let m = node.manager().await;
    let s = m.new_semaphore(2).await.unwrap();
    let p1 = s.acquire().await.unwrap();
    let _p2 = s.acquire().await.unwrap();
    assert!(s.try_acquire().await.unwrap().is_none());
    assert!(s
        .acquire_timeout(Duration::from_millis(50))
        .await
        .unwrap()
        .is_none());
    let waiter = tokio::spawn({
        let s = s.clone();
        async move { s.acquire().await.map(|permit| permit.forget()) }
    });
    wait_for_object_waiters(&m, s.id(), 1).await;
    p1.release().await.unwrap();
    timeout(LONG, waiter).await.unwrap().unwrap().unwrap();
    assert_eq!(s.value().await.unwrap(), 0);

    let b = m.new_bounded_semaphore(1).await.unwrap();
    let err = b.release().await.unwrap_err();
    assert_eq!(err.kind(), Some(&ErrorKind::ValueError));
}

#[tokio::test]
async fn events_wake_every_waiter() {
    let node = TestNode::start();
    let m = node.manager().await;
    let e = m.event("go").await.unwrap();
    assert!(!e.wait_timeout(Duration::from_millis(50)).await.unwrap());
    let mut waiters = Vec::new();
    for _ in 0..5 {
        let e = node.manager().await.event("go").await.unwrap();
        waiters.push(tokio::spawn(async move { e.wait().await }));
    }
    wait_for_waiters(&m, "go", 5).await;
    e.set().await.unwrap();
    for w in waiters {
        timeout(LONG, w).await.unwrap().unwrap().unwrap();
    }
    assert!(e.is_set().await.unwrap());
    e.clear().await.unwrap();
    assert!(!e.is_set().await.unwrap());
}

#[tokio::test]
async fn condition_wait_and_notify() {
    let node = TestNode::start();
    let a = node.manager().await;
    let b = node.manager().await;
    let ca = a.condition("c").await.unwrap();
    let cb = b.condition("c").await.unwrap();
    let flag = a.value("flag", false).await.unwrap();

    let mut ga = ca.acquire().await.unwrap();
    assert!(
        !ga.wait_timeout(Duration::from_millis(50)).await.unwrap(),
        "timed out, lock held again"
    );
    assert!(ga.is_held());
    // A wait dropped once it has begun leaves the lock released, and the guard knows.
    assert!(ga.wait().now_or_never().is_none(), "the wait parks");
    assert!(!ga.is_held());
    let gb = timeout(LONG, cb.acquire()).await.unwrap().unwrap();
    gb.release().await.unwrap();
    // Waiting through a guard that does not hold the lock is Python's RuntimeError.
    assert_eq!(
        ga.wait().await.unwrap_err().kind(),
        Some(&ErrorKind::RuntimeError)
    );
    drop(ga);
    let mut ga = ca.acquire().await.unwrap();
    let waiter = tokio::spawn({
        let flag = flag.clone();
        async move {
            let ok = ga.wait_for(|| async { flag.get().await }, Some(LONG)).await;
            ga.release().await.unwrap();
            ok
        }
    });
    wait_for_waiters(&a, "c", 1).await;
    let gb = cb.acquire().await.unwrap(); // possible only because wait released the lock
    b.value("flag", false)
        .await
        .unwrap()
        .set(&true)
        .await
        .unwrap();
    gb.notify_all().await.unwrap();
    gb.release().await.unwrap();
    assert!(timeout(LONG, waiter).await.unwrap().unwrap().unwrap());
}

#[tokio::test]
async fn barrier_release_timeout_abort_reset_and_departure() {
    let node = TestNode::start();
    let mut parties = Vec::new();
    for _ in 0..3 {
        let b = node.manager().await.barrier("phase", 3).await.unwrap();
        parties.push(tokio::spawn(async move { b.wait().await }));
    }
    let mut indexes: Vec<u64> = Vec::new();
    for p in parties {
        indexes.push(timeout(LONG, p).await.unwrap().unwrap().unwrap());
    }
    indexes.sort_unstable();
    assert_eq!(indexes, vec![0, 1, 2]);

    // A timeout breaks the barrier for everyone waiting.
    let m = node.manager().await;
    let b = m.new_barrier(3).await.unwrap();
    let patient = tokio::spawn({
        let b = b.clone();
        async move { b.wait().await }
    });
    wait_for_object_waiters(&m, b.id(), 1).await;
    assert_eq!(b.n_waiting().await.unwrap(), 1);
    let err = b
        .wait_timeout(Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(is_broken_barrier(&err), "{err}");
    assert!(is_broken_barrier(
        &timeout(LONG, patient).await.unwrap().unwrap().unwrap_err()
    ));
    assert!(b.broken().await.unwrap());
    assert!(is_broken_barrier(&b.wait().await.unwrap_err()));
    b.reset().await.unwrap();
    assert!(!b.broken().await.unwrap());
    assert_eq!(b.parties().await.unwrap(), 3);

    // Abort breaks it too.
    let w = tokio::spawn({
        let b = b.clone();
        async move { b.wait().await }
    });
    wait_for_object_waiters(&m, b.id(), 1).await;
    b.abort().await.unwrap();
    assert!(is_broken_barrier(
        &timeout(LONG, w).await.unwrap().unwrap().unwrap_err()
    ));
    b.reset().await.unwrap();

    // A waiting party that disconnects breaks it, as a timeout would.
    let leaver = node.manager().await;
    let lb = leaver.barrier("phase2", 2).await.unwrap();
    let stayer = m.barrier("phase2", 2).await.unwrap();
    let gone = tokio::spawn(async move { lb.wait().await });
    wait_for_waiters(&m, "phase2", 1).await;
    gone.abort(); // drops the wait future: the client cancels it
    let _ = gone.await;
    drop(leaver);
    let end = Instant::now() + LONG;
    while !stayer.broken().await.unwrap() {
        assert!(
            Instant::now() < end,
            "barrier not broken by the departed party"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(is_broken_barrier(&stayer.wait().await.unwrap_err()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_parked_waiters_cost_no_threads() {
    let node = TestNode::start();
    let m = node.manager().await;
    let e = m.event("many").await.unwrap();
    m.ping().await.unwrap();
    let threads_before = node.threads().expect("thread count");
    let mut waiters = Vec::new();
    for _ in 0..1000 {
        let e = e.clone();
        waiters.push(tokio::spawn(async move { e.wait().await }));
    }
    // Wait until all 1000 are parked on the node.
    wait_for_waiters(&m, "many", 1000).await;
    let threads_parked = node.threads().expect("thread count");
    assert!(
        threads_parked <= threads_before,
        "threads grew from {threads_before} to {threads_parked}"
    );
    e.set().await.unwrap();
    for w in waiters {
        timeout(LONG, w).await.unwrap().unwrap().unwrap();
    }
}

/// Polls `cond` on the node's state until it holds (bounded by 10 s).
async fn until<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = Instant::now() + Duration::from_secs(10);
    while !cond().await {
        assert!(Instant::now() < end, "never: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn leased_units_come_back_once_and_forgotten_ones_are_consumed() {
    let node = TestNode::start();
    let producer = node.manager().await;
    let sem = producer.semaphore("signals", 0).await.unwrap();
    let sessions = producer.status().await.unwrap().sessions;

    // A process takes 100 units through permits while a producer releases them, then
    // exits holding them (its connection simply goes: no release is ever sent).
    let mut holder = RawSession::connect(node.addr(), node.authkey()).await;
    let id = match holder
        .call(
            0,
            "get_or_create",
            &[Value::Str("Semaphore".into()), Value::Str("signals".into())],
        )
        .await
        .unwrap()
    {
        Value::Int(id) => id as u64,
        other => panic!("{other:?}"),
    };
    for _ in 0..100 {
        let lease = holder.feed(id, "acquire_lease", &[]).await;
        holder.flush().await;
        sem.release().await.unwrap();
        let (got, granted) = timeout(Duration::from_secs(10), holder.recv())
            .await
            .expect("a unit leased");
        assert_eq!((got, granted), (lease, Ok(Value::Bool(true))));
    }
    assert_eq!(sem.value().await.unwrap(), 0);
    drop(holder);
    until("the holder's session ended", || async {
        producer.status().await.unwrap().sessions == sessions
    })
    .await;
    assert_eq!(
        sem.value().await.unwrap(),
        100,
        "every leased unit came back once"
    );
    for _ in 0..100 {
        sem.acquire().await.unwrap().forget();
    }
    assert_eq!(sem.value().await.unwrap(), 0);

    // The same 100 units taken and forgotten (consumed signals): they never come back.
    let consumer = node.manager().await;
    let cs = consumer.semaphore("signals", 0).await.unwrap();
    let takes = tokio::spawn(async move {
        for _ in 0..100 {
            cs.acquire().await.unwrap().forget();
        }
    });
    for _ in 0..100 {
        sem.release().await.unwrap();
    }
    timeout(Duration::from_secs(10), takes)
        .await
        .expect("100 units taken")
        .unwrap();
    drop(consumer);
    until("the consumer's session ended", || async {
        producer.status().await.unwrap().sessions == sessions
    })
    .await;
    assert_eq!(
        sem.value().await.unwrap(),
        0,
        "forgotten units stay consumed"
    );
}
