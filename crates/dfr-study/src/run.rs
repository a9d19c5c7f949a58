//! One (arm, seed) of a study: train (a finished run is reused, an interrupted one resumes,
//! a changed configuration starts over), then evaluate, every evaluation cached as JSON in
//! the run directory and reused only for the same model and configuration.

use crate::cam::{self, CamSummary, Localisation};
use crate::config::StudyConfig;
use crate::error::{Result, StepContext, StudyError};
use crate::worst::{survivors, WorstEval};
use candle_core::Device;
use dfr_attacks::{evaluate_samples, AttackKind, RobustEvalConfig, RobustReport};
use dfr_data::synth::{generate, SynthOutcome};
use dfr_data::{Sample, Split};
use dfr_model::checkpoint::load_detector;
use dfr_model::EfficientNet;
use dfr_train::trainer::{files, train, TrainOptions, TrainOutcome};
use dfr_train::ExperimentConfig;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Generates the synthetic DFFD when the study asks for it and it is missing.
pub fn ensure_data(cfg: &StudyConfig, base: &ExperimentConfig) -> Result<()> {
    let Some(s) = &cfg.synth else {
        return Ok(());
    };
    let root = &base.data.root;
    match generate(s, root, false)
        .step(|| format!("generating the synthetic DFFD in {}", root.display()))?
    {
        SynthOutcome::Generated(n) => {
            tracing::info!(
                "[data] generated {n} synthetic images in {}",
                root.display()
            )
        }
        SynthOutcome::Reused => tracing::info!("[data] using {}", root.display()),
    }
    Ok(())
}

/// The study's data set, with `overrides` applied: generated first when the study asks for
/// synthetic data and it is missing, then scanned.
pub fn prepare_dataset(cfg: &StudyConfig, overrides: &[String]) -> Result<dfr_data::Dataset> {
    let base = cfg.base_experiment(overrides)?;
    ensure_data(cfg, &base)?;
    base.data
        .scan()
        .step(|| format!("scanning {}", base.data.root.display()))
}

/// Removes `ec`'s run directory when it holds a run made with another configuration (the
/// keys that differ are logged), so that only runs whose configuration changed start over.
pub fn discard_if_changed(ec: &ExperimentConfig, label: &str) -> Result<bool> {
    let dir = ec.run_dir();
    let Ok(stored) = std::fs::read_to_string(dir.join(files::CONFIG)) else {
        return Ok(false);
    };
    let diff = dfr_train::state::config_differences(&stored, &ec.to_toml());
    if diff.is_empty() {
        return Ok(false);
    }
    tracing::info!(
        "[train] {label}: configuration changed ({}), starting over",
        diff.join(", ")
    );
    std::fs::remove_dir_all(&dir).step(|| format!("removing {}", dir.display()))?;
    Ok(true)
}

/// Trains one experiment (a finished run is reused, an interrupted one resumes, one made
/// with another configuration starts over) and loads its best checkpoint.
pub fn train_and_load(
    ec: &ExperimentConfig,
    label: &str,
    device: &Device,
) -> Result<(TrainOutcome, EfficientNet)> {
    discard_if_changed(ec, label)?;
    tracing::info!("[train] {label} → {}", ec.run_dir().display());
    let training = train(
        ec,
        &TrainOptions {
            resume: true,
            device: device.clone(),
            ..Default::default()
        },
    )
    .step(|| format!("training {label}"))?;
    if training.epochs.last().is_some() {
        tracing::info!(
            "[train] {label}: {} epochs, best val macro-F1 {:.3}, {:.1} img/s{}",
            training.epochs.len(),
            training.best_val_macro_f1.unwrap_or(f64::NAN),
            training.images_per_second,
            if training.reused { " (reused)" } else { "" }
        );
    }
    let model = load_best(ec, device)?;
    Ok((training, model))
}

/// The validation ROC-AUC of a run's best epoch (`None` without one).
pub fn best_val_auc(training: &TrainOutcome) -> Option<f64> {
    training
        .best_epoch
        .and_then(|b| training.epochs.iter().find(|e| e.epoch == b))
        .and_then(|e| e.val_auc)
}

/// Loads the best checkpoint of `ec`'s run.
pub fn load_best(ec: &ExperimentConfig, device: &Device) -> Result<EfficientNet> {
    let ckpt = ec.run_dir().join(files::BEST);
    load_detector(&ckpt, device, None).step(|| format!("loading {}", ckpt.display()))
}

