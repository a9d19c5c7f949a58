//! Weight files: naming detection and mapping, loading, `hf:` resolution.
//!
//! Three namings are recognised by probing the stem's name and mapped onto the
//! model's internal (torchvision-style) naming:
//!
//! | part | torchvision | timm | efficientnet_pytorch |
//! |---|---|---|---|
//! | stem | `features.0.0`, `features.0.1` | `conv_stem`, `bn1` | `_conv_stem`, `_bn0` |
//! | expand | `features.S.J.block.K.0/.1` | `blocks.S-1.J.conv_pw`, `bn1` | `_blocks.F._expand_conv`, `_bn0` |
//! | depthwise | … | `conv_dw`, `bn2` (`bn1` without expand) | `_depthwise_conv`, `_bn1` |
//! | SE | `….fc1`, `….fc2` | `se.conv_reduce`, `se.conv_expand` | `_se_reduce`, `_se_expand` |
//! | project | … | `conv_pwl`, `bn3` (`conv_pw`, `bn2` without expand) | `_project_conv`, `_bn2` |
//! | head | `features.8.0`, `features.8.1` | `conv_head`, `bn2` | `_conv_head`, `_bn1` |
//! | classifier | `classifier.1` | `classifier` | `_fc` |
//!
//! A `module.` / `model.` prefix on every name (DataParallel, Lightning) is stripped.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use crate::config::EfficientNetConfig;
use crate::efficientnet::EfficientNet;
use crate::error::{Error, Result};

/// A tensor naming scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// torchvision (`features.0.0.weight`), also the internal naming.
    Torchvision,
    /// timm (`conv_stem.weight`, `blocks.0.0.conv_dw.weight`).
    Timm,
    /// efficientnet_pytorch / EfficientNet-Lite-PyTorch (`_conv_stem.weight`).
    EfficientNetPytorch,
}

impl fmt::Display for Naming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Naming::Torchvision => "torchvision",
            Naming::Timm => "timm",
            Naming::EfficientNetPytorch => "efficientnet_pytorch",
        })
    }
}

impl Naming {
    /// Detects the naming from the tensor names.
    pub fn detect<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<Naming> {
        let mut found = None;
        for n in names {
            match n {
                "features.0.0.weight" => return Some(Naming::Torchvision),
                "conv_stem.weight" => found = Some(Naming::Timm),
                "_conv_stem.weight" => found = Some(Naming::EfficientNetPytorch),
                _ => {}
            }
        }
        found
    }
}

/// Kind of a module, which fixes its tensor suffixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Conv,
    Bn,
    Fc,
}

impl Kind {
    fn suffixes(self) -> &'static [&'static str] {
        match self {
            Kind::Conv => &["weight"],
            Kind::Bn => &["weight", "bias", "running_mean", "running_var"],
            Kind::Fc => &["weight", "bias"],
        }
    }
}

/// One module: internal path and its name in each naming.
#[derive(Debug, Clone)]
struct ModuleName {
    internal: String,
    timm: String,
    ep: String,
    kind: Kind,
}

