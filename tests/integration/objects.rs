//! Shared dicts, lists, namespaces, values and arrays across connections.

use std::collections::HashMap;

use syncman_client::ErrorKind;
use syncman_tests::TestNode;

#[tokio::test]
async fn two_connections_share_named_objects() {
    let node = TestNode::start();
    let a = node.manager().await;
    let b = node.manager().await;

    let da = a.dict::<String, i64>("scores").await.unwrap();
    let db = b.dict::<String, i64>("scores").await.unwrap();
    assert_eq!(da.id(), db.id());
    da.insert(&"alice".into(), &3).await.unwrap();
    assert_eq!(db.get(&"alice".into()).await.unwrap(), Some(3));
    assert_eq!(db.get(&"bob".into()).await.unwrap(), None);

    let la = a.list::<String>("log").await.unwrap();
    let lb = b.list::<String>("log").await.unwrap();
    la.push(&"one".into()).await.unwrap();
    lb.push(&"two".into()).await.unwrap();
    assert_eq!(la.to_vec().await.unwrap(), vec!["one", "two"]);

    let na = a.namespace("cfg").await.unwrap();
    b.namespace("cfg")
        .await
        .unwrap()
        .set("workers", &8u32)
        .await
        .unwrap();
    assert_eq!(na.get::<u32>("workers").await.unwrap(), Some(8));

    let va = a.value("counter", 0i64).await.unwrap();
    let vb = b.value("counter", 99i64).await.unwrap(); // exists: init ignored
    assert_eq!(vb.get().await.unwrap(), 0);
    va.set(&41).await.unwrap();
    assert_eq!(vb.get().await.unwrap(), 41);

    let arr = a.array::<f64>("weights", &[0.5, 1.5]).await.unwrap();
    b.array::<f64>("weights", &[])
        .await
        .unwrap()
        .set(-1, 2.5)
        .await
        .unwrap();
    assert_eq!(arr.to_vec().await.unwrap(), vec![0.5, 2.5]);
}

#[tokio::test]
async fn dict_follows_python_semantics() {
    let node = TestNode::start();
    let m = node.manager().await;
    let d = m.new_dict::<serde_json_like::Key, String>().await.unwrap();
    use serde_json_like::Key;
    d.insert(&Key::Int(1), &"int".into()).await.unwrap();
    // 1.0 and true are the same key as 1 in Python: the value is replaced, key kept.
    d.insert(&Key::Float(1.0), &"float".into()).await.unwrap();
    d.insert(&Key::Bool(true), &"bool".into()).await.unwrap();
    assert_eq!(d.len().await.unwrap(), 1);
    assert_eq!(d.keys().await.unwrap(), vec![Key::Int(1)]);
    assert_eq!(d.get(&Key::Int(1)).await.unwrap().as_deref(), Some("bool"));
    d.insert(&Key::Tuple(1, 2), &"tuple".into()).await.unwrap();
    assert_eq!(
        d.get(&Key::Tuple(1, 2)).await.unwrap().as_deref(),
        Some("tuple")
    );

    let d = m.new_dict::<String, i64>().await.unwrap();
    for (k, v) in [("a", 1), ("b", 2), ("c", 3)] {
        d.insert(&k.into(), &v).await.unwrap();
    }
    assert_eq!(d.remove(&"b".into()).await.unwrap(), Some(2));
    assert_eq!(d.remove(&"b".into()).await.unwrap(), None);
    d.update([("d".to_string(), 4), ("a".to_string(), 10)])
        .await
        .unwrap();
    assert_eq!(
        d.items().await.unwrap(),
        vec![("a".into(), 10), ("c".into(), 3), ("d".into(), 4)]
    );
    assert_eq!(d.values().await.unwrap(), vec![10, 3, 4]);
    assert_eq!(d.setdefault(&"c".into(), &0).await.unwrap(), 3);
    assert_eq!(d.setdefault(&"e".into(), &5).await.unwrap(), 5);
    assert_eq!(d.pop_item().await.unwrap(), Some(("e".into(), 5)));
    assert!(d.contains_key(&"d".into()).await.unwrap());
    let copy: HashMap<String, i64> = d.to_map().await.unwrap();
    assert_eq!(copy.len(), 3);
    d.clear().await.unwrap();
    assert!(d.is_empty().await.unwrap());
    assert_eq!(d.pop_item().await.unwrap(), None);
}

