use mcache_registry::{memoize, Cache, Client};

// `result = true` on a type that is not a `Result`.
#[memoize(cache = cache, result = true)]
async fn count(cache: &Cache<Client>, id: u32) -> u64 {
    u64::from(id)
}

fn main() {}
