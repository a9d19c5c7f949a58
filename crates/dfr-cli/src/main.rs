//! `dfr`: the command-line front end of the deepfake-robustness toolkit.

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
    }
}
