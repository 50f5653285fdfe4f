//! [`Memcache`]: the typed memcached API as an async trait with one required method.
//!
//! A transport implements [`Memcache::execute`] (send one request, wait for its reply) and gets
//! every typed operation as a provided method. Each operation is one line over the definition
//! of the same name in [`mcache_proto::commands`], where the request it sends and the meaning
//! of its reply are written once for every calling convention: keys are validated before
//! anything is sent, and replies that mean failure become typed errors.

use bytes::Bytes;
use mcache_proto::commands::{self, Call, Finish};
use mcache_proto::text::request::Store;
use mcache_proto::{
    AsKey, Error, MetaArithmeticFlags, MetaDeleteFlags, MetaGetFlags, MetaResponse, MetaSetFlags,
    Request, Response, Stat, StoreStatus, Value,
};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The typed memcached API, for any transport that can execute a [`Request`].
///
/// ```no_run
/// use mcache_client::Memcache;
///
/// async fn demo(cache: &impl Memcache) -> Result<(), mcache_client::Error> {
///     cache.set("greeting", "hello", 60).await?;
///     let v = cache.get("greeting").await?;
///     assert_eq!(v.map(|v| v.data), Some("hello".into()));
///     let both = cache.get_multi(["greeting", "farewell"]).await?;
///     assert_eq!(both.len(), 2);
///     Ok(())
/// }
/// ```
pub trait Memcache: Sync {
    /// Sends one request and waits for its reply. Server error lines come back as
    /// `Err(Error::Client | Error::Server | Error::Protocol)`.
    ///
    /// The typed methods call `execute` when they are called, not when their future is first
    /// polled: like any future, the one returned must send nothing before it is polled (an
    /// `async fn` or `async move` block does that by itself).
    fn execute(&self, request: Request) -> impl Future<Output = Result<Response, Error>> + Send;

    /// `get`: the value of `key`, if present.
    fn get(&self, key: impl AsKey) -> impl Future<Output = Result<Option<Value>, Error>> + Send {
        run(self, commands::get(key))
    }

    /// `gets`: the value of `key` with its cas unique.
    fn gets(&self, key: impl AsKey) -> impl Future<Output = Result<Option<Value>, Error>> + Send {
        run(self, commands::gets(key))
    }

    /// `get` of many keys in one request: one entry per key, in the order given.
    fn get_multi<K: AsKey>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> impl Future<Output = Result<Vec<Option<Value>>, Error>> + Send {
        run(self, commands::get_multi(keys))
    }

    /// `gets` of many keys: one entry per key, in the order given, with cas uniques.
    fn gets_multi<K: AsKey>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> impl Future<Output = Result<Vec<Option<Value>>, Error>> + Send {
        run(self, commands::gets_multi(keys))
    }

    /// `gat`: get and set a new expiration.
    fn gat(
        &self,
        exptime: i32,
        key: impl AsKey,
    ) -> impl Future<Output = Result<Option<Value>, Error>> + Send {
        run(self, commands::gat(exptime, key))
    }

    /// `gats`: get with cas and set a new expiration.
    fn gats(
        &self,
        exptime: i32,
        key: impl AsKey,
    ) -> impl Future<Output = Result<Option<Value>, Error>> + Send {
        run(self, commands::gats(exptime, key))
    }

    /// Any storage command with every option (flags, `noreply`).
    fn store(&self, store: Store) -> impl Future<Output = Result<StoreStatus, Error>> + Send {
        run(self, Ok(commands::store(store)))
    }

    /// `set`: store unconditionally.
    fn set(
        &self,
        key: impl AsKey,
        value: impl Into<Bytes>,
        exptime: i32,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        run(self, commands::set(key, value, exptime))
    }

    /// `add`: store if absent. `Ok(false)` if the key exists.
    fn add(
        &self,
        key: impl AsKey,
        value: impl Into<Bytes>,
        exptime: i32,
    ) -> impl Future<Output = Result<bool, Error>> + Send {
        run(self, commands::add(key, value, exptime))
    }

    /// `replace`: store if present. `Ok(false)` if the key is missing.
    fn replace(
        &self,
        key: impl AsKey,
        value: impl Into<Bytes>,
        exptime: i32,
    ) -> impl Future<Output = Result<bool, Error>> + Send {
        run(self, commands::replace(key, value, exptime))
    }

    /// `append`: add bytes after the value. `Ok(false)` if the key is missing.
    fn append(
        &self,
        key: impl AsKey,
        value: impl Into<Bytes>,
    ) -> impl Future<Output = Result<bool, Error>> + Send {
        run(self, commands::append(key, value))
    }

