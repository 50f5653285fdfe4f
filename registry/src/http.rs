//! HTTP GET caching as a tower [`Layer`](tower_layer::Layer) (feature `http`): txcaching's
//! `cache_async_render_GET`, for axum, hyper and any tower service.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use axum::{extract::Path, routing::get, Router};
//! use mcache_registry::http::CacheLayer;
//! use mcache_registry::tokio::{Client, Connect};
//! use mcache_registry::Cache;
//! use std::time::Duration;
//!
//! let cache = Cache::new(Client::connect("127.0.0.1:11211").await?, "app")?;
//! let pages = CacheLayer::builder(cache)
//!     .ttl(Duration::from_secs(300))
//!     .ignore_query_params(["utm_source", "_"])
//!     .build();
//!
//! let app: Router = Router::new()
//!     .route("/email/{user}", get(|Path(user): Path<String>| async move {
//!         format!("{user}@example.com")
//!     }))
//!     .layer(pages.clone());
//!
//! // After an update, drop exactly the cached GET (every Vary variant, every host):
//! pages.invalidate("/email/bob").await?;
//! # let _ = app;
//! # Ok(())
//! # }
//! ```
//!
//! ## What is cached
//!
//! A response to `GET` is stored (status, headers and body) when:
//!
//! - its status is one of [`CacheLayerBuilder::statuses`] (default: 200 only);
//! - it has no `Cache-Control: no-store`, `private` or `no-cache`, no `Vary: *`, and is not a
//!   `text/event-stream`;
//! - it sets no cookie: a response with `Set-Cookie` is never stored at all (storing it
//!   without the cookie would hand a page that expects one to everyone else);
//! - its body is at most [`CacheLayerBuilder::max_body`] bytes (default 512 KiB). A body
//!   that turns out larger is passed on uncached, without losing or reordering a byte; a
//!   `Content-Length` above the limit is passed on without buffering at all.
//!
//! The request is passed through, neither read from nor stored in the cache, when its method
//! is not `GET` or `HEAD`, or when it carries `Authorization` or `Cookie` (one user's page must
//! never be served to another; [`CacheLayerBuilder::cache_credentialed`] turns this off, and
//! then the application answers with a `Vary` on whatever identifies the user). A request
//! with `Cache-Control: no-cache` (or `Pragma: no-cache`) is not served from the cache but its
//! response refreshes it; one with `Cache-Control: no-store` may be served from the cache but
//! its response is not stored. `HEAD` is served from a cached `GET` (headers and
//! `Content-Length`, no body); a `HEAD` miss is passed through and stores nothing.
//!
//! Stored headers are the response's, less `Set-Cookie` and the hop-by-hop headers
//! (`Connection`, `Transfer-Encoding`, …); `Content-Length` is recomputed.
//!
//! ## Keys
//!
//! Entries live in the [`Cache`]'s namespace under the registry's key format, as calls of a
//! [`Function`] named `http` (version 1, see [`FUNCTION`]; [`CacheLayerBuilder::function`] gives
//! a layer its own), so [`Cache::invalidate_function`] with it, or
//! [`CacheLayer::invalidate_all`], drops every cached page in O(1), and
//! [`Cache::invalidate_namespace`] drops them with everything else. Each URL has two kinds of
//! items:
//!
//! - the **index** of the URL: `<ns>:http:v1:s3:GET:<path>:<query>`, where the path is the
//!   request's path as sent (`s10:/email/bob`) and the query the list of its parameters,
//!   `+` and `%XX` decoded, sorted by name (the values of one name keep their order), with the
//!   [ignored](CacheLayerBuilder::ignore_query_params) names (exact, whole names) dropped:
//!   `?id=3&userid=5` is `[[b2:id,b1:3],[b6:userid,b1:5]]`. It holds a random token and the
//!   request headers the response named in `Vary`;
//! - the **entries**, one per host and `Vary` variant: the index's key followed by the token,
//!   the host (`Host`, lowercased, or the URI's authority; `n` when there is none or
//!   [`CacheLayerBuilder::key_host`] is off) and each `Vary` header's name and value (`n` when
//!   absent): `…:[]:i4183…:os14:127.0.0.1:3000:[[s15:accept-language,ob2:fr]]`.
//!
//! Keys longer than 250 bytes are hashed as every registry key is. The host and the `Vary`
//! headers are in the entries, not the index, so invalidating a URL by its path drops it for
//! every host and every variant: [`CacheLayer::invalidate`] deletes the index, and the entries
//! under its token can never be reached again (they age out). A new index gets a new token.
//!
//! A miss creates the index (memcached `add`) *before* the handler runs, and the response is
//! stored under that index's token, with the generations read at the start. An invalidation
//! while the handler runs deletes that index (or bumps a generation), so the response, which
//! may have been computed from the old data, is stored where nobody looks: a page older than
//! an invalidation is never served after it.
//!
//! ## Failure policy
//!
//! memcached down, slow or answering garbage means the request is passed to the service
//! uncached (logged with `tracing`), never an HTTP error; the cache's circuit breaker applies.
//! The handle's own operations ([`CacheLayer::invalidate`], …) report errors.

