//! `cargo xtask ablation`: gradient regularisation over an α × r grid, plus the baseline.
//!
//! Every cell is an independent, idempotent unit: its training run lives in
//! `<out>/runs/<cell>` (a finished run is reused, an interrupted one resumes), its evaluations
//! are cached in `<out>/eval/<cell>-*.json` and its result in `<out>/cells/<cell>.json`, which
//! is reused as long as the cell's configuration is unchanged. The summary (table, heatmaps,
//! `report.md`) is merged from whatever cell files exist, so cells can run anywhere — one
//! after another here, or as a Slurm job array (`--emit slurm`).

pub mod grid;
pub mod summary;

pub use crate::slurm::SlurmSection;
pub use grid::{AblationSection, Cell, Point, Selection};

use crate::config::StudyConfig;
use crate::error::{Result, StepContext, StudyError};
use crate::jobs::{self, Plan};
use crate::run::{ensure_data, evaluate_attacks, evaluate_cached, train_and_load};
use crate::study::{load_study, StudyOptions};
use dfr_attacks::{AttackKind, Metrics, RobustEvalConfig, RobustReport};
use dfr_data::{Sample, Split};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Instant;

/// The embedded default ablation.
pub const ABLATION: &str = include_str!("../../../../experiments/ablation.toml");
/// How the embedded default ablation is named in messages.
pub const ABLATION_NAME: &str = "experiments/ablation.toml (embedded)";

pub use crate::slurm::Emit;

/// What `cargo xtask ablation` does.
#[derive(Debug, Clone, Default)]
pub struct AblationOptions {
    /// Study options (default config: the embedded experiments/ablation.toml).
    pub study: StudyOptions,
    /// Run only cell I; the summary is left to a later run or `merge`.
    pub cell: Option<usize>,
    /// Print the cells and exit.
    pub list: bool,
    /// Only merge the finished cells into the summary (missing cells are listed in it).
    pub merge: bool,
    /// Write job scripts for a scheduler instead of running the cells.
    pub emit: Option<Emit>,
}

/// Selection measurements of one cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelectionResult {
    /// Samples.
    pub n: usize,
    /// Clean macro-F1 on the selection split.
    pub macro_f1: f64,
    /// Macro-F1 under the selection attack.
    pub robust_macro_f1: f64,
    /// Accuracy under the selection attack.
    pub robust_accuracy: f64,
    /// (1 − w)·macro-F1 + w·robust macro-F1.
    pub score: f64,
}

/// One attack's ε curve on the test split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttackCurve {
    /// Attack.
    pub attack: AttackKind,
    /// ε grid (> 0).
    pub eps: Vec<f64>,
    /// Robust accuracy per ε.
    pub accuracy: Vec<f64>,
    /// Macro-F1 per ε.
    pub macro_f1: Vec<f64>,
    /// Normalised area under accuracy-vs-ε (trapezoid / largest ε).
    pub nauc_accuracy: Option<f64>,
    /// Normalised area under macro-F1-vs-ε.
    pub nauc_macro_f1: Option<f64>,
}

impl AttackCurve {
    fn from_report(kind: AttackKind, r: &RobustReport) -> AttackCurve {
        use crate::report::{nauc, results};
        let pts = results(r, kind);
        let eps: Vec<f64> = pts.iter().map(|e| e.eps).collect();
        let accuracy: Vec<f64> = pts.iter().map(|e| e.metrics.accuracy).collect();
        let macro_f1: Vec<f64> = pts.iter().map(|e| e.metrics.macro_f1).collect();
        AttackCurve {
            attack: kind,
            nauc_accuracy: nauc(&eps, &accuracy),
            nauc_macro_f1: nauc(&eps, &macro_f1),
            eps,
            accuracy,
            macro_f1,
        }
    }
}

