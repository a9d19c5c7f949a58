//! `dfr`: the command-line front end of the deepfake-robustness toolkit.

mod attack;
mod cam;
mod data;
mod device;
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
    /// Grad-CAM overlays of clean (and adversarial) images with CAM-consistency scores.
    Cam(cam::CamArgs),
    /// Class probabilities of images under a checkpoint or ImageNet weights.
    Predict(predict::PredictArgs),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Data(cmd) => data::run(cmd),
        Command::Train(a) => train::run(a),
        Command::Predict(a) => predict::run(a),
        Command::Attack(a) => attack::run(a),
        Command::Cam(a) => cam::run(a),
    }
}
