//! `cargo xtask bench augment`: what the training augmentation hands the model, ours against
//! torchvision's pipeline on the same source images (`xtask/bench/pt_augment.py`).
//!
//! Over `draws` epochs of every source image: per-channel mean (with its standard error) and
//! standard deviation of the augmented pixels, their histogram, the fraction of fill pixels,
//! the mean squared difference of horizontally adjacent pixels (how much pixel-level detail —
//! the fake traces — survives), the distribution of every drawn parameter, and whether draws
//! are independent between two samples of one epoch and one sample across epochs.

use anyhow::{bail, Context, Result};
use dfr_data::augment::color::ColorOp;
use dfr_data::augment::Interpolation;
use dfr_data::rng::{domain, stream};
use dfr_data::{Loader, LoaderConfig, Sample, Split, TrainAugment, Transform};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

const BINS: usize = 16;

fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    sab / (saa * sbb).sqrt().max(1e-300)
}

fn mean_sd(v: &[f64]) -> Result<Value> {
    let (m, sd) = dfr_metrics::mean_sd(v)?;
    Ok(json!({ "mean": m, "sd": sd, "n": v.len() }))
}

/// Our statistics, in the JSON shape `pt_augment.py` writes.
fn ours(samples: &[Sample], aug: &TrainAugment, draws: u64) -> Result<Value> {
    let loader = Loader::new(
        samples.to_vec(),
        Split::Train,
        Transform::Train(aug.clone()),
        LoaderConfig {
            batch_size: 1,
            seed: 0,
            threads: 1,
            ..LoaderConfig::default()
        },
        0.0,
    )?;
    let sources: Vec<_> = samples
        .iter()
        .map(|s| dfr_data::decode::decode_rgb8(&s.path))
        .collect::<dfr_data::Result<_>>()?;
    let n_img = sources.len();
    let mut chan_means: [Vec<f64>; 3] = Default::default();
    let mut sq = [0f64; 3];
    let mut hist = [[0f64; BINS]; 3];
    let (mut fill, mut pixels) = (0usize, 0usize);
    let mut hf = Vec::new();
    let mut params: std::collections::BTreeMap<&str, Vec<f64>> = Default::default();
    let mut angles = vec![vec![0f64; n_img]; draws as usize];
    for e in 0..draws {
        for (i, src) in sources.iter().enumerate() {
            // The loader's own stream for (seed, epoch, index), so the parameters recorded
            // here are the ones behind what it hands the model (checked below).
            let mut rng = stream(&[domain::AUGMENT, 0, e, i as u64]);
            let p = aug.sample_params(&mut rng, src.width, src.height);
            let img = aug.apply_params(src, &p)?;
            if e == 0 && img != loader.load_one(e, i)? {
                bail!("bench augment: recorded parameters do not reproduce the loader's image");
            }
            let n = img.plane_len();
            for c in 0..3 {
                let plane = img.plane(c);
                chan_means[c].push(plane.iter().map(|&v| v as f64).sum::<f64>() / n as f64);
                sq[c] += plane.iter().map(|&v| (v as f64).powi(2)).sum::<f64>();
                for &v in plane {
                    let b = ((v.clamp(0.0, 1.0) * BINS as f32) as usize).min(BINS - 1);
                    hist[c][b] += 1.0;
                }
            }
            fill += (0..n)
                .filter(|&k| (0..3).all(|c| img.data[c * n + k] == 0.0))
                .count();
            pixels += n;
            let (w, h) = (img.width, img.height);
            let mut energy = 0.0;
            for c in 0..3 {
                let plane = img.plane(c);
                for y in 0..h {
                    for x in 0..w - 1 {
                        energy += (plane[y * w + x + 1] as f64 - plane[y * w + x] as f64).powi(2);
                    }
                }
            }
            hf.push(energy / (3 * h * (w - 1)) as f64);
            let area = (p.crop.width * p.crop.height) as f64 / (src.width * src.height) as f64;
            params.entry("area").or_default().push(area);
            params
                .entry("ratio")
                .or_default()
                .push(p.crop.width as f64 / p.crop.height as f64);
            params
                .entry("flip")
                .or_default()
                .push(if p.flip { 1.0 } else { 0.0 });
            for op in &p.color {
                let (k, v) = match *op {
                    ColorOp::Brightness(f) => ("brightness", f),
                    ColorOp::Contrast(f) => ("contrast", f),
                    ColorOp::Saturation(f) => ("saturation", f),
                    ColorOp::Hue(f) => ("hue", f),
                };
                params.entry(k).or_default().push(v as f64);
            }
            params.entry("angle").or_default().push(p.angle as f64);
            angles[e as usize][i] = p.angle as f64;
        }
    }
    let np = pixels as f64;
    let per_image = (pixels / (n_img * draws as usize)) as f64;
    let mean: Vec<f64> = (0..3)
        .map(|c| chan_means[c].iter().sum::<f64>() * per_image / np)
        .collect();
    let sd: Vec<f64> = (0..3)
        .map(|c| (sq[c] / np - mean[c] * mean[c]).max(0.0).sqrt())
        .collect();
    let within: (Vec<f64>, Vec<f64>) = angles
        .iter()
        .flat_map(|row| row.windows(2).map(|w| (w[0], w[1])))
        .unzip();
    let across: (Vec<f64>, Vec<f64>) = angles
        .windows(2)
        .flat_map(|w| w[0].iter().copied().zip(w[1].iter().copied()))
        .unzip();
    let mut pj = serde_json::Map::new();
    for (k, v) in &params {
        pj.insert(k.to_string(), mean_sd(v)?);
    }
    Ok(json!({
        "implementation": "dfr-data",
        "images": n_img,
        "draws": draws,
        "size": aug.size,
        "channel_mean": chan_means.iter().map(|m| mean_sd(m)).collect::<Result<Vec<_>>>()?,
        "pixel_sd": sd,
        "histogram": hist.iter().map(|h| {
            let t: f64 = h.iter().sum();
            h.iter().map(|v| v / t).collect::<Vec<_>>()
        }).collect::<Vec<_>>(),
        "fill_fraction": fill as f64 / np,
        "neighbour_difference_energy": mean_sd(&hf)?,
        "params": pj,
        "independence": {
            "angle_r_within_epoch": if n_img > 1 { pearson(&within.0, &within.1) } else { 0.0 },
            "angle_r_across_epochs": pearson(&across.0, &across.1),
        },
    }))
}

