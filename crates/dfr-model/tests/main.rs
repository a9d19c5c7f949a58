//! Integration tests of `dfr-model`, one test binary (each binary links the whole
//! dependency tree, so one per crate keeps build time and disk use down).

mod common;

mod checkpoint;
mod depthwise;
mod fused;
mod gradients;
mod model;
mod parity;
mod threads;
