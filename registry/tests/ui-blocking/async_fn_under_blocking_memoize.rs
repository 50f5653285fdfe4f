use mcache_registry::blocking::{memoize, Blocking};
use mcache_registry::Cache;

#[memoize(cache = cache)]
async fn load(cache: &Cache<Blocking>, id: u32) -> String {
    id.to_string()
}

fn main() {}
