//! Integration tests of `dfr-data`, one test binary (each binary links the whole
//! dependency tree, so one per crate keeps build time and disk use down).

mod layouts;
mod loader;
mod masks;
mod synth;
mod synth_learnability;
mod torchvision_parity;
