//! Orchestration of the dfr workspace (`cargo xtask …`): studies, benchmarks, parity.

/// A polars column from a name and a vector (`col!("accuracy", vec![0.5])`).
macro_rules! col {
    ($name:expr, $values:expr $(,)?) => {
        dfr_report::polars::prelude::Column::new(
            dfr_report::polars::prelude::PlSmallStr::from(&*$name.to_string()),
            $values,
        )
    };
}

pub mod ablation;
pub mod bench;
pub mod bench_augment;
pub mod bench_learning;
pub mod bench_model;
pub mod bench_reference;
pub mod parity;
pub mod published;
pub mod study;
