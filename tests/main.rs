//! End-to-end tests: miniatures of `cargo xtask reproduce-tables`,
//! `cargo xtask ablation` and `cargo xtask generalization`, in one test binary (each binary links the whole
//! dependency tree, polars included).

mod ablation;
mod generalization;
mod study;
