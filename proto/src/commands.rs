//! Every typed command, defined once as data: the [`Request`] it sends and how its reply
//! becomes the typed result.
//!
//! A definition such as [`get`], [`set`] or [`get_multi`] validates its arguments and returns a
//! [`Call`]: the request, and the function that turns the reply into the result (a miss into
//! `None`, `NOT_STORED` into `false`, a reply the command cannot have into
//! [`Error::UnexpectedResponse`]). Nothing here does IO or waits for anything. Running a call
//! is the job of a calling convention, and every convention is a thin layer over these
//! definitions, so each command is written once however it is called:
//!
//! - the async `Memcache` trait of mcache-client: one required method (`execute`), every
//!   operation a one-line method over the definition of the same name;
//! - a blocking client: [`Call::run`] with a function that sends a request and returns its
//!   reply;
//! - batches, proxies and tests: [`Call::request`] and the `finish` function directly.
//!
//! Keys are validated before anything is sent: an invalid key is an `Err` from the definition,
//! and no request exists. A reply that is a server error line never reaches `finish`: the
//! convention's transport returns it as `Err(Error::Client | Error::Server | Error::Protocol)`.
//!
//! ```
//! use mcache_proto::{commands, Response};
//!
//! // A blocking round trip, faked: the server says the key exists already.
//! let added = commands::add("greeting", "hello", 60)?.run(|request| {
//!     assert_eq!(request.command_name(), "add");
//!     Ok(Response::NotStored)
//! })?;
//! assert!(!added);
//! # Ok::<(), mcache_proto::Error>(())
//! ```

use crate::error::{Error, KeyError};
use crate::key::{validate_text_key, Key};
use crate::meta::flags::{MetaArithmeticFlags, MetaDeleteFlags, MetaGetFlags, MetaSetFlags};
use crate::meta::request::{MetaArithmetic, MetaDelete, MetaGet, MetaSet};
use crate::request::Request;
use crate::response::{MetaResponse, MetaStatus, Response, Stat, Value};
use crate::text::request::{Retrieve, RetrieveCommand, Store, StoreCommand};
use bytes::{Bytes, BytesMut};
use std::fmt;

/// One typed command: the request to send and how its reply becomes the result, or a result
/// known without sending anything.
///
/// `F` is the [`Finish`]: most commands use a plain `fn` pointer (the default); the few whose
/// finish needs data from the arguments have their own type ([`Aligned`] keeps the keys of a
/// [`get_multi`] to line the values up with them). The enum is exhaustive on purpose: a
/// runner handles both cases.
///
/// A runner sends `request`, waits for its reply and hands it to `finish`; [`Call::run`] does
/// exactly that with a blocking `execute` function.
#[must_use = "a Call does nothing until it is run"]
pub enum Call<T, F = fn(Response) -> Result<T, Error>> {
    /// Send `request`, then turn its reply into the result with `finish`.
    Send {
        /// The request to send.
        request: Request,
        /// Turns the reply into the result (given only replies that are not error lines).
        finish: F,
    },
    /// The result, known without a round trip (a multi-key command with no keys).
    Ready(T),
}

impl<T, F> Call<T, F> {
    /// A call that sends `request` and turns its reply into the result with `finish`.
    pub fn new(request: Request, finish: F) -> Self {
        Call::Send { request, finish }
    }

    /// A call whose result is `value`, without sending anything.
    pub fn ready(value: T) -> Self {
        Call::Ready(value)
    }

    /// The request to send, or `None` if the result is known already.
    pub fn request(&self) -> Option<&Request> {
        match self {
            Call::Send { request, .. } => Some(request),
            Call::Ready(_) => None,
        }
    }
}

impl<T, F: Finish<T>> Call<T, F> {
    /// Runs the call with a blocking round trip: `execute` sends one request and returns its
    /// reply (server error lines as `Err`). It is not called if the result is known already.
    pub fn run(self, execute: impl FnOnce(Request) -> Result<Response, Error>) -> Result<T, Error> {
        match self {
            Call::Send { request, finish } => finish.finish(execute(request)?),
            Call::Ready(value) => Ok(value),
        }
    }
}