fn module_names(config: &EfficientNetConfig) -> Vec<ModuleName> {
    let mut v = Vec::new();
    let mut push = |internal: String, timm: String, ep: String, kind| {
        v.push(ModuleName {
            internal,
            timm,
            ep,
            kind,
        })
    };
    push(
        "features.0.0".into(),
        "conv_stem".into(),
        "_conv_stem".into(),
        Kind::Conv,
    );
    push("features.0.1".into(), "bn1".into(), "_bn0".into(), Kind::Bn);
    for spec in config.stages().into_iter().flatten() {
        let names = spec.module_names();
        let tm = format!("blocks.{}.{}", spec.stage - 1, spec.index);
        let ep = format!("_blocks.{}", spec.flat);
        let expanded = names.expand.is_some();
        if let Some(e) = &names.expand {
            push(
                format!("{e}.0"),
                format!("{tm}.conv_pw"),
                format!("{ep}._expand_conv"),
                Kind::Conv,
            );
            push(
                format!("{e}.1"),
                format!("{tm}.bn1"),
                format!("{ep}._bn0"),
                Kind::Bn,
            );
        }
        let (dw_bn, pw, pw_bn) = if expanded {
            ("bn2", "conv_pwl", "bn3")
        } else {
            ("bn1", "conv_pw", "bn2")
        };
        let dw = &names.depthwise;
        push(
            format!("{dw}.0"),
            format!("{tm}.conv_dw"),
            format!("{ep}._depthwise_conv"),
            Kind::Conv,
        );
        push(
            format!("{dw}.1"),
            format!("{tm}.{dw_bn}"),
            format!("{ep}._bn1"),
            Kind::Bn,
        );
        if let Some(se) = &names.se {
            push(
                format!("{se}.fc1"),
                format!("{tm}.se.conv_reduce"),
                format!("{ep}._se_reduce"),
                Kind::Fc,
            );
            push(
                format!("{se}.fc2"),
                format!("{tm}.se.conv_expand"),
                format!("{ep}._se_expand"),
                Kind::Fc,
            );
        }
        let pj = &names.project;
        push(
            format!("{pj}.0"),
            format!("{tm}.{pw}"),
            format!("{ep}._project_conv"),
            Kind::Conv,
        );
        push(
            format!("{pj}.1"),
            format!("{tm}.{pw_bn}"),
            format!("{ep}._bn2"),
            Kind::Bn,
        );
    }
    push(
        "features.8.0".into(),
        "conv_head".into(),
        "_conv_head".into(),
        Kind::Conv,
    );
    push("features.8.1".into(), "bn2".into(), "_bn1".into(), Kind::Bn);
    push(
        "classifier.1".into(),
        "classifier".into(),
        "_fc".into(),
        Kind::Fc,
    );
    v
}

/// (internal tensor name, name in `naming`) for every parameter and buffer of a
/// model with this configuration.
pub fn name_map(config: &EfficientNetConfig, naming: Naming) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for m in module_names(config) {
        let ext = match naming {
            Naming::Torchvision => &m.internal,
            Naming::Timm => &m.timm,
            Naming::EfficientNetPytorch => &m.ep,
        };
        for s in m.kind.suffixes() {
            out.push((format!("{}.{s}", m.internal), format!("{ext}.{s}")));
        }
    }
    out
}

/// Maps the tensors of a file in any known naming to internal names. Unknown
/// tensors are dropped; a missing tensor is left out (the loader reports it).
pub fn to_internal_names(
    config: &EfficientNetConfig,
    tensors: HashMap<String, Tensor>,
) -> Result<(Naming, HashMap<String, Tensor>)> {
    let tensors = strip_common_prefix(tensors);
    let naming = Naming::detect(tensors.keys().map(|s| s.as_str()))
        .ok_or_else(|| Error::UnknownNaming(format!("{} tensors", tensors.len())))?;
    let mut tensors = tensors;
    let mut out = HashMap::new();
    for (int, ext) in name_map(config, naming) {
        if let Some(t) = tensors.remove(&ext) {
            out.insert(int, t);
        }
    }
    Ok((naming, out))
}

fn strip_common_prefix(tensors: HashMap<String, Tensor>) -> HashMap<String, Tensor> {
    for prefix in ["module.", "model.", "backbone."] {
        if !tensors.is_empty() && tensors.keys().all(|k| k.starts_with(prefix)) {
            return strip_common_prefix(
                tensors
                    .into_iter()
                    .map(|(k, v)| (k[prefix.len()..].to_string(), v))
                    .collect(),
            );
        }
    }
    tensors
}

/// Reads all tensors of a safetensors or PyTorch (`.pth`, `.pt`, `.bin`, `.ckpt`)
/// file onto `device`. For pickles, a nested `state_dict` / `model` entry is used
/// when the top level holds no tensors. Every error names the file
/// ([`Error::WeightFile`], or [`Error::Io`] for a missing one).
pub fn read_tensors(path: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
    if !path.exists() {
        return Err(Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "weight file not found"),
        ));
    }
    let bad = |message: String| Error::WeightFile {
        path: path.to_path_buf(),
        message,
    };
    if path.is_dir() {
        return Err(bad(
            "is a directory; expected a .safetensors or PyTorch weight file".into(),
        ));
    }
    read_tensors_from(path, device).map_err(|e| match e {
        e @ (Error::WeightFile { .. } | Error::Io { .. }) => e,
        other => bad(format!(
            "{other} (expected a .safetensors file or a PyTorch .pth/.pt/.bin/.ckpt pickle)"
        )),
    })
}

