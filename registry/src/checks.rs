//! Compile-time checks of what `#[memoize]` expands to: a keyed argument must be `Serialize`,
//! a return type read as plain must not be a `Result` or an `Option` under another name, and
//! an `async` memoized function's cache must not be a blocking one.
//! Each failure is a compiler error whose message says what to write.
//!
//! The checks pick a marker type by which traits a type has ("autoref specialization": for
//! `(&&Probe::<T>::new()).kind()`, an impl on `&Probe<T>` is found before one on `Probe<T>`),
//! then require a trait of the marker with a `#[diagnostic::on_unimplemented]` message. This
//! module owns only those types: nothing here runs at run time but `Keyable::push`.

use crate::{Args, ArgsError};
use serde::Serialize;
use std::marker::PhantomData;

/// A type, for picking what to do with it by which traits it has: `(&&probe).kind()`
/// finds an impl on `&Probe<T>` (the specific one) before one on `Probe<T>` (the rest).
pub struct Probe<T: ?Sized>(PhantomData<T>);

impl<T: ?Sized> Probe<T> {
    /// The probe of a value's type.
    pub fn of(_: &T) -> Probe<T> {
        Probe(PhantomData)
    }

    /// The probe of a named type.
    pub fn new() -> Probe<T> {
        Probe(PhantomData)
    }
}

impl<T: ?Sized> Default for Probe<T> {
    fn default() -> Self {
        Probe::new()
    }
}

/// A keyed argument whose type is `Serialize`.
pub struct Keyable;

/// A keyed argument whose type is not `Serialize` (a compile error, with a message that
/// says what to write).
pub struct NotKeyable;

/// Picks [`Keyable`] for `Serialize` types.
pub trait ProbeKeyable {
    /// The kind of argument.
    fn kind(&self) -> Keyable {
        Keyable
    }
}
impl<T: Serialize + ?Sized> ProbeKeyable for &Probe<T> {}

/// Picks [`NotKeyable`] for other types.
pub trait ProbeNotKeyable {
    /// The kind of argument.
    fn kind(&self) -> NotKeyable {
        NotKeyable
    }
}
impl<T: ?Sized> ProbeNotKeyable for Probe<T> {}

/// What a keyed argument must be.
#[diagnostic::on_unimplemented(
    message = "this argument is part of the cache key, and its type does not implement `serde::Serialize`",
    label = "keyed, but not `Serialize`",
    note = "leave it out of the key with `#[memoize(skip = [name])]` (or list the keyed ones with `key = [...]`), or derive `serde::Serialize` for its type",
    note = "if it is the cache, name it: `#[memoize(cache = name)]`"
)]
pub trait KeyArgument<T: ?Sized> {}
impl<T: ?Sized + Serialize> KeyArgument<T> for Keyable {}

/// Checks a keyed argument: only [`Keyable`] passes.
pub fn key_argument<T: ?Sized, K: KeyArgument<T>>(kind: K, _: &T) -> K {
    kind
}

impl Keyable {
    /// Pushes the argument onto the key.
    pub fn push<T: Serialize + ?Sized>(self, args: &mut Args, value: &T) -> Result<(), ArgsError> {
        args.push(value)
    }
}

impl NotKeyable {
    /// Never reached: [`key_argument`] refuses to compile first.
    pub fn push<T: ?Sized>(self, _: &mut Args, _: &T) -> Result<(), ArgsError> {
        Ok(())
    }
}

/// A return type that is a `Result`, whatever it is called.
pub struct IsResult;
/// A return type that is an `Option`, whatever it is called.
pub struct IsOption;
/// Any other return type: cached as it is.
pub struct IsPlain;

/// Picks [`IsResult`] for `Result`s.
pub trait ProbeResult {
    /// The kind of return type.
    fn kind(&self) -> IsResult {
        IsResult
    }
}
impl<T, E> ProbeResult for &Probe<Result<T, E>> {}

/// Picks [`IsOption`] for `Option`s.
pub trait ProbeOption {
    /// The kind of return type.
    fn kind(&self) -> IsOption {
        IsOption
    }
}
impl<T> ProbeOption for &Probe<Option<T>> {}

/// Picks [`IsPlain`] for the rest.
pub trait ProbePlain {
    /// The kind of return type.
    fn kind(&self) -> IsPlain {
        IsPlain
    }
}
impl<T: ?Sized> ProbePlain for Probe<T> {}

/// A return type that is not a `Result` under another name.
#[diagnostic::on_unimplemented(
    message = "the return type is a `Result` under another name: say so with `#[memoize(result = true)]`",
    label = "a `Result` (through a type alias or re-export)",
    note = "`result = true` caches only `Ok` values, never an `Err` (add `cache_err` to cache errors too); `result = false` caches every value as it is"
)]
pub trait NotAResult {}
impl NotAResult for IsPlain {}
impl NotAResult for IsOption {}

/// A return type that is not an `Option` under another name.
#[diagnostic::on_unimplemented(
    message = "the return type is an `Option` under another name: say so with `#[memoize(option = true)]`",
    label = "an `Option` (through a type alias or re-export)",
    note = "`option = true` caches only `Some` values, never `None` (add `cache_none` to cache `None` too); `option = false` caches every value as it is"
)]
pub trait NotAnOption {}
impl NotAnOption for IsPlain {}
impl NotAnOption for IsResult {}

/// Checks that a return type `#[memoize]` reads as plain is not a `Result` or an `Option`
/// under another name (whose `Err`/`None` would be cached).
pub fn plain_return<K: NotAResult + NotAnOption>(_: K) {}

/// A memoized function's cache that fits the async form (any cache but a blocking one).
pub struct IsAsyncCache;

/// A blocking cache ([`Cache<Blocking>`](crate::blocking::Blocking)): a compile error in the
/// async form, whose futures it would block.
pub struct IsBlockingCache;

/// Picks [`IsBlockingCache`] for a blocking cache.
pub trait ProbeBlockingCache {
    /// The kind of cache.
    fn form(&self) -> IsBlockingCache {
        IsBlockingCache
    }
}
#[cfg(feature = "blocking")]
impl<C: crate::blocking::BlockingBackend> ProbeBlockingCache for &Probe<Option<&crate::Cache<C>>> {}

/// Picks [`IsAsyncCache`] for the rest.
pub trait ProbeAsyncCache {
    /// The kind of cache.
    fn form(&self) -> IsAsyncCache {
        IsAsyncCache
    }
}
impl<T: ?Sized> ProbeAsyncCache for Probe<T> {}

/// What the cache of an `async` memoized function must be.
#[diagnostic::on_unimplemented(
    message = "this cache is blocking: `#[memoize]` makes the function `async`, and a blocking cache would block its executor",
    label = "a `Cache<Blocking>`",
    note = "keep a plain `fn` plain with `mcache_registry::blocking::memoize` (its calls block, as its cache does)",
    note = "or, in async code, give it an async client's cache (`mcache_registry::tokio::Client`)"
)]
pub trait AsyncForm {}
impl AsyncForm for IsAsyncCache {}

/// Checks the cache of an `async` memoized function: only [`IsAsyncCache`] passes.
pub fn async_form<K: AsyncForm>(_: K) {}
