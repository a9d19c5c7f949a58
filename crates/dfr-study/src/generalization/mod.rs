//! `cargo xtask generalization`: leave-one-source-out. For each held-out fake source (or
//! group of sources) g, every arm is trained with each seed on the other fake sources (the
//! real sources always included; g is left out of the train and validation splits), then
//! scores the whole evaluation split once. The metrics of each unit (g, arm, seed) are
//! computed on the *seen* test images (reals and the fakes it trained on) and on the
//! *held-out* ones (reals and g's fakes): AUC, accuracy and macro-F1 on each, their gap, and
//! the mean over g; then the study's statistics over seeds and its paired comparisons between
//! arms (`summary.json` with the study's schema plus `held_out`), a table shaped like Guan et
//! al.'s Table IV (rows arm, columns held-out source, last column the mean), figures and
//! `report.md`.
//!
//! Every unit is independent and idempotent: its training run lives in
//! `<out>/held-out-<g>/runs/<arm>/seed-<s>` (a finished run is reused, an interrupted one
//! resumes) and its scores in `<out>/units/held-out-<g>/<arm>/seed-<s>.json`, reused while
//! the unit's configuration is unchanged; units run side by side here or as a Slurm job
//! array (`--emit slurm`), and `--merge` summarises them.
//!
//! ```
//! let text = dfr_study::generalization::GENERALIZATION;
//! let cfg = dfr_study::StudyConfig::parse(text, "generalization.toml").unwrap();
//! let g = cfg.generalization.as_ref().unwrap();
//! assert!(g.held_out.len() >= 2 && cfg.seeds.len() >= 6);
//! ```

pub mod report;
pub mod section;
pub mod summary;

pub use section::{GeneralizationSection, HeldOutGroup, HeldOutSpec};

use crate::config::StudyConfig;
use crate::error::{Result, StepContext, StudyError};
use crate::jobs::{self, Plan};
use crate::run::{cached, checkpoint_id, prepare_dataset, train_and_load};
use crate::slurm::Emit;
use crate::study::{load_study, StudyOptions};
use dfr_data::Sample;
use dfr_train::evaluate::{score_samples, ScoredSamples};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Instant;

/// The embedded default generalisation study.
pub const GENERALIZATION: &str = include_str!("../../../../experiments/generalization.toml");
/// How the embedded default is named in messages.
pub const GENERALIZATION_NAME: &str = "experiments/generalization.toml (embedded)";

/// A held-out group as resolved on the data: its name and its sources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldOut {
    /// Name (the `@<name>` suffix of its metrics).
    pub name: String,
    /// The fake sources held out.
    pub sources: Vec<String>,
    /// The fake sources its units train on (the train split's fakes but `sources`): the
    /// fakes of the *seen* metrics.
    pub seen: Vec<String>,
}

/// What `cargo xtask generalization` does.
#[derive(Debug, Clone, Default)]
pub struct GeneralizationOptions {
    /// Study options (default config: the embedded experiments/generalization.toml).
    pub study: StudyOptions,
    /// Run only unit I; the summary is left to a later run or `merge`.
    pub unit: Option<usize>,
    /// Print the units and exit.
    pub list: bool,
    /// Only summarise the finished units (an error lists the missing ones).
    pub merge: bool,
    /// Write job scripts for a scheduler instead of running the units.
    pub emit: Option<Emit>,
}

/// One training: held-out group × arm × seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// Position in the study's units (seed-major: an interrupted study has every group and
    /// arm at about the same number of seeds).
    pub index: usize,
    /// Held-out group index.
    pub group: usize,
    /// Arm index into the study's `arms`.
    pub arm: usize,
    /// Seed.
    pub seed: u64,
    /// `held-out-<g>/<arm>/seed-<s>`.
    pub id: String,
}

