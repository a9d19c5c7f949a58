//! A miniature of `cargo xtask generalization`: tiny synthetic data, one epoch, two arms, two
//! seeds, two held-out groups (one a group of two sources). Checks `--unit`, `--merge` with
//! missing units, that held-out sources are out of training, the summary's metrics and
//! `held_out`, the tables, figures and report, resume, Slurm scripts and bad held-out entries.

use dfr_study::generalization::{run, Generalization, GeneralizationOptions};
use dfr_study::{StudyOptions, Summary};
use std::path::Path;

fn study_file(dir: &Path, generalization: &str) -> std::path::PathBuf {
    let p = dir.join("tiny-generalization.toml");
    std::fs::write(
        &p,
        format!(
            "seeds = [0, 1]\n[study]\nname = \"tiny-gen\"\nresults_dir = \"{res}\"\n\
             [synth]\nsize = 32\nseed = 7\ntrace_gain = 4\n\
             [synth.train]\nreal_per_source = 4\nfake_per_source = 2\n\
             [synth.validation]\nreal_per_source = 2\nfake_per_source = 1\n\
             [synth.test]\nreal_per_source = 3\nfake_per_source = 2\n\
             [experiment.data]\nroot = \"{data}\"\n\
             [experiment.model]\nimage_size = 32\nbn_momentum = 0.1\n\
             [experiment.train]\nepochs = 1\nbatch_size = 4\nlr = 1e-3\nprogress = false\n\
             [eval]\nbatch_size = 8\n\
             [[arms]]\nname = \"baseline\"\nstrategy = \"baseline\"\n\
             [[arms]]\nname = \"gradreg\"\nstrategy = \"gradreg\"\n\
             [[arms]]\nname = \"unused\"\nstrategy = \"baseline\"\n\
             [generalization]\n{generalization}\n",
            res = dir.join("results").display(),
            data = dir.join("data").display()
        ),
    )
    .unwrap();
    p
}

const SECTION: &str = "arms = [\"baseline\", \"gradreg\"]\n\
     held_out = [\"faceapp\", { name = \"pggan\", sources = [\"pggan_v1\", \"pggan_v2\"] }]\n\
     [generalization.slurm]\nmax_parallel = 3\n";

fn args(config: &Path) -> GeneralizationOptions {
    GeneralizationOptions {
        study: StudyOptions {
            config: Some(config.to_path_buf()),
            ..StudyOptions::default()
        },
        ..GeneralizationOptions::default()
    }
}

fn modified(p: &Path) -> std::time::SystemTime {
    std::fs::metadata(p).unwrap().modified().unwrap()
}

