//! Loading a checkpoint as a binary real/fake detector.

use candle_core::Device;

#[test]
fn mismatched_checkpoints_are_rejected() {
    use dfr_model::checkpoint::{load_detector, save_checkpoint};
    use dfr_model::{Arch, EfficientNet, EfficientNetConfig, Error};
    let dir = tempfile::tempdir().unwrap();
    let dev = Device::Cpu;
    // an ImageNet-style 1000-class checkpoint
    let p1000 = dir.path().join("imagenet.safetensors");
    let m = EfficientNet::new(EfficientNetConfig::new(Arch::Lite0, 1000), &dev, 0).unwrap();
    save_checkpoint(&m, &p1000, None).unwrap();
    let err = load_detector(&p1000, &dev, None).unwrap_err();
    assert!(
        matches!(
            err,
            Error::ClassMismatch {
                expected: 2,
                found: 1000,
                ..
            }
        ),
        "{err}"
    );
    println!("{err}");
    // a binary Lite0 checkpoint asked for as B0
    let p2 = dir.path().join("lite0.safetensors");
    let m = EfficientNet::new(EfficientNetConfig::new(Arch::Lite0, 2), &dev, 0).unwrap();
    save_checkpoint(&m, &p2, None).unwrap();
    let err = load_detector(&p2, &dev, Some(Arch::B0)).unwrap_err();
    assert!(matches!(err, Error::ArchMismatch { .. }), "{err}");
    println!("{err}");
    let ok = load_detector(&p2, &dev, Some(Arch::Lite0)).unwrap();
    assert_eq!(ok.config().num_classes, 2);
    // a missing file
    assert!(load_detector(&dir.path().join("nope.safetensors"), &dev, None).is_err());
}
