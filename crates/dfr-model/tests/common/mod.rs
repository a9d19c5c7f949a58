//! Shared test helpers (included with `mod common;`).

use std::path::PathBuf;

use candle_core::{Device, Tensor};

/// The fixture directory, or `None` (with a notice) when it is missing and `CI` is
/// unset; fails the test when it is missing and `CI` is set.
pub fn fixtures() -> Option<PathBuf> {
    dfr_parity::fixtures_for_test("")
}

/// `max |t|` (on the CPU).
pub fn max_abs(t: &Tensor) -> f32 {
    t.to_device(&Device::Cpu)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// `max |a − b|`, on the CPU.
pub fn diff(a: &Tensor, b: &Tensor) -> f32 {
    let cpu = |t: &Tensor| t.to_device(&Device::Cpu).unwrap();
    max_abs(&(cpu(a) - cpu(b)).unwrap())
}
