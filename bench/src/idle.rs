//! RSS per idle authenticated connection: how much a server grows while it holds `n`
//! connections that authenticated (syncman: handshake and hello; Redis: a `PING`; CPython's
//! manager: its HMAC handshake, after which its thread for the connection waits for a
//! request) and then sit idle.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};

use serde::Serialize;
use syncman_client::Manager;
use syncman_protocol::handshake::client_handshake;
use syncman_protocol::{FrameCodec, HANDSHAKE_MAX_FRAME};
use tokio_util::codec::Framed;

use crate::memory::rss;

#[derive(Serialize)]
pub struct IdleRow {
    pub connections: usize,
    pub syncman_bytes_per_connection: Option<f64>,
    pub redis_bytes_per_connection: Option<f64>,
    pub cpython_bytes_per_connection: Option<f64>,
}

/// Lets this process open as many sockets as its hard limit allows.
pub fn raise_open_file_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

pub async fn syncman(addr: SocketAddr, authkey: &[u8], pid: u32, n: usize) -> Option<f64> {
    let before = rss(pid)?;
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        held.push(Manager::connect(addr, authkey).await.ok()?);
    }
    let after = rss(pid)?;
    drop(held);
    Some(after.saturating_sub(before) as f64 / n as f64)
}

pub fn redis(port: u16, pid: u32, n: usize) -> Option<f64> {
    let before = rss(pid)?;
    let mut held = Vec::with_capacity(n);
    let mut line = String::new();
    for _ in 0..n {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
        stream.write_all(b"PING\r\n").ok()?;
        line.clear();
        BufReader::new(&stream).read_line(&mut line).ok()?;
        if !line.starts_with("+PONG") {
            return None;
        }
        held.push(stream);
    }
    let after = rss(pid)?;
    drop(held);
    Some(after.saturating_sub(before) as f64 / n as f64)
}

/// Connections to CPython's manager server that pass its handshake (the client's side, as
/// `multiprocessing.connection.Client` does it) and send nothing more.
pub async fn cpython(addr: SocketAddr, authkey: &[u8], pid: u32, n: usize) -> Option<f64> {
    let before = rss(pid)?;
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let codec = FrameCodec::new(HANDSHAKE_MAX_FRAME);
        let mut framed = Framed::new(stream, codec);
        client_handshake(&mut framed, authkey).await.ok()?;
        held.push(framed);
    }
    let after = rss(pid)?;
    drop(held);
    Some(after.saturating_sub(before) as f64 / n as f64)
}
