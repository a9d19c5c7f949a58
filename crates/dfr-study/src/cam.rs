//! Grad-CAM consistency of clean vs adversarial maps, and the gallery.

use crate::config::StudyConfig;
use crate::error::Result;
use candle_core::{Device, Tensor};
use dfr_attacks::{run_attack, AttackKind, AttackParams, Goal};
use dfr_data::{EvalTransform, Sample};
use dfr_explain::{
    consistency, gradcam, overlay_tensor, ConsistencyOptions, ConsistencyReport,
    ConsistencySummary, Target,
};
use dfr_model::EfficientNet;
use dfr_report::{GalleryRow, GalleryStyle, Tile};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Mean consistency of one model under one attack (means over the pairs where at least one
/// map is non-empty; empty maps counted, see [`ConsistencySummary`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CamSummary {
    /// Attack.
    pub attack: AttackKind,
    /// ε (the attack's largest).
    pub eps: f64,
    /// Means and empty-map counts over the images.
    #[serde(flatten)]
    pub summary: ConsistencySummary,
}

/// Evenly spaced samples (so every source is represented).
pub fn pick(samples: &[Sample], n: usize) -> Vec<Sample> {
    let n = n.min(samples.len()).max(1);
    (0..n)
        .map(|i| samples[i * samples.len() / n].clone())
        .collect()
}

fn batch(samples: &[Sample], size: u32, device: &Device) -> Result<(Tensor, Vec<u32>)> {
    let tf = EvalTransform { size };
    let mut data = Vec::new();
    let mut labels = Vec::new();
    for s in samples {
        let img = tf.apply(&dfr_data::decode::decode_rgb8(&s.path)?)?;
        data.extend(img.data);
        labels.push(s.label.index() as u32);
    }
    let s = size as usize;
    Ok((
        Tensor::from_vec(data, (samples.len(), 3, s, s), device)?,
        labels,
    ))
}

fn attack_params(cfg: &StudyConfig, kind: AttackKind, seed: u64) -> Option<AttackParams> {
    let grid = cfg.attacks.grids().into_iter().find(|(k, _)| *k == kind)?.1;
    let eps = grid.iter().cloned().fold(f64::NAN, f64::max);
    (eps > 0.0).then(|| AttackParams {
        kind,
        eps: eps as f32,
        steps: cfg.attacks.steps,
        alpha_ratio: cfg.attacks.alpha_ratio as f32,
        seed,
        ..AttackParams::default()
    })
}

/// One CAM per image, flattened.
type Maps = Vec<Vec<f32>>;

/// Clean and adversarial maps of `images` (the adversarial map explains the clean prediction).
fn maps(
    model: &EfficientNet,
    x: &Tensor,
    labels: &[u32],
    params: Option<&AttackParams>,
    stage: usize,
) -> Result<(Maps, Option<(Tensor, Maps)>)> {
    let clean = gradcam(model, x, stage, &Target::Predicted)?;
    let clean_maps: Vec<Vec<f32>> = clean.cam.iter().map(|m| m.to_vec()).collect();
    let Some(p) = params else {
        return Ok((clean_maps, None));
    };
    let adv = run_attack(model, p, x, labels, Goal::Untargeted, None)?.adversarial;
    let out = gradcam(model, &adv, stage, &Target::Label(clean.targets.clone()))?;
    Ok((
        clean_maps,
        Some((adv, out.cam.iter().map(|m| m.to_vec()).collect())),
    ))
}

/// Mean consistency per attack for one model.
pub fn consistency_for_model(
    model: &EfficientNet,
    samples: &[Sample],
    cfg: &StudyConfig,
    size: u32,
    seed: u64,
) -> Result<Vec<CamSummary>> {
    let chosen = pick(samples, cfg.cam.images);
    let stage = cfg.cam_stage()?;
    let (x, labels) = batch(&chosen, size, model.device())?;
    let opts = ConsistencyOptions::default();
    let s = size as usize;
    let mut out = Vec::new();
    for kind in [AttackKind::Fgsm, AttackKind::Pgd, AttackKind::MiFgsm] {
        let Some(params) = attack_params(cfg, kind, seed) else {
            continue;
        };
        let (clean, adv) = maps(model, &x, &labels, Some(&params), stage)?;
        let (_, adv) = adv.expect("attacked");
        let reports: Vec<ConsistencyReport> = clean
            .iter()
            .zip(&adv)
            .map(|(a, b)| consistency(a, b, s, s, &opts))
            .collect::<Result<_, _>>()?;
        let Some(summary) = ConsistencySummary::from_reports(&reports) else {
            continue; // no images
        };
        out.push(CamSummary {
            attack: kind,
            eps: params.eps as f64,
            summary,
        });
    }
    Ok(out)
}

/// Gallery: per image, the image and clean/PGD overlays of each `(name, model)`.
pub fn gallery(
    cfg: &StudyConfig,
    samples: &[Sample],
    models: &[(String, EfficientNet)],
    size: u32,
    out: &Path,
) -> Result<Option<PathBuf>> {
    let Some((_, first)) = models.first() else {
        return Ok(None);
    };
    let chosen = pick(samples, cfg.cam.images.min(4));
    let stage = cfg.cam_stage()?;
    let (x, labels) = batch(&chosen, size, first.device())?;
    let params = attack_params(cfg, AttackKind::Pgd, 0);
    let mut rows: Vec<GalleryRow> = chosen
        .iter()
        .enumerate()
        .map(|(i, s)| -> Result<GalleryRow> {
            Ok(GalleryRow {
                label: format!("{} ({})", s.method, s.label),
                tiles: vec![Tile {
                    caption: "image".into(),
                    image: overlay_tensor(
                        &x.get(i)?.to_device(&Device::Cpu)?,
                        &vec![0.0; (size * size) as usize],
                        1.0,
                    )?,
                }],
            })
        })
        .collect::<Result<_>>()?;
    for (name, model) in models {
        let (clean, adv) = maps(model, &x, &labels, params.as_ref(), stage)?;
        for (i, row) in rows.iter_mut().enumerate() {
            row.tiles.push(Tile {
                caption: format!("{name} clean"),
                image: overlay_tensor(&x.get(i)?.to_device(&Device::Cpu)?, &clean[i], 0.5)?,
            });
            if let (Some((adv_x, adv_maps)), Some(p)) = (&adv, &params) {
                row.tiles.push(Tile {
                    caption: format!("{name} PGD {}", p.eps),
                    image: overlay_tensor(
                        &adv_x.get(i)?.to_device(&Device::Cpu)?,
                        &adv_maps[i],
                        0.5,
                    )?,
                });
            }
        }
    }
    let path = out.join("figures").join("cam_gallery.png");
    dfr_report::gallery(
        &path,
        "Grad-CAM, clean vs adversarial",
        &rows,
        &GalleryStyle::default(),
    )?;
    Ok(Some(path))
}
