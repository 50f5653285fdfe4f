//! [`Memcache`]: the typed memcached API as a blocking trait with one required method.
//!
//! The same operations as the async [`crate::Memcache`], built from the same definitions in
//! [`mcache_proto::commands`]: each method is one line that runs the definition of the same
//! name with [`Memcache::run`], so the request a command sends and the meaning of its reply
//! are written once for both calling conventions. Keys are validated before anything is
//! sent; replies that mean failure become typed errors.

use bytes::Bytes;
use mcache_proto::commands::{self, Call, Finish};
use mcache_proto::text::request::Store;
use mcache_proto::{
    AsKey, Error, MetaArithmeticFlags, MetaDeleteFlags, MetaGetFlags, MetaResponse, MetaSetFlags,
    Request, Response, Stat, StoreStatus, Value,
};

/// The typed memcached API on the calling thread, for any transport that can execute a
/// [`Request`]. Each method is documented on the async [`crate::Memcache`] method of the
/// same name; here it blocks until the reply (or the request timeout).
///
/// ```no_run
/// use mcache_client::blocking::Memcache;
///
/// fn demo(cache: &impl Memcache) -> Result<(), mcache_client::Error> {
///     cache.set("greeting", "hello", 60)?;
///     let v = cache.get("greeting")?;
///     assert_eq!(v.map(|v| v.data), Some("hello".into()));
///     assert_eq!(cache.get_multi(["greeting", "farewell"])?.len(), 2);
///     Ok(())
/// }
/// ```
pub trait Memcache {
    /// Sends one request and waits for its reply. Server error lines come back as
    /// `Err(Error::Client | Error::Server | Error::Protocol)`.
    fn execute(&self, request: Request) -> Result<Response, Error>;

    /// Runs any command definition of [`mcache_proto::commands`] (an invalid argument fails
    /// without sending; a call whose result is known is not sent).
    fn run<T, F: Finish<T>>(&self, call: Result<Call<T, F>, Error>) -> Result<T, Error> {
        call?.run(|request| self.execute(request))
    }

    /// [`crate::Memcache::get`]: the value of `key`, if present.
    fn get(&self, key: impl AsKey) -> Result<Option<Value>, Error> {
        self.run(commands::get(key))
    }

    /// [`crate::Memcache::gets`]: the value with its cas unique.
    fn gets(&self, key: impl AsKey) -> Result<Option<Value>, Error> {
        self.run(commands::gets(key))
    }

    /// [`crate::Memcache::get_multi`]: one entry per key, in the order given.
    fn get_multi<K: AsKey>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<Vec<Option<Value>>, Error> {
        self.run(commands::get_multi(keys))
    }

    /// [`crate::Memcache::gets_multi`]: with cas uniques.
    fn gets_multi<K: AsKey>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<Vec<Option<Value>>, Error> {
        self.run(commands::gets_multi(keys))
    }

    /// [`crate::Memcache::gat`]: get and set a new expiration.
    fn gat(&self, exptime: i32, key: impl AsKey) -> Result<Option<Value>, Error> {
        self.run(commands::gat(exptime, key))
    }

    /// [`crate::Memcache::gats`]: get with cas and set a new expiration.
    fn gats(&self, exptime: i32, key: impl AsKey) -> Result<Option<Value>, Error> {
        self.run(commands::gats(exptime, key))
    }

    /// [`crate::Memcache::store`]: any storage command with every option.
    fn store(&self, store: Store) -> Result<StoreStatus, Error> {
        self.run(Ok(commands::store(store)))
    }

    /// [`crate::Memcache::set`]: store unconditionally.
    fn set(&self, key: impl AsKey, value: impl Into<Bytes>, exptime: i32) -> Result<(), Error> {
        self.run(commands::set(key, value, exptime))
    }

    /// [`crate::Memcache::add`]: store if absent (`Ok(false)` if the key exists).
    fn add(&self, key: impl AsKey, value: impl Into<Bytes>, exptime: i32) -> Result<bool, Error> {
        self.run(commands::add(key, value, exptime))
    }

    /// [`crate::Memcache::replace`]: store if present (`Ok(false)` if missing).
    fn replace(
        &self,
        key: impl AsKey,
        value: impl Into<Bytes>,
        exptime: i32,
    ) -> Result<bool, Error> {
        self.run(commands::replace(key, value, exptime))
    }

    /// [`crate::Memcache::append`]: add bytes after the value (`Ok(false)` if missing).
    fn append(&self, key: impl AsKey, value: impl Into<Bytes>) -> Result<bool, Error> {
        self.run(commands::append(key, value))
    }

    /// [`crate::Memcache::prepend`]: add bytes before the value (`Ok(false)` if missing).
    fn prepend(&self, key: impl AsKey, value: impl Into<Bytes>) -> Result<bool, Error> {
        self.run(commands::prepend(key, value))
    }