/// The result file of one unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitResult {
    /// Unit id.
    pub id: String,
    /// Held-out group.
    pub held_out: String,
    /// Arm.
    pub arm: String,
    /// Seed.
    pub seed: u64,
    /// Everything the result depends on; the unit is redone when it changes.
    pub key: serde_json::Value,
    /// Epochs trained.
    pub epochs: usize,
    /// Best epoch (0-based).
    pub best_epoch: Option<usize>,
    /// Validation (seen sources only) ROC-AUC at the best epoch.
    pub val_roc_auc: Option<f64>,
    /// Mean training throughput.
    pub train_images_per_second: f64,
    /// The fake probability of every image of the evaluation split.
    pub scores: ScoredSamples,
    /// Wall time of the unit's work in the run that produced it (s).
    pub seconds: f64,
}

/// A generalisation study made ready: configuration, held-out groups, arms, samples.
pub struct Generalization {
    /// The study file (with `[generalization]`).
    pub cfg: StudyConfig,
    /// Its section.
    pub section: GeneralizationSection,
    /// The held-out groups, resolved on the data.
    pub groups: Vec<HeldOut>,
    /// Indices into `cfg.arms` of the arms that run.
    pub arms: Vec<usize>,
    /// The evaluation split's samples.
    pub samples: Vec<Sample>,
    /// Output directory.
    pub out: PathBuf,
    /// `--set` overrides applied to every unit.
    pub overrides: Vec<String>,
    /// Device (parsed when a unit runs).
    pub device: String,
    /// Fingerprint of every image of the data set (paths and sizes): part of each unit's key.
    pub data_fingerprint: String,
}

impl Generalization {
    /// Loads the study (default: the embedded one), generates the synthetic data if asked,
    /// scans it and resolves the held-out groups — every check before any training.
    pub fn prepare(opts: &StudyOptions) -> Result<Generalization> {
        let cfg = load_study(opts, (GENERALIZATION, GENERALIZATION_NAME))?;
        let section = cfg.generalization.clone().ok_or_else(|| {
            StudyError::config(
                &cfg.source,
                "generalization",
                "no [generalization] section (held_out, arms) to run",
            )
        })?;
        section.validate(&cfg)?;
        let arms: Vec<usize> = if section.arms.is_empty() {
            (0..cfg.arms.len()).collect()
        } else {
            section
                .arms
                .iter()
                .filter_map(|a| cfg.arms.iter().position(|x| &x.name == a))
                .collect()
        };
        let ds = prepare_dataset(&cfg, &opts.overrides)?;
        let train = ds.require_split(dfr_data::Split::Train)?;
        let samples = ds.require_split(cfg.eval.split)?;
        let groups = section.resolve(&cfg.source, &train, &samples, cfg.eval.split.name())?;
        let all: Vec<&Sample> = ds.samples.iter().collect();
        let data_fingerprint = dfr_train::state::data_fingerprint(&ds.root, &all);
        let g = Generalization {
            out: cfg.out_dir(),
            cfg,
            section,
            groups,
            arms,
            samples,
            overrides: opts.overrides.clone(),
            device: opts.device.clone(),
            data_fingerprint,
        };
        // every unit's experiment, once, now
        for u in g.units() {
            g.experiment(&u)?;
        }
        Ok(g)
    }

    /// The units, seed-major, then group, then arm.
    pub fn units(&self) -> Vec<Unit> {
        let mut v = Vec::new();
        for &seed in &self.cfg.seeds {
            for (group, h) in self.groups.iter().enumerate() {
                for &arm in &self.arms {
                    v.push(Unit {
                        index: v.len(),
                        group,
                        arm,
                        seed,
                        id: format!(
                            "held-out-{}/{}/seed-{seed}",
                            h.name, self.cfg.arms[arm].name
                        ),
                    });
                }
            }
        }
        v
    }

    /// The training configuration of a unit: the arm's experiment with the held-out sources
    /// removed from the train and validation splits.
    pub fn experiment(&self, u: &Unit) -> Result<dfr_train::ExperimentConfig> {
        let arm = &self.cfg.arms[u.arm];
        let h = &self.groups[u.group];
        let dir = self
            .out
            .join(format!("held-out-{}", h.name))
            .join("runs")
            .join(&arm.name);
        let mut ec = self
            .cfg
            .experiment_with(
                &arm.experiment,
                arm.strategy,
                &dir,
                &format!("seed-{}", u.seed),
                Some(u.seed),
                &self.overrides,
            )
            .step(|| format!("unit {} ({})", u.index, u.id))?;
        for f in [&mut ec.data.train, &mut ec.data.validation] {
            for s in &h.sources {
                if !f.exclude.contains(s) {
                    f.exclude.push(s.clone());
                }
            }
        }
        ec.validate()
            .step(|| format!("unit {} ({})", u.index, u.id))?;
        Ok(ec)
    }

