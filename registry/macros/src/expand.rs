//! Code generation. For a free function `f`:
//!
//! - `f` itself, now `async`, keyed and memoized through `__private::memoize`; in the
//!   blocking form (`blocking::memoize`) it stays a plain `fn` that runs the same
//!   `__private::memoize` under `__private::block_on`, and so do the helpers below;
//! - a hidden sibling `__mcache_f` holding the original body (so `refresh` can run it);
//! - a struct named `f` (type namespace only, so it coexists with the function) whose
//!   associated items are the key registry: `f::FUNCTION`, `f::key(&cache, ..)`,
//!   `f::is_cached`, `f::cached`, `f::replace`, `f::invalidate`, `f::refresh`,
//!   `f::invalidate_all`.
//!
//! For a method `m` of a `#[memoize] impl T` block: `m`, a hidden `__mcache_m`, a hidden
//! `Function` constant, and helper methods `m_key`, `m_is_cached`, `m_cached`, `m_replace`,
//! `m_invalidate`, `m_refresh`, `m_invalidate_all` that take `&self` (the cache and the keyed
//! fields come from it) or, for an associated function without `self`, the cache explicitly.

use crate::options::Options;
use crate::plan::{Kind, Plan, SelfKind};
use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::{
    Attribute, FnArg, GenericParam, Generics, ImplItem, ImplItemFn, ItemFn, ItemImpl, Meta, Pat,
    Signature, Visibility,
};

/// Where the registry helpers get their cache.
enum CacheSource {
    /// A parameter of the helper (free functions, associated functions).
    Param,
    /// The `cache = ...` expression or the global cache, evaluated with `self` in scope.
    FromSelf,
}

struct Ctx<'a> {
    plan: &'a Plan,
    vis: &'a Visibility,
    /// `Self::FUNCTION` or `Self::__mcache_fn_m`.
    function: TokenStream,
    /// The hidden body's path: `__mcache_f` or `Self::__mcache_m`.
    body: TokenStream,
    /// Lifetime generics and where clause of the original.
    generics: &'a Generics,
    /// Method helpers are `m_key`, free ones `key`.
    prefix: Option<String>,
    source: CacheSource,
    /// The original receiver, for `refresh`.
    receiver: Option<TokenStream>,
    /// How the function is named in docs.
    doc_name: String,
}

fn is_memoize_attr(a: &Attribute) -> bool {
    a.path()
        .segments
        .last()
        .is_some_and(|s| s.ident == "memoize")
}

/// Attributes that must follow the body to the hidden function: `cfg` and lint levels.
fn body_attrs(attrs: &[Attribute]) -> Vec<&Attribute> {
    attrs
        .iter()
        .filter(|a| {
            a.path().get_ident().is_some_and(|i| {
                ["cfg", "allow", "expect", "warn", "deny", "forbid"]
                    .iter()
                    .any(|n| i == n)
            })
        })
        .collect()
}

fn cfg_attrs(attrs: &[Attribute]) -> Vec<&Attribute> {
    attrs.iter().filter(|a| a.path().is_ident("cfg")).collect()
}

