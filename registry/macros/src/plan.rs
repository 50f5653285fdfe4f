//! Reading a memoized function's signature: its parameters, which of them (and of `self`) form
//! the key, and the shape of its result. Every rule that can fail fails here, with a message
//! that says what to write instead.

use crate::options::{KeySpec, Options};
use proc_macro2::{Span, TokenStream, TokenTree};
use quote::quote;
use syn::spanned::Spanned;
use syn::{
    Expr, FnArg, GenericArgument, GenericParam, Ident, Pat, PathArguments, ReturnType, Signature,
    Type,
};

pub(crate) struct Param {
    pub(crate) ident: Ident,
    pub(crate) ty: Type,
}

/// How the method takes `self`.
pub(crate) enum SelfKind {
    /// Not a method.
    None,
    /// `&self`: the cache expression can be borrowed across the call.
    Shared,
    /// `&mut self`, `self`, `self: Box<Self>`…: the cache handle is cloned first.
    Other,
}

/// What the return type is read as.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `Result<..>` as written, or `result = true`: `Ok` cached, `Err` only with `cache_err`.
    Result,
    /// `Option<..>` as written, or `option = true`: `Some` cached, `None` only with
    /// `cache_none`.
    Option,
    /// Anything else, cached as it is. `checked`: nothing said so, so the expansion checks
    /// (by type) that it is not a `Result` or an `Option` under another name.
    Plain { checked: bool },
}

pub(crate) struct Plan {
    pub(crate) name: Ident,
    pub(crate) self_kind: SelfKind,
    pub(crate) params: Vec<Param>,
    /// Parameters the key is made from (the key registry's helpers take these), in
    /// parameter order.
    pub(crate) keyed: Vec<Ident>,
    pub(crate) self_key: Vec<Expr>,
    pub(crate) ret: Type,
    /// `key = <expr>`: the key is this expression's value (over the keyed arguments).
    pub(crate) key_expr: Option<Expr>,
    /// What the return type is read as.
    pub(crate) kind: Kind,
    /// `::mcache_registry::shape::…<Ret>`.
    pub(crate) shape: TokenStream,
    /// What is stored: `T` of `Option<T>`/`Result<T, _>`, or the whole return type.
    pub(crate) entry: TokenStream,
    pub(crate) options: Options,
    /// The parameter named by `cache = <param>`: used by the expansion, maybe not by the body.
    pub(crate) cache_param: Option<Ident>,
}

fn err<T>(span: impl Spanned, msg: &str) -> syn::Result<T> {
    Err(syn::Error::new(span.span(), msg))
}

