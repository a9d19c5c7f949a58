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
    /// Feature stage explained (0 = stem … 8 = head conv). Default: the deepest stage whose
    /// map is at least [`MIN_CAM_MAP`] pixels a side at the study's image size (8, the usual
    /// Grad-CAM layer, from 193 px up; 3, an 8×8 map, at 64 px).
    pub stage: Option<usize>,
}

/// The smallest Grad-CAM map side a study accepts: a coarser map (a 2×2 map at 64 px from
/// the head) cannot say where a model looks.
pub const MIN_CAM_MAP: usize = 7;

impl Default for CamSection {
    fn default() -> Self {
        CamSection {
            images: 8,
            stage: None,
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
        cfg.cam_stage().with_context(|| format!("{name}: [cam]"))?;
        Ok(cfg)
    }

    /// The Grad-CAM stage: `cam.stage`, or the deepest stage with a map of at least
    /// [`MIN_CAM_MAP`] pixels a side. Errors when the chosen stage's map is smaller.
    pub fn cam_stage(&self) -> Result<usize> {
        Ok(self.cam_layer()?.0)
    }

    /// [`StudyConfig::cam_stage`] and the side of its map at the study's image size.
    pub fn cam_layer(&self) -> Result<(usize, usize)> {
        let ec = self.experiment_for("baseline", &[])?;
        let arch: dfr_model::Arch = ec
            .model
            .arch
            .parse()
            .map_err(|e| anyhow::anyhow!("model.arch: {e}"))?;
        let model = dfr_model::EfficientNetConfig::new(arch, 2);
        let size = ec.model.image_size as usize;
        let side = |k: usize| model.stage_size(size, k);
        match self.cam.stage {
            Some(k) => {
                let Some(n) = side(k) else {
                    bail!("cam.stage = {k}: expected a feature stage 0..=8");
                };
                if n < MIN_CAM_MAP {
                    bail!(
                        "cam.stage = {k} gives a {n}×{n} Grad-CAM map at {size} px: expected at \
                         least {MIN_CAM_MAP}×{MIN_CAM_MAP} (leave cam.stage out to pick the \
                         deepest such stage)"
                    );
                }
                Ok((k, n))
            }
            None => (0..model.num_stages())
                .rev()
                .find_map(|k| side(k).filter(|&n| n >= MIN_CAM_MAP).map(|n| (k, n)))
                .with_context(|| {
                    format!("no stage has a {MIN_CAM_MAP}×{MIN_CAM_MAP} map at {size} px")
                }),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cam(cam: &str) -> Result<StudyConfig> {
        StudyConfig::parse(&format!("{QUICK}\n{cam}"), "test.toml")
    }

    /// The Grad-CAM stage is the deepest with a map of at least 7×7 unless chosen, and a
    /// coarser choice is an error naming `cam.stage` before any work.
    #[test]
    fn cam_stage_is_chosen_by_map_size() {
        let quick = StudyConfig::load(None).unwrap();
        assert_eq!(quick.cam.stage, None);
        assert_eq!(
            quick.cam_stage().unwrap(),
            3,
            "64 px: stage 3 is 8×8, stage 4 is 4×4"
        );
        let big = StudyConfig::parse(
            &QUICK.replace("image_size = 64", "image_size = 224"),
            "big.toml",
        )
        .unwrap();
        assert_eq!(big.cam_stage().unwrap(), 8, "224 px: the head's 7×7 map");
        let e = format!("{:#}", with_cam("stage = 8").unwrap_err());
        assert!(e.contains("cam.stage = 8") && e.contains("2×2"), "{e}");
        let e = format!("{:#}", with_cam("stage = 12").unwrap_err());
        assert!(e.contains("0..=8"), "{e}");
        assert_eq!(with_cam("stage = 2").unwrap().cam_stage().unwrap(), 2);
    }
}
