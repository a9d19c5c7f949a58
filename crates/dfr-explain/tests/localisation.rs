//! Localisation metrics against `tests/data/localisation_reference.json`, written by an
//! independent numpy implementation of Dang et al.'s definitions
//! (`tests/data/make_localisation_reference.py`), and their bad-input errors.

use dfr_explain::localisation::{iinc, localisation_batch, pbca, top_k_iou, LocalisationOptions};
use serde_json::Value;

fn reference() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/localisation_reference.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn plane(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

#[test]
fn localisation_matches_the_numpy_reference() {
    let r = reference();
    let threshold = r["threshold"].as_f64().unwrap() as f32;
    let cases = r["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 60);
    let (mut none, mut factor_only) = (0, 0);
    for c in cases {
        let name = format!("{} vs {}", c["map_name"], c["mask_name"]);
        let map = plane(&r["maps"][c["map_name"].as_str().unwrap()]);
        let mask = plane(&r["masks"][c["mask_name"].as_str().unwrap()]);
        let k = c["top_k_percent"].as_f64().unwrap();
        let got = iinc(&map, &mask).unwrap();
        let want = c["iinc"].as_f64().unwrap();
        assert!((got - want).abs() < 1e-9, "{name}: IINC {got} vs {want}");
        let got = pbca(&map, &mask, threshold).unwrap();
        assert!(
            (got - c["pbca"].as_f64().unwrap()).abs() < 1e-12,
            "{name}: PBCA {got}"
        );
        let got = top_k_iou(&map, &mask, k, threshold).unwrap();
        match c["top_k_iou"].as_f64() {
            None => {
                assert_eq!(got, None, "{name}: top-{k} IoU of an empty mask");
                none += 1;
            }
            Some(want) => {
                let got = got.unwrap_or_else(|| panic!("{name}: top-{k} IoU missing"));
                assert!(
                    (got - want).abs() < 1e-12,
                    "{name}: top-{k} IoU {got} vs {want}"
                );
            }
        }
        // the cases where exactly one side is empty: the factor alone, below ½
        let (map_empty, mask_empty) = (
            map.iter().all(|&v| v == 0.0),
            mask.iter().all(|&v| v == 0.0),
        );
        if map_empty != mask_empty {
            assert!(
                want > 1.0 / 3.0 - 1e-12 && want <= 0.5 + 1e-12,
                "{name}: {want}"
            );
            factor_only += 1;
        }
    }
    assert_eq!(none, 12, "the real (empty) mask against six maps at two k");
    assert!(factor_only >= 10, "{factor_only} one-empty cases");
}

#[test]
fn batches_are_map_after_map() {
    let r = reference();
    let (h, w) = (
        r["height"].as_u64().unwrap() as usize,
        r["width"].as_u64().unwrap() as usize,
    );
    let maps: Vec<f32> = ["random", "on_mask"]
        .iter()
        .flat_map(|n| plane(&r["maps"][n]))
        .collect();
    let masks: Vec<f32> = ["box", "real"]
        .iter()
        .flat_map(|n| plane(&r["masks"][n]))
        .collect();
    let reports = localisation_batch(&maps, &masks, h, w, &LocalisationOptions::default()).unwrap();
    assert_eq!(reports.len(), 2);
    assert_eq!(
        reports[0].iinc,
        iinc(&maps[..h * w], &masks[..h * w]).unwrap()
    );
    assert!(reports[1].mask_empty && !reports[1].map_empty && reports[1].top_k_iou.is_none());
    // not whole planes, or unequal counts
    let o = LocalisationOptions::default();
    assert!(localisation_batch(&maps[1..], &masks[1..], h, w, &o).is_err());
    assert!(localisation_batch(&maps, &masks[..h * w], h, w, &o).is_err());
    assert!(localisation_batch(&maps, &masks, 0, w, &o).is_err());
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let ok = [0.5f32, 0.0, 1.0, 0.25];
    for (map, mask) in [
        (&ok[..], &ok[..3]),
        (&[][..], &[][..]),
        (&[0.5, 1.5, 0.0, 0.0][..], &ok[..]),
        (&ok[..], &[-0.1, 0.0, 0.0, 0.0][..]),
        (&[f32::NAN, 0.0, 0.0, 0.0][..], &ok[..]),
    ] {
        assert!(iinc(map, mask).is_err(), "{map:?} {mask:?}");
        assert!(pbca(map, mask, 0.5).is_err());
        assert!(top_k_iou(map, mask, 20.0, 0.5).is_err());
    }
    assert!(pbca(&ok, &ok, 0.0).is_err());
    assert!(top_k_iou(&ok, &ok, 0.0, 0.5).is_err());
    assert!(top_k_iou(&ok, &ok, 100.5, 0.5).is_err());
    let e = iinc(&[0.5, 2.0], &[0.0, 0.0]).unwrap_err().to_string();
    assert!(e.contains("map value 2 outside [0, 1]"), "{e}");
}
