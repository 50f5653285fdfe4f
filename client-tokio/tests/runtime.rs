//! What the tokio adapter tells the client about the runtime it runs on.
#![allow(clippy::unwrap_used)]

use mcache_tokio::Tokio;

#[test]
fn a_current_thread_runtime_is_single_threaded_and_a_multi_thread_one_is_not() {
    let current = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let on_current = current.block_on(async { Tokio::runtime() });
    let on_multi = multi.block_on(async { Tokio::runtime() });
    assert!(on_current.single_threaded());
    assert!(!on_multi.single_threaded());
    // Made outside any runtime, it asks the runtime current where it is asked.
    let outside = Tokio::runtime();
    assert!(!outside.single_threaded());
    assert!(current.block_on(async { outside.single_threaded() }));
}