/// The result file of one cell (`<out>/cells/<id>.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellResult {
    /// Cell index.
    pub index: usize,
    /// Cell id (`<point>/seed-<seed>`).
    pub id: String,
    /// Grid point (`baseline`, `alpha0.5_r0.05`).
    #[serde(default)]
    pub point: String,
    /// Seed.
    #[serde(default)]
    pub seed: u64,
    /// α (none for the baseline).
    pub alpha: Option<f64>,
    /// r (none for the baseline).
    pub r: Option<f64>,
    /// Everything the result depends on; the cell is redone when it changes.
    pub key: serde_json::Value,
    /// Epochs trained.
    pub epochs: usize,
    /// Best epoch (0-based).
    pub best_epoch: Option<usize>,
    /// Best validation macro-F1 seen by early stopping.
    pub best_val_macro_f1: Option<f64>,
    /// Why training stopped.
    pub stop_reason: String,
    /// Mean training throughput.
    pub train_images_per_second: f64,
    /// Selection measurements.
    pub selection: SelectionResult,
    /// Clean test metrics.
    pub test_clean: Metrics,
    /// Test curves per attack.
    pub attacks: Vec<AttackCurve>,
    /// Wall time of this cell's work in the run that produced it (s).
    pub seconds: f64,
}

impl CellResult {
    /// The curve of one attack.
    pub fn curve(&self, kind: AttackKind) -> Option<&AttackCurve> {
        self.attacks.iter().find(|c| c.attack == kind)
    }
}

/// Everything shared by the cells of one ablation.
pub struct Ablation {
    /// The study file (with `[ablation]`).
    pub cfg: StudyConfig,
    /// Its grid.
    pub grid: AblationSection,
    /// Output directory.
    pub out: PathBuf,
    /// `--set` overrides applied to every cell.
    pub overrides: Vec<String>,
    /// Device of training and evaluation (`cpu`, `cuda`, `cuda:N`; parsed when a cell runs,
    /// so `--list`, `--merge` and `--emit` work on machines without it).
    pub device: String,
}

/// A split and its samples.
type SplitSamples = (Split, Vec<Sample>);

impl Ablation {
    /// Loads the study file (default: the embedded ablation) and checks its grid.
    pub fn load(a: &StudyOptions) -> Result<Ablation> {
        let cfg = load_study(a, (ABLATION, ABLATION_NAME))?;
        let name = cfg.source.clone();
        let grid = cfg.ablation.clone().ok_or_else(|| {
            StudyError::config(
                &name,
                "ablation",
                "no [ablation] section (alpha, r, selection) to run",
            )
        })?;
        grid.validate(&name)?;
        Ok(Ablation {
            out: cfg.out_dir(),
            cfg,
            grid,
            overrides: a.overrides.clone(),
            device: a.device.clone(),
        })
    }

    /// The cells, in order.
    pub fn cells(&self) -> Vec<Cell> {
        self.grid.cells(&self.cfg.seeds)
    }

    /// Result file of a cell.
    pub fn cell_path(&self, cell: &Cell) -> PathBuf {
        self.out.join("cells").join(format!("{}.json", cell.id))
    }

    fn key(&self, ec: &dfr_train::ExperimentConfig) -> serde_json::Value {
        serde_json::json!({
            "experiment": ec,
            "eval": self.cfg.eval,
            "attacks": self.cfg.attacks,
            "selection": self.grid.selection,
            "synth": self.cfg.synth,
        })
    }

    /// Reads a finished cell; `None` when absent, unreadable or made with another configuration.
    pub fn finished(&self, cell: &Cell) -> Result<Option<CellResult>> {
        let ec = self.experiment(cell)?;
        let key = self.key(&ec);
        Ok(std::fs::read_to_string(self.cell_path(cell))
            .ok()
            .and_then(|t| serde_json::from_str::<CellResult>(&t).ok())
            .filter(|r| r.key == key))
    }

    fn experiment(&self, cell: &Cell) -> Result<dfr_train::ExperimentConfig> {
        self.cfg
            .experiment_with(
                &cell.table(),
                cell.strategy(),
                &self.out.join("runs").join(&cell.point),
                &format!("seed-{}", cell.seed),
                Some(cell.seed),
                &self.overrides,
            )
            .step(|| format!("cell {} ({})", cell.index, cell.id))
    }

    /// Generates the synthetic data when the study asks for it.
    pub fn prepare_data(&self) -> Result<()> {
        let base = self.cfg.base_experiment(&self.overrides)?;
        ensure_data(&self.cfg, &base)
    }

    /// The samples of the evaluation split and of the selection split (one dataset scan).
    fn eval_samples(&self) -> Result<(SplitSamples, SplitSamples)> {
        let base = self.cfg.base_experiment(&self.overrides)?;
        let ds = base
            .data
            .scan()
            .step(|| format!("scanning {}", base.data.root.display()))?;
        let get =
            |s: Split| -> Result<(Split, Vec<Sample>)> { Ok((s, ds.require_split(s)?.to_vec())) };
        Ok((get(self.cfg.eval.split)?, get(self.grid.selection.split)?))
    }

