//! Arms: the named variants of one experiment that a study trains and compares.

use crate::error::{Result, StudyError};
use dfr_train::Strategy;
use serde::{Deserialize, Serialize};

/// One arm of a study (`[[arms]]`): a strategy and the experiment keys it changes.
///
/// ```toml
/// [[arms]]
/// name = "gradreg-a1"
/// strategy = "gradreg"
/// experiment = { gradreg = { alpha = 1.0 } }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArmSpec {
    /// Name: its runs live in `<out>/runs/<name>/seed-<s>`.
    pub name: String,
    /// Training strategy.
    pub strategy: Strategy,
    /// Experiment keys merged over the study's `[experiment]` (e.g.
    /// `{ train = { freeze_shallow = true } }`).
    #[serde(default)]
    pub experiment: toml::Table,
    /// A sentence for the report: what the arm is for.
    #[serde(default)]
    pub about: String,
}

impl ArmSpec {
    fn new(name: &str, strategy: Strategy, experiment: &str, about: &str) -> ArmSpec {
        ArmSpec {
            name: name.into(),
            strategy,
            experiment: toml::from_str(experiment).expect("built-in arm table"),
            about: about.into(),
        }
    }

    /// Checks the name and that the arm leaves the study-owned keys alone; `i` is its
    /// position in `arms`.
    pub fn validate(&self, file: &str, i: usize) -> Result<()> {
        let n = &self.name;
        if n.is_empty()
            || n.contains(['/', '\\', '\0'])
            || n == "."
            || n == ".."
            || n.trim() != n
            || n.starts_with("seed-")
        {
            return Err(StudyError::config(
                file,
                format!("arms[{i}].name"),
                format!("`{n}`: expected a plain directory name (not empty, no path separators)"),
            ));
        }
        if self.experiment.contains_key("run") {
            return Err(StudyError::config(
                file,
                format!("arms[{i}].experiment.run"),
                "run names, directories and seeds are set by the study (arm name, seeds)",
            ));
        }
        if self
            .experiment
            .get("train")
            .and_then(|t| t.get("strategy"))
            .is_some()
        {
            return Err(StudyError::config(
                file,
                format!("arms[{i}].experiment.train.strategy"),
                "set the arm's `strategy` instead",
            ));
        }
        Ok(())
    }
}

/// The default arms:
/// - `baseline`: all layers trainable, as published;
/// - `baseline-frozen`: the matched control, the baseline with exactly the shallow part that
///   gradreg freezes frozen the same way (eval mode);
/// - `gradreg`: the PIM along the normalised loss gradient;
/// - `gradreg-random`: the PIM along a random unit direction scaled by r (separates "gradient
///   direction" from "noise injection").
pub fn default_arms() -> Vec<ArmSpec> {
    vec![
        ArmSpec::new(
            "baseline",
            Strategy::Baseline,
            "",
            "all layers trainable, as published",
        ),
        ArmSpec::new(
            "baseline-frozen",
            Strategy::Baseline,
            "train = { freeze_shallow = true }",
            "the matched control: the shallow part gradreg freezes, frozen the same way",
        ),
        ArmSpec::new(
            "gradreg",
            Strategy::Gradreg,
            "",
            "gradient regularisation (PIM) along the normalised loss gradient",
        ),
        ArmSpec::new(
            "gradreg-random",
            Strategy::Gradreg,
            "gradreg = { direction = \"random\" }",
            "the PIM along a random unit direction scaled by r (noise-injection control)",
        ),
    ]
}

/// One comparison: arm `b` against arm `a`, paired by seed (differences are `b − a`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComparisonSpec {
    /// The reference arm.
    pub a: String,
    /// The arm compared with it.
    pub b: String,
}

/// The default comparisons among `arms` (those whose two arms are present): gradreg vs its
/// matched control `baseline-frozen` first (the primary comparison), then gradreg vs the
/// published baseline, the freezing alone, and gradient vs random direction. Without any of
/// them, every arm against the first.
///
/// ```
/// let arms: Vec<String> = ["baseline", "gradreg"].map(String::from).to_vec();
/// let c = dfr_study::arm::default_comparisons(&arms);
/// assert_eq!(c.len(), 1);
/// assert_eq!((c[0].a.as_str(), c[0].b.as_str()), ("baseline", "gradreg"));
/// ```
pub fn default_comparisons(arms: &[String]) -> Vec<ComparisonSpec> {
    let has = |n: &str| arms.iter().any(|a| a == n);
    let mut out: Vec<ComparisonSpec> = [
        ("baseline-frozen", "gradreg"),
        ("baseline", "gradreg"),
        ("baseline", "baseline-frozen"),
        ("gradreg-random", "gradreg"),
    ]
    .into_iter()
    .filter(|(a, b)| has(a) && has(b))
    .map(|(a, b)| ComparisonSpec {
        a: a.into(),
        b: b.into(),
    })
    .collect();
    if out.is_empty() {
        if let Some((first, rest)) = arms.split_first() {
            out = rest
                .iter()
                .map(|b| ComparisonSpec {
                    a: first.clone(),
                    b: b.clone(),
                })
                .collect();
        }
    }
    out
}