/// The original body, marking the cache parameter used (the expansion uses it; the body may
/// not). The body's statements are spliced, not nested: a nested one-line block would be
/// "unnecessary braces" to `unused_braces`, and `cargo fix` would then remove the user's.
fn hidden_body(plan: &Plan, block: &syn::Block) -> TokenStream {
    match &plan.cache_param {
        Some(p) => {
            let stmts = &block.stmts;
            quote!({ let _ = &#p; #(#stmts)* })
        }
        None => quote!(#block),
    }
}

/// Lints that generated code must not trigger in the user's crate.
fn allow_lints() -> TokenStream {
    quote!(#[allow(
        dead_code,
        unused_braces,
        clippy::too_many_arguments,
        clippy::needless_lifetimes,
        clippy::type_complexity,
        clippy::ptr_arg
    )])
}

/// The outer signature: async (plain in the blocking form), plain parameter names (no
/// `mut`, no attributes).
fn outer_sig(sig: &Signature, plan: &Plan) -> Signature {
    let mut s = sig.clone();
    s.asyncness = asyncness(plan);
    for input in s.inputs.iter_mut() {
        if let FnArg::Typed(pt) = input {
            pt.attrs.clear();
            if let Pat::Ident(pi) = &mut *pt.pat {
                pi.mutability = None;
            }
        }
    }
    s
}

/// `async` in the async form; nothing in the blocking one, whose functions stay plain.
fn asyncness(plan: &Plan) -> Option<syn::token::Async> {
    (!plan.options.blocking).then(Default::default)
}

/// The output of a registry future: `.await`ed in the async form, run with `block_on` in
/// the blocking one.
fn wait(plan: &Plan, future: TokenStream) -> TokenStream {
    if plan.options.blocking {
        quote!(::mcache_registry::__private::block_on(#future))
    } else {
        quote!(#future.await)
    }
}

/// What a helper taking the cache accepts: any backend in the async form, a blocking one in
/// the blocking form.
fn backend_bound(plan: &Plan) -> TokenStream {
    if plan.options.blocking {
        quote!(::mcache_registry::blocking::BlockingBackend)
    } else {
        quote!(::mcache_registry::Backend)
    }
}

/// Where an error about the cache points: its `cache = <expr>`, or the attribute.
fn cache_span(plan: &Plan) -> proc_macro2::Span {
    use syn::spanned::Spanned;
    plan.options
        .cache
        .as_ref()
        .map_or_else(proc_macro2::Span::call_site, Spanned::span)
}

/// In the async form, a compile error if the cache is blocking (the blocking form checks its
/// cache where it is bound: `cache_option`).
fn form_check(plan: &Plan) -> TokenStream {
    if plan.options.blocking {
        return quote!();
    }
    quote_spanned! {cache_span(plan)=> {
        #[allow(unused_imports)]
        use ::mcache_registry::__private::{ProbeAsyncCache as _, ProbeBlockingCache as _};
        ::mcache_registry::__private::async_form(
            (&&::mcache_registry::__private::Probe::of(&__mcache_cache)).form(),
        );
    }}
}

/// Generic parameters for a helper: the original's lifetimes, plus `extra`.
fn helper_generics(g: &Generics, extra: Option<TokenStream>) -> TokenStream {
    let lifetimes: Vec<&GenericParam> = g.params.iter().collect();
    match (lifetimes.is_empty(), extra) {
        (true, None) => quote!(),
        (true, Some(e)) => quote!(<#e>),
        (false, None) => quote!(<#(#lifetimes),*>),
        (false, Some(e)) => quote!(<#(#lifetimes,)* #e>),
    }
}

/// `::mcache_registry::Function::new(path).with_version(..).with_ttl(..)`.
fn function_value(path: TokenStream, o: &Options) -> TokenStream {
    let version = o.version.map(|v| quote!(.with_version(#v)));
    let ttl = o.ttl.as_ref().map(|t| quote!(.with_ttl(#t)));
    let negative = o
        .negative_ttl
        .as_ref()
        .map(|t| quote!(.with_negative_ttl(#t)));
    quote!(::mcache_registry::Function::new(#path) #version #ttl #negative)
}

/// `Some(&cache)` from the options, in a scope where the arguments (and `self`) are. In the
/// blocking form, the cache must be blocking (a compile error says so otherwise).
fn cache_option(plan: &Plan) -> TokenStream {
    let private = quote!(::mcache_registry::__private);
    let cache = match (&plan.options.cache, plan.options.blocking) {
        (Some(expr), _) => quote_spanned! {cache_span(plan)=>
            ::core::option::Option::Some(::mcache_registry::__private::as_cache(&(#expr)))
        },
        (None, false) => quote!(#private::global_cache()),
        (None, true) => quote!(#private::global_blocking_cache()),
    };
    if plan.options.blocking {
        quote_spanned!(cache_span(plan)=> ::mcache_registry::__private::blocking_form(#cache))
    } else {
        cache
    }
}

/// `let __mcache_cache = ...;` for a memoized call: cloned when `self` or the cache argument is
/// moved or borrowed mutably by the body, borrowed otherwise.
fn bind_cache(plan: &Plan) -> TokenStream {
    let opt = cache_option(plan);
    // A cache taken by value (`Cache`, `Arc<Cache>`) moves into the body with the arguments.
    let owned_param = plan.cache_param.as_ref().is_some_and(|c| {
        plan.params
            .iter()
            .any(|p| p.ident == *c && !matches!(p.ty, syn::Type::Reference(_)))
    });
    match (&plan.self_kind, &plan.options.cache) {
        (_, Some(_)) if owned_param => quote! {
            let __mcache_owned = (#opt).cloned();
            let __mcache_cache = __mcache_owned.as_ref();
        },
        (SelfKind::Other, Some(_)) => quote! {
            let __mcache_owned = (#opt).cloned();
            let __mcache_cache = __mcache_owned.as_ref();
        },
        _ => quote!(let __mcache_cache = #opt;),
    }
}

/// Pushes one keyed value; a value whose type is not `Serialize` is a compile error that
/// points at it and says what to write (`skip = [...]`), rather than serde's bound.
fn push_key(value: TokenStream, span: proc_macro2::Span) -> TokenStream {
    quote_spanned! {span=> {
        #[allow(unused_imports)]
        use ::mcache_registry::__private::{ProbeKeyable as _, ProbeNotKeyable as _};
        let __mcache_v = &(#value);
        ::mcache_registry::__private::key_argument(
            (&&::mcache_registry::__private::Probe::of(__mcache_v)).kind(),
            __mcache_v,
        )
        .push(__mcache_a, __mcache_v)?;
    }}
}

/// `__private::args(|a| { push &self.id; push &x; Ok(()) })`, or the key expression.
fn args_expr(plan: &Plan) -> TokenStream {
    use syn::spanned::Spanned;
    let selfs = plan.self_key.iter().map(|e| push_key(quote!(#e), e.span()));
    let args: Vec<TokenStream> = match &plan.key_expr {
        Some(e) => vec![push_key(quote!(#e), e.span())],
        None => plan
            .keyed
            .iter()
            .map(|i| push_key(quote!(#i), i.span()))
            .collect(),
    };
    // The helpers take every argument the key expression mentions; not all may be used.
    let used = plan.key_expr.as_ref().map(|_| {
        plan.keyed
            .iter()
            .map(|i| quote!(let _ = &#i;))
            .collect::<Vec<_>>()
    });
    let used = used.unwrap_or_default();
    quote! {
        ::mcache_registry::__private::args(|__mcache_a| {
            #(#used)*
            #(#selfs)*
            #(#args)*
            ::core::result::Result::Ok(())
        })
    }
}

/// `move || body(args)` as a future-returning closure.
fn compute(plan: &Plan, body: &TokenStream, is_async: bool) -> TokenStream {
    let names = plan.params.iter().map(|p| &p.ident);
    let this = plan.is_method().then(|| quote!(self,));
    let call = quote!(#body(#this #(#names),*));
    if is_async {
        quote!(move || #call)
    } else {
        quote!(move || ::core::future::ready(#call))
    }
}

fn helpers(ctx: &Ctx<'_>, is_async: bool) -> Vec<TokenStream> {
    let plan = ctx.plan;
    let vis = ctx.vis;
    let function = &ctx.function;
    let shape = &plan.shape;
    let entry = &plan.entry;
    let ret = &plan.ret;
    let doc_name = &ctx.doc_name;
    let name = |n: &str| match &ctx.prefix {
        Some(p) => format_ident!("{}_{}", p, n),
        None => format_ident!("{}", n),
    };
    let cache_param = plan.fresh("cache");
    let value_param = plan.fresh("value");
    let keyed: Vec<TokenStream> = plan
        .params
        .iter()
        .filter(|p| plan.keyed.contains(&p.ident))
        .map(|p| {
            let (i, t) = (&p.ident, &p.ty);
            quote!(#i: #t)
        })
        .collect();
    let all: Vec<TokenStream> = plan
        .params
        .iter()
        .map(|p| {
            let (i, t) = (&p.ident, &p.ty);
            quote!(#i: #t)
        })
        .collect();
    let where_clause = &ctx.generics.where_clause;
    let args = args_expr(plan);
    let backend = backend_bound(plan);
    let asyncness = asyncness(plan);
    let (generics, lead, get_cache) = match ctx.source {
        CacheSource::Param => (
            helper_generics(ctx.generics, Some(quote!(__McacheC: #backend))),
            quote!(#cache_param: &::mcache_registry::Cache<__McacheC>,),
            quote!(let __mcache_c = #cache_param;),
        ),
        CacheSource::FromSelf => {
            let opt = cache_option(plan);
            (
                helper_generics(ctx.generics, None),
                quote!(&self,),
                quote!(let __mcache_c = ::mcache_registry::__private::require(#opt)?;),
            )
        }
    };
    let result = quote!(::core::result::Result);
    let error = quote!(::mcache_registry::Error);
    let (key, is_cached, cached, replace, invalidate, refresh, invalidate_all) = (
        name("key"),
        name("is_cached"),
        name("cached"),
        name("replace"),
        name("invalidate"),
        name("refresh"),
        name("invalidate_all"),
    );
    let doc_key = format!(" The memcached key of a call to `{doc_name}` with these arguments.");
    let doc_is = format!(
        " Whether the call to `{doc_name}` with these arguments is cached and fresh (without fetching its value)."
    );
    let doc_cached = format!(" The cached result of the call to `{doc_name}` with these arguments, if it is cached and fresh.");
    let doc_replace = format!(
        " Stores `{value_param}` as the result of the call to `{doc_name}` with these arguments (after an update of what it reads): the next call returns it without running."
    );
    let doc_invalidate = format!(
        " Drops the cached result of the call to `{doc_name}` with these arguments; `Ok(false)` if none was cached."
    );
    let doc_refresh = format!(
        " Runs `{doc_name}` and stores its result, whatever was cached. Takes exactly `{doc_name}`'s arguments."
    );
    let doc_all = format!(" Invalidates every cached call of `{doc_name}`, in every process (O(1): a generation bump).");

    let allow = allow_lints();
    // `replace` takes the entry or a borrowed form of it (`&str` for a `String`), unless the
    // entry itself is needed: to tell a negative one (`cache_none`, `cache_err`) or to give
    // it to `ttl_fn`.
    let negative = plan.options.cache_none || plan.options.cache_err;
    let whole = negative || plan.options.ttl_fn.is_some();
    let (replace_generics, value_ty, replace_where, borrowed_doc) = if whole {
        (
            generics.clone(),
            quote!(#entry),
            quote!(#where_clause),
            quote!(),
        )
    } else {
        let bound =
            quote!(__McacheV: ?::core::marker::Sized + ::mcache_registry::__private::Serialize);
        let generics = match ctx.source {
            CacheSource::Param => {
                helper_generics(ctx.generics, Some(quote!(__McacheC: #backend, #bound)))
            }
            CacheSource::FromSelf => helper_generics(ctx.generics, Some(bound)),
        };
        let predicates = ctx.generics.where_clause.as_ref().map(|w| {
            let p = &w.predicates;
            quote!(#p,)
        });
        (
            generics,
            quote!(__McacheV),
            quote!(where #predicates #entry: ::core::borrow::Borrow<__McacheV>),
            quote! {
                #[doc = ""]
                #[doc = " The value may be the stored entry or a borrowed form of it (`&str` for a `String`, `&[T]` for a `Vec<T>`)."]
            },
        )
    };
    let replace_negative = if negative {
        quote!(<#shape as ::mcache_registry::Shape>::is_negative(#value_param))
    } else {
        quote!(false)
    };
    let (replace_ttl_fn, replace_ttl) = if plan.options.ttl_fn.is_some() {
        (
            bind_ttl_fn(plan),
            quote!(__mcache_ttl_fn.map(|__mcache_f| __mcache_f(#value_param))),
        )
    } else {
        (quote!(), quote!(::core::option::Option::None))
    };
    let replaced = wait(
        plan,
        quote!(::mcache_registry::__private::replace::<#shape, _, _>(
            __mcache_c, &#function, &__mcache_args, #value_param, #replace_negative, #replace_ttl,
        )),
    );
    let replace_fn = quote! {
        #[doc = #doc_replace]
        #borrowed_doc
        #allow
        #vis #asyncness fn #replace #replace_generics (#lead #(#keyed,)* #value_param: &#value_ty) -> #result<(), #error>
        #replace_where
        {
            #get_cache
            let __mcache_args = #args?;
            #replace_ttl_fn
            #replaced
        }
    };
    let is_cached_now = wait(
        plan,
        quote!(__mcache_c.is_cached(&#function, &__mcache_args)),
    );
    let cached_now = wait(
        plan,
        quote!(__mcache_c.cached::<#entry>(&#function, &__mcache_args)),
    );
    let invalidated = wait(
        plan,
        quote!(__mcache_c.invalidate(&#function, &__mcache_args)),
    );
    let invalidated_all = wait(plan, quote!(__mcache_c.invalidate_function(&#function)));

    let mut out = vec![
        quote! {
            #[doc = #doc_key]
            #allow
            #vis fn #key #generics (#lead #(#keyed),*) -> #result<::mcache_registry::Key, #error> #where_clause {
                #get_cache
                let __mcache_args = #args?;
                #result::Ok(__mcache_c.key(&#function, &__mcache_args))
            }
        },
        quote! {
            #[doc = #doc_is]
            #allow
            #vis #asyncness fn #is_cached #generics (#lead #(#keyed),*) -> #result<bool, #error> #where_clause {
                #get_cache
                let __mcache_args = #args?;
                #is_cached_now
            }
        },
        quote! {
            #[doc = #doc_cached]
            #allow
            #vis #asyncness fn #cached #generics (#lead #(#keyed),*) -> #result<::core::option::Option<#entry>, #error> #where_clause {
                #get_cache
                let __mcache_args = #args?;
                #cached_now
            }
        },
        replace_fn,
        quote! {
            #[doc = #doc_invalidate]
            #allow
            #vis #asyncness fn #invalidate #generics (#lead #(#keyed),*) -> #result<bool, #error> #where_clause {
                #get_cache
                let __mcache_args = #args?;
                #invalidated
            }
        },
        quote! {
            #[doc = #doc_all]
            #allow
            #vis #asyncness fn #invalidate_all #generics (#lead) -> #result<(), #error> #where_clause {
                #get_cache
                #invalidated_all
            }
        },
    ];

    let receiver = ctx.receiver.as_ref().map(|r| quote!(#r,));
    let refresh_generics = helper_generics(ctx.generics, None);
    let refresh_body = memoized_body(plan, function, &ctx.body, is_async, "refresh");
    let refresh_fn = quote! {
        #[doc = #doc_refresh]
        #allow
        #vis #asyncness fn #refresh #refresh_generics (#receiver #(#all),*) -> #ret #where_clause
        #refresh_body
    };
    out.push(refresh_fn);
    out
}

/// `let __mcache_ttl_fn = ...;`: `ttl_fn = <expr>` as a reference to a `Fn(&Entry) ->
/// Duration`, or `None`.
fn bind_ttl_fn(plan: &Plan) -> TokenStream {
    let shape = &plan.shape;
    match &plan.options.ttl_fn {
        Some(f) => quote_spanned! {syn::spanned::Spanned::span(f)=>
            let __mcache_ttl_fn_ref: ::mcache_registry::__private::TtlRef<
                '_,
                <#shape as ::mcache_registry::Shape>::Entry,
            > = &(#f);
            let __mcache_ttl_fn = ::core::option::Option::Some(__mcache_ttl_fn_ref);
        },
        None => quote!(let __mcache_ttl_fn = ::core::option::Option::None;),
    }
}

/// For a return type read as plain without being told: a compile error if it is a `Result`
/// or an `Option` under another name (an alias would otherwise cache its errors).
fn plain_check(plan: &Plan) -> TokenStream {
    if plan.kind != (Kind::Plain { checked: true }) {
        return quote!();
    }
    let ret = &plan.ret;
    quote_spanned! {syn::spanned::Spanned::span(ret)=> {
        #[allow(unused_imports)]
        use ::mcache_registry::__private::{ProbeOption as _, ProbePlain as _, ProbeResult as _};
        ::mcache_registry::__private::plain_return(
            (&&::mcache_registry::__private::Probe::<#ret>::new()).kind(),
        );
    }}
}

/// The body of the memoized function (`what` = `memoize`) or of its `refresh`.
fn memoized_body(
    plan: &Plan,
    function: &TokenStream,
    body: &TokenStream,
    is_async: bool,
    what: &str,
) -> TokenStream {
    let args = args_expr(plan);
    let bind = bind_cache(plan);
    let ttl_fn = bind_ttl_fn(plan);
    let check = plain_check(plan);
    let shape = &plan.shape;
    let run = compute(plan, body, is_async);
    let call = format_ident!("{}", what);
    let form = form_check(plan);
    let result = wait(
        plan,
        quote!(::mcache_registry::__private::#call::<#shape, _, _, _>(
            __mcache_cache, &#function, __mcache_args, __mcache_ttl_fn, #run,
        )),
    );
    quote! {{
        #check
        let __mcache_args = #args;
        #bind
        #form
        #ttl_fn
        #result
    }}
}

pub(crate) fn free_fn(options: Options, f: ItemFn) -> syn::Result<TokenStream> {
    let plan = Plan::new(&f.sig, false, options)?;
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = f;
    if let Some(a) = attrs.iter().find(|a| is_memoize_attr(a)) {
        return Err(syn::Error::new_spanned(a, "#[memoize] is given twice"));
    }
    let hidden_block = hidden_body(&plan, &block);
    let name = &plan.name;
    let hidden = format_ident!("__mcache_{}", name);
    let is_async = sig.asyncness.is_some();
    let mut hidden_sig = sig.clone();
    hidden_sig.ident = hidden.clone();
    let keep = body_attrs(&attrs);
    let cfgs = cfg_attrs(&attrs);
    let outer = outer_sig(&sig, &plan);
    let function = quote!(#name::FUNCTION);
    let body = memoized_body(&plan, &function, &quote!(#hidden), is_async, "memoize");
    let path = quote!(::core::concat!(
        ::core::module_path!(),
        "::",
        ::core::stringify!(#name)
    ));
    let function_value = function_value(path, &plan.options);
    let ctx = Ctx {
        plan: &plan,
        vis: &vis,
        function: quote!(Self::FUNCTION),
        body: quote!(#hidden),
        generics: &sig.generics,
        prefix: None,
        source: CacheSource::Param,
        receiver: None,
        doc_name: name.to_string(),
    };
    let helpers = helpers(&ctx, is_async);
    let doc_struct = format!(
        " Key registry of the memoized function `{name}`: `{name}::key(&cache, ..)`, `is_cached`, `cached`, `replace`, `invalidate`, `refresh` for one call, `invalidate_all` for every call, `FUNCTION` for its identity."
    );
    let doc_function = format!(" The identity of `{name}`: its path, version and times to live.");
    Ok(quote! {
        #(#attrs)*
        #vis #outer #body

        #[doc(hidden)]
        #(#keep)*
        #hidden_sig #hidden_block

        #[doc = #doc_struct]
        #[allow(non_camel_case_types, dead_code)]
        #(#cfgs)*
        #vis struct #name {
            _private: (),
        }

        #(#cfgs)*
        impl #name {
            #[doc = #doc_function]
            #[allow(dead_code)]
            #vis const FUNCTION: ::mcache_registry::Function = #function_value;

            #(#helpers)*
        }
    })
}

/// The `impl` type as written, without the spaces `to_string` puts between tokens (a space
/// between two identifier characters is kept).
fn type_path(tokens: &str) -> String {
    let chars: Vec<char> = tokens.chars().collect();
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_whitespace() {
            let prev = out.chars().last();
            let next = chars[i + 1..].iter().copied().find(|c| !c.is_whitespace());
            if let (Some(p), Some(n)) = (prev, next) {
                if ident(p) && ident(n) && !out.ends_with(' ') {
                    out.push(' ');
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

pub(crate) fn impl_block(options: Options, mut imp: ItemImpl) -> syn::Result<TokenStream> {
    options.check_block()?;
    if let Some((_, path, _)) = &imp.trait_ {
        return Err(syn::Error::new_spanned(
            path,
            "#[memoize] works on inherent impl blocks only: memoize an inherent method and call it from the trait impl",
        ));
    }
    for g in &imp.generics.params {
        if !matches!(g, GenericParam::Lifetime(_)) {
            return Err(syn::Error::new_spanned(
                g,
                "#[memoize] does not support impl blocks with type or const parameters: instances of different types would share keys",
            ));
        }
    }
    let self_ty = &imp.self_ty;
    let type_name = type_path(&quote!(#self_ty).to_string());
    let mut items = Vec::with_capacity(imp.items.len());
    let mut found = false;
    for item in std::mem::take(&mut imp.items) {
        let ImplItem::Fn(mut f) = item else {
            items.push(item);
            continue;
        };
        let marks: Vec<usize> = f
            .attrs
            .iter()
            .enumerate()
            .filter(|(_, a)| is_memoize_attr(a))
            .map(|(i, _)| i)
            .collect();
        match marks.as_slice() {
            [] => items.push(ImplItem::Fn(f)),
            [i] => {
                let attr = f.attrs.remove(*i);
                let opts = match attr.meta {
                    Meta::Path(_) => Options::default(),
                    Meta::List(l) => Options::parse(l.tokens)?,
                    Meta::NameValue(nv) => {
                        return Err(syn::Error::new_spanned(nv, "expected #[memoize(...)]"))
                    }
                };
                found = true;
                items.extend(method(opts.over(&options), f, &type_name)?);
            }
            [_, second, ..] => {
                return Err(syn::Error::new_spanned(
                    &f.attrs[*second],
                    "#[memoize] is given twice",
                ))
            }
        }
    }
    if !found {
        return Err(syn::Error::new_spanned(
            &imp.self_ty,
            "#[memoize] on an impl block memoizes the methods marked #[memoize(...)]; none is",
        ));
    }
    imp.items = items;
    Ok(quote!(#imp))
}

fn method(options: Options, f: ImplItemFn, type_name: &str) -> syn::Result<Vec<ImplItem>> {
    let plan = Plan::new(&f.sig, true, options)?;
    let ImplItemFn {
        attrs,
        vis,
        defaultness,
        sig,
        block,
    } = f;
    if let Some(d) = defaultness {
        return Err(syn::Error::new_spanned(
            d,
            "#[memoize] does not support `default fn`",
        ));
    }
    let hidden_block = hidden_body(&plan, &block);
    let name = &plan.name;
    let hidden = format_ident!("__mcache_{}", name);
    let constant = format_ident!("__mcache_fn_{}", name);
    let is_async = sig.asyncness.is_some();
    let mut hidden_sig = sig.clone();
    hidden_sig.ident = hidden.clone();
    let keep = body_attrs(&attrs);
    let cfgs = cfg_attrs(&attrs);
    let outer = outer_sig(&sig, &plan);
    let function = quote!(Self::#constant);
    let body_path = quote!(Self::#hidden);
    let body = memoized_body(&plan, &function, &body_path, is_async, "memoize");
    let path = quote!(::core::concat!(
        ::core::module_path!(), "::", #type_name, "::", ::core::stringify!(#name)
    ));
    let function_value = function_value(path, &plan.options);
    let receiver = sig.receiver().map(|r| quote!(#r));
    let ctx = Ctx {
        plan: &plan,
        vis: &vis,
        function: function.clone(),
        body: body_path,
        generics: &sig.generics,
        prefix: Some(name.to_string()),
        source: if plan.is_method() {
            CacheSource::FromSelf
        } else {
            CacheSource::Param
        },
        receiver,
        doc_name: format!("{type_name}::{name}"),
    };
    let helpers = helpers(&ctx, is_async);
    let mut out = vec![
        quote! {
            #(#attrs)*
            #vis #outer #body
        },
        quote! {
            #[doc(hidden)]
            #(#keep)*
            #hidden_sig #hidden_block
        },
        quote! {
            #[doc(hidden)]
            #[allow(non_upper_case_globals, dead_code)]
            #(#cfgs)*
            const #constant: ::mcache_registry::Function = #function_value;
        },
    ];
    out.extend(helpers.into_iter().map(|h| quote!(#(#cfgs)* #h)));
    Ok(out.into_iter().map(ImplItem::Verbatim).collect())
}

#[cfg(test)]
mod tests {
    use super::type_path;

    #[test]
    fn type_paths() {
        assert_eq!(type_path("Db"), "Db");
        assert_eq!(type_path("Wrapper < 'a >"), "Wrapper<'a>");
        assert_eq!(type_path("crate :: db :: Db"), "crate::db::Db");
        assert_eq!(type_path("Box < dyn Trait >"), "Box<dyn Trait>");
    }
}
