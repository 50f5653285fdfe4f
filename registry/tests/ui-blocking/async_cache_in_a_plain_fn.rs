use mcache_registry::blocking::memoize;
use mcache_registry::{Cache, Client};

// `blocking::memoize` keeps `load` a plain `fn`: its cache must be a blocking one.
#[memoize(cache = cache)]
fn load(cache: &Cache<Client>, id: u32) -> String {
    id.to_string()
}

fn main() {}
