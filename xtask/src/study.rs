//! `cargo xtask reproduce-tables`: the study pipeline.
//!
//! Stages implemented so far: the dataset (the synthetic DFFD is generated on first use, then
//! scanned, verified and summarised). Training, attacks, Grad-CAM and the report tables join
//! as their crates land (see ARCHITECTURE.md).

use anyhow::{Context, Result};
use clap::Args;
use dfr_data::inspect::inspect;
use dfr_data::synth::{generate, SynthConfig, SynthOutcome};
use dfr_data::{DataConfig, LayoutKind};
use std::path::PathBuf;

/// Options of `cargo xtask reproduce-tables`.
#[derive(Args)]
pub struct StudyArgs {
    /// Dataset root in the DFFD layout. Default: the synthetic DFFD at data/synthetic-dffd,
    /// generated if missing.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Where results go.
    #[arg(long, default_value = "experiments/results/quick")]
    out: PathBuf,
}

/// Runs the available stages of the study and prints where the report is.
pub fn reproduce_tables(a: StudyArgs) -> Result<()> {
    let root = match a.data {
        Some(d) => d,
        None => {
            let root = PathBuf::from("data/synthetic-dffd");
            match generate(&SynthConfig::default(), &root, false)
                .with_context(|| format!("generating the synthetic DFFD in {}", root.display()))?
            {
                SynthOutcome::Generated(n) => {
                    println!(
                        "[data] generated {n} synthetic images in {}",
                        root.display()
                    )
                }
                SynthOutcome::Reused => {
                    println!("[data] using the synthetic DFFD in {}", root.display())
                }
            }
            root
        }
    };
    let ds = DataConfig::new(&root, LayoutKind::Dffd)
        .scan()
        .with_context(|| format!("scanning {}", root.display()))?;
    let report = inspect(&ds, true)?;
    print!("{report}");
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let path = a.out.join("data-report.json");
    dfr_data::decode::write_atomic(&path, serde_json::to_string_pretty(&report)?.as_bytes())?;
    println!("[report] {}", path.display());
    Ok(())
}
