//! The official DFFD layout: `<root>/<source>/{train,validation,test}/*.{png,jpg,jpeg}`;
//! manipulation masks, where there are any, under `<root>/masks/` ([`crate::mask`]).

use super::{list_images, subdirs};
use crate::error::{DataError, Result};
use crate::sample::{Label, Sample, Split};
use std::collections::BTreeMap;
use std::path::Path;

/// The DFFD sources and their labels.
pub const KNOWN_SOURCES: [(&str, Label); 8] = [
    ("ffhq", Label::Real),
    ("celeba", Label::Real),
    ("faceapp", Label::Fake),
    ("stargan", Label::Fake),
    ("pggan_v1", Label::Fake),
    ("pggan_v2", Label::Fake),
    ("stylegan_celeba", Label::Fake),
    ("stylegan_ffhq", Label::Fake),
];

/// Expected-layout text for error messages.
pub const EXPECTED: &str =
    "expected the DFFD layout: <root>/<source>/{train,validation,test}/*.png \
(sources: ffhq, celeba = real; faceapp, stargan, pggan_v1, pggan_v2, stylegan_celeba, \
stylegan_ffhq = fake; map others with `sources = { name = \"real\"|\"fake\" }`)";

/// Label of a known source.
pub fn known_label(name: &str) -> Option<Label> {
    KNOWN_SOURCES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, l)| *l)
}

/// Scans a DFFD tree. Unknown source folders are an error unless `extra` maps them.
pub fn scan(root: &Path, extra: &BTreeMap<String, Label>) -> Result<Vec<Sample>> {
    let mut samples = Vec::new();
    for (name, dir) in subdirs(root)? {
        if name == crate::mask::MASKS_DIR {
            continue; // the manipulation masks, not a source (see `crate::mask`)
        }
        let label = match extra.get(&name).copied().or_else(|| known_label(&name)) {
            Some(l) => l,
            None => {
                // A folder without split sub-folders is not a source (e.g. a cache); only
                // complain about folders that look like sources.
                let looks_like_source = subdirs(&dir)?
                    .iter()
                    .any(|(s, _)| Split::parse(s).is_some());
                if !looks_like_source {
                    continue;
                }
                return Err(DataError::UnknownSource {
                    name,
                    root: root.to_path_buf(),
                    known: KNOWN_SOURCES
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        };
        for (split_name, split_dir) in subdirs(&dir)? {
            let Some(split) = Split::parse(&split_name) else {
                continue;
            };
            for path in list_images(&split_dir)? {
                samples.push(Sample {
                    path,
                    label,
                    method: name.clone(),
                    split,
                    video: None,
                });
            }
        }
    }
    samples.sort_by(|a, b| (a.split, &a.path).cmp(&(b.split, &b.path)));
    Ok(samples)
}
