//! The email service of txcaching's article, with axum: `POST /email` stores a user's email,
//! `GET /email/{username}` returns it through a deliberately slow (2 s) lookup.
//!
//! The lookup is memoized with `#[memoize]` and the GET route is wrapped in
//! [`CacheLayer`]; a POST replaces the memoized value through the key registry
//! (`get_email::replace`) and drops the cached page through the layer's handle.
//!
//! ```sh
//! cargo run --release -p mcache-registry --features http --example email_service
//! MCACHE_SERVERS=127.0.0.1:11211 PORT=8080 cargo run ... # your memcached(s), a fixed port
//! cargo run ... -- --self-test                            # the scripted flow, then exit
//! ```
//!
//! Without `MCACHE_SERVERS` (comma-separated `host:port`s) it starts a memcached of its own on
//! a free loopback port and stops it on exit (Ctrl-C).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use mcache_registry::http::CacheLayer;
use mcache_registry::tokio::{Client, Connect};
use mcache_registry::{memoize, Cache};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// The "database": emails by username, a slow read, and a count of reads.
pub struct Db {
    emails: RwLock<HashMap<String, String>>,
    delay: Duration,
    lookups: AtomicUsize,
}

impl Db {
    /// A database with bob and alice, whose reads take `delay`.
    pub fn new(delay: Duration) -> Db {
        let emails = [("bob", "bob@example.com"), ("alice", "alice@example.com")]
            .into_iter()
            .map(|(u, e)| (u.to_owned(), e.to_owned()))
            .collect();
        Db {
            emails: RwLock::new(emails),
            delay,
            lookups: AtomicUsize::new(0),
        }
    }

    /// How many slow lookups ran.
    pub fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }

    fn update(&self, username: &str, email: &str) {
        self.emails
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(username.to_owned(), email.to_owned());
    }
}

/// The slow lookup, memoized for five minutes per username (the cache and the database are not
/// part of the key).
#[memoize(cache = cache, ttl = 300, skip = [db])]
pub async fn get_email(cache: &Cache<Client>, db: &Db, username: &str) -> Option<String> {
    db.lookups.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(db.delay).await; // SELECT email FROM users WHERE username = ...
    db.emails
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .get(username)
        .cloned()
}

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The memoization cache.
    pub cache: Cache<Client>,
    /// The page cache's handle.
    pub pages: CacheLayer<Client>,
    /// The database.
    pub db: Arc<Db>,
}

/// The service's routes: `GET /email/{username}` (page-cached), `POST /email`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/email/{username}",
            get(read_email).layer(state.pages.clone()),
        )
        .route("/email", post(write_email))
        .with_state(state)
}

/// The header the page cache sets: `hit`, `miss` or `bypass`.
pub const X_CACHE: &str = "x-cache";

/// The page cache over `cache`, keyed under the `http` function of its namespace.
pub fn pages(cache: &Cache<Client>) -> CacheLayer<Client> {
    CacheLayer::builder(cache.clone())
        .ttl(Duration::from_secs(300))
        .ignore_query_params(["_"])
        .status_header(HeaderName::from_static(X_CACHE))
        .build()
}

async fn read_email(State(s): State<AppState>, Path(username): Path<String>) -> Response {
    match get_email(&s.cache, &s.db, &username).await {
        Some(email) => format!("{email}\n").into_response(),
        None => (StatusCode::NOT_FOUND, format!("no user {username}\n")).into_response(),
    }
}

/// `username` and `email`, as a form or as JSON.
#[derive(serde::Deserialize)]
struct Update {
    username: String,
    email: String,
}

fn parse_update(headers: &HeaderMap, body: &[u8]) -> Option<Update> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if json {
        return serde_json::from_slice(body).ok();
    }
    let (mut username, mut email) = (None, None);
    for pair in std::str::from_utf8(body).ok()?.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = value.replace('+', " ");
        let value = percent_encoding::percent_decode_str(&value)
            .decode_utf8()
            .ok()?
            .into_owned();
        match name {
            "username" => username = Some(value),
            "email" => email = Some(value),
            _ => {}
        }
    }
    Some(Update {
        username: username?,
        email: email?,
    })
}

