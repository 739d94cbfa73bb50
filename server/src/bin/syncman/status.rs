//! `syncman status`: what a running node holds, as a table for people or as JSON for
//! scripts. Both are rendered from one typed [`NodeStatus`], read from the node's `status`
//! map, so the two never disagree.
//!
//! The JSON shape is stable: fields may be added, none is renamed or removed.
//!
//! ```json
//! {"version": "0.1.0", "uptime": 12.5, "sessions": 2, "bytes": 1024, "max_bytes": 4294967296,
//!  "objects": [{"id": 1, "name": "jobs", "typeid": "Queue", "refs": 0, "waiters": 1,
//!               "detail": "Queue, 0 items, 0 leased, 1 getters and 0 putters waiting"}]}
//! ```

use serde::Serialize;
use syncman_protocol::Value;

/// The node's answer to `status`.
#[derive(Debug, Serialize)]
pub struct NodeStatus {
    /// The node's version (`syncman X.Y.Z`).
    pub version: String,
    /// Seconds since the node started; `None` from a node too old to say.
    pub uptime: Option<f64>,
    /// Sessions open now (CPython clients open one per connection).
    pub sessions: u64,
    /// Bytes all objects hold; `None` from a node that does not count them.
    pub bytes: Option<u64>,
    /// The most they may hold (`--max-bytes`).
    pub max_bytes: Option<u64>,
    pub objects: Vec<ObjectRow>,
}

/// One object on the node.
#[derive(Debug, Serialize)]
pub struct ObjectRow {
    pub id: u64,
    /// `None` for an anonymous object.
    pub name: Option<String>,
    pub typeid: String,
    /// References held on an anonymous object (named objects are not counted).
    pub refs: u64,
    /// Calls parked on it now.
    pub waiters: u64,
    /// Its state in words (holder, fencing token, items, ...).
    pub detail: String,
}

impl NodeStatus {
    /// Reads the node's status map; a missing or mistyped required field is an error.
    pub fn from_value(status: &Value) -> Result<NodeStatus, String> {
        let objects = match field(status, "objects") {
            Some(Value::Array(items)) => items
                .iter()
                .map(ObjectRow::from_value)
                .collect::<Result<_, _>>()?,
            _ => return Err("the status has no object list".into()),
        };
        Ok(NodeStatus {
            version: string(status, "version")?,
            uptime: match field(status, "uptime") {
                Some(Value::Float(f)) => Some(*f),
                Some(Value::Int(i)) => Some(*i as f64),
                _ => None,
            },
            sessions: count(status, "sessions")?,
            bytes: count(status, "bytes").ok(),
            max_bytes: count(status, "max_bytes").ok(),
            objects,
        })
    }

    /// The table for people.
    pub fn render(&self) -> String {
        let mut out = format!("syncman {}", self.version);
        if let Some(uptime) = self.uptime {
            out.push_str(&format!(", up {}", duration_words(uptime)));
        }
        out.push_str(&format!(": {} session(s)", self.sessions));
        if let (Some(bytes), Some(max)) = (self.bytes, self.max_bytes) {
            out.push_str(&format!(", {bytes} of {max} bytes held"));
        }
        out.push('\n');
        out.push_str(&format!("{} object(s)\n", self.objects.len()));
        if !self.objects.is_empty() {
            out.push_str(&format!(
                "{:>6}  {:<20} {:<16} {:>5} {:>7}  {}\n",
                "ID", "NAME", "TYPEID", "REFS", "WAITERS", "STATE"
            ));
            for o in &self.objects {
                out.push_str(&format!(
                    "{:>6}  {:<20} {:<16} {:>5} {:>7}  {}\n",
                    o.id,
                    o.name.as_deref().unwrap_or("-"),
                    o.typeid,
                    o.refs,
                    o.waiters,
                    o.detail,
                ));
            }
        }
        out
    }

    /// The JSON for scripts: one object, pretty-printed, ending with a newline.
    pub fn to_json(&self) -> String {
        // Serializing plain strings and numbers cannot fail.
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }
}

impl ObjectRow {
    fn from_value(o: &Value) -> Result<ObjectRow, String> {
        Ok(ObjectRow {
            id: count(o, "id")?,
            name: match field(o, "name") {
                Some(Value::Str(s)) => Some(s.clone()),
                _ => None,
            },
            typeid: string(o, "typeid")?,
            refs: count(o, "refs")?,
            waiters: count(o, "waiters").unwrap_or(0),
            detail: string(o, "detail").unwrap_or_default(),
        })
    }
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

fn string(map: &Value, name: &str) -> Result<String, String> {
    match field(map, name) {
        Some(Value::Str(s)) => Ok(s.clone()),
        other => Err(format!("status field {name:?} is not a string: {other:?}")),
    }
}

fn count(map: &Value, name: &str) -> Result<u64, String> {
    match field(map, name) {
        Some(Value::Int(i)) => {
            u64::try_from(*i).map_err(|_| format!("status field {name:?} is {i}"))
        }
        other => Err(format!("status field {name:?} is not a count: {other:?}")),
    }
}

/// `3d 4h`, `2h 5m`, `7m 3s`, `12.5s`: the two largest units.
fn duration_words(secs: f64) -> String {
    let whole = secs as u64;
    let (d, h, m, s) = (
        whole / 86_400,
        whole / 3600 % 24,
        whole / 60 % 60,
        whole % 60,
    );
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {s}s")
    } else {
        format!("{secs:.1}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Value {
        Value::Str(text.into())
    }

    fn sample() -> Value {
        Value::Map(vec![
            (s("version"), s("1.2.3")),
            (s("uptime"), Value::Float(3725.25)),
            (s("sessions"), Value::Int(2)),
            (
                s("objects"),
                Value::Array(vec![Value::Map(vec![
                    (s("id"), Value::Int(7)),
                    (s("name"), s("jobs")),
                    (s("typeid"), s("Queue")),
                    (s("refs"), Value::Int(0)),
                    (s("waiters"), Value::Int(1)),
                    (s("detail"), s("0 items, 1 getters")),
                ])]),
            ),
            (s("bytes"), Value::Int(10)),
            (s("max_bytes"), Value::Int(100)),
        ])
    }

    #[test]
    fn the_table_shows_version_uptime_and_objects() {
        let table = NodeStatus::from_value(&sample()).unwrap().render();
        assert!(
            table.starts_with("syncman 1.2.3, up 1h 2m: 2 session(s), 10 of 100 bytes held\n"),
            "{table}"
        );
        assert!(
            table.contains("jobs") && table.contains("1 getters"),
            "{table}"
        );
    }

    #[test]
    fn the_json_has_the_documented_shape() {
        let json: serde_json::Value =
            serde_json::from_str(&NodeStatus::from_value(&sample()).unwrap().to_json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "version": "1.2.3", "uptime": 3725.25, "sessions": 2, "bytes": 10,
                "max_bytes": 100,
                "objects": [{"id": 7, "name": "jobs", "typeid": "Queue", "refs": 0,
                             "waiters": 1, "detail": "0 items, 1 getters"}]
            })
        );
    }

    #[test]
    fn a_status_without_objects_is_an_error() {
        let broken = Value::Map(vec![(s("version"), s("1"))]);
        assert!(NodeStatus::from_value(&broken).is_err());
    }
}
