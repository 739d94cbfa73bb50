//! The sockets a node accepts on: a plain listener, a TLS listener, or both at once (plain
//! for CPython clients, which cannot speak TLS; TLS for clients across untrusted networks).
//! Both feed one accept loop, so they share the node's connection and handshake limits.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};

use super::tls::ServerTls;

/// What [`Server::serve`](crate::Server::serve) accepts on. At least one listener
/// is needed.
///
/// ```no_run
/// # async fn demo(tls: syncman_server::ServerTls) -> std::io::Result<()> {
/// use syncman_server::{bind, Listeners, Server};
/// let server = Server::builder(b"secret".to_vec()).build().unwrap();
/// let (plain, _) = bind("127.0.0.1:50000").await?;
/// let (secure, _) = bind("0.0.0.0:50001").await?;
/// server.serve(Listeners::new().plain(plain).tls(secure, tls)).await
/// # }
/// ```
#[derive(Default)]
pub struct Listeners {
    plain: Option<TcpListener>,
    tls: Option<(TcpListener, ServerTls)>,
}

/// An accepted connection, with the TLS settings of the listener it came from.
pub(crate) struct Accepted {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    pub tls: Option<ServerTls>,
}

impl Listeners {
    pub fn new() -> Listeners {
        Listeners::default()
    }

    /// Serves plain connections on `listener` (replacing any plain listener given before).
    pub fn plain(mut self, listener: TcpListener) -> Listeners {
        self.plain = Some(listener);
        self
    }

    /// Serves TLS connections on `listener` (replacing any TLS listener given before).
    pub fn tls(mut self, listener: TcpListener, tls: ServerTls) -> Listeners {
        self.tls = Some((listener, tls));
        self
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.plain.is_none() && self.tls.is_none()
    }

    /// Each listener's local address, and whether it is the TLS one.
    pub(crate) fn local_addrs(&self) -> std::io::Result<Vec<(SocketAddr, bool)>> {
        let mut addrs = Vec::new();
        if let Some(plain) = &self.plain {
            addrs.push((plain.local_addr()?, false));
        }
        if let Some((tls, _)) = &self.tls {
            addrs.push((tls.local_addr()?, true));
        }
        Ok(addrs)
    }

    /// The next connection on either listener (cancel-safe, as `TcpListener::accept`).
    /// With none, never returns.
    pub(crate) async fn accept(&self) -> std::io::Result<Accepted> {
        let plain = |(stream, peer)| Accepted {
            stream,
            peer,
            tls: None,
        };
        let tls = |(stream, peer), tls: &ServerTls| Accepted {
            stream,
            peer,
            tls: Some(tls.clone()),
        };
        match (&self.plain, &self.tls) {
            (Some(p), None) => p.accept().await.map(plain),
            (None, Some((l, t))) => l.accept().await.map(|a| tls(a, t)),
            (Some(p), Some((l, t))) => tokio::select! {
                a = p.accept() => a.map(plain),
                a = l.accept() => a.map(|a| tls(a, t)),
            },
            (None, None) => std::future::pending().await,
        }
    }
}
