//! Checkpoints: safetensors with metadata, written atomically.
//!
//! Tensors use the internal torchvision-style names (parameters and BatchNorm
//! running statistics), so a checkpoint of a B-variant also loads into torchvision.
//! Metadata keys: `format` (`dfr-model/1`), `arch`, `num_classes`, `model_config`
//! (the [`EfficientNetConfig`] as JSON) and `config` (a free-form JSON string of the
//! caller, e.g. the training configuration).

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use candle_core::Device;

use crate::config::{Arch, EfficientNetConfig};
use crate::efficientnet::EfficientNet;
use crate::error::{Error, Result};

/// Metadata stored in a checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointMeta {
    /// Architecture.
    pub arch: Arch,
    /// Number of classes.
    pub num_classes: usize,
    /// Full model configuration.
    pub model_config: EfficientNetConfig,
    /// Free-form JSON string given at save time (`"{}"` if none).
    pub config: String,
}

/// Format tag written into the metadata.
pub const FORMAT: &str = "dfr-model/1";

/// Saves `model` (parameters and running statistics) to `path` atomically (a
/// temporary file in the same directory, then rename). `config_json` is stored
/// verbatim and must be valid JSON.
pub fn save_checkpoint(model: &EfficientNet, path: &Path, config_json: Option<&str>) -> Result<()> {
    let config = config_json.unwrap_or("{}");
    serde_json::from_str::<serde_json::Value>(config)
        .map_err(|e| Error::Invalid(format!("checkpoint config is not valid JSON: {e}")))?;
    let mc = model.config();
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), FORMAT.to_string());
    meta.insert("arch".to_string(), mc.arch.name().to_string());
    meta.insert("num_classes".to_string(), mc.num_classes.to_string());
    meta.insert(
        "model_config".to_string(),
        serde_json::to_string(mc).map_err(|e| Error::Invalid(e.to_string()))?,
    );
    meta.insert("config".to_string(), config.to_string());
    let tensors: Vec<(String, candle_core::Tensor)> = model
        .state_tensors()
        .into_iter()
        .map(|(n, t)| Ok((n, t.to_device(&Device::Cpu)?.contiguous()?)))
        .collect::<Result<_>>()?;
    let bytes = safetensors::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), Some(meta))
        .map_err(|e| Error::Checkpoint {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    write_atomic(path, &bytes)
}

/// [`dfr_fs::write_atomic`] with this crate's error (naming the file).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    dfr_fs::write_atomic(path, bytes).map_err(|e| Error::io(path, e))
}

/// Reads the `__metadata__` of a safetensors file (header only).
pub fn read_safetensors_metadata(path: &Path) -> Result<HashMap<String, String>> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len).map_err(|e| Error::io(path, e))?;
    let n = u64::from_le_bytes(len);
    if n > 100_000_000 {
        return Err(Error::Checkpoint {
            path: path.to_path_buf(),
            message: "not a safetensors file (header too large)".into(),
        });
    }
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header).map_err(|e| Error::io(path, e))?;
    let v: serde_json::Value = serde_json::from_slice(&header).map_err(|e| Error::Checkpoint {
        path: path.to_path_buf(),
        message: format!("bad header: {e}"),
    })?;
    let mut out = HashMap::new();
    if let Some(m) = v.get("__metadata__").and_then(|m| m.as_object()) {
        for (k, v) in m {
            if let Some(s) = v.as_str() {
                out.insert(k.clone(), s.to_string());
            }
        }
    }
    Ok(out)
}

/// Reads a checkpoint's metadata.
pub fn read_checkpoint_meta(path: &Path) -> Result<CheckpointMeta> {
    let m = read_safetensors_metadata(path)?;
    let err = |message: String| Error::Checkpoint {
        path: path.to_path_buf(),
        message,
    };
    let arch: Arch = m
        .get("arch")
        .ok_or_else(|| err("no `arch` in the metadata".into()))?
        .parse()?;
    let num_classes: usize = m
        .get("num_classes")
        .ok_or_else(|| err("no `num_classes` in the metadata".into()))?
        .parse()
        .map_err(|e| err(format!("bad num_classes: {e}")))?;
    let model_config = match m.get("model_config") {
        Some(s) => serde_json::from_str(s).map_err(|e| err(format!("bad model_config: {e}")))?,
        None => EfficientNetConfig::new(arch, num_classes),
    };
    Ok(CheckpointMeta {
        arch,
        num_classes,
        model_config,
        config: m.get("config").cloned().unwrap_or_else(|| "{}".into()),
    })
}

