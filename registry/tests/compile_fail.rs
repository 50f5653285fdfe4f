//! The mistakes a newcomer makes with `#[memoize]`, and the compiler errors they get: each
//! names the argument or type at fault and says what to write (`tests/ui/*.stderr`).

#[test]
fn mistakes_get_errors_that_say_what_to_write() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
