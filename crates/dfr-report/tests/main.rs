//! Integration tests of `dfr-report`, one test binary (each binary links the whole
//! dependency tree, so one per crate keeps build time and disk use down).

mod common;

mod plots;
mod report;
mod tables;
