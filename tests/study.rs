//! A miniature multi-seed study (`cargo xtask reproduce-tables` through `dfr-study`): tiny
//! synthetic data, two arms × two seeds, one epoch, the published ε grids and the worst-case
//! row on a handful of test images. Checks the report, `summary.json`, the per-(arm, seed)
//! run directories, that a second run reuses the finished work, and that a changed arm
//! invalidates only that arm's runs.

use dfr_study::{reproduce_tables, StudyOptions};
use std::path::{Path, PathBuf};

fn study_file(dir: &Path, gradreg_r: f64) -> PathBuf {
    let p = dir.join("tiny.toml");
    std::fs::write(
        &p,
        format!(
            "seeds = [0, 1]\n\
             [[arms]]\nname = \"baseline-frozen\"\nstrategy = \"baseline\"\n\
             experiment = {{ train = {{ freeze_shallow = true }} }}\n\
             [[arms]]\nname = \"gradreg\"\nstrategy = \"gradreg\"\n\
             experiment = {{ gradreg = {{ r = {gradreg_r:?} }} }}\n\
             [study]\nname = \"tiny\"\nresults_dir = \"{res}\"\n\
             [synth]\nsize = 32\nseed = 3\n\
             [synth.train]\nreal_per_source = 3\nfake_per_source = 1\n\
             [synth.validation]\nreal_per_source = 2\nfake_per_source = 1\n\
             [synth.test]\nreal_per_source = 2\nfake_per_source = 1\n\
             [experiment.data]\nroot = \"{data}\"\n\
             [experiment.model]\nimage_size = 32\n\
             [experiment.train]\nepochs = 1\nbatch_size = 4\nlr = 1e-3\nprogress = false\n\
             [eval]\nbatch_size = 8\n\
             [[eval.datasets]]\nname = \"again\"\nroot = \"{data}\"\nlayout = \"dffd\"\n\
             [attacks]\nsteps = 2\n\
             [worst_case]\neps = [0.001]\npgd_steps = 3\npgd_restarts = 2\napgd_steps = 3\nlimit = 4\n\
             [stats]\nresamples = 200\n\
             [cam]\nimages = 4\n",
            res = dir.join("results").display().to_string().replace('\\', "/"),
            data = dir.join("data").display().to_string().replace('\\', "/")
        ),
    )
    .unwrap();
    p
}

fn rows(csv: &Path) -> usize {
    std::fs::read_to_string(csv).unwrap().lines().count() - 1
}

fn modified(p: &Path) -> std::time::SystemTime {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .modified()
        .unwrap()
}

