//! Reading a memoized function's signature: its parameters, which of them (and of `self`) form
//! the key, and the shape of its result. Every rule that can fail fails here, with a message
//! that says what to write instead.

use crate::options::Options;
use proc_macro2::{Span, TokenStream};
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

pub(crate) struct Plan {
    pub(crate) name: Ident,
    pub(crate) self_kind: SelfKind,
    pub(crate) params: Vec<Param>,
    /// Keyed parameters, in parameter order.
    pub(crate) keyed: Vec<Ident>,
    pub(crate) self_key: Vec<Expr>,
    pub(crate) ret: Type,
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

        // The parameter the cache comes from (`cache = cache`) is never keyed.
        let cache_param = match &options.cache {
            Some(Expr::Path(p)) if p.qself.is_none() => p.path.get_ident().cloned(),
            _ => None,
        };
        let keyed = match (&options.key, &options.skip) {
            (Some(key), _) => {
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
                    .filter(|p| !skip.contains(&p.ident) && Some(&p.ident) != cache_param.as_ref())
                    .map(|p| p.ident.clone())
                    .collect()
            }
            (None, None) => params
                .iter()
                .filter(|p| Some(&p.ident) != cache_param.as_ref())
                .map(|p| p.ident.clone())
                .collect(),
        };

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
        let (shape, entry) = shape(&ret, &options)?;
        let cache_param = cache_param.filter(|c| params.iter().any(|p| p.ident == *c));
        Ok(Plan {
            name: sig.ident.clone(),
            self_kind,
            params,
            keyed,
            self_key: options.self_key.clone().unwrap_or_default(),
            ret,
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

/// The shape from the return type as written, and the stored entry's type.
fn shape(ret: &Type, o: &Options) -> syn::Result<(TokenStream, TokenStream)> {
    let last = match ret {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last(),
        _ => None,
    };
    let kind = last.map(|s| s.ident.to_string()).unwrap_or_default();
    let first_arg = last.and_then(|s| match &s.arguments {
        PathArguments::AngleBracketed(a) => a.args.iter().find_map(|g| match g {
            GenericArgument::Type(t) => Some(t.clone()),
            _ => None,
        }),
        _ => None,
    });
    let s = quote!(::mcache_registry::shape);
    let projection = |shape: &TokenStream| quote!(<#shape as ::mcache_registry::Shape>::Entry);
    if o.cache_none && kind != "Option" {
        return err(
            ret,
            "`cache_none` needs a return type written `Option<...>`",
        );
    }
    if o.cache_err && kind != "Result" {
        return err(ret, "`cache_err` needs a return type written `Result<...>`");
    }
    if o.negative_ttl.is_some() && !o.cache_none && !o.cache_err {
        return err(ret, "`negative_ttl` needs `cache_none` or `cache_err` (negative results are not cached otherwise)");
    }
    Ok(match kind.as_str() {
        "Result" if o.cache_err => (quote!(#s::OkOrErr<#ret>), quote!(#ret)),
        "Result" => {
            let shape = quote!(#s::OkOnly<#ret>);
            let entry = first_arg
                .map(|t| quote!(#t))
                .unwrap_or_else(|| projection(&shape));
            (shape, entry)
        }
        "Option" if o.cache_none => (quote!(#s::SomeOrNone<#ret>), quote!(#ret)),
        "Option" => {
            let shape = quote!(#s::SomeOnly<#ret>);
            let entry = first_arg
                .map(|t| quote!(#t))
                .unwrap_or_else(|| projection(&shape));
            (shape, entry)
        }
        _ => (quote!(#s::Plain<#ret>), quote!(#ret)),
    })
}
