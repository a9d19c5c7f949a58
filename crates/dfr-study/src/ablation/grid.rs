//! The ablation grid: `[ablation]` of a study file and its cells.

use crate::slurm::SlurmSection;
use dfr_attacks::AttackKind;
use serde::{Deserialize, Serialize};

/// How the best cell is chosen, on a split the test numbers never see.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Selection {
    /// Split the selection is measured on.
    pub split: dfr_data::Split,
    /// Attack of the robustness term.
    pub attack: AttackKind,
    /// Its ε.
    pub eps: f64,
    /// Weight w of the robustness term: score = (1 − w)·macro-F1 + w·macro-F1 under attack.
    pub robust_weight: f64,
    /// At most this many samples of the split (all when absent).
    pub limit: Option<usize>,
}

impl Default for Selection {
    fn default() -> Self {
        Selection {
            split: dfr_data::Split::Validation,
            attack: AttackKind::Pgd,
            eps: 0.0005,
            robust_weight: 0.5,
            limit: None,
        }
    }
}

/// `[ablation]`: the α × r grid of gradient regularisation, plus the baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AblationSection {
    /// Weights α of the perturbed loss (rows of the heatmaps).
    pub alpha: Vec<f64>,
    /// Perturbation radii r (columns of the heatmaps).
    pub r: Vec<f64>,
    /// Train and evaluate the unregularised baseline as cell 0.
    pub baseline: bool,
    /// Model selection.
    pub selection: Selection,
    /// Cluster job scripts.
    pub slurm: SlurmSection,
}

impl Default for AblationSection {
    fn default() -> Self {
        AblationSection {
            alpha: vec![0.25, 0.5, 0.75, 1.0],
            r: vec![0.01, 0.05, 0.1, 0.2],
            baseline: true,
            selection: Selection::default(),
            slurm: SlurmSection::default(),
        }
    }
}

impl AblationSection {
    /// Checks the grid; `name` labels errors.
    pub fn validate(&self, name: &str) -> crate::Result<()> {
        let bail = |key: &str, m: String| Err(crate::StudyError::config(name, key, m));
        for (key, v) in [("ablation.alpha", &self.alpha), ("ablation.r", &self.r)] {
            if v.is_empty() {
                return bail(key, "is empty: expected at least one value".into());
            }
        }
        if let Some(a) = self
            .alpha
            .iter()
            .find(|a| !(a.is_finite() && (0.0..=1.0).contains(*a)))
        {
            return bail(
                "ablation.alpha",
                format!("holds {a}, expected values in [0, 1]"),
            );
        }
        if let Some(r) = self.r.iter().find(|r| !(r.is_finite() && **r >= 0.0)) {
            return bail(
                "ablation.r",
                format!("holds {r}, expected finite values ≥ 0"),
            );
        }
        for (what, v) in [("alpha", &self.alpha), ("r", &self.r)] {
            let mut seen: Vec<f64> = Vec::new();
            for x in v {
                if seen.contains(x) {
                    return bail(&format!("ablation.{what}"), format!("holds {x} twice"));
                }
                seen.push(*x);
            }
        }
        if self.slurm.max_parallel == Some(0) {
            return bail("ablation.slurm.max_parallel", "must be at least 1".into());
        }
        let w = self.selection.robust_weight;
        if !(0.0..=1.0).contains(&w) {
            return bail(
                "ablation.selection.robust_weight",
                format!("is {w}, expected a value in [0, 1]"),
            );
        }
        let e = self.selection.eps;
        if !(e.is_finite() && (0.0..=1.0).contains(&e)) {
            return bail(
                "ablation.selection.eps",
                format!("is {e}, expected a value in [0, 1]"),
            );
        }
        Ok(())
    }

    /// The grid points: the baseline first (when asked for), then α-major over the grid.
    pub fn points(&self) -> Vec<Point> {
        let mut points = Vec::new();
        if self.baseline {
            points.push(Point {
                id: "baseline".into(),
                gradreg: None,
            });
        }
        for &alpha in &self.alpha {
            for &r in &self.r {
                points.push(Point {
                    id: format!("alpha{alpha}_r{r}"),
                    gradreg: Some((alpha, r)),
                });
            }
        }
        points
    }