use crate::cache::{expect_status, Backend, Cache};
use crate::codec::{self, Codec, Encoded, Stamp};
use crate::error::Error;
use crate::join::join2;
use crate::key::{Args, Function};
use crate::random::random_u64;
use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body::{Body, Frame, SizeHint};
use mcache_proto::{Key, MetaDeleteFlags, MetaGetFlags, MetaSetFlags, MetaSetMode, MetaStatus};
use serde::{Deserialize, Serialize, Serializer};
use std::collections::VecDeque;
use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// The default identity of cached HTTP responses in the key registry: path `http`, version 1.
pub const FUNCTION: Function = Function::new("http");

/// Headers that describe one connection, never stored.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "content-length",
];

/// Caches `GET` (and serves `HEAD`) responses in memcached: a tower
/// [`Layer`](tower_layer::Layer) and, cloned, the handle that invalidates what it cached.
///
/// Cheap to clone (an `Arc`); every clone and every service it wraps share the settings.
/// See the [module docs](self) for what is cached and the key format.
pub struct CacheLayer<C> {
    shared: Arc<Shared<C>>,
}

struct Shared<C> {
    cache: Cache<C>,
    function: Function,
    ttl: Duration,
    statuses: Vec<StatusCode>,
    ignored: Vec<Vec<u8>>,
    max_body: usize,
    credentialed: bool,
    key_host: bool,
    status_header: Option<HeaderName>,
}

impl<C> Clone for CacheLayer<C> {
    fn clone(&self) -> Self {
        CacheLayer {
            shared: self.shared.clone(),
        }
    }
}

impl<C> fmt::Debug for CacheLayer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.shared;
        f.debug_struct("CacheLayer")
            .field("namespace", &s.cache.inner.namespace)
            .field("function", &s.function.path())
            .field("ttl", &s.ttl)
            .field("statuses", &s.statuses)
            .field("max_body", &s.max_body)
            .field("credentialed", &s.credentialed)
            .finish_non_exhaustive()
    }
}

/// Configures a [`CacheLayer`]; every setting has a default.
pub struct CacheLayerBuilder<C> {
    shared: Shared<C>,
}

impl<C> fmt::Debug for CacheLayerBuilder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheLayerBuilder").finish_non_exhaustive()
    }
}

