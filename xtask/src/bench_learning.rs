//! `cargo xtask bench learning`: does our training loop learn like PyTorch's with the same
//! recipe? Trains the study's baseline for several seeds with `dfr-train` and (with
//! `--pytorch PYTHON`) with the independent torchvision implementation
//! `xtask/bench/pt_learning.py` on the same data, and prints per-epoch train loss, best
//! validation macro-F1 and the best checkpoint's test ROC-AUC as mean ± sd, with the
//! difference in standard errors.

use anyhow::{bail, Context, Result};
use dfr_data::augment::Interpolation;
use dfr_data::{EvalTransform, Loader, LoaderConfig, Split, TrainAugment, Transform};
use dfr_study::ablation::{ABLATION, ABLATION_NAME};
use dfr_study::StudyConfig;
use dfr_train::ExperimentConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Options of `bench learning`.
#[derive(Debug, Clone)]
pub struct LearningOptions {
    /// Study file (`None`: the embedded experiments/quick.toml).
    pub config: Option<PathBuf>,
    /// Seeds, one run each per implementation.
    pub seeds: Vec<u64>,
    /// Python with torch and torchvision; without it only our runs are made.
    pub pytorch: Option<PathBuf>,
    /// Where the PyTorch reference augments after the crop.
    pub pipeline: crate::bench::PtPipeline,
    /// `--set KEY=VALUE` overrides of the experiment (e.g. `model.dropout=0`).
    pub sets: Vec<String>,
}

/// One training run's learning curve.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LearningRun {
    /// Seed.
    pub seed: u64,
    /// Mean training loss per epoch.
    pub train_loss: Vec<f64>,
    /// Validation macro-F1 per epoch.
    pub val_macro_f1: Vec<f64>,
    /// Best validation macro-F1.
    pub best_val_macro_f1: f64,
    /// Test ROC-AUC of the best checkpoint.
    pub test_auc: f64,
}

#[derive(Deserialize)]
struct PtResult {
    implementation: String,
    runs: Vec<LearningRun>,
}

/// The PyTorch script's flags for this experiment; an error for a recipe it does not implement.
fn pytorch_flags(ec: &ExperimentConfig) -> Result<Vec<String>> {
    let mc = dfr_train::trainer::model_config(ec)?;
    let a = &ec.augment;
    let identity = TrainAugment::identity(a.size);
    let study = TrainAugment {
        size: a.size,
        rotation_interpolation: a.rotation_interpolation,
        ..TrainAugment::default()
    };
    let mut flags = vec![
        format!("--epochs={}", ec.train.epochs),
        format!("--batch={}", ec.train.batch_size),
        format!("--lr={}", ec.train.lr),
        format!("--size={}", ec.model.image_size),
        format!("--dropout={}", mc.dropout),
        format!("--stochastic-depth={}", mc.stochastic_depth_prob),
        format!("--bn-momentum={}", mc.bn_momentum),
    ];
    let plain_adam = ec.train.beta1 == 0.9
        && ec.train.beta2 == 0.999
        && ec.train.eps == 1e-8
        && ec.train.weight_decay == 0.0;
    if ec.model.arch != "b0"
        || !ec.model.weights.is_empty()
        || !plain_adam
        || !ec.train.class_weighted
        || ec.train.max_steps_per_epoch > 0
        || ec.train.strategy != dfr_train::Strategy::Baseline
    {
        bail!(
            "the PyTorch reference implements the random-init B0 baseline with class-weighted CE \
             and plain Adam over whole epochs; this experiment differs (arch {}, weights `{}`, \
             strategy {:?})",
            ec.model.arch,
            ec.model.weights,
            ec.train.strategy
        );
    }
    if *a == identity {
        flags.push("--no-augment".into());
    } else if *a == study {
        flags.push(match a.rotation_interpolation {
            Interpolation::Nearest => "--rotation=nearest".into(),
            Interpolation::Bilinear => "--rotation=bilinear".into(),
        });
    } else {
        bail!(
            "the PyTorch reference implements the study's augmentation (or none); \
             [augment] is {a:?}"
        );
    }
    Ok(flags)
}

