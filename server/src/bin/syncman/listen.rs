//! `syncman serve`'s listeners: the plain one (`--bind`), the TLS one (`--tls-bind`), or
//! both, and their ready lines.

use std::io::Write;
use std::path::PathBuf;

use syncman_server::{bind, Listeners, ServerTls};

/// The TLS settings of `syncman serve` (flags or config file: `serve_args.rs`).
pub(crate) struct TlsSettings {
    pub bind: Option<String>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub client_ca: Option<PathBuf>,
    /// Do not open the plain listener.
    pub only: bool,
    /// Whether a plain address was given (which `only` contradicts).
    pub plain_bind_given: bool,
}

impl TlsSettings {
    /// What makes no sense together, checked after the file and the flags are combined.
    fn check(&self) -> Result<(), String> {
        let files_given = self.cert.is_some() || self.key.is_some() || self.client_ca.is_some();
        if self.bind.is_some() && (self.cert.is_none() || self.key.is_none()) {
            return Err("--tls-bind needs --tls-cert and --tls-key".into());
        }
        if self.bind.is_none() && (files_given || self.only) {
            return Err(
                "--tls-cert, --tls-key, --tls-client-ca and --tls-only need --tls-bind".into(),
            );
        }
        if self.only && self.plain_bind_given {
            return Err("--tls-only opens no plain listener, so --bind cannot be given".into());
        }
        Ok(())
    }
}

/// Reads the TLS files (so a bad one stops the node before it listens), binds the
/// listeners asked for, and prints one ready line each on stdout: `listening on ADDR`
/// for the plain listener, then `listening with TLS on ADDR`. Scripts and tests wait for
/// them to learn the ports.
pub(crate) async fn listen(plain: &str, tls: &TlsSettings) -> Result<Listeners, String> {
    tls.check()?;
    let server_tls = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => Some(
            ServerTls::from_pem_files(cert, key, tls.client_ca.as_deref())
                .map_err(|e| format!("cannot set up TLS: {e}"))?,
        ),
        _ => None,
    };
    let mut listeners = Listeners::new();
    let mut ready = Vec::new();
    if !tls.only {
        let (listener, local) = bind(plain)
            .await
            .map_err(|e| format!("cannot listen on {plain}: {e}"))?;
        listeners = listeners.plain(listener);
        ready.push(format!("listening on {local}"));
    }
    if let (Some(addr), Some(server_tls)) = (&tls.bind, server_tls) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(bind: bool, files: bool, only: bool, plain: bool) -> TlsSettings {
        TlsSettings {
            bind: bind.then(|| "127.0.0.1:0".into()),
            cert: files.then(|| "c.pem".into()),
            key: files.then(|| "k.pem".into()),
            client_ca: None,
            only,
            plain_bind_given: plain,
        }
    }

    /// Flags and a config file are combined before these are checked, so clap's own
    /// `requires` cannot be used; the same rules hold whichever source gave what.
    #[test]
    fn tls_settings_that_contradict_each_other_are_refused() {
        assert!(
            settings(false, false, false, true).check().is_ok(),
            "no TLS"
        );
        assert!(settings(true, true, false, true).check().is_ok(), "both");
        assert!(
            settings(true, true, true, false).check().is_ok(),
            "TLS only"
        );
        let refused = [
            (settings(true, false, false, false), "--tls-bind needs"),
            (settings(false, true, false, false), "need --tls-bind"),
            (settings(false, false, true, false), "need --tls-bind"),
            (settings(true, true, true, true), "--bind cannot be given"),
        ];
        for (s, why) in refused {
            let e = s.check().unwrap_err();
            assert!(e.contains(why), "{e}");
        }
    }
}
