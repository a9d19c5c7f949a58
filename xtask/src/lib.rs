//! Orchestration of the dfr workspace (`cargo xtask …`): the command-line front end of
//! `dfr-study` (studies, ablations), benchmarks and parity.

pub mod bench;
pub mod bench_augment;
pub mod bench_learning;
pub mod bench_model;
pub mod bench_reference;
pub mod cli;
pub mod parity;