    /// [`crate::Memcache::cas`]: store if the cas unique is still `cas`.
    fn cas<V: Into<Bytes>>(
        &self,
        key: impl AsKey,
        value: V,
        exptime: i32,
        cas: u64,
    ) -> Result<StoreStatus, Error> {
        self.run(commands::cas(key, value, exptime, cas))
    }

    /// [`crate::Memcache::delete`]: `Ok(false)` if the key was missing.
    fn delete(&self, key: impl AsKey) -> Result<bool, Error> {
        self.run(commands::delete(key))
    }

    /// [`crate::Memcache::incr`]: the new value, or `None` if the key is missing.
    fn incr(&self, key: impl AsKey, delta: u64) -> Result<Option<u64>, Error> {
        self.run(commands::incr(key, delta))
    }

    /// [`crate::Memcache::decr`]: the new value (never below 0), or `None` if missing.
    fn decr(&self, key: impl AsKey, delta: u64) -> Result<Option<u64>, Error> {
        self.run(commands::decr(key, delta))
    }

    /// [`crate::Memcache::touch`]: `Ok(false)` if the key is missing.
    fn touch(&self, key: impl AsKey, exptime: i32) -> Result<bool, Error> {
        self.run(commands::touch(key, exptime))
    }

    /// [`crate::Memcache::flush_all`]: invalidate every item now, or after `delay` seconds.
    fn flush_all(&self, delay: Option<i32>) -> Result<(), Error> {
        self.run(Ok(commands::flush_all(delay)))
    }

    /// [`crate::Memcache::version`]: the server's version string.
    fn version(&self) -> Result<String, Error> {
        self.run(Ok(commands::version()))
    }

    /// [`crate::Memcache::verbosity`]: `verbosity <level>`.
    fn verbosity(&self, level: u32) -> Result<(), Error> {
        self.run(Ok(commands::verbosity(level)))
    }

    /// [`crate::Memcache::stats`]: the `STAT` lines.
    fn stats(&self, args: Option<&str>) -> Result<Vec<Stat>, Error> {
        self.run(Ok(commands::stats(args)))
    }

    /// [`crate::Memcache::meta_get`]: `mg` with typed flags.
    fn meta_get(&self, key: impl AsKey, flags: MetaGetFlags) -> Result<MetaResponse, Error> {
        self.run(commands::meta_get(key, flags))
    }

    /// [`crate::Memcache::meta_set`]: `ms` with typed flags.
    fn meta_set(
        &self,
        key: impl AsKey,
        value: impl Into<Bytes>,
        flags: MetaSetFlags,
    ) -> Result<MetaResponse, Error> {
        self.run(commands::meta_set(key, value, flags))
    }

    /// [`crate::Memcache::meta_delete`]: `md` with typed flags.
    fn meta_delete(&self, key: impl AsKey, flags: MetaDeleteFlags) -> Result<MetaResponse, Error> {
        self.run(commands::meta_delete(key, flags))
    }

    /// [`crate::Memcache::meta_arithmetic`]: `ma` with typed flags.
    fn meta_arithmetic(
        &self,
        key: impl AsKey,
        flags: MetaArithmeticFlags,
    ) -> Result<MetaResponse, Error> {
        self.run(commands::meta_arithmetic(key, flags))
    }

    /// [`crate::Memcache::meta_noop`]: `mn`, a round trip that does nothing.
    fn meta_noop(&self) -> Result<(), Error> {
        self.run(Ok(commands::meta_noop()))
    }

    /// [`crate::Memcache::meta_debug`]: `me`, debug facts about an item (`None` on a miss).
    fn meta_debug(&self, key: impl AsKey) -> Result<Option<Bytes>, Error> {
        self.run(commands::meta_debug(key))
    }
}

#[cfg(test)]
mod tests {
    /// The methods a trait's source declares (`fn name`), in order.
    fn methods(source: &str) -> Vec<&str> {
        let body = source
            .split("pub trait Memcache")
            .nth(1)
            .unwrap_or_default();
        let body = body.split("\n}\n").next().unwrap_or_default();
        body.split("    fn ")
            .skip(1)
            .filter_map(|rest| rest.split(['(', '<']).next())
            .collect()
    }

    /// Every operation of the async trait has its blocking twin, in the same order: a command
    /// added to one form and not the other fails here.
    #[test]
    fn every_async_operation_has_a_blocking_twin() {
        let from_async = methods(include_str!("../memcache.rs"));
        let blocking = methods(include_str!("memcache.rs"));
        assert!(from_async.len() > 25, "{from_async:?}");
        let blocking: Vec<&str> = blocking.into_iter().filter(|m| *m != "run").collect();
        assert_eq!(blocking, from_async);
    }
}