async fn write_email(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(Update { username, email }) = parse_update(&headers, &body) else {
        return (
            StatusCode::BAD_REQUEST,
            "send username and email, as a form or as JSON\n",
        )
            .into_response();
    };
    if username.is_empty() || email.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            "username and email must not be empty\n",
        )
            .into_response();
    }
    s.db.update(&username, &email); // UPDATE users SET email = ... WHERE username = ...
                                    // The next lookup returns the new email without running the slow query...
    if let Err(e) = get_email::replace(&s.cache, &username, &email).await {
        tracing::warn!(%username, error = %e, "memoized email not replaced");
    }
    // ...and the cached page is dropped (every variant of it).
    let path = format!(
        "/email/{}",
        percent_encoding::utf8_percent_encode(&username, percent_encoding::NON_ALPHANUMERIC)
    );
    if let Err(e) = s.pages.invalidate(&path).await {
        tracing::warn!(%path, error = %e, "cached page not invalidated");
    }
    format!("{username} is now {email}\n").into_response()
}

/// The memcached servers from `MCACHE_SERVERS`, or one started here (kept alive by the
/// returned guard).
async fn memcached() -> Result<(Client, Option<mcache_testkit::Memcached>, String), String> {
    match std::env::var("MCACHE_SERVERS") {
        Ok(list) if !list.trim().is_empty() => {
            let servers: Vec<String> = list
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect();
            let client = Client::builder()
                .servers(servers.iter().map(String::as_str))
                .build()
                .await
                .map_err(|e| format!("cannot connect to MCACHE_SERVERS={list}: {e}"))?;
            Ok((client, None, servers.join(",")))
        }
        _ => {
            let server = mcache_testkit::Memcached::start().map_err(|e| {
                format!("MCACHE_SERVERS is not set and no memcached could be started: {e}")
            })?;
            let addr = server.host_port_string();
            let client = Client::connect(addr.as_str())
                .await
                .map_err(|e| format!("cannot connect to the memcached started at {addr}: {e}"))?;
            let what = format!("{addr} (started here, pid {})", server.pid());
            Ok((client, Some(server), what))
        }
    }
}

/// A response as the self-test sees it.
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// `x-cache`.
    pub cache: String,
    /// The body.
    pub body: String,
    /// How long it took.
    pub took: Duration,
}

