//! An embedding program registers its own type (Python's `BaseManager.register`) and a
//! client reaches it by name, through the same trait the built-in types implement.

use std::sync::{Arc, Mutex};

use syncman_client::{ErrorKind, Manager};
use syncman_protocol::{Args, RemoteError, Value};
use syncman_server::{check_call, CallCtx, MethodSpec, Outcome, Server, SharedObject};

/// A counter that only goes up.
struct Counter {
    n: Mutex<i128>,
}

const METHODS: &[MethodSpec] = &[("incr", 0, 1), ("get", 0, 0)];

impl SharedObject for Counter {
    fn typeid(&self) -> &str {
        "Counter"
    }

    fn call(&self, method: &str, mut args: Args, _ctx: &mut CallCtx) -> Outcome {
        let result = check_call("Counter", METHODS, method, &args).and_then(|()| {
            let mut n = self.n.lock().unwrap();
            if method == "incr" {
                let by = args.opt_value()?.and_then(|v| v.as_int()).unwrap_or(1);
                if by < 0 {
                    return Err(RemoteError::value_error("a counter only goes up"));
                }
                *n += by;
            }
            Ok(Value::Int(*n).to_bytes())
        });
        Outcome::Ready(result)
    }
}

#[tokio::test]
async fn an_embedding_program_registers_its_own_type() {
    let server = Server::builder(b"embedded".to_vec())
        .register("Counter", |mut args| {
            let start = args.opt_value()?.and_then(|v| v.as_int()).unwrap_or(0);
            args.finish()?;
            Ok(Arc::new(Counter {
                n: Mutex::new(start),
            }) as Arc<dyn SharedObject>)
        })
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = server.shutdown_handle();
    let running = tokio::spawn(server.run(listener));

    let m = Manager::connect(addr, b"embedded").await.unwrap();
    let ctor = rmp_serde::to_vec(&(10,)).unwrap();
    let hits = m.get_or_create_raw("Counter", "hits", &ctor).await.unwrap();
    assert_eq!(hits.call::<_, i64>("incr", &(5,)).await.unwrap(), 15);
    assert_eq!(hits.call::<_, i64>("incr", &()).await.unwrap(), 16);
    // A second client sees the same object by name.
    let other = Manager::connect(addr, b"embedded").await.unwrap();
    let same = other
        .get_or_create_raw("Counter", "hits", &ctor)
        .await
        .unwrap();
    assert_eq!(same.call::<_, i64>("get", &()).await.unwrap(), 16);
    let err = same.call::<_, i64>("incr", &(-1,)).await.unwrap_err();
    assert_eq!(err.kind(), Some(&ErrorKind::ValueError));
    let err = same.call::<_, i64>("reset", &()).await.unwrap_err();
    assert_eq!(err.kind(), Some(&ErrorKind::AttributeError));
    // Built-ins are still there beside it.
    m.dict::<String, i32>("d")
        .await
        .unwrap()
        .insert(&"k".into(), &1)
        .await
        .unwrap();

    stop.shutdown();
    tokio::time::timeout(std::time::Duration::from_secs(10), running)
        .await
        .expect("node stopped")
        .unwrap()
        .unwrap();
}
