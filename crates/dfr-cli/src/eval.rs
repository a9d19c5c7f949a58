//! `dfr eval`: clean metrics of a trained checkpoint on a data set, frame-level and (for
//! frames of videos, a CSV manifest with a `video` column) video-level.

use anyhow::{Context, Result};
use clap::Args;
use dfr_data::{DataConfig, LayoutKind, Split};
use dfr_model::checkpoint::load_detector;
use dfr_train::evaluate::evaluate_dataset;
use std::path::PathBuf;

/// Options of `dfr eval`.
#[derive(Args)]
pub struct EvalArgs {
    /// Detector checkpoint (from `dfr train`: best.safetensors or last.safetensors).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Dataset root (for `csv`: the manifest or a directory holding manifest.csv).
    #[arg(long)]
    pub data: PathBuf,
    /// Dataset layout: dffd, folder or csv.
    #[arg(long, default_value = "dffd")]
    pub layout: String,
    /// Split to evaluate.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Batch size.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Input size (default: the checkpoint's training size).
    #[arg(long)]
    pub image_size: Option<u32>,
    /// Write eval.json here (a file path).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Fraction of unreadable images to skip (each named in a warning on stderr) before failing.
    #[arg(long, default_value_t = 0.0)]
    pub max_bad_fraction: f64,
}

/// Runs the evaluation and prints the metrics.
pub fn run(a: EvalArgs) -> Result<()> {
    let device = crate::device::parse(&a.device)?;
    let Some(layout) = LayoutKind::parse(&a.layout) else {
        anyhow::bail!("--layout `{}`: expected dffd, folder or csv", a.layout);
    };
    let Some(split) = Split::parse(&a.split) else {
        anyhow::bail!("--split `{}`: expected train, validation or test", a.split);
    };
    if let Some(out) = &a.out {
        let dir = out.parent().filter(|p| !p.as_os_str().is_empty());
        if let Some(d) = dir {
            std::fs::create_dir_all(d)
                .with_context(|| format!("--out: creating {}", d.display()))?;
        }
        dfr_fs::write_atomic(out, b"{}")
            .with_context(|| format!("--out {}: cannot write there", out.display()))?;
    }
    let image_size = a
        .image_size
        .or_else(|| crate::attack::checkpoint_image_size(&a.checkpoint))
        .unwrap_or(224);
    dfr_model::config::check_image_size(image_size)
        .map_err(|m| anyhow::anyhow!("--image-size {m}"))?;
    let ds = DataConfig::new(&a.data, layout)
        .scan()
        .with_context(|| format!("scanning {}", a.data.display()))?;
    let samples = ds.require_split(split)?;
    let model = load_detector(&a.checkpoint, &device, None)
        .with_context(|| format!("loading {}", a.checkpoint.display()))?;
    let r = evaluate_dataset(
        &model,
        samples,
        split,
        image_size,
        a.batch_size,
        a.max_bad_fraction,
        &device,
    )
    .with_context(|| format!("evaluating on {}", a.data.display()))?;
    println!(
        "{:<8} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "level", "n", "acc", "macroF1", "AUC", "AP", "EER"
    );
    let row = |level: &str, n: usize, m: &dfr_metrics::BinaryReport| {
        println!(
            "{level:<8} {n:>7} {:>8.4} {:>8.4} {:>8.4} {:>8.4} {:>8.4}",
            m.accuracy, m.macro_f1, m.roc_auc, m.average_precision, m.eer
        )
    };
    row("frame", r.images, &r.frame);
    if let (Some(n), Some(v)) = (r.videos, &r.video) {
        row("video", n, v);
    }
    println!(
        "\n{:<20} {:>7} {:>8} {:>10}",
        "source", "images", "acc", "mean p_fake"
    );
    for s in &r.per_source {
        println!(
            "{:<20} {:>7} {:>8.4} {:>10.4}",
            s.source, s.images, s.accuracy, s.mean_fake_score
        );
    }
    if r.bad_images > 0 {
        eprintln!("warning: {} unreadable images left out", r.bad_images);
    }
    if let Some(out) = &a.out {
        dfr_fs::write_atomic(out, serde_json::to_string_pretty(&r)?.as_bytes())
            .with_context(|| format!("writing {}", out.display()))?;
        println!("results: {}", out.display());
    }
    Ok(())
}
