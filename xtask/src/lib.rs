//! Orchestration of the dfr workspace (`cargo xtask …`): studies, benchmarks, parity.

pub mod bench;
pub mod bench_model;
pub mod parity;
pub mod published;
pub mod study;
