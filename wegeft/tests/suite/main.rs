//! The wegeft integration tests, one binary so that each backend's generic code compiles once.
//!
//! Suites written as `fn test<B: AutodiffBackend>()` run on every compiled backend through
//! `wegeft_backend::backend_tests!`: `cargo test -p wegeft` (ndarray), `--features wgpu`, `--features cuda`.

#[macro_use]
extern crate wegeft_backend;

mod common;

mod adapter_files;
mod cross_backend;
mod peft_methods;
mod precision;
mod properties;
mod reference;
mod reliability;
mod targets;
