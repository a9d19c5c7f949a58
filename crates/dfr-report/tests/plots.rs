//! Every figure renders to a decodable PNG of the configured size and to an SVG.

use crate::common;

use common::{check_png, check_svg, no_temp_files};
use dfr_report::{
    cam_overlay, confusion_matrix, gallery, gallery_size, heatmap, metric_vs_eps, roc_curves,
    CurveAxes, GalleryRow, GalleryStyle, PlotStyle, ReportError, RocSeries, Series, Tile,
};

fn eps() -> Vec<f64> {
    [0.0, 1.0, 2.0, 4.0, 8.0, 16.0]
        .iter()
        .map(|e| e / 255.0)
        .collect()
}

fn robustness_series() -> Vec<Series> {
    vec![
        Series::new("baseline", eps(), vec![0.97, 0.71, 0.42, 0.18, 0.05, 0.01]),
        Series::new(
            "grad-reg α=0.1",
            eps(),
            vec![0.95, 0.88, 0.79, 0.61, 0.37, 0.15],
        ),
        Series::new(
            "grad-reg α=1",
            eps(),
            vec![0.93, 0.90, 0.85, 0.74, 0.55, 0.31],
        ),
    ]
}

#[test]
fn metric_vs_eps_writes_png_and_svg() {
    let dir = tempfile::tempdir().unwrap();
    let style = PlotStyle::default();
    let axes = CurveAxes {
        y_range: Some((0.0, 1.0)),
        ..CurveAxes::default()
    };
    let paths = metric_vs_eps(
        dir.path().join("fgsm_accuracy"),
        "FGSM: accuracy vs ε",
        "ε",
        "accuracy",
        &robustness_series(),
        &axes,
        &style,
    )
    .unwrap();
    assert_eq!(paths.png, dir.path().join("fgsm_accuracy.png"));
    check_png(&paths.png, 800, 600);
    // The title is rendered with the embedded font: dark, anti-aliased pixels in the top band.
    let img = image::open(&paths.png).unwrap().to_rgb8();
    let band = (0..800).flat_map(|x| (0..50).map(move |y| (x, y)));
    let (mut dark, mut grey) = (0, 0);
    for (x, y) in band {
        let p = img.get_pixel(x, y).0;
        if p.iter().all(|c| *c < 80) {
            dark += 1;
        } else if p.iter().all(|c| (80..230).contains(c)) {
            grey += 1;
        }
    }
    assert!(
        dark > 100 && grey > 50,
        "title text missing: {dark} dark, {grey} grey pixels"
    );
    let svg = check_svg(&paths.svg, "FGSM: accuracy vs ε");
    assert!(svg.contains("grad-reg α=0.1"));
    assert!(svg.contains("font-family=\"DejaVu Sans, sans-serif\""));
    no_temp_files(dir.path());
}

#[test]
fn metric_vs_eps_log_x_and_custom_size() {
    let dir = tempfile::tempdir().unwrap();
    let style = PlotStyle::sized(640, 480);
    let mut series = robustness_series();
    for s in &mut series {
        s.eps.remove(0);
        s.values.remove(0);
    }
    let axes = CurveAxes {
        log_x: true,
        ..CurveAxes::default()
    };
    let paths = metric_vs_eps(
        dir.path().join("pgd_auc"),
        "PGD: AUC",
        "ε",
        "AUC",
        &series,
        &axes,
        &style,
    )
    .unwrap();
    check_png(&paths.png, 640, 480);
    check_svg(&paths.svg, "PGD: AUC");
}

#[test]
fn metric_vs_eps_single_point_series() {
    let dir = tempfile::tempdir().unwrap();
    let series = [Series::new("only", vec![0.0], vec![0.5])];
    let paths = metric_vs_eps(
        dir.path().join("one"),
        "one point",
        "ε",
        "acc",
        &series,
        &CurveAxes::default(),
        &PlotStyle::default(),
    )
    .unwrap();
    check_png(&paths.png, 800, 600);
}

