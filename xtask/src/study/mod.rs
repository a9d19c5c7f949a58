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
use dfr_attacks::{evaluate_samples, load_detector, AttackKind, RobustEvalConfig, RobustReport};
use dfr_data::synth::{generate, SynthOutcome};
use dfr_data::Split;
use dfr_train::trainer::{files, train, TrainOptions, TrainOutcome};
use std::path::PathBuf;
use std::time::Instant;

/// Options of `cargo xtask reproduce-tables`.
#[derive(Args, Debug, Clone, Default)]
pub struct StudyArgs {
    /// Study file (default: the embedded experiments/quick.toml).
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
}

/// One trained model of the study and its evaluations.
pub struct ModelResults {
    /// `baseline` or `gradreg`.
    pub strategy: String,
    /// Training outcome.
    pub training: TrainOutcome,
    /// Robust evaluation per attack.
    pub reports: Vec<(AttackKind, RobustReport)>,
    /// CAM consistency per attack (at the attack's largest ε).
    pub cam: Vec<cam::CamSummary>,
}

/// Runs the study; returns the report path.
pub fn reproduce_tables(a: StudyArgs) -> Result<PathBuf> {
    let t0 = Instant::now();
    let mut cfg = StudyConfig::load(a.config.as_deref())?;
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
    let out = cfg.out_dir();
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let base = cfg.experiment_for("baseline", &a.overrides)?;

    // Data.
    if let Some(s) = &cfg.synth {
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
    }
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
        println!("[train] {strategy} → {}", ec.run_dir().display());
        let training = train(
            &ec,
            &TrainOptions {
                resume: true,
                device: Device::Cpu,
            },
        )
        .with_context(|| format!("training {strategy}"))?;
        if let Some(last) = training.epochs.last() {
            println!(
                "[train] {strategy}: {} epochs, best val macro-F1 {:.3}, {:.1} img/s{}",
                training.epochs.len(),
                training.best_val_macro_f1.unwrap_or(f64::NAN),
                last.images_per_second,
                if training.reused { " (reused)" } else { "" }
            );
        }
        let ckpt = ec.run_dir().join(files::BEST);
        let model = load_detector(&ckpt, &Device::Cpu, None)
            .with_context(|| format!("loading {}", ckpt.display()))?;
        let mut reports = Vec::new();
        for (kind, eps) in [
            (AttackKind::Fgsm, &cfg.attacks.fgsm),
            (AttackKind::Pgd, &cfg.attacks.pgd),
            (AttackKind::MiFgsm, &cfg.attacks.mifgsm),
        ] {
            let path = out
                .join("eval")
                .join(format!("{strategy}-{}.json", kind.name()));
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
            let report = match cached_report(&path, &rec) {
                Some(r) => r,
                None => {
                    println!("[attack] {strategy}: {} over ε {:?}", kind.name(), eps);
                    let r = evaluate_samples(&model, &samples, split, &rec)
                        .with_context(|| format!("{} on {strategy}", kind.name()))?;
                    std::fs::create_dir_all(path.parent().expect("eval dir"))?;
                    r.write_json(&path)?;
                    r
                }
            };
            for s in report.sanity.iter().filter(|s| !s.passed) {
                println!(
                    "[attack] warning: {strategy}/{}: sanity check {} failed: {}",
                    kind.name(),
                    s.name,
                    s.detail
                );
            }
            reports.push((kind, report));
        }
        println!("[cam] {strategy}");
        let cam =
            cam::consistency_for_model(&model, &samples, &cfg, ec.model.image_size, ec.run.seed)?;
        models.push(ModelResults {
            strategy: strategy.to_string(),
            training,
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
fn cached_report(path: &std::path::Path, cfg: &RobustEvalConfig) -> Option<RobustReport> {
    let text = std::fs::read_to_string(path).ok()?;
    let r: RobustReport = serde_json::from_str(&text).ok()?;
    (r.config == *cfg).then_some(r)
}
