//! The txcaching example: a slow `DB::get(username)` memoized; the second call is served from
//! memcached; `DB::set` replaces the cached value through the key registry and the next get
//! returns the new email without running the body.
#![cfg(feature = "tokio")]

mod common;

use mcache_registry::tokio::Client;
use mcache_registry::{memoize, Cache};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

struct Db {
    cache: Cache<Client>,
    emails: Mutex<HashMap<String, String>>,
    reads: AtomicUsize,
}

#[memoize(cache = self.cache)]
impl Db {
    /// A slow lookup.
    #[memoize(skip_self, ttl = 60)]
    async fn get(&self, username: &str) -> Option<String> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.emails.lock().expect("lock").get(username).cloned()
    }

    async fn set(&self, username: &str, email: &str) {
        self.emails
            .lock()
            .expect("lock")
            .insert(username.to_string(), email.to_string());
        self.get_replace(username, &email.to_string())
            .await
            .expect("replaced");
    }
}

#[tokio::test]
async fn second_get_is_cached_and_set_replaces() {
    let server = common::server();
    let db = Db {
        cache: common::cache(&server).await,
        emails: Mutex::new(HashMap::from([("bob".into(), "bob@old.example".into())])),
        reads: AtomicUsize::new(0),
    };
    assert_eq!(db.get("bob").await.as_deref(), Some("bob@old.example"));
    assert_eq!(db.get("bob").await.as_deref(), Some("bob@old.example"));
    assert_eq!(
        db.reads.load(Ordering::SeqCst),
        1,
        "second call served from memcached"
    );
    assert!(db.get_is_cached("bob").await.unwrap());

    db.set("bob", "bob@new.example").await;
    assert_eq!(db.get("bob").await.as_deref(), Some("bob@new.example"));
    assert_eq!(
        db.reads.load(Ordering::SeqCst),
        1,
        "replaced through the registry: body not run"
    );
    assert_eq!(
        db.get_cached("bob").await.unwrap().as_deref(),
        Some("bob@new.example")
    );

    // The key is the function's path, from tokens: module, type, name.
    let key = db.get_key("bob").unwrap().to_string();
    assert_eq!(key, "test:txcaching::Db::get:v1:s3:bob");

    // Unknown users are not cached (None is negative, not cached by default).
    assert_eq!(db.get("alice").await, None);
    assert_eq!(db.get("alice").await, None);
    assert_eq!(db.reads.load(Ordering::SeqCst), 3);
    assert!(!db.get_is_cached("alice").await.unwrap());

    assert!(db.get_invalidate("bob").await.unwrap());
    assert!(!db.get_is_cached("bob").await.unwrap());
    assert_eq!(db.get("bob").await.as_deref(), Some("bob@new.example"));
    assert_eq!(db.reads.load(Ordering::SeqCst), 4);
}
