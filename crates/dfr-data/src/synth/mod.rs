//! The synthetic DFFD generator (`dfr data synth`, `cargo xtask synth-data`).
//!
//! Writes a tree in the official DFFD layout (`<out>/<source>/{train,validation,test}/*.png`)
//! with the same source names, so every later stage runs offline. Real sources are procedural
//! faces with natural-image statistics; every fake source leaves its own family of traces
//! (see [`traces`]). Generation is deterministic per seed and independent of the thread count;
//! the tree is written to a temporary directory and renamed into place, and a `synth.json`
//! records the configuration so a second call with the same configuration reuses the tree.
//! Every fake image's manipulation mask goes to `<out>/masks/<source>/<split>/<file>`
//! ([`crate::mask`]); a tree written before masks existed gets them added on reuse.

pub mod face;
pub mod noise;
pub mod traces;

use crate::decode::{write_atomic, write_png_atomic};
use crate::error::{DataError, Result};
use crate::image::ImageF32;
use crate::mask::{mask_path, write_mask_png, MASKS_DIR};
use crate::rng::{domain, stream};
use crate::sample::Split;
use face::Style;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Images per source in one split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitCounts {
    /// Images for each real source (ffhq, celeba).
    pub real_per_source: usize,
    /// Images for each fake source (six of them).
    pub fake_per_source: usize,
}

/// Synthetic dataset configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SynthConfig {
    /// Image side length in pixels (DFFD itself is 299).
    pub size: u32,
    /// Seed of every random choice.
    pub seed: u64,
    /// Train split counts.
    pub train: SplitCounts,
    /// Validation split counts.
    pub validation: SplitCounts,
    /// Test split counts.
    pub test: SplitCounts,
    /// Multiplier of every fake-trace amplitude (1: the calibrated, realistic traces; the
    /// quick study uses a larger one so a randomly initialised B0 learns in minutes).
    pub trace_gain: u32,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            size: 64,
            seed: 0,
            train: SplitCounts {
                real_per_source: 48,
                fake_per_source: 32,
            },
            validation: SplitCounts {
                real_per_source: 16,
                fake_per_source: 12,
            },
            test: SplitCounts {
                real_per_source: 24,
                fake_per_source: 16,
            },
            trace_gain: 1,
        }
    }
}

/// The synthetic sources, in DFFD naming.
pub const SOURCES: [&str; 8] = [
    "ffhq",
    "celeba",
    "faceapp",
    "stargan",
    "pggan_v1",
    "pggan_v2",
    "stylegan_celeba",
    "stylegan_ffhq",
];

/// Renders one image of a source. `index` and `split` select the random stream.
pub fn render_source(
    source: &str,
    size: usize,
    seed: u64,
    split: Split,
    index: usize,
    trace_gain: f32,
) -> ImageF32 {
    render_source_with_mask(source, size, seed, split, index, trace_gain).0
}

/// [`render_source`] and, for a fake source, its manipulation mask (`size·size` values in
/// [0, 1]; see [`traces::Fake`]); `None` for a real source. The image is the same as
/// [`render_source`]'s.
pub fn render_source_with_mask(
    source: &str,
    size: usize,
    seed: u64,
    split: Split,
    index: usize,
    trace_gain: f32,
) -> (ImageF32, Option<Vec<f32>>) {
    let g = trace_gain;
    let sid = SOURCES
        .iter()
        .position(|s| *s == source)
        .unwrap_or(usize::MAX) as u64;
    let mut rng = stream(&[domain::SYNTH, seed, sid, split as u64, index as u64]);
    let fake = match source {
        "ffhq" => return (traces::real(&mut rng, size, Style::Ffhq), None),
        "celeba" => return (traces::real(&mut rng, size, Style::Celeba), None),
        "faceapp" => traces::faceapp(&mut rng, size, g),
        "stargan" => traces::stargan(&mut rng, size, g),
        "pggan_v1" => traces::pggan_v1(&mut rng, size, g),
        "pggan_v2" => traces::pggan_v2(&mut rng, size, g),
        "stylegan_celeba" => traces::stylegan(&mut rng, size, Style::Celeba, g),
        _ => traces::stylegan(&mut rng, size, Style::Ffhq, g),
    };
    (fake.image, Some(fake.mask))
}

