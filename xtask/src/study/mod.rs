//! `cargo xtask reproduce-tables`: the whole study in one command.
//!
//! data (synthetic DFFD generated on first use) → train baseline and regularised (finished
//! runs are reused, interrupted ones resume) → clean and adversarial evaluation over the ε
//! grids (FGSM, PGD, MI-FGSM; per-attack reports cached as JSON) → Grad-CAM consistency and a
//! gallery → tables beside the published numbers, plots and `report.md`.

pub mod cam;
pub mod config;
pub mod report;

use anyhow::{Context, Result};
use candle_core::Device;
use clap::Args;
use config::StudyConfig;
use dfr_attacks::{evaluate_samples, AttackKind, RobustEvalConfig, RobustReport};
use dfr_data::synth::{generate, SynthOutcome};
use dfr_data::{Sample, Split};
use dfr_model::checkpoint::load_detector;
use dfr_model::EfficientNet;
use dfr_train::trainer::{files, train, TrainOptions, TrainOutcome};
use dfr_train::ExperimentConfig;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Options of `cargo xtask reproduce-tables`.
#[derive(Args, Debug, Clone)]
pub struct StudyArgs {
    /// Study file (default: the command's embedded one — experiments/quick.toml for
    /// reproduce-tables, experiments/ablation.toml for ablation).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Dataset root in the DFFD layout (replaces the study's; disables synthetic generation).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Parent directory of the study's results (default: the study's results_dir).
    #[arg(long)]
    pub results_dir: Option<PathBuf>,
    /// Override an experiment value, e.g. `--set train.epochs=1` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Device: cpu, cuda or cuda:N (CUDA needs a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

impl Default for StudyArgs {
    fn default() -> Self {
        StudyArgs {
            config: None,
            data: None,
            results_dir: None,
            overrides: Vec::new(),
            device: "cpu".into(),
        }
    }
}

/// One trained model of the study and its evaluations.
pub struct ModelResults {
    /// `baseline` or `gradreg`.
    pub strategy: String,
    /// Training outcome.
    pub training: TrainOutcome,
    /// The best checkpoint, loaded.
    pub model: EfficientNet,
    /// Robust evaluation per attack.
    pub reports: Vec<(AttackKind, RobustReport)>,
    /// CAM consistency per attack (at the attack's largest ε).
    pub cam: Vec<cam::CamSummary>,
}

/// Loads the study file (`default` when `--config` is absent) and applies `--data` and
/// `--results-dir`.
pub fn load_study(a: &StudyArgs, default: (&str, &str)) -> Result<StudyConfig> {
    let mut cfg = match &a.config {
        Some(p) => StudyConfig::load(Some(p))?,
        None => StudyConfig::parse(default.0, default.1)?,
    };
    if let Some(d) = &a.data {
        let data = cfg
            .experiment
            .entry("data")
            .or_insert_with(|| toml::Value::Table(Default::default()));
        if let Some(t) = data.as_table_mut() {
            t.insert("root".into(), toml::Value::String(d.display().to_string()));
        }
        cfg.synth = None;
    }
    if let Some(r) = &a.results_dir {
        cfg.study.results_dir = r.clone();
    }
    Ok(cfg)
}

/// Generates the synthetic DFFD when the study asks for it and it is missing.
pub fn ensure_data(cfg: &StudyConfig, base: &ExperimentConfig) -> Result<()> {
    let Some(s) = &cfg.synth else {
        return Ok(());
    };
    match generate(s, &base.data.root, false).with_context(|| {
        format!(
            "generating the synthetic DFFD in {}",
            base.data.root.display()
        )
    })? {
        SynthOutcome::Generated(n) => println!(
            "[data] generated {n} synthetic images in {}",
            base.data.root.display()
        ),
        SynthOutcome::Reused => println!("[data] using {}", base.data.root.display()),
    }
    Ok(())
}

/// Trains one experiment (a finished run is reused, an interrupted one resumes) and loads its
/// best checkpoint.
pub fn train_and_load(
    ec: &ExperimentConfig,
    label: &str,
    device: &Device,
) -> Result<(TrainOutcome, EfficientNet)> {
    println!("[train] {label} → {}", ec.run_dir().display());
    let training = train(
        ec,
        &TrainOptions {
            resume: true,
            device: device.clone(),
            ..Default::default()
        },
    )
    .with_context(|| format!("training {label}"))?;
    if training.epochs.last().is_some() {
        println!(
            "[train] {label}: {} epochs, best val macro-F1 {:.3}, {:.1} img/s{}",
            training.epochs.len(),
            training.best_val_macro_f1.unwrap_or(f64::NAN),
            training.images_per_second,
            if training.reused { " (reused)" } else { "" }
        );
    }
    let ckpt = ec.run_dir().join(files::BEST);
    let model = load_detector(&ckpt, device, None)
        .with_context(|| format!("loading {}", ckpt.display()))?;
    Ok((training, model))
}

/// Identity of a trained model for evaluation caches: size and modification time of its best
/// checkpoint (a retrained model invalidates every cached evaluation of the old one).
pub fn checkpoint_id(ec: &ExperimentConfig) -> Result<String> {
    let ckpt = ec.run_dir().join(files::BEST);
    let m = std::fs::metadata(&ckpt).with_context(|| format!("reading {}", ckpt.display()))?;
    let t = m
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    Ok(format!("{} {} {t}", ckpt.display(), m.len()))
}

fn model_tag(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".model");
    PathBuf::from(p)
}