impl<C: Backend> CacheLayerBuilder<C> {
    /// How long a response stays cached (default 60 s; zero: until evicted or invalidated).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.shared.ttl = ttl;
        self
    }

    /// The statuses whose responses are stored (default: `200 OK` only). For example
    /// `[StatusCode::OK, StatusCode::NOT_FOUND]` to cache misses too.
    pub fn statuses(mut self, statuses: impl IntoIterator<Item = StatusCode>) -> Self {
        self.shared.statuses = statuses.into_iter().collect();
        self
    }

    /// Query parameters that are not part of the key (cache-busters, tracking tags): exact
    /// names, compared after decoding, so `id` never drops `userid` (txcaching's
    /// `redundant_args`, without its substring matches).
    pub fn ignore_query_params<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.shared.ignored = names
            .into_iter()
            .map(|n| n.as_ref().as_bytes().to_vec())
            .collect();
        self
    }

    /// The largest body stored, in bytes (default 512 KiB; memcached's items are 1 MiB at
    /// most unless it runs with a larger `-I`). Larger responses are passed on uncached.
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.shared.max_body = bytes;
        self
    }

    /// Whether requests with `Authorization` or `Cookie` are cached like any other (default
    /// `false`: they pass through). Turn it on only if every response that depends on the
    /// credentials says so with `Vary` (or is the same for everyone).
    pub fn cache_credentialed(mut self, on: bool) -> Self {
        self.shared.credentialed = on;
        self
    }

    /// Whether the host (`Host` or the URI's authority) is part of an entry's key (default
    /// `true`). Invalidation by path drops the URL for every host either way.
    pub fn key_host(mut self, on: bool) -> Self {
        self.shared.key_host = on;
        self
    }

    /// The key-registry identity of this layer's entries (default [`FUNCTION`]: `http`,
    /// version 1). Give layers that must be invalidated separately their own path, and bump
    /// the version to drop everything a layer cached.
    pub fn function(mut self, function: Function) -> Self {
        self.shared.function = function;
        self
    }

    /// Adds a response header saying what the layer did: `hit` (served from memcached),
    /// `miss` (the service answered; stored if cacheable) or `bypass` (not cacheable, or
    /// memcached unavailable). Default: none.
    pub fn status_header(mut self, name: HeaderName) -> Self {
        self.shared.status_header = Some(name);
        self
    }

    /// The layer.
    pub fn build(self) -> CacheLayer<C> {
        CacheLayer {
            shared: Arc::new(self.shared),
        }
    }
}

impl<C: Backend> CacheLayer<C> {
    /// A layer with the default settings over `cache`.
    pub fn new(cache: Cache<C>) -> CacheLayer<C> {
        CacheLayer::builder(cache).build()
    }

    /// A builder over `cache`.
    pub fn builder(cache: Cache<C>) -> CacheLayerBuilder<C> {
        CacheLayerBuilder {
            shared: Shared {
                cache,
                function: FUNCTION,
                ttl: Duration::from_secs(60),
                statuses: vec![StatusCode::OK],
                ignored: Vec::new(),
                max_body: 512 * 1024,
                credentialed: false,
                key_host: true,
                status_header: None,
            },
        }
    }

    /// The cache it stores into.
    pub fn cache(&self) -> &Cache<C> {
        &self.shared.cache
    }

    /// The key of a URL's index (path and query, or an absolute URI): what
    /// [`invalidate`](Self::invalidate) deletes.
    pub fn index_key(&self, uri: &str) -> Result<Key, Error> {
        Ok(self.shared.index_key(&parse_uri(uri)?))
    }

    /// Drops the cached `GET` (and so `HEAD`) of a URL, `"/email/bob?x=1"` or an absolute
    /// URI, for every host and `Vary` variant. The query is canonicalised as for requests
    /// (ignored parameters dropped, order of names irrelevant). `Ok(false)` if nothing was
    /// cached.
    pub async fn invalidate(&self, uri: &str) -> Result<bool, Error> {
        self.invalidate_uri(&parse_uri(uri)?).await
    }

    /// [`invalidate`](Self::invalidate) for a parsed [`Uri`].
    pub async fn invalidate_uri(&self, uri: &Uri) -> Result<bool, Error> {
        let cache = &self.shared.cache;
        let Some(client) = cache.gate()? else {
            return Ok(false);
        };
        let key = self.shared.index_key(uri);
        let r = cache
            .op("md", client.meta_delete(&key, MetaDeleteFlags::default()))
            .await?;
        expect_status("md", &r, &[MetaStatus::Hd, MetaStatus::Nf])?;
        Ok(r.status == MetaStatus::Hd)
    }

    /// Drops the cached `GET` of a request's URL, whatever the request's method: a `POST`,
    /// `PUT` or `DELETE` handler can pass its own request to drop the page it changed.
    pub async fn invalidate_request<B>(&self, request: &Request<B>) -> Result<bool, Error> {
        self.invalidate_uri(request.uri()).await
    }

