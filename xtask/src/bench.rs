//! `cargo xtask bench …`: throughput benchmarks with JSON output.

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use dfr_data::synth::{generate, SplitCounts, SynthConfig};
use dfr_data::{DataConfig, LayoutKind, Loader, LoaderConfig, Split, TrainAugment, Transform};
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

/// What to benchmark.
#[derive(Clone, Copy, ValueEnum)]
pub enum Target {
    /// Decode + training augmentation throughput.
    Data,
    /// EfficientNet-B0 train step, eval forward and PGD-10 throughput.
    Model,
    /// Learning curves of the study's baseline recipe over seeds, ours against PyTorch's
    /// (`--pytorch`).
    Learning,
    /// Statistics of what the training augmentation hands the model, ours against
    /// torchvision's (`--pytorch`).
    Augment,
}

/// Where the PyTorch reference applies the augmentation after the crop.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum PtPipeline {
    /// Float tensors (dfr-data's semantics).
    Tensor,
    /// PIL images (re-quantised to uint8 after each colour op).
    Pil,
}

impl PtPipeline {
    /// The scripts' `--pipeline` value.
    pub fn flag(self) -> &'static str {
        match self {
            PtPipeline::Tensor => "--pipeline=tensor",
            PtPipeline::Pil => "--pipeline=pil",
        }
    }
}