/// Path of image `index` of `source` in `split`, relative to the tree's root.
fn relative_path(source: &str, split: Split, index: usize) -> PathBuf {
    Path::new(source)
        .join(split.name())
        .join(format!("{source}_{index:05}.png"))
}

/// Writes the masks of an existing tree generated with `cfg` into `<out>/masks`, through a
/// temporary folder renamed into place.
fn write_masks(cfg: &SynthConfig, out: &Path) -> Result<()> {
    let tmp = out.join(format!(".{MASKS_DIR}.tmp-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| DataError::io("removing", &tmp, e))?;
    }
    let size = cfg.size as usize;
    cfg.jobs()
        .par_iter()
        .filter(|(src, _, _)| crate::layout::dffd::known_label(src) == Some(crate::Label::Fake))
        .try_for_each(|&(src, split, i)| {
            let (_, mask) =
                render_source_with_mask(src, size, cfg.seed, split, i, cfg.trace_gain as f32);
            let rel = relative_path(src, split, i);
            match mask {
                Some(m) => write_mask_png(&tmp.join(&rel), cfg.size, cfg.size, &m),
                None => Ok(()),
            }
        })?;
    let dest = out.join(MASKS_DIR);
    if let Err(e) = std::fs::rename(&tmp, &dest) {
        // another process may have added the same masks in the meantime
        let _ = std::fs::remove_dir_all(&tmp);
        if !dest.is_dir() {
            return Err(DataError::io("renaming into", &dest, e));
        }
    }
    tracing::info!("wrote the manipulation masks of {}", out.display());
    Ok(())
}

/// Largest [`SynthConfig::trace_gain`].
pub const MAX_TRACE_GAIN: u32 = 20;

/// Parses a trace gain given on a command line: a whole number from 1 to
/// [`MAX_TRACE_GAIN`], with an error that says so.
pub fn parse_trace_gain(s: &str) -> std::result::Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(g) if (1..=MAX_TRACE_GAIN).contains(&g) => Ok(g),
        _ => Err(format!(
            "`{s}`: expected a whole number from 1 to {MAX_TRACE_GAIN} (the multiplier of \
             every fake-trace amplitude)"
        )),
    }
}

impl SynthConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<()> {
        if !(1..=MAX_TRACE_GAIN).contains(&self.trace_gain) {
            return Err(DataError::config(
                "synth.trace_gain",
                format!(
                    "must be a whole number between 1 and {MAX_TRACE_GAIN}, got {}",
                    self.trace_gain
                ),
            ));
        }
        if self.size < 16 {
            return Err(DataError::config(
                "synth.size",
                format!("must be at least 16 pixels, got {}", self.size),
            ));
        }
        if self.train.real_per_source == 0 || self.train.fake_per_source == 0 {
            return Err(DataError::config(
                "synth.train",
                "needs at least one real and one fake image per source",
            ));
        }
        Ok(())
    }

    fn counts(&self, split: Split) -> SplitCounts {
        match split {
            Split::Train => self.train,
            Split::Validation => self.validation,
            Split::Test => self.test,
        }
    }

    /// Every image to generate: (source, split, index).
    pub fn jobs(&self) -> Vec<(&'static str, Split, usize)> {
        let mut jobs = Vec::new();
        for split in Split::ALL {
            let c = self.counts(split);
            for (k, src) in SOURCES.iter().enumerate() {
                let count = if k < 2 {
                    c.real_per_source
                } else {
                    c.fake_per_source
                };
                jobs.extend((0..count).map(|i| (*src, split, i)));
            }
        }
        jobs
    }
}

/// What [`generate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SynthOutcome {
    /// A new tree was written with this many images.
    Generated(usize),
    /// A tree with the same configuration already existed and was kept.
    Reused,
}

/// Name of the file that records the configuration of a generated tree.
pub const MARKER: &str = "synth.json";

