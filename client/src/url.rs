//! Servers and settings from strings: the address forms an [`Endpoint`] is parsed from, and
//! the `memcache://` / `memcaches://` / `unix://` URLs with query options that
//! [`Builder::url`](crate::Builder::url) applies. [`ParseError`] says what was wrong.

use crate::endpoint::Endpoint;
use mcache_proto::{AddrError, ServerSpec};
use std::path::PathBuf;
use std::time::Duration;

/// Why a string is not a server address or client URL: each variant carries the whole
/// offending input and what is wrong with it.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// No host before the port (`":11211"`, `"memcache://"`, `"memcache://:1"`).
    #[error("{input:?}: no host")]
    EmptyHost {
        /// The string as given.
        input: String,
    },
    /// The port is not a number from 1 to 65535.
    #[error("{input:?}: port {port:?} is not a number from 1 to 65535")]
    BadPort {
        /// The string as given.
        input: String,
        /// The text after the host's `:`.
        port: String,
    },
    /// A unix socket without a path (`"unix:"`, `"unix://"`).
    #[error("{input:?}: no socket path")]
    EmptyPath {
        /// The string as given.
        input: String,
    },
    /// A `scheme://` other than `memcache`, `memcaches` and `unix`.
    #[error("{input:?}: unknown scheme {scheme:?} (memcache://, memcaches:// or unix://)")]
    UnknownScheme {
        /// The string as given.
        input: String,
        /// What came before `://`.
        scheme: String,
    },
    /// A query option this client does not know.
    #[error("{input:?}: unknown option {name:?} (known: {})", OPTIONS.join(", "))]
    UnknownOption {
        /// The string as given.
        input: String,
        /// The option's name.
        name: String,
    },
    /// A known query option with a value it cannot take.
    #[error("{input:?}: option {name}={value:?}: {reason}")]
    BadOption {
        /// The string as given.
        input: String,
        /// The option's name.
        name: String,
        /// Its value, percent-decoded.
        value: String,
        /// What the option takes.
        reason: String,
    },
    /// `memcaches://` in a build without TLS.
    #[error(
        "{input:?}: memcaches:// needs TLS: enable the `tls` feature (of mcache-tokio, \
         mcache-async-std or mcache-client)"
    )]
    TlsDisabled {
        /// The string as given.
        input: String,
    },
    /// `memcaches://` with no roots to verify the server's certificate against.
    #[error(
        "{input:?}: memcaches:// needs trusted roots: enable the `webpki-roots` or \
         `native-roots` feature, or call Builder::tls (with your roots) before Builder::url"
    )]
    NoTlsRoots {
        /// The string as given.
        input: String,
    },
    /// The roots for `memcaches://` could not be loaded (`native-roots` on a machine
    /// without usable root certificates).
    #[error("{input:?}: loading TLS roots: {reason}")]
    TlsRoots {
        /// The string as given.
        input: String,
        /// Why loading failed.
        reason: String,
    },
    /// A URL part an [`Endpoint`] cannot hold (TLS, options, credentials, several hosts):
    /// such URLs configure a client, through [`Builder::url`](crate::Builder::url).
    #[error("{input:?}: {reason}; a URL with it configures a client: use Builder::url")]
    NotAnEndpoint {
        /// The string as given.
        input: String,
        /// What the endpoint cannot hold.
        reason: String,
    },
    /// Any other malformed input (an unclosed `[`, a path after a host, a bad `%` escape).
    #[error("{input:?}: {reason}")]
    Malformed {
        /// The string as given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl From<ParseError> for mcache_proto::Error {
    /// [`Error::Config`](mcache_proto::Error::Config) with the parse error's message, so `?`
    /// works in functions returning the client's error.
    fn from(e: ParseError) -> Self {
        mcache_proto::Error::Config(e.to_string())
    }
}

/// The query options [`Builder::url`](crate::Builder::url) knows.
pub(crate) const OPTIONS: &[&str] = &[
    "timeout",
    "connect_timeout",
    "read_timeout",
    "connections",
    "max_in_flight",
    "max_value_len",
    "max_reply_len",
    "backoff_min",
    "backoff_max",
    "server_name",
];

