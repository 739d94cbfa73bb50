//! Methods of the node itself (object id 0): creating, finding and deleting objects,
//! reference counts, status and shutdown.

use bytes::Bytes;
use syncman_protocol::{Args, RemoteError, Value};
use tracing::info;

use crate::encode;
use crate::object::{check_call, MethodSpec, Reply};
use crate::session::Session;

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
fn ctor_args(raw: Option<Bytes>) -> Result<Args, RemoteError> {
    match raw {
        None => Ok(Args::empty()),
        Some(raw) => Ok(Args::from_array(raw)
            .map_err(|_| RemoteError::type_error("constructor arguments must be an array"))?),
    }
}

pub(crate) fn call(session: &mut Session, method: &str, mut args: Args) -> Reply {
    check_call("manager", METHODS, method, &args)?;
    let shared = session.shared.clone();
    match method {
        "ping" => Ok(encode::nil()),
        // create(typeid, [args]) -> id: an anonymous object this session holds once.
        "create" => {
            let typeid = args.string("typeid")?;
            let ctor = ctor_args(args.opt_raw())?;
            let object = shared.registry.construct(&typeid, ctor)?;
            let id = shared.table.insert_anonymous(object);
            session.add_ref(id);
            Ok(encode::int(id as i128))
        }
        // get_or_create(typeid, name, [args]) -> id: a named object, created on first use.
        "get_or_create" => {
            let typeid = args.string("typeid")?;
            let name = args.string("name")?;
            let ctor = ctor_args(args.opt_raw())?;
            let (id, created) = shared
                .table
                .get_or_create(&name, &typeid, || shared.registry.construct(&typeid, ctor))?;
            if created {
                info!(session = session.id, %name, %typeid, id, "created named object");
            }
            Ok(encode::int(id as i128))
        }
        // incref(id): this session takes a reference (a proxy received from elsewhere).
        "incref" => {
            let id = args.int("id")?;
            let id = u64::try_from(id).map_err(|_| RemoteError::value_error("bad object id"))?;
            shared.table.incref(id)?;
            session.add_ref(id);
            Ok(encode::nil())
        }
        "delete" => {
            let name = args.string("name")?;
            shared.table.delete_named(&name)?;
            info!(session = session.id, %name, "deleted named object");
            Ok(encode::nil())
        }
        "typeids" => {
            let mut names: Vec<&str> = shared.registry.typeids().collect();
            names.sort_unstable();
            Ok(Value::Array(
                names
                    .into_iter()
                    .map(|s| Value::Str(s.to_owned()))
                    .collect(),
            )
            .to_bytes())
        }
        "number_of_objects" => Ok(encode::int(shared.table.len() as i128)),
        "status" => Ok(status(session)),
        "shutdown" => {
            info!(session = session.id, "shutdown requested by a client");
            shared.shutdown.cancel();
            Ok(encode::nil())
        }
        _ => unreachable!("check_call admits only listed methods"),
    }
}

fn status(session: &Session) -> Bytes {
    let shared = &session.shared;
    let objects = shared
        .table
        .snapshot()
        .into_iter()
        .map(|(info, _)| {
            Value::Map(vec![
                (Value::Str("id".into()), Value::Int(info.id as i128)),
                (
                    Value::Str("name".into()),
                    info.name.map_or(Value::Nil, Value::Str),
                ),
                (Value::Str("typeid".into()), Value::Str(info.typeid)),
                (Value::Str("refs".into()), Value::Int(info.refs as i128)),
                (Value::Str("detail".into()), Value::Str(info.detail)),
            ])
        })
        .collect();
    Value::Map(vec![
        (
            Value::Str("version".into()),
            Value::Str(env!("CARGO_PKG_VERSION").into()),
        ),
        (
            Value::Str("sessions".into()),
            Value::Int(shared.live_sessions() as i128),
        ),
        (Value::Str("objects".into()), Value::Array(objects)),
    ])
    .to_bytes()
}
