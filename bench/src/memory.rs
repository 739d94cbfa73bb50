//! Memory: how much a server's resident set grows to hold 1,000,000 entries, u64 → u64 and
//! 16-byte str → 32-byte bytes; syncman (a `dict`), Redis (one hash, `HSET`) and CPython's
//! manager (a managed `dict`). Read from `/proc/<pid>/status` (`VmRSS`) before and after.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};

use serde::Serialize;
use serde_bytes::ByteBuf;
use syncman_client::Manager;

/// The two workloads of the memory table.
#[derive(Clone, Copy, Serialize)]
pub enum Kind {
    /// `u64 → u64`.
    Ints,
    /// 16-byte `str` → 32-byte `bytes`.
    StrBytes,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Ints => "u64 → u64",
            Kind::StrBytes => "16-byte str → 32-byte bytes",
        }
    }

    fn key(i: usize) -> String {
        format!("{i:016}")
    }
}

/// What one server grew by.
#[derive(Serialize)]
pub struct Held {
    pub rss_after_bytes: u64,
    pub grown_bytes: u64,
    pub bytes_per_entry: f64,
}

#[derive(Serialize)]
pub struct MemoryRow {
    pub workload: &'static str,
    pub entries: usize,
    pub syncman: Option<Held>,
    pub redis: Option<Held>,
    pub cpython: Option<Held>,
}

/// A process's resident set, in bytes.
pub fn rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

fn held(pid: u32, before: u64, entries: usize) -> Option<Held> {
    let after = rss(pid)?;
    let grown = after.saturating_sub(before);
    Some(Held {
        rss_after_bytes: after,
        grown_bytes: grown,
        bytes_per_entry: grown as f64 / entries as f64,
    })
}

const BATCH: usize = 10_000;

/// Fills a new dict on the node through `update` in batches; measures while the dict lives.
pub async fn syncman(
    addr: SocketAddr,
    authkey: &[u8],
    pid: u32,
    kind: Kind,
    entries: usize,
) -> Option<Held> {
    let m = Manager::connect(addr, authkey).await.ok()?;
    let before = rss(pid)?;
    match kind {
        Kind::Ints => {
            let d = m.new_dict::<u64, u64>().await.ok()?;
            for start in (0..entries).step_by(BATCH) {
                let end = (start + BATCH).min(entries);
                d.update((start as u64..end as u64).map(|i| (i, i)))
                    .await
                    .ok()?;
            }
            let grown = held(pid, before, entries);
            drop(d);
            grown
        }
        Kind::StrBytes => {
            let d = m.new_dict::<String, ByteBuf>().await.ok()?;
            for start in (0..entries).step_by(BATCH) {
                let end = (start + BATCH).min(entries);
                d.update((start..end).map(|i| (Kind::key(i), ByteBuf::from(vec![7u8; 32]))))
                    .await
                    .ok()?;
            }
            let grown = held(pid, before, entries);
            drop(d);
            grown
        }
    }
}

/// `HSET` into one hash over RESP, pipelined a batch at a time; the hash is deleted after.
pub fn redis(port: u16, pid: u32, kind: Kind, entries: usize) -> Option<Held> {
    let stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut writer = std::io::BufWriter::new(stream);
    let before = rss(pid)?;
    let bulk = |out: &mut Vec<u8>, arg: &[u8]| {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    };
    let mut line = String::new();
    for start in (0..entries).step_by(BATCH) {
        let end = (start + BATCH).min(entries);
        let mut out = Vec::new();
        for i in start..end {
            out.extend_from_slice(b"*4\r\n");
            bulk(&mut out, b"HSET");
            bulk(&mut out, b"h");
            match kind {
                Kind::Ints => {
                    bulk(&mut out, i.to_string().as_bytes());
                    bulk(&mut out, i.to_string().as_bytes());
                }
                Kind::StrBytes => {
                    bulk(&mut out, Kind::key(i).as_bytes());
                    bulk(&mut out, &[7u8; 32]);
                }
            }
        }
        writer.write_all(&out).ok()?;
        writer.flush().ok()?;
        for _ in start..end {
            line.clear();
            reader.read_line(&mut line).ok()?;
            if !line.starts_with(':') {
                return None;
            }
        }
    }
    let grown = held(pid, before, entries);
    writer.write_all(b"*2\r\n$3\r\nDEL\r\n$1\r\nh\r\n").ok()?;
    writer.flush().ok()?;
    line.clear();
    reader.read_line(&mut line).ok()?;
    grown
}

/// A CPython client process fills a managed dict (`bench/cpython_clients.py fill`) and keeps
/// it while the server's RSS is read.
pub fn cpython(
    script: &std::path::Path,
    addr: SocketAddr,
    authkey: &str,
    pid: u32,
    kind: Kind,
    entries: usize,
) -> Option<Held> {
    let key: String = authkey.bytes().map(|b| format!("{b:02x}")).collect();
    let before = rss(pid)?;
    let mut child = Command::new("python3")
        .arg(script)
        .args([
            "fill",
            &addr.ip().to_string(),
            &addr.port().to_string(),
            &key,
        ])
        .args([
            entries.to_string(),
            matches!(kind, Kind::StrBytes)
                .then_some("str-bytes")
                .unwrap_or("ints")
                .to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    let mut out = BufReader::new(child.stdout.take()?);
    let mut line = String::new();
    out.read_line(&mut line).ok()?;
    let grown = (line.trim() == "filled")
        .then(|| held(pid, before, entries))
        .flatten();
    drop(child.stdin.take()); // the client lets go of the dict and exits
    let _ = child.wait();
    grown
}