#[test]
fn metric_vs_eps_rejects_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("bad");
    let (axes, style) = (CurveAxes::default(), PlotStyle::default());
    let run = |series: &[Series], axes: &CurveAxes| {
        metric_vs_eps(&stem, "t", "x", "y", series, axes, &style)
    };

    assert!(matches!(run(&[], &axes), Err(ReportError::Empty { .. })));
    let empty = [Series::new("e", vec![], vec![])];
    assert!(matches!(run(&empty, &axes), Err(ReportError::Empty { .. })));
    let mismatched = [Series::new("m", vec![0.0, 1.0], vec![0.5])];
    assert!(matches!(
        run(&mismatched, &axes),
        Err(ReportError::LengthMismatch {
            expected: 2,
            found: 1,
            ..
        })
    ));
    let nan = [Series::new("n", vec![0.0, 1.0], vec![0.5, f64::NAN])];
    assert!(matches!(
        run(&nan, &axes),
        Err(ReportError::NonFinite { index: 1, .. })
    ));
    let inf_eps = [Series::new("i", vec![0.0, f64::INFINITY], vec![0.5, 0.4])];
    assert!(matches!(
        run(&inf_eps, &axes),
        Err(ReportError::NonFinite { .. })
    ));
    let log = CurveAxes {
        log_x: true,
        ..CurveAxes::default()
    };
    let zero_eps = [Series::new("z", vec![0.0, 1.0], vec![0.5, 0.4])];
    assert!(matches!(
        run(&zero_eps, &log),
        Err(ReportError::InvalidArgument(_))
    ));
    let bad_range = CurveAxes {
        y_range: Some((1.0, 0.0)),
        ..CurveAxes::default()
    };
    assert!(matches!(
        run(&zero_eps, &bad_range),
        Err(ReportError::InvalidArgument(_))
    ));
    let tiny = PlotStyle::sized(10, 10);
    assert!(matches!(
        metric_vs_eps(&stem, "t", "x", "y", &zero_eps, &axes, &tiny),
        Err(ReportError::InvalidArgument(_))
    ));
    // Nothing was written.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn heatmap_with_missing_cells() {
    let dir = tempfile::tempdir().unwrap();
    let alphas = [0.01, 0.1, 1.0];
    let radii = [0.5, 1.0, 2.0, 4.0];
    let values = vec![
        vec![Some(0.61), Some(0.64), None, Some(0.70)],
        vec![Some(0.72), Some(0.75), Some(0.79), Some(0.81)],
        vec![Some(0.80), None, Some(0.86), Some(0.88)],
    ];
    let paths = heatmap(
        dir.path().join("ablation"),
        "PGD accuracy over α × r",
        "α",
        "r",
        &alphas,
        &radii,
        &values,
        &PlotStyle::default(),
    )
    .unwrap();
    check_png(&paths.png, 800, 600);
    let svg = check_svg(&paths.svg, "PGD accuracy over α × r");
    assert!(svg.contains('—'), "missing cells are marked");
    assert!(svg.contains("0.790"));
}

#[test]
fn heatmap_single_cell_and_all_missing() {
    let dir = tempfile::tempdir().unwrap();
    let style = PlotStyle::default();
    let p = heatmap(
        dir.path().join("one"),
        "one",
        "α",
        "r",
        &[1.0],
        &[2.0],
        &[vec![Some(0.5)]],
        &style,
    )
    .unwrap();
    check_png(&p.png, 800, 600);
    let p = heatmap(
        dir.path().join("none"),
        "none",
        "α",
        "r",
        &[1.0, 2.0],
        &[2.0],
        &[vec![None], vec![None]],
        &style,
    )
    .unwrap();
    check_png(&p.png, 800, 600);
}

#[test]
fn heatmap_rejects_bad_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("bad");
    let style = PlotStyle::default();
    let run = |rows: &[f64], cols: &[f64], values: &[Vec<Option<f64>>]| {
        heatmap(&stem, "t", "α", "r", rows, cols, values, &style)
    };
    assert!(matches!(
        run(&[], &[1.0], &[]),
        Err(ReportError::Empty { .. })
    ));
    assert!(matches!(
        run(&[1.0], &[], &[vec![]]),
        Err(ReportError::Empty { .. })
    ));
    assert!(matches!(
        run(&[1.0, 2.0], &[1.0], &[vec![Some(1.0)]]),
        Err(ReportError::LengthMismatch {
            expected: 2,
            found: 1,
            ..
        })
    ));
    assert!(matches!(
        run(&[1.0], &[1.0, 2.0], &[vec![Some(1.0)]]),
        Err(ReportError::LengthMismatch {
            expected: 2,
            found: 1,
            ..
        })
    ));
    assert!(matches!(
        run(&[1.0], &[1.0], &[vec![Some(f64::NAN)]]),
        Err(ReportError::NonFinite { .. })
    ));
    assert!(matches!(
        run(&[f64::INFINITY], &[1.0], &[vec![Some(1.0)]]),
        Err(ReportError::NonFinite { .. })
    ));
}

