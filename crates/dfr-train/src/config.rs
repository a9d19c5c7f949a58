//! The TOML experiment file.
//!
//! ```toml
//! [run]
//! name = "baseline"
//! seed = 42
//!
//! [data]                      # dfr_data::DataConfig
//! root = "data/synthetic-dffd"
//!
//! [model]
//! arch = "b0"
//! weights = "hf:timm/efficientnet_b0.ra_in1k"   # or a file; "" = random init
//! image_size = 224
//!
//! [train]
//! strategy = "gradreg"        # or "baseline"
//! epochs = 10
//! batch_size = 4
//! lr = 3e-5
//!
//! [gradreg]
//! alpha = 0.5
//! r = 0.05
//! ```
//!
//! Every table and key has a default; unknown keys are errors. `--set train.lr=1e-4` style
//! overrides are applied to the TOML before it is interpreted.

use crate::error::{Result, TrainError};
use dfr_data::{DataConfig, TrainAugment};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A whole experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Run identity and output location.
    pub run: RunConfig,
    /// Dataset.
    pub data: DataConfig,
    /// Model.
    pub model: ModelConfig,
    /// Optimisation and schedule.
    pub train: TrainConfig,
    /// Training augmentation (`size` follows `model.image_size`).
    pub augment: TrainAugment,
    /// Gradient regularisation (used when `train.strategy = "gradreg"`).
    pub gradreg: GradRegConfig,
}

/// Run identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// Run name: results go to `<results_dir>/<name>/`.
    pub name: String,
    /// Seed of every random choice (initialisation, order, augmentation, dropout).
    pub seed: u64,
    /// Parent directory of run directories.
    pub results_dir: PathBuf,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            name: "run".into(),
            seed: 42,
            results_dir: PathBuf::from("experiments/results"),
        }
    }
}

/// Model choice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// Architecture name (`b0`…`b7`, `lite0`…`lite4`).
    pub arch: String,
    /// Initial weights: a safetensors/.pth file, `hf:ORG/REPO[/FILE]`, or empty for random
    /// initialisation.
    pub weights: String,
    /// Input side length.
    pub image_size: u32,
    /// Dropout before the classifier (`None`: the architecture's default).
    pub dropout: Option<f64>,
    /// Stochastic-depth probability (`None`: 0.2 as torchvision).
    pub stochastic_depth: Option<f64>,
    /// BatchNorm momentum, PyTorch convention (`None`: the architecture's, 0.01 for B0). Short
    /// runs from random initialisation need a larger one (e.g. 0.1), or the running statistics
    /// used in evaluation are still mostly their initial values.
    pub bn_momentum: Option<f64>,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            arch: "b0".into(),
            weights: String::new(),
            image_size: 224,
            dropout: None,
            stochastic_depth: None,
            bn_momentum: None,
        }
    }
}

/// Training strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Class-weighted cross-entropy.
    #[default]
    Baseline,
    /// Gradient regularisation with the Perturbation Injection Module.
    Gradreg,
}

/// Optimisation and schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// `baseline` or `gradreg`.
    pub strategy: Strategy,
    /// Maximum number of epochs.
    pub epochs: usize,
    /// Batch size.
    pub batch_size: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Adam β1.
    pub beta1: f64,
    /// Adam β2.
    pub beta2: f64,
    /// Adam ε.
    pub eps: f64,
    /// Decoupled weight decay (0: plain Adam).
    pub weight_decay: f64,
    /// Class-weighted cross-entropy with `w_c = N / (2·N_c)` from the train split.
    pub class_weighted: bool,
    /// Freeze the shallow part (stages `0..=gradreg.stage`) and run it in eval mode.
    /// Gradient regularisation always freezes it.
    pub freeze_shallow: bool,
    /// Early stopping: epochs without a better validation macro-F1 before stopping
    /// (0: never stop early).
    pub patience: usize,
    /// Write a resume checkpoint every this many steps (0: at epoch ends only).
    pub checkpoint_every: usize,
    /// Stop each epoch after this many steps (0: the whole split) — for smoke runs.
    pub max_steps_per_epoch: usize,
    /// Batch size of validation passes.
    pub eval_batch_size: usize,
    /// Data-loading threads (0: all cores).
    pub threads: usize,
    /// Batches decoded ahead.
    pub prefetch: usize,
    /// Show progress bars.
    pub progress: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            strategy: Strategy::Baseline,
            epochs: 10,
            batch_size: 4,
            lr: 3e-5,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            class_weighted: true,
            freeze_shallow: false,
            patience: 3,
            checkpoint_every: 0,
            max_steps_per_epoch: 0,
            eval_batch_size: 32,
            threads: 0,
            prefetch: 8,
            progress: true,
        }
    }
}

