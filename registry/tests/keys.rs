//! Function-identity keys against a real memcached: golden keys (fixed arguments give a fixed
//! key string), no two calls sharing a key (same name in two modules or two types, arguments
//! that only differ in where a string ends), spaces and newlines, and a 10 KB argument.
#![cfg(feature = "tokio")]

mod common;

use mcache_registry::tokio::Client;
use mcache_registry::{memoize, Args, Cache, Function};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};

mod users {
    use super::*;

    pub(super) static RUNS: AtomicUsize = AtomicUsize::new(0);

    #[memoize(cache = cache, skip = [cache])]
    pub async fn get_email(cache: &Cache<Client>, username: &str) -> String {
        RUNS.fetch_add(1, Ordering::SeqCst);
        format!("{username}@users")
    }
}

mod admins {
    use super::*;

    /// Same name, other module: other keys.
    #[memoize(cache = cache, skip = [cache])]
    pub async fn get_email(cache: &Cache<Client>, username: &str) -> String {
        format!("{username}@admins")
    }
}

#[derive(Serialize)]
struct Query {
    user: u64,
    tags: Vec<String>,
    limit: Option<u32>,
    filters: BTreeMap<String, i64>,
    ratio: f64,
}

#[derive(Serialize)]
enum Order {
    Newest,
    By { field: String },
}

#[test]
fn golden_keys() {
    // These strings are the key format: changing them invalidates every deployed cache.
    let get_email = Function::new("app::users::get_email");
    let ns = mcache_registry::__golden_key;
    assert_eq!(
        ns("ns", &get_email, &Args::new().with("bob").unwrap()),
        "ns:app::users::get_email:v1:s3:bob"
    );
    assert_eq!(
        ns(
            "ns",
            &get_email.with_version(7),
            &Args::new().with(&1u8).unwrap().with(&23u32).unwrap()
        ),
        "ns:app::users::get_email:v7:i1:i23"
    );
    assert_eq!(
        ns("ns", &get_email, &Args::new().with("a b\r\n%").unwrap()),
        "ns:app::users::get_email:v1:s6:a%20b%0D%0A%25"
    );
    let query = Query {
        user: 42,
        tags: vec!["x".into(), "y z".into()],
        limit: None,
        filters: BTreeMap::from([("b".into(), -1), ("a".into(), 2)]),
        ratio: 0.5,
    };
    assert_eq!(
        ns(
            "ns",
            &Function::new("app::search"),
            &Args::new()
                .with(&query)
                .unwrap()
                .with(&Order::By { field: "date".into() })
                .unwrap()
                .with(&Order::Newest)
                .unwrap()
                .with(&(true, 'é', ()))
                .unwrap()
        ),
        "ns:app::search:v1:(user=i42,tags=[s1:x,s3:y%20z],limit=n,filters={s1:a=i2,s1:b=i-1},ratio=d3fe0000000000000):#By(field=s4:date):#Newest:[t,c2:%C3%A9,z]"
    );
    let long = "x".repeat(10_000);
    assert_eq!(
        ns("ns", &get_email, &Args::new().with(&long).unwrap()),
        "ns:app::users::get_email:v1:!qP5jfyGiUF6pCvpjSXkWYH7eyODNSPPtV7XHY7ACzxo"
    );
}

#[tokio::test]
async fn macro_keys_name_the_function_by_its_path() {
    let server = common::server();
    let cache = common::cache(&server).await;
    assert_eq!(
        users::get_email::key(&cache, "bob").unwrap().to_string(),
        "test:keys::users::get_email:v1:s3:bob"
    );
    assert_eq!(users::get_email::FUNCTION.path(), "keys::users::get_email");
    assert_eq!(users::get_email(&cache, "bob").await, "bob@users");
    assert_eq!(
        admins::get_email(&cache, "bob").await,
        "bob@admins",
        "same name, other module"
    );
    assert_eq!(users::get_email(&cache, "bob").await, "bob@users");
}

static SPLIT_RUNS: AtomicUsize = AtomicUsize::new(0);

#[memoize(cache = cache, skip = [cache])]
async fn echo(cache: &Cache<Client>, a: String, b: String) -> String {
    SPLIT_RUNS.fetch_add(1, Ordering::SeqCst);
    format!("{a}|{b}")
}

