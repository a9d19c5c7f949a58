//! `cargo xtask …`: orchestration of the dfr workspace.

use xtask::{bench, cli, parity};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use dfr_data::synth::{generate, SynthConfig, SynthOutcome};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "dfr workspace tasks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate the synthetic DFFD (default: data/synthetic-dffd, 64 px).
    SynthData {
        /// Output directory.
        #[arg(long, default_value = "data/synthetic-dffd")]
        out: PathBuf,
        /// Image side length.
        #[arg(long, default_value_t = SynthConfig::default().size)]
        size: u32,
        /// Seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Whole-number multiplier of every fake-trace amplitude, 1 to 20 (1: realistic,
        /// subtle traces).
        #[arg(long, default_value_t = 1, value_parser = dfr_data::synth::parse_trace_gain)]
        trace_gain: u32,
        /// Replace a tree generated with another configuration.
        #[arg(long)]
        force: bool,
    },
    /// The whole study: every arm × seed trained, attacked and explained, statistics over
    /// seeds, summary.json and report.md (default: the embedded experiments/quick.toml on
    /// synthetic DFFD).
    ReproduceTables(cli::ReproduceArgs),
    /// Gradient regularisation over an α × r grid plus the baseline (default: the embedded
    /// experiments/ablation.toml): cells, `--cell I`, `--merge`, `--emit slurm`.
    Ablation(cli::AblationArgs),
    /// Leave-one-source-out: every arm × seed trained without each held-out fake source and
    /// tested on seen and held-out sources (default: the embedded
    /// experiments/generalization.toml): units, `--unit I`, `--merge`, `--emit slurm`.
    Generalization(cli::GeneralizationArgs),
    /// Benchmarks (JSON on stdout).
    Bench(bench::BenchArgs),
    /// Check the implementation against a directory of reference vectors.
    Parity {
        /// Reference-vector directory (default: $REFERENCE_VECTORS or ../shared/fixtures).
        dir: Option<PathBuf>,
    },
}

/// Dies quietly on a closed pipe (`dfr … | head -1`), as Unix tools do, instead of Rust's
/// default of ignoring SIGPIPE and panicking on the failed print.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: resetting a signal's disposition to the default before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> Result<()> {
    restore_sigpipe();
    // The command runs on the kernels' thread pool with the allocator tuned for the
    // training loop (dfr_model::runtime).
    dfr_model::runtime::run(run_command)
}

fn run_command() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // colour codes only for a terminal, not in log files
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match Cli::parse().command {
        Command::SynthData {
            out,
            size,
            seed,
            trace_gain,
            force,
        } => {
            let cfg = SynthConfig {
                size,
                seed,
                trace_gain,
                ..SynthConfig::default()
            };
            match generate(&cfg, &out, force)
                .with_context(|| format!("generating {}", out.display()))?
            {
                SynthOutcome::Generated(n) => println!("generated {n} images in {}", out.display()),
                SynthOutcome::Reused => println!("{} is up to date", out.display()),
            }
            Ok(())
        }
        Command::ReproduceTables(args) => {
            let out = dfr_study::reproduce_tables(&args.options())?;
            println!("{}", out.report.display());
            Ok(())
        }
        Command::Ablation(args) => {
            let path = dfr_study::ablation::run(&args.options())?;
            println!("{}", path.display());
            Ok(())
        }
        Command::Generalization(args) => {
            let path = dfr_study::generalization::run(&args.options())?;
            println!("{}", path.display());
            Ok(())
        }
        Command::Bench(args) => bench::run(args),
        Command::Parity { dir } => parity::run(dir),
    }
}
