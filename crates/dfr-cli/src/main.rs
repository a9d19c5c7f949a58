//! `dfr`: the command-line front end of the deepfake-robustness toolkit.

mod attack;
mod cam;
mod data;
mod device;
mod eval;
mod predict;
mod train;

use clap::{Parser, Subcommand};

/// Robust deepfake detection research toolkit.
#[derive(Parser)]
#[command(name = "dfr", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Datasets: generate the synthetic DFFD, inspect a dataset.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Train a detector from a TOML experiment file.
    Train(train::TrainArgs),
    /// Robust evaluation: FGSM, PGD, MI-FGSM, APGD over ε grids.
    Attack(attack::AttackArgs),
    /// Clean metrics of a checkpoint on a data set (cross-dataset): frame-level and, for
    /// frames of videos (a CSV manifest with a `video` column), video-level AUC, AP, EER.
    Eval(eval::EvalArgs),
    /// Grad-CAM overlays of clean (and adversarial) images with CAM-consistency scores.
    Cam(cam::CamArgs),
    /// Class probabilities of images under a checkpoint or ImageNet weights.
    Predict(predict::PredictArgs),
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

fn main() -> anyhow::Result<()> {
    restore_sigpipe();
    // The command runs on the kernels' thread pool with the allocator tuned for the
    // training loop (dfr_model::runtime).
    dfr_model::runtime::run(run_command)
}

fn run_command() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // colour codes only for a terminal, not in log files
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Data(cmd) => data::run(cmd),
        Command::Train(a) => train::run(a),
        Command::Predict(a) => predict::run(a),
        Command::Attack(a) => attack::run(a),
        Command::Cam(a) => cam::run(a),
        Command::Eval(a) => eval::run(a),
    }
}