/// How a reply becomes a command's result: any `FnOnce(Response) -> Result<T, Error>`, or a
/// type of its own such as [`Aligned`].
pub trait Finish<T> {
    /// Turns `reply` (never an error line: the transport returns those as errors) into the
    /// result.
    fn finish(self, reply: Response) -> Result<T, Error>;
}

impl<T, F: FnOnce(Response) -> Result<T, Error>> Finish<T> for F {
    fn finish(self, reply: Response) -> Result<T, Error> {
        self(reply)
    }
}

/// The [`Finish`] of a multi-key retrieval ([`get_multi`], [`gets_multi`]): one entry per key
/// asked for, in the order asked, `None` for a miss.
#[derive(Debug, Clone)]
pub struct Aligned {
    command: RetrieveCommand,
    /// The keys asked for, as one buffer of their wire forms (no reference counted per key).
    keys: KeyNames,
}

impl Finish<Vec<Option<Value>>> for Aligned {
    fn finish(self, reply: Response) -> Result<Vec<Option<Value>>, Error> {
        match reply {
            Response::Values(values) => Ok(self.keys.align(values)),
            other => Err(unexpected(self.command.name(), &other)),
        }
    }
}

/// The wire forms of a list of keys, in order, copied into one buffer.
#[derive(Debug, Clone, Default)]
struct KeyNames {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl KeyNames {
    fn new(keys: &[Key]) -> KeyNames {
        let mut names = KeyNames {
            bytes: Vec::with_capacity(keys.iter().map(|k| k.wire().len()).sum()),
            ends: Vec::with_capacity(keys.len()),
        };
        for k in keys {
            names.bytes.extend_from_slice(k.wire());
            names.ends.push(names.bytes.len());
        }
        names
    }

    fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(start, end)| &self.bytes[start..end])
    }

    /// Lines up values with the keys asked for: hits come back in the order asked.
    fn align(&self, values: Vec<Value>) -> Vec<Option<Value>> {
        // Every key hit: the decoder takes a value only for a key asked for and after the
        // one before it, so the values are the keys' in order (checked in debug builds).
        if values.len() == self.ends.len() {
            debug_assert!(values
                .iter()
                .zip(self.iter())
                .all(|(v, k)| v.key.wire() == k));
            return values.into_iter().map(Some).collect();
        }
        let mut out = Vec::with_capacity(self.ends.len());
        let mut values = values.into_iter().peekable();
        for k in self.iter() {
            if values.peek().is_some_and(|v| v.key.wire() == k) {
                out.push(values.next());
            } else {
                out.push(None);
            }
        }
        out
    }
}

impl<T: fmt::Debug, F> fmt::Debug for Call<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Call::Send { request, .. } => f
                .debug_struct("Send")
                .field("request", request)
                .finish_non_exhaustive(),
            Call::Ready(value) => f.debug_tuple("Ready").field(value).finish(),
        }
    }
}

/// Anything that can be turned into a [`Key`]: `&str`, `String`, `&[u8]`, `Vec<u8>`, `Bytes`,
/// `Key`, `&Key`.
pub trait AsKey {
    /// Validates and converts.
    fn into_key(self) -> Result<Key, KeyError>;

    /// The key's bytes when they are only borrowed (`&str`, `&[u8]`, …): a multi-key command
    /// then copies all its keys into one shared buffer instead of allocating each. `None`
    /// (the default) for keys that own their bytes already.
    fn borrowed_bytes(&self) -> Option<&[u8]> {
        None
    }
}

impl AsKey for Key {
    fn into_key(self) -> Result<Key, KeyError> {
        Ok(self)
    }
}
impl AsKey for &Key {
    fn into_key(self) -> Result<Key, KeyError> {
        Ok(self.clone())
    }
}
impl AsKey for &str {
    fn into_key(self) -> Result<Key, KeyError> {
        Key::new(self)
    }
    fn borrowed_bytes(&self) -> Option<&[u8]> {
        Some(self.as_bytes())
    }
}
impl AsKey for String {
    fn into_key(self) -> Result<Key, KeyError> {
        Key::from_bytes(Bytes::from(self))
    }
}
impl AsKey for &String {
    fn into_key(self) -> Result<Key, KeyError> {
        Key::new(self)
    }
    fn borrowed_bytes(&self) -> Option<&[u8]> {
        Some(self.as_bytes())
    }
}
impl AsKey for &[u8] {
    fn into_key(self) -> Result<Key, KeyError> {
        Key::new(self)
    }
    fn borrowed_bytes(&self) -> Option<&[u8]> {
        Some(self)
    }
}
impl<const N: usize> AsKey for &[u8; N] {
    fn into_key(self) -> Result<Key, KeyError> {
        Key::new(self)
    }
    fn borrowed_bytes(&self) -> Option<&[u8]> {
        Some(&self[..])
    }
}
impl AsKey for Vec<u8> {
    fn into_key(self) -> Result<Key, KeyError> {
        Key::from_bytes(Bytes::from(self))
    }
}
impl AsKey for Bytes {
    fn into_key(self) -> Result<Key, KeyError> {
        Key::from_bytes(self)
    }
}

