//! The HTTP layer against a real memcached: what is cached, what is not, invalidation, and
//! the failure policy. Handler runs are counted; nothing is timed.

#![cfg(all(feature = "http", feature = "tokio"))]

mod common;

use axum::body::Body;
use axum::extract::{Path, Request as AxumRequest};
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http_body_util::BodyExt;
use mcache_registry::http::CacheLayer;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tower::ServiceExt;

/// Counts handler runs.
#[derive(Clone, Default)]
struct Runs(Arc<AtomicUsize>);

impl Runs {
    fn tick(&self) -> usize {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }
    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// A router whose every handler counts its runs; the body says which run answered.
fn app(layer: CacheLayer<mcache_registry::tokio::Client>, runs: Runs) -> Router {
    let r = runs.clone();
    let email = get(move |Path(user): Path<String>| {
        let n = r.tick();
        async move { format!("{user}@example.com #{n}") }
    });
    let r = runs.clone();
    let query = get(move |req: AxumRequest| {
        let n = r.tick();
        async move { format!("{} #{n}", req.uri().query().unwrap_or("")) }
    });
    let r = runs.clone();
    let vary = get(move |headers: HeaderMap| {
        let n = r.tick();
        async move {
            let lang = headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("en")
                .to_owned();
            ([(header::VARY, "Accept-Language")], format!("{lang} #{n}"))
        }
    });
    let r = runs.clone();
    let status = get(move |Path(code): Path<u16>| {
        let n = r.tick();
        async move {
            (
                StatusCode::from_u16(code).unwrap_or(StatusCode::IM_A_TEAPOT),
                format!("{code} #{n}"),
            )
        }
    });
    let r = runs.clone();
    let control = get(move |Path(value): Path<String>| {
        let n = r.tick();
        async move { ([(header::CACHE_CONTROL, value)], format!("#{n}")) }
    });
    let r = runs.clone();
    let cookie = get(move || {
        let n = r.tick();
        async move {
            (
                [(header::SET_COOKIE, "session=abc"), (header::ETAG, "\"e\"")],
                format!("#{n}"),
            )
        }
    });
    let r = runs.clone();
    let big = get(move |Path(len): Path<usize>| {
        let n = r.tick();
        async move {
            // A stream: no Content-Length, so the layer finds out the size by reading.
            let chunks = (0..len / 100)
                .map(|i| bytes::Bytes::from(format!("{:0>100}", i + n * 1_000_000)))
                .collect();
            Body::new(Chunks(chunks)).into_response()
        }
    });
    Router::new()
        .route("/email/{user}", email)
        .route("/query", query)
        .route("/vary", vary)
        .route("/status/{code}", status)
        .route("/control/{value}", control)
        .route("/cookie", cookie)
        .route("/big/{len}", big)
        .layer(layer)
}

/// A body of several chunks and no size hint, as a stream would be.
struct Chunks(std::collections::VecDeque<bytes::Bytes>);

impl http_body::Body for Chunks {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        std::task::Poll::Ready(self.0.pop_front().map(|b| Ok(http_body::Frame::data(b))))
    }
}

async fn layer_for(
    server: &mcache_testkit::Memcached,
) -> CacheLayer<mcache_registry::tokio::Client> {
    CacheLayer::builder(common::cache(server).await)
        .ignore_query_params(["_", "utm_source"])
        .max_body(10_000)
        .status_header(header::HeaderName::from_static("x-cache"))
        .build()
}

async fn send(app: &Router, request: Request<Body>) -> (StatusCode, HeaderMap, String) {
    let response: Response = app.clone().oneshot(request).await.expect("infallible");
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

async fn get_text(app: &Router, uri: &str) -> String {
    send(app, Request::get(uri).body(Body::empty()).expect("request"))
        .await
        .2
}

fn x_cache(headers: &HeaderMap) -> &str {
    headers
        .get("x-cache")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test]
async fn second_get_is_served_from_cache_and_invalidate_drops_it() {
    let server = common::server();
    let layer = layer_for(&server).await;
    let runs = Runs::default();
    let app = app(layer.clone(), runs.clone());

    let (status, headers, body) = send(
        &app,
        Request::get("/email/bob").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "bob@example.com #1")
    );
    assert_eq!(x_cache(&headers), "miss");
    let (status, headers, body) = send(
        &app,
        Request::get("/email/bob").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "bob@example.com #1")
    );
    assert_eq!(x_cache(&headers), "hit");
    assert_eq!(
        headers.get(header::CONTENT_LENGTH).unwrap(),
        "bob@example.com #1".len().to_string().as_str()
    );
    assert_eq!(
        headers.get(header::CONTENT_TYPE).unwrap(),
        "text/plain; charset=utf-8"
    );
    assert_eq!(runs.get(), 1, "the handler ran once");

    // Another URL is another entry.
    assert_eq!(get_text(&app, "/email/alice").await, "alice@example.com #2");

    assert!(layer.invalidate("/email/bob").await.unwrap());
    assert!(
        !layer.invalidate("/email/bob").await.unwrap(),
        "already gone"
    );
    assert_eq!(get_text(&app, "/email/bob").await, "bob@example.com #3");
    assert_eq!(get_text(&app, "/email/bob").await, "bob@example.com #3");
    assert_eq!(get_text(&app, "/email/alice").await, "alice@example.com #2");
    assert_eq!(runs.get(), 3);

    // By request: a POST to the same URL drops the GET.
    let post = Request::post("http://any.host/email/bob").body(()).unwrap();
    assert!(layer.invalidate_request(&post).await.unwrap());
    assert_eq!(get_text(&app, "/email/bob").await, "bob@example.com #4");

    // Everything at once.
    layer.invalidate_all().await.unwrap();
    assert_eq!(get_text(&app, "/email/alice").await, "alice@example.com #5");
    assert_eq!(get_text(&app, "/email/bob").await, "bob@example.com #6");
    assert_eq!(get_text(&app, "/email/bob").await, "bob@example.com #6");
    assert!(layer.invalidate("not a uri").await.is_err());
}

