//! Every `syncman serve` setting, defined once for both of its sources: the command line
//! (clap) and a `--config` TOML file (serde). A setting is one field below; its key in the
//! file is the field's name (the flag's name with `_` for `-`).
//!
//! Every field is optional, with no default on either side: the file is read first, then
//! [`clap::FromArgMatches::update_from_arg_matches`] overwrites exactly the fields given on
//! the command line, and the defaults (`Config::DEFAULT_*`) apply last, in
//! [`ServeArgs::configure`], to whatever neither gave. So adding a setting is adding a field
//! here (and using it); the layering needs no code of its own.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{ArgMatches, Args, FromArgMatches};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use syncman_server::config::{ServedTypeid, WrongKeyPolicy};
use syncman_server::Config;

use crate::listen::TlsSettings;
use crate::logging::LogFormat;

/// The address a node listens on when neither the file nor the command line says.
pub const DEFAULT_BIND: &str = "127.0.0.1:50000";

/// `syncman serve`'s settings. In a config file a flag `--a-b` is the key `a_b`, except
/// `--typeid` (the table `[typeids]`), and the key itself is never accepted there.
#[derive(Args, Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (printed on the ready line).
    /// [default: 127.0.0.1:50000]
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<String>,

    /// Also serve TLS on this address (port 0 picks a free port), beside the plain
    /// `--bind` listener: CPython clients cannot speak TLS, so a node can serve both.
    /// Needs --tls-cert and --tls-key. The authkey handshake still runs inside TLS.
    #[arg(long, value_name = "ADDR")]
    pub tls_bind: Option<String>,

    /// The node's TLS certificate chain, PEM, leaf first.
    #[arg(long, value_name = "PEM")]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert, PEM (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "PEM")]
    pub tls_key: Option<PathBuf>,

    /// Mutual TLS: TLS clients must present a certificate signed by a CA in this PEM file.
    #[arg(long, value_name = "PEM")]
    pub tls_client_ca: Option<PathBuf>,

    /// Serve TLS only: the plain listener (--bind) is not opened.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub tls_only: Option<bool>,

    /// File holding the authkey (one trailing newline is ignored). Alternatively set
    /// SYNCMAN_AUTHKEY. The key is never taken on the command line, where `ps` shows it,
    /// nor in a config file (see docs/operations/cli.md).
    #[arg(long, value_name = "PATH")]
    pub authkey_file: Option<PathBuf>,

    /// Serve without an authkey (the handshake runs with an empty key): anyone who can
    /// reach the port gets in. For throwaway local experiments only.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub insecure_no_auth: Option<bool>,

    /// Refuse CPython 3.11 clients' legacy HMAC-MD5 answers.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub require_sha256: Option<bool>,

    /// A typeid CPython clients may ask for beyond SyncManager's, as a server that called
    /// `BaseManager.register` serves it: `get_queue=Queue:jobs` answers `m.get_queue()`
    /// with the Queue named "jobs" (made on first use, shared with Rust clients by that
    /// name); `new_board=dict` with a new dict per call. Repeatable; given on the command
    /// line, these replace the config file's `[typeids]` table.
    #[arg(long = "typeid", value_name = "TYPEID=TYPE[:NAME]")]
    #[serde(default, rename = "typeids", deserialize_with = "typeid_table")]
    pub served_typeids: Option<Vec<ServedTypeid>>,

    /// Keep locks held by a client that disconnects (CPython's behaviour) instead of
    /// releasing them.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub keep_locks_on_disconnect: Option<bool>,

    /// Largest message accepted after authentication, in bytes; suffixes K, M, G.
    /// [default: 64M]
    #[arg(long, value_name = "BYTES")]
    pub max_frame: Option<ByteSize>,

    /// Connections served at once, authenticated or not; more wait in the listen backlog.
    /// [default: 8192]
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,

    /// Calls one connection may have waiting at once (queue gets, lock acquires, ...);
    /// beyond it a call fails with `Busy`. [default: 10000]
    #[arg(long, value_name = "N")]
    pub max_parked: Option<usize>,

    /// Connections in the handshake (not yet authenticated) at once; more wait in the
    /// listen backlog until one finishes. [default: 4096]
    #[arg(long, value_name = "N")]
    pub max_handshakes: Option<usize>,

    /// Connections in the handshake at once from one IP address; more are refused with a
    /// reason. [default: 1024]
    #[arg(long, value_name = "N")]
    pub max_handshakes_per_address: Option<usize>,

    /// Seconds a client has to answer the node's challenge; a silent peer is closed after
    /// this. [default: 3]
    #[arg(long, value_name = "SECS")]
    pub first_answer_timeout: Option<f64>,

    /// Seconds a connection may be silent before the node checks its peer is still there
    /// (TCP keepalive); a peer cut off without closing is found dead within about twice
    /// this, and its locks are released. 0 disables. [default: 30]
    #[arg(long, value_name = "SECS")]
    pub keepalive: Option<u64>,

    /// Seconds a stopping node waits for clients to read their last replies; then every
    /// session is ended regardless. [default: 5]
    #[arg(long, value_name = "SECS")]
    pub drain_timeout: Option<f64>,

    /// Objects the node holds at most; creating more fails with MemoryError.
    /// [default: 1000000]
    #[arg(long, value_name = "N")]
    pub max_objects: Option<usize>,

    /// Anonymous objects one connection may hold at once; creating more fails with
    /// MemoryError. [default: 100000]
    #[arg(long, value_name = "N")]
    pub max_objects_per_session: Option<usize>,

    /// Bytes all objects may hold (encoded keys, values and items, parked puts included);
    /// a call that would hold more fails with MemoryError. Suffixes K, M, G (powers of
    /// 1024). [default: a quarter of the machine's memory]
    #[arg(long, value_name = "BYTES")]
    pub max_bytes: Option<ByteSize>,

    /// Seconds a client has to complete the handshake. [default: 10]
    #[arg(long, value_name = "SECS")]
    pub handshake_timeout: Option<f64>,

    /// Wrong keys from one IP address within --wrong-key-window after which the node
    /// refuses that address's new connections for a penalty, saying why and for how long
    /// (other addresses are never affected); 0 turns this back-off off. [default: 5]
    #[arg(long, value_name = "N")]
    pub wrong_key_limit: Option<u32>,

    /// Seconds in which --wrong-key-limit wrong keys start a penalty. [default: 60]
    #[arg(long, value_name = "SECS")]
    pub wrong_key_window: Option<f64>,

    /// Seconds of an address's first penalty; each further one doubles, up to
    /// --wrong-key-max-penalty. A right key from the address forgets its wrong ones.
    /// [default: 10]
    #[arg(long, value_name = "SECS")]
    pub wrong_key_penalty: Option<f64>,

    /// Seconds of the longest penalty; after this long without a wrong key the doubling
    /// starts over. [default: 600]
    #[arg(long, value_name = "SECS")]
    pub wrong_key_max_penalty: Option<f64>,

    /// Addresses the wrong-key back-off remembers at most; the least recently seen is
    /// forgotten first. [default: 16384]
    #[arg(long, value_name = "N")]
    pub wrong_key_table: Option<usize>,

    /// Serve Prometheus metrics at http://ADDR/metrics (port 0 picks one, printed on a
    /// `metrics on` line after the ready line); see docs/operations/metrics.md. Without it
    /// the node collects none.
    #[arg(long, value_name = "ADDR")]
    pub metrics_bind: Option<String>,

    /// The log's format in a config file (`text` or `json`); on the command line it is
    /// `--log-format`, which every subcommand takes.
    #[arg(skip)]
    pub log_format: Option<LogFormat>,
}

