//! `--emit slurm`: an sbatch job array with one task per independent unit of work (an
//! ablation's cells, a generalisation study's (held-out, arm, seed) runs) and a merge job.

use crate::error::{Result, StepContext};
use crate::study::StudyOptions;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Options of the `--emit slurm` job scripts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlurmSection {
    /// `--partition` (none when empty).
    pub partition: String,
    /// `--account` (none when empty).
    pub account: String,
    /// `--time` of one cell.
    pub time: String,
    /// `--cpus-per-task` (also the cell's thread count).
    pub cpus_per_task: usize,
    /// `--mem`.
    pub mem: String,
    /// GPUs per cell (`--gres=gpu:N`); cells then run with `--device cuda`.
    pub gpus: usize,
    /// At most this many cells at once (`--array=…%N`; unlimited when absent).
    pub max_parallel: Option<usize>,
    /// Shell lines run before each cell (e.g. `module load cuda`).
    pub setup: Vec<String>,
    /// Further `#SBATCH` options, e.g. `--qos=long`.
    pub extra: Vec<String>,
}

impl Default for SlurmSection {
    fn default() -> Self {
        SlurmSection {
            partition: String::new(),
            account: String::new(),
            time: "04:00:00".into(),
            cpus_per_task: 4,
            mem: "8G".into(),
            gpus: 0,
            max_parallel: None,
            setup: Vec::new(),
            extra: Vec::new(),
        }
    }
}

/// Job schedulers `--emit` can write scripts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emit {
    /// An sbatch job array (one task per unit) and a merge job.
    Slurm,
}

/// A job array to write: what the units are and how the xtask command names them.
#[derive(Debug, Clone)]
pub struct JobArray<'a> {
    /// The xtask command (`ablation`, `generalization`), also the job names' prefix.
    pub command: &'a str,
    /// The study's name.
    pub study: &'a str,
    /// The study's output directory (scripts go to `<out>/slurm/`).
    pub out: &'a Path,
    /// The embedded default study file, `(file name, text)`: written next to the scripts when
    /// no `--config` was given.
    pub embedded: (&'a str, &'a str),
    /// The flag that runs one unit (`--cell`, `--unit`).
    pub unit_flag: &'a str,
    /// Units (array tasks `0..n`).
    pub n: usize,
    /// The cluster options.
    pub slurm: &'a SlurmSection,
}

/// Quotes a word for a POSIX shell.
pub fn sh_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn absolute(p: &Path) -> Result<PathBuf> {
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    })
}

