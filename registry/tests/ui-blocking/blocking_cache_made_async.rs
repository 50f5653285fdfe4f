use mcache_registry::blocking::Blocking;
use mcache_registry::{memoize, Cache};

// `mcache_registry::memoize` makes `load` async, and a blocking cache would block its
// executor: `blocking::memoize` keeps it plain.
#[memoize(cache = cache)]
fn load(cache: &Cache<Blocking>, id: u32) -> String {
    id.to_string()
}

fn main() {}
