use mcache_registry::{memoize, Cache, Client};

struct Db {
    cache: Cache<Client>,
}

#[memoize(cache = self.cache)]
impl Db {
    // Which fields of `self` identify the result?
    #[memoize]
    async fn get(&self, id: u32) -> String {
        id.to_string()
    }
}

fn main() {}
