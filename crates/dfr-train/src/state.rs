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
const META_DATA: &str = "data_fingerprint";

/// What a resume checkpoint must match: the experiment configuration and the data it was
/// trained on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunIdentity {
    /// The experiment configuration as TOML ([`crate::ExperimentConfig::to_toml`]).
    pub config_toml: String,
    /// [`data_fingerprint`] of the train and validation samples.
    pub data_fingerprint: String,
}

/// Keys a resumed run may change: they affect how a run is displayed, parallelised or
/// where its directory lives, never what it computes.
pub const RESUME_FREE_KEYS: [&str; 5] = [
    "train.progress",
    "train.threads",
    "train.prefetch",
    "run.results_dir",
    "run.name",
];

/// A fingerprint of the samples a run trains and validates on: their number and a hash of
/// each one's split, source, label, path relative to the data root, and size in bytes
/// (not modification times, which a copy changes).
pub fn data_fingerprint(root: &Path, samples: &[&dfr_data::Sample]) -> String {
    let mut lines: Vec<String> = samples
        .iter()
        .map(|s| {
            let rel = s.path.strip_prefix(root).unwrap_or(&s.path);
            let size = std::fs::metadata(&s.path).map(|m| m.len()).unwrap_or(0);
            format!(
                "{}\t{}\t{}\t{}\t{size}",
                s.split.name(),
                s.method,
                s.label.index(),
                rel.display()
            )
        })
        .collect();
    lines.sort();
    // FNV-1a, 64 bit: stable across platforms and releases (std's hasher is not)
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in lines.join("\n").bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{} files, fnv1a {h:016x}", lines.len())
}

/// The dotted keys whose values differ between two configurations (TOML), except
/// [`RESUME_FREE_KEYS`] and, between two `baseline` runs, the `gradreg.*` settings such a run
/// never reads (`gradreg.stage` still counts when the shallow part is frozen).
///
/// ```
/// use dfr_train::state::config_differences;
/// let base = "[train]\nstrategy = \"baseline\"\nfreeze_shallow = false\nepochs = 8\n\
///             [gradreg]\nalpha = 0.5\nstage = 1\n";
/// // a gradreg setting is irrelevant to a baseline run …
/// assert!(config_differences(base, &base.replace("alpha = 0.5", "alpha = 1.0")).is_empty());
/// // … but not to a gradreg run, and every other key counts
/// let gr = base.replace("\"baseline\"", "\"gradreg\"");
/// assert_eq!(config_differences(&gr, &gr.replace("alpha = 0.5", "alpha = 1.0")), ["gradreg.alpha"]);
/// assert_eq!(config_differences(base, &base.replace("epochs = 8", "epochs = 9")), ["train.epochs"]);
/// ```
pub fn config_differences(stored: &str, current: &str) -> Vec<String> {
    fn flatten(
        prefix: &str,
        v: &toml::Value,
        out: &mut std::collections::BTreeMap<String, String>,
    ) {
        match v {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    flatten(&key, v, out);
                }
            }
            other => {
                out.insert(prefix.to_string(), other.to_string());
            }
        }
    }
    let parse = |s: &str| {
        let mut out = std::collections::BTreeMap::new();
        if let Ok(t) = s.parse::<toml::Table>() {
            flatten("", &toml::Value::Table(t), &mut out);
        }
        out
    };
    let (a, b) = (parse(stored), parse(current));
    let is = |m: &std::collections::BTreeMap<String, String>, k: &str, v: &str| {
        m.get(k).map(String::as_str) == Some(v)
    };
    let baseline =
        is(&a, "train.strategy", "\"baseline\"") && is(&b, "train.strategy", "\"baseline\"");
    let frozen = is(&a, "train.freeze_shallow", "true") || is(&b, "train.freeze_shallow", "true");
    let unread =
        |k: &str| baseline && k.starts_with("gradreg.") && !(frozen && k == "gradreg.stage");
    let mut keys: Vec<String> = a
        .keys()
        .chain(b.keys())
        .filter(|k| !RESUME_FREE_KEYS.contains(&k.as_str()))
        .filter(|k| !unread(k))
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Saves everything needed to resume.
pub fn save(
    path: &Path,
    model: &EfficientNet,
    adam: &Adam,
    state: &TrainState,
    identity: &RunIdentity,
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
    meta.insert(META_CONFIG.to_string(), identity.config_toml.clone());
    meta.insert(META_DATA.to_string(), identity.data_fingerprint.clone());
    meta.insert(META_ADAM_T.to_string(), adam.t.to_string());
    let bytes = safetensors::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), Some(meta))
        .map_err(|e| TrainError::Resume {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    dfr_fs::write_atomic(path, &bytes).map_err(|e| TrainError::io("writing", path, e))?;
    Ok(())
}

/// Restores model, optimiser and state from `path`. The stored experiment configuration
/// must equal `identity`'s except for [`RESUME_FREE_KEYS`] (the error names the keys that
/// differ), and the stored data fingerprint must equal its (a checkpoint written before
/// fingerprints were recorded is resumed with a warning).
pub fn load(
    path: &Path,
    model: &EfficientNet,
    adam: &mut Adam,
    identity: &RunIdentity,
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
    let changed = config_differences(stored, &identity.config_toml);
    if !changed.is_empty() {
        return Err(err(format!(
            "the checkpoint was written with a different configuration: {} changed; resume \
             with the same config and --set overrides, or start a new run name",
            changed.join(", ")
        )));
    }
    match meta.get(META_DATA) {
        Some(d) if *d != identity.data_fingerprint => {
            return Err(err(format!(
                "the data set changed since the checkpoint was written (then: {d}; now: {}); \
                 restore the data or start a new run name",
                identity.data_fingerprint
            )))
        }
        Some(_) => {}
        None => tracing::warn!(
            "{}: no data fingerprint in the checkpoint (an older version wrote it); \
             cannot check that the data set is unchanged",
            path.display()
        ),
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
