//! [`Memcache`]: the command API as a trait with one required method.
//!
//! An adapter implements [`Memcache::execute`] (send one request, await its reply) and gets
//! every typed operation as a provided method. Keys are validated before anything is sent;
//! replies that mean failure become typed errors.

use crate::error::{Error, KeyError};
use crate::key::Key;
use crate::meta::flags::{MetaArithmeticFlags, MetaDeleteFlags, MetaGetFlags, MetaSetFlags};
use crate::meta::request::{MetaArithmetic, MetaDelete, MetaGet, MetaSet};
use crate::request::Request;
use crate::response::{MetaResponse, Response, Stat, Value};
use crate::text::request::{Retrieve, RetrieveCommand, Store, StoreCommand};
use bytes::Bytes;
use std::future::Future;

/// Anything that can be turned into a [`Key`]: `&str`, `String`, `&[u8]`, `Vec<u8>`, `Bytes`,
/// `Key`, `&Key`.
pub trait AsKey {
    /// Validates and converts.
    fn into_key(self) -> Result<Key, KeyError>;
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
}
impl AsKey for &[u8] {
    fn into_key(self) -> Result<Key, KeyError> {
        Key::new(self)
    }
}
impl<const N: usize> AsKey for &[u8; N] {
    fn into_key(self) -> Result<Key, KeyError> {
        Key::new(self)
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

fn unexpected(command: &'static str, r: &Response) -> Error {
    Error::UnexpectedResponse {
        command,
        response: r.describe(),
    }
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

fn retrieve(command: RetrieveCommand, keys: Vec<Key>) -> Request {
    Request::Retrieve(Retrieve { command, keys })
}

fn store(command: StoreCommand, key: Key, value: Bytes, exptime: i32) -> Request {
    Request::Store(Store {
        command,
        key,
        flags: 0,
        exptime,
        value,
        noreply: false,
    })
}

/// Lines up values with the keys asked for: hits come back in the order asked.
fn align(keys: &[Key], values: Vec<Value>) -> Vec<Option<Value>> {
    let mut out = Vec::with_capacity(keys.len());
    let mut values = values.into_iter().peekable();
    for k in keys {
        if values.peek().is_some_and(|v| v.key == *k) {
            out.push(values.next());
        } else {
            out.push(None);
        }
    }
    out
}

/// The typed memcached API, for any transport that can execute a [`Request`].
///
/// ```no_run
/// use mcache_proto::Memcache;
/// async fn demo(cache: &impl Memcache) -> Result<(), mcache_proto::Error> {
///     cache.set("greeting", "hello", 60).await?;
///     let v = cache.get("greeting").await?;
///     assert_eq!(v.map(|v| v.data), Some("hello".into()));
///     Ok(())
/// }
/// ```
pub trait Memcache: Sync {
    /// Sends one request and waits for its reply. Server error lines come back as
    /// `Err(Error::Client | Error::Server | Error::Protocol)`.
    fn execute(&self, request: Request) -> impl Future<Output = Result<Response, Error>> + Send;

    /// `get`: the value of `key`, if present.
    fn get(&self, key: impl AsKey) -> impl Future<Output = Result<Option<Value>, Error>> + Send {
        let req = key
            .into_key()
            .map(|k| retrieve(RetrieveCommand::Get, vec![k]));
        async move {
            match self.execute(req?).await? {
                Response::Values(mut v) => Ok(v.pop()),
                other => Err(unexpected("get", &other)),
            }
        }
    }

    /// `gets`: the value of `key` with its cas unique.
    fn gets(&self, key: impl AsKey) -> impl Future<Output = Result<Option<Value>, Error>> + Send {
        let req = key
            .into_key()
            .map(|k| retrieve(RetrieveCommand::Gets, vec![k]));
        async move {
            match self.execute(req?).await? {
                Response::Values(mut v) => Ok(v.pop()),
                other => Err(unexpected("gets", &other)),
            }
        }
    }

    /// `get` of many keys in one request: one entry per key, in the order given.
    fn get_multi<K: AsKey>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> impl Future<Output = Result<Vec<Option<Value>>, Error>> + Send {
        let keys: Result<Vec<Key>, KeyError> = keys.into_iter().map(AsKey::into_key).collect();
        async move {
            let keys = keys?;
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            match self
                .execute(retrieve(RetrieveCommand::Get, keys.clone()))
                .await?
            {
                Response::Values(v) => Ok(align(&keys, v)),
                other => Err(unexpected("get", &other)),
            }
        }
    }

    /// `gets` of many keys: one entry per key, in the order given, with cas uniques.
    fn gets_multi<K: AsKey>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> impl Future<Output = Result<Vec<Option<Value>>, Error>> + Send {
        let keys: Result<Vec<Key>, KeyError> = keys.into_iter().map(AsKey::into_key).collect();
        async move {
            let keys = keys?;
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            match self
                .execute(retrieve(RetrieveCommand::Gets, keys.clone()))
                .await?
            {
                Response::Values(v) => Ok(align(&keys, v)),
                other => Err(unexpected("gets", &other)),
            }
        }
    }

    /// `gat`: get and set a new expiration.
    fn gat(
        &self,
        exptime: i32,
        key: impl AsKey,
    ) -> impl Future<Output = Result<Option<Value>, Error>> + Send {
        let req = key
            .into_key()
            .map(|k| retrieve(RetrieveCommand::Gat(exptime), vec![k]));
        async move {
            match self.execute(req?).await? {
                Response::Values(mut v) => Ok(v.pop()),
                other => Err(unexpected("gat", &other)),
            }
        }
    }

    /// `gats`: get with cas and set a new expiration.
    fn gats(
        &self,
        exptime: i32,
        key: impl AsKey,
    ) -> impl Future<Output = Result<Option<Value>, Error>> + Send {
        let req = key
            .into_key()
            .map(|k| retrieve(RetrieveCommand::Gats(exptime), vec![k]));
        async move {
            match self.execute(req?).await? {
                Response::Values(mut v) => Ok(v.pop()),
                other => Err(unexpected("gats", &other)),
            }
        }
    }

    /// Any storage command with every option (flags, `noreply`).
    fn store(&self, store: Store) -> impl Future<Output = Result<StoreStatus, Error>> + Send {
        async move {
            let name = store.command.name();
            store_status(name, self.execute(Request::Store(store)).await?)
        }
    }

    /// `set`: store unconditionally.
    fn set(
        &self,
        key: impl AsKey,
        value: impl Into<Bytes>,
        exptime: i32,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        let req = key
            .into_key()
            .map(|k| store(StoreCommand::Set, k, value.into(), exptime));
        async move {
            match store_status("set", self.execute(req?).await?)? {
                StoreStatus::Stored => Ok(()),
                other => Err(Error::UnexpectedResponse {
                    command: "set",
                    response: format!("{other:?}"),
                }),
            }
        }
    }

    /// `add`: store if absent. `Ok(false)` if the key exists.
    fn add(
        &self,
        key: impl AsKey,
        value: impl Into<Bytes>,
        exptime: i32,
    ) -> impl Future<Output = Result<bool, Error>> + Send {
        let req = key
            .into_key()
            .map(|k| store(StoreCommand::Add, k, value.into(), exptime));
        async move { Ok(store_status("add", self.execute(req?).await?)? == StoreStatus::Stored) }
    }

    /// `replace`: store if present. `Ok(false)` if the key is missing.
    fn replace(
        &self,
        key: impl AsKey,
        value: impl Into<Bytes>,
        exptime: i32,
    ) -> impl Future<Output = Result<bool, Error>> + Send {
        let req = key
            .into_key()
            .map(|k| store(StoreCommand::Replace, k, value.into(), exptime));
        async move { Ok(store_status("replace", self.execute(req?).await?)? == StoreStatus::Stored) }
    }

    /// `append`: add bytes after the value. `Ok(false)` if the key is missing.
    fn append(
        &self,
        key: impl AsKey,
        value: impl Into<Bytes>,
    ) -> impl Future<Output = Result<bool, Error>> + Send {
        let req = key
            .into_key()
            .map(|k| store(StoreCommand::Append, k, value.into(), 0));
        async move { Ok(store_status("append", self.execute(req?).await?)? == StoreStatus::Stored) }
    }

    /// `prepend`: add bytes before the value. `Ok(false)` if the key is missing.
    fn prepend(
        &self,
        key: impl AsKey,
        value: impl Into<Bytes>,
    ) -> impl Future<Output = Result<bool, Error>> + Send {
        let req = key
            .into_key()
            .map(|k| store(StoreCommand::Prepend, k, value.into(), 0));
        async move { Ok(store_status("prepend", self.execute(req?).await?)? == StoreStatus::Stored) }
    }

    /// `cas`: store if the item's cas unique is still `cas`: `Stored`, `Exists` (changed since)
    /// or `NotFound`.
    fn cas(
        &self,
        key: impl AsKey,
        value: impl Into<Bytes>,
        exptime: i32,
        cas: u64,
    ) -> impl Future<Output = Result<StoreStatus, Error>> + Send {
        let req = key
            .into_key()
            .map(|k| store(StoreCommand::Cas(cas), k, value.into(), exptime));
        async move { store_status("cas", self.execute(req?).await?) }
    }

    /// `delete`: `Ok(false)` if the key was missing.
    fn delete(&self, key: impl AsKey) -> impl Future<Output = Result<bool, Error>> + Send {
        let req = key.into_key().map(|key| Request::Delete {
            key,
            noreply: false,
        });
        async move {
            match self.execute(req?).await? {
                Response::Deleted => Ok(true),
                Response::NotFound => Ok(false),
                other => Err(unexpected("delete", &other)),
            }
        }
    }

    /// `incr`: the new value, or `None` if the key is missing.
    fn incr(
        &self,
        key: impl AsKey,
        delta: u64,
    ) -> impl Future<Output = Result<Option<u64>, Error>> + Send {
        let req = key.into_key().map(|key| Request::Incr {
            key,
            delta,
            noreply: false,
        });
        async move { number("incr", self.execute(req?).await?) }
    }

    /// `decr`: the new value (never below 0), or `None` if the key is missing.
    fn decr(
        &self,
        key: impl AsKey,
        delta: u64,
    ) -> impl Future<Output = Result<Option<u64>, Error>> + Send {
        let req = key.into_key().map(|key| Request::Decr {
            key,
            delta,
            noreply: false,
        });
        async move { number("decr", self.execute(req?).await?) }
    }

    /// `touch`: `Ok(false)` if the key is missing.
    fn touch(
        &self,
        key: impl AsKey,
        exptime: i32,
    ) -> impl Future<Output = Result<bool, Error>> + Send {
        let req = key.into_key().map(|key| Request::Touch {
            key,
            exptime,
            noreply: false,
        });
        async move {
            match self.execute(req?).await? {
                Response::Touched => Ok(true),
                Response::NotFound => Ok(false),
                other => Err(unexpected("touch", &other)),
            }
        }
    }

    /// `flush_all [delay]`: invalidate every item now, or after `delay` seconds.
    fn flush_all(&self, delay: Option<i32>) -> impl Future<Output = Result<(), Error>> + Send {
        async move {
            match self
                .execute(Request::FlushAll {
                    delay,
                    noreply: false,
                })
                .await?
            {
                Response::Ok => Ok(()),
                other => Err(unexpected("flush_all", &other)),
            }
        }
    }

    /// `version`: the server's version string.
    fn version(&self) -> impl Future<Output = Result<String, Error>> + Send {
        async move {
            match self.execute(Request::Version).await? {
                Response::Version(v) => Ok(String::from_utf8_lossy(&v).into_owned()),
                other => Err(unexpected("version", &other)),
            }
        }
    }

    /// `verbosity <level>`.
    fn verbosity(&self, level: u32) -> impl Future<Output = Result<(), Error>> + Send {
        async move {
            match self
                .execute(Request::Verbosity {
                    level,
                    noreply: false,
                })
                .await?
            {
                Response::Ok => Ok(()),
                other => Err(unexpected("verbosity", &other)),
            }
        }
    }

    /// `stats [<args>]`: the `STAT` lines (`stats reset` gives an empty list).
    fn stats(&self, args: Option<&str>) -> impl Future<Output = Result<Vec<Stat>, Error>> + Send {
        let args = args.map(|a| Bytes::copy_from_slice(a.as_bytes()));
        async move {
            match self.execute(Request::Stats { args }).await? {
                Response::Stats(s) => Ok(s),
                Response::Reset | Response::Ok => Ok(Vec::new()),
                other => Err(unexpected("stats", &other)),
            }
        }
    }

    /// `mg`: meta get with typed flags.
    fn meta_get(
        &self,
        key: impl AsKey,
        flags: MetaGetFlags,
    ) -> impl Future<Output = Result<MetaResponse, Error>> + Send {
        let req = key
            .into_key()
            .map(|key| Request::MetaGet(MetaGet { key, flags }));
        async move { meta("mg", self.execute(req?).await?) }
    }

    /// `ms`: meta set with typed flags.
    fn meta_set(
        &self,
        key: impl AsKey,
        value: impl Into<Bytes>,
        flags: MetaSetFlags,
    ) -> impl Future<Output = Result<MetaResponse, Error>> + Send {
        let value = value.into();
        let req = key
            .into_key()
            .map(|key| Request::MetaSet(MetaSet { key, value, flags }));
        async move { meta("ms", self.execute(req?).await?) }
    }

    /// `md`: meta delete with typed flags.
    fn meta_delete(
        &self,
        key: impl AsKey,
        flags: MetaDeleteFlags,
    ) -> impl Future<Output = Result<MetaResponse, Error>> + Send {
        let req = key
            .into_key()
            .map(|key| Request::MetaDelete(MetaDelete { key, flags }));
        async move { meta("md", self.execute(req?).await?) }
    }

    /// `ma`: meta arithmetic with typed flags.
    fn meta_arithmetic(
        &self,
        key: impl AsKey,
        flags: MetaArithmeticFlags,
    ) -> impl Future<Output = Result<MetaResponse, Error>> + Send {
        let req = key
            .into_key()
            .map(|key| Request::MetaArithmetic(MetaArithmetic { key, flags }));
        async move { meta("ma", self.execute(req?).await?) }
    }

    /// `mn`: a round trip that does nothing.
    fn meta_noop(&self) -> impl Future<Output = Result<(), Error>> + Send {
        async move {
            match self.execute(Request::MetaNoop).await? {
                Response::MetaNoop => Ok(()),
                other => Err(unexpected("mn", &other)),
            }
        }
    }

    /// `me`: debug facts about an item (`None` on a miss), as the server prints them.
    fn meta_debug(
        &self,
        key: impl AsKey,
    ) -> impl Future<Output = Result<Option<Bytes>, Error>> + Send {
        let req = key.into_key().map(|key| Request::MetaDebug { key });
        async move {
            match self.execute(req?).await? {
                Response::MetaDebug { info, .. } => Ok(Some(info)),
                Response::Meta(m) if m.status == crate::MetaStatus::En => Ok(None),
                other => Err(unexpected("me", &other)),
            }
        }
    }
}

fn number(command: &'static str, r: Response) -> Result<Option<u64>, Error> {
    match r {
        Response::Number(n) => Ok(Some(n)),
        Response::NotFound => Ok(None),
        other => Err(unexpected(command, &other)),
    }
}

fn meta(command: &'static str, r: Response) -> Result<MetaResponse, Error> {
    match r {
        Response::Meta(m) => Ok(m),
        other => Err(unexpected(command, &other)),
    }
}