    /// `prepend`: add bytes before the value. `Ok(false)` if the key is missing.
    fn prepend(
        &self,
        key: impl AsKey,
        value: impl Into<Bytes>,
    ) -> impl Future<Output = Result<bool, Error>> + Send {
        run(self, commands::prepend(key, value))
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
        run(self, commands::cas(key, value, exptime, cas))
    }

    /// `delete`: `Ok(false)` if the key was missing.
    fn delete(&self, key: impl AsKey) -> impl Future<Output = Result<bool, Error>> + Send {
        run(self, commands::delete(key))
    }

    /// `incr`: the new value, or `None` if the key is missing.
    fn incr(
        &self,
        key: impl AsKey,
        delta: u64,
    ) -> impl Future<Output = Result<Option<u64>, Error>> + Send {
        run(self, commands::incr(key, delta))
    }

    /// `decr`: the new value (never below 0), or `None` if the key is missing.
    fn decr(
        &self,
        key: impl AsKey,
        delta: u64,
    ) -> impl Future<Output = Result<Option<u64>, Error>> + Send {
        run(self, commands::decr(key, delta))
    }

    /// `touch`: `Ok(false)` if the key is missing.
    fn touch(
        &self,
        key: impl AsKey,
        exptime: i32,
    ) -> impl Future<Output = Result<bool, Error>> + Send {
        run(self, commands::touch(key, exptime))
    }

    /// `flush_all [delay]`: invalidate every item now, or after `delay` seconds.
    fn flush_all(&self, delay: Option<i32>) -> impl Future<Output = Result<(), Error>> + Send {
        run(self, Ok(commands::flush_all(delay)))
    }

    /// `version`: the server's version string.
    fn version(&self) -> impl Future<Output = Result<String, Error>> + Send {
        run(self, Ok(commands::version()))
    }

    /// `verbosity <level>`.
    fn verbosity(&self, level: u32) -> impl Future<Output = Result<(), Error>> + Send {
        run(self, Ok(commands::verbosity(level)))
    }

    /// `stats [<args>]`: the `STAT` lines (`stats reset` gives an empty list).
    fn stats(&self, args: Option<&str>) -> impl Future<Output = Result<Vec<Stat>, Error>> + Send {
        run(self, Ok(commands::stats(args)))
    }

    /// `mg`: meta get with typed flags.
    fn meta_get(
        &self,
        key: impl AsKey,
        flags: MetaGetFlags,
    ) -> impl Future<Output = Result<MetaResponse, Error>> + Send {
        run(self, commands::meta_get(key, flags))
    }

    /// `ms`: meta set with typed flags.
    fn meta_set(
        &self,
        key: impl AsKey,
        value: impl Into<Bytes>,
        flags: MetaSetFlags,
    ) -> impl Future<Output = Result<MetaResponse, Error>> + Send {
        run(self, commands::meta_set(key, value, flags))
    }

    /// `md`: meta delete with typed flags.
    fn meta_delete(
        &self,
        key: impl AsKey,
        flags: MetaDeleteFlags,
    ) -> impl Future<Output = Result<MetaResponse, Error>> + Send {
        run(self, commands::meta_delete(key, flags))
    }

    /// `ma`: meta arithmetic with typed flags.
    fn meta_arithmetic(
        &self,
        key: impl AsKey,
        flags: MetaArithmeticFlags,
    ) -> impl Future<Output = Result<MetaResponse, Error>> + Send {
        run(self, commands::meta_arithmetic(key, flags))
    }

    /// `mn`: a round trip that does nothing.
    fn meta_noop(&self) -> impl Future<Output = Result<(), Error>> + Send {
        run(self, Ok(commands::meta_noop()))
    }

    /// `me`: debug facts about an item (`None` on a miss), as the server prints them.
    fn meta_debug(
        &self,
        key: impl AsKey,
    ) -> impl Future<Output = Result<Option<Bytes>, Error>> + Send {
        run(self, commands::meta_debug(key))
    }
}

/// Runs one command over `cache`: an invalid argument fails without sending, a call whose
/// result is known is not sent, any other is one [`Memcache::execute`] and its reply finished.
///
/// `execute` is called here, when the typed method is, but its future sends nothing until it
/// is first polled. A hand-made future rather than an `async fn`: one holds the request until
/// `execute` takes it, and then `execute`'s future besides, for the whole call.
fn run<M, T, F>(
    cache: &M,
    call: Result<Call<T, F>, Error>,
) -> impl Future<Output = Result<T, Error>> + Send + '_
where
    M: Memcache + ?Sized,
    T: Send + 'static,
    F: Finish<T> + Send + 'static,
{
    match call {
        Ok(Call::Send { request, finish }) => Run::Sending {
            sending: cache.execute(request),
            finish: Some(finish),
        },
        Ok(Call::Ready(value)) => Run::Done {
            result: Some(Ok(value)),
        },
        Err(e) => Run::Done {
            result: Some(Err(e)),
        },
    }
}