fn read_tensors_from(path: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ext == "safetensors" {
        return Ok(candle_core::safetensors::load(path, device)?);
    }
    let mut first_err = None;
    for key in [
        None,
        Some("state_dict"),
        Some("model"),
        Some("model_state_dict"),
    ] {
        match candle_core::pickle::read_all_with_key(path, key) {
            Ok(v) if !v.is_empty() => {
                return v
                    .into_iter()
                    .map(|(k, t)| Ok((k, t.to_device(device)?)))
                    .collect()
            }
            Ok(_) => {}
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    // Maybe a safetensors file without the extension.
    if let Ok(t) = candle_core::safetensors::load(path, device) {
        return Ok(t);
    }
    match first_err {
        Some(e) => Err(e.into()),
        None => Err(Error::WeightFile {
            path: path.to_path_buf(),
            message: "no tensors found".into(),
        }),
    }
}

/// What a weight load did.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// Naming detected in the file.
    pub naming: Naming,
    /// Number of tensors copied into the model.
    pub loaded: usize,
    /// Whether the classifier was (re-)initialised because it was missing or had
    /// another number of classes.
    pub head_initialised: bool,
    /// Tensors of the file that the model does not use (besides
    /// `num_batches_tracked`).
    pub unused: Vec<String>,
}

/// Copies `tensors` (any known naming) into `model`.
///
/// A classifier that is missing or has a different shape (e.g. ImageNet's 1000
/// classes into a 2-class detector) is re-initialised and logged; every other
/// missing or mis-shaped tensor is an error naming the tensor and both shapes.
pub fn load_into(
    model: &EfficientNet,
    tensors: HashMap<String, Tensor>,
    seed: u64,
) -> Result<LoadReport> {
    let config = model.config().clone();
    let tensors = strip_common_prefix(tensors);
    let naming = Naming::detect(tensors.keys().map(|s| s.as_str()))
        .ok_or_else(|| Error::UnknownNaming(format!("{} tensors", tensors.len())))?;
    let map = name_map(&config, naming);
    let mut used = HashSet::new();
    let mut loaded = 0;
    let mut head_reason: Option<String> = None;
    let mut assignments: Vec<(String, Tensor)> = Vec::new();
    let expected_shape = |int: &str| -> Vec<usize> {
        if let Some(p) = model.param(int) {
            p.var().dims().to_vec()
        } else if let Some(b) = model.buffer(int) {
            b.get().dims().to_vec()
        } else {
            vec![]
        }
    };
    for (int, ext) in &map {
        let expected = expected_shape(int);
        let is_head = int.starts_with("classifier.");
        match tensors.get(ext) {
            None => {
                if is_head {
                    head_reason.get_or_insert_with(|| format!("`{ext}` not in the file"));
                    continue;
                }
                return Err(Error::MissingTensor {
                    name: int.clone(),
                    source_name: ext.clone(),
                    naming: naming.to_string(),
                    expected,
                });
            }
            Some(t) => {
                used.insert(ext.clone());
                let found = t.dims().to_vec();
                // 1x1 conv stored as a linear weight or vice versa: same numbers.
                let compatible = found == expected
                    || (found.iter().product::<usize>() == expected.iter().product::<usize>()
                        && found
                            .iter()
                            .filter(|&&d| d != 1)
                            .eq(expected.iter().filter(|&&d| d != 1)));
                if !compatible {
                    if is_head {
                        head_reason.get_or_insert_with(|| {
                            format!("`{ext}` has shape {found:?}, the model {expected:?}")
                        });
                        continue;
                    }
                    return Err(Error::ShapeMismatch {
                        name: int.clone(),
                        source_name: ext.clone(),
                        expected,
                        found,
                    });
                }
                let t = t
                    .to_dtype(DType::F32)?
                    .reshape(expected.as_slice())?
                    .to_device(model.device())?;
                assignments.push((int.clone(), t));
            }
        }
    }
    for (int, t) in assignments {
        if head_reason.is_some() && int.starts_with("classifier.") {
            continue;
        }
        if let Some(p) = model.param(&int) {
            p.var().set(&t)?;
        } else if let Some(b) = model.buffer(&int) {
            b.set(t);
        }
        loaded += 1;
    }
    let head_initialised = head_reason.is_some();
    if let Some(reason) = head_reason {
        model.reset_classifier(seed)?;
        tracing::warn!(
            "classifier initialised for {} classes ({reason}); the backbone was loaded",
            config.num_classes
        );
    }
    let mut unused: Vec<String> = tensors
        .keys()
        .filter(|k| !used.contains(*k) && !k.ends_with("num_batches_tracked"))
        .cloned()
        .collect();
    unused.sort();
    if !unused.is_empty() {
        tracing::info!(
            "{} tensors of the weight file are not used by {}: {:?}…",
            unused.len(),
            config.arch,
            &unused[..unused.len().min(5)]
        );
    }
    tracing::info!(
        "loaded {loaded} tensors ({naming} naming) into {}",
        config.arch
    );
    Ok(LoadReport {
        naming,
        loaded,
        head_initialised,
        unused,
    })
}

/// Loads weights from a local file or an `hf:ORG/REPO[/FILE]` spec into `model`.
pub fn load_weights(model: &EfficientNet, spec: &str) -> Result<LoadReport> {
    let path = resolve_weights(spec)?;
    let tensors = read_tensors(&path, model.device())?;
    load_into(model, tensors, 0)
}

/// Default `hf:` spec (timm's ImageNet EfficientNet-B0).
pub const DEFAULT_HF_SPEC: &str = "hf:timm/efficientnet_b0.ra_in1k";
/// Default file inside an `hf:` repository.
pub const DEFAULT_HF_FILE: &str = "model.safetensors";

/// A parsed `hf:ORG/REPO[/FILE]` spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HfSpec {
    /// `ORG/REPO`.
    pub repo: String,
    /// File inside the repository (default `model.safetensors`).
    pub file: String,
    /// Revision (branch, tag or commit; default `main`).
    pub revision: String,
}

