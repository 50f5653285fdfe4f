//! [`Endpoint`]: where a server is (`host:port` over TCP, or a unix socket path) and the name
//! a pool places its keys by.

use mcache_proto::ServerSpec;
use std::fmt;
use std::path::PathBuf;

/// A memcached server address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// `host:port` over TCP.
    Tcp(String),
    /// A unix socket path (memcached's `-s`).
    Unix(PathBuf),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp(a) => f.write_str(a),
            Endpoint::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

impl Endpoint {
    /// How a pool's placement names this server: `host:port` as written (a bare host gets
    /// port 11211), or the socket path with port 0. Other clients sharing the pool must name
    /// it the same way ([`Builder::server_as`](crate::Builder::server_as) sets another name).
    pub fn spec(&self) -> ServerSpec {
        match self {
            Endpoint::Tcp(addr) => ServerSpec::parse(addr),
            Endpoint::Unix(path) => ServerSpec::new(path.to_string_lossy(), 0),
        }
    }

    /// The host of a TCP endpoint (IPv6 without its brackets); `None` for a unix socket.
    pub fn host(&self) -> Option<&str> {
        let Endpoint::Tcp(addr) = self else {
            return None;
        };
        if let Some(rest) = addr.strip_prefix('[') {
            return Some(rest.split(']').next().unwrap_or(rest));
        }
        Some(addr.rsplit_once(':').map_or(addr.as_str(), |(h, _)| h))
    }
}

impl From<&str> for Endpoint {
    /// `unix:/path` or a path starting with `/` is a unix socket; anything else is `host:port`.
    fn from(s: &str) -> Self {
        if let Some(p) = s.strip_prefix("unix:") {
            Endpoint::Unix(PathBuf::from(p))
        } else if s.starts_with('/') {
            Endpoint::Unix(PathBuf::from(s))
        } else {
            Endpoint::Tcp(s.to_string())
        }
    }
}

impl From<String> for Endpoint {
    fn from(s: String) -> Self {
        Endpoint::from(s.as_str())
    }
}

impl From<&String> for Endpoint {
    fn from(s: &String) -> Self {
        Endpoint::from(s.as_str())
    }
}

impl From<std::net::SocketAddr> for Endpoint {
    fn from(a: std::net::SocketAddr) -> Self {
        Endpoint::Tcp(a.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tcp_and_unix_forms() {
        assert_eq!(Endpoint::from("h:1"), Endpoint::Tcp("h:1".into()));
        assert_eq!(Endpoint::from("unix:/s"), Endpoint::Unix("/s".into()));
        assert_eq!(Endpoint::from("/s"), Endpoint::Unix("/s".into()));
        assert_eq!(Endpoint::from("[::1]:11211").host(), Some("::1"));
        assert_eq!(Endpoint::from("example.org:1").host(), Some("example.org"));
        assert_eq!(Endpoint::from("/s").host(), None);
    }
}
