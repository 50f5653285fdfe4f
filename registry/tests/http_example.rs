//! The email_service example end to end over real HTTP on loopback: its router, served on a
//! free port, against a real memcached. Lookups are counted; nothing is timed.

#![cfg(all(feature = "http", feature = "tokio"))]

mod common;

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../examples/email_service.rs"]
mod email_service;

use axum::http::StatusCode;
use email_service::{request, AppState, Db};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use std::sync::Arc;
use std::time::Duration;

async fn serve(server: &mcache_testkit::Memcached) -> (String, Arc<Db>, AppState) {
    let cache = mcache_registry::Cache::new(common::client(server).await, "email_service")
        .expect("namespace");
    let db = Arc::new(Db::new(Duration::from_millis(50)));
    let state = AppState {
        pages: email_service::pages(&cache),
        cache,
        db: db.clone(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let app = email_service::router(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, db, state)
}

#[tokio::test]
async fn slow_once_then_cached_then_updated() {
    let server = common::server();
    let (base, db, state) = serve(&server).await;

    let first = request(&base, "GET", "/email/bob", None).await.unwrap();
    assert_eq!(
        (first.status, first.body.as_str()),
        (StatusCode::OK, "bob@example.com\n")
    );
    assert_eq!(first.cache, "miss");
    assert_eq!(db.lookups(), 1, "the first GET took the slow path");
    let second = request(&base, "GET", "/email/bob", None).await.unwrap();
    assert_eq!(
        (second.body.as_str(), second.cache.as_str()),
        ("bob@example.com\n", "hit")
    );
    assert_eq!(db.lookups(), 1, "the second GET did not run the lookup");

    // The page cache dropped alone: the memoized lookup still answers.
    assert!(state.pages.invalidate("/email/bob").await.unwrap());
    let third = request(&base, "GET", "/email/bob", None).await.unwrap();
    assert_eq!(
        (third.body.as_str(), third.cache.as_str()),
        ("bob@example.com\n", "miss")
    );
    assert_eq!(db.lookups(), 1, "served by #[memoize]");

    let post = request(
        &base,
        "POST",
        "/email",
        Some("username=bob&email=bob%40new.example"),
    )
    .await
    .unwrap();
    assert_eq!(post.status, StatusCode::OK, "{}", post.body);
    let fourth = request(&base, "GET", "/email/bob", None).await.unwrap();
    assert_eq!(
        fourth.body, "bob@new.example\n",
        "the POST dropped the cached page"
    );
    assert_eq!(db.lookups(), 1, "replace stored the new value: no lookup");
    let fifth = request(&base, "GET", "/email/bob", None).await.unwrap();
    assert_eq!(
        (fifth.body.as_str(), fifth.cache.as_str()),
        ("bob@new.example\n", "hit")
    );
    assert!(email_service::get_email::is_cached(&state.cache, "bob")
        .await
        .unwrap());
}

#[tokio::test]
async fn json_posts_and_unknown_users() {
    let server = common::server();
    let (base, db, _state) = serve(&server).await;
    let missing = request(&base, "GET", "/email/dave", None).await.unwrap();
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(db.lookups(), 1);

    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let req = hyper::Request::post(format!("{base}/email"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(
            br#"{"username":"dave","email":"dave@example.com"}"#,
        )))
        .unwrap();
    let response = client.request(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let _ = response.into_body().collect().await.unwrap();

    let found = request(&base, "GET", "/email/dave", None).await.unwrap();
    assert_eq!(found.body, "dave@example.com\n");
    assert_eq!(
        db.lookups(),
        1,
        "the 404 was not cached, the POST stored the value"
    );

    let bad = request(&base, "POST", "/email", Some("username=dave"))
        .await
        .unwrap();
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_self_test_passes() {
    let server = common::server();
    let (base, db, _state) = serve(&server).await;
    email_service::self_test(&base, &db).await.unwrap();
}