/// The outcome of a storage command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreStatus {
    /// `STORED`.
    Stored,
    /// `NOT_STORED`: the condition of add/replace/append/prepend did not hold.
    NotStored,
    /// `EXISTS`: the cas did not match.
    Exists,
    /// `NOT_FOUND`: cas on a missing item.
    NotFound,
    /// `noreply` was asked: the outcome is unknown.
    NoReply,
}

// ---- Retrieval -------------------------------------------------------------------------------

/// `get`: the value of `key`, if present.
pub fn get(key: impl AsKey) -> Result<Call<Option<Value>>, Error> {
    retrieve_one(RetrieveCommand::Get, key, |r| first("get", r))
}

/// `gets`: the value of `key` with its cas unique.
pub fn gets(key: impl AsKey) -> Result<Call<Option<Value>>, Error> {
    retrieve_one(RetrieveCommand::Gets, key, |r| first("gets", r))
}

/// `get` of many keys in one request: one entry per key, in the order given. No keys: an
/// empty list, without sending anything.
pub fn get_multi<K: AsKey>(
    keys: impl IntoIterator<Item = K>,
) -> Result<Call<Vec<Option<Value>>, Aligned>, Error> {
    retrieve_many(RetrieveCommand::Get, keys)
}

/// `gets` of many keys: one entry per key, in the order given, with cas uniques. No keys: an
/// empty list, without sending anything.
pub fn gets_multi<K: AsKey>(
    keys: impl IntoIterator<Item = K>,
) -> Result<Call<Vec<Option<Value>>, Aligned>, Error> {
    retrieve_many(RetrieveCommand::Gets, keys)
}

/// `gat`: get and set a new expiration.
pub fn gat(exptime: i32, key: impl AsKey) -> Result<Call<Option<Value>>, Error> {
    retrieve_one(RetrieveCommand::Gat(exptime), key, |r| first("gat", r))
}

/// `gats`: get with cas and set a new expiration.
pub fn gats(exptime: i32, key: impl AsKey) -> Result<Call<Option<Value>>, Error> {
    retrieve_one(RetrieveCommand::Gats(exptime), key, |r| first("gats", r))
}

// ---- Storage ---------------------------------------------------------------------------------

/// Any storage command with every option (flags, `noreply`).
pub fn store(store: Store) -> Call<StoreStatus, impl Finish<StoreStatus> + Send + 'static> {
    let name = store.command.name();
    Call::new(Request::Store(store), move |r| store_status(name, r))
}

/// `set`: store unconditionally.
pub fn set(key: impl AsKey, value: impl Into<Bytes>, exptime: i32) -> Result<Call<()>, Error> {
    storage(StoreCommand::Set, key, value, exptime, |r| stored("set", r))
}

/// `add`: store if absent. `false` if the key exists.
pub fn add(key: impl AsKey, value: impl Into<Bytes>, exptime: i32) -> Result<Call<bool>, Error> {
    storage(StoreCommand::Add, key, value, exptime, |r| {
        was_stored("add", r)
    })
}

/// `replace`: store if present. `false` if the key is missing.
pub fn replace(
    key: impl AsKey,
    value: impl Into<Bytes>,
    exptime: i32,
) -> Result<Call<bool>, Error> {
    storage(StoreCommand::Replace, key, value, exptime, |r| {
        was_stored("replace", r)
    })
}

/// `append`: add bytes after the value. `false` if the key is missing.
pub fn append(key: impl AsKey, value: impl Into<Bytes>) -> Result<Call<bool>, Error> {
    storage(StoreCommand::Append, key, value, 0, |r| {
        was_stored("append", r)
    })
}

