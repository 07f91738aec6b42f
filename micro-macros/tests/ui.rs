//! Compile-time behaviour of the macros: what compiles, and misuse as compiler errors at the
//! user's code (`.stderr` snapshots; refresh them with `TRYBUILD=overwrite` after checking).

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