/// Identity of a trained model for evaluation caches: size and modification time of its best
/// checkpoint (a retrained model invalidates every cached evaluation of the old one).
pub fn checkpoint_id(ec: &ExperimentConfig) -> Result<String> {
    let ckpt = ec.run_dir().join(files::BEST);
    let m = std::fs::metadata(&ckpt).step(|| format!("reading {}", ckpt.display()))?;
    let t = m
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    Ok(format!("{} {} {t}", ckpt.display(), m.len()))
}

/// A cached computation: `{ "model": id, "key": key, "value": value }` at `path`.
#[derive(Serialize, serde::Deserialize)]
struct Cached<T> {
    model: String,
    key: serde_json::Value,
    value: T,
}

/// The value cached at `path` for `model_id` and `key`, or `compute()`'s, written
/// atomically to `path`.
pub fn cached<T, F>(path: &Path, model_id: &str, key: &impl Serialize, compute: F) -> Result<T>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> Result<T>,
{
    let key = serde_json::to_value(key)?;
    if let Some(c) = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<Cached<T>>(&t).ok())
        .filter(|c| c.model == model_id && c.key == key)
    {
        return Ok(c.value);
    }
    let value = compute()?;
    let c = Cached {
        model: model_id.to_string(),
        key,
        value,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).step(|| format!("creating {}", dir.display()))?;
    }
    dfr_fs::write_atomic(path, serde_json::to_string(&c)?.as_bytes())
        .step(|| format!("writing {}", path.display()))?;
    Ok(c.value)
}

/// One robust evaluation of the model `model_id` ([`checkpoint_id`]), cached at `path`.
pub fn evaluate_cached(
    model: &EfficientNet,
    model_id: &str,
    samples: &[Sample],
    split: Split,
    rec: &RobustEvalConfig,
    path: &Path,
    label: &str,
) -> Result<RobustReport> {
    let key = serde_json::json!({ "report_format": REPORT_FORMAT, "eval": rec });
    cached(path, model_id, &key, || {
        tracing::info!("[attack] {label} over ε {:?}", rec.eps);
        let r = evaluate_samples(model, samples, split, rec).step(|| label.to_string())?;
        for s in r.sanity.iter().filter(|s| !s.passed) {
            tracing::warn!(
                "[attack] {label}: sanity check {} failed: {}",
                s.name,
                s.detail
            );
        }
        Ok(r)
    })
}

/// The version of the cached evaluation reports, part of their cache key: 2 since reports
/// record each sample's id ([`dfr_attacks::PerSample::index`]), which the worst case matches
/// evaluations by; a report of an earlier format is recomputed, not misread.
const REPORT_FORMAT: u32 = 2;

/// The published protocol's evaluation configuration of one attack.
pub fn published_config(
    cfg: &StudyConfig,
    ec: &ExperimentConfig,
    kind: AttackKind,
    eps: &[f64],
) -> RobustEvalConfig {
    RobustEvalConfig {
        attacks: vec![kind],
        eps: eps.to_vec(),
        steps: cfg.attacks.steps,
        alpha_ratio: cfg.attacks.alpha_ratio,
        image_size: ec.model.image_size,
        batch_size: cfg.eval.batch_size,
        limit: cfg.eval.limit,
        seed: ec.run.seed,
        ..RobustEvalConfig::default()
    }
}

/// FGSM, PGD and MI-FGSM over the study's ε grids on `samples`; reports cached under
/// `<eval_dir>/<attack>.json`.
pub fn evaluate_attacks(
    cfg: &StudyConfig,
    ec: &ExperimentConfig,
    model: &EfficientNet,
    samples: &[Sample],
    eval_dir: &Path,
    tag: &str,
) -> Result<Vec<(AttackKind, RobustReport)>> {
    let model_id = checkpoint_id(ec)?;
    let mut reports = Vec::new();
    for (kind, eps) in cfg.attacks.grids() {
        let rec = published_config(cfg, ec, kind, eps);
        let path = eval_dir.join(format!("{}.json", kind.name()));
        let label = format!("{tag}: {}", kind.name());
        reports.push((
            kind,
            evaluate_cached(
                model,
                &model_id,
                samples,
                cfg.eval.split,
                &rec,
                &path,
                &label,
            )?,
        ));
    }
    Ok(reports)
}

/// Runs and caches the evaluations of one trained model on the study's samples.
struct Evaluator<'a> {
    model: &'a EfficientNet,
    model_id: String,
    samples: &'a [Sample],
    split: Split,
    eval_dir: &'a Path,
}

impl Evaluator<'_> {
    fn run(&self, rec: &RobustEvalConfig, file: &str, label: &str) -> Result<RobustReport> {
        let path = self.eval_dir.join(file);
        evaluate_cached(
            self.model,
            &self.model_id,
            self.samples,
            self.split,
            rec,
            &path,
            label,
        )
    }
}

