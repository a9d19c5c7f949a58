//! `dfr train --config experiments/X.toml [--set key=value …] [--resume]`.

use anyhow::{Context, Result};
use clap::Args;
use dfr_train::trainer::{train, TrainOptions};
use dfr_train::ExperimentConfig;
use std::path::PathBuf;

/// Options of `dfr train`.
#[derive(Args)]
pub struct TrainArgs {
    /// Experiment file (TOML).
    #[arg(long)]
    pub config: PathBuf,
    /// Override a configuration value, e.g. `--set train.lr=1e-4` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Continue the run in the configuration's run directory.
    #[arg(long)]
    pub resume: bool,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

/// Runs training and prints the summary.
pub fn run(a: TrainArgs) -> Result<()> {
    let cfg = ExperimentConfig::load(&a.config, &a.overrides)
        .with_context(|| format!("loading {}", a.config.display()))?;
    let device = crate::device::parse(&a.device)?;
    let out = train(
        &cfg,
        &TrainOptions {
            resume: a.resume,
            device,
            ..Default::default()
        },
    )
    .with_context(|| format!("training {}", cfg.run_dir().display()))?;
    if out.reused {
        println!(
            "{} had already finished; nothing to do",
            out.run_dir.display()
        );
    }
    println!("epoch  train_loss  train_acc  val_acc  val_macro_f1  val_auc  img/s");
    for r in &out.epochs {
        println!(
            "{:>5}  {:>10.4}  {:>9.3}  {:>7.3}  {:>12.3}  {:>7}  {:>5.1}{}",
            r.epoch + 1,
            r.train_loss,
            r.train_accuracy,
            r.val_accuracy,
            r.val_macro_f1,
            r.val_auc.map(|v| format!("{v:.3}")).unwrap_or("n/a".into()),
            r.images_per_second,
            if r.best { "  *" } else { "" }
        );
    }
    println!(
        "{}; best epoch {} (val macro-F1 {}); results in {}",
        out.stop_reason,
        out.best_epoch
            .map(|e| (e + 1).to_string())
            .unwrap_or("-".into()),
        out.best_val_macro_f1
            .map(|v| format!("{v:.3}"))
            .unwrap_or("-".into()),
        out.run_dir.display()
    );
    Ok(())
}