#[tokio::test]
async fn head_is_served_from_a_cached_get() {
    let server = common::server();
    let layer = layer_for(&server).await;
    let runs = Runs::default();
    let app = app(layer.clone(), runs.clone());
    // A HEAD miss passes through and stores nothing.
    let head = || Request::head("/email/carol").body(Body::empty()).unwrap();
    let (_, headers, body) = send(&app, head()).await;
    assert_eq!((x_cache(&headers), body.as_str()), ("miss", ""));
    assert_eq!(get_text(&app, "/email/carol").await, "carol@example.com #2");
    let (status, headers, body) = send(&app, head()).await;
    assert_eq!(
        (status, x_cache(&headers), body.as_str()),
        (StatusCode::OK, "hit", "")
    );
    assert_eq!(
        headers.get(header::CONTENT_LENGTH).unwrap(),
        "carol@example.com #2".len().to_string().as_str()
    );
    assert_eq!(runs.get(), 2);
}

#[tokio::test]
async fn vary_splits_entries_and_invalidation_drops_every_variant() {
    let server = common::server();
    let layer = layer_for(&server).await;
    let runs = Runs::default();
    let app = app(layer.clone(), runs.clone());
    let lang = |l: Option<&str>| {
        let mut b = Request::get("/vary");
        if let Some(l) = l {
            b = b.header(header::ACCEPT_LANGUAGE, l);
        }
        b.body(Body::empty()).unwrap()
    };
    assert_eq!(send(&app, lang(Some("fr"))).await.2, "fr #1");
    assert_eq!(send(&app, lang(Some("de"))).await.2, "de #2");
    assert_eq!(send(&app, lang(Some("fr"))).await.2, "fr #1");
    assert_eq!(send(&app, lang(Some("de"))).await.2, "de #2");
    assert_eq!(send(&app, lang(None)).await.2, "en #3");
    assert_eq!(send(&app, lang(None)).await.2, "en #3");
    assert_eq!(runs.get(), 3);

    // The host is part of the key too.
    let hosted = Request::get("/vary")
        .header(header::HOST, "other.example")
        .header(header::ACCEPT_LANGUAGE, "fr")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, hosted).await.2, "fr #4");

    assert!(layer.invalidate("/vary").await.unwrap());
    assert_eq!(send(&app, lang(Some("fr"))).await.2, "fr #5");
    assert_eq!(send(&app, lang(Some("de"))).await.2, "de #6");
    assert_eq!(send(&app, lang(Some("de"))).await.2, "de #6");
}

