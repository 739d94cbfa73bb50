//! A node's address: whatever tokio resolves, plus the host name a TLS connection checks
//! the node's certificate against by default (the part before the port).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use tokio::net::ToSocketAddrs;

/// An address to connect to: implemented for every type tokio's [`ToSocketAddrs`] is
/// (`"host:port"`, `SocketAddr`, `(host, port)`, ...).
pub trait NodeAddr: ToSocketAddrs {
    /// The host part: a name or an IP address, without the port or IPv6 brackets.
    fn host(&self) -> Option<String>;
}

impl NodeAddr for str {
    fn host(&self) -> Option<String> {
        let (host, _port) = self.rsplit_once(':')?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        (!host.is_empty()).then(|| host.to_owned())
    }
}

impl NodeAddr for String {
    fn host(&self) -> Option<String> {
        self.as_str().host()
    }
}

impl<T: NodeAddr + ?Sized> NodeAddr for &T {
    fn host(&self) -> Option<String> {
        (**self).host()
    }
}

impl NodeAddr for (&str, u16) {
    fn host(&self) -> Option<String> {
        Some(self.0.to_owned())
    }
}

impl NodeAddr for (String, u16) {
    fn host(&self) -> Option<String> {
        Some(self.0.clone())
    }
}

impl NodeAddr for &[SocketAddr] {
    fn host(&self) -> Option<String> {
        self.first().map(|a| a.ip().to_string())
    }
}

macro_rules! ip_host {
    ($($t:ty => |$a:ident| $ip:expr),* $(,)?) => {$(
        impl NodeAddr for $t {
            fn host(&self) -> Option<String> {
                let $a = self;
                Some($ip.to_string())
            }
        }
    )*};
}

ip_host! {
    SocketAddr => |a| a.ip(),
    SocketAddrV4 => |a| a.ip(),
    SocketAddrV6 => |a| a.ip(),
    (IpAddr, u16) => |a| a.0,
    (Ipv4Addr, u16) => |a| a.0,
    (Ipv6Addr, u16) => |a| a.0,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_is_the_part_before_the_port() {
        assert_eq!("node.example:50001".host().as_deref(), Some("node.example"));
        assert_eq!("127.0.0.1:1".host().as_deref(), Some("127.0.0.1"));
        assert_eq!("[::1]:50001".host().as_deref(), Some("::1"));
        assert_eq!(String::from("a:1").host().as_deref(), Some("a"));
        assert_eq!(("node.example", 1).host().as_deref(), Some("node.example"));
        let addr: SocketAddr = "[::1]:7".parse().unwrap();
        assert_eq!(addr.host().as_deref(), Some("::1"));
        // Through a reference and a slice, as `connect(&addr, ..)` passes them.
        fn host_of<A: NodeAddr>(a: A) -> Option<String> {
            a.host()
        }
        let by_ref = &addr;
        assert_eq!(host_of(by_ref).as_deref(), Some("::1"));
        assert_eq!(host_of(&[addr][..]).as_deref(), Some("::1"));
        assert_eq!("no-port".host(), None);
        assert_eq!(":50001".host(), None);
    }
}
