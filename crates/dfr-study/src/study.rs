//! The whole study: data → every (arm, seed) trained and evaluated → statistics →
//! `summary.json`, tables, figures and `report.md`.

use crate::config::{StudyConfig, QUICK, QUICK_NAME};
use crate::error::{Result, StepContext, StudyError};
use crate::jobs::{self, Plan};
use crate::run::{load_best, prepare_dataset, run_one, RunResult};
use crate::summary::{summarize, Summary};
use candle_core::Device;
use dfr_data::Sample;
use dfr_train::ExperimentConfig;
use std::path::PathBuf;
use std::time::Instant;

/// How to run a study (what is not in the study file).
#[derive(Debug, Clone)]
pub struct StudyOptions {
    /// Study file (`None`: the caller's embedded default).
    pub config: Option<PathBuf>,
    /// Dataset root in the DFFD layout (replaces the study's; disables synthetic generation).
    pub data: Option<PathBuf>,
    /// Parent directory of the study's results (replaces `study.results_dir`).
    pub results_dir: Option<PathBuf>,
    /// `key=value` overrides of every arm's experiment (e.g. `train.epochs=1`).
    pub overrides: Vec<String>,
    /// Where models train and run: `cpu`, `cuda` or `cuda:N` (CUDA needs the `cuda`
    /// feature).
    pub device: String,
    /// Run only this (arm, seed) and write no report (one array task of a cluster job).
    pub only: Option<(String, u64)>,
    /// Runs side by side, each on an equal share of the threads ([`crate::jobs::Plan`]);
    /// `None`: one per core on the CPU, one at a time on CUDA. Results do not depend on it.
    pub jobs: Option<usize>,
}

impl Default for StudyOptions {
    fn default() -> Self {
        StudyOptions {
            config: None,
            data: None,
            results_dir: None,
            overrides: Vec::new(),
            device: "cpu".into(),
            only: None,
            jobs: None,
        }
    }
}

/// Loads the study file (`default` = (text, name) when `opts.config` is `None`) and applies
/// `data` and `results_dir`.
pub fn load_study(opts: &StudyOptions, default: (&str, &str)) -> Result<StudyConfig> {
    let mut cfg = match &opts.config {
        Some(p) => StudyConfig::load(Some(p))?,
        None => StudyConfig::parse(default.0, default.1)?,
    };
    if let Some(d) = &opts.data {
        let data = cfg
            .experiment
            .entry("data")
            .or_insert_with(|| toml::Value::Table(Default::default()));
        if let Some(t) = data.as_table_mut() {
            t.insert("root".into(), toml::Value::String(d.display().to_string()));
        }
        cfg.synth = None;
    }
    if let Some(r) = &opts.results_dir {
        cfg.study.results_dir = r.clone();
    }
    cfg.validate()?;
    Ok(cfg)
}

/// What a finished study wrote.
#[derive(Debug, Clone)]
pub struct StudyOutcome {
    /// `report.md`.
    pub report: PathBuf,
    /// `summary.json`.
    pub summary_path: PathBuf,
    /// Its content.
    pub summary: Summary,
}

/// A study made ready to run: configuration, every experiment (validated) and the samples.
pub struct Study {
    /// The study file.
    pub cfg: StudyConfig,
    /// `experiments[arm][seed]`.
    pub experiments: Vec<Vec<ExperimentConfig>>,
    /// The evaluation split's samples.
    pub samples: Vec<Sample>,
    /// The samples of each `[[eval.datasets]]` entry, in order.
    pub external: Vec<Vec<Sample>>,
    /// Runs side by side ([`StudyOptions::jobs`]).
    pub jobs: Option<usize>,
}

impl Study {
    /// Loads the study, builds and validates every (arm, seed) experiment, generates the
    /// synthetic data if asked and scans the evaluation split — all before any training.
    pub fn prepare(opts: &StudyOptions, default: (&str, &str)) -> Result<Study> {
        let cfg = load_study(opts, default)?;
        let mut experiments = Vec::new();
        for arm in &cfg.arms {
            let mut row = Vec::new();
            for &seed in &cfg.seeds {
                row.push(
                    cfg.experiment_for(arm, seed, &opts.overrides)
                        .step(|| format!("arm {} seed {seed}", arm.name))?,
                );
            }
            experiments.push(row);
        }
        if let Some((arm, seed)) = &opts.only {
            if cfg.arm(arm).is_none() || !cfg.seeds.contains(seed) {
                return Err(StudyError::Invalid(format!(
                    "--arm {arm} --seed {seed}: the study has arms {} and seeds {:?}",
                    cfg.arm_names().join(", "),
                    cfg.seeds
                )));
            }
        }
        let ds = prepare_dataset(&cfg, &opts.overrides)?;
        let samples = ds.require_split(cfg.eval.split)?.to_vec();
        // the cross-dataset sets are scanned now: a bad one is an error before any training
        let mut external = Vec::new();
        for (i, d) in cfg.eval.datasets.iter().enumerate() {
            let found = dfr_data::DataConfig::new(&d.root, d.layout)
                .scan()
                .and_then(|ds| ds.require_split(d.split))
                .map_err(|e| {
                    StudyError::config(
                        &cfg.source,
                        format!("eval.datasets[{i}].root"),
                        format!("{}: {e}", d.root.display()),
                    )
                })?;
            external.push(found);
        }
        Ok(Study {
            cfg,
            experiments,
            samples,
            external,
            jobs: opts.jobs,
        })
    }