/// `prepend`: add bytes before the value. `false` if the key is missing.
pub fn prepend(key: impl AsKey, value: impl Into<Bytes>) -> Result<Call<bool>, Error> {
    storage(StoreCommand::Prepend, key, value, 0, |r| {
        was_stored("prepend", r)
    })
}

/// `cas`: store if the item's cas unique is still `cas`: `Stored`, `Exists` (changed since)
/// or `NotFound`.
pub fn cas(
    key: impl AsKey,
    value: impl Into<Bytes>,
    exptime: i32,
    cas: u64,
) -> Result<Call<StoreStatus>, Error> {
    storage(StoreCommand::Cas(cas), key, value, exptime, |r| {
        store_status("cas", r)
    })
}

/// memcached's ASCII authentication (`-Y`): `set auth 0 0 <len>` with the value `user pass`.
/// `STORED` means the connection is authenticated; any other reply is
/// [`Error::UnexpectedResponse`] for `"authentication"` (a refusal usually comes as
/// `CLIENT_ERROR authentication failure`, an error line the transport returns as
/// [`Error::Client`]).
pub fn auth(user: &str, pass: &str) -> Result<Call<()>, Error> {
    storage(
        StoreCommand::Set,
        "auth",
        format!("{user} {pass}"),
        0,
        |r| stored("authentication", r),
    )
}

// ---- Keys ------------------------------------------------------------------------------------

/// `delete`: `false` if the key was missing.
pub fn delete(key: impl AsKey) -> Result<Call<bool>, Error> {
    let request = Request::Delete {
        key: key.into_key()?,
        noreply: false,
    };
    Ok(Call::new(request, |r| match r {
        Response::Deleted => Ok(true),
        Response::NotFound => Ok(false),
        other => Err(unexpected("delete", &other)),
    }))
}

/// `incr`: the new value, or `None` if the key is missing.
pub fn incr(key: impl AsKey, delta: u64) -> Result<Call<Option<u64>>, Error> {
    let request = Request::Incr {
        key: key.into_key()?,
        delta,
        noreply: false,
    };
    Ok(Call::new(request, |r| number("incr", r)))
}

/// `decr`: the new value (never below 0), or `None` if the key is missing.
pub fn decr(key: impl AsKey, delta: u64) -> Result<Call<Option<u64>>, Error> {
    let request = Request::Decr {
        key: key.into_key()?,
        delta,
        noreply: false,
    };
    Ok(Call::new(request, |r| number("decr", r)))
}

/// `touch`: `false` if the key is missing.
pub fn touch(key: impl AsKey, exptime: i32) -> Result<Call<bool>, Error> {
    let request = Request::Touch {
        key: key.into_key()?,
        exptime,
        noreply: false,
    };
    Ok(Call::new(request, |r| match r {
        Response::Touched => Ok(true),
        Response::NotFound => Ok(false),
        other => Err(unexpected("touch", &other)),
    }))
}

// ---- Server ----------------------------------------------------------------------------------

/// `flush_all [delay]`: invalidate every item now, or after `delay` seconds.
pub fn flush_all(delay: Option<i32>) -> Call<()> {
    let request = Request::FlushAll {
        delay,
        noreply: false,
    };
    Call::new(request, |r| ok("flush_all", r))
}

/// `version`: the server's version string.
pub fn version() -> Call<String> {
    Call::new(Request::Version, |r| match r {
        Response::Version(v) => Ok(String::from_utf8_lossy(&v).into_owned()),
        other => Err(unexpected("version", &other)),
    })
}

/// `verbosity <level>`.
pub fn verbosity(level: u32) -> Call<()> {
    let request = Request::Verbosity {
        level,
        noreply: false,
    };
    Call::new(request, |r| ok("verbosity", r))
}

/// `stats [<args>]`: the `STAT` lines (`stats reset` gives an empty list).
pub fn stats(args: Option<&str>) -> Call<Vec<Stat>> {
    let args = args.map(|a| Bytes::copy_from_slice(a.as_bytes()));
    Call::new(Request::Stats { args }, |r| match r {
        Response::Stats(s) => Ok(s),
        Response::Reset | Response::Ok => Ok(Vec::new()),
        other => Err(unexpected("stats", &other)),
    })
}

