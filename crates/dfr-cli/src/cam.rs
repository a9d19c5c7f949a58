//! `dfr cam`: Grad-CAM overlays of clean and adversarial images, and CAM consistency.

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use clap::Args;
use dfr_attacks::{run_attack, AttackKind, AttackParams, Goal};
use dfr_data::decode::decode_rgb8;
use dfr_data::EvalTransform;
use dfr_explain::{consistency, gradcam, save_overlay, ConsistencyOptions, Target};
use serde::Serialize;
use std::path::PathBuf;

/// Options of `dfr cam`.
#[derive(Args)]
pub struct CamArgs {
    /// Detector checkpoint.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Images to explain.
    #[arg(long, num_args = 1.., required = true)]
    pub images: Vec<PathBuf>,
    /// Also explain adversarial versions: fgsm, pgd, mifgsm or apgd.
    #[arg(long)]
    pub attack: Option<String>,
    /// ε of the attack.
    #[arg(long, default_value_t = 0.001)]
    pub eps: f64,
    /// Attack iterations.
    #[arg(long, default_value_t = 5)]
    pub steps: usize,
    /// Model stage whose activation is explained (8: the last, as the study).
    #[arg(long, default_value_t = 8)]
    pub stage: usize,
    /// Overlay weight of the image (pytorch-grad-cam's image_weight).
    #[arg(long, default_value_t = 0.5)]
    pub image_weight: f32,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Input size (default: the checkpoint's training size).
    #[arg(long)]
    pub image_size: Option<u32>,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

/// One entry of `cam.json`: an explained image, or one that could not be read.
#[derive(Serialize)]
#[serde(untagged)]
enum CamEntry {
    Explained(Box<CamRecord>),
    Skipped { image: String, error: String },
}

#[derive(Serialize)]
struct CamRecord {
    image: String,
    predicted: &'static str,
    fake_probability: f32,
    clean_overlay: String,
    adversarial_overlay: Option<String>,
    adversarial_predicted: Option<&'static str>,
    consistency: Option<dfr_explain::ConsistencyReport>,
}

fn class_name(c: u32) -> &'static str {
    if c == 1 {
        "fake"
    } else {
        "real"
    }
}

/// Runs Grad-CAM and writes overlays and `cam.json`.
pub fn run(a: CamArgs) -> Result<()> {
    let device: Device = crate::device::parse(&a.device)?;
    let model = dfr_model::checkpoint::load_detector(&a.checkpoint, &device, None)
        .with_context(|| format!("loading {}", a.checkpoint.display()))?;
    let size = a
        .image_size
        .or_else(|| crate::attack::checkpoint_image_size(&a.checkpoint))
        .unwrap_or(224);
    dfr_model::config::check_image_size(size).map_err(|m| anyhow::anyhow!("--image-size {m}"))?;
    let tf = EvalTransform { size };
    let attack = a
        .attack
        .as_deref()
        .map(|s| s.parse::<AttackKind>())
        .transpose()
        .map_err(|e| anyhow::anyhow!("--attack: {e}"))?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let opts = ConsistencyOptions::default();
    let mut entries = Vec::new();
    let s = size as usize;
    for (index, path) in a.images.iter().enumerate() {
        let rgb = match decode_rgb8(path) {
            Ok(rgb) => rgb,
            Err(e) => {
                tracing::warn!("skipping {}: {e}", path.display());
                entries.push(CamEntry::Skipped {
                    image: path.display().to_string(),
                    error: e.to_string(),
                });
                continue;
            }
        };
        let x = Tensor::from_vec(tf.apply(&rgb)?.data, (1, 3, s, s), &device)?;
        let clean = gradcam(&model, &x, a.stage, &Target::Predicted)?;
        let target = clean.targets.clone();
        let probs = candle_nn_softmax(&clean.logits)?;
        // the input's position keeps names unique (two folders may hold `0001.png`)
        let stem = format!(
            "{index:04}_{}",
            path.file_stem()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "image".into())
        );
        let clean_path = a.out.join(format!("{stem}_clean.png"));
        let map = clean.cam.map(0).expect("one map").to_vec();
        save_overlay(&clean_path, &x.squeeze(0)?, &map, a.image_weight)?;
        let mut rec = CamRecord {
            image: path.display().to_string(),
            predicted: class_name(target[0]),
            fake_probability: probs[1],
            clean_overlay: clean_path.display().to_string(),
            adversarial_overlay: None,
            adversarial_predicted: None,
            consistency: None,
        };
        if let Some(kind) = attack {
            let params = AttackParams {
                kind,
                eps: a.eps as f32,
                steps: a.steps,
                ..AttackParams::default()
            };
            let adv = run_attack(&model, &params, &x, &target, Goal::Untargeted, None)?;
            // Explain the same class as the clean image, so the maps are comparable.
            let out = gradcam(
                &model,
                &adv.adversarial,
                a.stage,
                &Target::Label(target.clone()),
            )?;
            let adv_map = out.cam.map(0).expect("one map").to_vec();
            let adv_path = a.out.join(format!("{stem}_{}_{}.png", kind.name(), a.eps));
            save_overlay(
                &adv_path,
                &adv.adversarial.squeeze(0)?,
                &adv_map,
                a.image_weight,
            )?;
            let adv_probs = candle_nn_softmax(&out.logits)?;
            rec.adversarial_overlay = Some(adv_path.display().to_string());
            rec.adversarial_predicted = Some(class_name((adv_probs[1] >= 0.5) as u32));
            rec.consistency = Some(consistency(&map, &adv_map, s, s, &opts)?);
        }
        entries.push(CamEntry::Explained(Box::new(rec)));
    }
    println!(
        "{:<40} {:>6} {:>7} {:>8} {:>8} {:>8} {:>8}",
        "image", "pred", "p_fake", "adv", "NC↓", "pearson↑", "SSIM↑"
    );
    for e in &entries {
        let r = match e {
            CamEntry::Explained(r) => r,
            CamEntry::Skipped { image, error } => {
                println!("{image:<40} skipped: {error}");
                continue;
            }
        };
        let c = r.consistency.as_ref();
        println!(
            "{:<40} {:>6} {:>7.3} {:>8} {:>8} {:>8} {:>8}",
            r.image,
            r.predicted,
            r.fake_probability,
            r.adversarial_predicted.unwrap_or("-"),
            c.map(|c| format!("{:.3}", c.non_containment))
                .unwrap_or("-".into()),
            c.and_then(|c| c.pearson)
                .map(|p| format!("{p:.3}"))
                .unwrap_or("-".into()),
            c.map(|c| format!("{:.3}", c.ssim)).unwrap_or("-".into()),
        );
    }
    let json = serde_json::to_string_pretty(&entries)?;
    let cam_json = a.out.join("cam.json");
    dfr_fs::write_atomic(&cam_json, json.as_bytes())
        .with_context(|| format!("writing {}", cam_json.display()))?;
    println!("overlays and cam.json in {}", a.out.display());
    let skipped = entries
        .iter()
        .filter(|e| matches!(e, CamEntry::Skipped { .. }))
        .count();
    if skipped == entries.len() {
        anyhow::bail!("none of the {skipped} images could be read (see cam.json)");
    }
    Ok(())
}

fn candle_nn_softmax(logits: &Tensor) -> Result<Vec<f32>> {
    let l = logits.squeeze(0)?.to_vec1::<f32>()?;
    let m = l.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = l.iter().map(|v| (v - m).exp()).collect();
    let s: f32 = e.iter().sum();
    Ok(e.into_iter().map(|v| v / s).collect())
}