/// One HTTP/1.1 request over loopback.
pub async fn request(
    base: &str,
    method: &str,
    path: &str,
    form: Option<&str>,
) -> Result<Reply, Box<dyn std::error::Error + Send + Sync>> {
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client as HttpClient;
    use hyper_util::rt::TokioExecutor;
    let client = HttpClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut req = axum::http::Request::builder()
        .method(method)
        .uri(format!("{base}{path}"));
    if form.is_some() {
        req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    let req = req.body(Full::new(Bytes::from(form.unwrap_or("").to_owned())))?;
    let start = Instant::now();
    let response = client.request(req).await?;
    let status = response.status();
    let cache = response
        .headers()
        .get(X_CACHE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = response.into_body().collect().await?.to_bytes();
    Ok(Reply {
        status,
        cache,
        body: String::from_utf8_lossy(&body).into_owned(),
        took: start.elapsed(),
    })
}

/// The scripted flow against a running service (bob's email: slow read, cached read, update,
/// read); fails on the first surprise.
pub async fn self_test(
    base: &str,
    db: &Db,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    fn check(ok: bool, what: &str) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if ok {
            Ok(())
        } else {
            Err(what.to_owned().into())
        }
    }
    let show = |what: &str, r: &Reply| {
        println!(
            "  {what:<48} {} {:<4} {:>9.1?}  {}",
            r.status.as_u16(),
            r.cache,
            r.took,
            r.body.trim_end()
        )
    };
    let start = db.lookups();
    let slow = request(base, "GET", "/email/bob", None).await?;
    show("GET /email/bob   (slow lookup)", &slow);
    check(slow.status == StatusCode::OK, "GET /email/bob failed")?;
    check(
        db.lookups() == start + 1,
        "the first GET should run the lookup",
    )?;
    let fast = request(base, "GET", "/email/bob", None).await?;
    show("GET /email/bob   (cached page)", &fast);
    check(
        fast.body == slow.body && fast.cache == "hit",
        "second GET not served from the cache",
    )?;
    check(db.lookups() == start + 1, "the second GET ran the lookup")?;

    let r = request(
        base,
        "POST",
        "/email",
        Some("username=bob&email=bob%40new.example"),
    )
    .await?;
    show("POST /email      (bob@new.example)", &r);
    check(r.status == StatusCode::OK, "POST failed")?;
    let after = request(base, "GET", "/email/bob", None).await?;
    show("GET /email/bob   (page dropped, value replaced)", &after);
    check(
        after.body.trim() == "bob@new.example",
        "GET after the update",
    )?;
    check(
        db.lookups() == start + 1,
        "replace should have spared the lookup",
    )?;
    let again = request(base, "GET", "/email/bob", None).await?;
    show("GET /email/bob   (cached page)", &again);
    check(
        again.cache == "hit" && again.body == after.body,
        "not cached again",
    )?;

    let unknown = request(base, "GET", "/email/nobody", None).await?;
    show("GET /email/nobody", &unknown);
    check(unknown.status == StatusCode::NOT_FOUND, "unknown user")?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    println!("\nshutting down");
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    use tracing_subscriber::EnvFilter;
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let self_test_mode = std::env::args().any(|a| a == "--self-test")
        || std::env::var_os("EMAIL_SERVICE_SELF_TEST").is_some();

    // The memcached guard is dropped (and its process stopped) when main returns.
    let (client, _memcached, servers) = match memcached().await {
        Ok(found) => found,
        Err(e) => {
            eprintln!("email_service: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let cache = match Cache::new(client, "email_service") {
        Ok(c) => c,
        Err(e) => {
            eprintln!("email_service: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let delay = std::env::var("EMAIL_LOOKUP_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(2), Duration::from_millis);
    // The database lives in memory and starts afresh on every run: so does the cache.
    if let Err(e) = cache.invalidate_namespace().await {
        tracing::warn!(error = %e, "could not drop what earlier runs cached");
    }
    let db = Arc::new(Db::new(delay));
    let state = AppState {
        pages: pages(&cache),
        cache,
        db: db.clone(),
    };
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("email_service: cannot listen on 127.0.0.1:{port}: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("email_service: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let base = format!("http://{addr}");
    let app = router(state);

    if self_test_mode {
        println!("email_service self-test: memcached {servers}, service {base}");
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let result = self_test(&base, &db).await;
        server.abort();
        return match result {
            Ok(()) => {
                println!("self-test passed: {} slow lookups in all", db.lookups());
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("self-test FAILED: {e}");
                std::process::ExitCode::FAILURE
            }
        };
    }

    println!(
        "email_service listening on {base} (memcached: {servers}; lookups take {delay:?})\n\n\
         Try, in another terminal:\n\n\
         \x20 curl -i {base}/email/bob          # slow the first time (the lookup), x-cache: miss\n\
         \x20 curl -i {base}/email/bob          # instant: x-cache: hit\n\
         \x20 curl -i -d username=bob -d email=bob@new.example {base}/email\n\
         \x20 curl -i {base}/email/bob          # the new email, still without the slow lookup\n\
         \x20 curl -i -H 'content-type: application/json' \\\n\
         \x20      -d '{{\"username\":\"dave\",\"email\":\"dave@example.com\"}}' {base}/email\n\
         \x20 curl -i {base}/email/dave\n\n\
         Ctrl-C stops it (and the memcached it started)."
    );
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
    {
        eprintln!("email_service: {e}");
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}