/// One robust evaluation of the model `model_id` ([`checkpoint_id`]), cached as JSON at `path`
/// and reused only when made with the same configuration for the same model.
pub fn evaluate_cached(
    model: &EfficientNet,
    model_id: &str,
    samples: &[Sample],
    split: Split,
    rec: &RobustEvalConfig,
    path: &Path,
    label: &str,
) -> Result<RobustReport> {
    let same_model = std::fs::read_to_string(model_tag(path)).is_ok_and(|t| t == model_id);
    if let Some(r) = cached_report(path, rec).filter(|_| same_model) {
        return Ok(r);
    }
    println!("[attack] {label} over ε {:?}", rec.eps);
    let r = evaluate_samples(model, samples, split, rec).with_context(|| label.to_string())?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    r.write_json(path)?;
    let tag = model_tag(path);
    dfr_fs::write_atomic(&tag, model_id.as_bytes())
        .with_context(|| format!("writing {}", tag.display()))?;
    for s in r.sanity.iter().filter(|s| !s.passed) {
        println!(
            "[attack] warning: {label}: sanity check {} failed: {}",
            s.name, s.detail
        );
    }
    Ok(r)
}

/// FGSM, PGD and MI-FGSM over the study's ε grids on `samples`; reports cached under
/// `<eval_dir>/<tag>-<attack>.json`.
pub fn evaluate_attacks(
    cfg: &StudyConfig,
    ec: &ExperimentConfig,
    model: &EfficientNet,
    samples: &[Sample],
    split: Split,
    eval_dir: &Path,
    tag: &str,
) -> Result<Vec<(AttackKind, RobustReport)>> {
    let model_id = checkpoint_id(ec)?;
    let mut reports = Vec::new();
    for (kind, eps) in [
        (AttackKind::Fgsm, &cfg.attacks.fgsm),
        (AttackKind::Pgd, &cfg.attacks.pgd),
        (AttackKind::MiFgsm, &cfg.attacks.mifgsm),
    ] {
        let rec = RobustEvalConfig {
            attacks: vec![kind],
            eps: eps.clone(),
            steps: cfg.attacks.steps,
            alpha_ratio: cfg.attacks.alpha_ratio,
            image_size: ec.model.image_size,
            batch_size: cfg.eval.batch_size,
            limit: cfg.eval.limit,
            seed: ec.run.seed,
            ..RobustEvalConfig::default()
        };
        let path = eval_dir.join(format!("{tag}-{}.json", kind.name()));
        let label = format!("{tag}: {}", kind.name());
        reports.push((
            kind,
            evaluate_cached(model, &model_id, samples, split, &rec, &path, &label)?,
        ));
    }
    Ok(reports)
}

/// Runs the study; returns the report path.
pub fn reproduce_tables(a: StudyArgs) -> Result<PathBuf> {
    let t0 = Instant::now();
    let cfg = load_study(&a, (config::QUICK, config::QUICK_NAME))?;
    let device = dfr_model::device::parse(&a.device).context("--device")?;
    let out = cfg.out_dir();
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let base = cfg.experiment_for("baseline", &a.overrides)?;
    ensure_data(&cfg, &base)?;
    let ds = base
        .data
        .scan()
        .with_context(|| format!("scanning {}", base.data.root.display()))?;
    let split = Split::parse(&cfg.eval.split)
        .with_context(|| format!("eval.split `{}`", cfg.eval.split))?;
    let samples = ds.require_split(split)?;

    let mut models = Vec::new();
    for strategy in ["baseline", "gradreg"] {
        let ec = cfg.experiment_for(strategy, &a.overrides)?;
        let (training, model) = train_and_load(&ec, strategy, &device)?;
        let reports = evaluate_attacks(
            &cfg,
            &ec,
            &model,
            &samples,
            split,
            &out.join("eval"),
            strategy,
        )?;
        println!("[cam] {strategy}");
        let cam =
            cam::consistency_for_model(&model, &samples, &cfg, ec.model.image_size, ec.run.seed)?;
        models.push(ModelResults {
            strategy: strategy.to_string(),
            training,
            model,
            reports,
            cam,
        });
    }
    println!("[cam] gallery");
    let gallery = cam::gallery(&cfg, &samples, &models, base.model.image_size, &out)?;
    let path = report::write(
        &cfg,
        &out,
        &models,
        gallery.as_deref(),
        t0.elapsed().as_secs_f64(),
    )?;
    println!("[report] {}", path.display());
    Ok(path)
}

/// A cached report is reused only when it was made with the same evaluation configuration.
fn cached_report(path: &Path, cfg: &RobustEvalConfig) -> Option<RobustReport> {
    let text = std::fs::read_to_string(path).ok()?;
    let r: RobustReport = serde_json::from_str(&text).ok()?;
    (r.config == *cfg).then_some(r)
}
