//! Resume checkpoints: one safetensors file holding the model's parameters and BN statistics,
//! Adam's moments and step, and (in its metadata) the position in the schedule, early-stopping
//! state and the partial epoch's accumulators. Written atomically, so a run killed at any
//! moment resumes from the last complete checkpoint.

use crate::adam::Adam;
use crate::error::{Result, TrainError};
use candle_core::{Device, Tensor};
use dfr_model::EfficientNet;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// Position and bookkeeping of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Current epoch (0-based).
    pub epoch: usize,
    /// Batches of the current epoch already done.
    pub batch_in_epoch: usize,
    /// Optimiser steps taken.
    pub global_step: usize,
    /// Best validation macro-F1 so far.
    pub best_metric: Option<f64>,
    /// Epoch of the best validation macro-F1.
    pub best_epoch: Option<usize>,
    /// Epochs since the last improvement.
    pub bad_epochs: usize,
    /// Whether training has finished (epochs exhausted or stopped early).
    pub finished: bool,
    /// Why training finished.
    pub stop_reason: Option<String>,
    /// Sum of per-batch losses × batch size in the current epoch.
    pub loss_sum: f64,
    /// Probabilities of "fake" seen in the current epoch (train mode).
    pub scores: Vec<f32>,
    /// Labels seen in the current epoch.
    pub labels: Vec<u32>,
    /// Images seen in the current epoch.
    pub seen: usize,
    /// Seconds spent training so far (across restarts).
    pub seconds: f64,
}

const META_STATE: &str = "train_state";
const META_CONFIG: &str = "experiment_config";
const META_ADAM_T: &str = "adam_t";

/// Saves everything needed to resume.
pub fn save(
    path: &Path,
    model: &EfficientNet,
    adam: &Adam,
    state: &TrainState,
    config_toml: &str,
) -> Result<()> {
    let mut tensors: Vec<(String, Tensor)> = model
        .state_tensors()
        .into_iter()
        .map(|(n, t)| (format!("model/{n}"), t))
        .collect();
    for s in &adam.slots {
        tensors.push((format!("adam.m/{}", s.name), s.m.clone()));
        tensors.push((format!("adam.v/{}", s.name), s.v.clone()));
    }
    let tensors = tensors
        .into_iter()
        .map(|(n, t)| Ok((n, t.to_device(&Device::Cpu)?.contiguous()?)))
        .collect::<Result<Vec<_>>>()?;
    let mut meta = HashMap::new();
    meta.insert(
        META_STATE.to_string(),
        serde_json::to_string(state).expect("state serialises"),
    );
    meta.insert(META_CONFIG.to_string(), config_toml.to_string());
    meta.insert(META_ADAM_T.to_string(), adam.t.to_string());
    let bytes = safetensors::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), Some(meta))
        .map_err(|e| TrainError::Resume {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    dfr_fs::write_atomic(path, &bytes).map_err(|e| TrainError::io("writing", path, e))?;
    Ok(())
}

/// Restores model, optimiser and state from `path`; the stored experiment configuration must
/// equal `config_toml`.
pub fn load(
    path: &Path,
    model: &EfficientNet,
    adam: &mut Adam,
    config_toml: &str,
) -> Result<TrainState> {
    let err = |m: String| TrainError::Resume {
        path: path.to_path_buf(),
        message: m,
    };
    let bytes = std::fs::read(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| err(format!("not a safetensors file: {e}")))?;
    let meta = header.metadata().clone().unwrap_or_default();
    let stored = meta
        .get(META_CONFIG)
        .ok_or_else(|| err("no experiment configuration in the checkpoint".into()))?;
    if stored != config_toml {
        return Err(err(
            "the checkpoint was written with a different configuration; resume with the same \
             config and --set overrides, or start a new run name"
                .into(),
        ));
    }
    let state: TrainState = serde_json::from_str(
        meta.get(META_STATE)
            .ok_or_else(|| err("no training state in the checkpoint".into()))?,
    )
    .map_err(|e| err(format!("bad training state: {e}")))?;
    adam.t = meta
        .get(META_ADAM_T)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| err("no optimiser step count".into()))?;
    let device = model.device().clone();
    let mut tensors = candle_core::safetensors::load_buffer(&bytes, &device)?;
    let mut take = |name: String| -> Result<Tensor> {
        tensors
            .remove(&name)
            .ok_or_else(|| err(format!("tensor `{name}` missing")))
    };
    for (name, p) in model.named_params() {
        p.var().set(&take(format!("model/{name}"))?)?;
    }
    for (name, b) in model.named_buffers() {
        b.set(take(format!("model/{name}"))?);
    }
    for s in &mut adam.slots {
        s.m = take(format!("adam.m/{}", s.name))?;
        s.v = take(format!("adam.v/{}", s.name))?;
    }
    Ok(state)
}
