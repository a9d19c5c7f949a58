//! Integration tests of `dfr-metrics`, one test binary (each binary links the whole
//! dependency tree, so one per crate keeps build time and disk use down).

mod metrics;
mod parity;
mod stats;