fn ours(ec: &ExperimentConfig, seed: u64) -> Result<LearningRun> {
    let device = candle_core::Device::Cpu;
    let (training, model) = dfr_study::run::train_and_load(ec, &format!("seed {seed}"), &device)?;
    let ds = ec.data.scan()?;
    let test = Loader::new(
        ds.require_split(Split::Test)?,
        Split::Test,
        Transform::Eval(EvalTransform {
            size: ec.model.image_size,
        }),
        LoaderConfig {
            batch_size: ec.train.eval_batch_size,
            shuffle: false,
            ..LoaderConfig::default()
        },
        ec.data.max_bad_fraction,
    )?;
    let scores = dfr_train::evaluate::score(&model, &test, &device, None)?;
    Ok(LearningRun {
        seed,
        train_loss: training.epochs.iter().map(|e| e.train_loss).collect(),
        val_macro_f1: training.epochs.iter().map(|e| e.val_macro_f1).collect(),
        best_val_macro_f1: training.best_val_macro_f1.unwrap_or(f64::NAN),
        test_auc: dfr_metrics::roc_auc(&scores.labels, &scores.fake_prob)?,
    })
}

fn pytorch(
    python: &Path,
    ec: &ExperimentConfig,
    seeds: &[u64],
    pipeline: crate::bench::PtPipeline,
    out: &Path,
) -> Result<(String, Vec<LearningRun>)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/pt_learning.py");
    let seeds_arg = seeds
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let status = Command::new(python)
        .arg(&script)
        .arg("--data")
        .arg(&ec.data.root)
        .arg(format!("--seeds={seeds_arg}"))
        .args(pytorch_flags(ec)?)
        .arg(pipeline.flag())
        .arg("--out")
        .arg(out)
        .status()
        .with_context(|| format!("running {} {}", python.display(), script.display()))?;
    if !status.success() {
        bail!(
            "{} {} failed ({status})",
            python.display(),
            script.display()
        );
    }
    let text =
        std::fs::read_to_string(out).with_context(|| format!("reading {}", out.display()))?;
    let r: PtResult =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", out.display()))?;
    Ok((r.implementation, r.runs))
}

/// One compared quantity: both groups' mean ± sd and their distance in standard errors.
fn row(name: &str, a: &[f64], b: Option<&[f64]>) -> Result<serde_json::Value> {
    let (ma, sa) = dfr_metrics::mean_sd(a)?;
    let mut line = format!("{name:<22} {ma:>8.4} ± {sa:<7.4}");
    let mut v = serde_json::json!({ "name": name, "ours_mean": ma, "ours_sd": sa, "ours": a });
    if let Some(b) = b {
        let (mb, sb) = dfr_metrics::mean_sd(b)?;
        let z = dfr_metrics::standard_errors_apart(a, b)?;
        line.push_str(&format!(" {mb:>8.4} ± {sb:<7.4} {z:>+7.2}"));
        v["pytorch_mean"] = mb.into();
        v["pytorch_sd"] = sb.into();
        v["pytorch"] = b.into();
        v["standard_errors_apart"] = z.into();
    }
    println!("{line}");
    Ok(v)
}

