//! The synthetic generator: layout, determinism, reuse, atomic output.

use dfr_data::synth::{generate, SplitCounts, SynthConfig, SynthOutcome, SOURCES};
use dfr_data::{DataConfig, LayoutKind, Split};
use std::path::Path;

fn small(seed: u64) -> SynthConfig {
    let c = SplitCounts {
        real_per_source: 2,
        fake_per_source: 1,
    };
    SynthConfig {
        size: 32,
        seed,
        train: c,
        validation: c,
        test: c,
        trace_gain: 1,
    }
}

fn files(root: &Path) -> Vec<(String, Vec<u8>)> {
    let ds = DataConfig::new(root, LayoutKind::Dffd).scan().unwrap();
    ds.samples
        .iter()
        .map(|s| {
            let rel = s.path.strip_prefix(root).unwrap().display().to_string();
            (rel, std::fs::read(&s.path).unwrap())
        })
        .collect()
}

#[test]
fn writes_the_official_layout_with_every_source() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("d");
    assert_eq!(
        generate(&small(1), &root, false).unwrap(),
        SynthOutcome::Generated(30)
    );
    let ds = DataConfig::new(&root, LayoutKind::Dffd).scan().unwrap();
    for split in Split::ALL {
        let s = ds.split(split);
        assert_eq!(s.len(), 10);
        for src in SOURCES {
            assert!(
                s.iter().any(|x| x.method == src),
                "{src} missing in {split}"
            );
        }
    }
    let img = image::open(&ds.samples[0].path).unwrap();
    assert_eq!((img.width(), img.height()), (32, 32));
    // Nothing temporary is left beside the tree.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 1);
}

#[test]
fn deterministic_per_seed_and_different_across_seeds() {
    let dir = tempfile::tempdir().unwrap();
    generate(&small(5), &dir.path().join("a"), false).unwrap();
    generate(&small(5), &dir.path().join("b"), false).unwrap();
    generate(&small(6), &dir.path().join("c"), false).unwrap();
    let a = files(&dir.path().join("a"));
    assert_eq!(a, files(&dir.path().join("b")));
    let c = files(&dir.path().join("c"));
    assert_eq!(a.len(), c.len());
    assert!(
        a.iter().zip(&c).all(|(x, y)| x.1 != y.1),
        "a different seed changes every image"
    );
}

#[test]
fn reuses_a_matching_tree_and_refuses_to_clobber_another() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("d");
    generate(&small(1), &root, false).unwrap();
    assert_eq!(
        generate(&small(1), &root, false).unwrap(),
        SynthOutcome::Reused
    );
    let err = generate(&small(2), &root, false).unwrap_err().to_string();
    assert!(err.contains("--force"), "{err}");
    assert_eq!(
        generate(&small(2), &root, true).unwrap(),
        SynthOutcome::Generated(30)
    );
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("precious.txt"), "keep").unwrap();
    assert!(generate(&small(1), other.path(), false).is_err());
    assert!(other.path().join("precious.txt").exists());
    // --force does not delete a directory this generator did not write
    std::fs::create_dir(other.path().join("sub")).unwrap();
    let err = generate(&small(1), other.path(), true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("synth.json"), "{err}");
    assert!(other.path().join("precious.txt").exists() && other.path().join("sub").is_dir());
    // an empty directory is fine
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert!(generate(&small(1), &empty, true).is_ok());
}

#[test]
fn rejects_tiny_images() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SynthConfig {
        size: 8,
        ..small(0)
    };
    let err = generate(&cfg, &dir.path().join("d"), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("synth.size"), "{err}");
}

#[test]
fn trace_gain_scales_the_fake_traces_and_leaves_real_faces_alone() {
    use dfr_data::synth::render_source;
    use dfr_data::Split;
    let mean_abs_diff = |a: &[f32], b: &[f32]| {
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32
    };
    for real in ["ffhq", "celeba"] {
        let a = render_source(real, 32, 1, Split::Train, 0, 1.0);
        let b = render_source(real, 32, 1, Split::Train, 0, 4.0);
        assert_eq!(a.data, b.data, "{real} changed with the gain");
    }
    // PGGAN v1's checkerboard: the ±amp pattern grows with the gain.
    let checker = |g: f32| {
        let img = render_source("pggan_v1", 32, 1, Split::Train, 0, g);
        let n = 32 * 32;
        let mut s = 0.0f32;
        for y in 0..32 {
            for x in 0..32 {
                let sign = if (x + y) % 2 == 0 { 1.0 } else { -1.0 };
                s += sign * img.data[n + y * 32 + x];
            }
        }
        (s / n as f32, img)
    };
    let (c1, i1) = checker(1.0);
    let (c4, i4) = checker(4.0);
    assert!(c4 > 2.5 * c1 && c1 > 0.0, "checkerboard {c1} → {c4}");
    for fake in ["faceapp", "stargan", "pggan_v2", "stylegan_ffhq"] {
        let a = render_source(fake, 32, 1, Split::Train, 0, 1.0);
        let b = render_source(fake, 32, 1, Split::Train, 0, 4.0);
        assert!(
            mean_abs_diff(&a.data, &b.data) > 1e-3,
            "{fake} ignored the gain"
        );
    }
    assert!(mean_abs_diff(&i1.data, &i4.data) > 1e-3);
    let bad = SynthConfig {
        trace_gain: 0,
        ..SynthConfig::default()
    };
    assert!(bad
        .validate()
        .unwrap_err()
        .to_string()
        .contains("synth.trace_gain"));
}
