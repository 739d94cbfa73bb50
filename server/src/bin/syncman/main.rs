//! `syncman`: run a manager node, and ask a running one how it is or to stop.
//!
//! ```text
//! SYNCMAN_AUTHKEY=secret syncman serve --bind 0.0.0.0:50000
//! syncman serve --bind 127.0.0.1:0 --authkey-file ./authkey
//! syncman serve --config /etc/syncman/syncman.toml --log-format json
//! syncman status --addr 127.0.0.1:50000 --json
//! syncman shutdown --addr 127.0.0.1:50000
//! syncman serve --tls-bind 0.0.0.0:50001 --tls-cert node.pem --tls-key node.key
//! ```

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use syncman_server::Server;
use tracing::info;

mod listen;
mod logging;
mod remote;
mod serve_args;
mod status;

use logging::LogFormat;
use serve_args::ServeArgs;

/// A manager server in the spirit of Python's multiprocessing.managers, across machines.
#[derive(Parser)]
#[command(name = "syncman", version, about)]
struct Cli {
    /// How log lines on stderr look: `text` for people, `json` (one object per line) for
    /// log collectors. [default: text]
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    log_format: Option<LogFormat>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a node and serve until Ctrl-C, SIGTERM or a client's shutdown request.
    Serve(Box<ServeCommand>),
    /// Show a running node's version, uptime, sessions and objects (holders, waiters,
    /// sizes).
    Status(StatusArgs),
    /// Ask a running node to stop: it stops accepting, answers what it can, ends every
    /// session within its drain timeout and exits.
    Shutdown(NodeArgs),
}

#[derive(Args)]
struct ServeCommand {
    /// A TOML file with any of the settings below, keyed by the flag's name with `_` for
    /// `-` (`max_bytes = "1G"`, `[typeids]` for `--typeid`); flags given as well override
    /// it. See docs/operations/cli.md.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    // Defines the flags; the settings in force are layered over the file in `settings()`.
    #[command(flatten)]
    settings: ServeArgs,
}

/// Which node a command talks to, and with what key.
#[derive(Args)]
struct NodeArgs {
    /// The node's address.
    #[arg(long, default_value = serve_args::DEFAULT_BIND)]
    addr: String,

    /// File holding the authkey; alternatively set SYNCMAN_AUTHKEY.
    #[arg(long, value_name = "PATH")]
    authkey_file: Option<PathBuf>,
}

#[derive(Args)]
struct StatusArgs {
    #[command(flatten)]
    node: NodeArgs,

    /// Print the status as one JSON object (documented in docs/operations/cli.md).
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // Logging starts once the format is known, a config file's included; `None` until then.
    let mut format = None;
    let mut start_logging = |chosen: Option<LogFormat>| {
        let chosen = chosen.unwrap_or_default();
        logging::init(chosen);
        format = Some(chosen);
    };
    let result = match cli.command {
        Command::Serve(serve_cmd) => settings(&serve_cmd, &matches).and_then(|args| {
            start_logging(cli.log_format.or(args.log_format));
            run(serve(args, serve_cmd.config.as_deref()))
        }),
        Command::Status(args) => {
            start_logging(cli.log_format);
            run(show_status(args))
        }
        Command::Shutdown(args) => {
            start_logging(cli.log_format);
            run(shutdown(args))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A JSON log stays all JSON, the last line included.
            if format == Some(LogFormat::Json) {
                tracing::error!("{e}");
            } else {
                eprintln!("syncman: {e}");
            }
            ExitCode::FAILURE
        }
    }
}

/// The serve settings in force: the config file's, with the command line's over them.
fn settings(cmd: &ServeCommand, matches: &ArgMatches) -> Result<ServeArgs, String> {
    let serve = matches
        .subcommand_matches("serve")
        .ok_or("the serve command's arguments are missing")?;
    ServeArgs::layered(cmd.config.as_deref(), serve)
}

fn run(work: impl Future<Output = Result<(), String>>) -> Result<(), String> {
    let runtime =
        tokio::runtime::Runtime::new().map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(work)
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

/// Runs a node with `args`; `config_file` (where some of them came from) is named in the
/// error when they do not make a valid configuration.
async fn serve(args: ServeArgs, config_file: Option<&Path>) -> Result<(), String> {
    let authkey = load_authkey(
        args.authkey_file.as_ref(),
        args.insecure_no_auth.unwrap_or(false),
    )?;
    if authkey.is_empty() {
        tracing::warn!("serving WITHOUT an authkey: anyone who can reach the port can connect");
    }
    let invalid = |e: String| match config_file {
        Some(file) => format!(
            "{e} (settings from {} and the command line)",
            file.display()
        ),
        None => e,
    };
    let mut config = syncman_server::Config::new(authkey);
    args.configure(&mut config).map_err(invalid)?;
    raise_open_file_limit(config.max_connections);
    let server = Server::builder(Vec::new())
        .config(config)
        .build()
        .map_err(|e| invalid(e.to_string()))?;
    // Bound first, so that a port already taken stops the node before any ready line.
    let metrics = match (&args.metrics_bind, server.metrics()) {
        (Some(addr), Some(metrics)) => {
            let (listener, local) = syncman_server::bind(addr)
                .await
                .map_err(|e| format!("cannot serve metrics on {addr}: {e}"))?;
            Some((metrics.serve(listener), local))
        }
        _ => None,
    };
    // Prints the ready lines: scripts and tests wait for them to learn the ports.
    let listeners = listen::listen(args.bind(), &args.tls()).await?;
    // After the ready lines, which tests and scripts read first.
    if let Some((serving, local)) = metrics {
        println!("metrics on {local}");
        let _ = std::io::Write::flush(&mut std::io::stdout());
        tokio::spawn(async move {
            if let Err(e) = serving.await {
                tracing::error!("metrics: {e}");
            }
        });
    }

    let handle = server.shutdown_handle();
    tokio::spawn(async move {
        wait_for_signal().await;
        info!("signal received; shutting down");
        handle.shutdown();
    });
    server.serve(listeners).await.map_err(|e| e.to_string())
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
                "the open-file limit is {}, below the {needed} that --max-connections \
                 {max_connections} needs: accepts will fail past it (raise it with `ulimit -n` \
                 or LimitNOFILE=)",
                limit.rlim_cur
            );
        }
    }
}

async fn show_status(args: StatusArgs) -> Result<(), String> {
    let authkey = load_authkey(args.node.authkey_file.as_ref(), false)?;
    let raw = remote::control_call(&args.node.addr, &authkey, "status")
        .await
        .map_err(|e| e.to_string())?;
    let status = status::NodeStatus::from_value(&raw)
        .map_err(|e| format!("unreadable status from {}: {e}", args.node.addr))?;
    if args.json {
        print!("{}", status.to_json());
    } else {
        print!("{}", status.render());
    }
    Ok(())
}

/// Asks the node to stop and returns once it has acknowledged (it then drains and exits
/// by itself).
async fn shutdown(args: NodeArgs) -> Result<(), String> {
    let authkey = load_authkey(args.authkey_file.as_ref(), false)?;
    remote::control_call(&args.addr, &authkey, "shutdown")
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "the node at {} acknowledged the shutdown: it no longer accepts connections, \
         ends every session within its drain timeout and exits",
        args.addr
    );
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
