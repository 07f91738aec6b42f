//! Benchmarks of micro for Rust; see `benches/`. Run them with `cargo bench -p micro-bench`
//! (or one: `cargo bench -p micro-bench --bench load`).