#[test]
fn a_multi_seed_study_writes_report_and_summary_and_reuses_finished_work() {
    let dir = tempfile::tempdir().unwrap();
    // Two runs side by side (one thread each on two cores).
    let opts = StudyOptions {
        config: Some(study_file(dir.path(), 0.05)),
        jobs: Some(2),
        ..StudyOptions::default()
    };
    let outcome = reproduce_tables(&opts).unwrap();
    let out = dir.path().join("results/tiny");
    assert_eq!(outcome.report, out.join("report.md"));
    let md = std::fs::read_to_string(&outcome.report).unwrap();
    for heading in [
        "Claims of the published study",
        "Training",
        "Clean test results",
        "FGSM (published protocol)",
        "PGD (published protocol)",
        "MIFGSM (published protocol)",
        "Normalised area under",
        "Worst case",
        "CAM consistency",
        "Comparisons",
        "Why the numbers differ",
    ] {
        assert!(md.contains(heading), "report lacks `{heading}`");
    }
    // Published numbers sit beside ours; two seeds can never give a verdict.
    assert!(
        md.contains("0.462") && md.contains("0.190"),
        "published numbers missing"
    );
    assert!(md.contains("not detectable"), "{md}");
    assert!(!md.contains("**supported**") && !md.contains("**contradicted**"));

    // summary.json: the documented shape.
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["study"], "tiny");
    assert_eq!(s["seeds"], serde_json::json!([0, 1]));
    let n = s["test_images"].as_u64().unwrap();
    let on_disk: usize = std::fs::read_dir(dir.path().join("data"))
        .unwrap()
        .flatten()
        .filter_map(|src| std::fs::read_dir(src.path().join("test")).ok())
        .map(|files| {
            files
                .flatten()
                .filter(|f| f.path().extension().is_some_and(|e| e == "png"))
                .count()
        })
        .sum();
    assert_eq!(n as usize, on_disk, "the whole test split by default");
    let arms = s["arms"].as_array().unwrap();
    assert_eq!(arms.len(), 2);
    assert_eq!(arms[0]["name"], "baseline-frozen");
    assert_eq!(arms[0]["frozen_shallow"], true);
    assert_eq!(arms[1]["strategy"], "gradreg");
    assert_eq!(arms[1]["direction"], "gradient");
    for metric in [
        "clean_accuracy",
        "clean_macro_f1",
        "fgsm_nauc_accuracy",
        "pgd_nauc_macro_f1",
        "worst_case_accuracy@0.001",
    ] {
        let m = &arms[0]["metrics"][metric];
        assert_eq!(
            m["per_seed"].as_array().map(Vec::len),
            Some(2),
            "{metric}: {m}"
        );
        let (lo, mean, hi) = (
            m["ci_low"].as_f64().unwrap(),
            m["mean"].as_f64().unwrap(),
            m["ci_high"].as_f64().unwrap(),
        );
        assert!(lo <= mean && mean <= hi, "{metric}: {m}");
    }
    let c = s["comparisons"].as_array().unwrap();
    assert!(!c.is_empty());
    assert_eq!(
        (c[0]["a"].as_str(), c[0]["b"].as_str()),
        (Some("baseline-frozen"), Some("gradreg"))
    );
    for x in c {
        assert_eq!(x["n_seeds"], 2);
        assert_eq!(x["verdict"], "not_detectable", "{x}");
        assert!(x["p_value"].as_f64().unwrap() >= 0.5, "{x}");
        assert_eq!(x["min_possible_p"], 0.5);
    }
    // The worst case runs on 4 of the test images and takes the per-image minimum over every
    // attack at ε = 0.001, the published ones (which evaluated the whole split) included on
    // those images: never above the published protocol's PGD there. Each worst-case attack
    // ran only on the images the attacks before it left correct; recomputed here from the
    // cached reports, the per-image minimum is the summary's.
    let mut most_attacks = [0usize; 2];
    for (i, arm) in ["baseline-frozen", "gradreg"].iter().enumerate() {
        let worst = arms[i]["metrics"]["worst_case_accuracy@0.001"]["per_seed"]
            .as_array()
            .unwrap();
        for (s, w) in worst.iter().enumerate() {
            let dir = out.join(format!("runs/{arm}/seed-{s}/eval"));
            let read = |f: &str| -> Option<serde_json::Value> {
                let t = std::fs::read_to_string(dir.join(f)).ok()?;
                Some(serde_json::from_str::<serde_json::Value>(&t).unwrap()["value"].clone())
            };
            // (ids, verdict per id at ε = 0.001) of one single-attack report
            let verdicts = |r: &serde_json::Value| -> Vec<(u64, bool)> {
                let ps = &r["per_sample"];
                let e = r["attacks"][0]["results"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .position(|e| e["eps"] == 0.001)
                    .unwrap();
                let ids = ps["index"].as_array().unwrap();
                (0..ids.len())
                    .map(|k| {
                        (
                            ids[k].as_u64().unwrap(),
                            ps["adv_pred"][0][e][k] == ps["labels"][k],
                        )
                    })
                    .collect()
            };
            let pgd = read("pgd.json").unwrap();
            let n = pgd["per_sample"]["labels"].as_array().unwrap().len();
            let images: Vec<u64> = dfr_attacks::eval::spread_indices(n, Some(4))
                .into_iter()
                .map(|j| j as u64)
                .collect();
            let noise = read("noise.json").unwrap();
            let noise_ids: Vec<u64> = verdicts(&noise).iter().map(|v| v.0).collect();
            assert_eq!(
                noise_ids, images,
                "the probe runs on every worst-case image"
            );
            let mut done: Vec<Vec<(u64, bool)>> = ["fgsm.json", "pgd.json", "mifgsm.json"]
                .iter()
                .map(|f| verdicts(&read(f).unwrap()))
                .collect();
            let survives = |done: &[Vec<(u64, bool)>], id: u64| {
                done.iter().all(|v| v.iter().all(|&(j, ok)| j != id || ok))
            };
            for f in [
                "worst-pgd3-r0.json",
                "worst-pgd3-r1.json",
                "worst-apgd3.json",
            ] {
                let left: Vec<u64> = images
                    .iter()
                    .copied()
                    .filter(|&j| survives(&done, j))
                    .collect();
                match read(f) {
                    Some(r) => {
                        let v = verdicts(&r);
                        let ids: Vec<u64> = v.iter().map(|x| x.0).collect();
                        assert_eq!(ids, left, "{arm} seed {s}: {f} runs on the survivors");
                        done.push(v);
                    }
                    None => assert!(
                        left.is_empty(),
                        "{arm} seed {s}: {f} skipped with {left:?} left"
                    ),
                }
            }
            most_attacks[i] = most_attacks[i].max(done.len());
            let robust = images.iter().filter(|&&j| survives(&done, j)).count() as f64 / 4.0;
            assert_eq!(w.as_f64().unwrap(), robust, "{arm} seed {s}");
            let at = verdicts(&pgd)
                .iter()
                .filter(|(j, ok)| images.contains(j) && *ok)
                .count() as f64
                / 4.0;
            assert!(
                w.as_f64().unwrap() <= at + 1e-12,
                "{arm} seed {s}: {w} > PGD {at} on the same images"
            );
        }
    }
    assert!(
        md.contains("n = 2 seeds × 4 worst-case test images"),
        "the worst-case claim names its own images"
    );
    let worst_csv = std::fs::read_to_string(out.join("tables/worst_case.csv")).unwrap();
    let header: Vec<&str> = worst_csv.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    assert_eq!(worst_csv.lines().count(), 3, "{worst_csv}");
    for (i, line) in worst_csv.lines().skip(1).enumerate() {
        let f: Vec<&str> = line.split(',').collect();
        // The published FGSM, PGD and MI-FGSM at ε = 0.001, then 2 PGD restarts and APGD
        // as long as images were left: the most any image of the arm met.
        assert_eq!(
            f[col("attacks_per_image")],
            most_attacks[i].to_string(),
            "{line}"
        );
        let num = |c: &str| f[col(c)].parse::<f64>().unwrap();
        assert!(
            num("worst_case_accuracy") <= num("published_protocol_pgd_accuracy") + 1e-12,
            "{line}"
        );
    }

    // Tables and figures.
    let t = out.join("tables");
    assert_eq!(
        rows(&t.join("clean.csv")),
        3,
        "two arms and the published baseline"
    );
    assert_eq!(
        rows(&t.join("pgd.csv")),
        2 * 3 + 2 * 3,
        "arms × ε, then the published rows"
    );
    assert_eq!(rows(&t.join("worst_case.csv")), 2);
    let worst = std::fs::read_to_string(t.join("worst_case.csv")).unwrap();
    assert!(
        worst.contains("noise_accuracy") && worst.contains("noise_only_errors"),
        "{worst}"
    );
    assert!(rows(&t.join("comparisons.csv")) >= 10);
    for stem in ["clean", "fgsm", "normalized_auc", "comparisons"] {
        assert!(t.join(format!("{stem}.parquet")).is_file());
    }
    for fig in ["fgsm_accuracy.png", "pgd_macro_f1.png", "cam_gallery.png"] {
        let img = image::open(out.join("figures").join(fig)).unwrap();
        assert!(img.width() > 100 && img.height() > 100, "{fig}");
    }
    for line in md.lines().filter(|l| l.starts_with("![")) {
        let target = line.split("](").nth(1).unwrap().trim_end_matches(')');
        assert!(out.join(target).is_file(), "broken link {target}");
    }

    // Localisation of the fake-class Grad-CAM against the synthetic masks: the study's
    // statistics come from each run's cam.json, values in [0, 1].
    assert!(md.contains("Localisation against the manipulation masks"));
    let arms = s["arms"].as_array().unwrap();
    for (arm, a) in ["baseline-frozen", "gradreg"].iter().zip(arms) {
        for (metric, key) in [
            ("localisation_iinc", "iinc"),
            ("localisation_pbca", "pbca"),
            ("pgd_localisation_iinc", "iinc"),
        ] {
            let per_seed = a["metrics"][metric]["per_seed"]
                .as_array()
                .unwrap_or_else(|| panic!("{arm} {metric}"));
            assert_eq!(per_seed.len(), 2, "{arm} {metric}");
            for (seed, v) in per_seed.iter().enumerate() {
                let cam: serde_json::Value = serde_json::from_str(
                    &std::fs::read_to_string(
                        out.join(format!("runs/{arm}/seed-{seed}/eval/cam.json")),
                    )
                    .unwrap(),
                )
                .unwrap();
                let l = &cam["value"]["localisation"];
                assert!(
                    l["images"].as_u64().unwrap() >= 1 && l["missing_masks"] == 0,
                    "{l}"
                );
                let maps = if metric.starts_with("pgd_") {
                    l["adversarial"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|x| x["attack"] == "pgd")
                        .unwrap()
                } else {
                    &l["clean"]
                };
                assert_eq!(
                    v.as_f64(),
                    maps["fakes"][key].as_f64(),
                    "{arm} seed {seed} {metric}"
                );
                assert!((0.0..=1.0).contains(&v.as_f64().unwrap()), "{metric} {v}");
            }
        }
    }
    // Cross-dataset evaluation, here on the study's own test split in the DFFD layout:
    // the same images, so the same clean ROC-AUC per seed; no video ids, no video metrics.
    for a in arms {
        let again = &a["metrics"]["again_frame_roc_auc"]["per_seed"];
        assert_eq!(
            again, &a["metrics"]["clean_roc_auc"]["per_seed"],
            "{}",
            a["name"]
        );
        assert!(a["metrics"]["again_video_roc_auc"].is_null());
    }
    assert!(md.contains("Cross-dataset evaluation"));
    assert_eq!(rows(&t.join("datasets.csv")), 2);
    let loc = std::fs::read_to_string(t.join("localisation.csv")).unwrap();
    assert!(
        loc.starts_with("model,images,maps,empty_maps,iinc,"),
        "{loc}"
    );
    assert!(
        loc.contains("all fakes") && loc.contains("all reals"),
        "{loc}"
    );
    assert!(rows(&t.join("localisation.csv")) >= 2 * 3, "{loc}");

    // Every (arm, seed) has its own run directory and evaluations.
    let eval = |arm: &str, seed: u64, f: &str| out.join(format!("runs/{arm}/seed-{seed}/eval/{f}"));
    for arm in ["baseline-frozen", "gradreg"] {
        for seed in [0, 1] {
            for f in [
                "fgsm.json",
                "pgd.json",
                "worst-pgd3-r0.json",
                "worst-pgd3-r1.json",
                "worst-apgd3.json",
                "cam.json",
            ] {
                assert!(eval(arm, seed, f).is_file(), "{arm} {seed} {f}");
            }
        }
    }
    // Seeds differ: different initialisation, order and augmentation.
    let w = |arm: &str, seed: u64| {
        std::fs::read(out.join(format!("runs/{arm}/seed-{seed}/best.safetensors"))).unwrap()
    };
    assert_ne!(w("gradreg", 0), w("gradreg", 1));

    // A second run reuses everything.
    let before = modified(&eval("gradreg", 1, "pgd.json"));
    let again = reproduce_tables(&opts).unwrap();
    assert_eq!(
        modified(&eval("gradreg", 1, "pgd.json")),
        before,
        "evaluation was redone"
    );
    assert_eq!(
        again.summary, outcome.summary,
        "the same runs give the same statistics"
    );

    // A changed arm invalidates only that arm's runs.
    let frozen_before = modified(&eval("baseline-frozen", 0, "pgd.json"));
    let changed = StudyOptions {
        config: Some(study_file(dir.path(), 0.1)),
        jobs: Some(1),
        ..StudyOptions::default()
    };
    reproduce_tables(&changed).unwrap();
    assert_eq!(
        modified(&eval("baseline-frozen", 0, "pgd.json")),
        frozen_before
    );
    assert_ne!(
        modified(&eval("gradreg", 1, "pgd.json")),
        before,
        "gradreg was not redone"
    );
    let cfg = std::fs::read_to_string(out.join("runs/gradreg/seed-1/config.toml")).unwrap();
    assert!(cfg.contains("r = 0.1"), "{cfg}");

    // Changed back, gradreg retrains one run at a time (on every thread) to exactly the
    // numbers it had when two ran side by side.
    // (the study file is rewritten: `changed` overwrote it with r = 0.1)
    assert_eq!(study_file(dir.path(), 0.05), opts.config.clone().unwrap());
    let back = reproduce_tables(&StudyOptions {
        jobs: Some(1),
        ..opts.clone()
    })
    .unwrap();
    assert_eq!(
        back.summary, outcome.summary,
        "the statistics depend on how many runs went side by side"
    );

    // One (arm, seed) alone, as a job-array task: no report is rewritten.
    let report_before = modified(&out.join("report.md"));
    let one = reproduce_tables(&StudyOptions {
        only: Some(("gradreg".into(), 0)),
        ..changed.clone()
    })
    .unwrap();
    assert_eq!(one.report, out.join("runs/gradreg/seed-0"));
    assert_eq!(modified(&out.join("report.md")), report_before);
    let e = reproduce_tables(&StudyOptions {
        only: Some(("nope".into(), 0)),
        ..changed
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("nope") && e.contains("baseline-frozen"), "{e}");
}

#[test]
fn a_cross_dataset_set_that_does_not_scan_is_an_error_before_any_training() {
    let dir = tempfile::tempdir().unwrap();
    let file = study_file(dir.path(), 0.05);
    let text = std::fs::read_to_string(&file).unwrap().replacen(
        "layout = \"dffd\"",
        "layout = \"csv\"",
        1,
    );
    std::fs::write(&file, text).unwrap();
    let e = reproduce_tables(&StudyOptions {
        config: Some(file),
        ..StudyOptions::default()
    })
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("eval.datasets[0].root") && e.contains("manifest.csv"),
        "{e}"
    );
    assert!(
        !dir.path().join("results/tiny/runs").exists(),
        "nothing was trained"
    );
}
