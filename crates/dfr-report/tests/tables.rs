//! DataFrames written as CSV, Parquet and Markdown.

use crate::common;

use common::no_temp_files;
use dfr_report::polars::prelude::*;
use dfr_report::table::{self, to_markdown, MarkdownOptions};
use dfr_report::{frame, write_all, ReportError};

fn results() -> DataFrame {
    frame(vec![
        Column::new("attack".into(), vec!["fgsm", "fgsm", "pgd", "pgd"]),
        Column::new("eps".into(), vec![0.0, 4.0 / 255.0, 0.0, 4.0 / 255.0]),
        Column::new(
            "accuracy".into(),
            vec![Some(0.971234), Some(0.41), None, Some(0.12)],
        ),
        Column::new("n".into(), vec![1000i64, 1000, 1000, 998]),
    ])
    .unwrap()
}

#[test]
fn write_all_writes_three_files_that_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let df = results();
    let paths = write_all(&df, dir.path().join("tables"), "robustness").unwrap();
    assert_eq!(paths.csv, dir.path().join("tables/robustness.csv"));

    let csv = table::read_csv(&paths.csv).unwrap();
    assert_eq!(csv.shape(), (4, 4));
    assert_eq!(
        csv.get_column_names()
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>(),
        vec!["attack", "eps", "accuracy", "n"]
    );
    let eps: Vec<Option<f64>> = csv.column("eps").unwrap().f64().unwrap().iter().collect();
    let expected_eps: Vec<Option<f64>> = df.column("eps").unwrap().f64().unwrap().iter().collect();
    assert_eq!(eps, expected_eps, "floats round-trip exactly");
    let acc: Vec<Option<f64>> = csv
        .column("accuracy")
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(acc, vec![Some(0.971234), Some(0.41), None, Some(0.12)]);
    let n: Vec<Option<i64>> = csv.column("n").unwrap().i64().unwrap().iter().collect();
    assert_eq!(n, vec![Some(1000), Some(1000), Some(1000), Some(998)]);
    let attack: Vec<Option<&str>> = csv
        .column("attack")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(
        attack,
        vec![Some("fgsm"), Some("fgsm"), Some("pgd"), Some("pgd")]
    );

    let pq = table::read_parquet(&paths.parquet).unwrap();
    assert!(
        pq.equals_missing(&df),
        "parquet round-trip:\n{pq:?}\nvs\n{df:?}"
    );

    let md = std::fs::read_to_string(&paths.markdown).unwrap();
    assert_eq!(md, to_markdown(&df, &MarkdownOptions::default()).unwrap());
    no_temp_files(&dir.path().join("tables"));
}

#[test]
fn markdown_table_layout() {
    let md = to_markdown(&results(), &MarkdownOptions::with_decimals(3)).unwrap();
    let lines: Vec<&str> = md.lines().collect();
    assert_eq!(lines.len(), 2 + 4, "{md}");
    assert_eq!(lines[0], "| attack | eps | accuracy | n |");
    assert_eq!(lines[1], "| --- | ---: | ---: | ---: |");
    assert_eq!(lines[2], "| fgsm | 0.000 | 0.971 | 1000 |");
    assert_eq!(lines[3], "| fgsm | 0.016 | 0.410 | 1000 |");
    assert_eq!(lines[4], "| pgd | 0.000 | — | 1000 |");
    let md = to_markdown(
        &results(),
        &MarkdownOptions {
            float_decimals: 1,
            null: "n/a".into(),
        },
    )
    .unwrap();
    assert!(md.contains("| pgd | 0.0 | n/a | 1000 |"), "{md}");
}

#[test]
fn markdown_escapes_and_special_values() {
    let df = frame(vec![
        Column::new(
            "name|x".into(),
            vec![Some("a|b"), Some("line\nbreak"), None],
        ),
        Column::new("v".into(), vec![f64::NAN, f64::INFINITY, -0.0001]),
        Column::new("ok".into(), vec![true, false, true]),
    ])
    .unwrap();
    let md = to_markdown(&df, &MarkdownOptions::with_decimals(2)).unwrap();
    let lines: Vec<&str> = md.lines().collect();
    assert_eq!(lines[0], "| name\\|x | v | ok |");
    assert_eq!(lines[1], "| --- | ---: | --- |");
    assert_eq!(lines[2], "| a\\|b | NaN | true |");
    assert_eq!(lines[3], "| line break | ∞ | false |");
    assert_eq!(lines[4], "| — | 0.00 | true |");
}

#[test]
fn empty_frames() {
    let df = DataFrame::empty();
    assert_eq!(to_markdown(&df, &MarkdownOptions::default()).unwrap(), "");
    let no_rows = frame(vec![Column::new("a".into(), Vec::<f64>::new())]).unwrap();
    assert_eq!(
        to_markdown(&no_rows, &MarkdownOptions::default()).unwrap(),
        "| a |\n| ---: |\n"
    );
}

#[test]
fn bad_input_gives_typed_errors() {
    let mismatched = frame(vec![
        Column::new("a".into(), vec![1.0, 2.0]),
        Column::new("b".into(), vec![1.0]),
    ]);
    assert!(matches!(mismatched, Err(ReportError::Polars(_))));
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        write_all(&results(), dir.path(), "a/b"),
        Err(ReportError::InvalidArgument(_))
    ));
    assert!(matches!(
        write_all(&results(), dir.path(), ""),
        Err(ReportError::InvalidArgument(_))
    ));
    assert!(matches!(
        table::read_parquet(dir.path().join("missing.parquet")),
        Err(ReportError::Io { .. })
    ));
    // A directory where a file should go.
    std::fs::create_dir(dir.path().join("x.csv")).unwrap();
    assert!(matches!(
        table::write_csv(&results(), dir.path().join("x.csv")),
        Err(ReportError::Io { .. })
    ));
    no_temp_files(dir.path());
}