#[test]
fn roc_curves_render() {
    let dir = tempfile::tempdir().unwrap();
    let labels: Vec<u8> = (0..200).map(|i| (i % 2) as u8).collect();
    let scores: Vec<f64> = (0..200)
        .map(|i| {
            let noise = ((i * 37 % 101) as f64) / 101.0;
            if i % 2 == 1 {
                0.35 + 0.65 * noise
            } else {
                0.65 * noise
            }
        })
        .collect();
    let curve = dfr_metrics::roc_curve(&labels, &scores).unwrap();
    let from_metrics = RocSeries::from_curve("baseline", &curve).unwrap();
    let auc = dfr_metrics::roc_auc(&labels, &scores).unwrap();
    assert!((from_metrics.auc - auc).abs() < 1e-9);
    let hand = RocSeries {
        label: "regularised".into(),
        fpr: vec![0.0, 0.05, 0.2, 0.5, 1.0],
        tpr: vec![0.0, 0.6, 0.85, 0.97, 1.0],
        auc: 0.9,
    };
    let paths = roc_curves(
        dir.path().join("roc"),
        "ROC on FF++ (c23)",
        &[from_metrics, hand],
        &PlotStyle::sized(700, 700),
    )
    .unwrap();
    check_png(&paths.png, 700, 700);
    let svg = check_svg(&paths.svg, "ROC on FF++ (c23)");
    assert!(svg.contains("AUC = 0.900"));
}

#[test]
fn roc_curves_reject_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("bad");
    let style = PlotStyle::default();
    let s = |fpr: Vec<f64>, tpr: Vec<f64>, auc: f64| RocSeries {
        label: "x".into(),
        fpr,
        tpr,
        auc,
    };
    assert!(matches!(
        roc_curves(&stem, "t", &[], &style),
        Err(ReportError::Empty { .. })
    ));
    assert!(matches!(
        roc_curves(&stem, "t", &[s(vec![], vec![], 0.5)], &style),
        Err(ReportError::Empty { .. })
    ));
    assert!(matches!(
        roc_curves(&stem, "t", &[s(vec![0.0, 1.0], vec![0.0], 0.5)], &style),
        Err(ReportError::LengthMismatch { .. })
    ));
    assert!(matches!(
        roc_curves(
            &stem,
            "t",
            &[s(vec![0.0, 1.5], vec![0.0, 1.0], 0.5)],
            &style
        ),
        Err(ReportError::OutOfRange { index: 1, .. })
    ));
    assert!(matches!(
        roc_curves(
            &stem,
            "t",
            &[s(vec![0.0, 1.0], vec![f64::NAN, 1.0], 0.5)],
            &style
        ),
        Err(ReportError::NonFinite { .. })
    ));
    assert!(matches!(
        roc_curves(
            &stem,
            "t",
            &[s(vec![0.0, 1.0], vec![0.0, 1.0], f64::NAN)],
            &style
        ),
        Err(ReportError::NonFinite { .. })
    ));
}

#[test]
fn confusion_matrix_renders() {
    let dir = tempfile::tempdir().unwrap();
    let cm = dfr_metrics::BinaryConfusion {
        true_negatives: 480,
        false_positives: 20,
        false_negatives: 75,
        true_positives: 425,
    };
    let rows: Vec<Vec<u64>> = cm.as_rows().iter().map(|r| r.to_vec()).collect();
    let paths = confusion_matrix(
        dir.path().join("cm"),
        "Confusion matrix (PGD ε=4/255)",
        &["real", "fake"],
        &rows,
        &PlotStyle::default(),
    )
    .unwrap();
    check_png(&paths.png, 800, 600);
    let svg = check_svg(&paths.svg, "Confusion matrix (PGD ε=4/255)");
    assert!(svg.contains("96.0%") && svg.contains("85.0%") && svg.contains("425"));

    // Three classes, one without samples.
    let paths = confusion_matrix(
        dir.path().join("cm3"),
        "three classes",
        &["real", "face-swap", "reenactment"],
        &[vec![50, 3, 2], vec![0, 0, 0], vec![4, 6, 40]],
        &PlotStyle::default(),
    )
    .unwrap();
    check_png(&paths.png, 800, 600);
    check_svg(&paths.svg, "three classes");
}