#[tokio::test]
async fn arguments_never_share_a_key() {
    let server = common::server();
    let cache = common::cache(&server).await;
    let calls = [
        ("a b", ""),
        ("ab", ""),
        ("a", "b"),
        ("a\nb", ""),
        ("a\r\nflush_all", ""),
        ("a\r", "\nflush_all"),
        ("", "ab"),
        ("s1:a", ""),
        ("%20", ""),
        (" ", ""),
    ];
    for _ in 0..2 {
        for (a, b) in calls {
            assert_eq!(echo(&cache, a.into(), b.into()).await, format!("{a}|{b}"));
        }
    }
    assert_eq!(
        SPLIT_RUNS.load(Ordering::SeqCst),
        calls.len(),
        "each call cached once, under its own key"
    );
    let mut keys: Vec<String> = calls
        .iter()
        .map(|(a, b)| {
            echo::key(&cache, a.to_string(), b.to_string())
                .unwrap()
                .to_string()
        })
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), calls.len());
    assert!(keys
        .iter()
        .all(|k| k.bytes().all(|b| (0x21..=0x7e).contains(&b))));
}

static LONG_RUNS: AtomicUsize = AtomicUsize::new(0);

#[memoize(cache = cache, skip = [cache])]
async fn long_arg(cache: &Cache<Client>, text: String, map: HashMap<String, u32>) -> usize {
    LONG_RUNS.fetch_add(1, Ordering::SeqCst);
    text.len() + map.len()
}

#[tokio::test]
async fn ten_kilobyte_arguments_are_hashed_into_a_valid_key() {
    let server = common::server();
    let cache = common::cache(&server).await;
    let big = "x".repeat(10_000);
    let map: HashMap<String, u32> = (0..100).map(|i| (format!("key {i}"), i)).collect();
    assert_eq!(long_arg(&cache, big.clone(), map.clone()).await, 10_100);
    assert_eq!(long_arg(&cache, big.clone(), map.clone()).await, 10_100);
    assert_eq!(
        LONG_RUNS.load(Ordering::SeqCst),
        1,
        "cached under the hashed key"
    );
    // A HashMap built in another order (another RandomState) gives the same key.
    let reordered: HashMap<String, u32> = map.iter().map(|(k, v)| (k.clone(), *v)).collect();
    assert!(
        reordered.iter().zip(map.iter()).any(|(a, b)| a != b),
        "another iteration order"
    );
    let k1 = long_arg::key(&cache, big.clone(), map.clone())
        .unwrap()
        .to_string();
    let k2 = long_arg::key(&cache, big.clone(), reordered)
        .unwrap()
        .to_string();
    assert_eq!(k1, k2);
    assert!(k1.len() <= 250, "{}", k1.len());
    assert!(k1.starts_with("test:keys::long_arg:v1:!"), "{k1}");
    let other = long_arg::key(&cache, format!("{big}x"), map.clone())
        .unwrap()
        .to_string();
    assert_ne!(k1, other);
    assert_eq!(long_arg(&cache, format!("{big}x"), map).await, 10_101);
    assert_eq!(LONG_RUNS.load(Ordering::SeqCst), 2);
}

struct Account {
    id: u64,
    region: &'static str,
    cache: Cache<Client>,
}

struct Invoice {
    id: u64,
    cache: Cache<Client>,
}

static ACCOUNT_RUNS: AtomicUsize = AtomicUsize::new(0);

#[memoize(cache = self.cache)]
impl Account {
    #[memoize(self_key = [self.id, self.region])]
    async fn total(&self, year: u32) -> u64 {
        ACCOUNT_RUNS.fetch_add(1, Ordering::SeqCst);
        self.id * 1000 + u64::from(year)
    }
}

#[memoize(cache = self.cache)]
impl Invoice {
    /// Same method name as `Account::total`, same arguments: other keys.
    #[memoize(self_key = [self.id])]
    async fn total(&self, year: u32) -> u64 {
        self.id + u64::from(year)
    }
}

#[tokio::test]
async fn methods_are_keyed_by_type_and_chosen_fields() {
    let server = common::server();
    let cache = common::cache(&server).await;
    let one = Account {
        id: 1,
        region: "eu",
        cache: cache.clone(),
    };
    let one_again = Account {
        id: 1,
        region: "eu",
        cache: cache.clone(),
    };
    let two = Account {
        id: 2,
        region: "eu",
        cache: cache.clone(),
    };
    let invoice = Invoice {
        id: 1,
        cache: cache.clone(),
    };
    assert_eq!(one.total(2024).await, 3024);
    assert_eq!(one_again.total(2024).await, 3024);
    assert_eq!(
        ACCOUNT_RUNS.load(Ordering::SeqCst),
        1,
        "same fields, same key"
    );
    assert_eq!(two.total(2024).await, 4024);
    assert_eq!(ACCOUNT_RUNS.load(Ordering::SeqCst), 2);
    assert_eq!(
        invoice.total(2024).await,
        2025,
        "same method name in another type"
    );
    assert_eq!(
        one.total_key(2024).unwrap().to_string(),
        "test:keys::Account::total:v1:i1:s2:eu:i2024"
    );
    assert_eq!(
        invoice.total_key(2024).unwrap().to_string(),
        "test:keys::Invoice::total:v1:i1:i2024"
    );
}