    /// Drops every response this layer (and any other with the same
    /// [`function`](CacheLayerBuilder::function)) cached, in every process, in O(1).
    pub async fn invalidate_all(&self) -> Result<(), Error> {
        self.shared
            .cache
            .invalidate_function(&self.shared.function)
            .await
    }
}

fn parse_uri(uri: &str) -> Result<Uri, Error> {
    uri.parse::<Uri>()
        .map_err(|e| Error::InvalidUri(format!("{uri:?}: {e}")))
}

impl<S, C> tower_layer::Layer<S> for CacheLayer<C> {
    type Service = CacheService<S, C>;

    fn layer(&self, inner: S) -> CacheService<S, C> {
        CacheService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service [`CacheLayer`] wraps around another.
pub struct CacheService<S, C> {
    inner: S,
    shared: Arc<Shared<C>>,
}

impl<S: Clone, C> Clone for CacheService<S, C> {
    fn clone(&self) -> Self {
        CacheService {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S: fmt::Debug, C> fmt::Debug for CacheService<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// The future of a [`CacheService`] call.
pub type ResponseFuture<B, E> =
    Pin<Box<dyn Future<Output = Result<Response<CacheBody<B>>, E>> + Send>>;

impl<S, C, ReqB, ResB> tower_service::Service<Request<ReqB>> for CacheService<S, C>
where
    S: tower_service::Service<Request<ReqB>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    C: Backend,
    ReqB: Send + 'static,
    ResB: Body + Send + 'static,
    ResB::Data: Send,
    ResB::Error: Send,
{
    type Response = Response<CacheBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<ResB, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqB>) -> Self::Future {
        // The service that was polled ready answers this request; a clone takes its place.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        Box::pin(shared.serve(inner, request))
    }
}

/// What the layer does with a request.
struct Plan {
    uri: Uri,
    host: Option<String>,
    headers: HeaderMap,
    head: bool,
    read: bool,
    store: bool,
}

/// The index of one URL: the token of its current entries and the request headers its
/// response varies on (unknown until a response was stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Index {
    token: u64,
    vary: Option<Vec<String>>,
}

/// A stored response.
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

/// An item as read, with the generations current at the time.
enum Item {
    /// Decoded and stamped with the current generations.
    Fresh(Encoded, u64),
    /// Present but outdated, foreign or stale: replace it with this cas.
    Outdated(u64),
    Absent,
}

/// Bytes keyed as bytes (`b<len>:<bytes>`), not as a sequence of numbers.
struct Raw<'a>(&'a [u8]);

impl Serialize for Raw<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

impl<C: Backend> Shared<C> {
    fn plan<B>(&self, request: &Request<B>) -> Option<Plan> {
        let head = match *request.method() {
            Method::GET => false,
            Method::HEAD => true,
            _ => return None,
        };
        let headers = request.headers();
        if !self.credentialed
            && (headers.contains_key(header::AUTHORIZATION) || headers.contains_key(header::COOKIE))
        {
            return None;
        }
        let control = directives(headers, header::CACHE_CONTROL);
        let no_cache = control.iter().any(|d| d == "no-cache")
            || directives(headers, header::PRAGMA)
                .iter()
                .any(|d| d == "no-cache");
        let no_store = control.iter().any(|d| d == "no-store");
        let host = if self.key_host {
            headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
                .or_else(|| request.uri().authority().map(|a| a.to_string()))
                .map(|h| h.to_ascii_lowercase())
        } else {
            None
        };
        Some(Plan {
            uri: request.uri().clone(),
            host,
            headers: headers.clone(),
            head,
            read: !no_cache,
            store: !head && !no_store,
        })
    }

    fn index_args(&self, uri: &Uri) -> Args {
        let mut args = Args::new();
        let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (name, value) = p.split_once('=').unwrap_or((p, ""));
                (form_decode(name), form_decode(value))
            })
            .filter(|(name, _)| !self.ignored.contains(name))
            .collect();
        pairs.sort_by(|a, b| a.0.cmp(&b.0)); // stable: the values of one name keep their order
        let query: Vec<(Raw<'_>, Raw<'_>)> = pairs.iter().map(|(n, v)| (Raw(n), Raw(v))).collect();
        let path = if uri.path().is_empty() {
            "/"
        } else {
            uri.path()
        };
        // Encoding strings, integers, bytes and sequences cannot fail.
        let _ = args.push("GET");
        let _ = args.push(path);
        let _ = args.push(&query);
        args
    }

