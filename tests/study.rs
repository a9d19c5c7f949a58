//! A miniature of `cargo xtask reproduce-tables`: tiny synthetic data, one epoch, the
//! published ε grids on a handful of test images; checks the report's tables and files, and
//! that a second run reuses the finished work.

use std::path::Path;
use xtask::study::{reproduce_tables, StudyArgs};

fn study_file(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("tiny.toml");
    std::fs::write(
        &p,
        format!(
            "[study]\nname = \"tiny\"\nresults_dir = \"{res}\"\n\
             [synth]\nsize = 32\nseed = 3\n\
             [synth.train]\nreal_per_source = 3\nfake_per_source = 1\n\
             [synth.validation]\nreal_per_source = 2\nfake_per_source = 1\n\
             [synth.test]\nreal_per_source = 2\nfake_per_source = 1\n\
             [experiment.data]\nroot = \"{data}\"\n\
             [experiment.model]\nimage_size = 32\n\
             [experiment.train]\nepochs = 1\nbatch_size = 4\nlr = 1e-3\nprogress = false\n\
             [eval]\nlimit = 6\nbatch_size = 6\n\
             [attacks]\nsteps = 2\n\
             [cam]\nimages = 2\n",
            res = dir.join("results").display(),
            data = dir.join("data").display()
        ),
    )
    .unwrap();
    p
}

fn rows(csv: &Path) -> usize {
    std::fs::read_to_string(csv).unwrap().lines().count() - 1
}

#[test]
fn reproduce_tables_writes_the_report_and_reuses_finished_work() {
    let dir = tempfile::tempdir().unwrap();
    let args = StudyArgs {
        config: Some(study_file(dir.path())),
        ..StudyArgs::default()
    };
    let report = reproduce_tables(args.clone()).unwrap();
    let out = dir.path().join("results/tiny");
    assert_eq!(report, out.join("report.md"));
    let md = std::fs::read_to_string(&report).unwrap();
    for heading in [
        "Clean test results",
        "FGSM (baseline)",
        "PGD: baseline vs regularised",
        "MIFGSM: baseline vs regularised",
        "Effect of gradient regularisation",
        "Normalised area under",
        "CAM consistency",
        "Why the numbers differ",
    ] {
        assert!(md.contains(heading), "report lacks `{heading}`");
    }
    // Published numbers sit beside ours.
    assert!(
        md.contains("0.462") && md.contains("0.1902"),
        "published numbers missing"
    );
    let t = out.join("tables");
    assert_eq!(
        rows(&t.join("clean.csv")),
        3,
        "baseline, gradreg, published baseline"
    );
    assert_eq!(rows(&t.join("fgsm_comparison.csv")), 4);
    assert_eq!(rows(&t.join("pgd_comparison.csv")), 3);
    assert_eq!(rows(&t.join("normalized_auc.csv")), 3);
    assert_eq!(rows(&t.join("cam_consistency.csv")), 3);
    for stem in ["clean", "fgsm_comparison", "normalized_auc"] {
        assert!(t.join(format!("{stem}.parquet")).is_file());
        assert!(t.join(format!("{stem}.md")).is_file());
    }
    for fig in ["fgsm_accuracy.png", "pgd_macro_f1.png", "cam_gallery.png"] {
        let img = image::open(out.join("figures").join(fig)).unwrap();
        assert!(img.width() > 100 && img.height() > 100, "{fig}");
    }
    // Every image in the report resolves.
    for line in md.lines().filter(|l| l.starts_with("![")) {
        let target = line.split("](").nth(1).unwrap().trim_end_matches(')');
        assert!(out.join(target).is_file(), "broken link {target}");
    }

    // A second run reuses the training runs and the cached evaluations.
    let eval = out.join("eval/baseline-pgd.json");
    let before = std::fs::metadata(&eval).unwrap().modified().unwrap();
    reproduce_tables(args).unwrap();
    assert_eq!(
        std::fs::metadata(&eval).unwrap().modified().unwrap(),
        before,
        "evaluation was redone"
    );
}