impl Plan {
    pub(crate) fn new(sig: &Signature, in_impl: bool, options: Options) -> syn::Result<Plan> {
        if let Some(c) = &sig.constness {
            return err(c, "#[memoize] cannot make a `const fn` async");
        }
        if let (Some(a), true) = (&sig.asyncness, options.blocking) {
            return err(
                a,
                "`mcache_registry::blocking::memoize` keeps a plain `fn` plain: an `async fn` takes `mcache_registry::memoize` (and an async client's cache)",
            );
        }
        if let Some(u) = &sig.unsafety {
            return err(
                u,
                "#[memoize] does not support `unsafe fn`: memoize a safe wrapper",
            );
        }
        if let Some(a) = &sig.abi {
            return err(a, "#[memoize] does not support `extern` functions");
        }
        if let Some(v) = &sig.variadic {
            return err(v, "#[memoize] does not support variadic functions");
        }
        for g in &sig.generics.params {
            if !matches!(g, GenericParam::Lifetime(_)) {
                return err(
                    g,
                    "#[memoize] does not support generic type or const parameters: a cache key names one concrete function. Memoize a non-generic wrapper",
                );
            }
        }
        let self_kind = match sig.receiver() {
            None => SelfKind::None,
            Some(r) if !in_impl => {
                return err(
                    r,
                    "#[memoize] on a method needs #[memoize] on its `impl` block too (the key includes the type's path, which only the block shows)",
                )
            }
            Some(r) if r.colon_token.is_none() && r.reference.is_some() && r.mutability.is_none() => {
                SelfKind::Shared
            }
            Some(_) => SelfKind::Other,
        };
        let is_method = !matches!(self_kind, SelfKind::None);
        if is_method && options.self_key.is_none() && !options.skip_self {
            return err(
                &sig.ident,
                "#[memoize] on a method must say how `self` is keyed: `self_key = [self.id, ...]` (the fields that identify it) or `skip_self` (the result does not depend on `self`)",
            );
        }
        if !is_method && (options.self_key.is_some() || options.skip_self) {
            return err(
                &sig.ident,
                "`self_key` and `skip_self` are for methods (functions taking `self`)",
            );
        }

        let mut params = Vec::new();
        for arg in &sig.inputs {
            let FnArg::Typed(pt) = arg else { continue };
            let Pat::Ident(pi) = &*pt.pat else {
                return err(
                    &pt.pat,
                    "#[memoize] needs a plain name for each argument (destructure inside the body)",
                );
            };
            if pi.by_ref.is_some() || pi.subpat.is_some() {
                return err(&pt.pat, "#[memoize] needs a plain name for each argument");
            }
            if contains_impl_trait(&pt.ty) {
                return err(
                    &pt.ty,
                    "#[memoize] does not support `impl Trait` arguments: a cache key names one concrete function",
                );
            }
            params.push(Param {
                ident: pi.ident.clone(),
                ty: (*pt.ty).clone(),
            });
        }

        if let Some(cache) = &options.cache {
            if !is_method && mentions_self(&quote!(#cache)) {
                let name = &sig.ident;
                let from = if options.cache_inherited {
                    "the impl block's"
                } else {
                    "its"
                };
                return err(
                    name,
                    &format!(
                        "`{name}` takes no `self`, so {from} `cache = {}` cannot reach a cache: give it a cache argument and `#[memoize(cache = cache)]` (its key registry then takes the cache too: `Self::{name}_invalidate(&cache, ..)`)",
                        quote!(#cache)
                    ),
                );
            }
        }

        // The parameter the cache comes from (`cache = cache`) is never keyed.
        let cache_param = match &options.cache {
            Some(Expr::Path(p)) if p.qself.is_none() => p.path.get_ident().cloned(),
            _ => None,
        };
        let not_cache = |p: &&Param| Some(&p.ident) != cache_param.as_ref();
        let mut key_expr = None;
        let keyed: Vec<Ident> = match (&options.key, &options.skip) {
            (Some(KeySpec::Expr(e)), None) => {
                // The helpers take the arguments the expression mentions.
                key_expr = Some(e.clone());
                let tokens = quote!(#e);
                params
                    .iter()
                    .filter(not_cache)
                    .filter(|p| mentions(&tokens, &p.ident.to_string()))
                    .map(|p| p.ident.clone())
                    .collect()
            }
            (Some(KeySpec::Expr(e)), Some(_)) => {
                return err(e, "give `key = <expression>` or `skip = [...]`, not both");
            }
            (Some(KeySpec::Args(key)), _) => {
                for k in key {
                    if !params.iter().any(|p| p.ident == *k) {
                        return err(k, "`key` names an argument this function does not have");
                    }
                }
                params
                    .iter()
                    .filter(|p| key.contains(&p.ident))
                    .map(|p| p.ident.clone())
                    .collect()
            }
            (None, Some(skip)) => {
                for k in skip {
                    if !params.iter().any(|p| p.ident == *k) {
                        return err(k, "`skip` names an argument this function does not have");
                    }
                }
                params
                    .iter()
                    .filter(not_cache)
                    .filter(|p| !skip.contains(&p.ident))
                    .map(|p| p.ident.clone())
                    .collect()
            }
            (None, None) => params
                .iter()
                .filter(not_cache)
                .map(|p| p.ident.clone())
                .collect(),
        };

        if options.cache.is_none() {
            if let Some(p) = params
                .iter()
                .find(|p| keyed.contains(&p.ident) && is_cache_type(&p.ty))
            {
                let name = &p.ident;
                return err(
                    name,
                    &format!(
                        "`{name}` is a `Cache`: write `#[memoize(cache = {name})]` to memoize through it. Without `cache = ...`, #[memoize] uses the global cache (`mcache_registry::install_global`) and `{name}` would be part of the key, which a cache cannot be"
                    ),
                );
            }
        }
        let ret: Type = match &sig.output {
            ReturnType::Default => syn::parse_quote!(()),
            ReturnType::Type(_, t) => (**t).clone(),
        };
        if contains_impl_trait(&ret) {
            return err(
                &ret,
                "#[memoize] cannot cache an `impl Trait` result: name the type",
            );
        }
        let (kind, shape, entry) = shape(&ret, &options)?;
        let cache_param = cache_param.filter(|c| params.iter().any(|p| p.ident == *c));
        Ok(Plan {
            name: sig.ident.clone(),
            self_kind,
            params,
            keyed,
            self_key: options.self_key.clone().unwrap_or_default(),
            ret,
            key_expr,
            kind,
            shape,
            entry,
            options,
            cache_param,
        })
    }

    pub(crate) fn is_method(&self) -> bool {
        !matches!(self.self_kind, SelfKind::None)
    }

    /// A name for a generated parameter that no argument uses.
    pub(crate) fn fresh(&self, wanted: &str) -> Ident {
        let mut name = wanted.to_string();
        while self.params.iter().any(|p| p.ident == name) {
            name.insert(0, '_');
        }
        Ident::new(&name, Span::call_site())
    }
}

fn contains_impl_trait(ty: &Type) -> bool {
    match ty {
        Type::ImplTrait(_) => true,
        Type::Reference(r) => contains_impl_trait(&r.elem),
        Type::Paren(p) => contains_impl_trait(&p.elem),
        Type::Slice(s) => contains_impl_trait(&s.elem),
        Type::Array(a) => contains_impl_trait(&a.elem),
        Type::Tuple(t) => t.elems.iter().any(contains_impl_trait),
        Type::Path(p) => p.path.segments.iter().any(|s| match &s.arguments {
            PathArguments::AngleBracketed(a) => a.args.iter().any(|g| match g {
                GenericArgument::Type(t) => contains_impl_trait(t),
                _ => false,
            }),
            _ => false,
        }),
        _ => false,
    }
}

/// Whether a type is written as a `Cache` (behind `&`, `Arc`, `Rc` or `Box`).
fn is_cache_type(ty: &Type) -> bool {
    match ty {
        Type::Reference(r) => is_cache_type(&r.elem),
        Type::Paren(p) => is_cache_type(&p.elem),
        Type::Path(p) if p.qself.is_none() => p.path.segments.last().is_some_and(|s| {
            if s.ident == "Cache" {
                return true;
            }
            let wrapper = ["Arc", "Rc", "Box"].iter().any(|w| s.ident == w);
            wrapper
                && match &s.arguments {
                    PathArguments::AngleBracketed(a) => a.args.iter().any(|g| match g {
                        GenericArgument::Type(t) => is_cache_type(t),
                        _ => false,
                    }),
                    _ => false,
                }
        }),
        _ => false,
    }
}

fn mentions_self(tokens: &TokenStream) -> bool {
    tokens.clone().into_iter().any(|t| match t {
        TokenTree::Ident(i) => i == "self",
        TokenTree::Group(g) => mentions_self(&g.stream()),
        _ => false,
    })
}

/// Whether `tokens` use the name: as an identifier, or inside a string literal as a format
/// argument (`format!("{id}")`, `"{id:?}"`).
fn mentions(tokens: &TokenStream, name: &str) -> bool {
    tokens.clone().into_iter().any(|t| match t {
        TokenTree::Ident(i) => i == name,
        TokenTree::Group(g) => mentions(&g.stream(), name),
        TokenTree::Literal(l) => {
            let text = l.to_string();
            text.starts_with('"')
                && [format!("{{{name}}}"), format!("{{{name}:")]
                    .iter()
                    .any(|p| text.contains(p.as_str()))
        }
        TokenTree::Punct(_) => false,
    })
}

/// What the return type is read as (said by `result`/`option`, else as written: its last
/// path segment `Result` or `Option`), the shape, and the stored entry's type.
fn shape(ret: &Type, o: &Options) -> syn::Result<(Kind, TokenStream, TokenStream)> {
    let last = match ret {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last(),
        _ => None,
    };
    let written = last.map(|s| s.ident.to_string()).unwrap_or_default();
    let first_arg = last.and_then(|s| match &s.arguments {
        PathArguments::AngleBracketed(a) => a.args.iter().find_map(|g| match g {
            GenericArgument::Type(t) => Some(t.clone()),
            _ => None,
        }),
        _ => None,
    });
    let kind = match (o.result, o.option) {
        (Some(true), _) => Kind::Result,
        (_, Some(true)) => Kind::Option,
        (Some(false), _) | (_, Some(false)) => Kind::Plain { checked: false },
        _ if written == "Result" => Kind::Result,
        _ if written == "Option" => Kind::Option,
        _ => Kind::Plain { checked: true },
    };
    // `T` of `Result<T, E>`/`Option<T>` as written; through an alias, the shape's entry.
    let spelled = (kind == Kind::Result && written == "Result")
        || (kind == Kind::Option && written == "Option");
    let first_arg = first_arg.filter(|_| spelled);
    let s = quote!(::mcache_registry::shape);
    let projection = |shape: &TokenStream| quote!(<#shape as ::mcache_registry::Shape>::Entry);
    if o.cache_none && kind != Kind::Option {
        return err(
            ret,
            "`cache_none` needs an `Option` return type: written `Option<...>`, or say `option = true` for an alias",
        );
    }
    if o.cache_err && kind != Kind::Result {
        return err(
            ret,
            "`cache_err` needs a `Result` return type: written `Result<...>`, or say `result = true` for an alias",
        );
    }
    if o.negative_ttl.is_some() && !o.cache_none && !o.cache_err {
        return err(ret, "`negative_ttl` needs `cache_none` or `cache_err` (negative results are not cached otherwise)");
    }
    let (shape, entry) = match kind {
        Kind::Result if o.cache_err => (quote!(#s::OkOrErr<#ret>), quote!(#ret)),
        Kind::Option if o.cache_none => (quote!(#s::SomeOrNone<#ret>), quote!(#ret)),
        Kind::Result | Kind::Option => {
            let shape = if kind == Kind::Result {
                quote!(#s::OkOnly<#ret>)
            } else {
                quote!(#s::SomeOnly<#ret>)
            };
            let entry = first_arg
                .map(|t| quote!(#t))
                .unwrap_or_else(|| projection(&shape));
            (shape, entry)
        }
        Kind::Plain { .. } => (quote!(#s::Plain<#ret>), quote!(#ret)),
    };
    Ok((kind, shape, entry))
}
