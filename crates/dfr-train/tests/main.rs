//! Integration tests of `dfr-train`, one test binary (each binary links the whole
//! dependency tree, so one per crate keeps build time and disk use down).

mod common;
mod pim_parity;
mod robustness;
mod training;
mod trajectory;
