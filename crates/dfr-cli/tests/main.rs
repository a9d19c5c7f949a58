//! Integration tests of `dfr-cli`, one test binary (each binary links the whole
//! dependency tree, so one per crate keeps build time and disk use down).

mod common;

mod pipeline;
mod robustness;
mod train_resume;
