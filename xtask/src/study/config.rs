//! The study file (`experiments/quick.toml`, `experiments/dffd-paper.toml`).

use anyhow::{bail, Context, Result};
use dfr_data::synth::SynthConfig;
use dfr_train::ExperimentConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The embedded default study.
pub const QUICK: &str = include_str!("../../../experiments/quick.toml");
/// How the embedded default study is named in messages.
pub const QUICK_NAME: &str = "experiments/quick.toml (embedded)";

/// Study identity.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StudyMeta {
    /// Name: results go to `<results_dir>/<name>/`.
    pub name: String,
    /// Parent directory.
    pub results_dir: PathBuf,
}

impl Default for StudyMeta {
    fn default() -> Self {
        StudyMeta {
            name: "study".into(),
            results_dir: "experiments/results".into(),
        }
    }
}

/// Evaluation options.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalSection {
    /// Split to evaluate.
    pub split: String,
    /// At most this many samples, spread evenly over the split (all when absent).
    pub limit: Option<usize>,
    /// Batch size.
    pub batch_size: usize,
}

impl Default for EvalSection {
    fn default() -> Self {
        EvalSection {
            split: "test".into(),
            limit: None,
            batch_size: 32,
        }
    }
}

/// ε grids and iterative-attack parameters.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AttackSection {
    /// FGSM ε grid.
    pub fgsm: Vec<f64>,
    /// PGD ε grid.
    pub pgd: Vec<f64>,
    /// MI-FGSM ε grid.
    pub mifgsm: Vec<f64>,
    /// Iterations of PGD and MI-FGSM.
    pub steps: usize,
    /// Step size as a fraction of ε.
    pub alpha_ratio: f64,
}

impl Default for AttackSection {
    fn default() -> Self {
        AttackSection {
            fgsm: vec![0.001, 0.005, 0.010, 0.015],
            pgd: vec![0.0001, 0.0005, 0.001],
            mifgsm: vec![0.0001, 0.0005, 0.001],
            steps: 5,
            alpha_ratio: 0.2,
        }
    }
}

/// Grad-CAM options.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CamSection {
    /// Test images used for CAM consistency (and the first four for the gallery).
    pub images: usize,
    /// Model stage explained.
    pub stage: usize,
}

impl Default for CamSection {
    fn default() -> Self {
        CamSection {
            images: 8,
            stage: 8,
        }
    }
}

/// A whole study.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudyConfig {
    /// Identity.
    #[serde(default)]
    pub study: StudyMeta,
    /// Generate a synthetic DFFD at `experiment.data.root` when missing.
    pub synth: Option<SynthConfig>,
    /// The experiment shared by both models (an `ExperimentConfig` TOML table).
    #[serde(default)]
    pub experiment: toml::Table,
    /// Evaluation.
    #[serde(default)]
    pub eval: EvalSection,
    /// Attacks.
    #[serde(default)]
    pub attacks: AttackSection,
    /// Grad-CAM.
    #[serde(default)]
    pub cam: CamSection,
    /// The α × r grid of `cargo xtask ablation` (ignored by `reproduce-tables`).
    pub ablation: Option<crate::ablation::AblationSection>,
}

impl StudyConfig {
    /// Loads a study file, or the embedded quick study when `path` is `None`.
    pub fn load(path: Option<&Path>) -> Result<StudyConfig> {
        match path {
            Some(p) => Self::parse(
                &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
                &p.display().to_string(),
            ),
            None => Self::parse(QUICK, QUICK_NAME),
        }
    }

    /// Parses and validates a study file's text; `name` labels errors.
    pub fn parse(text: &str, name: &str) -> Result<StudyConfig> {
        let cfg: StudyConfig = toml::from_str(text).with_context(|| format!("parsing {name}"))?;
        if cfg.attacks.steps == 0 {
            bail!("{name}: attacks.steps must be at least 1");
        }
        for (k, g) in [
            ("fgsm", &cfg.attacks.fgsm),
            ("pgd", &cfg.attacks.pgd),
            ("mifgsm", &cfg.attacks.mifgsm),
        ] {
            if g.iter().any(|e| !(e.is_finite() && *e >= 0.0 && *e <= 1.0)) {
                bail!("{name}: attacks.{k} must hold ε values in [0, 1]");
            }
        }
        // Validate the experiment once, early.
        cfg.experiment_for("baseline", &[])
            .with_context(|| format!("{name}: [experiment]"))?;
        Ok(cfg)
    }

    /// The study's output directory.
    pub fn out_dir(&self) -> PathBuf {
        self.study.results_dir.join(&self.study.name)
    }

    /// The training configuration of one model of the study (`strategy` = baseline or
    /// gradreg), with runs under `<out>/runs/<strategy>`.
    pub fn experiment_for(&self, strategy: &str, extra: &[String]) -> Result<ExperimentConfig> {
        self.experiment_named(strategy, strategy, extra)
    }

    /// Like [`StudyConfig::experiment_for`] with the run under `<out>/runs/<run>`.
    pub fn experiment_named(
        &self,
        run: &str,
        strategy: &str,
        extra: &[String],
    ) -> Result<ExperimentConfig> {
        let text = toml::to_string(&self.experiment)?;
        let mut sets = vec![
            format!("run.name=\"{run}\""),
            format!(
                "run.results_dir=\"{}\"",
                self.out_dir()
                    .join("runs")
                    .display()
                    .to_string()
                    .replace('\\', "/")
            ),
            format!("train.strategy=\"{strategy}\""),
        ];
        sets.extend(extra.iter().cloned());
        Ok(ExperimentConfig::from_toml_str(&text, &sets)?)
    }
}
