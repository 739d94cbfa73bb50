//! The floor: a raw TCP echo of frames the size of a syncman request, served by this same
//! binary in another process (`syncman-bench echo-server`), so it can be pinned like a node.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};

use crate::stats::Measured;

/// About the size of a native `dict.get` request (header, envelope, one short key).
pub const FRAME: usize = 24;

/// Serves echo until killed: prints `listening on ADDR`, then returns every length-prefixed
/// frame it reads.
pub async fn serve() -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on {}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let (rd, wr) = stream.into_split();
            let (mut rd, mut wr) = (BufReader::new(rd), BufWriter::new(wr));
            let mut frame = vec![0u8; 4 + FRAME];
            while rd.read_exact(&mut frame).await.is_ok() {
                if wr.write_all(&frame).await.is_err() {
                    return;
                }
                // Flush when nothing more is waiting, so pipelined frames go out together.
                if rd.buffer().is_empty() && wr.flush().await.is_err() {
                    return;
                }
            }
        });
    }
}

/// `conns` connections, each keeping `in_flight` frames outstanding, for `run`.
pub async fn measure(
    addr: SocketAddr,
    conns: usize,
    in_flight: usize,
    run: Duration,
) -> Option<Measured> {
    let mut streams = Vec::new();
    for _ in 0..conns {
        let stream = TcpStream::connect(addr).await.ok()?;
        stream.set_nodelay(true).ok()?;
        streams.push(stream);
    }
    // The clock starts once every connection is open, as for syncman.
    let start = Instant::now();
    let deadline = start + run;
    let tasks: Vec<_> = streams
        .into_iter()
        .map(|stream| tokio::spawn(connection(stream, in_flight, deadline)))
        .collect();
    let mut samples = Vec::new();
    for t in tasks {
        samples.extend(t.await.ok()??);
    }
    Measured::from_samples(samples, start.elapsed())
}

/// A sliding window of `in_flight` frames on one connection; the latency of each. Writes
/// are buffered and flushed when no reply is waiting to be read, so a window's frames go out
/// together, as a client library batches them.
async fn connection(
    stream: TcpStream,
    in_flight: usize,
    deadline: Instant,
) -> Option<Vec<Duration>> {
    let (rd, wr) = stream.into_split();
    let (mut rd, mut wr) = (BufReader::new(rd), BufWriter::new(wr));
    let mut frame = vec![7u8; 4 + FRAME];
    frame[..4].copy_from_slice(&(FRAME as u32).to_be_bytes());
    let mut sent = VecDeque::with_capacity(in_flight);
    let mut samples = Vec::new();
    let mut reply = vec![0u8; 4 + FRAME];
    for _ in 0..in_flight {
        sent.push_back(Instant::now());
        wr.write_all(&frame).await.ok()?;
    }
    wr.flush().await.ok()?;
    while let Some(at) = sent.pop_front() {
        rd.read_exact(&mut reply).await.ok()?;
        samples.push(at.elapsed());
        if Instant::now() < deadline {
            sent.push_back(Instant::now());
            wr.write_all(&frame).await.ok()?;
        }
        if rd.buffer().is_empty() {
            wr.flush().await.ok()?;
        }
    }
    Some(samples)
}
