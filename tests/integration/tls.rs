//! TLS through the real binary: a node serving TLS (`--tls-bind`) beside or instead of its
//! plain port, with certificates made here by rcgen, and clients over real sockets.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use syncman_client::{ConnectOptions, Error, Manager, NodeAddr, TlsError, TlsOptions};
use syncman_tests::python::Py;
use syncman_tests::{syncman_bin, TestNode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

/// Bound on anything a test waits for.
const WAIT: Duration = Duration::from_secs(20);

/// A folder for one test's PEM files, removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("syncman-tls-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the scratch folder");
        Scratch(dir)
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write a PEM file");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A certificate authority made for one test, its certificate in `file`.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    file: PathBuf,
}

impl Ca {
    fn new(dir: &Scratch, name: &str) -> Ca {
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("generate a CA key");
        let issuer = CertifiedIssuer::self_signed(params, key).expect("self-sign the CA");
        let file = dir.write(&format!("{name}-ca.pem"), &issuer.pem());
        Ca { issuer, file }
    }

    /// A certificate signed by this CA for `names`, and its key: PEM files `stem.pem` and
    /// `stem.key`.
    fn issue(
        &self,
        dir: &Scratch,
        stem: &str,
        names: &[&str],
        usage: ExtendedKeyUsagePurpose,
    ) -> (PathBuf, PathBuf) {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("certificate names");
        params.distinguished_name.push(DnType::CommonName, stem);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().expect("generate a key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("sign a certificate");
        (
            dir.write(&format!("{stem}.pem"), &cert.pem()),
            dir.write(&format!("{stem}.key"), &key.serialize_pem()),
        )
    }

    /// A client certificate for mutual TLS.
    fn client_cert(&self, dir: &Scratch, stem: &str) -> (PathBuf, PathBuf) {
        self.issue(dir, stem, &[], ExtendedKeyUsagePurpose::ClientAuth)
    }
}

/// A node's certificates: its CA and a certificate for `localhost` and `127.0.0.1`.
struct Pki {
    dir: Scratch,
    ca: Ca,
    cert: PathBuf,
    key: PathBuf,
}

impl Pki {
    fn new() -> Pki {
        Pki::for_names(&["localhost", "127.0.0.1"])
    }

    fn for_names(names: &[&str]) -> Pki {
        let dir = Scratch::new();
        let ca = Ca::new(&dir, "node");
        let (cert, key) = ca.issue(&dir, "node", names, ExtendedKeyUsagePurpose::ServerAuth);
        Pki { dir, ca, cert, key }
    }

    /// `syncman serve` flags for a TLS listener on a free port, then `extra`.
    fn flags(&self, extra: &[&str]) -> Vec<String> {
        let mut flags: Vec<String> = vec![
            "--tls-bind".into(),
            "127.0.0.1:0".into(),
            "--tls-cert".into(),
            path(&self.cert).into(),
            "--tls-key".into(),
            path(&self.key).into(),
        ];
        flags.extend(extra.iter().map(|s| s.to_string()));
        flags
    }

    /// Starts a node with these certificates and `extra` flags.
    fn node(&self, extra: &[&str]) -> TestNode {
        let flags = self.flags(extra);
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        TestNode::start_with(&flags)
    }

