//! The mistakes a newcomer makes with `#[memoize]`, and the compiler errors they get: each
//! names the argument or type at fault and says what to write (`tests/ui/*.stderr`).

#[test]
fn mistakes_get_errors_that_say_what_to_write() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}

/// The two forms do not mix: a plain `fn` under `blocking::memoize` with an async cache, a
/// blocking cache under `memoize` (which makes the function `async`), an `async fn` under
/// `blocking::memoize`. Each error says which to use.
#[cfg(feature = "blocking")]
#[test]
fn mixing_the_forms_gets_errors_that_say_which_to_use() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui-blocking/*.rs");
}