#[tokio::test]
async fn query_parameters_are_canonical_and_never_collide() {
    let server = common::server();
    let layer = layer_for(&server).await;
    let runs = Runs::default();
    let app = app(layer.clone(), runs.clone());
    assert_eq!(
        get_text(&app, "/query?userid=5&id=3").await,
        "userid=5&id=3 #1"
    );
    // Same parameters in another order, with ignored ones and another spelling of the same
    // bytes: one entry.
    assert_eq!(
        get_text(&app, "/query?id=3&userid=5").await,
        "userid=5&id=3 #1"
    );
    assert_eq!(
        get_text(&app, "/query?id=3&_=12345&userid=%35&utm_source=x").await,
        "userid=5&id=3 #1"
    );
    // Never shared: other values, or a name that merely contains an ignored one.
    assert_eq!(
        get_text(&app, "/query?userid=7&id=3").await,
        "userid=7&id=3 #2"
    );
    assert_eq!(
        get_text(&app, "/query?userid=5&id=4").await,
        "userid=5&id=4 #3"
    );
    assert_eq!(
        get_text(&app, "/query?userid=5&id=3&x_=1").await,
        "userid=5&id=3&x_=1 #4"
    );
    assert_eq!(get_text(&app, "/query?a=1&a=2").await, "a=1&a=2 #5");
    assert_eq!(get_text(&app, "/query?a=2&a=1").await, "a=2&a=1 #6");
    assert_eq!(get_text(&app, "/query").await, " #7");
    assert_eq!(get_text(&app, "/query?").await, " #7");
    assert_eq!(runs.get(), 7);

    // Invalidation canonicalises the same way.
    assert!(layer
        .invalidate("/query?utm_source=y&id=3&userid=5")
        .await
        .unwrap());
    assert_eq!(
        get_text(&app, "/query?userid=5&id=3").await,
        "userid=5&id=3 #8"
    );
    assert_eq!(
        get_text(&app, "/query?userid=7&id=3").await,
        "userid=7&id=3 #2"
    );
}

#[tokio::test]
async fn non_200_and_cache_control_are_respected() {
    let server = common::server();
    let layer = layer_for(&server).await;
    let runs = Runs::default();
    let app = app(layer.clone(), runs.clone());
    assert_eq!(get_text(&app, "/status/404").await, "404 #1");
    assert_eq!(get_text(&app, "/status/404").await, "404 #2");
    assert_eq!(get_text(&app, "/status/201").await, "201 #3");
    assert_eq!(get_text(&app, "/status/201").await, "201 #4");
    for (i, value) in ["no-store", "private", "no-cache", "private,%20max-age=60"]
        .iter()
        .enumerate()
    {
        let uri = format!("/control/{value}");
        let first = get_text(&app, &uri).await;
        let second = get_text(&app, &uri).await;
        assert_eq!(first, format!("#{}", 5 + 2 * i), "{value}");
        assert_eq!(second, format!("#{}", 6 + 2 * i), "{value}");
    }
    // public, max-age: cached.
    assert_eq!(get_text(&app, "/control/public").await, "#13");
    assert_eq!(get_text(&app, "/control/public").await, "#13");

    // Other statuses are opt-in.
    let runs = Runs::default();
    let app404 = self::app(
        CacheLayer::builder(common::cache(&server).await)
            .statuses([StatusCode::OK, StatusCode::NOT_FOUND])
            .function(mcache_registry::Function::new("http404"))
            .build(),
        runs.clone(),
    );
    assert_eq!(get_text(&app404, "/status/404").await, "404 #1");
    assert_eq!(get_text(&app404, "/status/404").await, "404 #1");
    assert_eq!(runs.get(), 1);
}

#[tokio::test]
async fn request_no_cache_refreshes_and_no_store_does_not_store() {
    let server = common::server();
    let layer = layer_for(&server).await;
    let runs = Runs::default();
    let app = app(layer.clone(), runs.clone());
    let with = |name: header::HeaderName, value: &'static str| {
        Request::get("/email/dave")
            .header(name, value)
            .body(Body::empty())
            .unwrap()
    };
    // no-store: neither stored...
    assert_eq!(
        send(&app, with(header::CACHE_CONTROL, "no-store")).await.2,
        "dave@example.com #1"
    );
    assert_eq!(get_text(&app, "/email/dave").await, "dave@example.com #2");
    // ...but may be served.
    assert_eq!(
        send(&app, with(header::CACHE_CONTROL, "no-store")).await.2,
        "dave@example.com #2"
    );
    // no-cache: not served from the cache, and refreshes it.
    assert_eq!(
        send(&app, with(header::CACHE_CONTROL, "no-cache")).await.2,
        "dave@example.com #3"
    );
    assert_eq!(get_text(&app, "/email/dave").await, "dave@example.com #3");
    assert_eq!(
        send(&app, with(header::PRAGMA, "no-cache")).await.2,
        "dave@example.com #4"
    );
    assert_eq!(get_text(&app, "/email/dave").await, "dave@example.com #4");
}

#[tokio::test]
async fn set_cookie_is_never_stored() {
    let server = common::server();
    let layer = layer_for(&server).await;
    let runs = Runs::default();
    let app = app(layer.clone(), runs.clone());
    let (_, headers, body) = send(&app, Request::get("/cookie").body(Body::empty()).unwrap()).await;
    assert_eq!(body, "#1");
    assert_eq!(
        headers.get(header::SET_COOKIE).unwrap(),
        "session=abc",
        "passed on"
    );
    let (_, headers, body) = send(&app, Request::get("/cookie").body(Body::empty()).unwrap()).await;
    assert_eq!(body, "#2", "a response that sets a cookie is not cached");
    assert_eq!(headers.get(header::SET_COOKIE).unwrap(), "session=abc");
}