#[test]
fn generalization_trains_without_the_held_out_sources_and_summarises_seen_and_held_out() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = study_file(dir.path(), SECTION);
    let out = dir.path().join("results/tiny-gen");

    // Units: seed-major, then group, then the arms that run (not `unused`).
    let g = Generalization::prepare(&args(&cfg).study).unwrap();
    let ids: Vec<String> = g.units().iter().map(|u| u.id.clone()).collect();
    assert_eq!(ids.len(), 8);
    assert_eq!(ids[0], "held-out-faceapp/baseline/seed-0");
    assert_eq!(ids[3], "held-out-pggan/gradreg/seed-0");
    assert_eq!(ids[4], "held-out-faceapp/baseline/seed-1");
    // The held-out sources are out of the train and validation splits, not the test split.
    let ec = g.experiment(&g.units()[3]).unwrap();
    assert_eq!(ec.data.train.exclude, ["pggan_v1", "pggan_v2"]);
    assert_eq!(ec.data.validation.exclude, ["pggan_v1", "pggan_v2"]);
    assert!(ec.data.test.exclude.is_empty());
    let ds = ec.data.scan().unwrap();
    assert!(ds
        .split(dfr_data::Split::Train)
        .iter()
        .all(|s| !s.method.starts_with("pggan")));

    // One unit alone; merging then says what is missing.
    let unit = run(&GeneralizationOptions {
        unit: Some(1),
        ..args(&cfg)
    })
    .unwrap();
    assert_eq!(unit, out.join("units/held-out-faceapp/gradreg/seed-0.json"));
    let e = run(&GeneralizationOptions {
        merge: true,
        ..args(&cfg)
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("7 of 8 units are not finished"), "{e}");
    assert!(e.contains("held-out-pggan/gradreg/seed-1"), "{e}");
    let e = run(&GeneralizationOptions {
        unit: Some(8),
        ..args(&cfg)
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("units 0..=7"), "{e}");

    // Everything: the finished unit is reused.
    let before = modified(&unit);
    let report = run(&args(&cfg)).unwrap();
    assert_eq!(report, out.join("report.md"));
    assert_eq!(modified(&unit), before, "a finished unit was redone");
    let s: Summary =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s.held_out.len(), 2);
    assert_eq!(s.held_out[1].name, "pggan");
    assert_eq!(s.held_out[1].sources, ["pggan_v1", "pggan_v2"]);
    assert_eq!(
        s.held_out[1].seen,
        ["faceapp", "stargan", "stylegan_celeba", "stylegan_ffhq"]
    );
    assert_eq!(s.test_images, 2 * 3 + 6 * 2);
    let names: Vec<&str> = s.arms.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["baseline", "gradreg"]);
    for arm in &names {
        for m in [
            "seen_roc_auc@faceapp",
            "held_out_roc_auc@pggan",
            "gap_macro_f1@faceapp",
            "held_out_accuracy@mean",
            "held_out_fake_recall@faceapp",
            "gap_roc_auc@mean",
            "val_roc_auc@pggan",
        ] {
            let v = s.metric(arm, m).unwrap_or_else(|| panic!("{arm} {m}"));
            assert_eq!(v.per_seed.len(), 2, "{arm} {m}");
            assert!(v.per_seed.iter().all(|x| x.is_finite()), "{arm} {m}");
        }
        // the mean over groups is the mean of the groups, seed by seed
        let mean = s.metric(arm, "held_out_roc_auc@mean").unwrap();
        let a = s.metric(arm, "held_out_roc_auc@faceapp").unwrap();
        let b = s.metric(arm, "held_out_roc_auc@pggan").unwrap();
        for i in 0..2 {
            let want = (a.per_seed[i] + b.per_seed[i]) / 2.0;
            assert!((mean.per_seed[i] - want).abs() < 1e-12);
        }
        // the gap is seen − held-out
        let gap = s.metric(arm, "gap_roc_auc@faceapp").unwrap();
        let seen = s.metric(arm, "seen_roc_auc@faceapp").unwrap();
        assert!((gap.mean - (seen.mean - a.mean)).abs() < 1e-12);
    }
    let c = s
        .comparison("baseline", "gradreg", "held_out_roc_auc@mean")
        .expect("the default comparison among the arms that ran");
    assert_eq!(c.n_seeds, 2);
    assert!(c.ci_method.contains("bootstrap"), "{}", c.ci_method);
    assert!(s
        .comparisons
        .iter()
        .all(|c| c.a != "unused" && c.b != "unused"));

    // Tables, figures, report.
    let t = std::fs::read_to_string(out.join("tables/held_out_roc_auc.csv")).unwrap();
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(
        lines[0],
        "arm,faceapp,faceapp_pm,pggan,pggan_pm,mean,mean_pm"
    );
    assert_eq!(lines.len(), 3);
    assert_eq!(
        std::fs::read_to_string(out.join("tables/units.csv"))
            .unwrap()
            .lines()
            .count(),
        9
    );
    let md = std::fs::read_to_string(&report).unwrap();
    assert!(md.contains("Table IV"), "{md}");
    assert!(md.contains("The generalisation gap of each arm"));
    assert!(md.contains("baseline held-out − baseline seen"), "{md}");
    for line in md.lines().filter(|l| l.starts_with("![")) {
        let target = line.split("](").nth(1).unwrap().trim_end_matches(')');
        assert!(out.join(target).is_file(), "broken link {target}");
    }
    assert!(out.join("figures/held_out_roc_auc.png").is_file());
    assert!(out.join("figures/gap_roc_auc.png").is_file());

    // Resume: a second run trains nothing; a changed configuration invalidates the units.
    let unit5 = out.join("units/held-out-pggan/baseline/seed-1.json");
    let before = modified(&unit5);
    run(&args(&cfg)).unwrap();
    assert_eq!(modified(&unit5), before);
    let changed = Generalization::prepare(&StudyOptions {
        overrides: vec!["train.lr=2e-3".into()],
        ..args(&cfg).study
    })
    .unwrap();
    // what changes nothing computed keeps them
    let cosmetic = Generalization::prepare(&StudyOptions {
        overrides: vec!["train.progress=true".into(), "train.threads=1".into()],
        ..args(&cfg).study
    })
    .unwrap();
    for u in changed.units() {
        assert!(changed.finished(&u).unwrap().is_none(), "{}", u.id);
        assert!(g.finished(&u).unwrap().is_some(), "{}", u.id);
        assert!(cosmetic.finished(&u).unwrap().is_some(), "{}", u.id);
    }

    // Slurm: one array task per unit, `--unit`, valid shell.
    let submit = run(&GeneralizationOptions {
        emit: Some(dfr_study::slurm::Emit::Slurm),
        ..args(&cfg)
    })
    .unwrap();
    let cells = std::fs::read_to_string(out.join("slurm/cells.sbatch")).unwrap();
    assert!(cells.contains("#SBATCH --array=0-7%3"), "{cells}");
    assert!(cells.contains(" generalization --config "), "{cells}");
    assert!(cells.contains("--unit \"$SLURM_ARRAY_TASK_ID\""), "{cells}");
    for script in [&submit, &out.join("slurm/merge.sbatch")] {
        let st = std::process::Command::new("bash")
            .arg("-n")
            .arg(script)
            .status()
            .unwrap();
        assert!(st.success(), "{} is not valid bash", script.display());
    }
}