#[test]
fn confusion_matrix_rejects_bad_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("bad");
    let style = PlotStyle::default();
    assert!(matches!(
        confusion_matrix(&stem, "t", &[], &[], &style),
        Err(ReportError::Empty { .. })
    ));
    assert!(matches!(
        confusion_matrix(&stem, "t", &["a", "b"], &[vec![1, 2]], &style),
        Err(ReportError::LengthMismatch { .. })
    ));
    assert!(matches!(
        confusion_matrix(&stem, "t", &["a", "b"], &[vec![1, 2], vec![3]], &style),
        Err(ReportError::LengthMismatch { .. })
    ));
}

/// A synthetic "face" image and a CAM peaked somewhere.
fn face(seed: u32) -> image::RgbImage {
    image::RgbImage::from_fn(160, 120, |x, y| {
        let v = ((x * 3 + y * 2 + seed * 40) % 256) as u8;
        image::Rgb([v, 255 - v, ((x ^ y) % 256) as u8])
    })
}

fn cam(cx: f32, cy: f32) -> Vec<f32> {
    (0..7 * 7)
        .map(|k| {
            let (x, y) = ((k % 7) as f32, (k / 7) as f32);
            (-((x - cx).powi(2) + (y - cy).powi(2)) / 4.0).exp()
        })
        .collect()
}

#[test]
fn gallery_renders_grid() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows = Vec::new();
    for (m, name) in [
        "EfficientNet-B0 baseline",
        "EfficientNet-B0 gradient-regularised",
    ]
    .iter()
    .enumerate()
    {
        let img = face(m as u32);
        rows.push(GalleryRow::new(
            *name,
            vec![
                Tile::new("clean", img.clone()),
                Tile::new(
                    "clean CAM",
                    cam_overlay(&img, &cam(2.0, 3.0), 7, 7, 0.5).unwrap(),
                ),
                Tile::new(
                    "adversarial CAM (PGD ε=4/255)",
                    cam_overlay(&img, &cam(5.0, 1.0), 7, 7, 0.5).unwrap(),
                ),
            ],
        ));
    }
    // A shorter row is allowed.
    rows.push(GalleryRow::new(
        "short row",
        vec![Tile::new("only", face(7))],
    ));
    let style = GalleryStyle::default();
    let path = dir.path().join("sub").join("gallery.png");
    let size = gallery(&path, "Grad-CAM: clean vs adversarial", &rows, &style).unwrap();
    assert_eq!(size, gallery_size(3, 3, &style));
    let (w, h) = size;
    assert_eq!(w, 180 + 3 * (224 + 12) + 12);
    assert_eq!(h, 56 + 3 * (224 + 30 + 12) + 12);
    check_png(&path, w, h);
}

#[test]
fn gallery_rejects_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.png");
    let style = GalleryStyle::default();
    assert!(matches!(
        gallery(&path, "t", &[], &style),
        Err(ReportError::Empty { .. })
    ));
    assert!(matches!(
        gallery(&path, "t", &[GalleryRow::new("r", vec![])], &style),
        Err(ReportError::Empty { .. })
    ));
    let empty_img = Tile::new("e", image::RgbImage::new(0, 0));
    assert!(matches!(
        gallery(&path, "t", &[GalleryRow::new("r", vec![empty_img])], &style),
        Err(ReportError::InvalidArgument(_))
    ));
    let many: Vec<Tile> = (0..100).map(|_| Tile::new("x", face(0))).collect();
    assert!(matches!(
        gallery(&path, "t", &[GalleryRow::new("r", many)], &style),
        Err(ReportError::InvalidArgument(_))
    ));
    assert!(!path.exists());
}

