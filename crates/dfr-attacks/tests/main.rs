//! Integration tests of `dfr-attacks`, one test binary (each binary links the whole
//! dependency tree, so one per crate keeps build time and disk use down).

mod common;

mod attacks;
mod module_dag;
mod parity;
mod robust_eval;
