//! Integration tests of `dfr-explain`, one test binary (each binary links the whole
//! dependency tree, so one per crate keeps build time and disk use down).

mod gradcam;
mod localisation;
mod parity;
