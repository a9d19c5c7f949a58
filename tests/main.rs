//! End-to-end tests: miniatures of `cargo xtask reproduce-tables` and
//! `cargo xtask ablation`, in one test binary (each binary links the whole
//! dependency tree, polars included).

mod ablation;
mod study;