/// A worst-case evaluation of `kind` over the worst-case grid and images.
fn worst_config(
    cfg: &StudyConfig,
    ec: &ExperimentConfig,
    kind: AttackKind,
    steps: usize,
    seed: u64,
) -> RobustEvalConfig {
    RobustEvalConfig {
        attacks: vec![kind],
        eps: cfg.worst_case.eps.clone(),
        steps,
        image_size: ec.model.image_size,
        batch_size: cfg.eval.batch_size,
        limit: cfg.worst_case.limit.or(cfg.eval.limit),
        seed,
        ..RobustEvalConfig::default()
    }
}

/// The worst-case evaluations at the worst-case grid, on at most `worst_case.limit` test
/// images spread over the split. First the gradient-masking probe, on all of them: uniform
/// random noise in the ε-ball (PGD with a random start and step size 0: the noise alone).
/// Then PGD with a random start, `pgd_steps` iterations of step 2.5·ε/steps (Madry et al.'s
/// schedule), once per restart (each restart its own seed; the first also runs the steps
/// check, PGD continued for as many steps again), then APGD-CE. Each of these attacks runs
/// only on the images that neither the published attacks (`published`) nor the earlier
/// worst-case attacks have yet misclassified at some ε of the grid (AutoAttack's protocol:
/// the per-image minimum is the same as attacking every image with every attack, at the
/// cost of the survivors); an attack with no image left is skipped. A sample is robust at ε
/// when it survives every attack; a white-box attack that fails on an image random noise
/// flips is not finding the model's errors (gradient masking, or an attack that has not
/// converged). Cached as `noise.json`, `worst-pgd<steps>-r<k>.json` and
/// `worst-apgd<steps>.json` in `eval_dir`; the survivors are part of each attack's cache
/// key, so an attack reruns when an earlier one changed.
pub fn evaluate_worst_case(
    cfg: &StudyConfig,
    ec: &ExperimentConfig,
    model: &EfficientNet,
    samples: &[Sample],
    published: &[(AttackKind, RobustReport)],
    eval_dir: &Path,
    tag: &str,
) -> Result<(Vec<RobustReport>, Option<RobustReport>)> {
    let w = &cfg.worst_case;
    if w.eps.is_empty() {
        return Ok((Vec::new(), None));
    }
    let ev = Evaluator {
        model,
        model_id: checkpoint_id(ec)?,
        samples,
        split: cfg.eval.split,
        eval_dir,
    };
    let seed = |k: u64| ec.run.seed.wrapping_mul(1000).wrapping_add(k);
    let noise = RobustEvalConfig {
        alpha: Some(0.0),
        random_start: true,
        ..worst_config(cfg, ec, AttackKind::Pgd, 1, seed(999))
    };
    let noise = ev.run(
        &noise,
        "noise.json",
        &format!("{tag}: random noise (masking probe)"),
    )?;
    let mut attacks = Vec::new();
    for restart in 0..w.pgd_restarts {
        let rec = RobustEvalConfig {
            alpha_ratio: 2.5 / w.pgd_steps as f64,
            random_start: true,
            steps_check: restart == 0,
            ..worst_config(
                cfg,
                ec,
                AttackKind::Pgd,
                w.pgd_steps,
                seed(restart as u64 + 1),
            )
        };
        let file = format!("worst-pgd{}-r{restart}.json", w.pgd_steps);
        let label = format!("{tag}: worst case, PGD-{} restart {restart}", w.pgd_steps);
        attacks.push((rec, file, label));
    }
    if w.apgd_steps > 0 {
        let rec = worst_config(cfg, ec, AttackKind::Apgd, w.apgd_steps, ec.run.seed);
        let file = format!("worst-apgd{}.json", w.apgd_steps);
        let label = format!("{tag}: worst case, APGD-CE-{}", w.apgd_steps);
        attacks.push((rec, file, label));
    }
    let mut out: Vec<RobustReport> = Vec::new();
    for (rec, file, label) in attacks {
        let left = {
            let reference = &noise.per_sample;
            let per_eps: Vec<Vec<WorstEval<'_>>> = w
                .eps
                .iter()
                .map(|&e| {
                    published
                        .iter()
                        .map(|(_, r)| r)
                        .chain(&out)
                        .filter_map(|r| WorstEval::of(r, reference, e))
                        .collect()
                })
                .collect();
            let per_eps: Vec<&[WorstEval<'_>]> = per_eps.iter().map(Vec::as_slice).collect();
            survivors(&per_eps, reference)
        };
        if left.is_empty() {
            tracing::info!("[attack] {label}: skipped, no worst-case image left to attack");
            // A report of an earlier run of this attack would describe other images.
            let stale = eval_dir.join(&file);
            match std::fs::remove_file(&stale) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).step(|| format!("removing {}", stale.display()));
                }
                _ => {}
            }
            continue;
        }
        let rec = RobustEvalConfig {
            limit: None,
            subset: Some(left),
            ..rec
        };
        out.push(ev.run(&rec, &file, &label)?);
    }
    Ok((out, Some(noise)))
}