impl ServeArgs {
    /// The settings in force: `file`'s (if any), overwritten by those given on the command
    /// line (`matches`, the `serve` subcommand's).
    pub fn layered(file: Option<&Path>, matches: &ArgMatches) -> Result<ServeArgs, String> {
        let mut args = match file {
            Some(path) => Self::from_file(path)?,
            None => ServeArgs::default(),
        };
        args.update_from_arg_matches(matches)
            .map_err(|e| e.to_string())?;
        Ok(args)
    }

    /// Reads a config file. An unknown key, a value of the wrong type or a bad value is an
    /// error that names the file and shows the key's line.
    pub fn from_file(path: &Path) -> Result<ServeArgs, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("config file {}: {e}", path.display()))
    }

    fn parse(text: &str) -> Result<ServeArgs, String> {
        toml::from_str(text).map_err(|e| {
            // Not toml's message, which would quote the line, key and all, into the log.
            if toml::from_str::<toml::Table>(text).is_ok_and(|t| t.contains_key("authkey")) {
                "the authkey is not taken from a config file, which is often readable by more \
                 people than the key should be: put the key alone in a file only the node's \
                 user can read and name it with authkey_file"
                    .to_owned()
            } else {
                e.to_string()
            }
        })
    }

    pub fn bind(&self) -> &str {
        self.bind.as_deref().unwrap_or(DEFAULT_BIND)
    }

    /// The TLS settings, checked together once both sources are in.
    pub fn tls(&self) -> TlsSettings {
        TlsSettings {
            bind: self.tls_bind.clone(),
            cert: self.tls_cert.clone(),
            key: self.tls_key.clone(),
            client_ca: self.tls_client_ca.clone(),
            only: self.tls_only.unwrap_or(false),
            plain_bind_given: self.bind.is_some(),
        }
    }

    /// Applies every setting given to `c`; the others keep `Config`'s defaults.
    pub fn configure(&self, c: &mut Config) -> Result<(), String> {
        let secs = |key: &str, given: Option<f64>, default: Duration| match given {
            None => Ok(default),
            Some(s) if s.is_finite() && s > 0.0 && s < 1e9 => Ok(Duration::from_secs_f64(s)),
            Some(_) => Err(format!("{key} must be a positive number of seconds")),
        };
        c.handshake_timeout = secs(
            "handshake_timeout",
            self.handshake_timeout,
            Config::DEFAULT_HANDSHAKE_TIMEOUT,
        )?;
        c.first_answer_timeout = secs(
            "first_answer_timeout",
            self.first_answer_timeout,
            Config::DEFAULT_FIRST_ANSWER_TIMEOUT,
        )?;
        c.drain_timeout = secs(
            "drain_timeout",
            self.drain_timeout,
            Config::DEFAULT_DRAIN_TIMEOUT,
        )?;
        let keepalive = self
            .keepalive
            .unwrap_or(Config::DEFAULT_KEEPALIVE.as_secs());
        c.keepalive = (keepalive > 0).then(|| Duration::from_secs(keepalive));
        c.max_frame = self.max_frame.map_or(Config::DEFAULT_MAX_FRAME, |b| b.0);
        c.max_connections = self
            .max_connections
            .unwrap_or(Config::DEFAULT_MAX_CONNECTIONS);
        c.max_parked_per_session = self.max_parked.unwrap_or(Config::DEFAULT_MAX_PARKED);
        c.max_handshakes = self
            .max_handshakes
            .unwrap_or(Config::DEFAULT_MAX_HANDSHAKES);
        c.max_handshakes_per_address = self
            .max_handshakes_per_address
            .unwrap_or(Config::DEFAULT_MAX_HANDSHAKES_PER_ADDRESS);
        c.require_sha256 = self.require_sha256.unwrap_or(false);
        c.release_on_disconnect = !self.keep_locks_on_disconnect.unwrap_or(false);
        c.served_typeids = self.served_typeids.clone().unwrap_or_default();
        c.max_objects = self.max_objects.unwrap_or(Config::DEFAULT_MAX_OBJECTS);
        c.max_objects_per_session = self
            .max_objects_per_session
            .unwrap_or(Config::DEFAULT_MAX_OBJECTS_PER_SESSION);
        if let Some(max_bytes) = self.max_bytes {
            c.max_bytes = max_bytes.0;
        }
        c.collect_metrics = self.metrics_bind.is_some();
        c.wrong_keys = WrongKeyPolicy {
            limit: self
                .wrong_key_limit
                .unwrap_or(WrongKeyPolicy::DEFAULT_LIMIT),
            window: secs(
                "wrong_key_window",
                self.wrong_key_window,
                WrongKeyPolicy::DEFAULT_WINDOW,
            )?,
            penalty: secs(
                "wrong_key_penalty",
                self.wrong_key_penalty,
                WrongKeyPolicy::DEFAULT_PENALTY,
            )?,
            max_penalty: secs(
                "wrong_key_max_penalty",
                self.wrong_key_max_penalty,
                WrongKeyPolicy::DEFAULT_MAX_PENALTY,
            )?,
            table_size: self
                .wrong_key_table
                .unwrap_or(WrongKeyPolicy::DEFAULT_TABLE_SIZE),
        };
        Ok(())
    }
}