impl HfSpec {
    /// Parses `hf:ORG/REPO[/FILE]`, optionally `hf:ORG/REPO@REV[/FILE]`.
    pub fn parse(spec: &str) -> Result<Self> {
        let rest = spec
            .strip_prefix("hf:")
            .ok_or_else(|| Error::Hub(format!("`{spec}` is not an hf: spec")))?;
        let mut parts = rest.splitn(3, '/');
        let org = parts.next().unwrap_or("");
        let repo = parts.next().unwrap_or("");
        let file = parts
            .next()
            .filter(|f| !f.is_empty())
            .unwrap_or(DEFAULT_HF_FILE);
        let (repo, revision) = match repo.split_once('@') {
            Some((r, rev)) => (r, rev),
            None => (repo, "main"),
        };
        if org.is_empty() || repo.is_empty() {
            return Err(Error::Hub(format!(
                "`{spec}`: expected hf:ORG/REPO[/FILE], e.g. {DEFAULT_HF_SPEC}"
            )));
        }
        Ok(Self {
            repo: format!("{org}/{repo}"),
            file: file.to_string(),
            revision: revision.to_string(),
        })
    }

    /// The repository folder name in the hub cache (`models--ORG--REPO`).
    pub fn cache_folder(&self) -> String {
        format!("models--{}", self.repo.replace('/', "--"))
    }
}

/// The hub cache directory: `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else
/// `~/.cache/huggingface/hub`.
pub fn hub_cache_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("HF_HUB_CACHE").filter(|s| !s.is_empty()) {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("HF_HOME").filter(|s| !s.is_empty()) {
        return PathBuf::from(p).join("hub");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".cache").join("huggingface").join("hub")
}