/// Everything a study keeps of one (arm, seed).
#[derive(Debug, Clone)]
pub struct RunResult {
    /// Arm name.
    pub arm: String,
    /// Seed.
    pub seed: u64,
    /// Training outcome.
    pub training: TrainOutcome,
    /// Best validation ROC-AUC (of the best epoch), when recorded.
    pub val_auc: Option<f64>,
    /// The published protocol, per attack.
    pub reports: Vec<(AttackKind, RobustReport)>,
    /// The worst-case evaluations (PGD restarts, then APGD), each on the images the
    /// earlier ones left (an attack with no image left is not here).
    pub worst: Vec<RobustReport>,
    /// Uniform random noise on the worst-case images (the gradient-masking probe; its
    /// images are the worst-case images).
    pub noise: Option<RobustReport>,
    /// CAM consistency per attack (at the attack's largest ε).
    pub cam: Vec<CamSummary>,
    /// The fake-class Grad-CAM against the manipulation masks, when the data has masks.
    pub localisation: Option<Localisation>,
    /// Clean metrics on each `[[eval.datasets]]` entry: (name, report).
    pub datasets: Vec<(String, dfr_train::evaluate::DatasetReport)>,
    /// The run directory.
    pub run_dir: PathBuf,
}

impl RunResult {
    /// The report of one published attack.
    pub fn report(&self, kind: AttackKind) -> Option<&RobustReport> {
        self.reports
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, r)| r)
    }

    /// The clean evaluation (identical in every report; from the first).
    pub fn clean(&self) -> Option<&RobustReport> {
        self.reports.first().map(|(_, r)| r).or(self.noise.as_ref())
    }
}

/// Trains and evaluates one (arm, seed) of `cfg` on `samples`.
pub fn run_one(
    cfg: &StudyConfig,
    ec: &ExperimentConfig,
    arm: &str,
    samples: &[Sample],
    external: &[Vec<Sample>],
    device: &Device,
) -> Result<RunResult> {
    let seed = ec.run.seed;
    let tag = format!("{arm} seed {seed}");
    let (training, model) = train_and_load(ec, &tag, device)?;
    let eval_dir = ec.run_dir().join("eval");
    let reports = evaluate_attacks(cfg, ec, &model, samples, &eval_dir, &tag)?;
    let (worst, noise) = evaluate_worst_case(cfg, ec, &model, samples, &reports, &eval_dir, &tag)?;
    let model_id = checkpoint_id(ec)?;
    // format 2: with the localisation against the masks
    let cam_key = serde_json::json!({
        "format": 2, "cam": cfg.cam, "stage": cfg.cam_stage()?, "attacks": cfg.attacks,
        "split": cfg.eval.split,
    });
    let cams = cached(&eval_dir.join("cam.json"), &model_id, &cam_key, || {
        tracing::info!("[cam] {tag}");
        cam::evaluate_cams(&model, samples, &ec.data, cfg, ec.model.image_size, seed)
    })?;
    let mut datasets = Vec::new();
    for (d, samples) in cfg.eval.datasets.iter().zip(external) {
        let key = serde_json::json!({
            "dataset": d, "image_size": ec.model.image_size, "n": samples.len(),
        });
        let path = eval_dir.join(format!("dataset-{}.json", d.name));
        let r = cached(&path, &model_id, &key, || {
            tracing::info!("[eval] {tag} on {}", d.name);
            dfr_train::evaluate::evaluate_dataset(
                &model,
                samples.clone(),
                d.split,
                ec.model.image_size,
                cfg.eval.batch_size,
                ec.data.max_bad_fraction,
                device,
            )
            .step(|| format!("evaluating {tag} on {}", d.name))
        })?;
        datasets.push((d.name.clone(), r));
    }
    let val_auc = best_val_auc(&training);
    if training.epochs.is_empty() {
        return Err(StudyError::Invalid(format!(
            "{tag}: the run recorded no epoch"
        )));
    }
    Ok(RunResult {
        arm: arm.to_string(),
        seed,
        training,
        val_auc,
        reports,
        worst,
        noise,
        cam: cams.consistency,
        localisation: cams.localisation,
        datasets,
        run_dir: ec.run_dir(),
    })
}