    fn index_key(&self, uri: &Uri) -> Key {
        self.cache.key(&self.function, &self.index_args(uri))
    }

    fn entry_key(&self, plan: &Plan, token: u64, vary: &[String]) -> Key {
        let mut args = self.index_args(&plan.uri);
        let values: Vec<(&str, Option<Vec<u8>>)> = vary
            .iter()
            .map(|name| {
                let mut all = plan.headers.get_all(name.as_str()).iter().peekable();
                let value = all.peek().is_some().then(|| {
                    let mut v = Vec::new();
                    for (i, h) in all.enumerate() {
                        if i > 0 {
                            v.extend_from_slice(b", ");
                        }
                        v.extend_from_slice(h.as_bytes());
                    }
                    v
                });
                (name.as_str(), value)
            })
            .collect();
        let values: Vec<(&str, Option<Raw<'_>>)> = values
            .iter()
            .map(|(n, v)| (*n, v.as_deref().map(Raw)))
            .collect();
        let _ = args.push(&token);
        let _ = args.push(&plan.host);
        let _ = args.push(&values);
        self.cache.key(&self.function, &args)
    }

    async fn serve<S, ReqB, ResB>(
        self: Arc<Self>,
        mut inner: S,
        request: Request<ReqB>,
    ) -> Result<Response<CacheBody<ResB>>, S::Error>
    where
        S: tower_service::Service<Request<ReqB>, Response = Response<ResB>>,
        ResB: Body,
    {
        let plan = match self.plan(&request) {
            Some(plan) if !self.cache.is_disabled() && self.cache.inner.breaker.allow() => plan,
            _ => {
                let response = inner.call(request).await?;
                return Ok(self.mark(response.map(CacheBody::pass), "bypass"));
            }
        };
        let index_key = self.index_key(&plan.uri);
        let (index, stamp) = match self.index(&index_key, &plan).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(uri = %plan.uri, error = %e, "http cache unavailable: passing through");
                let response = inner.call(request).await?;
                return Ok(self.mark(response.map(CacheBody::pass), "bypass"));
            }
        };
        if let (true, Some((index, _))) = (plan.read, &index) {
            if let Some(vary) = &index.vary {
                let key = self.entry_key(&plan, index.token, vary);
                match self.read_entry(&key, stamp).await {
                    Ok(Some(entry)) => {
                        if let Some(response) = self.hit(entry, plan.head) {
                            return Ok(response);
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(%key, error = %e, "http cache read failed: passing through")
                    }
                }
            }
        }
        let response = inner.call(request).await?;
        let Some((index, cas)) = index.filter(|_| plan.store) else {
            return Ok(self.mark(response.map(CacheBody::pass), "miss"));
        };
        let Some(vary) = self.storable(&response) else {
            return Ok(self.mark(response.map(CacheBody::pass), "miss"));
        };
        let (parts, body) = response.into_parts();
        let body = match collect(body, self.max_body).await {
            Collected::Whole(body) => body,
            Collected::Partial(body) => {
                return Ok(self.mark(Response::from_parts(parts, body), "miss"));
            }
        };
        let response = Response::from_parts(parts, body);
        self.store(&plan, &index_key, index, cas, stamp, &vary, &response)
            .await;
        let response = response.map(|b| CacheBody::full(Some(b)));
        Ok(self.mark(response, "miss"))
    }

    fn mark<B>(&self, mut response: Response<B>, what: &'static str) -> Response<B> {
        if let Some(name) = &self.status_header {
            response
                .headers_mut()
                .insert(name.clone(), HeaderValue::from_static(what));
        }
        response
    }