/// Direction of the statistics perturbation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Along the normalised gradient of the clean loss (the method).
    #[default]
    Gradient,
    /// A unit random direction scaled by r (the control experiment).
    Random,
}

/// Scope of the L2 normalisation of the direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NormScope {
    /// One norm over the whole batch (the reference implementation).
    #[default]
    Batch,
    /// One norm per sample.
    Sample,
}

/// Gradient-regularisation parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GradRegConfig {
    /// Weight of the perturbed loss: `L = (1−α)·L_clean + α·L_perturbed`.
    pub alpha: f64,
    /// Perturbation radius.
    pub r: f64,
    /// The PIM is inserted after this stage (1: stem + first MBConv stage).
    pub stage: usize,
    /// Perturbation direction.
    pub direction: Direction,
    /// Normalisation scope.
    pub norm: NormScope,
    /// Which pass updates the deep part's BatchNorm running statistics.
    pub bn_update: BnUpdate,
}

impl Default for GradRegConfig {
    fn default() -> Self {
        GradRegConfig {
            alpha: 0.5,
            r: 0.05,
            stage: 1,
            direction: Direction::Gradient,
            norm: NormScope::Batch,
            bn_update: BnUpdate::Clean,
        }
    }
}

/// Which pass of a gradient-regularised step updates BatchNorm running statistics. Both
/// passes normalise with their own batch statistics (train mode); this only decides what the
/// evaluation-time statistics describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BnUpdate {
    /// Only the clean pass (default): the running statistics advance once per step, with the
    /// baseline's momentum, and describe clean features only.
    #[default]
    Clean,
    /// Both passes, as a naive two-pass implementation does (the published code): an
    /// effective momentum of about 1.9× the baseline's, partly from perturbed features.
    Both,
}

impl ExperimentConfig {
    /// Reads a TOML file, applies `key=value` overrides and validates.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::ConfigFile {
            path: path.to_path_buf(),
            message: format!("cannot read: {e}"),
        })?;
        Self::from_toml_str(&text, overrides).map_err(|e| match e {
            TrainError::ConfigFile { message, .. } => TrainError::ConfigFile {
                path: path.to_path_buf(),
                message,
            },
            other => other,
        })
    }

    /// Parses TOML text, applies overrides and validates.
    pub fn from_toml_str(text: &str, overrides: &[String]) -> Result<Self> {
        let mut value: toml::Table = toml::from_str(text).map_err(|e| TrainError::ConfigFile {
            path: PathBuf::from("<config>"),
            message: e.to_string(),
        })?;
        for o in overrides {
            apply_override(&mut value, o)?;
        }
        let augment_size_set = value.get("augment").and_then(|a| a.get("size")).is_some();
        let mut cfg: ExperimentConfig =
            value
                .try_into()
                .map_err(|e: toml::de::Error| TrainError::ConfigFile {
                    path: PathBuf::from("<config>"),
                    message: e.to_string(),
                })?;
        if !augment_size_set {
            cfg.augment.size = cfg.model.image_size;
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks every value; the error names the key.
    pub fn validate(&self) -> Result<()> {
        let t = &self.train;
        let g = &self.gradreg;
        let err = |f: &str, m: String| Err(TrainError::config(f, m));
        let name = self.run.name.as_str();
        if name.is_empty()
            || name.contains(['/', '\\', '\0'])
            || name == "."
            || name == ".."
            || name.trim() != name
        {
            return err(
                "run.name",
                format!(
                    "`{name}`: expected a plain directory name (not empty, `.` or `..`, no \
                     path separators or surrounding spaces)"
                ),
            );
        }
        if self.model.arch.parse::<dfr_model::Arch>().is_err() {
            return err(
                "model.arch",
                format!("`{}`: expected b0…b7 or lite0…lite4", self.model.arch),
            );
        }
        if let Err(m) = dfr_model::config::check_image_size(self.model.image_size) {
            return err("model.image_size", m);
        }
        if self.augment.size != self.model.image_size {
            return err(
                "augment.size",
                format!(
                    "{} differs from model.image_size {}; leave it unset",
                    self.augment.size, self.model.image_size
                ),
            );
        }
        for (f, v) in [
            ("model.dropout", self.model.dropout),
            ("model.stochastic_depth", self.model.stochastic_depth),
        ] {
            if let Some(p) = v {
                if !(0.0..1.0).contains(&p) {
                    return err(f, format!("{p}: must be in [0, 1)"));
                }
            }
        }
        if let Some(m) = self.model.bn_momentum {
            if !(m > 0.0 && m <= 1.0) {
                return err("model.bn_momentum", format!("{m}: must be in (0, 1]"));
            }
        }
        if t.epochs == 0 {
            return err("train.epochs", "must be at least 1".into());
        }
        if t.batch_size == 0 {
            return err("train.batch_size", "must be at least 1".into());
        }
        if t.eval_batch_size == 0 {
            return err("train.eval_batch_size", "must be at least 1".into());
        }
        if !(t.lr > 0.0 && t.lr.is_finite()) {
            return err("train.lr", format!("{}: must be a finite number > 0", t.lr));
        }
        if !(0.0..1.0).contains(&t.beta1) || !(0.0..1.0).contains(&t.beta2) {
            return err("train.beta1/beta2", "must be in [0, 1)".into());
        }
        if t.eps.is_nan() || t.eps <= 0.0 || t.weight_decay < 0.0 {
            return err(
                "train.eps/weight_decay",
                "eps must be > 0 and weight_decay ≥ 0".into(),
            );
        }
        if !(0.0..=1.0).contains(&g.alpha) {
            return err("gradreg.alpha", format!("{}: must be in [0, 1]", g.alpha));
        }
        if !(g.r >= 0.0 && g.r.is_finite()) {
            return err("gradreg.r", format!("{}: must be a finite number ≥ 0", g.r));
        }
        if !(0..=7).contains(&g.stage) {
            return err("gradreg.stage", format!("{}: must be in 0..=7", g.stage));
        }
        self.augment.validate()?;
        self.data.validate()?;
        Ok(())
    }

    /// The run directory `<results_dir>/<name>`.
    pub fn run_dir(&self) -> PathBuf {
        self.run.results_dir.join(&self.run.name)
    }

    /// Whether the shallow part is frozen (and runs in eval mode).
    pub fn shallow_frozen(&self) -> bool {
        self.train.freeze_shallow || self.train.strategy == Strategy::Gradreg
    }

    /// Serialises to TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serialises")
    }
}