    /// Result file of a unit.
    pub fn unit_path(&self, u: &Unit) -> PathBuf {
        self.out.join("units").join(format!("{}.json", u.id))
    }

    /// Everything a unit's result depends on: its experiment (less the keys that change
    /// nothing computed: progress bars, threads, prefetching, where the run lives), the
    /// held-out group, the evaluation split and the data's fingerprint.
    fn key(&self, u: &Unit, ec: &dfr_train::ExperimentConfig) -> serde_json::Value {
        let mut experiment = serde_json::to_value(ec).unwrap_or_default();
        for k in dfr_train::state::RESUME_FREE_KEYS {
            if let Some((table, key)) = k.split_once('.') {
                if let Some(t) = experiment.get_mut(table).and_then(|t| t.as_object_mut()) {
                    t.remove(key);
                }
            }
        }
        serde_json::json!({
            "experiment": experiment,
            "data": self.data_fingerprint,
            "held_out": self.groups[u.group],
            "eval": { "split": self.cfg.eval.split, "batch_size": self.cfg.eval.batch_size },
            "synth": self.cfg.synth,
        })
    }

    /// Reads a finished unit; `None` when absent, unreadable or made with another
    /// configuration.
    pub fn finished(&self, u: &Unit) -> Result<Option<UnitResult>> {
        let key = self.key(u, &self.experiment(u)?);
        Ok(std::fs::read_to_string(self.unit_path(u))
            .ok()
            .and_then(|t| serde_json::from_str::<UnitResult>(&t).ok())
            .filter(|r| r.key == key))
    }

    /// Trains and scores one unit (or reuses its finished result).
    pub fn run_unit(&self, u: &Unit) -> Result<UnitResult> {
        self.run_unit_quiet(u, false)
    }

    fn run_unit_quiet(&self, u: &Unit, quiet: bool) -> Result<UnitResult> {
        let n = self.units().len();
        if let Some(r) = self.finished(u)? {
            tracing::info!("[unit {}/{n}] {}: finished earlier, reused", u.index, u.id);
            return Ok(r);
        }
        let device = dfr_model::device::parse(&self.device).step(|| "--device")?;
        tracing::info!("[unit {}/{n}] {}", u.index, u.id);
        let t0 = Instant::now();
        let ec = self.experiment(u)?;
        let mut shown = ec.clone();
        shown.train.progress &= !quiet;
        let (training, model) = train_and_load(&shown, &u.id, &device)?;
        let run_dir = ec.run_dir();
        let key = serde_json::json!({
            "split": self.cfg.eval.split,
            "batch_size": self.cfg.eval.batch_size,
            "data": self.data_fingerprint,
        });
        let scores = cached(
            &run_dir.join("eval").join("scores.json"),
            &checkpoint_id(&ec)?,
            &key,
            || {
                score_samples(
                    &model,
                    self.samples.clone(),
                    self.cfg.eval.split,
                    ec.model.image_size,
                    self.cfg.eval.batch_size,
                    ec.data.max_bad_fraction,
                    &device,
                )
                .step(|| {
                    format!(
                        "scoring the {} split with {}",
                        self.cfg.eval.split.name(),
                        u.id
                    )
                })
            },
        )?;
        let result = UnitResult {
            id: u.id.clone(),
            held_out: self.groups[u.group].name.clone(),
            arm: self.cfg.arms[u.arm].name.clone(),
            seed: u.seed,
            key: self.key(u, &ec),
            epochs: training.epochs.len(),
            best_epoch: training.best_epoch,
            val_roc_auc: crate::run::best_val_auc(&training),
            train_images_per_second: training.images_per_second,
            scores,
            seconds: t0.elapsed().as_secs_f64(),
        };
        let path = self.unit_path(u);
        std::fs::create_dir_all(path.parent().expect("units dir"))
            .step(|| format!("creating {}", path.display()))?;
        dfr_fs::write_atomic(&path, serde_json::to_string(&result)?.as_bytes())
            .step(|| format!("writing {}", path.display()))?;
        tracing::info!(
            "[unit {}/{n}] {}: done ({:.0} s)",
            u.index,
            u.id,
            result.seconds
        );
        Ok(result)
    }

