//! Files: atomic writes, lossless adversarial examples, JSON / CSV reports.
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
use crate::error::{AttackError, Result};
use crate::eval::{EvalBatch, RobustReport};

/// Writes `bytes` to `path` atomically ([`dfr_fs::write_atomic`]), so a reader never
/// sees a partial file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
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
        .map_err(|e| AttackError::io(path, std::io::Error::other(e.to_string())))?;
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

    /// Saves the clean images of batch `batch` with their fake probabilities.
    pub fn save_clean(
        &mut self,
        batch: usize,
        b: &EvalBatch,
        images: &Tensor,
        scores: &[f32],
    ) -> Result<()> {
        let rel = format!("clean/batch_{batch:05}.safetensors");
        let mut t = vec![("images", images.clone())];
        t.extend(batch_tensors(b, scores)?);
        save_safetensors(&self.dir.join(&rel), &t, Self::meta(b, "clean", 0.0))?;
        self.files.push(SavedFile {
            file: rel,
            attack: "clean".into(),
            eps: 0.0,
            batch,
            n: b.labels.len(),
        });
        Ok(())
    }

    /// Saves the adversarial images of batch `batch` for `kind` at `eps` (`clean`:
    /// the batch's clean images, for `delta`).
    #[allow(clippy::too_many_arguments)]
    pub fn save_adversarial(
        &mut self,
        batch: usize,
        kind: AttackKind,
        eps: f64,
        params: &AttackParams,
        b: &EvalBatch,
        clean: &Tensor,
        adv: &Tensor,
        scores: &[f32],
    ) -> Result<()> {
        let rel = format!(
            "{}/{}/batch_{batch:05}.safetensors",
            kind.name(),
            eps_dir_name(eps)
        );
        let delta = (adv - clean)?;
        let mut t = vec![("images", adv.clone()), ("delta", delta)];
        t.extend(batch_tensors(b, scores)?);
        let mut meta = Self::meta(b, kind.name(), eps);
        meta.insert("steps".into(), params.steps.to_string());
        meta.insert("step_size".into(), format!("{}", params.step_size()));
        meta.insert("random_start".into(), params.random_start.to_string());
        meta.insert("seed".into(), params.seed.to_string());
        save_safetensors(&self.dir.join(&rel), &t, meta)?;
        self.files.push(SavedFile {
            file: rel,
            attack: kind.name().into(),
            eps,
            batch,
            n: b.labels.len(),
        });
        Ok(())
    }

    /// Writes `manifest.json` and returns the directory.
    pub fn finish(self) -> Result<PathBuf> {
        let json = serde_json::to_vec_pretty(&self.files)
            .map_err(|e| AttackError::io(&self.dir, std::io::Error::other(e)))?;
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

impl RobustReport {
    /// The report as pretty JSON.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self)
            .map_err(|e| AttackError::io("report", std::io::Error::other(e)))
    }

    /// Writes the report as JSON, atomically.
    pub fn write_json(&self, path: &Path) -> Result<()> {
        write_atomic(path, self.to_json()?.as_bytes())
    }

    /// The results as CSV, one row per (attack, ε, source); source `all` rows carry
    /// every metric, per-source rows `n` and accuracy. `clean` rows are the clean
    /// evaluation, `worst` rows the per-sample worst case over the attacks.
    pub fn to_csv(&self) -> String {
        let mut s = String::from(
            "attack,eps,step_size,steps,source,n,accuracy,macro_f1,roc_auc,tn,fp,fn,tp,\
             attack_success_rate,linf_mean,linf_max,l2_mean,l2_max,masked_samples\n",
        );
        let opt = |v: Option<f64>| v.map(|x| format!("{x}")).unwrap_or_default();
        let c = &self.clean;
        let k = &c.confusion;
        s += &format!(
            "clean,0,0,0,all,{},{},{},{},{},{},{},{},0,0,0,0,0,0\n",
            c.n,
            c.accuracy,
            c.macro_f1,
            opt(c.roc_auc),
            k.true_negatives,
            k.false_positives,
            k.false_negatives,
            k.true_positives
        );
        for p in &self.clean_per_source {
            s += &format!(
                "clean,0,0,0,{},{},{},,,,,,,,,,,,\n",
                csv_field(&p.source),
                p.n,
                p.accuracy
            );
        }
        for a in &self.attacks {
            for r in &a.results {
                let m = &r.metrics;
                let k = &m.confusion;
                s += &format!(
                    "{},{},{},{},all,{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
                    a.attack,
                    r.eps,
                    r.step_size,
                    r.steps,
                    m.n,
                    m.accuracy,
                    m.macro_f1,
                    opt(m.roc_auc),
                    k.true_negatives,
                    k.false_positives,
                    k.false_negatives,
                    k.true_positives,
                    r.attack_success_rate,
                    r.linf_mean,
                    r.linf_max,
                    r.l2_mean,
                    r.l2_max,
                    r.masked_samples
                );
                for p in &r.per_source {
                    s += &format!(
                        "{},{},{},{},{},{},{},,,,,,,,,,,,\n",
                        a.attack,
                        r.eps,
                        r.step_size,
                        r.steps,
                        csv_field(&p.source),
                        p.n,
                        p.accuracy
                    );
                }
            }
        }
        for w in &self.worst_case {
            s += &format!("worst,{},,,all,{},{},,,,,,,,,,,,\n", w.eps, w.n, w.accuracy);
            for p in &w.per_source {
                s += &format!(
                    "worst,{},,,{},{},{},,,,,,,,,,,,\n",
                    w.eps,
                    csv_field(&p.source),
                    p.n,
                    p.accuracy
                );
            }
        }
        s
    }

    /// Writes the CSV of [`RobustReport::to_csv`], atomically.
    pub fn write_csv(&self, path: &Path) -> Result<()> {
        write_atomic(path, self.to_csv().as_bytes())
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
