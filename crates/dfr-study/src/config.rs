//! The study file (`experiments/quick.toml`, `experiments/dffd-paper.toml`): one experiment,
//! the arms that vary it, the seeds every arm runs with, and the evaluation.

use crate::arm::{default_comparisons, ArmSpec, ComparisonSpec};
use crate::error::{Result, StudyError};
use dfr_data::synth::SynthConfig;
use dfr_data::Split;
use dfr_train::{ExperimentConfig, Strategy};
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
    pub split: Split,
    /// At most this many samples, spread evenly over the split (the whole split when
    /// absent, the default).
    pub limit: Option<usize>,
    /// Batch size.
    pub batch_size: usize,
    /// Other data sets each run's checkpoint is also evaluated on, clean (cross-dataset:
    /// `[[eval.datasets]]`); frame- and video-level metrics per arm over seeds.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub datasets: Vec<ExternalDataset>,
}

impl Default for EvalSection {
    fn default() -> Self {
        EvalSection {
            split: Split::Test,
            limit: None,
            batch_size: 32,
            datasets: Vec::new(),
        }
    }
}

/// A data set for cross-dataset evaluation (`[[eval.datasets]]`), e.g. Celeb-DF-v2 frames
/// in a CSV manifest with a `video` column (see `data/README.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalDataset {
    /// Name in metric names and tables (letters, digits, `-`, `_`).
    pub name: String,
    /// Root (for `csv`: the manifest or a directory holding manifest.csv).
    pub root: std::path::PathBuf,
    /// Layout (default `csv`).
    #[serde(default = "csv_layout")]
    pub layout: dfr_data::LayoutKind,
    /// Split to evaluate (default `test`).
    #[serde(default = "test_split")]
    pub split: Split,
}

fn csv_layout() -> dfr_data::LayoutKind {
    dfr_data::LayoutKind::Csv
}

fn test_split() -> Split {
    Split::Test
}

/// ε grids and iterative-attack parameters of the published protocol.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AttackSection {
    /// FGSM ε grid (empty: no FGSM).
    pub fgsm: Vec<f64>,
    /// PGD ε grid (empty: no PGD).
    pub pgd: Vec<f64>,
    /// MI-FGSM ε grid (empty: no MI-FGSM).
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

impl AttackSection {
    /// The published attacks with their (non-empty) ε grids, in report order.
    pub fn grids(&self) -> Vec<(dfr_attacks::AttackKind, &[f64])> {
        use dfr_attacks::AttackKind::*;
        [
            (Fgsm, &self.fgsm[..]),
            (Pgd, &self.pgd[..]),
            (MiFgsm, &self.mifgsm[..]),
        ]
        .into_iter()
        .filter(|(_, g)| !g.is_empty())
        .collect()
    }
}

/// The worst-case row: stronger attacks than the published 5-step protocol, to tell real
/// robustness from gradient masking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorstCaseSection {
    /// ε grid (empty: no worst-case row).
    pub eps: Vec<f64>,
    /// PGD iterations (random start).
    pub pgd_steps: usize,
    /// PGD restarts, each from another random start; a sample counts as robust only if it
    /// survives all of them.
    pub pgd_restarts: usize,
    /// APGD-CE iterations (0: no APGD).
    pub apgd_steps: usize,
    /// At most this many samples (all of the evaluation's when absent).
    pub limit: Option<usize>,
}

