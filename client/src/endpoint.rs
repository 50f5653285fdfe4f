//! [`Endpoint`]: where a server is (`host:port` over TCP, or a unix socket path) and the name
//! a pool places its keys by.

use crate::url::{parse_plain, parse_url, ParseError};
use mcache_proto::ring::DEFAULT_PORT;
use mcache_proto::ServerSpec;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// A memcached server address.
///
/// Parse one with [`str::parse`] ([`FromStr`], strict: a bad port is a [`ParseError`]) from
/// `host:port`, `[ipv6]:port`, a bare host (port 11211), `unix:/path`, an absolute path,
/// `memcache://host:port` or `unix:///path`. TLS (`memcaches://`), query options and
/// credentials configure a client rather than an address: see
/// [`Builder::url`](crate::Builder::url).
///
/// The `From<&str>` conversion (what [`Builder::server`](crate::Builder::server) and
/// `Client::connect` take) cannot fail: it parses the same way, and keeps a string it cannot
/// parse as written in [`Endpoint::Tcp`], which [`Builder::build`](crate::Builder::build)
/// then refuses with [`Error::Config`](mcache_proto::Error::Config) naming the parse error.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// `host:port` over TCP (as parsed: always with a port, IPv6 in brackets).
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
    ///
    /// Cannot fail for a parsed endpoint. An [`Endpoint::Tcp`] made by hand (or kept as
    /// written by `From<&str>`) that is not an address gets the whole string as its host and
    /// port 11211; [`Builder::build`](crate::Builder::build) refuses such an endpoint.
    pub fn spec(&self) -> ServerSpec {
        match self {
            Endpoint::Tcp(addr) => ServerSpec::parse(addr)
                .unwrap_or_else(|_| ServerSpec::new(addr.as_str(), DEFAULT_PORT)),
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

    /// Whether this endpoint can be connected to: an error for an [`Endpoint::Tcp`] whose
    /// string does not parse (a bad port, an empty host, a URL with options), or an empty
    /// socket path.
    pub fn validate(&self) -> Result<(), ParseError> {
        match self {
            Endpoint::Tcp(addr) => addr.parse::<Endpoint>().map(drop),
            Endpoint::Unix(path) if path.as_os_str().is_empty() => Err(ParseError::EmptyPath {
                input: String::new(),
            }),
            Endpoint::Unix(_) => Ok(()),
        }
    }
}

impl FromStr for Endpoint {
    type Err = ParseError;

    /// Strict parsing: see [`Endpoint`] for the forms.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if !s.contains("://") {
            return parse_plain(s);
        }
        let url = parse_url(s)?;
        let not = |reason: &str| {
            Err(ParseError::NotAnEndpoint {
                input: s.into(),
                reason: reason.into(),
            })
        };
        if url.tls {
            return not("memcaches:// asks for TLS, which is set on a client");
        }
        if url.auth.is_some() {
            return not("credentials are set on a client");
        }
        if url.options != Default::default() {
            return not("query options are set on a client");
        }
        match <[Endpoint; 1]>::try_from(url.endpoints) {
            Ok([endpoint]) => Ok(endpoint),
            Err(_) => not("several servers"),
        }
    }
}

impl From<&str> for Endpoint {
    /// `unix:/path`, `unix:///path` or a path starting with `/` is a unix socket; `host:port`
    /// or `memcache://host:port` is TCP. A string that does not parse is kept as written, and
    /// refused when the client is built (see [`Endpoint`]).
    fn from(s: &str) -> Self {
        s.parse().unwrap_or_else(|_| Endpoint::Tcp(s.to_string()))
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

    #[test]
    fn lenient_from_keeps_what_does_not_parse_and_validate_refuses_it() {
        let e = Endpoint::from("h:abc");
        assert_eq!(e, Endpoint::Tcp("h:abc".into()));
        assert_eq!(e.spec(), ServerSpec::new("h:abc", 11211));
        assert!(matches!(e.validate(), Err(ParseError::BadPort { .. })));
        assert_eq!(Endpoint::from("h:1").validate(), Ok(()));
        assert_eq!(Endpoint::from("/s").validate(), Ok(()));
        assert!(Endpoint::Unix(PathBuf::new()).validate().is_err());
        let url = Endpoint::from("memcache://h:1?timeout=1s");
        assert!(matches!(
            url.validate(),
            Err(ParseError::NotAnEndpoint { .. })
        ));
    }

    #[test]
    fn spec_of_parsed_endpoints() {
        let spec = |s: &str| s.parse::<Endpoint>().unwrap().spec();
        assert_eq!(spec("h:7"), ServerSpec::new("h", 7));
        assert_eq!(spec("h"), ServerSpec::new("h", 11211));
        assert_eq!(spec("memcache://h"), ServerSpec::new("h", 11211));
        assert_eq!(spec("[::1]:7"), ServerSpec::new("::1", 7));
        assert_eq!(spec("::1"), ServerSpec::new("::1", 11211));
        assert_eq!(
            spec("unix:///run/mc.sock"),
            ServerSpec::new("/run/mc.sock", 0)
        );
    }
}
