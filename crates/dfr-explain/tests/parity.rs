//! Parity with the reference vectors (pytorch-grad-cam 1.5 and the fixtures' IINC /
//! Pearson definitions).

use dfr_explain::parity::{consistency_checks, gradcam_checks, Check};

/// The fixture directory; `None` (skip) or a failure under `CI` when missing.
fn fixtures() -> Option<std::path::PathBuf> {
    dfr_parity::fixtures_for_test("")
}

fn assert_all(name: &str, checks: &[Check]) {
    for c in checks {
        println!("{c}");
    }
    let failed: Vec<_> = checks.iter().filter(|c| !c.passed).collect();
    assert!(failed.is_empty(), "{name}: failed checks {failed:#?}");
}

#[test]
fn gradcam_case_parity() {
    let Some(dir) = fixtures() else { return };
    let checks = gradcam_checks(&dir).expect("gradcam_case fixtures");
    assert_eq!(checks.len(), 4);
    assert_all("gradcam_case", &checks);
}

#[test]
fn cam_consistency_case_parity() {
    let Some(dir) = fixtures() else { return };
    let checks = consistency_checks(&dir).expect("cam_consistency_case fixtures");
    assert_eq!(checks.len(), 6);
    assert_all("cam_consistency_case", &checks);
}

fn load(
    dir: &std::path::Path,
    file: &str,
) -> std::collections::HashMap<String, candle_core::Tensor> {
    candle_core::safetensors::load(dir.join(file), &candle_core::Device::Cpu).expect(file)
}

/// SSIM of the fixture pairs against scikit-image 0.26's
/// `structural_similarity(a, b, data_range=1, gaussian_weights=True, sigma=1.5,
/// use_sample_covariance=False)` on float64 copies of the maps.
#[test]
fn ssim_matches_scikit_image() {
    let Some(dir) = fixtures() else { return };
    let case = load(&dir, "cam_consistency_case.safetensors");
    let (n, h, w) = case["cam_a"].dims3().unwrap();
    let a: Vec<f32> = case["cam_a"].flatten_all().unwrap().to_vec1().unwrap();
    let b: Vec<f32> = case["cam_b"].flatten_all().unwrap().to_vec1().unwrap();
    let want = [
        0.9415188725574173,
        0.9193326351079286,
        5.349367751375092e-06,
    ];
    assert_eq!(n, want.len());
    let hw = h * w;
    for i in 0..n {
        let s = dfr_explain::ssim(
            &a[i * hw..(i + 1) * hw],
            &b[i * hw..(i + 1) * hw],
            h,
            w,
            &dfr_explain::SsimOptions::default(),
        )
        .unwrap();
        println!("ssim[{i}] = {s} (scikit-image {})", want[i]);
        assert!(
            (s - want[i]).abs() < 1e-10,
            "ssim[{i}] = {s}, want {}",
            want[i]
        );
    }
}

/// FNV-1a of the bytes.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

/// Overlays of the fixture images with the reference CAMs, byte for byte as
/// pytorch-grad-cam 1.5's `show_cam_on_image(img, cam, use_rgb=True, image_weight)`
/// with OpenCV 5.0 computes them (FNV-1a hashes and byte sums of the H×W×3 outputs).
#[test]
fn overlay_matches_show_cam_on_image() {
    let Some(dir) = fixtures() else { return };
    let case = load(&dir, "gradcam_case.safetensors");
    let want: [(usize, f32, u64, u64); 4] = [
        (0, 0.5, 6618070, 0x1b2b5815ed7109fd),
        (0, 0.3, 6145641, 0x92345855d1afc1c2),
        (1, 0.5, 6711777, 0xfe4caa14d47f3c0a),
        (1, 0.3, 6049781, 0x4181162eaab76430),
    ];
    for (i, weight, sum, hash) in want {
        let img = case["x"].get(i).unwrap();
        let cam: Vec<f32> = case["cam"]
            .get(i)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let o = dfr_explain::overlay_tensor(&img, &cam, weight).unwrap();
        let got_sum: u64 = o.as_raw().iter().map(|&v| v as u64).sum();
        assert_eq!(
            (got_sum, fnv(o.as_raw())),
            (sum, hash),
            "image {i}, weight {weight}"
        );
    }
}
