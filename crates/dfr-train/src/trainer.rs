//! The training loop.

use crate::adam::{Adam, AdamParams};
use crate::config::{ExperimentConfig, Strategy};
use crate::error::{Result, TrainError};
use crate::evaluate::{score, Scores};
use crate::pim::{baseline_step, frozen_shallow_step, labels_tensor, pim_step};
use crate::state::{self, TrainState};
use candle_core::{Device, Tensor};
use dfr_data::{EvalTransform, Loader, LoaderConfig, Split, Transform};
use dfr_model::{EfficientNet, EfficientNetConfig};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// File names inside a run directory.
pub mod files {
    /// The resolved experiment configuration.
    pub const CONFIG: &str = "config.toml";
    /// Per-epoch metrics, one JSON object per line.
    pub const METRICS_JSONL: &str = "metrics.jsonl";
    /// Per-epoch metrics as CSV.
    pub const METRICS_CSV: &str = "metrics.csv";
    /// Model with the best validation macro-F1 (dfr-model checkpoint).
    pub const BEST: &str = "best.safetensors";
    /// Model after the last finished epoch (dfr-model checkpoint).
    pub const LAST: &str = "last.safetensors";
    /// Full resume state.
    pub const RESUME: &str = "resume.safetensors";
    /// Dataset summary.
    pub const DATA_REPORT: &str = "data-report.json";
    /// Final summary.
    pub const SUMMARY: &str = "summary.json";
}

/// Options that are not part of the experiment (they do not change results).
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Continue from the run directory's resume checkpoint.
    pub resume: bool,
    /// Where the model runs.
    pub device: Device,
    /// Stop after this many optimiser steps in total (counting those of earlier sessions),
    /// leaving a resume checkpoint: for a job with a time limit, which resumes in the next.
    pub stop_after_steps: Option<usize>,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            resume: false,
            device: Device::Cpu,
            stop_after_steps: None,
        }
    }
}

/// Metrics of one epoch (one line of the log).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch (0-based).
    pub epoch: usize,
    /// Optimiser steps after this epoch.
    pub step: usize,
    /// Mean training loss (the optimised objective).
    pub train_loss: f64,
    /// Training accuracy (train-mode predictions during the epoch).
    pub train_accuracy: f64,
    /// Training macro-F1.
    pub train_macro_f1: f64,
    /// Training ROC-AUC (absent with one class).
    pub train_auc: Option<f64>,
    /// Validation loss (class-weighted if training is).
    pub val_loss: f64,
    /// Validation accuracy (threshold 0.5).
    pub val_accuracy: f64,
    /// Validation macro-F1 (both classes) — the early-stopping metric.
    pub val_macro_f1: f64,
    /// Validation ROC-AUC.
    pub val_auc: Option<f64>,
    /// Training throughput of this epoch.
    pub images_per_second: f64,
    /// Whether this epoch is the best so far.
    pub best: bool,
}

/// What [`train`] did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainOutcome {
    /// The run directory.
    pub run_dir: PathBuf,
    /// Epoch records of the whole run.
    pub epochs: Vec<EpochRecord>,
    /// Best epoch.
    pub best_epoch: Option<usize>,
    /// Best validation macro-F1.
    pub best_val_macro_f1: Option<f64>,
    /// Why training stopped.
    pub stop_reason: String,
    /// Optimiser steps.
    pub steps: usize,
    /// Mean training throughput (images/s) over the whole run.
    pub images_per_second: f64,
    /// Whether the run had already finished before this call.
    pub reused: bool,
}

fn classification(labels: &[u32], scores: &[f32]) -> Result<(f64, f64, Option<f64>)> {
    if labels.is_empty() {
        return Ok((0.0, 0.0, None));
    }
    let preds = dfr_metrics::predict(scores, dfr_metrics::DEFAULT_THRESHOLD)?;
    let acc = dfr_metrics::accuracy(labels, &preds)?;
    let f1 = dfr_metrics::binary_macro_f1(labels, &preds)?;
    let auc = dfr_metrics::roc_auc(labels, scores).ok();
    Ok((acc, f1, auc))
}