/// Options of `cargo xtask bench`.
#[derive(Args)]
pub struct BenchArgs {
    /// Benchmark to run.
    target: Target,
    /// A directory of PNGs to read (e.g. the files of ../shared/bench/data_bench.py). Without
    /// it, 400 synthetic 299×299 PNGs are generated under target/bench-data.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Output crop size.
    #[arg(long, default_value_t = 224)]
    size: u32,
    /// Batch size.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Passes over the files per measurement (at least 1).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
    epochs: u64,
    /// Smaller configurations (for a smoke run).
    #[arg(long)]
    quick: bool,
    /// Device of `bench model`: cpu, cuda or cuda:N (needs the `cuda` feature).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// `bench model`: only this part (e.g. under a profiler).
    #[arg(long, value_enum)]
    only: Option<crate::bench_model::Part>,
    /// `bench model`: RESOLUTIONxBATCH configurations instead of the defaults, e.g.
    /// `224x64,128x32`.
    #[arg(long, value_delimiter = ',', value_parser = parse_config)]
    configs: Option<Vec<(usize, usize)>>,
    /// `bench learning`: seeds, e.g. `1,2,3,4,5,6`.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3,4,5,6")]
    seeds: Vec<u64>,
    /// `bench model` / `bench learning` / `bench augment`: a Python with torch and
    /// torchvision (and timm, torchattacks for `model`) to run the PyTorch reference side by
    /// side (`../shared/bench/pt_bench.py` or `xtask/bench/pt_bench_gpu.py`,
    /// `pt_train_memory.py`, `pt_learning.py`, `pt_augment.py`); the JSON gets both figures
    /// and their ratios.
    #[arg(long)]
    pytorch: Option<PathBuf>,
    /// `bench model`: only the peak resident memory of a train step, for one `--configs`
    /// entry on the CPU (the fresh-process probe `--pytorch` runs).
    #[arg(long, hide = true)]
    peak_rss: bool,
    /// `bench learning` / `bench augment`: the PyTorch reference's pipeline: `tensor` (flip,
    /// jitter and rotation on float tensors after the crop, dfr-data's semantics) or `pil`
    /// (every transform on PIL images, uint8 after each colour op, as the study's notebook).
    #[arg(long, value_enum, default_value = "tensor")]
    pt_pipeline: PtPipeline,
    /// `bench learning`: study file (default: the embedded experiments/quick.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// `bench learning`: experiment override KEY=VALUE (repeatable), e.g.
    /// `--set model.dropout=0`.
    #[arg(long = "set")]
    sets: Vec<String>,
    /// `bench augment`: augmented draws per source image.
    #[arg(long, default_value_t = 200)]
    draws: u64,
    /// Also write the JSON to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Parses `RESOLUTIONxBATCH`.
fn parse_config(s: &str) -> std::result::Result<(usize, usize), String> {
    let bad = || format!("`{s}`: expected RESOLUTIONxBATCH, e.g. 224x64");
    let (r, b) = s.split_once('x').ok_or_else(bad)?;
    let (r, b) = (
        r.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    );
    if r == 0 || b == 0 {
        return Err(bad());
    }
    Ok((r, b))
}

/// Runs a benchmark.
pub fn run(a: BenchArgs) -> Result<()> {
    let report = match a.target {
        Target::Data => {
            if a.device != "cpu" || a.only.is_some() || a.configs.is_some() {
                anyhow::bail!(
                    "--device, --only and --configs apply to `bench model`, not `bench data`"
                );
            }
            bench_data(&a)?
        }
        Target::Model => {
            let device = dfr_model::device::parse(&a.device)?;
            let opts = crate::bench_model::ModelBenchOptions {
                quick: a.quick,
                only: a.only,
                configs: a.configs.clone(),
                pytorch: a.pytorch.clone(),
                peak_rss: a.peak_rss,
            };
            crate::bench_model::bench_model(&opts, &device)?
        }
        Target::Learning => {
            crate::bench_learning::bench_learning(&crate::bench_learning::LearningOptions {
                config: a.config.clone(),
                seeds: a.seeds.clone(),
                pytorch: a.pytorch.clone(),
                pipeline: a.pt_pipeline,
                sets: a.sets.clone(),
            })?
        }
        Target::Augment => crate::bench_augment::bench_augment(
            &bench_files(&a)?,
            a.size,
            a.draws,
            a.pytorch.as_deref(),
            a.pt_pipeline,
        )?,
    };
    let text = serde_json::to_string_pretty(&report)?;
    println!("{text}");
    if let Some(out) = &a.out {
        dfr_fs::write_atomic(out, text.as_bytes())
            .with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(())
}

fn bench_files(a: &BenchArgs) -> Result<Vec<dfr_data::Sample>> {
    let dir = match &a.dir {
        Some(d) => d.clone(),
        None => {
            let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/bench-data"));
            let cfg = SynthConfig {
                size: 299,
                seed: 0,
                train: SplitCounts {
                    real_per_source: 50,
                    fake_per_source: 50,
                },
                validation: SplitCounts {
                    real_per_source: 0,
                    fake_per_source: 0,
                },
                test: SplitCounts {
                    real_per_source: 0,
                    fake_per_source: 0,
                },
                ..SynthConfig::default()
            };
            generate(&cfg, &root, true)?;
            return Ok(DataConfig::new(&root, LayoutKind::Dffd)
                .scan()?
                .split(Split::Train));
        }
    };
    // A flat directory of images: label them all real, split train.
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| dfr_data::sample::is_image_file(p))
        .collect();
    files.sort();
    anyhow::ensure!(!files.is_empty(), "no PNG/JPEG files in {}", dir.display());
    Ok(files
        .into_iter()
        .map(|path| dfr_data::Sample {
            path,
            label: dfr_data::Label::Real,
            method: "bench".into(),
            split: Split::Train,
            video: None,
        })
        .collect())
}

fn bench_data(a: &BenchArgs) -> Result<serde_json::Value> {
    let samples = bench_files(a)?;
    let n = samples.len();
    let aug = TrainAugment {
        size: a.size,
        ..TrainAugment::default()
    };
    let mut results = Vec::new();
    for threads in [1usize, 2] {
        let cfg = LoaderConfig {
            batch_size: a.batch,
            threads,
            ..LoaderConfig::default()
        };
        let loader = Loader::new(
            samples.clone(),
            Split::Train,
            Transform::Train(aug.clone()),
            cfg,
            0.0,
        )?;
        // Warm-up pass (page cache, allocator).
        for b in loader.epoch(0, 0) {
            b?;
        }
        let t = Instant::now();
        let mut images = 0usize;
        for e in 1..=a.epochs {
            for b in loader.epoch(e, 0) {
                images += b?.len();
            }
        }
        let secs = t.elapsed().as_secs_f64();
        results.push(json!({
            "threads": threads,
            "images": images,
            "seconds": secs,
            "images_per_second": images as f64 / secs,
        }));
    }
    Ok(json!({
        "bench": "data",
        "pipeline": "decode PNG + RandomResizedCrop + flip + ColorJitter + rotation → f32 NCHW",
        "files": n,
        "source_size": first_size(&samples),
        "crop": a.size,
        "batch": a.batch,
        "machine_threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "results": results,
    }))
}

fn first_size(samples: &[dfr_data::Sample]) -> Option<[u32; 2]> {
    let img = dfr_data::decode::decode_rgb8(&samples.first()?.path).ok()?;
    Some([img.width, img.height])
}