/// The error of a call's future polled again after it returned its result.
pub(crate) fn polled_after_finished() -> Error {
    Error::Unavailable("a call polled after it finished".into())
}

pin_project_lite::pin_project! {
    /// The future of [`run`].
    #[project = RunProj]
    enum Run<Fut, T, F> {
        /// Sending the request; `finish` turns its reply into the result.
        Sending {
            #[pin]
            sending: Fut,
            finish: Option<F>,
        },
        /// The result known without sending (taken when returned).
        Done { result: Option<Result<T, Error>> },
    }
}

impl<Fut, T, F> Future for Run<Fut, T, F>
where
    Fut: Future<Output = Result<Response, Error>>,
    F: Finish<T>,
{
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let polled_again = || Err(polled_after_finished());
        match self.project() {
            RunProj::Sending { sending, finish } => {
                let reply = std::task::ready!(sending.poll(cx));
                Poll::Ready(match finish.take() {
                    Some(finish) => reply.and_then(|r| finish.finish(r)),
                    None => polled_again(),
                })
            }
            RunProj::Done { result } => Poll::Ready(result.take().unwrap_or_else(polled_again)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcache_proto::{Key, Limits};
    use std::pin::pin;
    use std::sync::Mutex;
    use std::task::{Context, Poll, Waker};

    /// A transport that records what it is asked to send and answers with `reply`.
    struct Fake {
        sent: Mutex<Vec<Vec<u8>>>,
        reply: fn() -> Result<Response, Error>,
    }

    impl Fake {
        fn new(reply: fn() -> Result<Response, Error>) -> Self {
            Fake {
                sent: Mutex::new(Vec::new()),
                reply,
            }
        }

        fn sent(&self) -> Vec<Vec<u8>> {
            self.sent.lock().unwrap().clone()
        }
    }

    impl Memcache for Fake {
        async fn execute(&self, request: Request) -> Result<Response, Error> {
            let bytes = request.to_bytes(&Limits::default())?;
            self.sent.lock().unwrap().push(bytes);
            (self.reply)()
        }
    }

    /// Polls a future that never waits (the fake answers at once) to its end.
    fn now<T>(future: impl Future<Output = T> + Send) -> T {
        let mut cx = Context::from_waker(Waker::noop());
        match pin!(future).poll(&mut cx) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("the fake transport never waits"),
        }
    }

    fn value(key: &str) -> Value {
        Value {
            key: Key::new(key).unwrap(),
            flags: 0,
            cas: None,
            data: Bytes::from_static(b"v"),
        }
    }

    #[test]
    fn operations_send_their_request_and_finish_the_reply() {
        let cache = Fake::new(|| Ok(Response::Values(vec![value("a"), value("c")])));
        let got = now(cache.get_multi(["a", "b", "c"])).unwrap();
        assert_eq!(got, vec![Some(value("a")), None, Some(value("c"))]);
        assert_eq!(cache.sent(), vec![b"get a b c\r\n".to_vec()]);

        let cache = Fake::new(|| Ok(Response::NotStored));
        assert_eq!(now(cache.add("k", "v", 0)), Ok(false));
        assert!(matches!(
            now(cache.set("k", "v", 0)),
            Err(Error::UnexpectedResponse { command: "set", .. })
        ));
    }

    #[test]
    fn nothing_is_sent_for_bad_keys_or_no_keys() {
        let cache = Fake::new(|| panic!("nothing to send"));
        assert_eq!(now(cache.gets_multi(Vec::<String>::new())), Ok(Vec::new()));
        assert!(now(cache.get("two words")).is_err());
        assert!(cache.sent().is_empty());
    }

    /// Compiles only if every operation's future is `Send` for any implementation.
    #[allow(dead_code)]
    fn futures_are_send<M: Memcache>(cache: &M) {
        fn send<T: Send>(_: T) {}
        send(cache.get_multi(["a"]));
        send(cache.store(Store {
            command: mcache_proto::text::request::StoreCommand::Set,
            key: Key::new("k").unwrap(),
            flags: 0,
            exptime: 0,
            value: Bytes::new(),
            noreply: true,
        }));
        send(cache.stats(Some("items")));
        send(cache.meta_get(String::from("k"), MetaGetFlags::default()));
    }

    #[test]
    fn transport_errors_pass_through() {
        let cache = Fake::new(|| Err(Error::Timeout));
        assert_eq!(now(cache.version()), Err(Error::Timeout));
        assert_eq!(now(cache.delete("k")), Err(Error::Timeout));
    }
}
