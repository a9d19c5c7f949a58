//! `dfr attack`: robust evaluation of a detector checkpoint over ε grids.

use anyhow::{Context, Result};
use clap::Args;
use dfr_attacks::{evaluate_samples, parse_attacks, RobustEvalConfig};
use dfr_data::{DataConfig, LayoutKind, Split};
use dfr_model::checkpoint::load_detector;
use std::path::{Path, PathBuf};

/// Options of `dfr attack`.
#[derive(Args)]
pub struct AttackArgs {
    /// Detector checkpoint (from `dfr train`: best.safetensors or last.safetensors).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Dataset root.
    #[arg(long)]
    pub data: PathBuf,
    /// Dataset layout: dffd, folder or csv.
    #[arg(long, default_value = "dffd")]
    pub layout: String,
    /// Split to attack.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// fgsm, pgd, mifgsm, apgd, a comma list, or all.
    #[arg(long, default_value = "pgd")]
    pub attack: String,
    /// ε values (L∞, images in [0, 1]), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0.0001,0.0005,0.001")]
    pub eps: Vec<f64>,
    /// Iterations of PGD / MI-FGSM / APGD.
    #[arg(long, default_value_t = 5)]
    pub steps: usize,
    /// Absolute step size (default: ε·alpha-ratio).
    #[arg(long)]
    pub alpha: Option<f64>,
    /// Step size as a fraction of ε (the study: 1/5).
    #[arg(long, default_value_t = 0.2)]
    pub alpha_ratio: f64,
    /// Uniform random start in the ε-ball (PGD).
    #[arg(long)]
    pub random_start: bool,
    /// Evaluate at most N samples (spread evenly over the split).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Batch size.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Input size (default: the checkpoint's training size).
    #[arg(long)]
    pub image_size: Option<u32>,
    /// Also check that 2×steps PGD is not weaker than steps (sanity check).
    #[arg(long)]
    pub steps_check: bool,
    /// Save the adversarial examples (f32 safetensors) here.
    #[arg(long)]
    pub save_adversarial: Option<PathBuf>,
    /// Write report.json and report.csv here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Seed (random start).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Fraction of unreadable images to skip (each named in a warning on stderr) before failing.
    #[arg(long, default_value_t = 0.0)]
    pub max_bad_fraction: f64,
}

/// The training image size recorded in a checkpoint written by `dfr train`, if any
/// (a checkpoint whose recorded configuration cannot be read is reported and ignored).
pub fn checkpoint_image_size(path: &Path) -> Option<u32> {
    match dfr_train::TrainedCheckpoint::read(path) {
        Ok(cfg) => cfg.map(|c| c.model.image_size),
        Err(e) => {
            tracing::warn!("{}: no training image size: {e}", path.display());
            None
        }
    }
}

/// Runs the evaluation and prints the table.
pub fn run(a: AttackArgs) -> Result<()> {
    let device = crate::device::parse(&a.device)?;
    // a bad --out is reported now, not after the whole evaluation
    if let Some(out) = &a.out {
        let probe = out.join(".dfr-write-test");
        dfr_fs::write_atomic(&probe, b"")
            .and_then(|()| std::fs::remove_file(&probe))
            .with_context(|| format!("--out {}: cannot write there", out.display()))?;
    }
    let image_size = a
        .image_size
        .or_else(|| checkpoint_image_size(&a.checkpoint))
        .unwrap_or(224);
    dfr_model::config::check_image_size(image_size)
        .map_err(|m| anyhow::anyhow!("--image-size {m}"))?;
    let model = load_detector(&a.checkpoint, &device, None)
        .with_context(|| format!("loading {}", a.checkpoint.display()))?;
    let Some(layout) = LayoutKind::parse(&a.layout) else {
        anyhow::bail!("--layout `{}`: expected dffd, folder or csv", a.layout);
    };
    let Some(split) = Split::parse(&a.split) else {
        anyhow::bail!("--split `{}`: expected train, validation or test", a.split);
    };
    let ds = DataConfig::new(&a.data, layout)
        .scan()
        .with_context(|| format!("scanning {}", a.data.display()))?;
    let samples = ds.require_split(split)?;
    let cfg = RobustEvalConfig {
        attacks: parse_attacks(&a.attack)?,
        eps: a.eps.clone(),
        steps: a.steps,
        alpha_ratio: a.alpha_ratio,
        alpha: a.alpha,
        random_start: a.random_start,
        seed: a.seed,
        image_size,
        batch_size: a.batch_size,
        limit: a.limit,
        steps_check: a.steps_check,
        save_adversarial: a.save_adversarial.clone(),
        max_bad_fraction: a.max_bad_fraction,
        ..RobustEvalConfig::default()
    };
    let report = evaluate_samples(&model, &samples, split, &cfg)?;
    print!("{report}");
    if let Some(out) = &a.out {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        report.write_json(&out.join("report.json"))?;
        report.write_csv(&out.join("report.csv"))?;
        println!("results: {}", out.display());
    }
    if !report.sanity_passed() {
        eprintln!("warning: some sanity checks failed (see above)");
    }
    Ok(())
}
