//! Saved adversarial examples: lossless, one safetensors file per batch and (attack, ε).
//!
//! Adversarial examples are saved as **f32 safetensors**, one file per batch and
//! (attack, ε), plus one file of clean images per batch and a `manifest.json`:
//!
//! ```text
//! DIR/manifest.json
//! DIR/clean/batch_00000.safetensors            images, labels, ids, scores
//! DIR/pgd/eps_0.0156863/batch_00000.safetensors images, delta, labels, ids, scores
//! ```
//!
//! Why not PNG: 8-bit PNG quantises to steps of 1/255, the size of the smallest ε
//! studied, so it destroys most of a perturbation; 16-bit PNG (steps of 1/65535) keeps
//! it visually but not bit-exactly, and an attack that stops just across the decision
//! boundary (APGD keeps the first misclassified iterate) can flip back after
//! rounding. f32 safetensors keep the exact tensors the metrics were computed on,
//! load straight into candle for Grad-CAM, and re-evaluate to the same predictions.
//! Tensor names: `images` (N, 3, H, W) f32 in [0, 1], `delta` (adversarial − clean),
//! `labels` u32, `ids` i64 (dataset indices), `scores` f32 (fake probability);
//! metadata: `attack`, `eps`, `steps`, `step_size`, `sources` (JSON list).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::attack::{AttackKind, AttackParams};
use crate::batch::EvalBatch;
use crate::error::{AttackError, Result};

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    dfr_fs::write_atomic(path, bytes).map_err(|e| AttackError::io(path, e))
}

/// Serialises named tensors (moved to the CPU) with metadata into a safetensors file,
/// atomically.
pub fn save_safetensors(
    path: &Path,
    tensors: &[(&str, Tensor)],
    metadata: HashMap<String, String>,
) -> Result<()> {
    let cpu: Vec<(&str, Tensor)> = tensors
        .iter()
        .map(|(n, t)| Ok((*n, t.to_device(&Device::Cpu)?.contiguous()?)))
        .collect::<Result<_>>()?;
    let bytes = safetensors::serialize(cpu.iter().map(|(n, t)| (*n, t)), Some(metadata))
        .map_err(|e| AttackError::serialize("adversarial batch", "safetensors", &e))?;
    write_atomic(path, &bytes)
}

/// One file written by [`AdversarialWriter`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedFile {
    /// Path relative to the output directory.
    pub file: String,
    /// `clean` or the attack name.
    pub attack: String,
    /// ε (0 for clean files).
    pub eps: f64,
    /// Batch index.
    pub batch: usize,
    /// Samples in the file.
    pub n: usize,
}

/// One evaluated batch as the writer sees it: its index, metadata and clean images.
#[derive(Debug, Clone, Copy)]
pub struct BatchToSave<'a> {
    /// Batch index (names the files).
    pub index: usize,
    /// Labels, sources and ids.
    pub batch: &'a EvalBatch,
    /// The clean images the attack started from (on the model's device).
    pub clean: &'a Tensor,
}

/// Writes clean and adversarial batches and a manifest (see the module docs).
#[derive(Debug)]
pub struct AdversarialWriter {
    dir: PathBuf,
    files: Vec<SavedFile>,
}

/// Directory name of an ε (`eps_0.0156863`).
pub fn eps_dir_name(eps: f64) -> String {
    format!("eps_{eps:.7}")
}

fn batch_tensors(b: &EvalBatch, scores: &[f32]) -> Result<Vec<(&'static str, Tensor)>> {
    let n = b.labels.len();
    let dev = Device::Cpu;
    let ids: Vec<i64> = b.ids.iter().map(|&i| i as i64).collect();
    Ok(vec![
        ("labels", Tensor::from_slice(&b.labels, n, &dev)?),
        ("ids", Tensor::from_slice(&ids, n, &dev)?),
        ("scores", Tensor::from_slice(scores, n, &dev)?),
    ])
}

impl AdversarialWriter {
    /// A writer into `dir` (created).
    pub fn new(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| AttackError::io(dir, e))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            files: Vec::new(),
        })
    }

    fn meta(b: &EvalBatch, attack: &str, eps: f64) -> HashMap<String, String> {
        let mut m = HashMap::new();
        m.insert("format".into(), "dfr-attacks/adversarial/1".into());
        m.insert("attack".into(), attack.into());
        m.insert("eps".into(), format!("{eps}"));
        m.insert(
            "sources".into(),
            serde_json::to_string(&b.sources).unwrap_or_else(|_| "[]".into()),
        );
        m
    }

    /// Saves the clean images of a batch with their fake probabilities.
    pub fn save_clean(&mut self, b: BatchToSave<'_>, scores: &[f32]) -> Result<()> {
        let rel = format!("clean/batch_{:05}.safetensors", b.index);
        let mut t = vec![("images", b.clean.clone())];
        t.extend(batch_tensors(b.batch, scores)?);
        save_safetensors(&self.dir.join(&rel), &t, Self::meta(b.batch, "clean", 0.0))?;
        self.files.push(SavedFile {
            file: rel,
            attack: "clean".into(),
            eps: 0.0,
            batch: b.index,
            n: b.batch.labels.len(),
        });
        Ok(())
    }

    /// Saves the adversarial images `adv` of a batch, made with `params` at the
    /// evaluation's radius `eps` (the f64 grid value `params.eps` was rounded from), and
    /// their fake probabilities. The metadata's `steps` and `step_size` are
    /// [`AttackParams::schedule`]'s, as in the report.
    pub fn save_adversarial(
        &mut self,
        b: BatchToSave<'_>,
        eps: f64,
        params: &AttackParams,
        adv: &Tensor,
        scores: &[f32],
    ) -> Result<()> {
        let kind: AttackKind = params.kind;
        let rel = format!(
            "{}/{}/batch_{:05}.safetensors",
            kind.name(),
            eps_dir_name(eps),
            b.index
        );
        let delta = (adv - b.clean)?;
        let mut t = vec![("images", adv.clone()), ("delta", delta)];
        t.extend(batch_tensors(b.batch, scores)?);
        let schedule = params.schedule();
        let mut meta = Self::meta(b.batch, kind.name(), eps);
        meta.insert("steps".into(), schedule.steps.to_string());
        // as f64, the report's representation: the two read back equal
        meta.insert("step_size".into(), format!("{}", schedule.step_size as f64));
        meta.insert("random_start".into(), params.random_start.to_string());
        meta.insert("seed".into(), params.seed.to_string());
        save_safetensors(&self.dir.join(&rel), &t, meta)?;
        self.files.push(SavedFile {
            file: rel,
            attack: kind.name().into(),
            eps,
            batch: b.index,
            n: b.batch.labels.len(),
        });
        Ok(())
    }

    /// Writes `manifest.json` and returns the directory.
    pub fn finish(self) -> Result<PathBuf> {
        let json = serde_json::to_vec_pretty(&self.files)
            .map_err(|e| AttackError::serialize("adversarial manifest", "JSON", &e))?;
        write_atomic(&self.dir.join("manifest.json"), &json)?;
        Ok(self.dir)
    }
}

/// Reads one saved batch: its tensors and metadata.
pub fn read_saved_batch(
    path: &Path,
    device: &Device,
) -> Result<(HashMap<String, Tensor>, HashMap<String, String>)> {
    let tensors = candle_core::safetensors::load(path, device)?;
    let meta = dfr_model::checkpoint::read_safetensors_metadata(path)?;
    Ok((tensors, meta))
}
