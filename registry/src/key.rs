//! Function-identity keys: the canonical encoding of arguments ([`Args`]), the identity of a
//! memoized function ([`Function`]) and the memcached keys built from them.
//!
//! This module owns the key format (documented in the crate docs, pinned by golden tests). It
//! must never use `std::hash`, `Debug` output or addresses: a key is the same in every process,
//! build, platform and Rust version, and two different calls never share one.

use mcache_proto::Key;
use serde::ser::{self, Serialize};

pub use crate::canonical::encode_value;
use sha2::{Digest, Sha256};
use std::fmt;
use std::time::Duration;

/// memcached's key limit, in bytes.
const MAX_KEY: usize = mcache_proto::MAX_KEY_LEN;

/// Longest namespace, so that a hashed key always keeps a readable prefix of its path.
pub const MAX_NAMESPACE_LEN: usize = 64;

/// Why arguments could not be encoded into a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("argument cannot be part of a cache key: {0}")]
pub struct ArgsError(pub(crate) String);

impl ser::Error for ArgsError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ArgsError(msg.to_string())
    }
}

/// The canonical encoding of a call's keyed arguments.
///
/// Built with [`Args::push`] (what `#[memoize]` generates), one argument at a time, in the
/// order of the function's parameters. The encoding is type-tagged and length-prefixed (see the
/// crate docs), so `("a b")` and `("ab")`, or `(1, 23)` and `(12, 3)`, never meet.
///
/// ```
/// use mcache_registry::Args;
/// let mut args = Args::new();
/// args.push("bob")?;
/// args.push(&42u32)?;
/// assert_eq!(args.as_bytes(), b"s3:bob:i42");
/// # Ok::<(), mcache_registry::ArgsError>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Args {
    raw: Vec<u8>,
    count: usize,
}

impl Args {
    /// No arguments.
    pub fn new() -> Args {
        Args::default()
    }

    /// Appends one argument.
    pub fn push<T: Serialize + ?Sized>(&mut self, arg: &T) -> Result<(), ArgsError> {
        if self.count > 0 {
            self.raw.push(b':');
        }
        crate::canonical::encode_into(arg, &mut self.raw)?;
        self.count += 1;
        Ok(())
    }

    /// Appends one argument, builder style.
    pub fn with<T: Serialize + ?Sized>(mut self, arg: &T) -> Result<Args, ArgsError> {
        self.push(arg)?;
        Ok(self)
    }

    /// The encoded arguments, `:`-separated, before escaping.
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }

    /// How many arguments were pushed.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no argument was pushed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

impl fmt::Debug for Args {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Args({})", self.raw.escape_ascii())
    }
}

/// The identity of a memoized function and its settings, as `#[memoize]` writes them.
///
/// ```
/// use mcache_registry::Function;
/// use std::time::Duration;
/// const GET_EMAIL: Function = Function::new("app::db::get_email")
///     .with_version(2)
///     .with_ttl(Duration::from_secs(60));
/// assert_eq!(GET_EMAIL.path(), "app::db::get_email");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Function {
    path: &'static str,
    version: u32,
    ttl: Option<Duration>,
    negative_ttl: Option<Duration>,
}

impl Function {
    /// A function known by its full path (`module_path!()`, the `impl`'s type for methods, and
    /// the name), version 1, the cache's default time to live.
    pub const fn new(path: &'static str) -> Function {
        Function {
            path,
            version: 1,
            ttl: None,
            negative_ttl: None,
        }
    }

    /// The version: bump it when the function's meaning or result type changes.
    pub const fn with_version(mut self, version: u32) -> Function {
        self.version = version;
        self
    }

    /// How long results live (instead of the cache's default; zero means no expiry).
    pub const fn with_ttl(mut self, ttl: Duration) -> Function {
        self.ttl = Some(ttl);
        self
    }

    /// How long negative results (`None`, `Err`, when cached at all) live.
    pub const fn with_negative_ttl(mut self, ttl: Duration) -> Function {
        self.negative_ttl = Some(ttl);
        self
    }

