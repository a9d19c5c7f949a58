//! `dfr data inspect`: counts per split × source × label, class weights and bad files.

use crate::bad::BadFile;
use crate::decode::decode_rgb8;
use crate::error::Result;
use crate::layout::Dataset;
use crate::sample::{Label, Split};
use crate::weights::ClassWeights;
use rayon::prelude::*;
use serde::Serialize;
use std::fmt;

/// One row of the count table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CountRow {
    /// Split.
    pub split: Split,
    /// Source / method.
    pub source: String,
    /// Label.
    pub label: Label,
    /// Number of images.
    pub count: usize,
}

/// Summary of a dataset.
#[derive(Debug, Clone, Serialize)]
pub struct InspectReport {
    /// Dataset root.
    pub root: String,
    /// Counts per split × source × label.
    pub counts: Vec<CountRow>,
    /// Totals per split: (split, real, fake).
    pub totals: Vec<(Split, usize, usize)>,
    /// Class weights from the train split, if it is not empty.
    pub class_weights: Option<ClassWeights>,
    /// Unreadable files (only when verified).
    pub bad_files: Option<Vec<BadFile>>,
}

/// Builds the report; with `verify`, decodes every image (in parallel) to find bad files.
pub fn inspect(ds: &Dataset, verify: bool) -> Result<InspectReport> {
    let counts: Vec<CountRow> = ds
        .counts()
        .into_iter()
        .map(|((split, source, label), count)| CountRow {
            split,
            source,
            label,
            count,
        })
        .collect();
    let totals = Split::ALL
        .iter()
        .map(|&sp| {
            let of = |l: Label| {
                counts
                    .iter()
                    .filter(|r| r.split == sp && r.label == l)
                    .map(|r| r.count)
                    .sum()
            };
            (sp, of(Label::Real), of(Label::Fake))
        })
        .collect();
    let train = ds.split(Split::Train);
    let class_weights = (!train.is_empty()).then(|| ClassWeights::from_samples(&train));
    let bad_files = verify.then(|| {
        ds.samples
            .par_iter()
            .filter_map(|s| {
                decode_rgb8(&s.path).err().map(|e| BadFile {
                    path: s.path.clone(),
                    error: e.to_string(),
                })
            })
            .collect()
    });
    Ok(InspectReport {
        root: ds.root.display().to_string(),
        counts,
        totals,
        class_weights,
        bad_files,
    })
}

impl fmt::Display for InspectReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "dataset: {}", self.root)?;
        writeln!(
            f,
            "{:<11} {:<18} {:<5} {:>8}",
            "split", "source", "label", "images"
        )?;
        for r in &self.counts {
            writeln!(
                f,
                "{:<11} {:<18} {:<5} {:>8}",
                r.split.name(),
                r.source,
                r.label.to_string(),
                r.count
            )?;
        }
        writeln!(f)?;
        for (sp, real, fake) in &self.totals {
            writeln!(
                f,
                "{:<11} real {:>7}  fake {:>7}  total {:>7}",
                sp.name(),
                real,
                fake,
                real + fake
            )?;
        }
        match &self.class_weights {
            Some(w) => writeln!(
                f,
                "class weights (train, N/(2·N_c)): real {:.4}, fake {:.4}",
                w.weights[0], w.weights[1]
            )?,
            None => writeln!(f, "class weights: train split is empty")?,
        }
        match &self.bad_files {
            None => writeln!(f, "bad files: not checked (use --verify)")?,
            Some(b) if b.is_empty() => writeln!(f, "bad files: none")?,
            Some(b) => {
                writeln!(f, "bad files: {}", b.len())?;
                for x in b {
                    writeln!(f, "  {}: {}", x.path.display(), x.error)?;
                }
            }
        }
        Ok(())
    }
}