/// Applies one `a.b.c=value` override; the value is parsed as TOML (number, bool, string,
/// array) and falls back to a plain string.
pub fn apply_override(table: &mut toml::Table, spec: &str) -> Result<()> {
    let (key, raw) = spec
        .split_once('=')
        .ok_or_else(|| TrainError::config(spec, "expected --set key=value"))?;
    let key = key.trim();
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(TrainError::config(key, "empty key segment"));
    }
    let raw = raw.trim();
    let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let mut cur = table;
    for p in &parts[..parts.len() - 1] {
        let entry = cur
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = entry
            .as_table_mut()
            .ok_or_else(|| TrainError::config(key, format!("`{p}` is not a table")))?;
    }
    cur.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_study() {
        let c = ExperimentConfig::from_toml_str("", &[]).unwrap();
        assert_eq!(c.train.lr, 3e-5);
        assert_eq!(c.train.batch_size, 4);
        assert_eq!(c.train.epochs, 10);
        assert_eq!(
            (c.gradreg.alpha, c.gradreg.r, c.gradreg.stage),
            (0.5, 0.05, 1)
        );
        assert_eq!(c.augment.size, 224);
    }

    #[test]
    fn overrides_apply_before_validation() {
        let c = ExperimentConfig::from_toml_str(
            "[train]\nstrategy = \"gradreg\"\n",
            &[
                "gradreg.alpha=0.25".into(),
                "model.image_size=64".into(),
                "run.name=x".into(),
            ],
        )
        .unwrap();
        assert_eq!(c.gradreg.alpha, 0.25);
        assert_eq!(c.augment.size, 64);
        assert_eq!(c.run.name, "x");
        assert_eq!(c.train.strategy, Strategy::Gradreg);
    }

    #[test]
    fn bad_values_are_rejected_with_their_key() {
        for (set, key) in [
            ("gradreg.alpha=1.5", "gradreg.alpha"),
            ("gradreg.r=-0.1", "gradreg.r"),
            ("train.lr=0", "train.lr"),
            ("train.batch_size=0", "train.batch_size"),
            ("model.arch=\"resnet50\"", "model.arch"),
        ] {
            let e = ExperimentConfig::from_toml_str("", &[set.into()])
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{set}: {e}");
        }
        let e = ExperimentConfig::from_toml_str("[train]\nstrategy = \"magic\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("magic") || e.contains("strategy"), "{e}");
        let e = ExperimentConfig::from_toml_str("[train]\nlearning_rate = 1\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("learning_rate"), "{e}");
        let e = ExperimentConfig::from_toml_str("", &["nonsense".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("key=value"), "{e}");
    }
}