// ---- Meta ------------------------------------------------------------------------------------

/// `mg`: meta get with typed flags.
pub fn meta_get(key: impl AsKey, flags: MetaGetFlags) -> Result<Call<MetaResponse>, Error> {
    let key = key.into_key()?;
    Ok(Call::new(MetaGet { key, flags }.into(), |r| meta("mg", r)))
}

/// `ms`: meta set with typed flags.
pub fn meta_set(
    key: impl AsKey,
    value: impl Into<Bytes>,
    flags: MetaSetFlags,
) -> Result<Call<MetaResponse>, Error> {
    let (key, value) = (key.into_key()?, value.into());
    Ok(Call::new(MetaSet { key, value, flags }.into(), |r| {
        meta("ms", r)
    }))
}

/// `md`: meta delete with typed flags.
pub fn meta_delete(key: impl AsKey, flags: MetaDeleteFlags) -> Result<Call<MetaResponse>, Error> {
    let key = key.into_key()?;
    Ok(Call::new(MetaDelete { key, flags }.into(), |r| {
        meta("md", r)
    }))
}

/// `ma`: meta arithmetic with typed flags.
pub fn meta_arithmetic(
    key: impl AsKey,
    flags: MetaArithmeticFlags,
) -> Result<Call<MetaResponse>, Error> {
    let key = key.into_key()?;
    let request = MetaArithmetic { key, flags }.into();
    Ok(Call::new(request, |r| meta("ma", r)))
}

/// `mn`: a round trip that does nothing.
pub fn meta_noop() -> Call<()> {
    Call::new(Request::MetaNoop, |r| match r {
        Response::MetaNoop => Ok(()),
        other => Err(unexpected("mn", &other)),
    })
}

/// `me`: debug facts about an item (`None` on a miss), as the server prints them.
pub fn meta_debug(key: impl AsKey) -> Result<Call<Option<Bytes>>, Error> {
    let request = Request::MetaDebug {
        key: key.into_key()?,
    };
    Ok(Call::new(request, |r| match r {
        Response::MetaDebug { info, .. } => Ok(Some(info)),
        Response::Meta(m) if m.status == MetaStatus::En => Ok(None),
        other => Err(unexpected("me", &other)),
    }))
}

// ---- Building blocks -------------------------------------------------------------------------

fn unexpected(command: &'static str, r: &Response) -> Error {
    Error::UnexpectedResponse {
        command,
        response: r.describe(),
    }
}

fn retrieve_one(
    command: RetrieveCommand,
    key: impl AsKey,
    finish: fn(Response) -> Result<Option<Value>, Error>,
) -> Result<Call<Option<Value>>, Error> {
    let keys = vec![key.into_key()?];
    Ok(Call::new(
        Request::Retrieve(Retrieve { command, keys }),
        finish,
    ))
}

/// The finish of a single-key retrieval: the value, or `None` on a miss.
fn first(command: &'static str, r: Response) -> Result<Option<Value>, Error> {
    match r {
        Response::Values(mut v) => Ok(v.pop()),
        other => Err(unexpected(command, &other)),
    }
}

fn retrieve_many<K: AsKey>(
    command: RetrieveCommand,
    keys: impl IntoIterator<Item = K>,
) -> Result<Call<Vec<Option<Value>>, Aligned>, Error> {
    let keys = many_keys(keys)?;
    if keys.is_empty() {
        return Ok(Call::ready(Vec::new()));
    }
    let names = KeyNames::new(&keys);
    let request = Request::Retrieve(Retrieve { command, keys });
    Ok(Call::new(
        request,
        Aligned {
            command,
            keys: names,
        },
    ))
}

/// Validates `keys`. Borrowed ones are copied into one buffer that their `Key`s share, so
/// that a 100-key multi-get allocates twice, not a hundred times (and cloning its keys only
/// counts references).
pub fn many_keys<K: AsKey>(keys: impl IntoIterator<Item = K>) -> Result<Vec<Key>, KeyError> {
    enum Part {
        Owned(Key),
        Borrowed(usize, usize),
    }
    let keys = keys.into_iter();
    let mut parts = Vec::with_capacity(keys.size_hint().0);
    let mut arena = BytesMut::new();
    for k in keys {
        match k.borrowed_bytes() {
            Some(b) => {
                validate_text_key(b)?;
                let start = arena.len();
                arena.extend_from_slice(b);
                parts.push(Part::Borrowed(start, arena.len()));
            }
            None => parts.push(Part::Owned(k.into_key()?)),
        }
    }
    let arena = arena.freeze();
    Ok(parts
        .into_iter()
        .map(|p| match p {
            Part::Owned(k) => k,
            Part::Borrowed(start, end) => Key::from_validated_text(arena.slice(start..end)),
        })
        .collect())
}

