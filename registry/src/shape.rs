//! Shapes: which results of a memoized function are cached, as what, and which are negative.
//!
//! `#[memoize]` picks the shape from the return type: `Result<T, E>` caches `Ok(T)` (and with
//! `cache_err` the whole `Result`), `Option<T>` caches `Some(T)` (with `cache_none` the whole
//! `Option`), anything else is cached as it is. `Result<..>`/`Option<..>` as written (any
//! path ending so: `io::Result<T>`) and `result = true`/`option = true` pick the first two; any
//! other return type is checked by type at compile time (is it a `Result` or an `Option` once
//! aliases are resolved?), so that an alias (`type AppResult<T> = Result<T, AppError>`) is refused
//! until `result = true` says what it is, instead of having its errors cached. The stored
//! *entry* is what the key registry's `cached` returns and `replace` takes.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::marker::PhantomData;

/// How a function's output maps to the entry stored in memcached.
pub trait Shape {
    /// What the function returns.
    type Output;
    /// What is stored.
    type Entry: Serialize + DeserializeOwned;
    /// The entry to store for `output` and whether it is negative (`None`, `Err`), or `None`
    /// when this output is not cached.
    fn entry(output: &Self::Output) -> Option<(&Self::Entry, bool)>;
    /// The output a stored entry stands for.
    fn output(entry: Self::Entry) -> Self::Output;
    /// Whether an entry is negative (gets the negative time to live).
    fn is_negative(entry: &Self::Entry) -> bool;
}

/// A `Result`, whatever its alias (`io::Result<T>`, `anyhow::Result<T>`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a `Result`, but #[memoize] reads it as one",
    note = "`result = true` is for a `Result` under another name; for any other type, leave it out (or say `result = false`)"
)]
pub trait ResultLike {
    /// The success type.
    type Ok;
    /// The error type.
    type Err;
    /// The value if this is `Ok`.
    fn ok_ref(&self) -> Option<&Self::Ok>;
    /// `Ok(value)`.
    fn from_ok(value: Self::Ok) -> Self;
    /// Whether this is `Err`.
    fn is_err(&self) -> bool;
}

impl<T, E> ResultLike for Result<T, E> {
    type Ok = T;
    type Err = E;
    fn ok_ref(&self) -> Option<&T> {
        self.as_ref().ok()
    }
    fn from_ok(value: T) -> Self {
        Ok(value)
    }
    fn is_err(&self) -> bool {
        Result::is_err(self)
    }
}

/// An `Option`, whatever its alias.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an `Option`, but #[memoize] reads it as one",
    note = "`option = true` is for an `Option` under another name; for any other type, leave it out (or say `option = false`)"
)]
pub trait OptionLike {
    /// The value type.
    type Some;
    /// The value if this is `Some`.
    fn some_ref(&self) -> Option<&Self::Some>;
    /// `Some(value)`.
    fn from_some(value: Self::Some) -> Self;
    /// Whether this is `None`.
    fn is_none(&self) -> bool;
}

impl<T> OptionLike for Option<T> {
    type Some = T;
    fn some_ref(&self) -> Option<&T> {
        self.as_ref()
    }
    fn from_some(value: T) -> Self {
        Some(value)
    }
    fn is_none(&self) -> bool {
        Option::is_none(self)
    }
}

/// Every output is cached as it is.
pub struct Plain<R>(PhantomData<fn() -> R>);

impl<R: Serialize + DeserializeOwned> Shape for Plain<R> {
    type Output = R;
    type Entry = R;
    fn entry(output: &R) -> Option<(&R, bool)> {
        Some((output, false))
    }
    fn output(entry: R) -> R {
        entry
    }
    fn is_negative(_: &R) -> bool {
        false
    }
}

/// `Ok(T)` is cached as `T`; errors are not cached.
pub struct OkOnly<R>(PhantomData<fn() -> R>);

impl<R> Shape for OkOnly<R>
where
    R: ResultLike,
    R::Ok: Serialize + DeserializeOwned,
{
    type Output = R;
    type Entry = R::Ok;
    fn entry(output: &R) -> Option<(&R::Ok, bool)> {
        output.ok_ref().map(|v| (v, false))
    }
    fn output(entry: R::Ok) -> R {
        R::from_ok(entry)
    }
    fn is_negative(_: &R::Ok) -> bool {
        false
    }
}

/// The whole `Result` is cached; `Err` is negative (`cache_err`).
pub struct OkOrErr<R>(PhantomData<fn() -> R>);

impl<R> Shape for OkOrErr<R>
where
    R: ResultLike + Serialize + DeserializeOwned,
{
    type Output = R;
    type Entry = R;
    fn entry(output: &R) -> Option<(&R, bool)> {
        Some((output, output.is_err()))
    }
    fn output(entry: R) -> R {
        entry
    }
    fn is_negative(entry: &R) -> bool {
        entry.is_err()
    }
}

/// `Some(T)` is cached as `T`; `None` is not cached.
pub struct SomeOnly<R>(PhantomData<fn() -> R>);

impl<R> Shape for SomeOnly<R>
where
    R: OptionLike,
    R::Some: Serialize + DeserializeOwned,
{
    type Output = R;
    type Entry = R::Some;
    fn entry(output: &R) -> Option<(&R::Some, bool)> {
        output.some_ref().map(|v| (v, false))
    }
    fn output(entry: R::Some) -> R {
        R::from_some(entry)
    }
    fn is_negative(_: &R::Some) -> bool {
        false
    }
}

/// The whole `Option` is cached; `None` is negative (`cache_none`).
pub struct SomeOrNone<R>(PhantomData<fn() -> R>);

impl<R> Shape for SomeOrNone<R>
where
    R: OptionLike + Serialize + DeserializeOwned,
{
    type Output = R;
    type Entry = R;
    fn entry(output: &R) -> Option<(&R, bool)> {
        Some((output, output.is_none()))
    }
    fn output(entry: R) -> R {
        entry
    }
    fn is_negative(entry: &R) -> bool {
        entry.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let ok: Result<u8, String> = Ok(1);
        let err: Result<u8, String> = Err("e".into());
        assert_eq!(OkOnly::<Result<u8, String>>::entry(&ok), Some((&1, false)));
        assert!(OkOnly::<Result<u8, String>>::entry(&err).is_none());
        assert_eq!(
            OkOrErr::<Result<u8, String>>::entry(&err).map(|e| e.1),
            Some(true)
        );
        assert_eq!(SomeOnly::<Option<u8>>::entry(&None), None);
        assert_eq!(SomeOrNone::<Option<u8>>::entry(&None), Some((&None, true)));
        assert_eq!(SomeOnly::<Option<u8>>::output(4), Some(4));
        assert_eq!(Plain::<u8>::entry(&3), Some((&3, false)));
    }
}