    /// Trains and evaluates every (arm, seed) not yet done, seed-major (an interrupted study
    /// has every arm at about the same number of seeds), several side by side on the CPU
    /// ([`crate::jobs`]); `runs[arm][seed]`. The first failure stops new runs from starting;
    /// the runs in progress finish.
    pub fn run_all(&self, device: &Device) -> Result<Vec<Vec<RunResult>>> {
        let (na, ns) = (self.cfg.arms.len(), self.cfg.seeds.len());
        let plan = Plan::new(self.jobs, device, na * ns, rayon::current_num_threads());
        tracing::info!("[study] {} runs, {plan}", na * ns);
        let outcomes = jobs::run_all(na * ns, plan, false, |i| {
            let (s, a) = (i / na, i % na);
            let (arm, seed) = (&self.cfg.arms[a].name, self.cfg.seeds[s]);
            let _span = tracing::info_span!("run", arm = %arm, seed).entered();
            tracing::info!("[study] run {} of {}: {arm} seed {seed}", i + 1, na * ns);
            self.run_with(a, s, device, plan.shows_progress())
        });
        // runs[arm][seed], seed-major in `outcomes`.
        let mut runs: Vec<Vec<RunResult>> = (0..na).map(|_| Vec::with_capacity(ns)).collect();
        let mut first_error = None;
        for (i, o) in outcomes.into_iter().enumerate() {
            match o {
                Some(Ok(r)) => runs[i % na].push(r),
                Some(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                None => {}
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(runs),
        }
    }

    /// Trains and evaluates arm `a` with seed index `s`.
    pub fn run(&self, a: usize, s: usize, device: &Device) -> Result<RunResult> {
        self.run_with(a, s, device, true)
    }

    /// [`Study::run`], with progress bars only when `progress` (and the experiment asks for
    /// them; they change nothing computed or cached).
    fn run_with(&self, a: usize, s: usize, device: &Device, progress: bool) -> Result<RunResult> {
        let mut ec = self.experiments[a][s].clone();
        ec.train.progress &= progress;
        run_one(
            &self.cfg,
            &ec,
            &self.cfg.arms[a].name,
            &self.samples,
            &self.external,
            device,
        )
    }
}

/// Runs a study end to end (the embedded `experiments/quick.toml` when `opts.config` is
/// `None`): every (arm, seed) trained and evaluated (finished work is reused), then
/// `summary.json`, the tables, figures and `report.md` under `<results_dir>/<name>/`.
///
/// ```no_run
/// use dfr_study::{reproduce_tables, StudyOptions};
/// let out = reproduce_tables(&StudyOptions {
///     config: Some("experiments/quick.toml".into()),
///     overrides: vec!["train.epochs=2".into()],
///     ..StudyOptions::default()
/// })?;
/// for c in &out.summary.comparisons {
///     println!("{} vs {} on {}: {:+.3} ({:?})", c.b, c.a, c.metric, c.mean_diff, c.verdict);
/// }
/// # Ok::<(), dfr_study::StudyError>(())
/// ```
pub fn reproduce_tables(opts: &StudyOptions) -> Result<StudyOutcome> {
    let t0 = Instant::now();
    let device = dfr_model::device::parse(&opts.device).step(|| "--device")?;
    let study = Study::prepare(opts, (QUICK, QUICK_NAME))?;
    let cfg = &study.cfg;
    let out = cfg.out_dir();
    std::fs::create_dir_all(&out).step(|| format!("creating {}", out.display()))?;
    if let Some((arm, seed)) = &opts.only {
        let a = cfg
            .arms
            .iter()
            .position(|x| &x.name == arm)
            .expect("checked");
        let s = cfg.seeds.iter().position(|x| x == seed).expect("checked");
        let r = study.run(a, s, &device)?;
        tracing::info!("[study] {arm} seed {seed} done: {}", r.run_dir.display());
        return Ok(StudyOutcome {
            report: r.run_dir.clone(),
            summary_path: r.run_dir,
            summary: Summary {
                study: cfg.study.name.clone(),
                seeds: vec![*seed],
                test_images: study.samples.len(),
                level: cfg.stats.level,
                arms: Vec::new(),
                comparisons: Vec::new(),
                held_out: Vec::new(),
            },
        });
    }
    let runs = study.run_all(&device)?;
    tracing::info!("[study] statistics");
    let summary = summarize(cfg, &runs)?;
    let summary_path = out.join("summary.json");
    dfr_fs::write_atomic(
        &summary_path,
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )
    .step(|| format!("writing {}", summary_path.display()))?;
    tracing::info!("[cam] gallery");
    let mut models = Vec::new();
    for (i, arm) in cfg.arms.iter().enumerate() {
        models.push((
            arm.name.clone(),
            load_best(&study.experiments[i][0], &device)?,
        ));
    }
    let size = study.experiments[0][0].model.image_size;
    let gallery = crate::cam::gallery(cfg, &study.samples, &models, size, &out)?;
    let report = crate::report::write(
        cfg,
        &out,
        &runs,
        &summary,
        gallery.as_deref(),
        t0.elapsed().as_secs_f64(),
    )?;
    tracing::info!("[report] {}", report.display());
    Ok(StudyOutcome {
        report,
        summary_path,
        summary,
    })
}
