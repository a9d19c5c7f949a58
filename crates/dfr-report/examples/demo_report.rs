//! Writes a demo report (tables, every kind of figure, a gallery, `report.md`) with
//! synthetic numbers into the directory given as the first argument (default
//! `target/dfr-report-demo`), to look at the layouts.

use std::path::PathBuf;

use dfr_report::polars::prelude::*;
use dfr_report::{
    cam_overlay, confusion_matrix, frame, gallery, heatmap, metric_vs_eps, roc_curves, write_all,
    CurveAxes, GalleryRow, GalleryStyle, MarkdownOptions, PlotStyle, ReportPage, RocSeries, Series,
    Tile,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/dfr-report-demo"));
    let figs = out.join("figures");
    let style = PlotStyle::default();
    let eps: Vec<f64> = [0.0, 1.0, 2.0, 4.0, 8.0, 16.0]
        .iter()
        .map(|e| e / 255.0)
        .collect();

    let mut page = ReportPage::new("Robust deepfake detection — demo report");
    page.paragraph("Synthetic numbers, to check the layout of tables and figures.");

    // Table.
    let df = frame(vec![
        Column::new(
            "model".into(),
            vec!["baseline", "grad-reg α=0.1", "grad-reg α=1"],
        ),
        Column::new("clean acc".into(), vec![0.9712, 0.9531, 0.9344]),
        Column::new(
            "FGSM acc (ε=4/255)".into(),
            vec![Some(0.18), Some(0.61), Some(0.74)],
        ),
        Column::new(
            "PGD acc (ε=4/255)".into(),
            vec![Some(0.02), Some(0.44), None],
        ),
    ])?;
    let tables = write_all(&df, out.join("tables"), "summary")?;
    page.section("Summary");
    page.table_with_caption(
        "Accuracy under attack",
        &df,
        &MarkdownOptions::with_decimals(3),
    )?;
    page.link("CSV", &tables.csv)
        .link("Parquet", &tables.parquet);

    // Curves.
    page.section("Accuracy vs ε");
    for (attack, drop) in [("FGSM", 1.0), ("PGD", 1.6)] {
        let series = vec![
            Series::new("baseline", eps.clone(), curve(&eps, 0.97, 60.0 * drop)),
            Series::new(
                "grad-reg α=0.1",
                eps.clone(),
                curve(&eps, 0.95, 25.0 * drop),
            ),
            Series::new("grad-reg α=1", eps.clone(), curve(&eps, 0.93, 14.0 * drop)),
        ];
        let axes = CurveAxes {
            y_range: Some((0.0, 1.0)),
            ..CurveAxes::default()
        };
        let p = metric_vs_eps(
            figs.join(format!("{}_accuracy", attack.to_lowercase())),
            &format!("{attack}: accuracy vs ε"),
            "ε (L∞, pixel scale 0–1)",
            "accuracy",
            &series,
            &axes,
            &style,
        )?;
        page.image(format!("{attack} accuracy vs ε"), &p.png);
    }
    let log_series: Vec<Series> = ["baseline", "regularised"]
        .iter()
        .enumerate()
        .map(|(k, l)| {
            let e: Vec<f64> = eps[1..].to_vec();
            Series::new(
                *l,
                e.clone(),
                curve(&e, 0.99, 40.0 / (k as f64 + 1.0))
                    .iter()
                    .map(|v| 0.5 + v / 2.0)
                    .collect(),
            )
        })
        .collect();
    let p = metric_vs_eps(
        figs.join("pgd_auc_log"),
        "PGD: ROC-AUC vs ε (log x)",
        "ε",
        "ROC-AUC",
        &log_series,
        &CurveAxes {
            log_x: true,
            ..CurveAxes::default()
        },
        &style,
    )?;
    page.image("PGD AUC vs ε, log x", &p.png);

    // Heatmap.
    page.section("Ablation over α × r");
    let alphas: [f64; 5] = [0.01, 0.03, 0.1, 0.3, 1.0];
    let radii: [f64; 4] = [0.5, 1.0, 2.0, 4.0];
    let values: Vec<Vec<Option<f64>>> = alphas
        .iter()
        .enumerate()
        .map(|(i, a)| {
            radii
                .iter()
                .enumerate()
                .map(|(j, r)| {
                    if (i + j) % 7 == 3 {
                        None
                    } else {
                        Some(0.3 + 0.5 * (a * 3.0f64).min(1.0) * (1.0 - (-*r / 2.0f64).exp()))
                    }
                })
                .collect()
        })
        .collect();
    let p = heatmap(
        figs.join("ablation"),
        "PGD accuracy (ε=4/255) over α × r",
        "α",
        "r",
        &alphas,
        &radii,
        &values,
        &style,
    )?;
    page.image("ablation heatmap", &p.png);

    // ROC.
    page.section("ROC curves");
    let roc = |label: &str, k: f64| {
        let fpr: Vec<f64> = (0..=50).map(|i| i as f64 / 50.0).collect();
        let tpr: Vec<f64> = fpr.iter().map(|f| f.powf(1.0 / k)).collect();
        let auc = k / (k + 1.0);
        RocSeries {
            label: label.into(),
            fpr,
            tpr,
            auc,
        }
    };
    let p = roc_curves(
        figs.join("roc"),
        "ROC under PGD (ε=2/255)",
        &[
            roc("baseline", 1.5),
            roc("grad-reg α=0.1", 4.0),
            roc("grad-reg α=1", 9.0),
        ],
        &PlotStyle::sized(700, 700),
    )?;
    page.image("ROC curves", &p.png);

    // Confusion matrices.
    page.section("Confusion matrices");
    let p = confusion_matrix(
        figs.join("confusion"),
        "baseline, PGD ε=2/255",
        &["real", "fake"],
        &[vec![480, 20], vec![375, 125]],
        &style,
    )?;
    page.image("binary confusion matrix", &p.png);
    let p = confusion_matrix(
        figs.join("confusion3"),
        "per manipulation",
        &[
            "real",
            "Deepfakes",
            "Face2Face",
            "FaceSwap",
            "NeuralTextures",
        ],
        &[
            vec![950, 10, 20, 5, 15],
            vec![12, 930, 30, 20, 8],
            vec![40, 25, 870, 35, 30],
            vec![0, 0, 0, 0, 0],
            vec![90, 12, 40, 8, 850],
        ],
        &style,
    )?;
    page.image("5-class confusion matrix", &p.png);

    // Gallery.
    page.section("Grad-CAM gallery");
    let mut rows = Vec::new();
    for (m, name) in ["EfficientNet-B0 baseline", "EfficientNet-B0 grad-reg α=1"]
        .iter()
        .enumerate()
    {
        let img = synthetic_face(m as u32);
        let clean = cam_overlay(&img, &blob(3.0, 3.5), 7, 7, 0.45)?;
        let adv = cam_overlay(
            &img,
            &blob(
                if m == 0 { 0.5 } else { 3.2 },
                if m == 0 { 6.0 } else { 3.0 },
            ),
            7,
            7,
            0.45,
        )?;
        rows.push(GalleryRow::new(
            *name,
            vec![
                Tile::new("clean", img),
                Tile::new("clean Grad-CAM", clean),
                Tile::new("adversarial Grad-CAM (PGD ε=4/255)", adv),
            ],
        ));
    }
    let gpath = figs.join("gallery.png");
    gallery(
        &gpath,
        "Grad-CAM: clean vs adversarial",
        &rows,
        &GalleryStyle::default(),
    )?;
    page.image("Grad-CAM gallery", &gpath);

    let report = page.write(&out)?;
    println!("{}", report.display());
    Ok(())
}

fn curve(eps: &[f64], clean: f64, rate: f64) -> Vec<f64> {
    eps.iter().map(|e| clean * (-rate * e).exp()).collect()
}

fn blob(cx: f32, cy: f32) -> Vec<f32> {
    (0..49)
        .map(|k| {
            let (x, y) = ((k % 7) as f32, (k / 7) as f32);
            (-((x - cx).powi(2) + (y - cy).powi(2)) / 3.0).exp()
        })
        .collect()
}

fn synthetic_face(seed: u32) -> image::RgbImage {
    image::RgbImage::from_fn(224, 224, |x, y| {
        let (dx, dy) = (x as f32 - 112.0, y as f32 - 118.0);
        let inside = (dx / 70.0).powi(2) + (dy / 92.0).powi(2) < 1.0;
        let eye = ((dx.abs() - 28.0).powi(2) + (dy + 25.0).powi(2)) < 90.0;
        let mouth = dy > 35.0 && dy < 45.0 && dx.abs() < 30.0;
        if eye || mouth {
            image::Rgb([60, 40, 40])
        } else if inside {
            image::Rgb([224 - seed as u8 * 30, 180, 150])
        } else {
            image::Rgb([90, 110 + (y / 4) as u8, 140])
        }
    })
}