    /// Runs one cell (or reuses its finished result).
    pub fn run_cell(&self, cell: &Cell) -> Result<CellResult> {
        self.run_cell_quiet(cell, false)
    }

    /// [`Ablation::run_cell`], without progress bars when `quiet` (cells side by side).
    fn run_cell_quiet(&self, cell: &Cell, quiet: bool) -> Result<CellResult> {
        let n = self.cells().len();
        if let Some(r) = self.finished(cell)? {
            tracing::info!(
                "[cell {}/{n}] {}: finished earlier, reused",
                cell.index,
                cell.id
            );
            return Ok(r);
        }
        let device = dfr_model::device::parse(&self.device).step(|| "--device")?;
        if self.cell_path(cell).exists() {
            // A result made with another configuration: start the cell over.
            tracing::info!(
                "[cell {}/{n}] {}: configuration changed, starting over",
                cell.index,
                cell.id
            );
            self.discard(cell)?;
        }
        tracing::info!("[cell {}/{n}] {}", cell.index, cell.id);
        let t0 = Instant::now();
        self.prepare_data()?;
        let ec = self.experiment(cell)?;
        // The cell's key stays that of `ec`: progress bars change nothing computed.
        let mut shown = ec.clone();
        shown.train.progress &= !quiet;
        let (training, model) = train_and_load(&shown, &cell.id, &device)?;
        let eval_dir = self.out.join("eval").join(&cell.id);
        let ((_, test), (sel_split, sel_samples)) = self.eval_samples()?;
        let reports = evaluate_attacks(&self.cfg, &ec, &model, &test, &eval_dir, &cell.id)?;
        let sel = &self.grid.selection;
        let rec = RobustEvalConfig {
            attacks: vec![sel.attack],
            eps: vec![sel.eps],
            steps: self.cfg.attacks.steps,
            alpha_ratio: self.cfg.attacks.alpha_ratio,
            image_size: ec.model.image_size,
            batch_size: self.cfg.eval.batch_size,
            limit: sel.limit,
            seed: ec.run.seed,
            ..RobustEvalConfig::default()
        };
        let sel_report = evaluate_cached(
            &model,
            &crate::run::checkpoint_id(&ec)?,
            &sel_samples,
            sel_split,
            &rec,
            &eval_dir.join("selection.json"),
            &format!(
                "{}: selection {} on {}",
                cell.id,
                sel.attack.name(),
                sel.split.name()
            ),
        )?;
        let Some(robust) = sel_report
            .get(sel.attack, sel.eps)
            .map(|e| e.metrics.clone())
        else {
            return Err(StudyError::Invalid(format!(
                "cell {}: the selection evaluation has no {} result at ε = {}",
                cell.id,
                sel.attack.name(),
                sel.eps
            )));
        };
        let w = sel.robust_weight;
        let selection = SelectionResult {
            n: sel_report.n_samples,
            macro_f1: sel_report.clean.macro_f1,
            robust_macro_f1: robust.macro_f1,
            robust_accuracy: robust.accuracy,
            score: (1.0 - w) * sel_report.clean.macro_f1 + w * robust.macro_f1,
        };
        let result = CellResult {
            index: cell.index,
            id: cell.id.clone(),
            point: cell.point.clone(),
            seed: cell.seed,
            alpha: cell.gradreg.map(|g| g.0),
            r: cell.gradreg.map(|g| g.1),
            key: self.key(&ec),
            epochs: training.epochs.len(),
            best_epoch: training.best_epoch,
            best_val_macro_f1: training.best_val_macro_f1,
            stop_reason: training.stop_reason.clone(),
            train_images_per_second: training.images_per_second,
            selection,
            test_clean: reports[0].1.clean.clone(),
            attacks: reports
                .iter()
                .map(|(k, r)| AttackCurve::from_report(*k, r))
                .collect(),
            seconds: t0.elapsed().as_secs_f64(),
        };
        let path = self.cell_path(cell);
        std::fs::create_dir_all(path.parent().expect("cells dir"))
            .step(|| format!("creating {}", path.display()))?;
        let text = serde_json::to_string_pretty(&result)?;
        dfr_fs::write_atomic(&path, text.as_bytes())
            .step(|| format!("writing {}", path.display()))?;
        tracing::info!(
            "[cell {}/{n}] {}: selection score {:.3}, test macro-F1 {:.3} ({:.0} s)",
            cell.index,
            cell.id,
            result.selection.score,
            result.test_clean.macro_f1,
            result.seconds
        );
        Ok(result)
    }

