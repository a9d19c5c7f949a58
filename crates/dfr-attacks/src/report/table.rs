//! The text table of a [`RobustReport`].

use std::fmt;

use super::{Metrics, RobustReport};

fn opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.4}")).unwrap_or_else(|| "-".into())
}

fn eps_label(eps: f64) -> String {
    if eps == 0.0 {
        "0".into()
    } else {
        format!("{eps:.5} ({:.2}/255)", eps * 255.0)
    }
}

fn row(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    eps: f64,
    m: &Metrics,
    extra: Option<(f64, f64, f64, f64, usize)>,
) -> fmt::Result {
    let c = &m.confusion;
    write!(
        f,
        "{:<8} {:<20} {:>8.4} {:>8.4} {:>8} {:>15}",
        name,
        eps_label(eps),
        m.accuracy,
        m.macro_f1,
        opt(m.roc_auc),
        format!(
            "{}/{}/{}/{}",
            c.true_negatives, c.false_positives, c.false_negatives, c.true_positives
        ),
    )?;
    match extra {
        Some((succ, linf_mean, linf_max, l2_mean, masked)) => writeln!(
            f,
            " {:>8.4} {:>10.6} {:>10.6} {:>8.4} {:>6}",
            succ, linf_mean, linf_max, l2_mean, masked
        ),
        None => writeln!(f),
    }
}

impl fmt::Display for RobustReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cfg = &self.config;
        let alpha = match cfg.alpha {
            Some(a) => format!("alpha {a}"),
            None => format!("alpha = {} * eps", cfg.alpha_ratio),
        };
        writeln!(
            f,
            "robust evaluation: {} samples ({} real, {} fake), {} px, steps {}, {alpha}, random start {}, {:.1} s",
            self.n_samples,
            self.n_real,
            self.n_fake,
            cfg.image_size,
            cfg.steps,
            if cfg.random_start { "on" } else { "off" },
            self.elapsed_s
        )?;
        writeln!(
            f,
            "{:<8} {:<20} {:>8} {:>8} {:>8} {:>15} {:>8} {:>10} {:>10} {:>8} {:>6}",
            "attack",
            "eps",
            "acc",
            "macroF1",
            "AUC",
            "tn/fp/fn/tp",
            "success",
            "Linf mean",
            "Linf max",
            "L2 mean",
            "masked"
        )?;
        row(f, "clean", 0.0, &self.clean, None)?;
        for a in &self.attacks {
            for r in &a.results {
                row(
                    f,
                    a.attack.name(),
                    r.eps,
                    &r.metrics,
                    Some((
                        r.attack_success_rate,
                        r.linf_mean,
                        r.linf_max,
                        r.l2_mean,
                        r.masked_samples,
                    )),
                )?;
            }
        }
        if !self.worst_case.is_empty() {
            writeln!(f, "worst case over {} attacks:", self.attacks.len())?;
            for w in &self.worst_case {
                writeln!(
                    f,
                    "{:<8} {:<20} {:>8.4}",
                    "worst",
                    eps_label(w.eps),
                    w.accuracy
                )?;
            }
        }
        // per-source accuracy: sources as rows, clean then (attack, eps > 0) columns
        writeln!(f, "accuracy per source:")?;
        let mut cols: Vec<(String, Vec<f64>)> = vec![(
            "clean".into(),
            self.clean_per_source.iter().map(|p| p.accuracy).collect(),
        )];
        for a in &self.attacks {
            for r in a.results.iter().filter(|r| r.eps > 0.0) {
                cols.push((
                    format!("{}@{:.2}", a.attack, r.eps * 255.0),
                    r.per_source.iter().map(|p| p.accuracy).collect(),
                ));
            }
        }
        for w in self.worst_case.iter().filter(|w| w.eps > 0.0) {
            cols.push((
                format!("worst@{:.2}", w.eps * 255.0),
                w.per_source.iter().map(|p| p.accuracy).collect(),
            ));
        }
        write!(f, "{:<18} {:>5}", "source", "n")?;
        for (name, _) in &cols {
            write!(f, " {name:>12}")?;
        }
        writeln!(f, "   (eps in /255)")?;
        for (si, p) in self.clean_per_source.iter().enumerate() {
            write!(f, "{:<18} {:>5}", p.source, p.n)?;
            for (_, v) in &cols {
                match v.get(si) {
                    Some(a) => write!(f, " {a:>12.4}")?,
                    None => write!(f, " {:>12}", "-")?,
                }
            }
            writeln!(f)?;
        }
        writeln!(f, "sanity checks:")?;
        for c in &self.sanity {
            writeln!(
                f,
                "  [{}] {}: {}",
                if c.passed { " ok " } else { "FAIL" },
                c.name,
                c.detail
            )?;
        }
        if let Some(d) = &self.adversarial_dir {
            writeln!(f, "adversarial examples: {}", d.display())?;
        }
        Ok(())
    }
}
