//! The native dialect's control calls (object 0): decoding their arguments, running them on
//! the session core, encoding their results.

use bytes::Bytes;
use syncman_protocol::value::encode;
use syncman_protocol::{ArgList, Args, RemoteError, Value};
use tracing::info;

use crate::node::backend::Backend;
use crate::node::object::{MethodSpec, Reply};
use crate::node::session::{check_call, Session};
use crate::node::Node;

const METHODS: &[MethodSpec] = &[
    ("ping", 0, 0),
    ("create", 1, 2),
    ("get_or_create", 2, 3),
    ("incref", 1, 1),
    ("delete", 1, 1),
    ("typeids", 0, 0),
    ("number_of_objects", 0, 0),
    ("status", 0, 0),
    ("shutdown", 0, 0),
];

/// Constructor arguments: an encoded array, or none.
fn ctor_args(args: &mut Args<'_>) -> Result<ArgList, RemoteError> {
    // Absent: an empty array (MessagePack's `0x90`).
    let encoded = args.opt_raw().unwrap_or(Bytes::from_static(&[0x90]));
    ArgList::from_array(encoded)
        .map_err(|_| RemoteError::type_error("constructor arguments must be an array"))
}

pub(super) async fn call<B: Backend>(
    session: &mut Session<B>,
    method: &str,
    mut args: Args<'_>,
) -> Reply {
    check_call("manager", METHODS, method, &args)?;
    // A handle of its own, so no borrow of the session is held across an `.await`.
    let node = session.node().clone();
    match method {
        "ping" => Ok(encode::nil()),
        // create(typeid, [args]) -> id: an anonymous object this session holds once.
        "create" => {
            let typeid = args.string("typeid")?;
            let ctor = ctor_args(&mut args)?;
            let id = session.create(&typeid, ctor.args()).await?;
            Ok(encode::int(id as i128))
        }
        // get_or_create(typeid, name, [args]) -> id: a named object, created on first use.
        "get_or_create" => {
            let typeid = args.string("typeid")?;
            let name = args.string("name")?;
            let ctor = ctor_args(&mut args)?;
            let (id, created) = session.get_or_create(&typeid, &name, ctor.args()).await?;
            if created {
                info!(session = session.id(), %name, %typeid, id, "created named object");
            }
            Ok(encode::int(id as i128))
        }
        // incref(id): this session takes a reference (a proxy received from elsewhere).
        "incref" => {
            let id = args.int("id")?;
            let id = u64::try_from(id).map_err(|_| RemoteError::value_error("bad object id"))?;
            session.incref(id).await?;
            Ok(encode::nil())
        }
        "delete" => {
            let name = args.string("name")?;
            node.backend.delete_named(&name).await?;
            info!(session = session.id(), %name, "deleted named object");
            Ok(encode::nil())
        }
        "typeids" => {
            let names = node.backend.typeids();
            Ok(Value::Array(names.into_iter().map(Value::Str).collect()).to_bytes())
        }
        "number_of_objects" => {
            let n = node.backend.object_count().await;
            Ok(encode::int(n as i128))
        }
        "status" => Ok(status(&node).await),
        "shutdown" => {
            info!(session = session.id(), "shutdown requested by a client");
            node.shutdown.cancel();
            Ok(encode::nil())
        }
        _ => Err(RemoteError::protocol_error(format!(
            "control method '{method}' is listed but not handled"
        ))),
    }
}

async fn status<B: Backend>(node: &Node<B>) -> bytes::Bytes {
    let backend = &node.backend;
    let field = |name: &str| Value::Str(name.into());
    let objects = backend
        .snapshot()
        .await
        .into_iter()
        .map(|info| {
            Value::Map(vec![
                (field("id"), Value::Int(info.id as i128)),
                (field("name"), info.name.map_or(Value::Nil, Value::Str)),
                (field("typeid"), Value::Str(info.typeid)),
                (field("refs"), Value::Int(info.refs as i128)),
                (field("waiters"), Value::Int(info.waiters as i128)),
                (field("detail"), Value::Str(info.detail)),
            ])
        })
        .collect();
    let sessions = backend.live_sessions().await;
    let mut status = vec![
        (
            field("version"),
            Value::Str(env!("CARGO_PKG_VERSION").into()),
        ),
        // Seconds since the node started, to the millisecond.
        (
            field("uptime"),
            Value::Float(node.started.elapsed().as_millis() as f64 / 1000.0),
        ),
        (field("sessions"), Value::Int(sessions as i128)),
        (field("objects"), Value::Array(objects)),
    ];
    if let Some((bytes, max_bytes)) = backend.bytes_held() {
        status.push((field("bytes"), Value::Int(bytes as i128)));
        status.push((field("max_bytes"), Value::Int(max_bytes as i128)));
    }
    Value::Map(status).to_bytes()
}
