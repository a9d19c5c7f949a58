//! Grad-CAM consistency of clean vs adversarial maps, localisation of the fake-class
//! Grad-CAM against the ground-truth manipulation masks, and the gallery.

use crate::config::StudyConfig;
use crate::error::Result;
use candle_core::{Device, Tensor};
use dfr_attacks::{run_attack, AttackKind, AttackParams, Goal};
use dfr_data::mask::{load_mask, mask_source, MaskSource};
use dfr_data::{DataConfig, EvalTransform, Label, Sample};
use dfr_explain::{
    consistency, gradcam, localisation, overlay_tensor, ConsistencyOptions, ConsistencyReport,
    ConsistencySummary, LocalisationOptions, LocalisationReport, LocalisationSummary, Target,
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

/// What the Grad-CAM evaluation of one run keeps.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CamEvaluation {
    /// Clean-vs-adversarial consistency per attack.
    pub consistency: Vec<CamSummary>,
    /// The fake-class Grad-CAM against the manipulation masks; `None` when no chosen fake
    /// image has a mask (a layout without masks).
    pub localisation: Option<Localisation>,
}

/// Localisation metrics of one set of maps, over the fakes, the reals and per source.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MapsLocalisation {
    /// Over the fake images with a mask (the question: does the map find the manipulation).
    pub fakes: Option<LocalisationSummary>,
    /// Over the real images (all-zero masks: the best map is empty).
    pub reals: Option<LocalisationSummary>,
    /// Per source, in the order of the chosen images.
    pub per_source: Vec<SourceLocalisation>,
}

/// [`LocalisationSummary`] of one source.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceLocalisation {
    /// Source (method) name.
    pub source: String,
    /// Its label.
    pub label: Label,
    /// Means over its images.
    #[serde(flatten)]
    pub summary: LocalisationSummary,
}

/// Localisation of the maps of adversarial images (the attack at its largest ε).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttackLocalisation {
    /// Attack.
    pub attack: AttackKind,
    /// ε.
    pub eps: f64,
    /// The metrics.
    #[serde(flatten)]
    pub maps: MapsLocalisation,
}

/// The fake-class Grad-CAM of one run against the ground-truth manipulation masks
/// (Dang et al.'s IINC, PBCA, top-20 % IoU; [`dfr_explain::localisation`]), clean and
/// under each attack. The fake class is explained for every image, so that a real
/// image's best map is empty, as its mask is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Localisation {
    /// Chosen images with a mask (reals count: their mask is all zero).
    pub images: usize,
    /// Chosen fake images without a mask file, left out.
    pub missing_masks: usize,
    /// Mask files that could not be used (undecodable, or of another size than their
    /// image): `path: error`, left out like bad images.
    pub bad_masks: Vec<String>,
    /// Clean images.
    pub clean: MapsLocalisation,
    /// Adversarial images, per attack.
    pub adversarial: Vec<AttackLocalisation>,
}

/// The masks of `samples` at `size` px: `None` for a fake without a usable mask.
fn masks_of(
    data: &DataConfig,
    samples: &[Sample],
    size: u32,
) -> (Vec<Option<Vec<f32>>>, usize, Vec<String>) {
    let (mut missing, mut bad) = (0, Vec::new());
    let n = (size as usize) * (size as usize);
    let masks = samples
        .iter()
        .map(|s| match mask_source(data, s) {
            MaskSource::Real => Some(vec![0.0; n]),
            MaskSource::Missing => {
                missing += 1;
                None
            }
            MaskSource::File(p) => match load_mask(&p, Some(&s.path), size) {
                Ok(m) => Some(m),
                Err(e) => {
                    tracing::warn!("[cam] mask left out: {e}");
                    bad.push(format!("{}: {e}", p.display()));
                    None
                }
            },
        })
        .collect();
    (masks, missing, bad)
}