/// `(a − b)` in standard errors of two `{mean, sd, n}` summaries.
fn z(a: &Value, b: &Value) -> f64 {
    let g = |v: &Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    let se = (g(a, "sd").powi(2) / g(a, "n") + g(b, "sd").powi(2) / g(b, "n")).sqrt();
    let d = g(a, "mean") - g(b, "mean");
    if se > 0.0 {
        d / se
    } else if d == 0.0 {
        0.0
    } else {
        f64::INFINITY
    }
}

fn compare(ours: &Value, theirs: &Value) -> Value {
    let mut rows = Vec::new();
    let mut push = |name: String, a: f64, b: f64, se: Option<f64>| {
        match se {
            Some(z) => println!("{name:<34} {a:>10.5} {b:>10.5} {z:>+8.2}"),
            None => println!("{name:<34} {a:>10.5} {b:>10.5}"),
        }
        rows.push(
            json!({ "name": name, "ours": a, "torchvision": b, "standard_errors_apart": se }),
        );
    };
    println!(
        "\n{:<34} {:>10} {:>10} {:>8}",
        "statistic", "ours", "torchvision", "SE"
    );
    for c in 0..3 {
        let (a, b) = (&ours["channel_mean"][c], &theirs["channel_mean"][c]);
        push(
            format!("channel {c} mean"),
            a["mean"].as_f64().unwrap_or(f64::NAN),
            b["mean"].as_f64().unwrap_or(f64::NAN),
            Some(z(a, b)),
        );
        push(
            format!("channel {c} pixel sd"),
            ours["pixel_sd"][c].as_f64().unwrap_or(f64::NAN),
            theirs["pixel_sd"][c].as_f64().unwrap_or(f64::NAN),
            None,
        );
        let hd = (0..BINS)
            .map(|k| {
                (ours["histogram"][c][k].as_f64().unwrap_or(f64::NAN)
                    - theirs["histogram"][c][k].as_f64().unwrap_or(f64::NAN))
                .abs()
            })
            .fold(0.0, f64::max);
        push(format!("channel {c} histogram max |Δ bin|"), hd, 0.0, None);
    }
    push(
        "fill fraction".into(),
        ours["fill_fraction"].as_f64().unwrap_or(f64::NAN),
        theirs["fill_fraction"].as_f64().unwrap_or(f64::NAN),
        None,
    );
    let (a, b) = (
        &ours["neighbour_difference_energy"],
        &theirs["neighbour_difference_energy"],
    );
    push(
        "neighbour-difference energy".into(),
        a["mean"].as_f64().unwrap_or(f64::NAN),
        b["mean"].as_f64().unwrap_or(f64::NAN),
        Some(z(a, b)),
    );
    if let Some(ps) = ours["params"].as_object() {
        for (k, a) in ps {
            let b = &theirs["params"][k];
            push(
                format!("param {k} mean"),
                a["mean"].as_f64().unwrap_or(f64::NAN),
                b["mean"].as_f64().unwrap_or(f64::NAN),
                Some(z(a, b)),
            );
            push(
                format!("param {k} sd"),
                a["sd"].as_f64().unwrap_or(f64::NAN),
                b["sd"].as_f64().unwrap_or(f64::NAN),
                None,
            );
        }
    }
    for k in ["angle_r_within_epoch", "angle_r_across_epochs"] {
        push(
            format!("independence {k}"),
            ours["independence"][k].as_f64().unwrap_or(f64::NAN),
            theirs["independence"][k].as_f64().unwrap_or(f64::NAN),
            None,
        );
    }
    Value::Array(rows)
}

