//! The README's tour is a complete program: compiled and run here (with `trybuild`) against a
//! real memcached, whose address it reads from `MEMCACHE_URL`. The README's other registry
//! code blocks are compiled as doc tests (`ReadmeDoctests` in `lib.rs`).
#![cfg(feature = "tokio")]

mod common;

/// The first ```` ```rust ```` block after `heading`.
fn block_after<'a>(text: &'a str, heading: &str) -> &'a str {
    let section = &text[text.find(heading).expect("the heading")..];
    let start = section.find("```rust").expect("a rust block");
    let code = &section[start..];
    let code = &code[code.find('\n').expect("a fence line") + 1..];
    &code[..code.find("\n```").expect("the closing fence") + 1]
}

#[test]
fn the_tour_compiles_and_runs_against_memcached() {
    let server = common::server();
    let readme = include_str!("../../README.md");
    let tour = block_after(readme, "## A tour");
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("readme");
    std::fs::create_dir_all(&dir).expect("a directory for the tour");
    let path = dir.join("tour.rs");
    std::fs::write(&path, tour).expect("the tour written out");
    // The program reads its memcached from the environment (trybuild runs it as a child).
    std::env::set_var(
        "MEMCACHE_URL",
        format!("memcache://{}", server.host_port_string()),
    );
    trybuild::TestCases::new().pass(&path);
}