    /// The function's path.
    pub const fn path(&self) -> &'static str {
        self.path
    }

    /// Its version.
    pub const fn version(&self) -> u32 {
        self.version
    }

    /// Its time to live, if it has its own.
    pub const fn ttl(&self) -> Option<Duration> {
        self.ttl
    }

    /// Its time to live for negative results, if it has its own.
    pub const fn negative_ttl(&self) -> Option<Duration> {
        self.negative_ttl
    }
}

/// Whether `ns` can be a namespace: 1 to 64 bytes of `A-Z a-z 0-9 _ . -`.
pub(crate) fn valid_namespace(ns: &str) -> bool {
    !ns.is_empty()
        && ns.len() <= MAX_NAMESPACE_LEN
        && ns
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Appends `raw` with every byte outside `0x21..=0x7E`, and `%`, written `%XX`.
fn escape_into(out: &mut Vec<u8>, raw: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in raw {
        if (0x21..=0x7e).contains(&b) && b != b'%' {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
}

/// SHA-256 of `bytes`, base64url without padding (43 characters).
fn digest(bytes: &[u8]) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    URL_SAFE_NO_PAD.encode(Sha256::digest(bytes))
}

/// At most `max` bytes of the escaped `path`, cut before any partial `%XX` escape and without
/// trailing `:` (so the prefix never ends inside a `::`).
fn path_prefix(path: &[u8], max: usize) -> &[u8] {
    if path.len() <= max {
        return path;
    }
    let mut end = max;
    // A '%' in the last two kept bytes starts an escape that would be cut.
    if let Some(i) = path[end.saturating_sub(2)..end]
        .iter()
        .position(|&b| b == b'%')
    {
        end = end.saturating_sub(2) + i;
    }
    while end > 0 && path[end - 1] == b':' {
        end -= 1;
    }
    &path[..end]
}

fn text_key(bytes: Vec<u8>) -> Key {
    debug_assert!(bytes.len() <= MAX_KEY);
    Key::from_bytes(bytes.into())
        .expect("escaped keys hold only 0x21..=0x7E and callers keep them within 250 bytes")
}

/// The key of one call: `<ns>:<path>:v<version>[:<arg>]*`, escaped; hashed when longer than
/// 250 bytes.
pub(crate) fn item_key(namespace: &str, function: &Function, args: &Args) -> Key {
    let mut raw = Vec::with_capacity(namespace.len() + function.path.len() + args.raw.len() + 16);
    raw.extend_from_slice(namespace.as_bytes());
    raw.push(b':');
    escape_into(&mut raw, function.path.as_bytes());
    let path_end = raw.len();
    raw.extend_from_slice(b":v");
    raw.extend_from_slice(itoa(u64::from(function.version)).as_bytes());
    let version_end = raw.len();
    if args.count > 0 {
        raw.push(b':');
        escape_into(&mut raw, &args.raw);
    }
    if raw.len() <= MAX_KEY {
        return text_key(raw);
    }
    let hash = digest(&raw);
    let version = &raw[path_end..version_end]; // ":v<n>"
    let fixed = namespace.len() + 1 + version.len() + 2 + hash.len();
    let path = &raw[namespace.len() + 1..path_end];
    let prefix = path_prefix(path, MAX_KEY - fixed);
    let mut out = Vec::with_capacity(MAX_KEY);
    out.extend_from_slice(namespace.as_bytes());
    out.push(b':');
    out.extend_from_slice(prefix);
    out.extend_from_slice(version);
    out.extend_from_slice(b":!");
    out.extend_from_slice(hash.as_bytes());
    text_key(out)
}

/// The namespace's generation counter: `<ns>:!g`.
pub(crate) fn namespace_generation_key(namespace: &str) -> Key {
    let mut raw = Vec::with_capacity(namespace.len() + 3);
    raw.extend_from_slice(namespace.as_bytes());
    raw.extend_from_slice(b":!g");
    text_key(raw)
}

/// A function's generation counter: `<ns>:<path>:!g`, or `<ns>:<prefix>:!g<hash>` when long.
pub(crate) fn function_generation_key(namespace: &str, function: &Function) -> Key {
    let mut path = Vec::with_capacity(function.path.len());
    escape_into(&mut path, function.path.as_bytes());
    let mut raw = Vec::with_capacity(MAX_KEY);
    raw.extend_from_slice(namespace.as_bytes());
    raw.push(b':');
    if namespace.len() + 1 + path.len() + 3 <= MAX_KEY {
        raw.extend_from_slice(&path);
        raw.extend_from_slice(b":!g");
    } else {
        let hash = digest(&path);
        let prefix = path_prefix(&path, MAX_KEY - namespace.len() - 1 - 3 - hash.len());
        raw.extend_from_slice(prefix);
        raw.extend_from_slice(b":!g");
        raw.extend_from_slice(hash.as_bytes());
    }
    text_key(raw)
}

fn itoa(n: u64) -> String {
    n.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;

    #[derive(Serialize)]
    struct User {
        id: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        nick: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        mail: Option<String>,
    }

    fn key(args: &Args) -> String {
        item_key("ns", &Function::new("app::db::get_email"), args).to_string()
    }

    #[test]
    fn no_shared_keys() {
        let pairs: Vec<(Args, Args)> = vec![
            (
                Args::new().with("a b").unwrap(),
                Args::new().with("ab").unwrap(),
            ),
            (
                Args::new().with(&1u8).unwrap().with(&23u8).unwrap(),
                Args::new().with(&12u8).unwrap().with(&3u8).unwrap(),
            ),
            (
                Args::new().with("a:i1").unwrap(),
                Args::new().with("a").unwrap().with(&1u8).unwrap(),
            ),
            (
                Args::new().with(&Some("")).unwrap(),
                Args::new().with(&None::<&str>).unwrap(),
            ),
            (
                Args::new()
                    .with(&User {
                        id: 1,
                        nick: Some("x".into()),
                        mail: None,
                    })
                    .unwrap(),
                Args::new()
                    .with(&User {
                        id: 1,
                        nick: None,
                        mail: Some("x".into()),
                    })
                    .unwrap(),
            ),
            (
                Args::new().with("%41").unwrap(),
                Args::new().with("A").unwrap(),
            ),
            (Args::new(), Args::new().with(&()).unwrap()),
        ];
        for (a, b) in pairs {
            assert_ne!(key(&a), key(&b), "{a:?} vs {b:?}");
        }
        let f = Function::new("a::f");
        let g = Function::new("b::f");
        assert_ne!(
            item_key("ns", &f, &Args::new()),
            item_key("ns", &g, &Args::new())
        );
        assert_ne!(
            item_key("ns", &f, &Args::new()),
            item_key("ns", &f.with_version(2), &Args::new())
        );
    }

    #[test]
    fn readable_keys_are_escaped() {
        let k = key(&Args::new().with("a b\n%").unwrap());
        assert_eq!(k, "ns:app::db::get_email:v1:s5:a%20b%0A%25");
        assert!(Key::new(k.as_bytes()).is_ok());
    }

    #[test]
    fn long_keys_are_hashed_and_fit() {
        let long = "x".repeat(10_000);
        let a = key(&Args::new().with(&long).unwrap());
        let b = key(&Args::new().with(&format!("{long}x")).unwrap());
        assert!(a.len() <= 250, "{}", a.len());
        assert!(a.starts_with("ns:app::db::get_email:v1:!"), "{a}");
        assert_ne!(a, b);
        let path: &'static str = Box::leak(format!("app::{}::f", "m".repeat(400)).into_boxed_str());
        let f = Function::new(path);
        let k = item_key("n", &f, &Args::new()).to_string();
        assert!(
            k.len() <= 250 && k.starts_with("n:app::mmm") && k.contains(":v1:!"),
            "{k}"
        );
        let g = function_generation_key("n", &f).to_string();
        assert!(g.len() <= 250 && g.contains(":!g"), "{g}");
        let p = path_prefix(b"ab%20cd", 4);
        assert_eq!(p, b"ab");
        assert_eq!(path_prefix(b"a::b", 3), b"a");
    }

    #[test]
    fn generation_keys() {
        let f = Function::new("app::db::get_email");
        assert_eq!(namespace_generation_key("ns").to_string(), "ns:!g");
        assert_eq!(
            function_generation_key("ns", &f).to_string(),
            "ns:app::db::get_email:!g"
        );
    }

    #[test]
    fn namespaces() {
        assert!(valid_namespace("app-1.prod_x"));
        assert!(!valid_namespace(""));
        assert!(!valid_namespace("a:b"));
        assert!(!valid_namespace(&"a".repeat(65)));
    }
}
