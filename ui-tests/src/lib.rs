//! Compile-fail and compile-pass tests of `#[connector_plugin]` (see `tests/ui.rs`).
//! This crate has no code of its own.