/// Generates the tree at `out`. If `out` already holds a tree generated with the same
/// configuration it is kept; a different one is an error unless `force` is set, and even
/// `force` replaces only a tree this generator wrote (it has a [`MARKER`] file) or an empty
/// directory — never a directory with other content.
///
/// ```
/// use dfr_data::synth::{generate, SplitCounts, SynthConfig, SynthOutcome};
/// let tmp = tempfile::tempdir()?;
/// let dir = tmp.path().join("dffd"); // a new directory (an existing, foreign one is refused)
/// let counts = SplitCounts { real_per_source: 1, fake_per_source: 1 };
/// let cfg = SynthConfig { size: 16, train: counts, validation: counts, test: counts, ..Default::default() };
/// // 3 splits × (2 real + 6 fake sources) × 1 image, in DFFD's layout
/// assert_eq!(generate(&cfg, &dir, false)?, SynthOutcome::Generated(24));
/// assert!(dir.join("stylegan_ffhq/test").is_dir());
/// // every fake image has its manipulation mask; real images have none (all zero)
/// assert!(dir.join("masks/faceapp/test/faceapp_00000.png").is_file());
/// assert!(!dir.join("masks/ffhq").exists());
/// assert_eq!(generate(&cfg, &dir, false)?, SynthOutcome::Reused);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn generate(cfg: &SynthConfig, out: &Path, force: bool) -> Result<SynthOutcome> {
    cfg.validate()?;
    let marker = out.join(MARKER);
    let cfg_json = serde_json::to_string_pretty(cfg).expect("config serialises");
    if out.exists() {
        let existing = std::fs::read_to_string(&marker).ok();
        let same = existing
            .as_deref()
            .and_then(|s| serde_json::from_str::<SynthConfig>(s).ok())
            .is_some_and(|c| &c == cfg);
        if same {
            if !crate::mask::has_masks(out) {
                // a tree written before the generator wrote masks: add them (the images
                // stay as they are; a mask is a function of the same random stream)
                write_masks(cfg, out)?;
            }
            return Ok(SynthOutcome::Reused);
        }
        if !force {
            return Err(DataError::config(
                "out",
                format!(
                    "`{}` exists and was not generated with this configuration \
                     (no matching {MARKER}); choose another directory or pass --force",
                    out.display()
                ),
            ));
        }
        // --force replaces only what this generator wrote (or an empty directory): never
        // a real data set or anything else the user pointed at by mistake
        let empty = std::fs::read_dir(out)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if existing.is_none() && !empty {
            return Err(DataError::config(
                "out",
                format!(
                    "`{}` is not empty and holds no {MARKER}, so it is not a synthetic data set \
                     written by this generator; --force replaces only those. Choose another \
                     directory, or delete it yourself",
                    out.display()
                ),
            ));
        }
        std::fs::remove_dir_all(out).map_err(|e| DataError::io("removing", out, e))?;
    }
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(p) = parent {
        std::fs::create_dir_all(p).map_err(|e| DataError::io("creating", p, e))?;
    }
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "synthetic".into());
    let tmp: PathBuf = out.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| DataError::io("removing", &tmp, e))?;
    }
    for src in SOURCES {
        for split in Split::ALL {
            let d = tmp.join(src).join(split.name());
            std::fs::create_dir_all(&d).map_err(|e| DataError::io("creating", &d, e))?;
        }
    }
    let jobs = cfg.jobs();
    let size = cfg.size as usize;
    jobs.par_iter().try_for_each(|&(src, split, i)| {
        let (img, mask) =
            render_source_with_mask(src, size, cfg.seed, split, i, cfg.trace_gain as f32);
        let rel = relative_path(src, split, i);
        write_png_atomic(&tmp.join(&rel), cfg.size, cfg.size, &img.to_rgb8())?;
        match mask {
            Some(m) => write_mask_png(&mask_path(&tmp, &rel), cfg.size, cfg.size, &m),
            None => Ok(()),
        }
    })?;
    write_atomic(&tmp.join(MARKER), cfg_json.as_bytes())?;
    std::fs::rename(&tmp, out).map_err(|e| DataError::io("renaming into", out, e))?;
    tracing::info!(
        "generated {} synthetic images in {}",
        jobs.len(),
        out.display()
    );
    Ok(SynthOutcome::Generated(jobs.len()))
}
