use mcache_registry::{memoize, Cache, Client};

struct Connection;

// `db` cannot be part of the key: it is not `Serialize`.
#[memoize(cache = cache)]
async fn load(cache: &Cache<Client>, db: &Connection, id: u32) -> String {
    let _ = db;
    id.to_string()
}

fn main() {}
