use mcache_registry::{memoize, Cache, Client};

struct Repo {
    cache: Cache<Client>,
}

#[memoize(cache = self.cache)]
impl Repo {
    #[memoize(skip_self)]
    async fn row(&self, id: u32) -> String {
        id.to_string()
    }

    // No `self` here: the block's `cache = self.cache` cannot reach a cache.
    #[memoize]
    async fn lookup(id: u32) -> u32 {
        id * 2
    }
}

fn main() {}
