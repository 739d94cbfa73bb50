//! `syncman serve`'s listeners: the plain one (`--bind`), the TLS one (`--tls-bind`), or
//! both, and their ready lines.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use syncman_server::{bind, Listeners, ServerTls};

/// TLS flags of `syncman serve`.
#[derive(Args)]
pub(crate) struct TlsArgs {
    /// Also serve TLS on this address (port 0 picks a free port), beside the plain
    /// `--bind` listener: CPython clients cannot speak TLS, so a node can serve both.
    /// Needs --tls-cert and --tls-key. The authkey handshake still runs inside TLS.
    #[arg(long, value_name = "ADDR", requires_all = ["tls_cert", "tls_key"])]
    tls_bind: Option<String>,

    /// The node's TLS certificate chain, PEM, leaf first.
    #[arg(long, value_name = "PEM", requires = "tls_bind")]
    tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert, PEM (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "PEM", requires = "tls_bind")]
    tls_key: Option<PathBuf>,

    /// Mutual TLS: TLS clients must present a certificate signed by a CA in this PEM file.
    #[arg(long, value_name = "PEM", requires = "tls_bind")]
    tls_client_ca: Option<PathBuf>,

    /// Serve TLS only: --bind is not opened.
    #[arg(long, requires = "tls_bind", conflicts_with = "bind")]
    tls_only: bool,
}

/// Reads the TLS files (so a bad one stops the node before it listens), binds the
/// listeners asked for, and prints one ready line each on stdout: `listening on ADDR`
/// for the plain listener, then `listening with TLS on ADDR`. Scripts and tests wait for
/// them to learn the ports.
pub(crate) async fn listen(plain: &str, tls: &TlsArgs) -> Result<Listeners, String> {
    let server_tls = match (&tls.tls_cert, &tls.tls_key) {
        (Some(cert), Some(key)) => Some(
            ServerTls::from_pem_files(cert, key, tls.tls_client_ca.as_deref())
                .map_err(|e| format!("cannot set up TLS: {e}"))?,
        ),
        _ => None,
    };
    let mut listeners = Listeners::new();
    let mut ready = Vec::new();
    if !tls.tls_only {
        let (listener, local) = bind(plain)
            .await
            .map_err(|e| format!("cannot listen on {plain}: {e}"))?;
        listeners = listeners.plain(listener);
        ready.push(format!("listening on {local}"));
    }
    if let (Some(addr), Some(server_tls)) = (&tls.tls_bind, server_tls) {
        let (listener, local) = bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        listeners = listeners.tls(listener, server_tls);
        ready.push(format!("listening with TLS on {local}"));
    }
    let mut stdout = std::io::stdout().lock();
    for line in ready {
        let _ = writeln!(stdout, "{line}");
    }
    let _ = stdout.flush();
    Ok(listeners)
}
