use mcache_registry::{memoize, Cache, Client};

type Maybe<T> = Option<T>;

#[memoize(cache = cache)]
async fn find(cache: &Cache<Client>, id: u32) -> Maybe<u32> {
    Some(id)
}

fn main() {}
