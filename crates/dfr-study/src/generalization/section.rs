//! `[generalization]` of a study file: which fake sources are held out, which arms run.

use super::HeldOut;
use crate::config::StudyConfig;
use crate::error::{Result, StudyError};
use crate::slurm::SlurmSection;
use dfr_data::{Label, Sample};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// One entry of `generalization.held_out`: a fake source's name, or a named group of sources
/// held out together (e.g. both StyleGAN folders, one manipulation).
///
/// ```
/// use dfr_study::generalization::HeldOutSpec;
/// #[derive(serde::Deserialize)]
/// struct F { held_out: Vec<HeldOutSpec> }
/// let f: F = toml::from_str(
///     r#"held_out = ["faceapp", { name = "stylegan", sources = ["stylegan_celeba", "stylegan_ffhq"] }]"#,
/// ).unwrap();
/// assert_eq!(f.held_out[0].name(), "faceapp");
/// assert_eq!(f.held_out[1].sources(), ["stylegan_celeba", "stylegan_ffhq"]);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum HeldOutSpec {
    /// One source, named after itself.
    Source(String),
    /// Several sources under one name.
    Group(HeldOutGroup),
}

/// A named group of held-out sources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeldOutGroup {
    /// Name in metric names (`held_out_roc_auc@<name>`), tables and directories.
    pub name: String,
    /// The fake sources held out together.
    pub sources: Vec<String>,
}

impl HeldOutSpec {
    /// The name.
    pub fn name(&self) -> &str {
        match self {
            HeldOutSpec::Source(s) => s,
            HeldOutSpec::Group(g) => &g.name,
        }
    }

    /// The sources.
    pub fn sources(&self) -> Vec<String> {
        match self {
            HeldOutSpec::Source(s) => vec![s.clone()],
            HeldOutSpec::Group(g) => g.sources.clone(),
        }
    }
}

/// `[generalization]`: leave-one-source-out over the study's arms and seeds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GeneralizationSection {
    /// The held-out sources or groups, one training per entry, arm and seed (empty: every
    /// fake source of the train split, one at a time).
    pub held_out: Vec<HeldOutSpec>,
    /// The study's arms that run (empty: all); comparisons are the study's among them.
    pub arms: Vec<String>,
    /// Cluster job scripts (`--emit slurm`).
    pub slurm: SlurmSection,
}

