//! `--device cpu|cuda[:N]`.

use anyhow::{bail, Result};
use candle_core::Device;

/// Parses a device name; `cuda` needs a build with the `cuda` feature.
pub fn parse(name: &str) -> Result<Device> {
    let name = name.trim().to_ascii_lowercase();
    if name == "cpu" {
        return Ok(Device::Cpu);
    }
    if let Some(rest) = name.strip_prefix("cuda") {
        let ordinal = match rest.strip_prefix(':') {
            Some(n) => n
                .parse::<usize>()
                .map_err(|_| anyhow::anyhow!("--device `{name}`: expected cuda:N"))?,
            None if rest.is_empty() => 0,
            None => bail!("--device `{name}`: expected cpu, cuda or cuda:N"),
        };
        if !candle_core::utils::cuda_is_available() {
            bail!("--device {name}: this build has no CUDA support (rebuild with --features cuda)");
        }
        return Ok(Device::new_cuda(ordinal)?);
    }
    bail!("--device `{name}`: expected cpu, cuda or cuda:N")
}
