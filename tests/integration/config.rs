//! `syncman serve --config FILE`, run as a real process: the file's settings are honoured,
//! flags override them, and a file with an unknown key or a bad value stops the node with
//! a message that names the key and the file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use syncman_client::{ErrorKind, Manager};
use syncman_tests::python::Py;
use syncman_tests::{random_key, TestNode};

use super::cli::{stderr, syncman};

/// Files in a folder of their own under the temp dir, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("syncman-config-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch folder");
        Scratch(dir)
    }

    /// Writes `name` readable by this user only, and returns its path.
    fn write(&self, name: &str, contents: &[u8]) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write scratch file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .expect("chmod scratch file");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

/// A CPython client that registered `get_jobs` without a callable, as CPython's docs
/// write it, and puts 42 on the queue it answers with.
const PUT_THROUGH_TYPEID: &str = r#"
import sys
from multiprocessing.managers import BaseManager
class M(BaseManager):
    pass
M.register('get_jobs')
m = M(address=(sys.argv[1], int(sys.argv[2])), authkey=bytes.fromhex(sys.argv[3]))
m.connect()
m.get_jobs().put(42)
print("OK")
"#;

#[tokio::test]
async fn a_config_file_sets_the_bind_the_key_file_a_limit_and_a_typeid() {
    let scratch = Scratch::new();
    let file_key = random_key();
    let key_path = scratch.write("authkey", &file_key);
    let config = scratch.write(
        "syncman.toml",
        format!(
            "bind = \"127.0.0.1:0\"\n\
             authkey_file = \"{}\"\n\
             max_bytes = \"2M\"\n\
             log_format = \"json\"\n\
             [typeids]\n\
             get_jobs = \"Queue:jobs\"\n",
            path_str(&key_path)
        )
        .as_bytes(),
    );
    // The environment's key loses to the file's authkey_file, as a flag's would.
    let node = TestNode::serve(&["--config", path_str(&config)], b"env-key".to_vec());
    assert_eq!(node.addr().ip().to_string(), "127.0.0.1");
    let refused = Manager::connect(node.addr(), b"env-key").await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.to_string().contains("authkey")),
        "{refused:?}"
    );
    let m = Manager::connect(node.addr(), &file_key)
        .await
        .expect("the key file named in the config is the node's key");

    let status = m.status().await.unwrap();
    assert_eq!(status.max_bytes, Some(2 << 20));
    let first = node.log();
    let first = first.lines().next().unwrap_or_default();
    assert!(
        serde_json::from_str::<serde_json::Value>(first).is_ok(),
        "log_format = \"json\" in the file: {first:?}"
    );

    let py = syncman_tests::cpython::run_against(
        Py::V311,
        node.addr(),
        &file_key,
        &["-c", PUT_THROUGH_TYPEID],
        Duration::from_secs(60),
    )
    .await;
    py.assert_ok();
    let jobs = m.queue::<i64>("jobs").await.unwrap();
    assert_eq!(
        jobs.get_timeout(Duration::from_secs(5)).await.unwrap(),
        Some(42),
        "the file's [typeids] entry served the named queue"
    );
}

#[tokio::test]
async fn flags_override_the_config_file() {
    let scratch = Scratch::new();
    let config = scratch.write(
        "syncman.toml",
        b"bind = \"127.0.0.2:0\"\nmax_bytes = \"1M\"\nmax_objects = 3\n",
    );
    let node = TestNode::serve(
        &[
            "--config",
            path_str(&config),
            "--bind",
            "127.0.0.1:0",
            "--max-bytes",
            "3M",
        ],
        random_key(),
    );
    assert_eq!(node.addr().ip().to_string(), "127.0.0.1", "--bind wins");
    let m = node.manager().await;
    assert_eq!(m.status().await.unwrap().max_bytes, Some(3 << 20));
    // The file's max_objects still holds: a fourth object is refused.
    for i in 0..3 {
        m.dict::<i64, i64>(&format!("d{i}")).await.unwrap();
    }
    let fourth = m.dict::<i64, i64>("d3").await;
    assert!(
        fourth
            .as_ref()
            .is_err_and(|e| e.kind() == Some(&ErrorKind::Other("MemoryError".into()))),
        "{fourth:?}"
    );
}

#[tokio::test]
async fn a_bad_config_file_stops_serve_and_names_the_key_and_the_file() {
    let scratch = Scratch::new();
    for (contents, must_say) in [
        (
            "bind = \"127.0.0.1:0\"\nmax_conections = 5\n",
            "max_conections",
        ),
        ("bind = \"127.0.0.1:0\"\nmax_bytes = \"12X\"\n", "max_bytes"),
        (
            "bind = \"127.0.0.1:0\"\nmax_parked = \"many\"\n",
            "max_parked",
        ),
        (
            "bind = \"127.0.0.1:0\"\n[typeids]\nget_pool = \"Pool:p\"\n",
            "not a type the node serves",
        ),
    ] {
        let config = scratch.write("bad.toml", contents.as_bytes());
        let out = syncman(&["serve", "--config", path_str(&config)], Some(b"k")).await;
        let err = stderr(&out);
        assert!(!out.status.success(), "{contents:?} was accepted");
        assert!(
            err.contains(must_say) && err.contains(path_str(&config)),
            "{contents:?}: {err}"
        );
    }
    // The key itself is refused, and not repeated into the log.
    let config = scratch.write("inline-key.toml", b"authkey = \"hunter2-secret\"\n");
    let out = syncman(&["serve", "--config", path_str(&config)], Some(b"k")).await;
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("authkey_file") && !err.contains("hunter2"),
        "{err}"
    );
    // A file that is not there.
    let missing = scratch.0.join("missing.toml");
    let out = syncman(&["serve", "--config", path_str(&missing)], Some(b"k")).await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!("cannot read config file {}", path_str(&missing))),
        "{}",
        stderr(&out)
    );
}