fn storage<T>(
    command: StoreCommand,
    key: impl AsKey,
    value: impl Into<Bytes>,
    exptime: i32,
    finish: fn(Response) -> Result<T, Error>,
) -> Result<Call<T>, Error> {
    let request = Request::Store(Store {
        command,
        key: key.into_key()?,
        flags: 0,
        exptime,
        value: value.into(),
        noreply: false,
    });
    Ok(Call::new(request, finish))
}

fn store_status(command: &'static str, r: Response) -> Result<StoreStatus, Error> {
    Ok(match r {
        Response::Stored => StoreStatus::Stored,
        Response::NotStored => StoreStatus::NotStored,
        Response::Exists => StoreStatus::Exists,
        Response::NotFound => StoreStatus::NotFound,
        Response::NoReply => StoreStatus::NoReply,
        other => return Err(unexpected(command, &other)),
    })
}

/// `STORED` or an error: for commands with no other success (`set`, authentication).
fn stored(command: &'static str, r: Response) -> Result<(), Error> {
    match r {
        Response::Stored => Ok(()),
        other => Err(unexpected(command, &other)),
    }
}

/// Whether a conditional store happened (`NOT_STORED`, `NOT_FOUND`: no).
fn was_stored(command: &'static str, r: Response) -> Result<bool, Error> {
    Ok(store_status(command, r)? == StoreStatus::Stored)
}

fn number(command: &'static str, r: Response) -> Result<Option<u64>, Error> {
    match r {
        Response::Number(n) => Ok(Some(n)),
        Response::NotFound => Ok(None),
        other => Err(unexpected(command, &other)),
    }
}

fn ok(command: &'static str, r: Response) -> Result<(), Error> {
    match r {
        Response::Ok => Ok(()),
        other => Err(unexpected(command, &other)),
    }
}