    /// Client settings that trust the node's CA.
    fn trust(&self) -> TlsOptions {
        TlsOptions::from_ca_file(&self.ca.file).expect("load the node's CA")
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// Connects over TLS (bounded).
async fn connect_tls<A: NodeAddr>(
    addr: A,
    authkey: &[u8],
    tls: TlsOptions,
) -> syncman_client::Result<Manager> {
    let options = ConnectOptions {
        tls: Some(tls),
        ..ConnectOptions::default()
    };
    tokio::time::timeout(WAIT, Manager::connect_with(addr, authkey, options))
        .await
        .expect("a TLS connect that neither succeeded nor failed")
}

#[tokio::test]
async fn a_dict_round_trips_over_tls() {
    let pki = Pki::new();
    let node = pki.node(&[]);
    let m = connect_tls(node.tls_addr(), node.authkey(), pki.trust())
        .await
        .expect("connect over TLS");
    let d = m.dict::<String, String>("over-tls").await.unwrap();
    d.insert(&"k".into(), &"v".into()).await.unwrap();
    assert_eq!(d.get(&"k".into()).await.unwrap().as_deref(), Some("v"));
    // Values larger than a TLS record (16 KiB), and calls pipelined from many tasks at
    // once, through the shared halves of one TLS session.
    let big = "x".repeat(200_000);
    d.insert(&"big".into(), &big).await.unwrap();
    let calls = (0..32).map(|i| {
        let d = d.clone();
        let big = big.clone();
        tokio::spawn(async move {
            d.insert(&format!("k{i}"), &format!("{i}")).await.unwrap();
            assert_eq!(d.get(&"big".into()).await.unwrap(), Some(big));
        })
    });
    for call in calls {
        call.await.unwrap();
    }
    assert_eq!(d.len().await.unwrap(), 34);
    assert!(
        node.wait_for_log("TLS established", WAIT),
        "the node logged no TLS session"
    );
}

/// The blocking facade takes the same options.
#[test]
fn the_blocking_client_speaks_tls_too() {
    let pki = Pki::new();
    let node = pki.node(&[]);
    let options = ConnectOptions {
        tls: Some(pki.trust()),
        ..ConnectOptions::default()
    };
    let m =
        syncman_client::blocking::Manager::connect_with(node.tls_addr(), node.authkey(), options)
            .expect("blocking connect over TLS");
    let q = m.queue::<u64>("blocking-tls").unwrap();
    q.put(&7).unwrap();
    assert_eq!(q.get_timeout(WAIT).unwrap(), Some(7));
}

#[tokio::test]
async fn a_client_trusting_another_ca_is_refused_with_a_clear_error() {
    let pki = Pki::new();
    let other = Ca::new(&pki.dir, "other");
    let node = pki.node(&[]);
    let wrong = TlsOptions::from_ca_file(&other.file).unwrap();
    let err = connect_tls(node.tls_addr(), node.authkey(), wrong)
        .await
        .expect_err("a client that does not trust the node's CA connected");
    match &err {
        Error::Tls(TlsError::Untrusted { reason, .. }) => {
            assert!(reason.contains("unknown issuer"), "{reason}")
        }
        other => panic!("expected an untrusted-certificate error, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains("certificate was not trusted"), "{text}");
    assert!(
        node.wait_for_log("TLS handshake failed", WAIT),
        "the node did not log the failed TLS handshake"
    );
    // The node carries on.
    let m = connect_tls(node.tls_addr(), node.authkey(), pki.trust())
        .await
        .expect("a trusting client connects after the refusal");
    m.ping().await.unwrap();
}

/// The name checked is the host part of the address unless one is given.
#[tokio::test]
async fn the_server_name_defaults_to_the_host_part_of_the_address() {
    // A certificate for the name only, not for 127.0.0.1.
    let pki = Pki::for_names(&["localhost"]);
    let node = pki.node(&[]);
    let port = node.tls_addr().port();
    let m = connect_tls(format!("localhost:{port}"), node.authkey(), pki.trust())
        .await
        .expect("connect by the certificate's name");
    m.ping().await.unwrap();
    let err = connect_tls(node.tls_addr(), node.authkey(), pki.trust())
        .await
        .expect_err("a certificate for localhost was accepted for 127.0.0.1");
    assert!(
        matches!(&err, Error::Tls(TlsError::Untrusted { server_name, reason })
            if server_name == "127.0.0.1" && reason.contains("another name")),
        "{err:?}"
    );
    let named = pki.trust().server_name("localhost");
    let m = connect_tls(node.tls_addr(), node.authkey(), named)
        .await
        .expect("connect by address with the name given");
    m.ping().await.unwrap();
}

/// Reads until the peer closes (or fails the connection), bounded; what it sent.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let read = async {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(WAIT, read)
        .await
        .expect("the node kept the connection open");
    got
}

#[tokio::test]
async fn plain_bytes_sent_to_the_tls_port_are_refused_and_the_node_carries_on() {
    let pki = Pki::new();
    let node = pki.node(&["--first-answer-timeout", "0.5"]);

    // What a plain peer would say first: a framed message in the clear.
    let mut raw = TcpStream::connect(node.tls_addr()).await.unwrap();
    raw.write_all(b"\x00\x00\x00\x13#CHALLENGE#{sha256}")
        .await
        .unwrap();
    let answer = read_until_closed(&mut raw).await;
    // At most a TLS alert record (content type 21): nothing of the node's own protocol.
    assert!(
        answer.is_empty() || answer[0] == 21,
        "the node answered plain bytes with {answer:?}"
    );
    assert!(
        node.wait_for_log("TLS handshake failed", WAIT),
        "the node did not log the refused plain bytes"
    );

    // A plain syncman client waits for a challenge the TLS port never sends: the node lets
    // it go at the first-answer deadline.
    let started = Instant::now();
    let err = tokio::time::timeout(WAIT, Manager::connect(node.tls_addr(), node.authkey()))
        .await
        .expect("a plain client on the TLS port was held past the deadline")
        .expect_err("a plain client got through the TLS port");
    assert!(matches!(err, Error::Handshake(_) | Error::Io(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "{started:?}");
    assert!(
        node.wait_for_log("TLS handshake timed out", WAIT),
        "the node did not log the silent plain client"
    );

    // Both ports still serve.
    let m = connect_tls(node.tls_addr(), node.authkey(), pki.trust())
        .await
        .expect("a TLS client after the plain peers");
    m.ping().await.unwrap();
    node.manager().await.ping().await.unwrap();
}

/// A peer that opens the TLS port and says nothing holds its handshake place only until
/// the first-answer deadline, well before the handshake timeout.
#[tokio::test]
async fn a_silent_peer_on_the_tls_port_lets_its_handshake_place_go_at_the_first_answer_deadline() {
    let pki = Pki::new();
    let node = pki.node(&[
        "--max-handshakes",
        "1",
        "--first-answer-timeout",
        "0.5",
        "--handshake-timeout",
        "60",
    ]);
    // Accepted first (the backlog is served in order), it takes the only place.
    let silent = TcpStream::connect(node.tls_addr()).await.unwrap();
    let started = Instant::now();
    let m = connect_tls(node.tls_addr(), node.authkey(), pki.trust())
        .await
        .expect("a TLS client behind a silent peer");
    let waited = started.elapsed();
    m.ping().await.unwrap();
    assert!(
        waited >= Duration::from_millis(300),
        "the client did not wait behind the silent peer ({waited:?}): the test proves nothing"
    );
    assert!(
        node.wait_for_log("TLS handshake timed out", WAIT),
        "the silent peer's timeout was not logged"
    );
    drop(silent);
}

/// Past the per-address limit a TLS client is closed without a TLS handshake (it could not
/// read the plain port's `#REFUSED#` frame), and is told the node closed the connection.
#[tokio::test]
async fn past_the_per_address_limit_a_tls_client_is_closed_before_its_tls_handshake() {
    let pki = Pki::new();
    let node = pki.node(&[
        "--max-handshakes-per-address",
        "1",
        "--first-answer-timeout",
        "30",
        "--handshake-timeout",
        "60",
    ]);
    // Accepted first (the backlog is served in order), it takes the address's one place.
    let silent = TcpStream::connect(node.tls_addr()).await.unwrap();
    let err = connect_tls(node.tls_addr(), node.authkey(), pki.trust())
        .await
        .expect_err("a TLS client got past the per-address limit");
    assert!(
        matches!(&err, Error::Tls(TlsError::Handshake(why)) if why.contains("closed the connection")),
        "{err:?}"
    );
    assert!(
        node.wait_for_log("refusing connection", WAIT),
        "the refusal was not logged"
    );
    // Once the silent peer leaves, its place is free again.
    drop(silent);
    let end = Instant::now() + WAIT;
    loop {
        match connect_tls(node.tls_addr(), node.authkey(), pki.trust()).await {
            Ok(m) => break m.ping().await.unwrap(),
            Err(e) if Instant::now() < end => {
                // The node may not have seen the silent peer's close yet.
                eprintln!("not yet: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("the address's place never came back: {e}"),
        }
    }
}

#[tokio::test]
async fn mutual_tls_admits_clients_with_a_certificate_from_the_ca_and_refuses_the_rest() {
    let pki = Pki::new();
    let clients = Ca::new(&pki.dir, "clients");
    let (cert, key) = clients.client_cert(&pki.dir, "alice");
    let other = Ca::new(&pki.dir, "other");
    let (bad_cert, bad_key) = other.client_cert(&pki.dir, "mallory");
    let node = pki.node(&["--tls-client-ca", path(&clients.file)]);

    let alice = pki.trust().client_cert_files(&cert, &key).unwrap();
    let m = connect_tls(node.tls_addr(), node.authkey(), alice)
        .await
        .expect("a client with a certificate from the CA");
    let d = m.dict::<String, u64>("mtls").await.unwrap();
    d.insert(&"alice".into(), &1).await.unwrap();
    assert_eq!(d.get(&"alice".into()).await.unwrap(), Some(1));

    let err = connect_tls(node.tls_addr(), node.authkey(), pki.trust())
        .await
        .expect_err("a client without a certificate got in");
    assert!(
        matches!(&err, Error::Tls(TlsError::ClientRefused(why)) if why.contains("requires a client certificate")),
        "{err:?}"
    );

    let mallory = pki.trust().client_cert_files(&bad_cert, &bad_key).unwrap();
    let err = connect_tls(node.tls_addr(), node.authkey(), mallory)
        .await
        .expect_err("a client with a certificate from another CA got in");
    assert!(
        matches!(&err, Error::Tls(TlsError::ClientRefused(why)) if why.contains("did not accept")),
        "{err:?}"
    );
    assert!(
        node.wait_for_log("TLS handshake failed", WAIT),
        "the node did not log the refused clients"
    );
    // The admitted client was not disturbed.
    assert_eq!(d.get(&"alice".into()).await.unwrap(), Some(1));
}

#[tokio::test]
async fn plain_and_tls_listeners_serve_the_same_objects() {
    let pki = Pki::new();
    let node = pki.node(&[]);
    let plain = node.manager().await;
    let tls = connect_tls(node.tls_addr(), node.authkey(), pki.trust())
        .await
        .expect("connect over TLS");

    let over_plain = plain.dict::<String, u64>("shared").await.unwrap();
    let over_tls = tls.dict::<String, u64>("shared").await.unwrap();
    over_plain.insert(&"from plain".into(), &1).await.unwrap();
    assert_eq!(over_tls.get(&"from plain".into()).await.unwrap(), Some(1));
    over_tls.insert(&"from tls".into(), &2).await.unwrap();
    assert_eq!(over_plain.get(&"from tls".into()).await.unwrap(), Some(2));

    // A get parked by a plain client is answered by a put over TLS.
    let q_plain = plain.queue::<u64>("handover").await.unwrap();
    let q_tls = tls.queue::<u64>("handover").await.unwrap();
    let waiting = tokio::spawn(async move { q_plain.get_timeout(WAIT).await });
    syncman_tests::wait_for_waiters(&tls, "handover", 1).await;
    q_tls.put(&9).await.unwrap();
    assert_eq!(waiting.await.unwrap().unwrap(), Some(9));

    // A TLS client pointed at the plain port is told what is wrong.
    let err = connect_tls(node.addr(), node.authkey(), pki.trust())
        .await
        .expect_err("a TLS client got through the plain port");
    assert!(
        matches!(&err, Error::Tls(TlsError::Handshake(why)) if why.contains("plain port")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_tls_only_node_opens_no_plain_port() {
    let pki = Pki::new();
    let node = pki.node(&["--tls-only"]);
    assert!(!node.has_plain_listener());
    let m = connect_tls(node.tls_addr(), node.authkey(), pki.trust())
        .await
        .expect("connect over TLS");
    m.ping().await.unwrap();
    let log = node.log();
    let listening: Vec<&str> = log.lines().filter(|l| l.contains("serving")).collect();
    assert!(
        listening.len() == 1 && listening[0].contains("tls=true"),
        "{listening:?}"
    );
}

/// `syncman serve` with `args`, which must fail at start: its stderr.
fn failing_start(args: &[&str]) -> String {
    let mut child = Command::new(syncman_bin())
        .arg("serve")
        .args(args)
        .env("SYNCMAN_AUTHKEY", "k")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn syncman");
    let end = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for syncman") {
            break status;
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("syncman {args:?} kept running");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = child.wait_with_output().expect("syncman output");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!status.success(), "syncman {args:?} started: {stdout}");
    assert!(!stdout.contains("listening"), "{stdout}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn bad_tls_files_stop_the_node_at_start_with_a_message_that_names_them() {
    let pki = Pki::new();
    let other = Ca::new(&pki.dir, "other");
    let (_, other_key) = other.client_cert(&pki.dir, "stranger");
    let missing = pki.dir.0.join("missing.pem");
    let (cert, key) = (path(&pki.cert), path(&pki.key));
    let tls = |cert: &str, key: &str, extra: &[&str]| {
        let mut args = vec!["--bind", "127.0.0.1:0", "--tls-bind", "127.0.0.1:0"];
        args.extend(["--tls-cert", cert, "--tls-key", key]);
        args.extend_from_slice(extra);
        failing_start(&args)
    };

    let err = tls(path(&missing), key, &[]);
    assert!(
        err.contains("cannot read the certificate file") && err.contains("missing.pem"),
        "{err}"
    );
    // The two files swapped.
    let err = tls(key, cert, &[]);
    assert!(
        err.contains("node.key") && err.contains("holds no CERTIFICATE"),
        "{err}"
    );
    let err = tls(cert, path(&other_key), &[]);
    assert!(
        err.contains("does not match the certificate") && err.contains("stranger.key"),
        "{err}"
    );
    let err = tls(cert, key, &["--tls-client-ca", path(&missing)]);
    assert!(
        err.contains("cannot read the CA file") && err.contains("missing.pem"),
        "{err}"
    );
}

/// A local plain port that forwards each connection over TLS to the node, as stunnel does
/// in front of a CPython client (docs/operations/tls.md). Runs until the test ends.
async fn tls_terminator(node: SocketAddr, ca: &Path) -> SocketAddr {
    let pem = std::fs::read(ca).expect("read the CA");
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.expect("a CA certificate")).unwrap();
    }
    let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = TlsConnector::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut plain, _)) = listener.accept().await {
            let connector = connector.clone();
            tokio::spawn(async move {
                let _ = plain.set_nodelay(true);
                let Ok(tcp) = TcpStream::connect(node).await else {
                    return;
                };
                let _ = tcp.set_nodelay(true);
                let name = ServerName::from(node.ip());
                if let Ok(mut tls) = connector.connect(name, tcp).await {
                    let _ = tokio::io::copy_bidirectional(&mut plain, &mut tls).await;
                }
            });
        }
    });
    local
}

/// CPython's `multiprocessing.connection` cannot speak TLS; through a terminator it
/// reaches a TLS-only node, and its calls (the pickle dialect) run inside TLS.
#[tokio::test]
async fn a_cpython_client_reaches_the_tls_port_through_a_tls_terminator() {
    const SCRIPT: &str = r#"
import sys
from multiprocessing.managers import BaseManager
class M(BaseManager): pass
M.register("get_board")
m = M(address=(sys.argv[1], int(sys.argv[2])), authkey=bytes.fromhex(sys.argv[3]))
m.connect()
board = m.get_board()
board["from python"] = board["from rust"] + 1
print("OK", board["from python"], flush=True)
"#;
    let pki = Pki::new();
    let node = pki.node(&["--tls-only", "--typeid", "get_board=dict:board"]);
    let m = connect_tls(node.tls_addr(), node.authkey(), pki.trust())
        .await
        .expect("connect over TLS");
    let board = m.dict::<String, i64>("board").await.unwrap();
    board.insert(&"from rust".into(), &41).await.unwrap();

    let local = tls_terminator(node.tls_addr(), &pki.ca.file).await;
    let outcome = syncman_tests::cpython::run_against(
        Py::V311,
        local,
        node.authkey(),
        &["-c", SCRIPT],
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(outcome.last_line(), Some("OK 42"), "{outcome}");
    assert_eq!(board.get(&"from python".into()).await.unwrap(), Some(42));
}

/// The TLS listener's handshakes show in the metrics: a failed TLS handshake, a silent
/// peer, and a client that gets in.
#[tokio::test]
async fn tls_handshakes_show_in_the_metrics() {
    use syncman_tests::metrics::{scrape, wait_for_metric};
    let pki = Pki::new();
    let node = pki.node(&[
        "--first-answer-timeout",
        "0.5",
        "--metrics-bind",
        "127.0.0.1:0",
    ]);
    let metrics = node.metrics_addr();
    let failures = "syncman_handshake_failures_total";

    let mut plain = TcpStream::connect(node.tls_addr()).await.unwrap();
    plain
        .write_all(b"\x00\x00\x00\x13#CHALLENGE#{sha256}")
        .await
        .unwrap();
    read_until_closed(&mut plain).await;
    wait_for_metric(metrics, failures, &[("reason", "tls")], 1.0).await;

    let _silent = TcpStream::connect(node.tls_addr()).await.unwrap();
    wait_for_metric(metrics, "syncman_connections_handshaking", &[], 1.0).await;
    wait_for_metric(metrics, failures, &[("reason", "timeout")], 1.0).await;

    let m = connect_tls(node.tls_addr(), node.authkey(), pki.trust())
        .await
        .expect("a TLS client");
    m.ping().await.unwrap();
    let s = scrape(metrics).await;
    assert_eq!(s.value("syncman_sessions", &[("dialect", "native")]), 1.0);
    assert_eq!(s.value("syncman_connections_handshaking", &[]), 0.0);
    for (reason, n) in [
        ("tls", 1.0),
        ("timeout", 1.0),
        ("wrong_key", 0.0),
        ("other", 0.0),
    ] {
        assert_eq!(s.value(failures, &[("reason", reason)]), n, "{reason}");
    }
}
