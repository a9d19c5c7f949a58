//! `dfr predict --weights W [--arch A] IMAGE…`.

use anyhow::{bail, Context, Result};
use candle_core::Tensor;
use clap::Args;
use dfr_data::decode::decode_rgb8;
use dfr_data::EvalTransform;
use dfr_model::{predict_probs, EfficientNet, EfficientNetConfig};
use std::path::PathBuf;

/// Options of `dfr predict`.
#[derive(Args)]
pub struct PredictArgs {
    /// A dfr checkpoint, or weights (safetensors/.pth/`hf:ORG/REPO[/FILE]`) for `--arch`.
    #[arg(long)]
    pub weights: String,
    /// Architecture for plain weights (b0…b7, lite0…lite4); read from dfr checkpoints.
    #[arg(long)]
    pub arch: Option<String>,
    /// Classes of plain weights (1000 for ImageNet, 2 for a detector).
    #[arg(long, default_value_t = 1000)]
    pub classes: usize,
    /// Input side length (default: the checkpoint's, else 224).
    #[arg(long)]
    pub size: Option<u32>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Images.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
}

/// Runs prediction.
pub fn run(a: PredictArgs) -> Result<()> {
    let device = crate::device::parse(&a.device)?;
    let path = PathBuf::from(&a.weights);
    let is_checkpoint =
        path.is_file() && dfr_model::checkpoint::read_checkpoint_meta(&path).is_ok();
    let (model, size) = if is_checkpoint {
        let (model, meta) = dfr_model::checkpoint::load_checkpoint(&path, &device)
            .with_context(|| format!("loading checkpoint {}", path.display()))?;
        if let Some(arch) = &a.arch {
            let wanted: dfr_model::Arch = arch.parse().with_context(|| format!("--arch {arch}"))?;
            if wanted != meta.arch {
                bail!(
                    "--arch {arch}: {} is a dfr checkpoint of {} (its architecture is read \
                     from it; drop --arch)",
                    path.display(),
                    meta.arch.name()
                );
            }
        }
        let size = crate::attack::checkpoint_image_size(&path);
        (model, a.size.or(size).unwrap_or(224))
    } else {
        let Some(arch) = &a.arch else {
            bail!(
                "`{}` is not a dfr checkpoint: pass --arch (and --classes) for plain weights",
                a.weights
            );
        };
        let arch = arch.parse().with_context(|| format!("--arch {arch}"))?;
        let model = EfficientNet::new(EfficientNetConfig::new(arch, a.classes), &device, 0)?;
        let report = dfr_model::weights::load_weights(&model, &a.weights)
            .with_context(|| format!("loading weights {}", a.weights))?;
        if report.head_initialised {
            bail!(
                "`{}` has no {}-class head: predictions would be random (check --classes)",
                a.weights,
                a.classes
            );
        }
        (model, a.size.unwrap_or(224))
    };
    dfr_model::config::check_image_size(size).map_err(|m| anyhow::anyhow!("--size {m}"))?;
    let classes = model.config().num_classes;
    let tf = EvalTransform { size };
    let mut rows = Vec::new();
    for img in &a.images {
        let rgb = decode_rgb8(img)?;
        let x = tf.apply(&rgb)?;
        let t = Tensor::from_vec(x.data, (1, 3, size as usize, size as usize), &device)?;
        let p = predict_probs(&model, &t)?.squeeze(0)?.to_vec1::<f32>()?;
        rows.push((img.display().to_string(), p));
    }
    if a.json {
        let out: Vec<serde_json::Value> = rows
            .iter()
            .map(|(path, p)| {
                if classes == 2 {
                    serde_json::json!({"image": path, "real": p[0], "fake": p[1],
                        "prediction": if p[1] >= 0.5 { "fake" } else { "real" }})
                } else {
                    serde_json::json!({"image": path, "top5": top5(p)
                        .iter().map(|(i, q)| serde_json::json!({"class": i, "prob": q})).collect::<Vec<_>>()})
                }
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    for (path, p) in &rows {
        if classes == 2 {
            println!(
                "{path}: real {:.4}  fake {:.4}  → {}",
                p[0],
                p[1],
                if p[1] >= 0.5 { "fake" } else { "real" }
            );
        } else {
            let t: Vec<String> = top5(p)
                .iter()
                .map(|(i, q)| format!("{i} ({q:.4})"))
                .collect();
            println!("{path}: top-5 {}", t.join(", "));
        }
    }
    Ok(())
}

fn top5(p: &[f32]) -> Vec<(usize, f32)> {
    let mut idx: Vec<usize> = (0..p.len()).collect();
    idx.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
    idx.into_iter().take(5).map(|i| (i, p[i])).collect()
}
