//! Two hosts on one machine: network namespaces joined by a veth pair, for tests of what
//! crosses a network (cut links, vanished peers). Needs root and iproute2; every address
//! is inside namespaces this guard creates, and it deletes them on drop.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Namespaces `a` (10.231.N.1) and `b` (10.231.N.2) linked by a veth pair.
pub struct NetPair {
    pub a: String,
    pub b: String,
    subnet: u32,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("run ip (iproute2)");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl NetPair {
    pub fn new() -> NetPair {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{}{n}", std::process::id() % 100_000);
        let subnet = (std::process::id() % 200 + n) % 250 + 1;
        let pair = NetPair {
            a: format!("sm{tag}a"),
            b: format!("sm{tag}b"),
            subnet,
        };
        let (va, vb) = (format!("v{tag}a"), format!("v{tag}b"));
        ip(&["netns", "add", &pair.a]);
        ip(&["netns", "add", &pair.b]);
        ip(&[
            "-n", &pair.a, "link", "add", &va, "type", "veth", "peer", "name", &vb, "netns",
            &pair.b,
        ]);
        ip(&[
            "-n",
            &pair.a,
            "addr",
            "add",
            &format!("{}/24", pair.addr_a()),
            "dev",
            &va,
        ]);
        ip(&[
            "-n",
            &pair.b,
            "addr",
            "add",
            &format!("{}/24", pair.addr_b()),
            "dev",
            &vb,
        ]);
        for (ns, dev) in [(&pair.a, &va), (&pair.b, &vb)] {
            ip(&["-n", ns, "link", "set", "lo", "up"]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
        pair
    }

    pub fn addr_a(&self) -> String {
        format!("10.231.{}.1", self.subnet)
    }

    pub fn addr_b(&self) -> String {
        format!("10.231.{}.2", self.subnet)
    }

    /// `ip netns exec <ns> <program>`: a command that runs on that host.
    pub fn exec(&self, netns: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", netns]).arg(program);
        cmd
    }

    /// Cuts the link on `b`'s side: packets stop, nobody sees a FIN or RST.
    pub fn cut_b(&self) {
        let dev = self.b.replacen("sm", "v", 1);
        ip(&["-n", &self.b, "link", "set", &dev, "down"]);
    }
}

impl Default for NetPair {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for NetPair {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}