/// Whether `HF_HUB_OFFLINE` asks for offline mode.
pub fn hub_offline() -> bool {
    std::env::var("HF_HUB_OFFLINE")
        .map(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
        .unwrap_or(false)
}

/// Looks `spec` up in a hub cache laid out as
/// `models--ORG--REPO/{refs/REV, snapshots/HASH/FILE}`.
pub fn cached_hf_file(cache_dir: &Path, spec: &HfSpec) -> Option<PathBuf> {
    let repo_dir = cache_dir.join(spec.cache_folder());
    let snapshots = repo_dir.join("snapshots");
    // A revision that is a commit hash names the snapshot directly.
    let direct = snapshots.join(&spec.revision).join(&spec.file);
    if direct.is_file() {
        return Some(direct);
    }
    if let Ok(hash) = std::fs::read_to_string(repo_dir.join("refs").join(&spec.revision)) {
        let p = snapshots.join(hash.trim()).join(&spec.file);
        if p.is_file() {
            return Some(p);
        }
    }
    None
}

/// Resolves `hf:ORG/REPO[/FILE]` against the given cache; downloads it through hf-hub
/// (feature `hub`, on by default) into that cache when it is not there and not `offline`.
pub fn resolve_hf_in(spec: &str, cache_dir: &Path, offline: bool) -> Result<PathBuf> {
    resolve_hf_from(spec, cache_dir, offline, None)
}

fn resolve_hf_from(
    spec: &str,
    cache_dir: &Path,
    offline: bool,
    endpoint: Option<&str>,
) -> Result<PathBuf> {
    let s = HfSpec::parse(spec)?;
    if let Some(p) = cached_hf_file(cache_dir, &s) {
        tracing::info!("{spec}: using cached {}", p.display());
        return Ok(p);
    }
    let how = format!(
        "download `{}` from https://huggingface.co/{} and pass the local file instead \
         (a path to a .safetensors or .pth file), or populate the cache {}",
        s.file,
        s.repo,
        cache_dir.display()
    );
    if offline {
        return Err(Error::Hub(format!(
            "{spec} is not in the local cache and HF_HUB_OFFLINE is set: {how}"
        )));
    }
    download_hf(&s, cache_dir, endpoint).map_err(|e| {
        Error::Hub(format!(
            "{spec} is not in the local cache and could not be downloaded ({e}): {how}"
        ))
    })
}

/// Progress of a hub download on stderr (hidden when stderr is not a terminal).
#[cfg(feature = "hub")]
struct DownloadBar(indicatif::ProgressBar);

#[cfg(feature = "hub")]
impl hf_hub::api::Progress for DownloadBar {
    fn init(&mut self, size: usize, _filename: &str) {
        self.0.set_length(size as u64);
    }
    fn update(&mut self, size: usize) {
        self.0.inc(size as u64);
    }
    fn finish(&mut self) {
        self.0.finish_and_clear();
    }
}

/// Downloads `s` into the hub cache `cache_dir` from `endpoint` (default: `HF_ENDPOINT`,
/// else huggingface.co), with a progress bar. The token, if any, is read as hf-hub does
/// (`HF_TOKEN`, else `$HF_HOME/token`).
#[cfg(feature = "hub")]
fn download_hf(
    s: &HfSpec,
    cache_dir: &Path,
    endpoint: Option<&str>,
) -> std::result::Result<PathBuf, String> {
    let mut builder = hf_hub::api::sync::ApiBuilder::from_env()
        .with_cache_dir(cache_dir.to_path_buf())
        .with_progress(false)
        .with_retries(2);
    if let Some(token) = std::env::var("HF_TOKEN").ok().filter(|t| !t.is_empty()) {
        builder = builder.with_token(Some(token));
    }
    if let Some(e) = endpoint {
        builder = builder.with_endpoint(e.to_string());
    }
    let api = builder.build().map_err(|e| e.to_string())?;
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
        )
        .map_err(|e| e.to_string())?
        .progress_chars("=> "),
    );
    bar.set_message(format!("downloading {}/{}", s.repo, s.file));
    tracing::info!(
        "downloading {}/{} into {}",
        s.repo,
        s.file,
        cache_dir.display()
    );
    let repo =
        hf_hub::Repo::with_revision(s.repo.clone(), hf_hub::RepoType::Model, s.revision.clone());
    let got = api
        .repo(repo)
        .download_with_progress(&s.file, DownloadBar(bar.clone()))
        .map_err(|e| e.to_string());
    bar.finish_and_clear();
    got
}

