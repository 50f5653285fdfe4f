//! `mcache-registry-macros`: the `#[memoize]` attribute of
//! [mcache-registry](https://docs.rs/mcache-registry). Use it through that crate
//! (`mcache_registry::memoize`); its documentation is there.
//!
//! This crate only parses and emits: every piece of behaviour lives in the registry's
//! `__private` functions that the expansion calls. It must never decide anything about keys,
//! values or memcached.

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod expand;
mod options;
mod plan;

use proc_macro::TokenStream;
use syn::{parse_macro_input, Item};

/// Memoizes a function, or the methods marked `#[memoize(...)]` of an inherent `impl` block,
/// in memcached, and generates its key registry.
///
/// Options: `cache = <expr>`, `ttl = <secs or Duration>`, `ttl_fn = <Fn(&Entry) -> Duration>`,
/// `version = <n>`, `key = [args]` or `skip = [args]`, `key = <expr>` (or `convert = <expr>`),
/// `self_key = [self.field, ...]` or `skip_self` (required on methods), `result = <bool>`,
/// `option = <bool>`, `cache_none`, `cache_err`, `negative_ttl = <secs or Duration>`. On an
/// `impl` block: `cache` and `ttl`, as defaults for its methods.
///
/// For a free function `f`: `f` becomes `async` (`mcache_registry::blocking::memoize` keeps a
/// plain `fn` plain) and memoized, and a struct `f` holds the
/// registry (`f::key`, `f::is_cached`, `f::cached`, `f::replace`, `f::invalidate`,
/// `f::refresh` (taking `f`'s own arguments), `f::invalidate_all`, `f::FUNCTION`). For a method `m`: `m_key`,
/// `m_is_cached`, … on the same type. The crate documentation of `mcache_registry` describes
/// the keys, values and guarantees.
#[proc_macro_attribute]
pub fn memoize(attr: TokenStream, item: TokenStream) -> TokenStream {
    memoize_with(attr, item, false)
}

/// `mcache_registry::blocking::memoize` (feature `blocking` of `mcache-registry`): the same
/// attribute for plain functions, which stay plain. The function and its key registry's
/// helpers block on the calling thread; its cache must be a blocking one
/// (`Cache<mcache_registry::blocking::Blocking>`). Keys, values and guarantees are the async
/// form's.
#[proc_macro_attribute]
pub fn memoize_blocking(attr: TokenStream, item: TokenStream) -> TokenStream {
    memoize_with(attr, item, true)
}

/// The attribute in either form (`blocking`: plain functions stay plain).
fn memoize_with(attr: TokenStream, item: TokenStream, blocking: bool) -> TokenStream {
    let item = parse_macro_input!(item as Item);
    let options = options::Options::parse(attr.into()).map(|o| options::Options { blocking, ..o });
    let out = match item {
        Item::Fn(f) => options.and_then(|o| expand::free_fn(o, f)),
        Item::Impl(i) => options.and_then(|o| expand::impl_block(o, i)),
        other => Err(syn::Error::new_spanned(
            other,
            "#[memoize] goes on a function, or on an inherent `impl` block whose methods are marked #[memoize(...)]",
        )),
    };
    out.unwrap_or_else(syn::Error::into_compile_error).into()
}