fn write(path: &Path, text: &str, executable: bool) -> Result<()> {
    dfr_fs::write_atomic(path, text.as_bytes()).step(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    if executable {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    }
    #[cfg(not(unix))]
    let _ = executable;
    Ok(())
}

/// Writes `<out>/slurm/{cells.sbatch, merge.sbatch, submit.sh}` (and the study file, when it
/// is the embedded default); returns the path of `submit.sh`.
///
/// The scripts run the `xtask` binary that wrote them (build it once on a shared file system:
/// `cargo build --release -p xtask`) from the current directory, with the same options.
pub fn emit(job: &JobArray<'_>, args: &StudyOptions) -> Result<PathBuf> {
    let s = job.slurm;
    let n_cells = job.n;
    let dir = absolute(&job.out.join("slurm"))?;
    std::fs::create_dir_all(dir.join("logs")).step(|| format!("creating {}", dir.display()))?;
    let config = match &args.config {
        Some(p) => absolute(p)?,
        None => {
            let p = dir.join(job.embedded.0);
            write(&p, job.embedded.1, false)?;
            p
        }
    };
    let exe = std::env::current_exe().step(|| "locating the xtask binary")?;
    let workdir = std::env::current_dir()?;
    let mut common = vec![
        sh_quote(&exe.display().to_string()),
        job.command.into(),
        "--config".into(),
        sh_quote(&config.display().to_string()),
    ];
    // As given: they become part of each cell's configuration, and the scripts run from the
    // current directory, so cells started here and on the cluster stay interchangeable.
    if let Some(d) = &args.data {
        common.extend(["--data".into(), sh_quote(&d.display().to_string())]);
    }
    if let Some(r) = &args.results_dir {
        common.extend(["--results-dir".into(), sh_quote(&r.display().to_string())]);
    }
    for o in &args.overrides {
        common.extend(["--set".into(), sh_quote(o)]);
    }
    let device = if s.gpus > 0 && args.device == "cpu" {
        "cuda".to_string()
    } else {
        args.device.clone()
    };
    let common = common.join(" ");
    let run_cell = format!("{common} --device {}", sh_quote(&device));
    let name = format!("dfr-{}-{}", job.command, job.study);

    let header = |job: &str, log: &str, array: Option<String>| -> String {
        let mut h = String::from("#!/bin/bash\n");
        let _ = writeln!(h, "#SBATCH --job-name={}", sh_quote(job));
        if let Some(a) = array {
            let _ = writeln!(h, "#SBATCH --array={a}");
        }
        // sbatch reads #SBATCH lines itself: double quotes keep a path with spaces whole
        let out = dir.join("logs").join(log).display().to_string();
        let _ = writeln!(h, "#SBATCH --output=\"{}\"", out.replace('"', "\\\""));
        let _ = writeln!(h, "#SBATCH --cpus-per-task={}", s.cpus_per_task.max(1));
        let _ = writeln!(h, "#SBATCH --mem={}", s.mem);
        let _ = writeln!(h, "#SBATCH --time={}", s.time);
        if !s.partition.is_empty() {
            let _ = writeln!(h, "#SBATCH --partition={}", s.partition);
        }
        if !s.account.is_empty() {
            let _ = writeln!(h, "#SBATCH --account={}", s.account);
        }
        for e in &s.extra {
            let _ = writeln!(h, "#SBATCH {e}");
        }
        h
    };
    let array = match s.max_parallel {
        Some(p) => format!("0-{}%{p}", n_cells - 1),
        None => format!("0-{}", n_cells - 1),
    };
    let mut cells = header(&format!("{name}-cells"), "cell-%a.out", Some(array));
    if s.gpus > 0 {
        let _ = writeln!(cells, "#SBATCH --gres=gpu:{}", s.gpus);
    }
    let _ = write!(
        cells,
        "# One {command} unit per array task ({n_cells} units; `{} --list` names them).\n\
         # A finished unit is skipped and an interrupted one resumes, so requeueing is safe.\n\
         set -eo pipefail\n\
         cd {}\n\
         export RAYON_NUM_THREADS=\"${{SLURM_CPUS_PER_TASK:-1}}\"\n",
        common,
        sh_quote(&workdir.display().to_string()),
        command = job.command,
    );
    for line in &s.setup {
        let _ = writeln!(cells, "{line}");
    }
    let _ = writeln!(
        cells,
        "{run_cell} {} \"$SLURM_ARRAY_TASK_ID\"",
        job.unit_flag
    );

    let mut merge = header(&format!("{name}-merge"), "merge.out", None);
    let _ = write!(
        merge,
        "# Merges the finished units into the summary, tables, figures and report.md.\n\
         set -euo pipefail\n\
         cd {}\n\
         {common} --merge\n",
        sh_quote(&workdir.display().to_string())
    );

    let submit = format!(
        "#!/bin/bash\n\
         # Submits the units as a job array and the merge after all of them (even if some\n\
         # fail, so the merge says what is missing).\n\
         set -euo pipefail\n\
         cells=$(sbatch --parsable {cells_path})\n\
         cells=${{cells%%;*}}\n\
         sbatch --dependency=afterany:\"$cells\" {merge_path}\n\
         echo \"submitted the units as job $cells; the report will be at {report}\"\n",
        cells_path = sh_quote(&dir.join("cells.sbatch").display().to_string()),
        merge_path = sh_quote(&dir.join("merge.sbatch").display().to_string()),
        report = absolute(&job.out.join("report.md"))?.display()
    );
    write(&dir.join("cells.sbatch"), &cells, true)?;
    write(&dir.join("merge.sbatch"), &merge, true)?;
    let submit_path = dir.join("submit.sh");
    write(&submit_path, &submit, true)?;
    println!(
        "[slurm] {n_cells} units: {}\n[slurm] submit with: bash {}",
        dir.join("cells.sbatch").display(),
        submit_path.display()
    );
    Ok(submit_path)
}

#[cfg(test)]
mod tests {
    use super::sh_quote;

    #[test]
    fn quoting_survives_the_shell() {
        assert_eq!(sh_quote("train.epochs=1"), "train.epochs=1");
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        assert_eq!(sh_quote(""), "''");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {}", sh_quote("x'y $HOME \"z\"")))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), "x'y $HOME \"z\"");
    }
}
