//! The attribute's options: `cache`, `ttl`, `ttl_fn`, `negative_ttl`, `version`, `key` (a
//! list of arguments or an expression; `convert` is the same), `skip`, `self_key`,
//! `skip_self`, `result`, `option`, `cache_none`, `cache_err`.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::parse::Parser;
use syn::{Expr, ExprArray, Ident, Lit, LitBool};

/// Which arguments form the key.
#[derive(Clone)]
pub(crate) enum KeySpec {
    /// `key = [a, b]`: these arguments.
    Args(Vec<Ident>),
    /// `key = <expr>` / `convert = <expr>`: the value of an expression over the arguments.
    Expr(Expr),
}

#[derive(Default, Clone)]
pub(crate) struct Options {
    pub(crate) cache: Option<Expr>,
    /// The cache expression came from the `impl` block.
    pub(crate) cache_inherited: bool,
    pub(crate) ttl_fn: Option<Expr>,
    /// `result = true/false`: the return type is (not) a `Result`, whatever it is called.
    pub(crate) result: Option<bool>,
    /// `option = true/false`: the same for `Option`.
    pub(crate) option: Option<bool>,
    pub(crate) ttl: Option<TokenStream>,
    pub(crate) negative_ttl: Option<TokenStream>,
    pub(crate) version: Option<u32>,
    pub(crate) key: Option<KeySpec>,
    pub(crate) skip: Option<Vec<Ident>>,
    pub(crate) self_key: Option<Vec<Expr>>,
    pub(crate) skip_self: bool,
    pub(crate) cache_none: bool,
    pub(crate) cache_err: bool,
    /// The blocking form (`mcache_registry::blocking::memoize`): set by the attribute, never
    /// written as an option. A plain `fn` stays plain and its cache must be blocking.
    pub(crate) blocking: bool,
}

/// `60` (seconds) or any constant expression of type `Duration`.
fn duration(e: Expr) -> syn::Result<TokenStream> {
    if let Expr::Lit(l) = &e {
        if let Lit::Int(i) = &l.lit {
            let secs: u64 = i.base10_parse()?;
            return Ok(quote!(::mcache_registry::__private::Duration::from_secs(#secs)));
        }
        return Err(syn::Error::new_spanned(
            e,
            "expected whole seconds (`ttl = 60`) or a constant `Duration` expression",
        ));
    }
    Ok(quote!(#e))
}

fn idents(e: Expr, what: &str) -> syn::Result<Vec<Ident>> {
    let Expr::Array(ExprArray { elems, .. }) = e else {
        return Err(syn::Error::new_spanned(
            e,
            format!("expected `{what} = [arg, ...]`"),
        ));
    };
    elems
        .into_iter()
        .map(|e| match e {
            Expr::Path(p) if p.qself.is_none() => p
                .path
                .get_ident()
                .cloned()
                .ok_or_else(|| syn::Error::new_spanned(p, "expected an argument name")),
            other => Err(syn::Error::new_spanned(other, "expected an argument name")),
        })
        .collect()
}

/// `[a, b]` of plain names is a list of arguments; anything else is a key expression.
fn key_spec(e: Expr) -> KeySpec {
    if let Expr::Array(ExprArray { elems, .. }) = &e {
        let names: Option<Vec<Ident>> = elems
            .iter()
            .map(|e| match e {
                Expr::Path(p) if p.qself.is_none() && p.attrs.is_empty() => {
                    p.path.get_ident().cloned()
                }
                _ => None,
            })
            .collect();
        if let Some(names) = names {
            return KeySpec::Args(names);
        }
    }
    KeySpec::Expr(e)
}

impl Options {
    pub(crate) fn parse(attr: TokenStream) -> syn::Result<Options> {
        let mut o = Options::default();
        let parser = syn::meta::parser(|meta| {
            let name = meta
                .path
                .get_ident()
                .map(ToString::to_string)
                .unwrap_or_default();
            match name.as_str() {
                "cache" => o.cache = Some(meta.value()?.parse()?),
                "ttl" => o.ttl = Some(duration(meta.value()?.parse()?)?),
                "negative_ttl" => o.negative_ttl = Some(duration(meta.value()?.parse()?)?),
                "version" => {
                    let lit: syn::LitInt = meta.value()?.parse()?;
                    o.version = Some(lit.base10_parse()?);
                }
                "key" | "convert" => {
                    if o.key.is_some() {
                        return Err(meta.error("give `key = ...` (or `convert = ...`) once"));
                    }
                    o.key = Some(key_spec(meta.value()?.parse()?))
                }
                "ttl_fn" => o.ttl_fn = Some(meta.value()?.parse()?),
                "result" => o.result = Some(meta.value()?.parse::<LitBool>()?.value),
                "option" => o.option = Some(meta.value()?.parse::<LitBool>()?.value),
                "skip" => o.skip = Some(idents(meta.value()?.parse()?, "skip")?),
                "self_key" => {
                    let e: Expr = meta.value()?.parse()?;
                    let Expr::Array(a) = e else {
                        return Err(meta.error("expected `self_key = [self.field, ...]`"));
                    };
                    o.self_key = Some(a.elems.into_iter().collect());
                }
                "skip_self" => o.skip_self = true,
                "cache_none" => o.cache_none = true,
                "cache_err" => o.cache_err = true,
                _ => {
                    return Err(meta.error(
                        "unknown #[memoize] option; expected one of: cache, ttl, ttl_fn, negative_ttl, version, key (or convert), skip, self_key, skip_self, result, option, cache_none, cache_err",
                    ))
                }
            }
            Ok(())
        });
        parser.parse2(attr)?;
        if o.key.is_some() && o.skip.is_some() {
            return Err(syn::Error::new(
                Span::call_site(),
                "#[memoize]: give `key = [...]` or `skip = [...]`, not both",
            ));
        }
        if o.result == Some(true) && o.option == Some(true) {
            return Err(syn::Error::new(
                Span::call_site(),
                "#[memoize]: a return type is a `Result` or an `Option`, not both: give `result = true` or `option = true`",
            ));
        }
        if o.self_key.is_some() && o.skip_self {
            return Err(syn::Error::new(
                Span::call_site(),
                "#[memoize]: give `self_key = [...]` or `skip_self`, not both",
            ));
        }
        Ok(o)
    }

    /// Per-method options over the `impl` block's (only `cache` and `ttl` are inherited; the
    /// form is the block's attribute's).
    pub(crate) fn over(mut self, block: &Options) -> Options {
        self.blocking = block.blocking;
        if self.cache.is_none() {
            self.cache = block.cache.clone();
            self.cache_inherited = self.cache.is_some();
        }
        if self.ttl.is_none() {
            self.ttl = block.ttl.clone();
        }
        self
    }

    /// Options that make no sense on an `impl` block.
    pub(crate) fn check_block(&self) -> syn::Result<()> {
        let bad = self.negative_ttl.is_some()
            || self.ttl_fn.is_some()
            || self.result.is_some()
            || self.option.is_some()
            || self.version.is_some()
            || self.key.is_some()
            || self.skip.is_some()
            || self.self_key.is_some()
            || self.skip_self
            || self.cache_none
            || self.cache_err;
        if bad {
            return Err(syn::Error::new(
                Span::call_site(),
                "#[memoize] on an impl block takes only `cache` and `ttl` (defaults for its methods); put the other options on each method",
            ));
        }
        Ok(())
    }
}
