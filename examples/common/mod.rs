//! What every example shares: connecting from the environment, printing lines a test can
//! read at any moment, and exit codes.

use std::io::Write;
use std::process::ExitCode;

use std::time::Duration;

use syncman_client::{ConnectOptions, Manager};

pub type BoxError = Box<dyn std::error::Error>;

/// Connects to `SYNCMAN_ADDR` (default 127.0.0.1:50000) with the key in `SYNCMAN_AUTHKEY`.
/// `SYNCMAN_HEARTBEAT_TTL` (seconds, `0` for none) sets the heartbeat deadline asked of the
/// node; the default is the client's (10 s).
pub async fn connect() -> Result<Manager, BoxError> {
    let addr = std::env::var("SYNCMAN_ADDR").unwrap_or_else(|_| "127.0.0.1:50000".into());
    let key = std::env::var_os("SYNCMAN_AUTHKEY").ok_or("set SYNCMAN_AUTHKEY to the node's key")?;
    let mut opts = ConnectOptions::default();
    if let Ok(ttl) = std::env::var("SYNCMAN_HEARTBEAT_TTL") {
        let secs: f64 = ttl
            .parse()
            .map_err(|_| "SYNCMAN_HEARTBEAT_TTL must be a number of seconds")?;
        opts.heartbeat_ttl = (secs > 0.0)
            .then(|| Duration::try_from_secs_f64(secs))
            .transpose()
            .map_err(|_| "SYNCMAN_HEARTBEAT_TTL is out of range")?;
    }
    Ok(Manager::connect_with(addr.as_str(), key.into_encoded_bytes(), opts).await?)
}

/// Prints one line and flushes it at once, so a reader sees it even if we are killed next.
pub fn say(line: std::fmt::Arguments<'_>) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()
}

/// Exit code 2 with the usage text.
pub fn usage(text: &str) -> ExitCode {
    eprintln!("{text}");
    ExitCode::from(2)
}

/// Exit code 0, or 1 with the error.
pub fn finish(program: &str, result: Result<(), BoxError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{program}: {e}");
            ExitCode::FAILURE
        }
    }
}
