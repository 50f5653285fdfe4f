use mcache_registry::{memoize, Cache, Client};

// `cache = cache` is missing: the cache would be taken for a keyed argument.
#[memoize(ttl = 60)]
async fn load(cache: &Cache<Client>, id: u32) -> String {
    id.to_string()
}

fn main() {}