/// Whether `name` can name a held-out group: letters, digits, `-`, `_`, and not `mean`
/// (the suffix of the averages) or `arm` (the tables' first column).
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name != "mean"
        && name != "arm"
        && !name.ends_with("_pm")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl GeneralizationSection {
    /// Checks what needs no data: names, duplicates, arms; `cfg` is the study it belongs to.
    pub fn validate(&self, cfg: &StudyConfig) -> Result<()> {
        let file = cfg.source.as_str();
        let bail = |key: String, m: String| Err(StudyError::config(file, key, m));
        let mut names = BTreeSet::new();
        let mut sources = BTreeSet::new();
        for (i, h) in self.held_out.iter().enumerate() {
            let key = format!("generalization.held_out[{i}]");
            if !valid_name(h.name()) {
                return bail(
                    key,
                    format!(
                        "`{}`: expected a name of letters, digits, `-` or `_` (not `mean`, `arm` \
                         or ending in `_pm`)",
                        h.name()
                    ),
                );
            }
            if !names.insert(h.name().to_string()) {
                return bail(key, format!("`{}` is held out twice", h.name()));
            }
            if h.sources().is_empty() {
                return bail(format!("{key}.sources"), "is empty".into());
            }
            let own = h.sources();
            for (j, s) in own.iter().enumerate() {
                if own[..j].contains(s) {
                    return bail(key, format!("lists source `{s}` twice"));
                }
                if !sources.insert(s.clone()) {
                    return bail(key, format!("source `{s}` is in two held-out entries"));
                }
            }
        }
        for (i, a) in self.arms.iter().enumerate() {
            let key = format!("generalization.arms[{i}]");
            if cfg.arm(a).is_none() {
                return bail(
                    key,
                    format!("`{a}` is not an arm (arms: {})", cfg.arm_names().join(", ")),
                );
            }
            if self.arms[..i].contains(a) {
                return bail(key, format!("`{a}` is listed twice"));
            }
        }
        if self.slurm.max_parallel == Some(0) {
            return bail(
                "generalization.slurm.max_parallel".into(),
                "must be at least 1".into(),
            );
        }
        if cfg.eval.split != dfr_data::Split::Test {
            return bail(
                "eval.split".into(),
                format!(
                    "`{}`: a generalisation study measures seen and held-out sources on the \
                     test split (the others are trained on or stop training)",
                    cfg.eval.split.name()
                ),
            );
        }
        if cfg.eval.limit.is_some() {
            return bail(
                "eval.limit".into(),
                "a generalisation study scores the whole evaluation split (every seen and \
                 held-out source): leave eval.limit out"
                    .into(),
            );
        }
        Ok(())
    }

    /// The held-out groups on this data: each source must be a fake source of the train
    /// split and present in the evaluation split, and every group must leave at least one
    /// fake source to train on. Errors name the entry and list the fake sources.
    pub fn resolve(
        &self,
        file: &str,
        train: &[Sample],
        eval: &[Sample],
        eval_split: &str,
    ) -> Result<Vec<HeldOut>> {
        let fakes: BTreeSet<&str> = train
            .iter()
            .filter(|s| s.label == Label::Fake)
            .map(|s| s.method.as_str())
            .collect();
        let listed = fakes.iter().copied().collect::<Vec<_>>().join(", ");
        let seen = |sources: &[String]| -> Vec<String> {
            fakes
                .iter()
                .filter(|f| !sources.iter().any(|s| s == *f))
                .map(|f| f.to_string())
                .collect()
        };
        let defaulted = self.held_out.is_empty();
        let groups: Vec<HeldOut> = if defaulted {
            fakes
                .iter()
                .map(|s| HeldOut {
                    name: s.to_string(),
                    sources: vec![s.to_string()],
                    seen: seen(&[s.to_string()]),
                })
                .collect()
        } else {
            self.held_out
                .iter()
                .map(|h| HeldOut {
                    name: h.name().to_string(),
                    seen: seen(&h.sources()),
                    sources: h.sources(),
                })
                .collect()
        };
        if !eval.iter().any(|e| e.label == Label::Real) {
            return Err(StudyError::config(
                file,
                "eval.split",
                format!(
                    "the {eval_split} split has no real image: seen and held-out AUC need both \
                     classes"
                ),
            ));
        }
        if groups.is_empty() {
            return Err(StudyError::config(
                file,
                "generalization.held_out",
                "the train split has no fake source to hold out",
            ));
        }
        for (i, g) in groups.iter().enumerate() {
            let key = if defaulted {
                format!(
                    "generalization.held_out (left out: every fake source; `{}`)",
                    g.name
                )
            } else {
                format!("generalization.held_out[{i}]")
            };
            if defaulted && !valid_name(&g.name) {
                return Err(StudyError::config(
                    file,
                    &key,
                    "this source's name cannot name a held-out group (letters, digits, `-`, \
                     `_`; not `mean` or `arm`): list the sources as { name, sources } groups",
                ));
            }
            for s in &g.sources {
                if !fakes.contains(s.as_str()) {
                    return Err(StudyError::config(
                        file,
                        &key,
                        format!(
                            "`{s}` is not a fake source of the train split (fake sources: \
                             {listed})"
                        ),
                    ));
                }
                if !eval.iter().any(|e| &e.method == s) {
                    return Err(StudyError::config(
                        file,
                        &key,
                        format!("`{s}` has no image in the {eval_split} split"),
                    ));
                }
            }
            if !g.seen.is_empty() && !eval.iter().any(|e| g.seen.contains(&e.method)) {
                return Err(StudyError::config(
                    file,
                    &key,
                    format!(
                        "the {eval_split} split has no fake of the sources trained on ({}): \
                         nothing to measure the seen sources on",
                        g.seen.join(", ")
                    ),
                ));
            }
            if g.seen.is_empty() {
                return Err(StudyError::config(
                    file,
                    &key,
                    format!(
                        "`{}` holds out every fake source ({listed}): nothing fake is left to \
                         train on",
                        g.name
                    ),
                ));
            }
        }
        Ok(groups)
    }
}