    /// Reads a URL's index; on a miss (when this request may store) creates it, so that an
    /// invalidation while the handler runs is noticed.
    async fn index(&self, key: &Key, plan: &Plan) -> Result<(Option<(Index, u64)>, Stamp), Error> {
        let (item, stamp) = self.read_item(key).await?;
        let replace = match item {
            Item::Fresh(encoded, cas) => {
                if let Ok(index) =
                    codec::decode::<Index>(encoded.flags, &encoded.bytes, self.function.version())
                {
                    return Ok((Some((index, cas)), stamp));
                }
                Some(cas)
            }
            Item::Outdated(cas) => Some(cas),
            Item::Absent => None,
        };
        if !plan.store {
            return Ok((None, stamp));
        }
        let index = Index {
            token: random_u64(),
            vary: None,
        };
        let flags = MetaSetFlags {
            mode: replace.is_none().then_some(MetaSetMode::Add),
            compare_cas: replace,
            cas: true,
            ..Default::default()
        };
        match self.write(key, &index, stamp, flags).await? {
            Some(cas) => Ok((Some((index, cas)), stamp)),
            // Someone else created or replaced it just now: use theirs.
            None => match self.read_item(key).await? {
                (Item::Fresh(encoded, cas), stamp) => Ok((
                    codec::decode::<Index>(encoded.flags, &encoded.bytes, self.function.version())
                        .ok()
                        .map(|i| (i, cas)),
                    stamp,
                )),
                (_, stamp) => Ok((None, stamp)),
            },
        }
    }

    /// `mg <key> v f c` and the generations, in one round trip.
    async fn read_item(&self, key: &Key) -> Result<(Item, Stamp), Error> {
        let flags = MetaGetFlags {
            value: true,
            client_flags: true,
            cas: true,
            ..Default::default()
        };
        let cache = &self.cache;
        let (item, stamp) = join2(
            cache.op("mg", cache.request(|c| c.meta_get(key, flags))),
            cache.stamp(&self.function),
        )
        .await;
        let item = item?;
        let stamp = stamp?;
        if let (true, Some(cas)) = (item.flags.won, item.flags.cas) {
            cache.release(key, cas, true).await;
        }
        let found = match (item.status, item.value, item.flags.cas) {
            (MetaStatus::Va, Some(bytes), Some(cas)) => {
                let flags = item.flags.client_flags.unwrap_or(0);
                if !item.flags.stale && codec::stamp(flags, &bytes).is_ok_and(|s| s == stamp) {
                    Item::Fresh(Encoded { flags, bytes }, cas)
                } else {
                    Item::Outdated(cas)
                }
            }
            (MetaStatus::Va, _, Some(cas)) => Item::Outdated(cas),
            _ => Item::Absent,
        };
        Ok((found, stamp))
    }

    async fn read_entry(&self, key: &Key, stamp: Stamp) -> Result<Option<Entry>, Error> {
        let flags = MetaGetFlags {
            value: true,
            client_flags: true,
            ..Default::default()
        };
        let cache = &self.cache;
        let item = cache
            .op("mg", cache.request(|c| c.meta_get(key, flags)))
            .await?;
        Ok(match (item.status, item.value) {
            (MetaStatus::Va, Some(bytes)) if !item.flags.stale => {
                let flags = item.flags.client_flags.unwrap_or(0);
                if codec::stamp(flags, &bytes).is_ok_and(|s| s == stamp) {
                    codec::decode(flags, &bytes, self.function.version()).ok()
                } else {
                    None
                }
            }
            _ => None,
        })
    }

    /// Stores `value` under `key` stamped with `stamp`; `Ok(None)` when memcached declined
    /// (add of an existing item, cas mismatch).
    async fn write<T: Serialize>(
        &self,
        key: &Key,
        value: &T,
        stamp: Stamp,
        mut flags: MetaSetFlags,
    ) -> Result<Option<u64>, Error> {
        let cfg = &self.cache.inner.config;
        let fingerprint = codec::type_fingerprint::<T>(Codec::Postcard, self.function.version());
        let encoded = codec::encode(
            value,
            Codec::Postcard,
            cfg.compress_above,
            stamp,
            fingerprint,
        )
        .map_err(Error::Encode)?;
        flags.ttl = Some(self.cache.exptime_of(self.ttl));
        flags.client_flags = Some(encoded.flags);
        let cache = &self.cache;
        let r = cache
            .op(
                "ms",
                cache.request(|c| c.meta_set(key, encoded.bytes, flags)),
            )
            .await?;
        match r.status {
            MetaStatus::Hd => Ok(Some(r.flags.cas.unwrap_or(0))),
            MetaStatus::Ns | MetaStatus::Ex | MetaStatus::Nf => Ok(None),
            _ => {
                expect_status("ms", &r, &[MetaStatus::Hd])?;
                Ok(None)
            }
        }
    }