fn meta(command: &'static str, r: Response) -> Result<MetaResponse, Error> {
    match r {
        Response::Meta(m) => Ok(*m),
        other => Err(unexpected(command, &other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::EncodeError;
    use crate::wire::Limits;

    fn wire<T, F>(call: &Call<T, F>) -> Vec<u8> {
        let request = call.request().expect("a call that sends");
        request.to_bytes(&Limits::default()).expect("encodes")
    }

    fn value(key: &str, data: &'static str) -> Value {
        Value {
            key: Key::new(key).unwrap(),
            flags: 0,
            cas: None,
            data: Bytes::from_static(data.as_bytes()),
        }
    }

    /// Finishes `call` with `reply`, as a transport would.
    fn reply<T, F: Finish<T>>(call: Call<T, F>, reply: Response) -> Result<T, Error> {
        call.run(|_| Ok(reply))
    }

    fn unexpected_to(command: &'static str, result: Result<impl fmt::Debug, Error>) {
        match result {
            Err(Error::UnexpectedResponse { command: c, .. }) => assert_eq!(c, command),
            other => panic!("expected an unexpected-response error, got {other:?}"),
        }
    }

    #[test]
    fn get_sends_one_key_and_reads_hit_and_miss() {
        assert_eq!(wire(&get("foo").unwrap()), b"get foo\r\n");
        let hit = reply(
            get("foo").unwrap(),
            Response::Values(vec![value("foo", "bar")]),
        );
        assert_eq!(hit.unwrap(), Some(value("foo", "bar")));
        assert_eq!(
            reply(get("foo").unwrap(), Response::Values(vec![])),
            Ok(None)
        );
        unexpected_to("get", reply(get("foo").unwrap(), Response::Stored));
        assert_eq!(wire(&gats(30, "foo").unwrap()), b"gats 30 foo\r\n");
    }

    #[test]
    fn invalid_key_is_refused_before_any_request() {
        let err = get("two words").unwrap_err();
        assert!(matches!(err, Error::Encode(EncodeError::Key(_))), "{err:?}");
        assert!(set("", "v", 0).is_err());
        assert!(get_multi(["ok", "not ok"]).is_err());
    }

    #[test]
    fn get_multi_lines_values_up_with_keys() {
        let call = get_multi(["a", "b", "c"]).unwrap();
        assert_eq!(wire(&call), b"get a b c\r\n");
        let values = vec![value("a", "1"), value("c", "3")];
        let got = reply(call, Response::Values(values)).unwrap();
        assert_eq!(
            got,
            vec![Some(value("a", "1")), None, Some(value("c", "3"))]
        );
        unexpected_to("gets", reply(gets_multi(["a"]).unwrap(), Response::Ok));
    }

    #[test]
    fn multi_get_of_no_keys_sends_nothing() {
        let call = get_multi(Vec::<&str>::new()).unwrap();
        assert!(call.request().is_none());
        let got = call.run(|_| panic!("nothing to send"));
        assert_eq!(got, Ok(Vec::new()));
        assert!(gets_multi(Vec::<String>::new())
            .unwrap()
            .request()
            .is_none());
    }

    #[test]
    fn set_and_conditional_stores() {
        assert_eq!(wire(&set("k", "v", 60).unwrap()), b"set k 0 60 1\r\nv\r\n");
        assert_eq!(reply(set("k", "v", 0).unwrap(), Response::Stored), Ok(()));
        let not_stored = reply(set("k", "v", 0).unwrap(), Response::NotStored);
        assert_eq!(
            not_stored,
            Err(Error::UnexpectedResponse {
                command: "set",
                response: "NotStored".into(),
            })
        );
        assert_eq!(
            reply(add("k", "v", 0).unwrap(), Response::NotStored),
            Ok(false)
        );
        assert_eq!(reply(add("k", "v", 0).unwrap(), Response::Stored), Ok(true));
        assert_eq!(wire(&append("k", "+").unwrap()), b"append k 0 0 1\r\n+\r\n");
        assert_eq!(
            reply(replace("k", "v", 0).unwrap(), Response::NotStored),
            Ok(false)
        );
        unexpected_to(
            "prepend",
            reply(prepend("k", "v").unwrap(), Response::Deleted),
        );
    }

    #[test]
    fn cas_and_raw_store_report_every_status() {
        assert_eq!(
            wire(&cas("k", "v", 0, 42).unwrap()),
            b"cas k 0 0 1 42\r\nv\r\n"
        );
        assert_eq!(
            reply(cas("k", "v", 0, 42).unwrap(), Response::Exists),
            Ok(StoreStatus::Exists)
        );
        assert_eq!(
            reply(cas("k", "v", 0, 42).unwrap(), Response::NotFound),
            Ok(StoreStatus::NotFound)
        );
        let quiet = Store {
            command: StoreCommand::Replace,
            key: Key::new("k").unwrap(),
            flags: 7,
            exptime: 0,
            value: Bytes::from_static(b"v"),
            noreply: true,
        };
        let call = store(quiet);
        assert_eq!(wire(&call), b"replace k 7 0 1 noreply\r\nv\r\n");
        assert_eq!(reply(call, Response::NoReply), Ok(StoreStatus::NoReply));
        let call = store(Store {
            command: StoreCommand::Append,
            key: Key::new("k").unwrap(),
            flags: 0,
            exptime: 0,
            value: Bytes::new(),
            noreply: false,
        });
        unexpected_to("append", reply(call, Response::Touched));
    }

    #[test]
    fn key_commands() {
        assert_eq!(wire(&delete("k").unwrap()), b"delete k\r\n");
        assert_eq!(reply(delete("k").unwrap(), Response::Deleted), Ok(true));
        assert_eq!(reply(delete("k").unwrap(), Response::NotFound), Ok(false));
        assert_eq!(wire(&incr("n", 5).unwrap()), b"incr n 5\r\n");
        assert_eq!(
            reply(incr("n", 5).unwrap(), Response::Number(6)),
            Ok(Some(6))
        );
        assert_eq!(reply(decr("n", 5).unwrap(), Response::NotFound), Ok(None));
        assert_eq!(reply(touch("k", 9).unwrap(), Response::Touched), Ok(true));
        unexpected_to("touch", reply(touch("k", 9).unwrap(), Response::Deleted));
    }

    #[test]
    fn server_and_meta_commands() {
        assert_eq!(wire(&flush_all(Some(10))), b"flush_all 10\r\n");
        assert_eq!(reply(flush_all(None), Response::Ok), Ok(()));
        let v = reply(version(), Response::Version(Bytes::from_static(b"1.6.21")));
        assert_eq!(v.as_deref(), Ok("1.6.21"));
        assert_eq!(reply(stats(Some("reset")), Response::Reset), Ok(Vec::new()));
        assert_eq!(wire(&stats(Some("items"))), b"stats items\r\n");
        assert_eq!(wire(&meta_noop()), b"mn\r\n");
        let hit = MetaResponse::status(MetaStatus::Hd);
        let flags = MetaGetFlags::default();
        assert_eq!(
            reply(
                meta_get("k", flags).unwrap(),
                Response::Meta(Box::new(hit.clone()))
            ),
            Ok(hit)
        );
        unexpected_to("mg", reply(meta_get("k", flags).unwrap(), Response::Ok));
        let miss = Response::Meta(Box::new(MetaResponse::status(MetaStatus::En)));
        assert_eq!(reply(meta_debug("k").unwrap(), miss), Ok(None));
    }

    #[test]
    fn auth_is_a_set_of_user_and_password() {
        let call = auth("user", "pass").unwrap();
        assert_eq!(wire(&call), b"set auth 0 0 9\r\nuser pass\r\n");
        assert_eq!(reply(call, Response::Stored), Ok(()));
        for refusal in [Response::NotStored, Response::Exists, Response::Ok] {
            unexpected_to("authentication", reply(auth("u", "p").unwrap(), refusal));
        }
    }

    #[test]
    fn run_passes_transport_errors_through() {
        let err = get("k").unwrap().run(|_| Err(Error::Timeout));
        assert_eq!(err, Err(Error::Timeout));
        let err = set("k", "v", 0)
            .unwrap()
            .run(|_| Err(Error::Client(Bytes::from_static(b"bad data chunk"))));
        assert_eq!(
            err,
            Err(Error::Client(Bytes::from_static(b"bad data chunk")))
        );
    }

    #[test]
    fn calls_print_their_request() {
        let shown = format!("{:?}", get("k").unwrap());
        assert!(shown.starts_with("Send { request: Retrieve"), "{shown}");
        let ready = format!("{:?}", get_multi(Vec::<&str>::new()).unwrap());
        assert_eq!(ready, "Ready([])");
    }

    #[test]
    fn many_keys_share_one_buffer_for_borrowed_keys_and_keep_the_order() {
        let owned = Key::new("owned").unwrap();
        let name = String::from("two");
        let keys = many_keys([
            KeyArg::Str("one"),
            KeyArg::Key(owned.clone()),
            KeyArg::String(&name),
            KeyArg::Str("three"),
        ])
        .unwrap();
        let wires: Vec<&[u8]> = keys.iter().map(Key::wire).collect();
        assert_eq!(wires, [&b"one"[..], b"owned", b"two", b"three"]);
        // "one", "two" and "three" are slices of one buffer, in order.
        let one = keys[0].wire().as_ptr() as usize;
        assert_eq!(keys[2].wire().as_ptr() as usize, one + 3);
        assert_eq!(keys[3].wire().as_ptr() as usize, one + 6);
        assert!(matches!(
            many_keys(["ok", "bad key"]),
            Err(KeyError::InvalidByte { .. })
        ));
        assert!(matches!(many_keys([""]), Err(KeyError::Empty)));
    }

    /// Keys of several kinds in one list.
    enum KeyArg<'a> {
        Str(&'a str),
        String(&'a String),
        Key(Key),
    }

    impl AsKey for KeyArg<'_> {
        fn into_key(self) -> Result<Key, KeyError> {
            match self {
                KeyArg::Str(s) => s.into_key(),
                KeyArg::String(s) => s.into_key(),
                KeyArg::Key(k) => Ok(k),
            }
        }
        fn borrowed_bytes(&self) -> Option<&[u8]> {
            match self {
                KeyArg::Str(s) => s.borrowed_bytes(),
                KeyArg::String(s) => s.borrowed_bytes(),
                KeyArg::Key(_) => None,
            }
        }
    }
}
