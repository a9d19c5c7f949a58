//! CSV manifest layout: `path,label,split[,method][,video]`, paths relative to the manifest.
//! With a `video` column (frames of videos: Celeb-DF, DFDC, FF++), every row names its
//! video, and evaluations report video-level metrics too.

use crate::error::{DataError, Result};
use crate::sample::{Label, Sample, Split};
use std::path::{Path, PathBuf};

/// Expected-layout text for error messages.
pub const EXPECTED: &str =
    "expected a CSV manifest with header `path,label,split[,method][,video]` \
(label real|fake|0|1, split train|val|validation|test, paths relative to the CSV, video: the \
id of the video a frame comes from); pass the file or a directory holding manifest.csv";

/// Resolves the manifest path: the file itself or `<dir>/manifest.csv`.
pub fn manifest_path(root: &Path) -> PathBuf {
    if root.is_dir() {
        root.join("manifest.csv")
    } else {
        root.to_path_buf()
    }
}

/// Reads the manifest. Every malformed row is an error naming the file, line and field.
pub fn scan(root: &Path) -> Result<Vec<Sample>> {
    let path = manifest_path(root);
    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let err = |line: usize, message: String| DataError::Manifest {
        path: path.clone(),
        line,
        message,
    };
    let mut reader = ::csv::ReaderBuilder::new()
        .trim(::csv::Trim::All)
        .from_path(&path)
        .map_err(|e| err(0, format!("cannot open: {e}")))?;
    let headers = reader
        .headers()
        .map_err(|e| err(1, format!("cannot read header: {e}")))?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (Some(pc), Some(lc), Some(sc)) = (col("path"), col("label"), col("split")) else {
        return Err(err(
            1,
            format!(
                "header is `{}`; expected columns path,label,split[,method]",
                headers.iter().collect::<Vec<_>>().join(",")
            ),
        ));
    };
    let mc = col("method");
    let vc = col("video");
    let mut samples = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| err(line, e.to_string()))?;
        let field = |c: usize, name: &str| {
            rec.get(c)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| err(line, format!("missing `{name}`")))
        };
        let rel = field(pc, "path")?;
        let label_s = field(lc, "label")?;
        let label = Label::parse(label_s)
            .ok_or_else(|| err(line, format!("label `{label_s}`: expected real|fake|0|1")))?;
        let split_s = field(sc, "split")?;
        let split = Split::parse(split_s).ok_or_else(|| {
            err(
                line,
                format!("split `{split_s}`: expected train|val|validation|test"),
            )
        })?;
        let method = mc
            .and_then(|c| rec.get(c))
            .filter(|m| !m.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| label.to_string());
        // with a video column, every frame names its video (video-level metrics group by it)
        let video = match vc {
            Some(c) => Some(field(c, "video")?.to_string()),
            None => None,
        };
        samples.push(Sample {
            path: base.join(rel),
            label,
            method,
            split,
            video,
        });
    }
    samples.sort_by(|a, b| (a.split, &a.path).cmp(&(b.split, &b.path)));
    Ok(samples)
}
