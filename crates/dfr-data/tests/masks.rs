//! Manipulation masks: what the generator writes, how the DFFD layout finds them, and the
//! errors of masks that do not fit their image or do not decode.

use dfr_data::mask::{load_mask, mask_path, mask_source, write_mask_png, MaskSource, MASKS_DIR};
use dfr_data::synth::{
    generate, render_source, render_source_with_mask, SplitCounts, SynthConfig, SynthOutcome,
};
use dfr_data::{DataConfig, DataError, Label, LayoutKind, Split};

fn small() -> SynthConfig {
    let c = SplitCounts {
        real_per_source: 1,
        fake_per_source: 2,
    };
    SynthConfig {
        size: 32,
        seed: 3,
        train: c,
        validation: c,
        test: c,
        trace_gain: 1,
    }
}

fn mean(v: &[f32]) -> f32 {
    v.iter().sum::<f32>() / v.len() as f32
}

#[test]
fn each_fake_source_has_the_mask_of_its_traces() {
    for src in ["ffhq", "celeba"] {
        let (_, m) = render_source_with_mask(src, 32, 1, Split::Test, 0, 1.0);
        assert!(m.is_none(), "{src}: real images have no mask");
    }
    for (src, lo, hi) in [
        ("faceapp", 0.005, 0.3), // the mouth
        ("stargan", 0.2, 0.95),  // face and hair
        ("pggan_v1", 1.0, 1.0),  // whole-image synthesis
        ("pggan_v2", 1.0, 1.0),
        ("stylegan_celeba", 1.0, 1.0),
        ("stylegan_ffhq", 1.0, 1.0),
    ] {
        for i in 0..3 {
            let (img, m) = render_source_with_mask(src, 32, 1, Split::Test, i, 1.0);
            // the image is the one render_source gives: a mask draws no random number
            assert_eq!(img, render_source(src, 32, 1, Split::Test, i, 1.0), "{src}");
            let m = m.unwrap();
            assert_eq!(m.len(), 32 * 32);
            assert!(m.iter().all(|v| (0.0..=1.0).contains(v)));
            let f = mean(&m);
            assert!(f >= lo && f <= hi, "{src} #{i}: mask covers {f}");
        }
    }
    // faceapp's paste has a soft edge, stargan's a hard one
    let (_, m) = render_source_with_mask("faceapp", 64, 1, Split::Test, 0, 1.0);
    assert!(m.unwrap().iter().any(|&v| v > 0.0 && v < 1.0));
    let (_, m) = render_source_with_mask("stargan", 64, 1, Split::Test, 0, 1.0);
    assert!(m.unwrap().iter().all(|&v| v == 0.0 || v == 1.0));
}

#[test]
fn the_tree_has_a_mask_for_every_fake_and_the_layout_finds_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("d");
    generate(&small(), &root, false).unwrap();
    let cfg = DataConfig::new(&root, LayoutKind::Dffd);
    // the masks folder is not a source
    let ds = cfg.scan().unwrap();
    assert_eq!(ds.samples.len(), 3 * (2 + 6 * 2));
    for s in &ds.samples {
        match (s.label, mask_source(&cfg, s)) {
            (Label::Real, MaskSource::Real) => {}
            (Label::Fake, MaskSource::File(p)) => {
                let m = load_mask(&p, Some(&s.path), 32).unwrap();
                let (_, want) = render_source_with_mask(
                    &s.method,
                    32,
                    3,
                    s.split,
                    s.path.file_stem().unwrap().to_str().unwrap()[s.method.len() + 1..]
                        .parse()
                        .unwrap(),
                    1.0,
                );
                let want = want.unwrap();
                let worst = m
                    .iter()
                    .zip(&want)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max);
                assert!(
                    worst <= 0.5 / 255.0 + 1e-6,
                    "{}: 8-bit rounding only, got {worst}",
                    p.display()
                );
            }
            other => panic!("{}: {other:?}", s.path.display()),
        }
    }
    // another layout has no masks
    let folder = DataConfig::new(&root, LayoutKind::Folder);
    let fake = ds.samples.iter().find(|s| s.label == Label::Fake).unwrap();
    assert_eq!(mask_source(&folder, fake), MaskSource::Missing);
}

#[test]
fn a_tree_written_without_masks_gets_them_on_reuse() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("d");
    generate(&small(), &root, false).unwrap();
    let one = mask_path(
        &root,
        std::path::Path::new("stargan/train/stargan_00001.png"),
    );
    let before = std::fs::read(&one).unwrap();
    let image = root.join("stargan/train/stargan_00001.png");
    let image_before = std::fs::read(&image).unwrap();
    std::fs::remove_dir_all(root.join(MASKS_DIR)).unwrap();
    assert_eq!(
        generate(&small(), &root, false).unwrap(),
        SynthOutcome::Reused
    );
    assert_eq!(std::fs::read(&one).unwrap(), before);
    assert_eq!(std::fs::read(&image).unwrap(), image_before);
    // nothing temporary left in the tree
    let names: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

#[test]
fn a_mask_of_another_size_or_that_does_not_decode_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("img.png");
    write_mask_png(&image, 8, 8, &[0.5; 64]).unwrap(); // any 8×8 image
    let mask = dir.path().join("mask.png");
    write_mask_png(&mask, 4, 8, &[1.0; 32]).unwrap();
    let e = load_mask(&mask, Some(&image), 8).unwrap_err();
    assert!(matches!(e, DataError::MaskSize { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("mask.png") && msg.contains("4×8") && msg.contains("8×8"),
        "{msg}"
    );
    let broken = dir.path().join("broken.png");
    std::fs::write(&broken, b"not a png").unwrap();
    let e = load_mask(&broken, None, 8).unwrap_err();
    assert!(
        matches!(e, DataError::Decode { .. }) && e.to_string().contains("broken.png"),
        "{e}"
    );
    assert!(write_mask_png(&mask, 4, 4, &[1.0; 3]).is_err());
    // resizing keeps values in [0, 1]
    let m = load_mask(&mask, None, 5).unwrap();
    assert_eq!(m.len(), 25);
    assert!(m.iter().all(|&v| (v - 1.0).abs() < 1e-6));
}