#[tokio::test]
async fn list_follows_python_semantics() {
    let node = TestNode::start();
    let m = node.manager().await;
    let l = m.new_list::<i64>().await.unwrap();
    l.extend([5, 3, 9, 1]).await.unwrap();
    assert_eq!(l.get(-1).await.unwrap(), Some(1));
    assert_eq!(l.get(10).await.unwrap(), None);
    l.set(-2, &7).await.unwrap();
    let err = l.set(10, &0).await.unwrap_err();
    assert_eq!(err.kind(), Some(&ErrorKind::IndexError));
    l.insert(0, &0).await.unwrap();
    l.insert(-100, &-1).await.unwrap(); // clamps, as Python does
    assert_eq!(l.to_vec().await.unwrap(), vec![-1, 0, 5, 3, 7, 1]);
    assert_eq!(l.slice(1..3).await.unwrap(), vec![0, 5]);
    assert_eq!(l.slice(-2..).await.unwrap(), vec![7, 1]);
    l.splice(1..3, [8, 8, 8]).await.unwrap();
    assert_eq!(l.to_vec().await.unwrap(), vec![-1, 8, 8, 8, 3, 7, 1]);
    assert_eq!(l.count(&8).await.unwrap(), 3);
    assert_eq!(l.index_of(&3).await.unwrap(), Some(4));
    assert_eq!(l.index_of(&42).await.unwrap(), None);
    assert!(l.remove(&8).await.unwrap());
    assert!(!l.remove(&42).await.unwrap());
    l.delete_range(..1).await.unwrap();
    l.sort(false).await.unwrap();
    assert_eq!(l.to_vec().await.unwrap(), vec![1, 3, 7, 8, 8]);
    l.sort(true).await.unwrap();
    l.reverse().await.unwrap();
    assert_eq!(l.to_vec().await.unwrap(), vec![1, 3, 7, 8, 8]);
    assert_eq!(l.pop().await.unwrap(), Some(8));
    assert_eq!(l.pop_at(0).await.unwrap(), 1);
    assert!(l.contains(&7).await.unwrap());
    assert_eq!(l.len().await.unwrap(), 3);
    l.clear().await.unwrap();
    assert_eq!(l.pop().await.unwrap(), None);

    // Mixed types cannot be sorted; the list is left as it was.
    let mixed = m.new_list::<serde_json_like::Key>().await.unwrap();
    use serde_json_like::Key;
    mixed
        .extend([Key::Int(2), Key::Str("x".into()), Key::Float(1.5)])
        .await
        .unwrap();
    let err = mixed.sort(false).await.unwrap_err();
    assert_eq!(err.kind(), Some(&ErrorKind::TypeError));
    assert_eq!(mixed.len().await.unwrap(), 3);
    assert_eq!(mixed.get(0).await.unwrap(), Some(Key::Int(2)));
    // 1.5 < 2 across int and float, as in Python.
    mixed.remove(&Key::Str("x".into())).await.unwrap();
    mixed.sort(false).await.unwrap();
    assert_eq!(
        mixed.to_vec().await.unwrap(),
        vec![Key::Float(1.5), Key::Int(2)]
    );
}

#[tokio::test]
async fn namespace_value_and_array() {
    let node = TestNode::start();
    let m = node.manager().await;
    let ns = m.new_namespace().await.unwrap();
    ns.set("b", &"x").await.unwrap();
    ns.set("a", &1).await.unwrap();
    assert!(ns.contains("a").await.unwrap());
    assert_eq!(ns.repr().await.unwrap(), "Namespace(a=1, b='x')");
    assert!(ns.remove("a").await.unwrap());
    assert!(!ns.remove("a").await.unwrap());
    assert_eq!(ns.get::<i32>("a").await.unwrap(), None);
    let all: HashMap<String, String> = ns.to_map().await.unwrap();
    assert_eq!(all["b"], "x");

    let v = m.new_value(vec![1u8, 2]).await.unwrap();
    assert_eq!(v.get().await.unwrap(), vec![1, 2]);

    let a = m.new_array::<u8>(&[1, 2, 3]).await.unwrap();
    assert_eq!(a.len().await.unwrap(), 3);
    assert_eq!(a.get(-1).await.unwrap(), 3);
    a.set(0, 255).await.unwrap();
    // The node enforces the typecode it was created with: 70000 does not fit 'h'.
    m.array::<i16>("shorts", &[0]).await.unwrap();
    let wide = m.array::<i64>("shorts", &[]).await.unwrap();
    let err = wide.set(0, 70_000).await.unwrap_err();
    assert_eq!(err.kind(), Some(&ErrorKind::OverflowError), "{err}");
    wide.set(0, -7).await.unwrap();
    assert_eq!(wide.to_vec().await.unwrap(), vec![-7]);
    assert_eq!(
        a.get(3).await.unwrap_err().kind(),
        Some(&ErrorKind::IndexError)
    );
}

/// A key type covering Python's scalar kinds, for semantics tests.
mod serde_json_like {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(untagged)]
    pub enum Key {
        Bool(bool),
        Int(i64),
        Float(f64),
        Str(String),
        Tuple(i64, i64),
    }
}
