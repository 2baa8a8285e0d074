//! `#[connector_plugin]` misuse is a compile error on the offending tokens; correct uses
//! compile. Regenerate `.stderr` files with `TRYBUILD=overwrite cargo test -p weir-ui-tests`
//! and review them.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/fail/*.rs");
    t.pass("tests/pass/*.rs");
}