/// Runs the augmentation statistics on `samples` (every one `size`-cropped `draws` times),
/// with torchvision's side by side when `python` is given.
pub fn bench_augment(
    samples: &[Sample],
    size: u32,
    draws: u64,
    python: Option<&Path>,
    pipeline: crate::bench::PtPipeline,
) -> Result<Value> {
    if draws < 2 {
        bail!("--draws: at least 2 draws per image are needed for the statistics");
    }
    let samples: Vec<Sample> = samples.iter().take(32).cloned().collect();
    let mut results = serde_json::Map::new();
    for interpolation in [Interpolation::Nearest, Interpolation::Bilinear] {
        let name = match interpolation {
            Interpolation::Nearest => "nearest",
            Interpolation::Bilinear => "bilinear",
        };
        let aug = TrainAugment {
            size,
            rotation_interpolation: interpolation,
            ..TrainAugment::default()
        };
        println!("\nrotation interpolation: {name}");
        let o = ours(&samples, &aug, draws)?;
        let mut entry = json!({ "ours": o });
        if let Some(py) = python {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/pt_augment.py");
            let dir = tempfile::tempdir().context("creating a temporary directory")?;
            let out = dir.path().join("stats.json");
            let status = Command::new(py)
                .arg(&script)
                .args(["--size", &size.to_string(), "--draws", &draws.to_string()])
                .args(["--rotation", name])
                .arg(pipeline.flag())
                .arg("--out")
                .arg(&out)
                .args(samples.iter().map(|s| &s.path))
                .status()
                .with_context(|| format!("running {} {}", py.display(), script.display()))?;
            if !status.success() {
                bail!("{} {} failed ({status})", py.display(), script.display());
            }
            let theirs: Value = serde_json::from_str(
                &std::fs::read_to_string(&out)
                    .with_context(|| format!("reading {}", out.display()))?,
            )?;
            entry["comparison"] = compare(&entry["ours"], &theirs);
            entry["torchvision"] = theirs;
        } else {
            println!(
                "neighbour-difference energy {:.5}, fill fraction {:.5}",
                entry["ours"]["neighbour_difference_energy"]["mean"],
                entry["ours"]["fill_fraction"]
            );
        }
        results.insert(name.into(), entry);
    }
    Ok(json!({ "bench": "augment", "results": results }))
}
