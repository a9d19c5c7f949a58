//! Device names: `cpu`, `cuda` or `cuda:N`, shared by every command that runs a model.

use crate::{Error, Result};
use candle_core::Device;

/// Parses a device name; `cuda` needs a build with the `cuda` feature.
pub fn parse(name: &str) -> Result<Device> {
    let name = name.trim().to_ascii_lowercase();
    if name == "cpu" {
        return Ok(Device::Cpu);
    }
    let bad = || Error::Invalid(format!("device `{name}`: expected cpu, cuda or cuda:N"));
    let Some(rest) = name.strip_prefix("cuda") else {
        return Err(bad());
    };
    let ordinal = match rest.strip_prefix(':') {
        Some(n) => n.parse::<usize>().map_err(|_| bad())?,
        None if rest.is_empty() => 0,
        None => return Err(bad()),
    };
    if !candle_core::utils::cuda_is_available() {
        return Err(Error::Invalid(format!(
            "device {name}: this build has no CUDA support (rebuild with --features cuda)"
        )));
    }
    Ok(Device::new_cuda(ordinal)?)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn parses_cpu_and_rejects_garbage() {
        assert!(parse(" CPU ").unwrap().is_cpu());
        for bad in ["gpu", "cuda:x", "cudax", ""] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains("expected cpu, cuda or cuda:N"), "{bad}: {e}");
        }
        if !candle_core::utils::cuda_is_available() {
            let e = parse("cuda:0").unwrap_err().to_string();
            assert!(e.contains("--features cuda"), "{e}");
        }
    }
}
