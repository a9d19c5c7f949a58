//! The PyTorch side of `cargo xtask bench model --pytorch PYTHON`: runs the reference
//! scripts for one configuration and reads their figures, and measures peak resident memory
//! of a train step in a fresh process (ours or PyTorch's), so that every speed and memory
//! claim is a ratio measured side by side.
//!
//! - CPU: `../shared/bench/pt_bench.py RES BATCH` (timm B0, 2 threads), which prints lines
//!   such as `res=128 bs=32 train img/s 21.70`;
//! - CUDA: `xtask/bench/pt_bench_gpu.py RESxBATCH`, whose last line is JSON;
//! - memory: `xtask/bench/pt_train_memory.py RES BATCH`, and for ours the `xtask` binary itself
//!   (`bench model --configs RESxBATCH --peak-rss`); both reset the kernel's peak-RSS mark
//!   after a warm-up step and report `VmHWM` after two more.

use anyhow::{bail, Context, Result};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The three figures compared (images per second).
pub const FIGURES: [&str; 3] = [
    "train_images_per_second",
    "eval_images_per_second",
    "pgd10_images_per_second",
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// `../shared/bench/pt_bench.py` beside the workspace, or an error naming where it was looked for.
pub fn cpu_script() -> Result<PathBuf> {
    let p = workspace_root().join("../shared/bench/pt_bench.py");
    if !p.is_file() {
        bail!(
            "the PyTorch CPU reference {} is missing (it ships in ../shared/bench beside the \
             repository)",
            p.display()
        );
    }
    Ok(p)
}

fn own_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("bench")
        .join(name)
}

fn run(cmd: &mut Command, what: &str) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `python script RES BATCH`; returns the command line (for errors) and its stdout.
fn run_res_batch(python: &Path, script: &Path, res: usize, bs: usize) -> Result<(String, String)> {
    let what = format!("{} {} {res} {bs}", python.display(), script.display());
    let text = run(
        Command::new(python)
            .arg(script)
            .arg(res.to_string())
            .arg(bs.to_string()),
        &what,
    )?;
    Ok((what, text))
}

/// PyTorch's images/s at `res`×`bs` on the CPU or on CUDA (figures named as ours).
pub fn throughput(python: &Path, cuda: bool, res: usize, bs: usize) -> Result<Map<String, Value>> {
    if cuda {
        let script = own_script("pt_bench_gpu.py");
        let what = format!("{} {} {res}x{bs}", python.display(), script.display());
        let text = run(
            Command::new(python).arg(&script).arg(format!("{res}x{bs}")),
            &what,
        )?;
        parse_gpu_output(&text).with_context(|| format!("reading the output of {what}"))
    } else {
        let (what, text) = run_res_batch(python, &cpu_script()?, res, bs)?;
        parse_cpu_output(&text).with_context(|| format!("reading the output of {what}"))
    }
}

/// Reads `pt_bench.py`'s lines (`res=R bs=B train img/s X`, `… eval  img/s X`,
/// `… pgd10 img/s X`) into our figure names.
///
/// ```
/// let m = xtask::bench_reference::parse_cpu_output(
///     "res=64 bs=16 train img/s 74.10\nres=64 bs=16 eval  img/s 414.00\nres=64 bs=16 pgd10 img/s 15.40\n",
/// )
/// .unwrap();
/// assert_eq!(m["train_images_per_second"], 74.1);
/// assert_eq!(m["pgd10_images_per_second"], 15.4);
/// ```
pub fn parse_cpu_output(text: &str) -> Result<Map<String, Value>> {
    let mut m = Map::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(i) = words.iter().position(|w| *w == "img/s") else {
            continue;
        };
        let (Some(name), Some(value)) = (i.checked_sub(1).map(|j| words[j]), words.get(i + 1))
        else {
            continue;
        };
        let key = match name {
            "train" => FIGURES[0],
            "eval" => FIGURES[1],
            "pgd10" => FIGURES[2],
            _ => continue,
        };
        let v: f64 = value
            .parse()
            .with_context(|| format!("`{line}`: `{value}` is not a number"))?;
        m.insert(key.into(), v.into());
    }
    for k in FIGURES {
        if !m.contains_key(k) {
            bail!("no `{k}` line (expected e.g. `res=64 bs=16 train img/s 74.1`) in:\n{text}");
        }
    }
    Ok(m)
}

