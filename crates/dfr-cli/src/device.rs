//! `--device cpu|cuda[:N]`.

use anyhow::{Context, Result};
use candle_core::Device;

/// Parses a device name; `cuda` needs a build with the `cuda` feature.
pub fn parse(name: &str) -> Result<Device> {
    dfr_model::device::parse(name).context("--device")
}
