//! `dfr data synth` and `dfr data inspect`.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use dfr_data::inspect::inspect;
use dfr_data::synth::{generate, SynthConfig, SynthOutcome};
use dfr_data::{DataConfig, LayoutKind, Split};
use std::path::PathBuf;

/// Dataset commands.
#[derive(Subcommand)]
pub enum DataCommand {
    /// Generate a synthetic DFFD tree (official layout, PNG).
    Synth(SynthArgs),
    /// Count images per split × source × label, class weights, bad files.
    Inspect(InspectArgs),
}

/// Options of `dfr data synth`.
#[derive(Args)]
pub struct SynthArgs {
    /// Output directory.
    #[arg(long, default_value = "data/synthetic-dffd")]
    pub out: PathBuf,
    /// Image side length (DFFD: 299).
    #[arg(long, default_value_t = SynthConfig::default().size)]
    pub size: u32,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Train images per real source and per fake source, e.g. `48,32`.
    #[arg(long, value_parser = parse_counts)]
    pub train: Option<(usize, usize)>,
    /// Validation images per real source and per fake source.
    #[arg(long, value_parser = parse_counts)]
    pub validation: Option<(usize, usize)>,
    /// Test images per real source and per fake source.
    #[arg(long, value_parser = parse_counts)]
    pub test: Option<(usize, usize)>,
    /// Whole-number multiplier of every fake-trace amplitude, 1 to 20 (1: realistic,
    /// subtle traces).
    #[arg(long, default_value_t = 1, value_parser = dfr_data::synth::parse_trace_gain)]
    pub trace_gain: u32,
    /// Replace an existing tree generated with another configuration.
    #[arg(long)]
    pub force: bool,
}

fn parse_counts(s: &str) -> Result<(usize, usize), String> {
    let (a, b) = s
        .split_once(',')
        .ok_or_else(|| format!("`{s}`: expected REAL,FAKE (images per source), e.g. 48,32"))?;
    let p = |v: &str| {
        v.trim()
            .parse::<usize>()
            .map_err(|e| format!("`{v}`: {e} (expected a non-negative integer)"))
    };
    Ok((p(a)?, p(b)?))
}

/// Options of `dfr data inspect`.
#[derive(Args)]
pub struct InspectArgs {
    /// Dataset root (for `--layout csv`: the manifest or its directory).
    pub root: PathBuf,
    /// Layout: dffd, folder or csv.
    #[arg(long, default_value = "dffd")]
    pub layout: String,
    /// Decode every image to find unreadable files.
    #[arg(long)]
    pub verify: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs a data command.
pub fn run(cmd: DataCommand) -> Result<()> {
    match cmd {
        DataCommand::Synth(a) => {
            let mut cfg = SynthConfig {
                size: a.size,
                seed: a.seed,
                trace_gain: a.trace_gain,
                ..SynthConfig::default()
            };
            for (dst, src) in [
                (&mut cfg.train, a.train),
                (&mut cfg.validation, a.validation),
                (&mut cfg.test, a.test),
            ] {
                if let Some((r, f)) = src {
                    dst.real_per_source = r;
                    dst.fake_per_source = f;
                }
            }
            let t = std::time::Instant::now();
            match generate(&cfg, &a.out, a.force)
                .with_context(|| format!("generating synthetic DFFD in {}", a.out.display()))?
            {
                SynthOutcome::Generated(n) => println!(
                    "generated {n} images ({0}×{0}) in {1} in {2:.1} s",
                    cfg.size,
                    a.out.display(),
                    t.elapsed().as_secs_f64()
                ),
                SynthOutcome::Reused => println!(
                    "{} already holds this synthetic dataset; kept it",
                    a.out.display()
                ),
            }
            Ok(())
        }
        DataCommand::Inspect(a) => {
            let Some(layout) = LayoutKind::parse(&a.layout) else {
                bail!("--layout `{}`: expected dffd, folder or csv", a.layout);
            };
            let ds = DataConfig::new(&a.root, layout)
                .scan()
                .with_context(|| format!("scanning {}", a.root.display()))?;
            let report = inspect(&ds, a.verify)?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{report}");
            }
            if let Some(bad) = &report.bad_files {
                for split in Split::ALL {
                    let total = ds.split(split).len();
                    let n = bad
                        .iter()
                        .filter(|b| {
                            ds.samples
                                .iter()
                                .any(|s| s.split == split && s.path == b.path)
                        })
                        .count();
                    if total > 0 && n as f64 > ds.max_bad_fraction * total as f64 {
                        bail!(
                            "{n} of {total} images of split `{split}` are unreadable \
                             (more than {:.2}%)",
                            ds.max_bad_fraction * 100.0
                        );
                    }
                }
            }
            Ok(())
        }
    }
}