/// Reads the JSON result line of `pt_bench_gpu.py` for one configuration.
fn parse_gpu_output(text: &str) -> Result<Map<String, Value>> {
    let line = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .context("no JSON line")?;
    let v: Value = serde_json::from_str(line)?;
    let r = v["results"]
        .as_array()
        .and_then(|a| a.first())
        .context("no results")?;
    let mut m = Map::new();
    for k in FIGURES {
        let x = r[k].as_f64().with_context(|| format!("no `{k}`"))?;
        m.insert(k.into(), x.into());
    }
    for k in ["pytorch", "device"] {
        if let Some(s) = v.get(k) {
            m.insert(k.into(), s.clone());
        }
    }
    Ok(m)
}

/// Peak resident memory (MiB) of PyTorch's CPU train step at `res`×`bs`, in a fresh process.
pub fn pytorch_train_peak_rss(python: &Path, res: usize, bs: usize) -> Result<f64> {
    let (what, text) = run_res_batch(python, &own_script("pt_train_memory.py"), res, bs)?;
    peak_from_json(&text).with_context(|| format!("reading the output of {what}"))
}

/// Peak resident memory (MiB) of our CPU train step at `res`×`bs`, in a fresh process of this
/// binary (`bench model --configs RESxBATCH --peak-rss`).
pub fn our_train_peak_rss(res: usize, bs: usize) -> Result<f64> {
    let exe = std::env::current_exe().context("locating the xtask binary")?;
    let what = format!(
        "{} bench model --configs {res}x{bs} --peak-rss",
        exe.display()
    );
    let text = run(
        Command::new(&exe)
            .args(["bench", "model", "--peak-rss", "--configs"])
            .arg(format!("{res}x{bs}")),
        &what,
    )?;
    peak_from_json(&text).with_context(|| format!("reading the output of {what}"))
}

fn peak_from_json(text: &str) -> Result<f64> {
    let v: Value = serde_json::from_str(text.trim()).or_else(|_| {
        // pretty-printed JSON spans several lines: parse the whole text's last object
        let start = text.find('{').context("no JSON")?;
        serde_json::from_str(&text[start..]).map_err(anyhow::Error::from)
    })?;
    v["train_peak_rss_mib"]
        .as_f64()
        .or_else(|| v["results"][0]["train_peak_rss_mib"].as_f64())
        .context("no train_peak_rss_mib")
}

/// Resets this process's peak-RSS mark (Linux: `5` into `/proc/self/clear_refs`).
pub fn reset_peak_rss() -> Result<()> {
    std::fs::write("/proc/self/clear_refs", "5")
        .context("resetting the peak RSS (/proc/self/clear_refs; Linux only)")
}

/// This process's peak resident memory since the last reset, in MiB (`VmHWM`).
pub fn peak_rss_mib() -> Result<f64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmHWM in /proc/self/status")?;
    Ok(kib / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_output_needs_all_three_figures() {
        let e = parse_cpu_output("res=64 bs=16 train img/s 74.1\n").unwrap_err();
        assert!(e.to_string().contains("eval_images_per_second"), "{e}");
        assert!(parse_cpu_output("res=64 bs=16 train img/s fast\n").is_err());
    }

    #[test]
    fn gpu_and_memory_json_are_read() {
        let text =
            "{\"resolution\": 224}\n{\"bench\": \"model\", \"pytorch\": \"2.5\", \"results\": \
                    [{\"train_images_per_second\": 1.0, \"eval_images_per_second\": 2.0, \
                    \"pgd10_images_per_second\": 3.0}]}\n";
        let m = parse_gpu_output(text).unwrap();
        assert_eq!(m["eval_images_per_second"], 2.0);
        assert_eq!(m["pytorch"], "2.5");
        assert_eq!(
            peak_from_json("{\"train_peak_rss_mib\": 812.5}\n").unwrap(),
            812.5
        );
        assert!(peak_from_json("nothing").is_err());
    }

    #[test]
    fn peak_rss_is_read_after_a_reset() {
        reset_peak_rss().unwrap();
        let before = peak_rss_mib().unwrap();
        let big = vec![1u8; 64 << 20];
        std::hint::black_box(&big);
        let after = peak_rss_mib().unwrap();
        assert!(after >= before + 60.0, "{before} → {after}");
    }
}
