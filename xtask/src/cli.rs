//! The clap options of `reproduce-tables`, `ablation` and `generalization`, turned into
//! `dfr-study`'s options.

use clap::{Args, ValueEnum};
use dfr_study::ablation::{AblationOptions, Emit};
use dfr_study::generalization::GeneralizationOptions;
use dfr_study::StudyOptions;
use std::path::PathBuf;

/// Options of `cargo xtask reproduce-tables`.
#[derive(Args, Debug, Clone)]
pub struct StudyArgs {
    /// Study file (default: the command's embedded one — experiments/quick.toml for
    /// reproduce-tables, experiments/ablation.toml for ablation,
    /// experiments/generalization.toml for generalization).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Dataset root in the DFFD layout (replaces the study's; disables synthetic generation).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Parent directory of the study's results (default: the study's results_dir).
    #[arg(long)]
    pub results_dir: Option<PathBuf>,
    /// Override an experiment value of every arm, e.g. `--set train.epochs=1` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Device: cpu, cuda or cuda:N (CUDA needs a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Runs (or ablation cells) side by side, each on an equal share of the cores (default:
    /// one per core on the CPU, one at a time on CUDA; results do not depend on it). Each
    /// holds one model's training state in memory.
    #[arg(long)]
    pub jobs: Option<usize>,
}

impl Default for StudyArgs {
    fn default() -> Self {
        StudyArgs {
            config: None,
            data: None,
            results_dir: None,
            overrides: Vec::new(),
            device: "cpu".into(),
            jobs: None,
        }
    }
}

impl StudyArgs {
    /// The library's options.
    pub fn options(&self) -> StudyOptions {
        StudyOptions {
            config: self.config.clone(),
            data: self.data.clone(),
            results_dir: self.results_dir.clone(),
            overrides: self.overrides.clone(),
            device: self.device.clone(),
            only: None,
            jobs: self.jobs,
        }
    }
}

/// Options of `cargo xtask reproduce-tables`.
#[derive(Args, Debug, Clone, Default)]
pub struct ReproduceArgs {
    /// Study options.
    #[command(flatten)]
    pub study: StudyArgs,
    /// Run only this arm (with `--seed`) and write no report: one task of a job array.
    #[arg(long, requires = "seed")]
    pub arm: Option<String>,
    /// The seed of `--arm`.
    #[arg(long, requires = "arm")]
    pub seed: Option<u64>,
}

impl ReproduceArgs {
    /// The library's options.
    pub fn options(&self) -> StudyOptions {
        StudyOptions {
            only: self.arm.clone().zip(self.seed),
            ..self.study.options()
        }
    }
}

/// Job schedulers `--emit` can write scripts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EmitArg {
    /// An sbatch job array (one task per cell or unit) and a merge job.
    Slurm,
}

/// Options of `cargo xtask ablation`.
#[derive(Args, Debug, Clone, Default)]
pub struct AblationArgs {
    /// Study options (default config: the embedded experiments/ablation.toml).
    #[command(flatten)]
    pub study: StudyArgs,
    /// Run only cell I (see `--list`); the summary is left to a later run or `--merge`.
    #[arg(long, value_name = "I")]
    pub cell: Option<usize>,
    /// Print the cells and exit.
    #[arg(long, conflicts_with_all = ["cell", "merge", "emit"])]
    pub list: bool,
    /// Only merge the finished cells into the summary (missing cells are listed in it).
    #[arg(long, conflicts_with = "cell")]
    pub merge: bool,
    /// Write job scripts for a scheduler instead of running the cells.
    #[arg(long, value_enum, conflicts_with_all = ["cell", "merge"])]
    pub emit: Option<EmitArg>,
}

impl AblationArgs {
    /// The library's options.
    pub fn options(&self) -> AblationOptions {
        AblationOptions {
            study: self.study.options(),
            cell: self.cell,
            list: self.list,
            merge: self.merge,
            emit: self.emit.map(|EmitArg::Slurm| Emit::Slurm),
        }
    }
}

/// Options of `cargo xtask generalization`.
#[derive(Args, Debug, Clone, Default)]
pub struct GeneralizationArgs {
    /// Study options (default config: the embedded experiments/generalization.toml).
    #[command(flatten)]
    pub study: StudyArgs,
    /// Run only unit I (see `--list`); the summary is left to a later run or `--merge`.
    #[arg(long, value_name = "I")]
    pub unit: Option<usize>,
    /// Print the units (held-out source × arm × seed) and exit.
    #[arg(long, conflicts_with_all = ["unit", "merge", "emit"])]
    pub list: bool,
    /// Only summarise the finished units (an error lists any that are missing).
    #[arg(long, conflicts_with = "unit")]
    pub merge: bool,
    /// Write job scripts for a scheduler instead of running the units.
    #[arg(long, value_enum, conflicts_with_all = ["unit", "merge"])]
    pub emit: Option<EmitArg>,
}

impl GeneralizationArgs {
    /// The library's options.
    pub fn options(&self) -> GeneralizationOptions {
        GeneralizationOptions {
            study: self.study.options(),
            unit: self.unit,
            list: self.list,
            merge: self.merge,
            emit: self.emit.map(|EmitArg::Slurm| Emit::Slurm),
        }
    }
}
