//! The Markdown report page renders tables and images with relative links.

use crate::common;

use dfr_report::markdown::{ReportPage, REPORT_FILE_NAME};
use dfr_report::polars::prelude::*;
use dfr_report::{frame, metric_vs_eps, CurveAxes, MarkdownOptions, PlotStyle, Series};

#[test]
fn report_page_links_tables_and_images() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let plots = metric_vs_eps(
        out.join("figures").join("fgsm accuracy"),
        "FGSM accuracy",
        "ε",
        "accuracy",
        &[Series::new(
            "baseline",
            vec![0.0, 0.01, 0.02],
            vec![0.9, 0.5, 0.2],
        )],
        &CurveAxes::default(),
        &PlotStyle::default(),
    )
    .unwrap();
    let df = frame(vec![
        Column::new("model".into(), vec!["baseline", "regularised"]),
        Column::new("clean acc".into(), vec![0.97, 0.95]),
        Column::new("pgd acc".into(), vec![Some(0.03), None]),
    ])
    .unwrap();

    let mut page = ReportPage::new("Robustness report");
    page.section("Summary")
        .paragraph("Gradient regularisation trades **2 points** of clean accuracy for robustness.");
    page.table_with_caption("Table 1: accuracy", &df, &MarkdownOptions::with_decimals(2))
        .unwrap();
    page.section("FGSM")
        .image("FGSM accuracy vs ε", &plots.png)
        .link("vector version", &plots.svg)
        .link("elsewhere", "../other/x.csv");
    let path = page.write(&out).unwrap();
    assert_eq!(path, out.join(REPORT_FILE_NAME));
    common::no_temp_files(&out);

    let md = std::fs::read_to_string(&path).unwrap();
    assert!(md.starts_with("# Robustness report\n"), "{md}");
    assert!(md.contains("\n## Summary\n"));
    assert!(md.contains(
        "\n*Table 1: accuracy*\n\n| model | clean acc | pgd acc |\n| --- | ---: | ---: |\n"
    ));
    assert!(md.contains("| baseline | 0.97 | 0.03 |"));
    assert!(md.contains("| regularised | 0.95 | — |"));
    assert!(
        md.contains("![FGSM accuracy vs ε](figures/fgsm%20accuracy.png)"),
        "{md}"
    );
    assert!(md.contains("[vector version](figures/fgsm%20accuracy.svg)"));
    assert!(md.contains("[elsewhere](../other/x.csv)"));
    // The linked image exists relative to the page.
    assert!(out.join("figures/fgsm accuracy.png").exists());
    // Table rows: header + separator + 2.
    let table_lines = md.lines().filter(|l| l.starts_with('|')).count();
    assert_eq!(table_lines, 4);
}

#[test]
fn render_without_base_keeps_paths() {
    let mut page = ReportPage::new("T  with\nnewline");
    page.subsection("Sub").image("a [b]", "x/y.png");
    let md = page.render();
    assert_eq!(md, "# T with newline\n\n### Sub\n\n![a \\[b\\]](x/y.png)\n");
}