    /// The request headers a cacheable response varies on, or `None` if it must not be
    /// stored.
    fn storable<B: Body>(&self, response: &Response<B>) -> Option<Vec<String>> {
        if !self.statuses.contains(&response.status()) {
            return None;
        }
        let headers = response.headers();
        if headers.contains_key(header::SET_COOKIE) {
            return None;
        }
        if directives(headers, header::CACHE_CONTROL)
            .iter()
            .any(|d| matches!(d.as_str(), "no-store" | "private" | "no-cache"))
        {
            return None;
        }
        if headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("text/event-stream"))
        {
            return None;
        }
        let too_long = |n: u64| n > self.max_body as u64;
        if headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
            .is_some_and(too_long)
            || response.body().size_hint().lower() > self.max_body as u64
        {
            return None;
        }
        let mut vary = directives(headers, header::VARY);
        if vary.iter().any(|v| v == "*") {
            return None;
        }
        vary.sort();
        vary.dedup();
        Some(vary)
    }

    #[allow(clippy::too_many_arguments)]
    async fn store(
        &self,
        plan: &Plan,
        index_key: &Key,
        index: Index,
        cas: u64,
        stamp: Stamp,
        vary: &[String],
        response: &Response<Bytes>,
    ) {
        let entry = Entry {
            status: response.status().as_u16(),
            headers: response
                .headers()
                .iter()
                .filter(|(name, _)| {
                    !HOP_BY_HOP.contains(&name.as_str())
                        && Some(*name) != self.status_header.as_ref()
                })
                .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
                .collect(),
            body: response.body().to_vec(),
        };
        let key = self.entry_key(plan, index.token, vary);
        if let Err(e) = self
            .write(&key, &entry, stamp, MetaSetFlags::default())
            .await
        {
            tracing::warn!(%key, error = %e, "http response not cached");
            return;
        }
        if index.vary.as_deref() != Some(vary) {
            let updated = Index {
                token: index.token,
                vary: Some(vary.to_vec()),
            };
            let flags = MetaSetFlags {
                compare_cas: Some(cas),
                ..Default::default()
            };
            match self.write(index_key, &updated, stamp, flags).await {
                Ok(Some(_)) => {}
                // Invalidated (or updated by a concurrent response) since this request began:
                // what was stored is left where nobody looks.
                Ok(None) => tracing::debug!(%index_key, "http index changed meanwhile"),
                Err(e) => tracing::warn!(%index_key, error = %e, "http index not updated"),
            }
        }
    }

    fn hit<B: Body>(&self, entry: Entry, head: bool) -> Option<Response<CacheBody<B>>> {
        let mut response = Response::new(CacheBody::full(
            (!head).then(|| Bytes::from(entry.body.clone())),
        ));
        *response.status_mut() = StatusCode::from_u16(entry.status).ok()?;
        let headers = response.headers_mut();
        for (name, value) in &entry.headers {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).ok()?,
                HeaderValue::from_bytes(value).ok()?,
            );
        }
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(entry.body.len()));
        Some(self.mark(response, "hit"))
    }
}

/// The comma-separated, lowercased directives (up to `=`) of every value of a header.
fn directives(headers: &HeaderMap, name: HeaderName) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|d| {
            d.split('=')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|d| !d.is_empty())
        .collect()
}

/// `application/x-www-form-urlencoded` decoding to bytes (exact: no lossy UTF-8).
fn form_decode(s: &str) -> Vec<u8> {
    let plus = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus).collect()
}

enum Collected<B: Body> {
    Whole(Bytes),
    Partial(CacheBody<B>),
}