#[cfg(not(feature = "hub"))]
fn download_hf(
    _s: &HfSpec,
    _cache_dir: &Path,
    _endpoint: Option<&str>,
) -> std::result::Result<PathBuf, String> {
    Err(
        "this build has no downloader (dfr-model's `hub` feature, on by default, was \
         disabled)"
            .into(),
    )
}

/// Resolves a weight spec: `hf:ORG/REPO[/FILE]` through the hub cache
/// (`HF_HOME` / `HF_HUB_CACHE`, `HF_HUB_OFFLINE`), anything else as a local path.
pub fn resolve_weights(spec: &str) -> Result<PathBuf> {
    if spec.starts_with("hf:") {
        resolve_hf_in(spec, &hub_cache_dir(), hub_offline())
    } else {
        let p = PathBuf::from(spec);
        if p.exists() {
            Ok(p)
        } else {
            Err(Error::io(
                p,
                std::io::Error::new(std::io::ErrorKind::NotFound, "weight file not found"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Arch;

    #[test]
    fn parse_specs() {
        let s = HfSpec::parse(DEFAULT_HF_SPEC).unwrap();
        assert_eq!(s.repo, "timm/efficientnet_b0.ra_in1k");
        assert_eq!(s.file, "model.safetensors");
        assert_eq!(s.revision, "main");
        let s = HfSpec::parse("hf:a/b@v1/sub/w.pth").unwrap();
        assert_eq!(
            (s.repo.as_str(), s.file.as_str(), s.revision.as_str()),
            ("a/b", "sub/w.pth", "v1")
        );
        assert!(HfSpec::parse("hf:onlyorg").is_err());
        assert_eq!(s.cache_folder(), "models--a--b");
    }

    #[test]
    fn fake_cache_resolution() {
        let dir = tempfile::tempdir().unwrap();
        let hub = dir.path().join("hub");
        let repo = hub.join("models--timm--efficientnet_b0.ra_in1k");
        let hash = "0123456789abcdef0123456789abcdef01234567";
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::create_dir_all(repo.join("snapshots").join(hash)).unwrap();
        std::fs::write(repo.join("refs/main"), hash).unwrap();
        let f = repo.join("snapshots").join(hash).join("model.safetensors");
        std::fs::write(&f, b"x").unwrap();
        let p = resolve_hf_in(DEFAULT_HF_SPEC, &hub, true).unwrap();
        assert_eq!(p, f);
        // by commit hash
        let p = resolve_hf_in(
            &format!("hf:timm/efficientnet_b0.ra_in1k@{hash}"),
            &hub,
            true,
        )
        .unwrap();
        assert_eq!(p, f);
        // missing file, offline: clear error
        let e = resolve_hf_in(
            "hf:timm/efficientnet_b0.ra_in1k/other.safetensors",
            &hub,
            true,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("HF_HUB_OFFLINE") && e.contains("pass the local file"),
            "{e}"
        );
        let e = resolve_hf_in("hf:x/y", &hub, true).unwrap_err().to_string();
        assert!(e.contains("not in the local cache"), "{e}");
    }

    /// Online, a missing file is downloaded: the default build tries (here from a local
    /// endpoint that refuses connections, so no test ever reaches the network).
    #[cfg(feature = "hub")]
    #[test]
    fn online_resolution_downloads_through_hf_hub() {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port(); // bound, then dropped: nothing listens there
        let endpoint = format!("http://127.0.0.1:{port}");
        let e = resolve_hf_from("hf:x/y", dir.path(), false, Some(&endpoint))
            .unwrap_err()
            .to_string();
        assert!(e.contains("could not be downloaded"), "{e}");
        assert!(!e.contains("feature"), "{e}");
    }

    /// A one-file Hugging Face endpoint on localhost: answers `GET /ORG/REPO/resolve/REV/FILE`
    /// with the headers the Hub sends (commit, etag, content range) and honours `Range`.
    #[cfg(feature = "hub")]
    fn serve_one_file(path: &'static str, body: &'static [u8]) -> String {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request = String::new();
                let _ = reader.read_line(&mut request);
                let mut range = None;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
                        let (a, b) = v.trim().split_once('-').unwrap();
                        let a: usize = a.parse().unwrap();
                        let b = b.parse().map_or(body.len() - 1, |b: usize| b);
                        range = Some((a, b));
                    }
                }
                let mut out = stream;
                if request.split(' ').nth(1) != Some(path) {
                    let _ = out.write_all(
                        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    );
                    continue;
                }
                let (a, b) = range.unwrap_or((0, body.len() - 1));
                let part = &body[a..=b];
                let head = format!(
                    "HTTP/1.1 206 Partial Content\r\nx-repo-commit: {}\r\netag: \"blob1\"\r\n\
                     content-range: bytes {a}-{b}/{}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    "89abcdef0123456789abcdef0123456789abcdef",
                    body.len(),
                    part.len()
                );
                let _ = out.write_all(head.as_bytes());
                let _ = out.write_all(part);
            }
        });
        endpoint
    }

    /// Online, a missing file is downloaded into the standard cache layout
    /// (`models--ORG--REPO/{blobs,refs,snapshots}`) and found there offline afterwards;
    /// a file the endpoint lacks is an error that says how to supply it by hand.
    #[cfg(feature = "hub")]
    #[test]
    fn download_lands_in_the_hub_cache() {
        let body: &'static [u8] = b"safetensors bytes, not a real model";
        let endpoint = serve_one_file("/org/repo/resolve/main/w.safetensors", body);
        let dir = tempfile::tempdir().unwrap();
        let spec = "hf:org/repo/w.safetensors";
        let got = resolve_hf_from(spec, dir.path(), false, Some(&endpoint)).unwrap();
        assert_eq!(std::fs::read(&got).unwrap(), body);
        let repo = dir.path().join("models--org--repo");
        assert_eq!(
            std::fs::read_to_string(repo.join("refs/main")).unwrap(),
            "89abcdef0123456789abcdef0123456789abcdef"
        );
        assert!(repo.join("blobs/blob1").is_file());
        let offline = resolve_hf_in(spec, dir.path(), true).unwrap();
        assert_eq!(std::fs::read(offline).unwrap(), body);
        let e = resolve_hf_from(
            "hf:org/repo/other.safetensors",
            dir.path(),
            false,
            Some(&endpoint),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("could not be downloaded") && e.contains("pass the local file"),
            "{e}"
        );
    }

    #[test]
    fn name_maps_are_consistent() {
        let c = EfficientNetConfig::new(Arch::B0, 2);
        let tv = name_map(&c, Naming::Torchvision);
        let tm = name_map(&c, Naming::Timm);
        let ep = name_map(&c, Naming::EfficientNetPytorch);
        assert_eq!(tv.len(), 311); // the torchvision fixture has exactly these tensors
        assert!(tv.iter().all(|(a, b)| a == b));
        let tm: HashMap<_, _> = tm.into_iter().collect();
        assert_eq!(
            tm["features.1.0.block.0.0.weight"],
            "blocks.0.0.conv_dw.weight"
        );
        assert_eq!(
            tm["features.1.0.block.2.1.running_var"],
            "blocks.0.0.bn2.running_var"
        );
        assert_eq!(
            tm["features.2.0.block.3.0.weight"],
            "blocks.1.0.conv_pwl.weight"
        );
        assert_eq!(tm["features.8.1.bias"], "bn2.bias");
        let ep: HashMap<_, _> = ep.into_iter().collect();
        assert_eq!(
            ep["features.2.1.block.2.fc1.bias"],
            "_blocks.2._se_reduce.bias"
        );
        assert_eq!(ep["classifier.1.weight"], "_fc.weight");
        let l = EfficientNetConfig::new(Arch::Lite0, 1000);
        let lm: HashMap<_, _> = name_map(&l, Naming::EfficientNetPytorch)
            .into_iter()
            .collect();
        assert_eq!(
            lm["features.2.0.block.2.0.weight"],
            "_blocks.1._project_conv.weight"
        );
        assert_eq!(lm.len(), 247); // the Lite0 file has exactly the mapped tensors
    }
}