    /// The cells: every point with every seed, seed-major (a partly finished ablation has
    /// every point at about the same number of seeds).
    pub fn cells(&self, seeds: &[u64]) -> Vec<Cell> {
        let points = self.points();
        let mut cells = Vec::new();
        for &seed in seeds {
            for p in &points {
                cells.push(Cell {
                    index: cells.len(),
                    id: format!("{}/seed-{seed}", p.id),
                    point: p.id.clone(),
                    seed,
                    gradreg: p.gradreg,
                });
            }
        }
        cells
    }
}

/// One point of the grid: the baseline or one (α, r).
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// `baseline` or `alpha0.5_r0.05`.
    pub id: String,
    /// (α, r) of a regularised point; `None` for the baseline.
    pub gradreg: Option<(f64, f64)>,
}

/// One independent unit of the ablation: a point of the grid with one seed, its training run
/// and its evaluations.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// Position (`--cell I`, the Slurm array index).
    pub index: usize,
    /// `<point>/seed-<seed>`: names its run directory and result file.
    pub id: String,
    /// The grid point.
    pub point: String,
    /// The seed.
    pub seed: u64,
    /// (α, r) of a regularised cell; `None` for the baseline.
    pub gradreg: Option<(f64, f64)>,
}

impl Cell {
    /// Training strategy.
    pub fn strategy(&self) -> dfr_train::Strategy {
        if self.gradreg.is_some() {
            dfr_train::Strategy::Gradreg
        } else {
            dfr_train::Strategy::Baseline
        }
    }

    /// The experiment keys that make this cell (merged over the study's experiment).
    pub fn table(&self) -> toml::Table {
        let mut t = toml::Table::new();
        if let Some((a, r)) = self.gradreg {
            let mut g = toml::Table::new();
            g.insert("alpha".into(), a.into());
            g.insert("r".into(), r.into());
            t.insert("gradreg".into(), g.into());
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_baseline_then_alpha_major() {
        let a = AblationSection {
            alpha: vec![0.25, 1.0],
            r: vec![0.01, 0.2, 0.05],
            ..AblationSection::default()
        };
        let c = a.cells(&[3]);
        assert_eq!(c.len(), 7);
        assert_eq!(c[0].id, "baseline/seed-3");
        assert_eq!((c[1].point.as_str(), c[1].seed), ("alpha0.25_r0.01", 3));
        assert_eq!(c[0].strategy(), dfr_train::Strategy::Baseline);

        assert_eq!(c[4].gradreg, Some((1.0, 0.01)));
        assert_eq!(
            c[4].table().to_string().trim(),
            "[gradreg]\nalpha = 1.0\nr = 0.01"
        );
        assert!(c[0].table().is_empty());
        assert!(c.iter().enumerate().all(|(i, c)| c.index == i));
        // Seed-major: every point with the first seed, then with the second.
        let two = a.cells(&[0, 1]);
        assert_eq!(two.len(), 14);
        assert_eq!(two[7].id, "baseline/seed-1");
        let no_base = AblationSection {
            baseline: false,
            ..a
        };
        assert_eq!(no_base.cells(&[0])[0].id, "alpha0.25_r0.01/seed-0");
    }

    #[test]
    fn bad_grids_name_the_field() {
        let bad = AblationSection {
            alpha: vec![1.5],
            ..AblationSection::default()
        };
        assert!(bad
            .validate("f")
            .unwrap_err()
            .to_string()
            .contains("ablation.alpha"));
        let bad = AblationSection {
            r: vec![],
            ..AblationSection::default()
        };
        assert!(bad
            .validate("f")
            .unwrap_err()
            .to_string()
            .contains("ablation.r"));
        let bad = AblationSection {
            selection: Selection {
                robust_weight: 2.0,
                ..Selection::default()
            },
            ..AblationSection::default()
        };
        assert!(bad
            .validate("f")
            .unwrap_err()
            .to_string()
            .contains("robust_weight"));
        AblationSection::default().validate("f").unwrap();
    }
}
