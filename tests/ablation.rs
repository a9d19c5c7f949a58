//! A miniature of `cargo xtask ablation`: tiny synthetic data, one epoch, the baseline and two
//! grid cells. Checks `--cell`, idempotence, `--merge` with a missing cell, the summary's
//! table, heatmaps and report, and the Slurm scripts.

use dfr_study::ablation::{run, Ablation, AblationOptions};
use dfr_study::StudyOptions;
use std::path::Path;

fn study_file(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("tiny-ablation.toml");
    std::fs::write(
        &p,
        format!(
            "seeds = [0, 1]\n[study]\nname = \"tiny-ablation\"\nresults_dir = \"{res}\"\n\
             [synth]\nsize = 32\nseed = 5\n\
             [synth.train]\nreal_per_source = 3\nfake_per_source = 1\n\
             [synth.validation]\nreal_per_source = 2\nfake_per_source = 1\n\
             [synth.test]\nreal_per_source = 2\nfake_per_source = 1\n\
             [experiment.data]\nroot = \"{data}\"\n\
             [experiment.model]\nimage_size = 32\nbn_momentum = 0.1\n\
             [experiment.train]\nepochs = 1\nbatch_size = 4\nlr = 1e-3\nprogress = false\n\
             [eval]\nlimit = 6\nbatch_size = 6\n\
             [attacks]\nfgsm = [0.005, 0.01]\npgd = [0.001]\nmifgsm = [0.001]\nsteps = 2\n\
             [ablation]\nalpha = [0.5]\nr = [0.05, 0.1]\n\
             [ablation.selection]\nlimit = 6\n\
             [ablation.slurm]\npartition = \"cpu\"\nmax_parallel = 2\nsetup = [\"echo ready\"]\n",
            res = dir.join("results").display(),
            data = dir.join("data").display()
        ),
    )
    .unwrap();
    p
}

fn args(config: &Path) -> AblationOptions {
    AblationOptions {
        study: StudyOptions {
            config: Some(config.to_path_buf()),
            ..StudyOptions::default()
        },
        ..AblationOptions::default()
    }
}

fn rows_of(csv: &Path) -> usize {
    std::fs::read_to_string(csv).unwrap().lines().count() - 1
}

fn modified(p: &Path) -> std::time::SystemTime {
    std::fs::metadata(p).unwrap().modified().unwrap()
}