/// The model configuration an experiment describes (architecture defaults with its
/// dropout, stochastic-depth and BatchNorm-momentum overrides).
pub fn model_config(cfg: &ExperimentConfig) -> Result<EfficientNetConfig> {
    let arch: dfr_model::Arch = cfg.model.arch.parse()?;
    let mut mc = EfficientNetConfig::new(arch, 2);
    if let Some(p) = cfg.model.dropout {
        mc.dropout = p;
    }
    if let Some(p) = cfg.model.stochastic_depth {
        mc.stochastic_depth_prob = p;
    }
    if let Some(m) = cfg.model.bn_momentum {
        mc.bn_momentum = m;
    }
    Ok(mc)
}

/// Builds the model an experiment describes (weights loaded, shallow part frozen if asked).
pub fn build_model(cfg: &ExperimentConfig, device: &Device) -> Result<EfficientNet> {
    let model = EfficientNet::new(model_config(cfg)?, device, cfg.run.seed)?;
    if !cfg.model.weights.is_empty() {
        let report = dfr_model::weights::load_weights(&model, &cfg.model.weights)?;
        tracing::info!(
            "loaded {} tensors from {} ({:?} naming{})",
            report.loaded,
            cfg.model.weights,
            report.naming,
            if report.head_initialised {
                "; new 2-class head initialised"
            } else {
                ""
            }
        );
    }
    if cfg.shallow_frozen() {
        model.set_stages_trainable(cfg.gradreg.stage, false);
    }
    Ok(model)
}

/// [`dfr_fs::write_atomic`] with this crate's error (naming the file).
fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    dfr_fs::write_atomic(path, bytes).map_err(|e| TrainError::io("writing", path, e))
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value).expect("serialisable");
    write_file(path, text.as_bytes())
}

fn write_logs(dir: &Path, records: &[EpochRecord]) -> Result<()> {
    let mut jsonl = String::new();
    // one row per epoch, the record's fields as columns (header from the field names)
    let mut csv = csv::Writer::from_writer(Vec::new());
    let csv_path = dir.join(files::METRICS_CSV);
    let csv_err = |e: &dyn std::fmt::Display| {
        TrainError::io("writing", &csv_path, std::io::Error::other(e.to_string()))
    };
    for r in records {
        jsonl.push_str(&serde_json::to_string(r).expect("serialisable"));
        jsonl.push('\n');
        csv.serialize(r).map_err(|e| csv_err(&e))?;
    }
    if records.is_empty() {
        csv.write_record(EPOCH_COLUMNS).map_err(|e| csv_err(&e))?;
    }
    let csv = csv.into_inner().map_err(|e| csv_err(&e))?;
    write_file(&dir.join(files::METRICS_JSONL), jsonl.as_bytes())?;
    write_file(&csv_path, &csv)?;
    Ok(())
}

/// Columns of `metrics.csv`: the fields of [`EpochRecord`].
const EPOCH_COLUMNS: [&str; 12] = [
    "epoch",
    "step",
    "train_loss",
    "train_accuracy",
    "train_macro_f1",
    "train_auc",
    "val_loss",
    "val_accuracy",
    "val_macro_f1",
    "val_auc",
    "images_per_second",
    "best",
];

/// The skipped files listed in a run's data report (none if it has no readable list).
fn skipped_files(path: &Path) -> Vec<dfr_data::bad::BadFile> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    v["bad_files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| {
            Some(dfr_data::bad::BadFile {
                path: b["path"].as_str()?.into(),
                error: b["error"].as_str()?.to_string(),
            })
        })
        .collect()
}

/// The epoch records of an earlier session, up to `before_epoch`; a line that does not parse
/// is an error naming the file and line (the log is written atomically, so it was edited).
fn read_records(dir: &Path, before_epoch: usize) -> Result<Vec<EpochRecord>> {
    let path = dir.join(files::METRICS_JSONL);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(TrainError::io("reading", &path, e)),
    };
    let mut out = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let r: EpochRecord = serde_json::from_str(line).map_err(|e| TrainError::Resume {
            path: path.clone(),
            message: format!(
                "line {}: not an epoch record ({e}); restore the file or start a new run name",
                i + 1
            ),
        })?;
        if r.epoch < before_epoch {
            out.push(r);
        }
    }
    Ok(out)
}

fn outcome(dir: &Path, st: &TrainState, records: Vec<EpochRecord>, reused: bool) -> TrainOutcome {
    TrainOutcome {
        run_dir: dir.to_path_buf(),
        best_epoch: st.best_epoch,
        best_val_macro_f1: st.best_metric,
        stop_reason: st.stop_reason.clone().unwrap_or_default(),
        steps: st.global_step,
        images_per_second: if records.is_empty() {
            0.0
        } else {
            records.iter().map(|r| r.images_per_second).sum::<f64>() / records.len() as f64
        },
        epochs: records,
        reused,
    }
}