    /// Summarises the finished units: `summary.json`, tables, figures, `report.md`; returns
    /// the report path. Every unit must be finished (an error lists those that are not).
    pub fn merge(&self, seconds: Option<f64>) -> Result<PathBuf> {
        let units = self.units();
        let mut done = Vec::new();
        let mut missing = Vec::new();
        for u in &units {
            match self.finished(u)? {
                Some(r) => done.push(r),
                None => missing.push(format!("{} ({})", u.index, u.id)),
            }
        }
        if !missing.is_empty() {
            return Err(StudyError::Invalid(format!(
                "{} of {} units are not finished: {} (run them with `cargo xtask \
                 generalization --unit I`, or all with `cargo xtask generalization`)",
                missing.len(),
                units.len(),
                missing.join(", ")
            )));
        }
        let summary = summary::summarize(self, &done)?;
        let path = self.out.join("summary.json");
        std::fs::create_dir_all(&self.out).step(|| format!("creating {}", self.out.display()))?;
        dfr_fs::write_atomic(&path, serde_json::to_string_pretty(&summary)?.as_bytes())
            .step(|| format!("writing {}", path.display()))?;
        report::write(self, &done, &summary, seconds)
    }
}

/// `cargo xtask generalization`; returns the report path (the job script with `--emit`, the
/// unit file with `--unit`, the output directory with `--list`).
pub fn run(a: &GeneralizationOptions) -> Result<PathBuf> {
    let t0 = Instant::now();
    let g = Generalization::prepare(&a.study)?;
    let units = g.units();
    if a.list {
        for u in &units {
            let state = if g.finished(u)?.is_some() {
                "finished"
            } else {
                "to do"
            };
            println!("{:>3}  {:<48} {state}", u.index, u.id); // the listing is the output
        }
        return Ok(g.out.clone());
    }
    if let Some(Emit::Slurm) = a.emit {
        let job = crate::slurm::JobArray {
            command: "generalization",
            study: &g.cfg.study.name,
            out: &g.out,
            embedded: ("generalization.toml", GENERALIZATION),
            unit_flag: "--unit",
            n: units.len(),
            slurm: &g.section.slurm,
        };
        return crate::slurm::emit(&job, &a.study);
    }
    if let Some(i) = a.unit {
        let Some(u) = units.get(i) else {
            return Err(StudyError::Invalid(format!(
                "--unit {i}: this study has units 0..={} (see --list)",
                units.len() - 1
            )));
        };
        g.run_unit(u)?;
        return Ok(g.unit_path(u));
    }
    if a.merge {
        let path = g.merge(None)?;
        tracing::info!("[report] {}", path.display());
        return Ok(path);
    }
    let device = dfr_model::device::parse(&g.device).step(|| "--device")?;
    let plan = Plan::new(
        a.study.jobs,
        &device,
        units.len(),
        rayon::current_num_threads(),
    );
    tracing::info!(
        "[generalization] {} units ({} held out × {} arms × {} seeds), {plan}",
        units.len(),
        g.groups.len(),
        g.arms.len(),
        g.cfg.seeds.len()
    );
    let outcomes = jobs::run_all(units.len(), plan, false, |i| {
        let u = &units[i];
        let _span = tracing::info_span!("unit", id = %u.id).entered();
        g.run_unit_quiet(u, !plan.shows_progress())
    });
    if let Some(e) = outcomes.into_iter().flatten().find_map(|o| o.err()) {
        return Err(e);
    }
    let path = g.merge(Some(t0.elapsed().as_secs_f64()))?;
    tracing::info!("[report] {}", path.display());
    Ok(path)
}