    /// Removes a cell's result, training run and cached evaluations.
    fn discard(&self, cell: &Cell) -> Result<()> {
        for dir in [
            self.out.join("runs").join(&cell.id),
            self.out.join("eval").join(&cell.id),
        ] {
            if dir.exists() {
                std::fs::remove_dir_all(&dir).step(|| format!("removing {}", dir.display()))?;
            }
        }
        let path = self.cell_path(cell);
        std::fs::remove_file(&path).step(|| format!("removing {}", path.display()))?;
        Ok(())
    }

    /// Merges the finished cells into the summary; returns the report path.
    pub fn merge(&self, seconds: Option<f64>) -> Result<PathBuf> {
        let cells = self.cells();
        let mut done = Vec::new();
        for c in &cells {
            if let Some(r) = self.finished(c)? {
                done.push(r);
            }
        }
        summary::write(self, &cells, &done, seconds)
    }
}

/// `cargo xtask ablation`; returns the report path (or the job script with `--emit`, or the
/// cell file with `--cell`).
pub fn run(a: &AblationOptions) -> Result<PathBuf> {
    let t0 = Instant::now();
    let ab = Ablation::load(&a.study)?;
    let cells = ab.cells();
    if a.list {
        for c in &cells {
            let state = if ab.finished(c)?.is_some() {
                "finished"
            } else {
                "to do"
            };
            println!("{:>3}  {:<24} {state}", c.index, c.id); // the listing is the output
        }
        return Ok(ab.out.clone());
    }
    if let Some(Emit::Slurm) = a.emit {
        ab.prepare_data()?;
        let job = crate::slurm::JobArray {
            command: "ablation",
            study: &ab.cfg.study.name,
            out: &ab.out,
            embedded: ("ablation.toml", ABLATION),
            unit_flag: "--cell",
            n: cells.len(),
            slurm: &ab.grid.slurm,
        };
        let path = crate::slurm::emit(&job, &a.study)?;
        return Ok(path);
    }
    if let Some(i) = a.cell {
        let Some(cell) = cells.get(i) else {
            return Err(StudyError::Invalid(format!(
                "--cell {i}: this ablation has cells 0..={} (see --list)",
                cells.len() - 1
            )));
        };
        ab.run_cell(cell)?;
        let path = ab.cell_path(cell);
        tracing::info!("[cell] {}", path.display());
        return Ok(path);
    }
    if a.merge {
        let path = ab.merge(None)?;
        tracing::info!("[report] {}", path.display());
        return Ok(path);
    }
    // Once, before cells run side by side.
    ab.prepare_data()?;
    let device = dfr_model::device::parse(&ab.device).step(|| "--device")?;
    let plan = Plan::new(
        a.study.jobs,
        &device,
        cells.len(),
        rayon::current_num_threads(),
    );
    tracing::info!("[ablation] {} cells, {plan}", cells.len());
    let outcomes = jobs::run_all(cells.len(), plan, true, |i| {
        let c = &cells[i];
        let _span = tracing::info_span!("cell", id = %c.id).entered();
        ab.run_cell_quiet(c, !plan.shows_progress())
    });
    let mut failed = Vec::new();
    for (c, o) in cells.iter().zip(outcomes) {
        if let Some(Err(e)) = o {
            let e = chain(&e);
            tracing::error!("[cell {}] {} failed: {e}", c.index, c.id);
            failed.push(format!("{} ({}): {e}", c.index, c.id));
        }
    }
    let path = ab.merge(Some(t0.elapsed().as_secs_f64()))?;
    tracing::info!("[report] {}", path.display());
    if !failed.is_empty() {
        return Err(StudyError::Invalid(format!(
            "{} of {} cells failed (the summary lists them as missing; rerun to retry):\n{}",
            failed.len(),
            cells.len(),
            failed.join("\n")
        )));
    }
    Ok(path)
}

/// An error and its sources, `: `-separated.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
