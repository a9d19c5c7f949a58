//! Reference-vector plumbing shared by every parity check of the workspace.
//!
//! "Correct" means "matches the PyTorch / torchvision / torchattacks /
//! pytorch-grad-cam / scikit-learn reference vectors" (`../shared/fixtures`, formats in
//! its README). This crate decides, once for all crates:
//! - where those vectors are ([`fixtures_dir`]: `$REFERENCE_VECTORS`, else
//!   `../shared/fixtures` beside the workspace);
//! - what a test does when they are missing ([`fixtures_for_test`]: skip with a notice,
//!   or fail when `CI` is set, where they are required);
//! - what one compared quantity reports ([`Check`]) and how a list of them prints
//!   ([`Report`]).
//!
//! ```
//! use dfr_parity::Check;
//! let c = Check::slices("logits", &[1.0, 2.0005], &[1.0, 2.0], 0.0, 1e-3);
//! assert!(c.passed && (c.max_abs - 0.0005).abs() < 1e-6);
//! let c = Check::scalar("roc_auc", 0.75, 0.76, 1e-9);
//! assert!(!c.passed);
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Environment variable naming the reference-vector directory.
pub const FIXTURES_ENV: &str = "REFERENCE_VECTORS";

/// The reference-vector directory: `$REFERENCE_VECTORS` if set and non-empty, else
/// `../shared/fixtures` beside the workspace root.
pub fn fixtures_dir() -> PathBuf {
    match std::env::var_os(FIXTURES_ENV) {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures"),
    }
}

/// For tests: the fixture directory when it holds `file` (a file or directory name
/// inside it; `""` for the directory itself). Otherwise the test should skip: `None`,
/// with a notice on stderr — except when `CI` is set, where the vectors are required
/// and this panics (failing the test) naming the path and the variable to set.
pub fn fixtures_for_test(file: &str) -> Option<PathBuf> {
    let dir = fixtures_dir();
    let path = dir.join(file);
    if path.exists() {
        return Some(dir);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "reference vectors {} are missing (set {FIXTURES_ENV}); CI is set, so this is an error",
            path.display()
        );
    }
    eprintln!(
        "NOTICE: reference vectors {} are missing; skipping (set {FIXTURES_ENV})",
        path.display()
    );
    None
}

/// One compared quantity: the largest absolute difference from the reference and the
/// tolerance it had to stay within.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// What was compared (`model/logits`, `roc_auc`, `gradcam/cam`, …).
    pub name: String,
    /// Largest absolute difference (infinite on a shape mismatch or a non-finite value).
    pub max_abs: f64,
    /// `max_abs` over the largest absolute reference value (`max_abs` when that is 0).
    pub max_rel: f64,
    /// Largest accepted `max_abs`.
    pub tolerance: f64,
    /// Whether `max_abs <= tolerance` (and every compared value was finite).
    pub passed: bool,
    /// Extra information (values, shapes, top-5 classes, …).
    pub note: String,
}

impl Check {
    /// A check of a measured error against a tolerance.
    pub fn within(name: impl Into<String>, max_abs: f64, tolerance: f64) -> Self {
        Self {
            name: name.into(),
            max_abs,
            max_rel: max_abs,
            tolerance,
            passed: max_abs <= tolerance,
            note: String::new(),
        }
    }

    /// Compares `got` with the reference `want` element-wise: passes when every value
    /// is finite and `max |got − want| <= atol + rtol · max |want|`.
    pub fn slices(
        name: impl Into<String>,
        got: &[f32],
        want: &[f32],
        atol: f64,
        rtol: f64,
    ) -> Self {
        if got.len() != want.len() {
            return Self::within(name, f64::INFINITY, atol).with_note(format!(
                "{} values vs {} in the reference",
                got.len(),
                want.len()
            ));
        }
        let mut max_abs = 0f64;
        let mut scale = 0f64;
        let mut finite = true;
        for (a, b) in got.iter().zip(want) {
            finite &= a.is_finite();
            max_abs = max_abs.max((*a as f64 - *b as f64).abs());
            scale = scale.max((*b as f64).abs());
        }
        let tolerance = atol + rtol * scale;
        Self {
            name: name.into(),
            max_abs,
            max_rel: if scale > 0.0 {
                max_abs / scale
            } else {
                max_abs
            },
            tolerance,
            passed: finite && max_abs <= tolerance,
            note: String::new(),
        }
    }