/// A byte count: digits with an optional K, M or G suffix (powers of 1024); in a config file
/// also a plain integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub usize);

impl std::str::FromStr for ByteSize {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
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
            .map(ByteSize)
            .ok_or_else(|| format!("'{text}' is too large"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Bytes;
        impl Visitor<'_> for Bytes {
            type Value = ByteSize;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a byte count: an integer, or a string such as \"512M\"")
            }

            fn visit_u64<E: de::Error>(self, n: u64) -> Result<ByteSize, E> {
                usize::try_from(n)
                    .map(ByteSize)
                    .map_err(|_| E::custom(format!("{n} is too large")))
            }

            fn visit_i64<E: de::Error>(self, n: i64) -> Result<ByteSize, E> {
                u64::try_from(n)
                    .map_err(|_| E::custom(format!("{n} is not a byte count")))
                    .and_then(|n| self.visit_u64(n))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<ByteSize, E> {
                text.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(Bytes)
    }
}

/// `[typeids]` in a config file: `get_queue = "Queue:jobs"` is `--typeid get_queue=Queue:jobs`.
fn typeid_table<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<ServedTypeid>>, D::Error> {
    struct Table;
    impl<'de> Visitor<'de> for Table {
        type Value = Vec<ServedTypeid>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a table of TYPEID = \"TYPE\" or TYPEID = \"TYPE:NAME\"")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut served = Vec::new();
            while let Some((typeid, target)) = map.next_entry::<String, String>()? {
                let entry = format!("{typeid}={target}");
                served.push(entry.parse().map_err(de::Error::custom)?);
            }
            Ok(served)
        }
    }
    d.deserialize_map(Table).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// The `serve` subcommand alone, for parsing command lines in tests.
    #[derive(clap::Parser)]
    struct Serve {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn layered(file: &str, argv: &[&str]) -> Result<ServeArgs, String> {
        let mut args = ServeArgs::parse(file)?;
        let matches = Serve::command()
            .try_get_matches_from(std::iter::once("serve").chain(argv.iter().copied()))
            .map_err(|e| e.to_string())?;
        args.update_from_arg_matches(&matches)
            .map_err(|e| e.to_string())?;
        Ok(args)
    }

    #[test]
    fn the_command_line_overrides_the_file_and_the_file_fills_in_the_rest() {
        let file = r#"
            bind = "0.0.0.0:1"
            max_bytes = "1M"
            max_parked = 7
            require_sha256 = true
            keep_locks_on_disconnect = true
            log_format = "json"
            [typeids]
            get_queue = "Queue:jobs"
        "#;
        let args = layered(
            file,
            &["--max-bytes", "2K", "--keep-locks-on-disconnect=false"],
        )
        .unwrap();
        assert_eq!(args.bind(), "0.0.0.0:1");
        assert_eq!(args.max_bytes, Some(ByteSize(2048)), "the flag wins");
        assert_eq!(args.max_parked, Some(7), "the file fills in");
        assert_eq!(args.require_sha256, Some(true));
        assert_eq!(
            args.keep_locks_on_disconnect,
            Some(false),
            "=false overrides"
        );
        let served = args.served_typeids.unwrap();
        assert_eq!(served[0].typeid, "get_queue");
        assert_eq!(served[0].name.as_deref(), Some("jobs"));
    }

    #[test]
    fn a_bare_flag_is_true_and_an_absent_one_leaves_the_file_alone() {
        let args = layered("require_sha256 = true", &["--keep-locks-on-disconnect"]).unwrap();
        assert_eq!(args.keep_locks_on_disconnect, Some(true));
        assert_eq!(args.require_sha256, Some(true));
        let flags = layered("", &["--typeid", "a=dict", "--typeid", "b=Queue:q"]).unwrap();
        assert_eq!(flags.served_typeids.map(|s| s.len()), Some(2));
    }

    #[test]
    fn unknown_keys_bad_values_and_inline_keys_are_refused_by_name() {
        let unknown = layered("max_conections = 5", &[]).unwrap_err();
        assert!(unknown.contains("max_conections"), "{unknown}");
        let bad = layered("max_bytes = \"12X\"", &[]).unwrap_err();
        assert!(
            bad.contains("max_bytes") && bad.contains("unknown unit"),
            "{bad}"
        );
        let typeid = layered("[typeids]\nget_queue = \"Queue:\"", &[]).unwrap_err();
        assert!(typeid.contains("get_queue"), "{typeid}");
        let key = layered("authkey = \"hunter2\"", &[]).unwrap_err();
        assert!(
            key.contains("authkey_file") && !key.contains("hunter2"),
            "{key}"
        );
    }

    #[test]
    fn nothing_given_means_config_defaults() {
        let mut given = Config::new(b"k".to_vec());
        ServeArgs::default().configure(&mut given).unwrap();
        assert_eq!(
            format!("{given:?}"),
            format!("{:?}", Config::new(b"k".to_vec()))
        );
        assert_eq!(ServeArgs::default().bind(), DEFAULT_BIND);
    }

    #[test]
    fn the_help_states_the_defaults_in_force() {
        let help = Serve::command().render_help().to_string();
        let help: String = help.split_whitespace().collect::<Vec<_>>().join(" ");
        for default in [
            Config::DEFAULT_MAX_CONNECTIONS,
            Config::DEFAULT_MAX_PARKED,
            Config::DEFAULT_MAX_HANDSHAKES,
            Config::DEFAULT_MAX_HANDSHAKES_PER_ADDRESS,
            Config::DEFAULT_MAX_OBJECTS,
            Config::DEFAULT_MAX_OBJECTS_PER_SESSION,
            WrongKeyPolicy::DEFAULT_LIMIT as usize,
            WrongKeyPolicy::DEFAULT_TABLE_SIZE,
        ] {
            assert!(
                help.contains(&format!("[default: {default}]")),
                "{default}: {help}"
            );
        }
        for secs in [
            Config::DEFAULT_FIRST_ANSWER_TIMEOUT,
            Config::DEFAULT_KEEPALIVE,
            Config::DEFAULT_DRAIN_TIMEOUT,
            Config::DEFAULT_HANDSHAKE_TIMEOUT,
            WrongKeyPolicy::DEFAULT_WINDOW,
            WrongKeyPolicy::DEFAULT_PENALTY,
            WrongKeyPolicy::DEFAULT_MAX_PENALTY,
        ] {
            let shown = format!("[default: {}]", secs.as_secs());
            assert!(help.contains(&shown), "{shown}: {help}");
        }
        assert_eq!(Config::DEFAULT_MAX_FRAME, 64 << 20, "the help says 64M");
        assert!(help.contains(&format!("[default: {DEFAULT_BIND}]")));
    }

    /// The example in docs/operations/cli.md sets every key, and validly: a setting added
    /// here without documenting it there fails this test.
    #[test]
    fn the_documented_example_sets_every_key() {
        let doc = include_str!("../../../../docs/operations/cli.md");
        let start = doc
            .find("```toml\n# /etc/syncman/syncman.toml")
            .expect("the example config in docs/operations/cli.md");
        let block = &doc[start + "```toml\n".len()..];
        let block = &block[..block.find("```").expect("the example's end")];
        let mut args = ServeArgs::parse(block).unwrap();
        args.configure(&mut Config::new(b"k".to_vec())).unwrap();
        // Typeids may rightly hold a `None` (no name); every other field must be set.
        let typeids = args.served_typeids.replace(Vec::new());
        assert!(
            typeids.is_some_and(|t| !t.is_empty()),
            "no [typeids] in the example"
        );
        let shown = format!("{args:?}");
        assert!(
            !shown.contains("None"),
            "a key missing from the example: {shown}"
        );
    }

    #[test]
    fn byte_sizes() {
        assert_eq!("512".parse(), Ok(ByteSize(512)));
        assert_eq!("4k".parse(), Ok(ByteSize(4096)));
        assert_eq!("2G".parse(), Ok(ByteSize(2 << 30)));
        assert!("12X".parse::<ByteSize>().is_err());
        assert!("M".parse::<ByteSize>().is_err());
        let from_int: ByteSize = toml::from_str::<toml::Table>("n = 5")
            .unwrap()
            .remove("n")
            .unwrap()
            .try_into()
            .unwrap();
        assert_eq!(from_int, ByteSize(5));
    }
}
