//! `syncman status`: asks a running node what it holds, over the native dialect, using only
//! the protocol crate (the node's binary does not depend on the client crate).

use std::time::Duration;

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use syncman_protocol::message::{self, decode_response, CONTROL_OBJECT};
use syncman_protocol::opening::open_native;
use syncman_protocol::{FrameCodec, Value, DEFAULT_MAX_FRAME};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

/// Fetches the node's status (a map) or says why it could not.
pub async fn fetch(addr: &str, authkey: &[u8]) -> Result<Value, String> {
    let work = async {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        let mut framed = Framed::new(stream, FrameCodec::handshake());
        open_native(&mut framed, authkey, DEFAULT_MAX_FRAME, None)
            .await
            .map_err(|e| format!("cannot open a session with {addr}: {e}"))?;
        let mut req = BytesMut::new();
        message::encode_request_head(&mut req, 1, CONTROL_OBJECT, "status");
        message::encode_args_len(&mut req, 0);
        framed.send(req.freeze()).await.map_err(|e| e.to_string())?;
        let frame = framed
            .next()
            .await
            .ok_or("the node closed the connection")?
            .map_err(|e| e.to_string())?;
        let (id, result) = decode_response(frame.freeze()).map_err(|e| e.to_string())?;
        if id != 1 {
            return Err(format!("unexpected reply id {id}"));
        }
        let raw = result.map_err(|e| e.to_string())?;
        syncman_protocol::value::decode(&raw).map_err(|e| e.to_string())
    };
    tokio::time::timeout(Duration::from_secs(10), work)
        .await
        .map_err(|_| format!("{addr} did not answer within 10 s"))?
}

fn field<'a>(map: &'a Value, name: &str) -> Option<&'a Value> {
    match map {
        Value::Map(pairs) => pairs
            .iter()
            .find(|(k, _)| matches!(k, Value::Str(s) if s == name))
            .map(|(_, v)| v),
        _ => None,
    }
}

fn text(v: Option<&Value>) -> String {
    match v {
        Some(Value::Str(s)) => s.clone(),
        Some(Value::Nil) | None => "-".into(),
        Some(other) => other.py_repr(),
    }
}

/// Renders the status as a table for people.
pub fn render(status: &Value) -> String {
    let mut out = format!(
        "syncman {}: {} session(s)",
        text(field(status, "version")),
        text(field(status, "sessions"))
    );
    if let (Some(bytes), Some(max)) = (field(status, "bytes"), field(status, "max_bytes")) {
        out.push_str(&format!(
            ", {} of {} bytes held",
            text(Some(bytes)),
            text(Some(max))
        ));
    }
    out.push('\n');
    let objects = match field(status, "objects") {
        Some(Value::Array(items)) => items.as_slice(),
        _ => &[],
    };
    out.push_str(&format!("{} object(s)\n", objects.len()));
    if !objects.is_empty() {
        out.push_str(&format!(
            "{:>6}  {:<20} {:<16} {:>5} {:>7}  {}\n",
            "ID", "NAME", "TYPEID", "REFS", "WAITERS", "STATE"
        ));
        for o in objects {
            out.push_str(&format!(
                "{:>6}  {:<20} {:<16} {:>5} {:>7}  {}\n",
                text(field(o, "id")),
                text(field(o, "name")),
                text(field(o, "typeid")),
                text(field(o, "refs")),
                text(field(o, "waiters")),
                text(field(o, "detail")),
            ));
        }
    }
    out
}