/// Loads a checkpoint written by [`save_checkpoint`] into a new model on `device`.
pub fn load_checkpoint(path: &Path, device: &Device) -> Result<(EfficientNet, CheckpointMeta)> {
    let meta = read_checkpoint_meta(path)?;
    let model = EfficientNet::new(meta.model_config.clone(), device, 0)?;
    let tensors = crate::weights::read_tensors(path, device)?;
    let report = crate::weights::load_into(&model, tensors, 0)?;
    if report.head_initialised {
        return Err(Error::Checkpoint {
            path: path.to_path_buf(),
            message: "classifier missing or mis-shaped".into(),
        });
    }
    Ok((model, meta))
}

/// Loads a binary real/fake detector checkpoint, checking its metadata first: a
/// checkpoint with another number of classes (e.g. a 1000-class ImageNet model) or,
/// when `expected_arch` is given, another architecture is a typed error
/// ([`Error::ClassMismatch`], [`Error::ArchMismatch`]) raised before any tensor is read.
pub fn load_detector(
    path: &Path,
    device: &Device,
    expected_arch: Option<Arch>,
) -> Result<EfficientNet> {
    let meta = read_checkpoint_meta(path)?;
    check_detector_meta(path, &meta, expected_arch)?;
    let (model, _) = load_checkpoint(path, device)?;
    Ok(model)
}

/// Checks a checkpoint's metadata for a binary detector of `expected_arch`.
pub fn check_detector_meta(
    path: &Path,
    meta: &CheckpointMeta,
    expected_arch: Option<Arch>,
) -> Result<()> {
    if let Some(a) = expected_arch {
        if meta.arch != a {
            return Err(Error::ArchMismatch {
                path: path.to_path_buf(),
                expected: a.name().into(),
                found: meta.arch.name().into(),
            });
        }
    }
    if meta.num_classes != 2 || meta.model_config.num_classes != 2 {
        return Err(Error::ClassMismatch {
            path: path.to_path_buf(),
            expected: 2,
            found: if meta.num_classes != 2 {
                meta.num_classes
            } else {
                meta.model_config.num_classes
            },
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Arch;

    #[test]
    fn roundtrip() -> Result<()> {
        let dev = Device::Cpu;
        let cfg = EfficientNetConfig::new(Arch::Lite0, 3);
        let m = EfficientNet::new(cfg.clone(), &dev, 7)?;
        // change a running stat so that buffers are checked too
        let name = "features.0.1.running_mean";
        m.buffer(name)
            .unwrap()
            .set(candle_core::Tensor::full(0.5f32, 32, &dev)?);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/ck.safetensors");
        save_checkpoint(&m, &p, Some(r#"{"lr":0.001}"#))?;
        let (m2, meta) = load_checkpoint(&p, &dev)?;
        assert_eq!(meta.arch, Arch::Lite0);
        assert_eq!(meta.num_classes, 3);
        assert_eq!(meta.model_config, cfg);
        assert_eq!(meta.config, r#"{"lr":0.001}"#);
        for ((n1, t1), (n2, t2)) in m.state_tensors().iter().zip(m2.state_tensors().iter()) {
            assert_eq!(n1, n2);
            let d = (t1 - t2)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert_eq!(d, 0.0, "{n1}");
        }
        // no temporary files left behind
        let left: Vec<_> = std::fs::read_dir(dir.path().join("sub")).unwrap().collect();
        assert_eq!(left.len(), 1);
        assert!(save_checkpoint(&m, &p, Some("not json")).is_err());
        Ok(())
    }
}