#[test]
fn cam_overlay_checks_input_and_blends() {
    let img = face(1);
    assert!(matches!(
        cam_overlay(&img, &[], 0, 0, 0.5),
        Err(ReportError::Empty { .. })
    ));
    assert!(matches!(
        cam_overlay(&img, &[0.0; 5], 2, 3, 0.5),
        Err(ReportError::LengthMismatch { .. })
    ));
    assert!(matches!(
        cam_overlay(&img, &[0.0, f32::NAN, 0.0, 0.0], 2, 2, 0.5),
        Err(ReportError::NonFinite { .. })
    ));
    assert!(matches!(
        cam_overlay(&img, &[0.0; 4], 2, 2, 1.5),
        Err(ReportError::OutOfRange { .. })
    ));
    // alpha = 0 keeps the image; alpha = 1 is the colour map alone.
    assert_eq!(cam_overlay(&img, &cam(3.0, 3.0), 7, 7, 0.0).unwrap(), img);
    let full = cam_overlay(&img, &cam(3.0, 3.0), 7, 7, 1.0).unwrap();
    assert_eq!(full.dimensions(), img.dimensions());
    // The peak (centre) is red-ish, the corner blue-ish.
    let c = full.get_pixel(80, 60).0;
    let k = full.get_pixel(0, 0).0;
    assert!(c[0] > c[2], "centre {c:?}");
    assert!(k[2] > k[0], "corner {k:?}");
}

#[test]
fn tiny_and_odd_styles_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let series = robustness_series();
    let roc = RocSeries {
        label: "r".into(),
        fpr: vec![0.0, 0.5, 1.0],
        tpr: vec![0.0, 0.8, 1.0],
        auc: 0.65,
    };
    let styles = [
        PlotStyle::sized(64, 64),
        PlotStyle::sized(64, 2000),
        PlotStyle::sized(2000, 64),
        PlotStyle {
            margin: 1000,
            ..PlotStyle::default()
        },
        PlotStyle {
            title_font_size: 0,
            label_font_size: 0,
            tick_font_size: 0,
            legend_font_size: 0,
            annotation_font_size: 0,
            line_width: 0,
            marker_size: 0,
            ..PlotStyle::default()
        },
        PlotStyle {
            title_font_size: 250,
            tick_font_size: 250,
            ..PlotStyle::default()
        },
        PlotStyle {
            title_font_size: 400,
            ..PlotStyle::default()
        },
    ];
    for (k, style) in styles.iter().enumerate() {
        let stem = |name: &str| dir.path().join(format!("{name}{k}"));
        let results = [
            metric_vs_eps(
                stem("c"),
                "t",
                "x",
                "y",
                &series,
                &CurveAxes::default(),
                style,
            )
            .map(|_| ()),
            heatmap(
                stem("h"),
                "t",
                "α",
                "r",
                &[1.0, 2.0],
                &[1.0],
                &[vec![Some(1.0)], vec![None]],
                style,
            )
            .map(|_| ()),
            roc_curves(stem("r"), "t", std::slice::from_ref(&roc), style).map(|_| ()),
            confusion_matrix(
                stem("m"),
                "t",
                &["a", "b"],
                &[vec![1, 2], vec![3, 4]],
                style,
            )
            .map(|_| ()),
        ];
        for r in results {
            if let Err(e) = r {
                assert!(
                    matches!(e, ReportError::InvalidArgument(_) | ReportError::Draw(_)),
                    "{e}"
                );
            }
        }
    }
    // Extreme but finite values.
    let huge = [Series::new("h", vec![-1e308, 1e308], vec![-1e308, 1e308])];
    let r = metric_vs_eps(
        dir.path().join("huge"),
        "t",
        "x",
        "y",
        &huge,
        &CurveAxes::default(),
        &PlotStyle::default(),
    );
    assert!(r.is_ok() || matches!(r, Err(ReportError::InvalidArgument(_))));
    let r = heatmap(
        dir.path().join("hugeh"),
        "t",
        "α",
        "r",
        &[1.0],
        &[1.0, 2.0],
        &[vec![Some(-1e308), Some(1e308)]],
        &PlotStyle::default(),
    );
    assert!(r.is_ok() || matches!(r, Err(ReportError::InvalidArgument(_))));
}