impl Default for WorstCaseSection {
    fn default() -> Self {
        WorstCaseSection {
            eps: vec![0.001],
            pgd_steps: 20,
            pgd_restarts: 2,
            apgd_steps: 20,
            limit: None,
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
    /// Grad-CAM layer, from 193 px up; 3, an 8×8 map, at 64 px; 2, 12×12, at 48 px).
    pub stage: Option<usize>,
}

/// The smallest Grad-CAM map side a study accepts: a coarser map (a 2×2 map at 48 or 64 px from
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

/// Statistics options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StatsSection {
    /// Confidence level of every interval.
    pub level: f64,
    /// Bootstrap resamples of the seeds × test-images intervals.
    pub resamples: usize,
}

impl Default for StatsSection {
    fn default() -> Self {
        StatsSection {
            level: 0.95,
            resamples: 2000,
        }
    }
}

/// The default seeds: six, the fewest with which an exact two-sided sign-flip test over
/// seeds can reach p < 0.05 (its smallest p is 2/2ⁿ).
pub fn default_seeds() -> Vec<u64> {
    (0..6).collect()
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
    /// The experiment every arm starts from (an `ExperimentConfig` TOML table).
    #[serde(default)]
    pub experiment: toml::Table,
    /// Seeds: every arm is trained and evaluated once per seed (initialisation, data order,
    /// augmentation, dropout; the data set stays fixed).
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    /// The arms (`[[arms]]`); default: [`crate::arm::default_arms`].
    #[serde(default = "crate::arm::default_arms")]
    pub arms: Vec<ArmSpec>,
    /// Arm-vs-arm comparisons (`[[comparisons]]`); default: [`default_comparisons`] of the
    /// arms present.
    #[serde(default)]
    pub comparisons: Vec<ComparisonSpec>,
    /// Evaluation.
    #[serde(default)]
    pub eval: EvalSection,
    /// The published attacks.
    #[serde(default)]
    pub attacks: AttackSection,
    /// The worst-case row.
    #[serde(default)]
    pub worst_case: WorstCaseSection,
    /// Grad-CAM.
    #[serde(default)]
    pub cam: CamSection,
    /// Statistics.
    #[serde(default)]
    pub stats: StatsSection,
    /// The α × r grid of `cargo xtask ablation` (ignored by `reproduce-tables`).
    pub ablation: Option<crate::ablation::AblationSection>,
    /// Leave-one-source-out of `cargo xtask generalization` (ignored by `reproduce-tables`).
    pub generalization: Option<crate::generalization::GeneralizationSection>,
    /// How the file is named in messages (set by [`StudyConfig::parse`]).
    #[serde(skip)]
    pub source: String,
}

/// Deep-merges `over` into `base` (tables key by key, other values replaced).
pub fn merge_tables(base: &mut toml::Table, over: &toml::Table) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge_tables(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

fn check_grid(name: &str, key: &str, g: &[f64]) -> Result<()> {
    if let Some(e) = g
        .iter()
        .find(|e| !(e.is_finite() && **e > 0.0 && **e <= 1.0))
    {
        return Err(StudyError::config(
            name,
            key,
            format!("holds {e}: expected ε values in (0, 1]"),
        ));
    }
    Ok(())
}

impl StudyConfig {
    /// Loads a study file, or the embedded quick study when `path` is `None`.
    pub fn load(path: Option<&Path>) -> Result<StudyConfig> {
        match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| StudyError::Parse {
                    file: p.display().to_string(),
                    message: format!("cannot read: {e}"),
                })?;
                Self::parse(&text, &p.display().to_string())
            }
            None => Self::parse(QUICK, QUICK_NAME),
        }
    }

    /// Parses and validates a study file's text; `name` labels errors. Every error names
    /// the key and comes before any work.
    ///
    /// ```
    /// use dfr_study::StudyConfig;
    /// let e = StudyConfig::parse("seeds = []", "s.toml").unwrap_err().to_string();
    /// assert!(e.contains("s.toml") && e.contains("seeds"), "{e}");
    /// let e = StudyConfig::parse("seeds = [1, 1]", "s.toml").unwrap_err().to_string();
    /// assert!(e.contains("seeds") && e.contains("twice"), "{e}");
    /// ```
    pub fn parse(text: &str, name: &str) -> Result<StudyConfig> {
        let mut cfg: StudyConfig = toml::from_str(text).map_err(|e| StudyError::Parse {
            file: name.to_string(),
            message: e.to_string(),
        })?;
        cfg.source = name.to_string();
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks every value (see [`StudyConfig::parse`]).
    pub fn validate(&self) -> Result<()> {
        let name = self.source.as_str();
        let err = |k: &str, m: String| Err(StudyError::config(name, k, m));
        if self.seeds.is_empty() {
            return err("seeds", "is empty: expected at least one seed".into());
        }
        for (i, s) in self.seeds.iter().enumerate() {
            if self.seeds[..i].contains(s) {
                return err("seeds", format!("holds {s} twice: every seed must differ"));
            }
        }
        if self.arms.is_empty() {
            return err("arms", "is empty: expected at least one arm".into());
        }
        for (i, a) in self.arms.iter().enumerate() {
            a.validate(name, i)?;
            if self.arms[..i].iter().any(|b| b.name == a.name) {
                return err(
                    &format!("arms[{i}].name"),
                    format!("`{}` names two arms: arm names must differ", a.name),
                );
            }
        }
        for (i, d) in self.eval.datasets.iter().enumerate() {
            let key = format!("eval.datasets[{i}].name");
            let valid = !d.name.is_empty()
                && d.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !valid {
                return err(
                    &key,
                    format!("`{}`: expected letters, digits, `-` or `_`", d.name),
                );
            }
            if self.eval.datasets[..i].iter().any(|e| e.name == d.name) {
                return err(&key, format!("`{}` names two data sets", d.name));
            }
        }
        for (i, c) in self.comparisons.iter().enumerate() {
            for (k, arm) in [("a", &c.a), ("b", &c.b)] {
                if self.arm(arm).is_none() {
                    return err(
                        &format!("comparisons[{i}].{k}"),
                        format!(
                            "`{arm}` is not an arm (arms: {})",
                            self.arm_names().join(", ")
                        ),
                    );
                }
            }
            if c.a == c.b {
                return err(
                    &format!("comparisons[{i}]"),
                    format!("compares `{}` with itself", c.a),
                );
            }
        }
        if self.attacks.steps == 0 {
            return err("attacks.steps", "must be at least 1".into());
        }
        check_grid(name, "attacks.fgsm", &self.attacks.fgsm)?;
        check_grid(name, "attacks.pgd", &self.attacks.pgd)?;
        check_grid(name, "attacks.mifgsm", &self.attacks.mifgsm)?;
        check_grid(name, "worst_case.eps", &self.worst_case.eps)?;
        if !self.worst_case.eps.is_empty()
            && (self.worst_case.pgd_steps == 0 || self.worst_case.pgd_restarts == 0)
        {
            return err(
                "worst_case",
                "pgd_steps and pgd_restarts must be at least 1 (or eps = [] for no row)".into(),
            );
        }
        if self.eval.batch_size == 0 {
            return err("eval.batch_size", "must be at least 1".into());
        }
        if !(self.stats.level > 0.0 && self.stats.level < 1.0) {
            return err(
                "stats.level",
                format!("{}: expected a value in (0, 1)", self.stats.level),
            );
        }
        if self.stats.resamples < 100 {
            return err("stats.resamples", "expected at least 100".into());
        }
        // Every arm's experiment, once, early.
        for (i, a) in self.arms.iter().enumerate() {
            self.experiment_for(a, self.seeds[0], &[])
                .map_err(|e| StudyError::config(name, format!("arms[{i}] ({})", a.name), e))?;
        }
        self.cam_stage()?;
        Ok(())
    }

    /// The arm called `name`.
    pub fn arm(&self, name: &str) -> Option<&ArmSpec> {
        self.arms.iter().find(|a| a.name == name)
    }

    /// The arms' names, in order.
    pub fn arm_names(&self) -> Vec<String> {
        self.arms.iter().map(|a| a.name.clone()).collect()
    }

    /// The comparisons: the file's, or the default ones among the arms present.
    pub fn comparisons(&self) -> Vec<ComparisonSpec> {
        if !self.comparisons.is_empty() {
            return self.comparisons.clone();
        }
        default_comparisons(&self.arm_names())
    }

    /// The Grad-CAM stage: `cam.stage`, or the deepest stage with a map of at least
    /// [`MIN_CAM_MAP`] pixels a side. Errors when the chosen stage's map is smaller.
    pub fn cam_stage(&self) -> Result<usize> {
        Ok(self.cam_layer()?.0)
    }

    /// [`StudyConfig::cam_stage`] and the side of its map at the study's image size.
    pub fn cam_layer(&self) -> Result<(usize, usize)> {
        let ec = self.base_experiment(&[])?;
        let err = |m: String| Err(StudyError::config(&self.source, "cam.stage", m));
        let arch: dfr_model::Arch = ec
            .model
            .arch
            .parse()
            .map_err(|e| StudyError::config(&self.source, "experiment.model.arch", e))?;
        let model = dfr_model::EfficientNetConfig::new(arch, 2);
        let size = ec.model.image_size as usize;
        let side = |k: usize| model.stage_size(size, k);
        match self.cam.stage {
            Some(k) => {
                let Some(n) = side(k) else {
                    return err(format!("{k}: expected a feature stage 0..=8"));
                };
                if n < MIN_CAM_MAP {
                    return err(format!(
                        "cam.stage = {k} gives a {n}×{n} Grad-CAM map at {size} px: expected at \
                         least {MIN_CAM_MAP}×{MIN_CAM_MAP} (leave cam.stage out to pick the \
                         deepest such stage)"
                    ));
                }
                Ok((k, n))
            }
            None => (0..model.num_stages())
                .rev()
                .find_map(|k| side(k).filter(|&n| n >= MIN_CAM_MAP).map(|n| (k, n)))
                .map_or_else(
                    || {
                        err(format!(
                            "no stage has a {MIN_CAM_MAP}×{MIN_CAM_MAP} map at {size} px"
                        ))
                    },
                    Ok,
                ),
        }
    }

    /// The study's output directory.
    pub fn out_dir(&self) -> PathBuf {
        self.study.results_dir.join(&self.study.name)
    }

    /// The run directory of `arm` with `seed`: `<out>/runs/<arm>/seed-<seed>`.
    pub fn run_dir(&self, arm: &str, seed: u64) -> PathBuf {
        self.out_dir()
            .join("runs")
            .join(arm)
            .join(format!("seed-{seed}"))
    }

    /// The study's experiment alone (data, model; no arm), with `extra` `--set` overrides.
    pub fn base_experiment(&self, extra: &[String]) -> Result<ExperimentConfig> {
        let text = toml::to_string(&self.experiment)
            .map_err(|e| StudyError::config(&self.source, "experiment", e))?;
        Ok(ExperimentConfig::from_toml_str(&text, extra)?)
    }

    /// The training configuration of `arm` with `seed`: the study's experiment, the arm's
    /// `experiment` table merged over it, the user's `extra` overrides (`key=value`), then
    /// the arm's strategy, the seed and the run directory [`StudyConfig::run_dir`].
    pub fn experiment_for(
        &self,
        arm: &ArmSpec,
        seed: u64,
        extra: &[String],
    ) -> Result<ExperimentConfig> {
        let dir = self.out_dir().join("runs").join(&arm.name);
        self.experiment_with(
            &arm.experiment,
            arm.strategy,
            &dir,
            &format!("seed-{seed}"),
            Some(seed),
            extra,
        )
    }

    /// The experiment with `table` merged over the study's, `extra` applied, then
    /// `strategy`, the run `<dir>/<run>` and (when given) `seed` set.
    pub fn experiment_with(
        &self,
        table: &toml::Table,
        strategy: Strategy,
        dir: &Path,
        run: &str,
        seed: Option<u64>,
        extra: &[String],
    ) -> Result<ExperimentConfig> {
        let mut t = self.experiment.clone();
        merge_tables(&mut t, table);
        let text =
            toml::to_string(&t).map_err(|e| StudyError::config(&self.source, "experiment", e))?;
        let mut ec = ExperimentConfig::from_toml_str(&text, extra)?;
        ec.train.strategy = strategy;
        ec.run.name = run.to_string();
        ec.run.results_dir = dir.to_path_buf();
        if let Some(s) = seed {
            ec.run.seed = s;
        }
        ec.validate()?;
        Ok(ec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(extra: &str) -> Result<StudyConfig> {
        StudyConfig::parse(&format!("{QUICK}\n{extra}"), "test.toml")
    }

    /// The Grad-CAM stage is the deepest with a map of at least 7×7 unless chosen, and a
    /// coarser choice is an error naming `cam.stage` before any work.
    #[test]
    fn cam_stage_is_chosen_by_map_size() {
        let quick = StudyConfig::load(None).unwrap();
        assert_eq!(quick.cam.stage, None);
        assert_eq!(
            quick.cam_stage().unwrap(),
            2,
            "48 px: stage 2 is 12×12, stage 3 is 6×6"
        );
        let big = StudyConfig::parse(
            &QUICK.replace("image_size = 48", "image_size = 224"),
            "big.toml",
        )
        .unwrap();
        assert_eq!(big.cam_stage().unwrap(), 8, "224 px: the head's 7×7 map");
        let e = with("stage = 8").unwrap_err().to_string();
        assert!(e.contains("cam.stage") && e.contains("2×2"), "{e}");
        let e = with("stage = 12").unwrap_err().to_string();
        assert!(e.contains("0..=8"), "{e}");
        assert_eq!(with("stage = 2").unwrap().cam_stage().unwrap(), 2);
    }

    /// Bad study files are errors naming the key, before any work.
    #[test]
    fn bad_study_files_name_the_key() {
        let cases: [(&str, &[&str]); 6] = [
            ("seeds = []", &["seeds", "empty"]),
            ("seeds = [3, 4, 3]", &["seeds", "twice"]),
            (
                "[[arms]]\nname = \"a\"\nstrategy = \"baseline\"\n[[arms]]\nname = \"a\"\nstrategy = \"gradreg\"\n",
                &["arms[1].name", "two arms"],
            ),
            (
                "[[arms]]\nname = \"a\"\nstrategy = \"magic\"\n",
                &["test.toml", "magic", "strategy"],
            ),
            (
                "[[arms]]\nname = \"a\"\nstrategy = \"baseline\"\ncolour = 1\n",
                &["test.toml", "colour"],
            ),
            (
                "[[arms]]\nname = \"a\"\nstrategy = \"baseline\"\n[[comparisons]]\na = \"a\"\nb = \"zz\"\n",
                &["comparisons[0].b", "zz"],
            ),
        ];
        for (extra, want) in cases {
            // The seeds and arms keys must be top-level: put them first.
            let text = format!("{extra}\n{QUICK}");
            let text = text.replace("seeds = [0, 1, 2, 3, 4, 5]\n", "");
            let e = match StudyConfig::parse(&text, "test.toml") {
                Ok(_) => panic!("accepted: {extra}"),
                Err(e) => e.to_string(),
            };
            for w in want {
                assert!(e.contains(w), "`{extra}`: `{e}` lacks `{w}`");
            }
        }
        let e = with("[worst_case]\neps = [2.0]\n");
        assert!(e.is_err());
        for (extra, want) in [
            (
                "[[eval.datasets]]\nname = \"a b\"\nroot = \"x\"\n",
                "eval.datasets[0].name",
            ),
            (
                "[[eval.datasets]]\nname = \"x\"\nroot = \"x\"\n[[eval.datasets]]\nname = \"x\"\nroot = \"y\"\n",
                "eval.datasets[1].name",
            ),
            ("[[eval.datasets]]\nname = \"x\"\nroot = \"x\"\nfps = 1\n", "fps"),
        ] {
            let e = with(extra).err().unwrap_or_else(|| panic!("accepted {extra}")).to_string();
            assert!(e.contains(want), "`{extra}`: `{e}`");
        }
        let ok = with("[[eval.datasets]]\nname = \"celeb-df\"\nroot = \"m.csv\"\n").unwrap();
        assert_eq!(ok.eval.datasets[0].layout, dfr_data::LayoutKind::Csv);
    }

    /// Each (arm, seed) has its own run directory and seed; the arm's table is merged over
    /// the experiment.
    #[test]
    fn arms_and_seeds_make_the_runs() {
        let q = StudyConfig::load(None).unwrap();
        assert!(q.seeds.len() >= 6);
        let names = q.arm_names();
        assert_eq!(
            names,
            ["baseline", "baseline-frozen", "gradreg", "gradreg-random"]
        );
        let frozen = q
            .experiment_for(q.arm("baseline-frozen").unwrap(), 7, &[])
            .unwrap();
        let base = q
            .experiment_for(q.arm("baseline").unwrap(), 7, &[])
            .unwrap();
        let reg = q.experiment_for(q.arm("gradreg").unwrap(), 7, &[]).unwrap();
        let rnd = q
            .experiment_for(q.arm("gradreg-random").unwrap(), 7, &[])
            .unwrap();
        assert_eq!(frozen.run.seed, 7);
        assert_eq!(frozen.run_dir(), q.run_dir("baseline-frozen", 7));
        assert_ne!(frozen.run_dir(), q.run_dir("baseline-frozen", 8));
        assert!(frozen.shallow_frozen() && reg.shallow_frozen() && !base.shallow_frozen());
        assert_eq!(frozen.train.strategy, Strategy::Baseline);
        assert_eq!(rnd.gradreg.direction, dfr_train::config::Direction::Random);
        assert_eq!(
            reg.gradreg.direction,
            dfr_train::config::Direction::Gradient
        );
        // The matched control differs from gradreg in the strategy only (gradreg freezes the
        // shallow part by itself; the control says so).
        let mut f = frozen.clone();
        f.train.strategy = Strategy::Gradreg;
        f.train.freeze_shallow = false;
        f.run = reg.run.clone();
        assert_eq!(f, reg);
        let c = q.comparisons();
        assert_eq!(
            (c[0].a.as_str(), c[0].b.as_str()),
            ("baseline-frozen", "gradreg")
        );
    }
}