/// Reads a whole body of at most `max` bytes; gives up (handing back what it read and the
/// rest, to be sent on unchanged) on a larger body, trailers or an error.
async fn collect<B: Body>(body: B, max: usize) -> Collected<B> {
    let mut body = Box::pin(body);
    let mut chunks: VecDeque<Frame<Bytes>> = VecDeque::new();
    let mut len = 0usize;
    loop {
        match poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
            None => break,
            Some(Ok(frame)) => match frame.into_data() {
                Ok(mut data) => {
                    let data = data.copy_to_bytes(data.remaining());
                    len = len.saturating_add(data.len());
                    chunks.push_back(Frame::data(data));
                    if len > max {
                        return Collected::Partial(CacheBody::partial(chunks, None, body));
                    }
                }
                Err(frame) => {
                    let frame = frame.map_data(|mut d| d.copy_to_bytes(d.remaining()));
                    chunks.push_back(frame);
                    return Collected::Partial(CacheBody::partial(chunks, None, body));
                }
            },
            Some(Err(e)) => return Collected::Partial(CacheBody::partial(chunks, Some(e), body)),
        }
    }
    let mut all = BytesMut::with_capacity(len);
    for frame in chunks {
        if let Ok(data) = frame.into_data() {
            all.extend_from_slice(&data);
        }
    }
    Collected::Whole(all.freeze())
}

/// The body of a response that went through a [`CacheService`]: a cached body, or the
/// service's own (with whatever the layer read of it first), streamed unchanged.
pub struct CacheBody<B: Body> {
    full: Option<Bytes>,
    prefix: VecDeque<Frame<Bytes>>,
    error: Option<B::Error>,
    inner: Option<Pin<Box<B>>>,
}

// No field is ever pinned in place: the inner body is boxed.
impl<B: Body> Unpin for CacheBody<B> {}

impl<B: Body> fmt::Debug for CacheBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheBody")
            .field("cached", &self.inner.is_none())
            .finish_non_exhaustive()
    }
}

impl<B: Body> CacheBody<B> {
    fn full(bytes: Option<Bytes>) -> Self {
        CacheBody {
            full: bytes.filter(|b| !b.is_empty()),
            prefix: VecDeque::new(),
            error: None,
            inner: None,
        }
    }

    fn pass(body: B) -> Self {
        CacheBody::partial(VecDeque::new(), None, Box::pin(body))
    }

    fn partial(prefix: VecDeque<Frame<Bytes>>, error: Option<B::Error>, body: Pin<Box<B>>) -> Self {
        CacheBody {
            full: None,
            prefix,
            inner: error.is_none().then_some(body),
            error,
        }
    }
}

impl<B: Body> Body for CacheBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        if let Some(bytes) = this.full.take() {
            return Poll::Ready(Some(Ok(Frame::data(bytes))));
        }
        if let Some(frame) = this.prefix.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        if let Some(e) = this.error.take() {
            return Poll::Ready(Some(Err(e)));
        }
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match inner.as_mut().poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(
                frame.map_data(|mut d| d.copy_to_bytes(d.remaining()))
            ))),
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) => {
                this.inner = None;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.full.is_none()
            && self.prefix.is_empty()
            && self.error.is_none()
            && self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        let buffered: u64 = self.full.as_ref().map_or(0, |b| b.len() as u64)
            + self
                .prefix
                .iter()
                .filter_map(|f| f.data_ref())
                .map(|d| d.len() as u64)
                .sum::<u64>();
        match &self.inner {
            None => SizeHint::with_exact(buffered),
            Some(inner) => {
                let h = inner.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(h.lower().saturating_add(buffered));
                if let Some(upper) = h.upper() {
                    hint.set_upper(upper.saturating_add(buffered));
                }
                hint
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_are_split_and_lowercased() {
        let mut h = HeaderMap::new();
        h.append(
            header::CACHE_CONTROL,
            HeaderValue::from_static("Max-Age=5, No-Store"),
        );
        h.append(header::CACHE_CONTROL, HeaderValue::from_static("private"));
        assert_eq!(
            directives(&h, header::CACHE_CONTROL),
            ["max-age", "no-store", "private"]
        );
    }

    #[test]
    fn form_decoding_is_exact() {
        assert_eq!(form_decode("a+b%20c"), b"a b c");
        assert_ne!(form_decode("%FF"), form_decode("%FE"));
    }
}