/// Runs the comparison and returns its JSON.
pub fn bench_learning(o: &LearningOptions) -> Result<serde_json::Value> {
    if o.seeds.is_empty() {
        bail!("--seeds: give at least one seed");
    }
    // Default: the ablation study's experiment, the random-init B0 recipe the PyTorch
    // reference implements (the quick study fine-tunes Lite0).
    let mut study = match o.config.as_deref() {
        Some(p) => StudyConfig::load(Some(p))?,
        None => StudyConfig::parse(ABLATION, ABLATION_NAME)?,
    };
    // Fresh runs every time: the point is to measure the current code, never a cached run.
    let scratch = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-learning");
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let tmp = tempfile::tempdir_in(&scratch)
        .with_context(|| format!("creating a directory in {}", scratch.display()))?;
    study.study.results_dir = tmp.path().to_path_buf();
    let runs_dir = study.out_dir().join("runs");
    let experiment = |seed: u64| -> Result<ExperimentConfig> {
        let mut sets = vec!["train.progress=false".to_string()];
        sets.extend(o.sets.iter().cloned());
        Ok(study.experiment_with(
            &toml::Table::new(),
            dfr_train::Strategy::Baseline,
            &runs_dir,
            &format!("seed{seed}"),
            Some(seed),
            &sets,
        )?)
    };
    let first = experiment(o.seeds[0])?;
    dfr_study::run::ensure_data(&study, &first)?;
    let pt = match &o.pytorch {
        Some(py) => {
            // Check the recipe before any training.
            pytorch_flags(&first)?;
            Some(py)
        }
        None => None,
    };
    let mut runs = Vec::new();
    for &seed in &o.seeds {
        runs.push(ours(&experiment(seed)?, seed)?);
    }
    let reference = match pt {
        Some(py) => Some(pytorch(
            py,
            &first,
            &o.seeds,
            o.pipeline,
            &tmp.path().join("pytorch.json"),
        )?),
        None => None,
    };
    let epochs = runs.iter().map(|r| r.train_loss.len()).min().unwrap_or(0);
    println!(
        "\n{:<22} {:>18} {:>18} {:>7}",
        "quantity",
        "ours (mean ± sd)",
        if reference.is_some() {
            "PyTorch (mean ± sd)"
        } else {
            ""
        },
        if reference.is_some() { "SE" } else { "" }
    );
    let col = |rs: &[LearningRun], f: &dyn Fn(&LearningRun) -> f64| -> Vec<f64> {
        rs.iter().map(f).collect()
    };
    let pt_runs = reference.as_ref().map(|(_, r)| r.as_slice());
    let mut rows = Vec::new();
    for e in 0..epochs {
        let f = |r: &LearningRun| r.train_loss.get(e).copied().unwrap_or(f64::NAN);
        let b = pt_runs.map(|p| col(p, &f));
        rows.push(row(
            &format!("train loss, epoch {}", e + 1),
            &col(&runs, &f),
            b.as_deref(),
        )?);
    }
    for (name, f) in [
        (
            "best val macro-F1",
            &(|r: &LearningRun| r.best_val_macro_f1) as &dyn Fn(&LearningRun) -> f64,
        ),
        ("test ROC-AUC (best)", &|r: &LearningRun| r.test_auc),
    ] {
        let b = pt_runs.map(|p| col(p, f));
        rows.push(row(name, &col(&runs, f), b.as_deref())?);
    }
    let max_se = rows
        .iter()
        .filter_map(|r| r["standard_errors_apart"].as_f64())
        .fold(0.0f64, |m, z| m.max(z.abs()));
    if reference.is_some() {
        println!(
            "largest difference: {max_se:.2} standard errors ({} seeds each)",
            o.seeds.len()
        );
    }
    Ok(serde_json::json!({
        "bench": "learning",
        "seeds": o.seeds,
        "experiment_overrides": o.sets,
        "pytorch": reference.as_ref().map(|(i, _)| i.clone()),
        "pytorch_pipeline": o.pipeline.flag(),
        "rows": rows,
        "max_standard_errors_apart": reference.as_ref().map(|_| max_se),
        "ours_runs": runs,
        "pytorch_runs": reference.map(|(_, r)| r),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick(sets: &[&str]) -> ExperimentConfig {
        let study = StudyConfig::parse(ABLATION, ABLATION_NAME).unwrap();
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        study.base_experiment(&sets).unwrap()
    }

    #[test]
    fn pytorch_flags_follow_the_experiment_and_refuse_other_recipes() {
        let f = pytorch_flags(&quick(&[])).unwrap();
        for want in [
            "--epochs=8",
            "--batch=16",
            "--lr=0.001",
            "--size=64",
            "--dropout=0.2",
            "--stochastic-depth=0.2",
            "--bn-momentum=0.1",
            "--rotation=nearest",
        ] {
            assert!(f.iter().any(|x| x == want), "{want} missing from {f:?}");
        }
        let f = pytorch_flags(&quick(&["augment.rotation_interpolation=\"bilinear\""])).unwrap();
        assert!(f.iter().any(|x| x == "--rotation=bilinear"), "{f:?}");
        let f = pytorch_flags(&quick(&[
            "augment.scale=[1.0, 1.0]",
            "augment.ratio=[1.0, 1.0]",
            "augment.hflip=0",
            "augment.brightness=0",
            "augment.contrast=0",
            "augment.saturation=0",
            "augment.hue=0",
            "augment.degrees=0",
        ]))
        .unwrap();
        assert!(f.iter().any(|x| x == "--no-augment"), "{f:?}");
        // Recipes the reference does not implement are refused before any training.
        assert!(pytorch_flags(&quick(&["augment.degrees=20"])).is_err());
        assert!(pytorch_flags(&quick(&["train.strategy=\"gradreg\""])).is_err());
        assert!(pytorch_flags(&quick(&["train.weight_decay=0.01"])).is_err());
    }
}