#[test]
fn ablation_runs_cells_idempotently_merges_and_emits_slurm() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = study_file(dir.path());
    let out = dir.path().join("results/tiny-ablation");

    // One cell alone: its result file, no summary yet.
    let cell = run(&AblationOptions {
        cell: Some(2),
        ..args(&cfg)
    })
    .unwrap();
    assert_eq!(cell, out.join("cells/alpha0.5_r0.1/seed-0.json"));
    let first: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cell).unwrap()).unwrap();
    assert_eq!(first["alpha"], 0.5);
    assert_eq!(first["r"], 0.1);
    assert_eq!(first["key"]["experiment"]["train"]["strategy"], "gradreg");
    assert!(!out.join("report.md").exists());
    assert_eq!(first["seed"], 0);
    assert_eq!(first["point"], "alpha0.5_r0.1");
    assert!(run(&AblationOptions {
        cell: Some(6),
        ..args(&cfg)
    })
    .unwrap_err()
    .to_string()
    .contains("cells 0..=5"));

    // Merging now lists the two missing cells.
    let report = run(&AblationOptions {
        merge: true,
        ..args(&cfg)
    })
    .unwrap();
    let md = std::fs::read_to_string(&report).unwrap();
    assert!(md.contains("1 of 6 cells finished"), "{md}");
    assert!(md.contains("Missing cells") && md.contains("`baseline/seed-0`"));
    assert!(!md.contains("Selected: **"), "no point has every seed yet");

    // The whole grid: the finished cell is reused, the others run.
    let before = modified(&cell);
    let report = run(&args(&cfg)).unwrap();
    assert_eq!(report, out.join("report.md"));
    assert_eq!(modified(&cell), before, "a finished cell was redone");
    let md = std::fs::read_to_string(&report).unwrap();
    assert!(md.contains("6 of 6 cells finished"), "{md}");
    assert!(!md.contains("Missing cells"));
    assert!(md.contains("Selected: **"));
    let csv = std::fs::read_to_string(out.join("tables/ablation.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4, "header + 3 points:\n{csv}");
    assert!(
        lines[0].starts_with("point,alpha,r,seeds,selected,selection_score,selection_score_pm,")
    );
    assert!(lines[1].starts_with("baseline,,,2,"));
    assert!(lines[2].starts_with("alpha0.5_r0.05,0.5,0.05,2,"));
    assert_eq!(
        csv.matches(",true,").count(),
        1,
        "exactly one selected point"
    );
    assert_eq!(rows_of(&out.join("tables/ablation_cells.csv")), 6);
    for stem in [
        "selection_score",
        "selection_score_ci",
        "val_macro_f1",
        "pgd_nauc_macro_f1",
    ] {
        let img = image::open(out.join(format!("figures/ablation_{stem}.png"))).unwrap();
        assert!(img.width() > 100 && img.height() > 100, "{stem}");
    }
    for line in md.lines().filter(|l| l.starts_with("![")) {
        let target = line.split("](").nth(1).unwrap().trim_end_matches(')');
        assert!(out.join(target).is_file(), "broken link {target}");
    }
    // Every cell's numbers are real measurements in range.
    for id in [
        "baseline/seed-0",
        "alpha0.5_r0.05/seed-1",
        "alpha0.5_r0.1/seed-1",
    ] {
        let v: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out.join(format!("cells/{id}.json"))).unwrap(),
        )
        .unwrap();
        let score = v["selection"]["score"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&score), "{id}: {score}");
        assert_eq!(v["attacks"].as_array().unwrap().len(), 3);
        assert_eq!(v["attacks"][0]["eps"].as_array().unwrap().len(), 2);
    }

    // A changed configuration invalidates the cells' results; the same one keeps them.
    let same = Ablation::load(&args(&cfg).study).unwrap();
    let changed = Ablation::load(&StudyOptions {
        overrides: vec!["train.lr=2e-3".into()],
        ..args(&cfg).study
    })
    .unwrap();
    for c in same.cells() {
        assert!(same.finished(&c).unwrap().is_some(), "{}", c.id);
        assert!(changed.finished(&c).unwrap().is_none(), "{}", c.id);
    }

    // Slurm: an array over the three cells and a merge job, valid shell.
    let submit = run(&AblationOptions {
        emit: Some(dfr_study::ablation::Emit::Slurm),
        ..args(&cfg)
    })
    .unwrap();
    let cells = std::fs::read_to_string(out.join("slurm/cells.sbatch")).unwrap();
    assert!(cells.contains("#SBATCH --array=0-5%2"), "{cells}");
    assert!(cells.contains("#SBATCH --partition=cpu"));
    // sbatch reads #SBATCH lines itself: the log path is quoted (paths may hold spaces)
    assert!(cells.contains("#SBATCH --output=\""), "{cells}");
    assert!(cells.contains("echo ready"));
    assert!(cells.contains("--cell \"$SLURM_ARRAY_TASK_ID\""));
    assert!(cells.contains(&cfg.display().to_string()));
    let merge = std::fs::read_to_string(out.join("slurm/merge.sbatch")).unwrap();
    assert!(merge.contains("--merge"));
    for script in [
        &submit,
        &out.join("slurm/cells.sbatch"),
        &out.join("slurm/merge.sbatch"),
    ] {
        let st = std::process::Command::new("bash")
            .arg("-n")
            .arg(script)
            .status()
            .unwrap();
        assert!(st.success(), "{} is not valid bash", script.display());
    }
}

#[test]
fn a_study_without_an_ablation_section_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.toml");
    std::fs::write(&p, "[study]\nname = \"x\"\n").unwrap();
    let e = run(&args(&p)).unwrap_err().to_string();
    assert!(e.contains("no [ablation] section"), "{e}");
}

#[test]
fn shipped_study_files_parse_and_the_ablations_have_the_full_grid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiments");
    for name in [
        "quick",
        "quick-full",
        "quick-primary",
        "dffd-paper",
        "ablation",
        "ablation-dffd",
        "ablation-guan",
    ] {
        let p = dir.join(format!("{name}.toml"));
        let cfg = dfr_study::StudyConfig::load(Some(&p))
            .unwrap_or_else(|e| panic!("{}: {e:#}", p.display()));
        if name.starts_with("ablation") {
            let a = Ablation::load(&StudyOptions {
                config: Some(p.clone()),
                ..StudyOptions::default()
            })
            .unwrap();
            if name == "ablation-guan" {
                // Guan et al.'s grid.
                assert_eq!(a.grid.alpha, [0.0, 0.25, 0.5, 0.75, 1.0], "{name}");
                assert_eq!(a.grid.r, [0.0, 0.05, 0.1, 0.2], "{name}");
                assert_eq!(a.grid.points().len(), 21, "{name}");
            } else {
                assert_eq!(a.grid.alpha, [0.25, 0.5, 0.75, 1.0], "{name}");
                assert_eq!(a.grid.r, [0.01, 0.05, 0.1, 0.2], "{name}");
                assert_eq!(a.grid.points().len(), 17, "{name}");
            }
            assert_eq!(
                a.cells().len(),
                a.grid.points().len() * cfg.seeds.len(),
                "{name}"
            );
        } else {
            assert!(cfg.ablation.is_none(), "{name}");
        }
    }
    // The embedded default is experiments/ablation.toml.
    assert_eq!(
        dfr_study::ablation::ABLATION,
        std::fs::read_to_string(dir.join("ablation.toml")).unwrap()
    );
}