fn summarise(samples: &[Sample], reports: &[Option<LocalisationReport>]) -> MapsLocalisation {
    let of = |keep: &dyn Fn(&Sample) -> bool| -> Vec<LocalisationReport> {
        samples
            .iter()
            .zip(reports)
            .filter(|(s, _)| keep(s))
            .filter_map(|(_, r)| *r)
            .collect()
    };
    let mut sources: Vec<(String, Label)> = Vec::new();
    for s in samples {
        if !sources.iter().any(|(m, _)| *m == s.method) {
            sources.push((s.method.clone(), s.label));
        }
    }
    MapsLocalisation {
        fakes: LocalisationSummary::from_reports(&of(&|s| s.label == Label::Fake)),
        reals: LocalisationSummary::from_reports(&of(&|s| s.label == Label::Real)),
        per_source: sources
            .into_iter()
            .filter_map(|(source, label)| {
                let summary = LocalisationSummary::from_reports(&of(&|s| s.method == source))?;
                Some(SourceLocalisation {
                    source,
                    label,
                    summary,
                })
            })
            .collect(),
    }
}

/// Localisation of the fake-class maps of `x` against `masks`.
fn localise(
    model: &EfficientNet,
    x: &Tensor,
    stage: usize,
    samples: &[Sample],
    masks: &[Option<Vec<f32>>],
) -> Result<MapsLocalisation> {
    let cams = gradcam(model, x, stage, &Target::Class(1))?;
    let opts = LocalisationOptions::default();
    let reports: Vec<Option<LocalisationReport>> = masks
        .iter()
        .zip(cams.cam.iter())
        .map(|(m, map)| match m {
            Some(m) => localisation(map, m, &opts).map(Some),
            None => Ok(None),
        })
        .collect::<Result<_, _>>()?;
    Ok(summarise(samples, &reports))
}

/// Mean consistency per attack for one model, and the localisation of its maps against
/// the masks of `data` (where it has any).
pub fn evaluate_cams(
    model: &EfficientNet,
    samples: &[Sample],
    data: &DataConfig,
    cfg: &StudyConfig,
    size: u32,
    seed: u64,
) -> Result<CamEvaluation> {
    let chosen = pick(samples, cfg.cam.images);
    let stage = cfg.cam_stage()?;
    let (x, labels) = batch(&chosen, size, model.device())?;
    let (masks, missing_masks, bad_masks) = masks_of(data, &chosen, size);
    let has_fake_mask = chosen
        .iter()
        .zip(&masks)
        .any(|(s, m)| s.label == Label::Fake && m.is_some());
    let mut localisation = has_fake_mask
        .then(|| -> Result<Localisation> {
            Ok(Localisation {
                images: masks.iter().filter(|m| m.is_some()).count(),
                missing_masks,
                bad_masks: bad_masks.clone(),
                clean: localise(model, &x, stage, &chosen, &masks)?,
                adversarial: Vec::new(),
            })
        })
        .transpose()?;
    let opts = ConsistencyOptions::default();
    let s = size as usize;
    let mut out = Vec::new();
    for kind in [AttackKind::Fgsm, AttackKind::Pgd, AttackKind::MiFgsm] {
        let Some(params) = attack_params(cfg, kind, seed) else {
            continue;
        };
        let (clean, adv) = maps(model, &x, &labels, Some(&params), stage)?;
        let (adv_x, adv) = adv.expect("attacked");
        let reports: Vec<ConsistencyReport> = clean
            .iter()
            .zip(&adv)
            .map(|(a, b)| consistency(a, b, s, s, &opts))
            .collect::<Result<_, _>>()?;
        if let Some(l) = localisation.as_mut() {
            l.adversarial.push(AttackLocalisation {
                attack: kind,
                eps: params.eps as f64,
                maps: localise(model, &adv_x, stage, &chosen, &masks)?,
            });
        }
        let Some(summary) = ConsistencySummary::from_reports(&reports) else {
            continue; // no images
        };
        out.push(CamSummary {
            attack: kind,
            eps: params.eps as f64,
            summary,
        });
    }
    Ok(CamEvaluation {
        consistency: out,
        localisation,
    })
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