#[test]
fn bad_held_out_entries_are_refused_before_any_training() {
    let dir = tempfile::tempdir().unwrap();
    let check = |section: &str, want: &[&str]| {
        let cfg = study_file(dir.path(), section);
        let e = match Generalization::prepare(&args(&cfg).study) {
            Ok(_) => panic!("{section}: accepted"),
            Err(e) => e.to_string(),
        };
        for w in want {
            assert!(e.contains(w), "{section}: {e}");
        }
        assert!(!dir.path().join("results/tiny-gen/units").exists());
    };
    check(
        "held_out = [\"deepfakes\"]",
        &[
            "generalization.held_out[0]",
            "`deepfakes`",
            "faceapp, pggan_v1",
        ],
    );
    check(
        "held_out = [\"ffhq\"]",
        &["generalization.held_out[0]", "not a fake source"],
    );
    check(
        "held_out = [\"faceapp\", \"faceapp\"]",
        &["held_out[1]", "twice"],
    );
    check("held_out = [\"mean\"]", &["held_out[0]", "not `mean`"]);
    check(
        "held_out = [{ name = \"g\", sources = [\"faceapp\", \"faceapp\"] }]",
        &["held_out[0]", "twice"],
    );
    check(
        "held_out = [{ name = \"all\", sources = [\"faceapp\", \"stargan\", \"pggan_v1\", \
         \"pggan_v2\", \"stylegan_celeba\", \"stylegan_ffhq\"] }]",
        &["held_out[0]", "nothing fake is left"],
    );
    check("arms = [\"nope\"]", &["generalization.arms[0]", "`nope`"]);
    let cfg = study_file(dir.path(), SECTION);
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("[eval]\n", "[eval]\nsplit = \"validation\"\n");
    std::fs::write(&cfg, text).unwrap();
    let e = match Generalization::prepare(&args(&cfg).study) {
        Ok(_) => panic!("validation accepted as the evaluation split"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("eval.split") && e.contains("test split"), "{e}");
    let p = dir.path().join("none.toml");
    std::fs::write(&p, "[study]\nname = \"x\"\n").unwrap();
    let e = match Generalization::prepare(&args(&p).study) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("no [generalization] section"), "{e}");
}

#[test]
fn shipped_generalization_studies_parse_and_the_default_is_embedded() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiments");
    for name in ["generalization", "generalization-full"] {
        let p = dir.join(format!("{name}.toml"));
        let cfg = dfr_study::StudyConfig::load(Some(&p))
            .unwrap_or_else(|e| panic!("{}: {e:#}", p.display()));
        let g = cfg.generalization.expect("[generalization]");
        assert!(cfg.seeds.len() >= 6, "{name}");
        assert!(g.held_out.len() >= 3, "{name}");
    }
    assert_eq!(
        dfr_study::generalization::GENERALIZATION,
        std::fs::read_to_string(dir.join("generalization.toml")).unwrap()
    );
}
