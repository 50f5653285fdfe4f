use mcache_registry::{memoize, Cache, Client};

#[derive(serde::Serialize, serde::Deserialize)]
struct AppError(String);

type AppResult<T> = Result<T, AppError>;

// An alias hides that this is a `Result`: without `result = true`, errors would be cached.
#[memoize(cache = cache)]
async fn load(cache: &Cache<Client>, id: u32) -> AppResult<String> {
    Ok(id.to_string())
}

fn main() {}