#[tokio::test]
async fn credentialed_requests_pass_through() {
    let server = common::server();
    let layer = layer_for(&server).await;
    let runs = Runs::default();
    let app = app(layer.clone(), runs.clone());
    assert_eq!(get_text(&app, "/email/erin").await, "erin@example.com #1");
    for (name, value) in [(header::AUTHORIZATION, "Bearer x"), (header::COOKIE, "s=1")] {
        let req = || {
            Request::get("/email/erin")
                .header(name.clone(), value)
                .body(Body::empty())
                .unwrap()
        };
        let (_, headers, body) = send(&app, req()).await;
        assert_eq!(x_cache(&headers), "bypass");
        assert!(body.starts_with("erin@example.com #"), "{body}");
        assert_ne!(body, "erin@example.com #1", "not served from the cache");
    }
    assert_eq!(runs.get(), 3);
    // ...and stored nothing.
    assert_eq!(get_text(&app, "/email/erin").await, "erin@example.com #1");

    // Opt-in.
    let runs = Runs::default();
    let app = self::app(
        CacheLayer::builder(common::cache(&server).await)
            .cache_credentialed(true)
            .function(mcache_registry::Function::new("http-cred"))
            .build(),
        runs.clone(),
    );
    let req = || {
        Request::get("/email/erin")
            .header(header::AUTHORIZATION, "Bearer x")
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(send(&app, req()).await.2, "erin@example.com #1");
    assert_eq!(send(&app, req()).await.2, "erin@example.com #1");
}

#[tokio::test]
async fn bodies_over_the_limit_pass_through_unchanged() {
    let server = common::server();
    let layer = layer_for(&server).await; // max_body 10_000
    let runs = Runs::default();
    let app = app(layer.clone(), runs.clone());
    let first = get_text(&app, "/big/50000").await;
    assert_eq!(first.len(), 50_000);
    let expected: String = (0..500)
        .map(|i| format!("{:0>100}", i + 1_000_000))
        .collect();
    assert_eq!(first, expected, "streamed whole and in order");
    let second = get_text(&app, "/big/50000").await;
    assert_eq!(second.len(), 50_000);
    assert_ne!(first, second, "not cached");
    assert_eq!(runs.get(), 2);
    // Under the limit: cached.
    let small = get_text(&app, "/big/5000").await;
    assert_eq!(get_text(&app, "/big/5000").await, small);
    assert_eq!(runs.get(), 3);
}

#[tokio::test]
async fn memcached_down_means_pass_through() {
    let server = common::server();
    let cache = mcache_registry::Cache::new(common::impatient_client(&server).await, "test")
        .expect("namespace");
    let layer = CacheLayer::new(cache);
    let runs = Runs::default();
    let app = app(layer.clone(), runs.clone());
    assert_eq!(get_text(&app, "/email/fay").await, "fay@example.com #1");
    assert_eq!(get_text(&app, "/email/fay").await, "fay@example.com #1");
    drop(server);
    for i in 2..=6 {
        let (status, _, body) = send(
            &app,
            Request::get("/email/fay").body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(
            (status, body),
            (StatusCode::OK, format!("fay@example.com #{i}"))
        );
    }
    assert!(
        layer.invalidate("/email/fay").await.is_err(),
        "the handle reports errors"
    );
}

#[tokio::test]
async fn other_methods_pass_through() {
    let server = common::server();
    let layer = layer_for(&server).await;
    let runs = Runs::default();
    let r = runs.clone();
    let app = Router::new()
        .route(
            "/thing",
            get(|| async { "get" }).post(move || {
                let n = r.tick();
                async move { format!("post #{n}") }
            }),
        )
        .layer(layer);
    for i in 1..=2 {
        let req = Request::builder()
            .method(Method::POST)
            .uri("/thing")
            .body(Body::empty())
            .unwrap();
        assert_eq!(send(&app, req).await.2, format!("post #{i}"));
    }
    let _ = HeaderValue::from_static("");
}

/// A disabled cache (`Cache::disabled()`): every request passes through to the handler, and
/// invalidation is a no-op.
#[tokio::test]
async fn a_disabled_cache_passes_everything_through() {
    let layer = CacheLayer::builder(mcache_registry::Cache::disabled())
        .status_header(header::HeaderName::from_static("x-cache"))
        .build();
    let runs = Runs::default();
    let app = app(layer.clone(), runs.clone());
    for n in 1..=2 {
        let request = Request::get("/email/dora").body(Body::empty()).unwrap();
        let (_, headers, body) = send(&app, request).await;
        assert_eq!(body, format!("dora@example.com #{n}"));
        assert_eq!(x_cache(&headers), "bypass");
    }
    assert!(!layer.invalidate("/email/dora").await.unwrap());
    layer.invalidate_all().await.unwrap();
}