/// Trains as `cfg` says, writing into `cfg.run_dir()`.
///
/// A fresh run refuses a directory that already holds a resume checkpoint (pass
/// `resume`); a resumed run continues exactly where the checkpoint left off (same
/// configuration up to [`state::RESUME_FREE_KEYS`], same data), and a finished run is
/// returned as is. The data is scanned and the model built (its weights loaded) before the
/// run directory is created, so bad input leaves nothing behind; while training, the
/// directory is locked ([`dfr_fs::DirLock`]): a second process writing the same run gets an
/// error naming the first one's pid.
pub fn train(cfg: &ExperimentConfig, opts: &TrainOptions) -> Result<TrainOutcome> {
    cfg.validate()?;
    let dir = cfg.run_dir();
    let config_toml = cfg.to_toml();
    let resume_path = dir.join(files::RESUME);
    let refuse_existing = || {
        Err(TrainError::Resume {
            path: dir.clone(),
            message: "the run directory already holds a run; pass --resume to continue it or \
                      choose another run.name"
                .into(),
        })
    };
    if resume_path.exists() && !opts.resume {
        return refuse_existing();
    }
    let device = opts.device.clone();

    // Data: scanned and checked before anything is written.
    let ds = cfg.data.scan()?;
    let train_samples = ds.require_split(Split::Train)?;
    let val_samples = ds.require_split(Split::Validation)?;
    let cw = ds.class_weights()?;
    if cw.n_real == 0 || cw.n_fake == 0 {
        tracing::warn!(
            "the train split of {} holds only one class (real {}, fake {}): the detector \
             cannot learn to separate them",
            cfg.data.root.display(),
            cw.n_real,
            cw.n_fake
        );
    }
    let identity = state::RunIdentity {
        config_toml: config_toml.clone(),
        data_fingerprint: state::data_fingerprint(
            &cfg.data.root,
            &train_samples.iter().chain(&val_samples).collect::<Vec<_>>(),
        ),
    };
    let class_weights = if cfg.train.class_weighted {
        Some(Tensor::new(&cw.as_f32(), &device)?)
    } else {
        None
    };
    let t = &cfg.train;
    let train_loader = Loader::new(
        train_samples,
        Split::Train,
        Transform::Train(cfg.augment.clone()),
        LoaderConfig {
            batch_size: t.batch_size,
            shuffle: true,
            drop_last: false,
            seed: cfg.run.seed,
            threads: t.threads,
            prefetch: t.prefetch,
        },
        cfg.data.max_bad_fraction,
    )?;
    let val_loader = Loader::new(
        val_samples,
        Split::Validation,
        Transform::Eval(EvalTransform {
            size: cfg.model.image_size,
        }),
        LoaderConfig {
            batch_size: t.eval_batch_size,
            shuffle: false,
            drop_last: false,
            seed: cfg.run.seed,
            threads: t.threads,
            prefetch: 2,
        },
        cfg.data.max_bad_fraction,
    )?;

    // Validation images are read at every epoch's end; check their headers now, so that an
    // unreadable one fails (beyond data.max_bad_fraction) before training, not after epoch 1.
    for (i, s) in val_loader.samples().iter().enumerate() {
        if let Err(e) = dfr_data::decode::check_header(&s.path) {
            val_loader
                .bad_files()
                .record(i, s.path.clone(), e.to_string());
        }
    }
    val_loader.bad_files().check(
        Split::Validation.name(),
        val_loader.samples().len(),
        cfg.data.max_bad_fraction,
    )?;

    // Model (weights loaded) before the run directory exists.
    let model = build_model(cfg, &device)?;

    // The run directory: locked for this process, stale temporary files of killed writes
    // removed, configuration and data report written.
    let _lock = dfr_fs::DirLock::acquire(&dir).map_err(|e| TrainError::io("locking", &dir, e))?;
    if resume_path.exists() && !opts.resume {
        return refuse_existing(); // another process created it meanwhile
    }
    for f in
        dfr_fs::remove_stale_temp_files(&dir).map_err(|e| TrainError::io("cleaning", &dir, e))?
    {
        tracing::info!("removed {} (left by a write that was killed)", f.display());
    }
    write_file(&dir.join(files::CONFIG), config_toml.as_bytes())?;
    let data_report = dfr_data::inspect::inspect(&ds, false)?;
    // files skipped by earlier sessions of a resumed run: this session may never read them
    let earlier_bad = if opts.resume {
        skipped_files(&dir.join(files::DATA_REPORT))
    } else {
        Vec::new()
    };
    let write_data_report = || -> Result<()> {
        let mut r = data_report.clone();
        let mut bad = earlier_bad.clone();
        for b in train_loader
            .bad_files()
            .list()
            .into_iter()
            .chain(val_loader.bad_files().list())
        {
            if !bad.iter().any(|e| e.path == b.path) {
                bad.push(b);
            }
        }
        bad.sort_by(|a, b| a.path.cmp(&b.path));
        r.bad_files = Some(bad);
        write_json(&dir.join(files::DATA_REPORT), &r)
    };
    write_data_report()?;

    let mut adam = Adam::for_trainable(
        &model,
        AdamParams {
            lr: t.lr,
            beta1: t.beta1,
            beta2: t.beta2,
            eps: t.eps,
            weight_decay: t.weight_decay,
        },
    )?;
    let mut st = if opts.resume && resume_path.exists() {
        let st = state::load(&resume_path, &model, &mut adam, &identity)?;
        tracing::info!(
            "resuming {} at epoch {}, batch {} (step {})",
            dir.display(),
            st.epoch,
            st.batch_in_epoch,
            st.global_step
        );
        st
    } else {
        TrainState::default()
    };
    let mut records = read_records(&dir, st.epoch)?;
    if st.finished {
        return Ok(outcome(&dir, &st, records, true));
    }
    write_logs(&dir, &records)?;
    let model_meta = crate::checkpoint::TrainedCheckpoint::metadata(cfg)?;

    let steps_per_epoch = {
        let n = train_loader.num_batches();
        if t.max_steps_per_epoch > 0 {
            n.min(t.max_steps_per_epoch)
        } else {
            n
        }
    };
    let stop_now = |st: &TrainState| opts.stop_after_steps.is_some_and(|n| st.global_step >= n);
    let stopped = |dir: &Path, st: &TrainState, records: Vec<EpochRecord>| {
        let mut out = outcome(dir, st, records, false);
        out.stop_reason = format!(
            "stopped after {} steps (TrainOptions::stop_after_steps); resume to continue",
            st.global_step
        );
        out
    };
    let strategy_name = match t.strategy {
        Strategy::Baseline => "baseline",
        Strategy::Gradreg => "gradreg",
    };
    while st.epoch < t.epochs {
        let epoch = st.epoch;
        let bar = if t.progress {
            ProgressBar::new(steps_per_epoch as u64)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ETA {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("{strategy_name} epoch {}/{}", epoch + 1, t.epochs));
        bar.set_position(st.batch_in_epoch as u64);
        let started = Instant::now();
        let mut images_this_session = 0usize;
        for batch in train_loader.epoch(epoch as u64, st.batch_in_epoch) {
            if st.batch_in_epoch >= steps_per_epoch {
                break;
            }
            let b = batch?;
            if b.position >= steps_per_epoch {
                break;
            }
            let position = b.position;
            let x = Tensor::from_vec(b.images, b.shape.to_vec(), &device)?;
            let y = labels_tensor(&b.labels, &device)?;
            let seed = dfr_data::rng::key(&[cfg.run.seed, epoch as u64, position as u64]);
            let (logits, loss, grads) = match t.strategy {
                Strategy::Gradreg => {
                    let out = pim_step(&model, &x, &y, class_weights.as_ref(), &cfg.gradreg, seed)?;
                    (out.logits_clean, out.loss_total, out.grads)
                }
                Strategy::Baseline if cfg.shallow_frozen() => frozen_shallow_step(
                    &model,
                    &x,
                    &y,
                    class_weights.as_ref(),
                    cfg.gradreg.stage,
                    seed,
                )?,
                Strategy::Baseline => baseline_step(&model, &x, &y, class_weights.as_ref(), seed)?,
            };
            if !loss.is_finite() {
                return Err(TrainError::NonFinite {
                    epoch,
                    step: st.global_step,
                    value: loss,
                });
            }
            adam.step(&grads)?;
            let n = b.labels.len();
            let probs = candle_nn::ops::softmax_last_dim(&logits.detach())?.to_vec2::<f32>()?;
            st.scores.extend(probs.iter().map(|p| p[1]));
            st.labels.extend(&b.labels);
            st.loss_sum += loss as f64 * n as f64;
            st.seen += n;
            // positions, not delivered batches: a batch of unreadable images is never
            // delivered, and resuming skips by position
            st.batch_in_epoch = position + 1;
            st.global_step += 1;
            images_this_session += n;
            let el = started.elapsed().as_secs_f64();
            bar.set_position(st.batch_in_epoch as u64);
            bar.set_message(format!(
                "loss {:.4} acc {:.3} {:.1} img/s",
                st.loss_sum / st.seen as f64,
                dfr_metrics::accuracy(
                    &st.labels,
                    &dfr_metrics::predict(&st.scores, 0.5).unwrap_or_default()
                )
                .unwrap_or(0.0),
                images_this_session as f64 / el.max(1e-9)
            ));
            if t.checkpoint_every > 0
                && st.global_step.is_multiple_of(t.checkpoint_every)
                && st.batch_in_epoch < steps_per_epoch
            {
                st.seconds += el;
                state::save(&resume_path, &model, &adam, &st, &identity)?;
                st.seconds -= el;
            }
            if stop_now(&st) && st.batch_in_epoch < steps_per_epoch {
                st.seconds += el;
                state::save(&resume_path, &model, &adam, &st, &identity)?;
                write_data_report()?;
                bar.finish_and_clear();
                return Ok(stopped(&dir, &st, records));
            }
        }
        let train_secs = started.elapsed().as_secs_f64();
        st.seconds += train_secs;
        bar.finish_and_clear();

        // End of epoch: metrics, checkpoints, early stopping.
        let (train_acc, train_f1, train_auc) = classification(&st.labels, &st.scores)?;
        let val: Scores = score(&model, &val_loader, &device, class_weights.as_ref())?;
        let (val_acc, val_f1, val_auc) = classification(&val.labels, &val.fake_prob)?;
        let improved = st.best_metric.is_none_or(|b| val_f1 > b);
        if improved {
            st.best_metric = Some(val_f1);
            st.best_epoch = Some(epoch);
            st.bad_epochs = 0;
            dfr_model::checkpoint::save_checkpoint(
                &model,
                &dir.join(files::BEST),
                Some(&model_meta),
            )?;
        } else {
            st.bad_epochs += 1;
        }
        dfr_model::checkpoint::save_checkpoint(&model, &dir.join(files::LAST), Some(&model_meta))?;
        let rec = EpochRecord {
            epoch,
            step: st.global_step,
            train_loss: if st.seen > 0 {
                st.loss_sum / st.seen as f64
            } else {
                0.0
            },
            train_accuracy: train_acc,
            train_macro_f1: train_f1,
            train_auc,
            val_loss: val.loss,
            val_accuracy: val_acc,
            val_macro_f1: val_f1,
            val_auc,
            images_per_second: images_this_session as f64 / train_secs.max(1e-9),
            best: improved,
        };
        tracing::info!(
            "{strategy_name} epoch {}: loss {:.4}, train acc {:.3}, val acc {:.3}, val macro-F1 {:.3}, val AUC {}{}",
            epoch + 1,
            rec.train_loss,
            rec.train_accuracy,
            rec.val_accuracy,
            rec.val_macro_f1,
            rec.val_auc.map(|a| format!("{a:.3}")).unwrap_or("n/a".into()),
            if improved { " (best)" } else { "" }
        );
        records.push(rec);
        write_logs(&dir, &records)?;
        st.epoch += 1;
        st.batch_in_epoch = 0;
        st.loss_sum = 0.0;
        st.seen = 0;
        st.scores.clear();
        st.labels.clear();
        if t.patience > 0 && st.bad_epochs >= t.patience {
            st.finished = true;
            st.stop_reason = Some(format!(
                "early stopping: no better validation macro-F1 for {} epochs",
                t.patience
            ));
        } else if st.epoch >= t.epochs {
            st.finished = true;
            st.stop_reason = Some(format!("completed {} epochs", t.epochs));
        }
        write_data_report()?;
        state::save(&resume_path, &model, &adam, &st, &identity)?;
        if st.finished {
            break;
        }
        if stop_now(&st) {
            return Ok(stopped(&dir, &st, records));
        }
    }
    let out = outcome(&dir, &st, records, false);
    write_json(&dir.join(files::SUMMARY), &out)?;
    Ok(out)
}
