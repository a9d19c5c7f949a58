//! Shared test support: the reference-vector directory, a tiny data set, configurations.

use dfr_data::synth::{generate, SplitCounts, SynthConfig};
use dfr_train::ExperimentConfig;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The fixture directory when it holds `file`; `None` (the test skips) otherwise — or a
/// failure when `CI` is set, where the vectors are required.
pub fn fixtures(file: &str) -> Option<PathBuf> {
    dfr_parity::fixtures_for_test(file)
}

/// A tiny synthetic DFFD (6 real + 6 fake images per split, 32 px) at `dir/data`.
pub fn dataset(dir: &Path) -> PathBuf {
    let root = dir.join("data");
    let c = SplitCounts {
        real_per_source: 3,
        fake_per_source: 1,
    };
    generate(
        &SynthConfig {
            size: 32,
            seed: 1,
            train: c,
            validation: c,
            test: c,
            trace_gain: 1,
        },
        &root,
        false,
    )
    .unwrap();
    root
}

pub fn config(dir: &Path, name: &str, extra: &[&str]) -> ExperimentConfig {
    let root = dataset(dir);
    let mut sets: Vec<String> = vec![
        format!("run.name={name}"),
        format!("run.results_dir=\"{}\"", dir.join("results").display()),
        format!("data.root=\"{}\"", root.display()),
        "model.image_size=32".into(),
        "train.epochs=2".into(),
        "train.batch_size=4".into(),
        "train.lr=1e-3".into(),
        "train.progress=false".into(),
        "train.threads=2".into(),
    ];
    sets.extend(extra.iter().map(|s| s.to_string()));
    ExperimentConfig::from_toml_str("", &sets).unwrap()
}

/// The tensors of a checkpoint, by name, as raw bytes.
pub fn tensors(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(n, v)| (n, v.data().to_vec()))
        .collect()
}