/// The settings a URL's query sets (`None`: not given, the builder's stays).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Options {
    /// `timeout`: the request timeout; `Some(None)` for `none`.
    pub(crate) request_timeout: Option<Option<Duration>>,
    pub(crate) connect_timeout: Option<Duration>,
    /// `Some(None)` for `none`.
    pub(crate) read_timeout: Option<Option<Duration>>,
    pub(crate) connections: Option<usize>,
    pub(crate) max_in_flight: Option<usize>,
    pub(crate) max_value_len: Option<usize>,
    pub(crate) max_reply_len: Option<usize>,
    pub(crate) backoff_min: Option<Duration>,
    pub(crate) backoff_max: Option<Duration>,
    /// TLS only: the name to verify certificates against.
    pub(crate) server_name: Option<String>,
}

/// A URL or address as read: its servers, whether it asks for TLS, credentials, options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientUrl {
    pub(crate) endpoints: Vec<Endpoint>,
    pub(crate) tls: bool,
    pub(crate) auth: Option<(String, String)>,
    pub(crate) options: Options,
}

/// Reads any form: `memcache://[user:pass@]host[:port][,host[:port]…][/][?options]`,
/// `memcaches://…` (the same, with TLS), `unix:///path[?options]`, or a plain address
/// (`host[:port]`, `[ipv6][:port]`, `unix:/path`, `/path`; no options).
pub(crate) fn parse_url(input: &str) -> Result<ClientUrl, ParseError> {
    let Some((scheme, rest)) = input.split_once("://") else {
        return Ok(ClientUrl {
            endpoints: vec![parse_plain(input)?],
            tls: false,
            auth: None,
            options: Options::default(),
        });
    };
    if rest.contains('#') {
        return Err(malformed(input, "a URL fragment ('#') means nothing here"));
    }
    let (body, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (tls, endpoints, auth) = match scheme {
        "memcache" | "memcaches" => {
            let (authority, path) = body.split_once('/').unwrap_or((body, ""));
            if !path.is_empty() {
                return Err(malformed(
                    input,
                    &format!("a path ({:?}) after the host", format!("/{path}")),
                ));
            }
            let (auth, hosts) = match authority.rsplit_once('@') {
                Some((userinfo, hosts)) => {
                    let Some((user, pass)) = userinfo.split_once(':') else {
                        return Err(malformed(input, "credentials are user:password@"));
                    };
                    let user = decode(input, user)?;
                    if user.is_empty() {
                        return Err(malformed(input, "an empty user name"));
                    }
                    (Some((user, decode(input, pass)?)), hosts)
                }
                None => (None, authority),
            };
            let endpoints = hosts
                .split(',')
                .map(|host| tcp(input, host))
                .collect::<Result<Vec<_>, _>>()?;
            (scheme == "memcaches", endpoints, auth)
        }
        "unix" => {
            if body.is_empty() {
                return Err(ParseError::EmptyPath {
                    input: input.into(),
                });
            }
            if !body.starts_with('/') {
                return Err(malformed(
                    input,
                    "unix:// takes no host: three slashes, as in unix:///path/to/socket",
                ));
            }
            let path = decode(input, body)?;
            (false, vec![Endpoint::Unix(PathBuf::from(path))], None)
        }
        other => {
            return Err(ParseError::UnknownScheme {
                input: input.into(),
                scheme: other.into(),
            })
        }
    };
    let options = parse_options(input, query)?;
    if options.server_name.is_some() && !tls {
        return Err(bad_option(
            input,
            "server_name",
            options.server_name.as_deref().unwrap_or_default(),
            "only with memcaches:// (it names the certificate to verify)",
        ));
    }
    Ok(ClientUrl {
        endpoints,
        tls,
        auth,
        options,
    })
}

/// A plain address: `unix:/path`, `/path`, or a TCP `host[:port]` (normalized to
/// `host:port`, IPv6 in brackets).
pub(crate) fn parse_plain(input: &str) -> Result<Endpoint, ParseError> {
    if let Some(path) = input.strip_prefix("unix:") {
        if path.is_empty() {
            return Err(ParseError::EmptyPath {
                input: input.into(),
            });
        }
        return Ok(Endpoint::Unix(PathBuf::from(path)));
    }
    if input.starts_with('/') {
        return Ok(Endpoint::Unix(PathBuf::from(input)));
    }
    if input.contains('?') {
        return Err(malformed(
            input,
            "query options need a URL: memcache://host:port?option=value",
        ));
    }
    tcp(input, input)
}

/// `addr` (part of `input`) as a TCP endpoint `host:port`.
fn tcp(input: &str, addr: &str) -> Result<Endpoint, ParseError> {
    if addr.starts_with('/') || addr.is_empty() {
        return Err(ParseError::EmptyHost {
            input: input.into(),
        });
    }
    let spec = ServerSpec::parse(addr).map_err(|e| addr_error(input, e))?;
    Ok(Endpoint::Tcp(if spec.host.contains(':') {
        format!("[{}]:{}", spec.host, spec.port)
    } else {
        format!("{}:{}", spec.host, spec.port)
    }))
}

/// proto's address error, with the whole input.
fn addr_error(input: &str, e: AddrError) -> ParseError {
    let input = input.to_string();
    match e {
        AddrError::EmptyHost { .. } => ParseError::EmptyHost { input },
        AddrError::BadPort { port, .. } => ParseError::BadPort { input, port },
        AddrError::Malformed { reason, .. } => ParseError::Malformed { input, reason },
        other => ParseError::Malformed {
            input,
            reason: other.to_string(),
        },
    }
}

fn malformed(input: &str, reason: &str) -> ParseError {
    ParseError::Malformed {
        input: input.into(),
        reason: reason.into(),
    }
}

fn bad_option(input: &str, name: &str, value: &str, reason: &str) -> ParseError {
    ParseError::BadOption {
        input: input.into(),
        name: name.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

/// `name=value&…`, values percent-decoded; each option at most once.
fn parse_options(input: &str, query: &str) -> Result<Options, ParseError> {
    let mut o = Options::default();
    let mut seen: Vec<String> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode(input, name)?;
        let value = decode(input, value)?;
        if !OPTIONS.contains(&name.as_str()) {
            return Err(ParseError::UnknownOption {
                input: input.into(),
                name,
            });
        }
        if seen.contains(&name) {
            return Err(bad_option(input, &name, &value, "given more than once"));
        }
        let bad = |reason: &str| bad_option(input, &name, &value, reason);
        const DURATION: &str = "expects a duration: 500ms, 2s, 1m (a bare number is milliseconds)";
        const MAYBE_NONE: &str =
            "expects a duration (500ms, 2s, 1m; a bare number is milliseconds) or `none`";
        const COUNT: &str = "expects a whole number of at least 1";
        const SIZE: &str = "expects a size in bytes (a number; k or m suffix for KiB, MiB)";
        match name.as_str() {
            "timeout" => {
                o.request_timeout = Some(optional_duration(&value).ok_or_else(|| bad(MAYBE_NONE))?)
            }
            "read_timeout" => {
                o.read_timeout = Some(optional_duration(&value).ok_or_else(|| bad(MAYBE_NONE))?)
            }
            "connect_timeout" => {
                o.connect_timeout = Some(duration(&value).ok_or_else(|| bad(DURATION))?)
            }
            "backoff_min" => o.backoff_min = Some(duration(&value).ok_or_else(|| bad(DURATION))?),
            "backoff_max" => o.backoff_max = Some(duration(&value).ok_or_else(|| bad(DURATION))?),
            "connections" => o.connections = Some(count(&value).ok_or_else(|| bad(COUNT))?),
            "max_in_flight" => o.max_in_flight = Some(count(&value).ok_or_else(|| bad(COUNT))?),
            "max_value_len" => o.max_value_len = Some(size(&value).ok_or_else(|| bad(SIZE))?),
            "max_reply_len" => o.max_reply_len = Some(size(&value).ok_or_else(|| bad(SIZE))?),
            "server_name" if !value.is_empty() => o.server_name = Some(value.clone()),
            "server_name" => return Err(bad("expects a host name")),
            _ => {
                return Err(ParseError::UnknownOption {
                    input: input.into(),
                    name,
                })
            }
        }
        seen.push(name);
    }
    Ok(o)
}

/// Digits only (no sign, no spaces).
fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `500ms`, `2s`, `1m`, `250us`; a bare number is milliseconds.
pub(crate) fn duration(s: &str) -> Option<Duration> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n = number(n)?;
    match unit {
        "" | "ms" => Some(Duration::from_millis(n)),
        "us" => Some(Duration::from_micros(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => Some(Duration::from_secs(n.checked_mul(60)?)),
        _ => None,
    }
}

/// A duration, or `none` for no limit.
fn optional_duration(s: &str) -> Option<Option<Duration>> {
    if s == "none" {
        Some(None)
    } else {
        duration(s).map(Some)
    }
}

/// At least 1.
fn count(s: &str) -> Option<usize> {
    number(s)
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n >= 1)
}

/// Bytes, with an optional `k`/`m` suffix (KiB, MiB), as memcached's `-I`.
fn size(s: &str) -> Option<usize> {
    let (n, mult) = match s.strip_suffix(['k', 'K']) {
        Some(n) => (n, 1024),
        None => match s.strip_suffix(['m', 'M']) {
            Some(n) => (n, 1024 * 1024),
            None => (s, 1),
        },
    };
    usize::try_from(number(n)?.checked_mul(mult)?).ok()
}

/// Percent-decoding (`%2F` → `/`); the result must be UTF-8.
fn decode(input: &str, s: &str) -> Result<String, ParseError> {
    if !s.contains('%') {
        return Ok(s.to_string());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            let Some(b) = hex else {
                return Err(malformed(input, "'%' not followed by two hex digits"));
            };
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| malformed(input, "percent-encoding that is not UTF-8"))
}

/// What a client configured from a URL uses: its settings, request timeout and connections
/// per server (the blocking client's share of [`Builder::url`](crate::Builder::url)).
#[cfg(feature = "blocking")]
pub(crate) struct UrlTarget<'a> {
    pub(crate) settings: &'a mut crate::settings::Settings,
    pub(crate) request_timeout: &'a mut Option<Duration>,
    pub(crate) connections: &'a mut usize,
}

#[cfg(feature = "blocking")]
impl ClientUrl {
    /// Applies the URL's TLS, credentials and options to `to` as [`Builder::url`] documents
    /// them, and returns its servers. `input`: the URL as given, for errors.
    ///
    /// [`Builder::url`]: crate::Builder::url
    pub(crate) fn apply(self, input: &str, to: UrlTarget<'_>) -> Result<Vec<Endpoint>, ParseError> {
        let UrlTarget {
            settings: s,
            request_timeout,
            connections,
        } = to;
        if self.tls {
            #[cfg(not(feature = "tls"))]
            return Err(ParseError::TlsDisabled {
                input: input.into(),
            });
            #[cfg(feature = "tls")]
            {
                let tls = match s.tls.take() {
                    Some(given) => given,
                    None => crate::tls::url_roots(input)?,
                };
                let tls = match self.options.server_name.clone() {
                    Some(name) => tls.server_name(name),
                    None => tls,
                };
                s.tls = Some(tls);
            }
        }
        let o = self.options;
        *request_timeout = o.request_timeout.unwrap_or(*request_timeout);
        *connections = o.connections.map_or(*connections, |n| n.max(1));
        s.connect_timeout = o.connect_timeout.unwrap_or(s.connect_timeout);
        let limits = &mut s.connection.limits;
        limits.max_value_len = o.max_value_len.unwrap_or(limits.max_value_len);
        limits.max_reply_len = o.max_reply_len.unwrap_or(limits.max_reply_len);
        s.connection.read_timeout = o.read_timeout.unwrap_or(s.connection.read_timeout);
        s.max_in_flight = o.max_in_flight.map_or(s.max_in_flight, |n| n.max(1));
        s.backoff_min = o.backoff_min.unwrap_or(s.backoff_min);
        s.backoff_max = o.backoff_max.unwrap_or(s.backoff_max).max(s.backoff_min);
        if self.auth.is_some() {
            s.auth = self.auth;
        }
        Ok(self.endpoints)
    }
}

#[cfg(test)]
mod tests;
