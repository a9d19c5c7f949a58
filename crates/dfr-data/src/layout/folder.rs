//! Image-folder layout: `<root>/{train,val|validation,test}/{real,fake}/[method/]…`.

use super::{list_images, subdirs};
use crate::error::Result;
use crate::sample::{Label, Sample, Split};
use std::path::Path;

/// Expected-layout text for error messages.
pub const EXPECTED: &str = "expected the image-folder layout: \
<root>/{train,val|validation,test}/{real,fake}/[method/]…/*.{png,jpg,jpeg}";

/// Scans an image-folder tree. The method is the first folder below `real`/`fake`, or the
/// label name for images directly inside it.
pub fn scan(root: &Path) -> Result<Vec<Sample>> {
    let mut samples = Vec::new();
    for (split_name, split_dir) in subdirs(root)? {
        let Some(split) = Split::parse(&split_name) else {
            continue;
        };
        for (label_name, label_dir) in subdirs(&split_dir)? {
            let Some(label) = Label::parse(&label_name) else {
                continue;
            };
            for path in list_images(&label_dir)? {
                let rel = path.strip_prefix(&label_dir).unwrap_or(&path);
                let method = if rel.components().count() > 1 {
                    rel.components()
                        .next()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .unwrap_or_default()
                } else {
                    label.to_string()
                };
                samples.push(Sample {
                    path,
                    label,
                    method,
                    split,
                    video: None,
                });
            }
        }
    }
    samples.sort_by(|a, b| (a.split, &a.path).cmp(&(b.split, &b.path)));
    Ok(samples)
}
