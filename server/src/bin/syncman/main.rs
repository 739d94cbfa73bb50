//! `syncman`: run a manager node.
//!
//! ```text
//! SYNCMAN_AUTHKEY=secret syncman serve --bind 0.0.0.0:50000
//! syncman serve --bind 127.0.0.1:0 --authkey-file ./authkey
//! syncman serve --tls-bind 0.0.0.0:50001 --tls-cert node.pem --tls-key node.key
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use syncman_server::config::ServedTypeid;
use syncman_server::{Config, Server};
use tracing::{error, info};

/// A manager server in the spirit of Python's multiprocessing.managers, across machines.
#[derive(Parser)]
#[command(name = "syncman", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

mod listen;
mod status;

#[derive(Subcommand)]
enum Command {
    /// Start a node and serve until Ctrl-C, SIGTERM or a client's shutdown request.
    Serve(Box<ServeArgs>),
    /// Show a running node's sessions and objects (holders, waiters, sizes).
    Status(StatusArgs),
}

#[derive(Args)]
struct StatusArgs {
    /// The node's address.
    #[arg(long, default_value = "127.0.0.1:50000")]
    addr: String,

    /// File holding the authkey; alternatively set SYNCMAN_AUTHKEY.
    #[arg(long, value_name = "PATH")]
    authkey_file: Option<PathBuf>,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on (plain TCP); port 0 picks a free port (printed on the ready
    /// line).
    #[arg(long, default_value = "127.0.0.1:50000")]
    bind: String,

    #[command(flatten)]
    tls: listen::TlsArgs,

    /// File holding the authkey (one trailing newline is ignored). Alternatively set
    /// SYNCMAN_AUTHKEY. The key is never taken on the command line, where `ps` shows it.
    #[arg(long, value_name = "PATH")]
    authkey_file: Option<PathBuf>,

    /// Serve without an authkey (the handshake runs with an empty key): anyone who can
    /// reach the port gets in. For throwaway local experiments only.
    #[arg(long)]
    insecure_no_auth: bool,

    /// Refuse CPython 3.11 clients' legacy HMAC-MD5 answers.
    #[arg(long)]
    require_sha256: bool,

    /// A typeid CPython clients may ask for beyond SyncManager's, as a server that called
    /// `BaseManager.register` serves it: `get_queue=Queue:jobs` answers `m.get_queue()`
    /// with the Queue named "jobs" (made on first use, shared with Rust clients by that
    /// name); `new_board=dict` with a new dict per call. Repeatable.
    #[arg(long = "typeid", value_name = "TYPEID=TYPE[:NAME]")]
    served_typeids: Vec<ServedTypeid>,

    /// Keep locks held by a client that disconnects (CPython's behaviour) instead of
    /// releasing them.
    #[arg(long)]
    keep_locks_on_disconnect: bool,

    /// Largest message accepted after authentication, in bytes.
    #[arg(long, default_value_t = Config::DEFAULT_MAX_FRAME)]
    max_frame: usize,

    /// Connections served at once, authenticated or not; more wait in the listen backlog.
    #[arg(long, default_value_t = Config::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,

    /// Calls one connection may have waiting at once (queue gets, lock acquires, ...);
    /// beyond it a call fails with `Busy`.
    #[arg(long, default_value_t = Config::DEFAULT_MAX_PARKED)]
    max_parked: usize,

    /// Connections in the handshake (not yet authenticated) at once; more wait in the
    /// listen backlog until one finishes.
    #[arg(long, default_value_t = Config::DEFAULT_MAX_HANDSHAKES)]
    max_handshakes: usize,

    /// Connections in the handshake at once from one IP address; more are refused with a
    /// reason.
    #[arg(long, default_value_t = Config::DEFAULT_MAX_HANDSHAKES_PER_ADDRESS)]
    max_handshakes_per_address: usize,

    /// Seconds a client has to answer the node's challenge; a silent peer is closed after
    /// this. On the TLS port, also the time it has to complete the TLS handshake.
    #[arg(long, default_value_t = Config::DEFAULT_FIRST_ANSWER_TIMEOUT.as_secs_f64())]
    first_answer_timeout: f64,

    /// Seconds a connection may be silent before the node checks its peer is still there
    /// (TCP keepalive); a peer cut off without closing is found dead within about twice
    /// this, and its locks are released. 0 disables.
    #[arg(long, default_value_t = Config::DEFAULT_KEEPALIVE.as_secs())]
    keepalive: u64,

    /// Seconds a stopping node waits for clients to read their last replies; then every
    /// session is ended regardless.
    #[arg(long, default_value_t = Config::DEFAULT_DRAIN_TIMEOUT.as_secs_f64())]
    drain_timeout: f64,

    /// Objects the node holds at most; creating more fails with MemoryError.
    #[arg(long, default_value_t = Config::DEFAULT_MAX_OBJECTS)]
    max_objects: usize,

    /// Anonymous objects one connection may hold at once; creating more fails with
    /// MemoryError.
    #[arg(long, default_value_t = Config::DEFAULT_MAX_OBJECTS_PER_SESSION)]
    max_objects_per_session: usize,

    /// Bytes all objects may hold (encoded keys, values and items, parked puts included);
    /// a call that would hold more fails with MemoryError. Suffixes K, M, G (powers of
    /// 1024). Default: a quarter of the machine's memory.
    #[arg(long, value_parser = parse_bytes)]
    max_bytes: Option<usize>,

    /// Seconds a client has to complete the handshake.
    #[arg(long, default_value_t = Config::DEFAULT_HANDSHAKE_TIMEOUT.as_secs_f64())]
    handshake_timeout: f64,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SYNCMAN_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            error!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Serve(args) => runtime.block_on(serve(*args)),
        Command::Status(args) => runtime.block_on(show_status(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("syncman: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A byte count: digits with an optional K, M or G suffix (powers of 1024).
fn parse_bytes(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&text[..i], c.to_ascii_uppercase()),
        _ => (text, 'B'),
    };
    let shift = match unit {
        'B' => 0,
        'K' => 10,
        'M' => 20,
        'G' => 30,
        other => return Err(format!("unknown unit '{other}': use K, M or G")),
    };
    let n: usize = digits
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a byte count"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("'{text}' is too large"))
}

fn load_authkey(authkey_file: Option<&PathBuf>, insecure_no_auth: bool) -> Result<Vec<u8>, String> {
    if let Some(path) = authkey_file {
        let mut key = std::fs::read(path)
            .map_err(|e| format!("cannot read authkey file {}: {e}", path.display()))?;
        if key.ends_with(b"\n") {
            key.pop();
            if key.ends_with(b"\r") {
                key.pop();
            }
        }
        if key.is_empty() {
            return Err(format!("authkey file {} is empty", path.display()));
        }
        return Ok(key);
    }
    match std::env::var_os("SYNCMAN_AUTHKEY") {
        Some(k) if !k.is_empty() => Ok(k.into_encoded_bytes()),
        _ if insecure_no_auth => Ok(Vec::new()),
        _ => Err(
            "no authkey: use --authkey-file PATH or set SYNCMAN_AUTHKEY \
                  (or --insecure-no-auth for a throwaway local node)"
                .into(),
        ),
    }
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    let authkey = load_authkey(args.authkey_file.as_ref(), args.insecure_no_auth)?;
    if authkey.is_empty() {
        tracing::warn!("serving WITHOUT an authkey: anyone who can reach the port can connect");
    }
    let handshake_timeout = positive_secs("--handshake-timeout", args.handshake_timeout)?;
    let first_answer_timeout = positive_secs("--first-answer-timeout", args.first_answer_timeout)?;
    let drain_timeout = positive_secs("--drain-timeout", args.drain_timeout)?;
    raise_open_file_limit(args.max_connections);
    let server = Server::builder(authkey)
        .configure(|c| {
            c.max_frame = args.max_frame;
            c.max_connections = args.max_connections;
            c.max_parked_per_session = args.max_parked;
            c.max_handshakes = args.max_handshakes;
            c.max_handshakes_per_address = args.max_handshakes_per_address;
            c.first_answer_timeout = first_answer_timeout;
            c.keepalive = (args.keepalive > 0).then(|| Duration::from_secs(args.keepalive));
            c.handshake_timeout = handshake_timeout;
            c.drain_timeout = drain_timeout;
            c.require_sha256 = args.require_sha256;
            c.release_on_disconnect = !args.keep_locks_on_disconnect;
            c.served_typeids = args.served_typeids.clone();
            c.max_objects = args.max_objects;
            c.max_objects_per_session = args.max_objects_per_session;
            if let Some(max_bytes) = args.max_bytes {
                c.max_bytes = max_bytes;
            }
        })
        .build()
        .map_err(|e| e.to_string())?;
    let listeners = listen::listen(&args.bind, &args.tls).await?;

    let handle = server.shutdown_handle();
    tokio::spawn(async move {
        wait_for_signal().await;
        info!("signal received; shutting down");
        handle.shutdown();
    });
    server.serve(listeners).await.map_err(|e| e.to_string())
}

fn positive_secs(flag: &str, secs: f64) -> Result<Duration, String> {
    if secs.is_finite() && secs > 0.0 && secs < 1e9 {
        Ok(Duration::from_secs_f64(secs))
    } else {
        Err(format!("{flag} must be a positive number of seconds"))
    }
}

/// Every connection needs a file descriptor; the usual soft limit (1024) is far below
/// `--max-connections`. Raise the soft limit to the hard limit, and say so if that is
/// still too low, rather than failing accepts later.
fn raise_open_file_limit(max_connections: usize) {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return;
            }
            if limit.rlim_cur < limit.rlim_max {
                let raised = libc::rlimit {
                    rlim_cur: limit.rlim_max,
                    rlim_max: limit.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    limit = raised;
                }
            }
        }
        // Room for the listener, logs and the like besides the connections.
        let needed = max_connections as u64 + 64;
        if limit.rlim_cur < needed {
            tracing::warn!(
                "the open-file limit is {}, below --max-connections {max_connections}: \
                 accepts will fail past it (raise it with `ulimit -n` or LimitNOFILE=)",
                limit.rlim_cur
            );
        }
    }
}

async fn show_status(args: StatusArgs) -> Result<(), String> {
    let authkey = load_authkey(args.authkey_file.as_ref(), false)?;
    let status = status::fetch(&args.addr, &authkey).await?;
    print!("{}", status::render(&status));
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