    /// Compares one value with its reference under an absolute tolerance; the note
    /// records both values.
    pub fn scalar(name: impl Into<String>, ours: f64, reference: f64, tolerance: f64) -> Self {
        let d = (ours - reference).abs();
        let max_abs = if d.is_nan() { f64::INFINITY } else { d };
        Self {
            max_rel: if reference != 0.0 {
                max_abs / reference.abs()
            } else {
                max_abs
            },
            ..Self::within(name, max_abs, tolerance)
        }
        .with_note(format!("ours {ours}, reference {reference}"))
    }

    /// The same check with `note` (replacing any previous note).
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.note = note.into();
        self
    }

    /// The same check, failed unless `ok` (an extra condition, e.g. equal top-5).
    pub fn and(mut self, ok: bool) -> Self {
        self.passed &= ok;
        self
    }

    /// The same check named `prefix/name`.
    pub fn prefixed(mut self, prefix: &str) -> Self {
        self.name = format!("{prefix}/{}", self.name);
        self
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<60} {:>11.3e} {:>11.1e}  {}",
            self.name,
            self.max_abs,
            self.tolerance,
            if self.passed { "ok" } else { "FAIL" }
        )?;
        if !self.note.is_empty() {
            write!(f, "  ({})", self.note)?;
        }
        Ok(())
    }
}

/// The checks of one fixture directory.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// The fixture directory.
    pub dir: PathBuf,
    /// All checks in order.
    pub checks: Vec<Check>,
}

impl Report {
    /// An empty report for `dir`.
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            checks: Vec::new(),
        }
    }

    /// Whether every check passed.
    pub fn all_passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }

    /// The failed checks.
    pub fn failures(&self) -> Vec<&Check> {
        self.checks.iter().filter(|c| !c.passed).collect()
    }

    /// The check with this name.
    pub fn get(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "reference vectors: {}", self.dir.display())?;
        writeln!(
            f,
            "{:<60} {:>11} {:>11}  result",
            "check", "max error", "tolerance"
        )?;
        for c in &self.checks {
            writeln!(f, "{c}")?;
        }
        let failed = self.failures().len();
        write!(
            f,
            "{} passed, {} failed",
            self.checks.len() - failed,
            failed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_use_absolute_plus_relative_tolerance() {
        let c = Check::slices("x", &[10.0, 0.0], &[10.01, 0.0], 0.0, 1e-3);
        assert!(c.passed, "{c}");
        let c = Check::slices("x", &[10.0, 0.0], &[10.02, 0.0], 0.0, 1e-3);
        assert!(!c.passed, "{c}");
        let c = Check::slices("x", &[f32::NAN], &[0.0], 1.0, 0.0);
        assert!(!c.passed, "a NaN never passes");
        let c = Check::slices("x", &[1.0], &[1.0, 2.0], 1.0, 0.0);
        assert!(!c.passed && c.max_abs.is_infinite() && !c.note.is_empty());
    }

    #[test]
    fn scalars_and_reports() {
        let nan = Check::scalar("auc", f64::NAN, 0.5, 1.0);
        assert!(!nan.passed);
        let mut r = Report::new(Path::new("/fixtures"));
        r.checks.push(Check::scalar("a", 1.0, 1.0, 0.0));
        r.checks.push(Check::within("b", 2.0, 1.0).prefixed("m"));
        assert!(!r.all_passed());
        assert_eq!(r.failures()[0].name, "m/b");
        assert!(r.get("a").is_some_and(|c| c.passed));
        let text = r.to_string();
        assert!(text.contains("1 passed, 1 failed"), "{text}");
    }
}
