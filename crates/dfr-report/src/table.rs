//! polars DataFrames written as CSV, Parquet and GitHub-flavoured Markdown tables.
//!
//! Every file is written atomically (temporary file in the same directory, then rename).
//!
//! ```no_run
//! use dfr_report::polars::prelude::*;
//! use dfr_report::table;
//!
//! let df = table::frame(vec![
//!     Column::new("eps".into(), vec![0.0, 2.0 / 255.0, 4.0 / 255.0]),
//!     Column::new("accuracy".into(), vec![Some(0.97), Some(0.81), None]),
//! ])?;
//! let paths = table::write_all(&df, "out/tables", "fgsm_accuracy")?;
//! println!("{}", paths.markdown.display());
//! # Ok::<(), dfr_report::ReportError>(())
//! ```

use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::atomic::{write_atomic, write_bytes};
use crate::error::{ReportError, Result};

/// How cells are rendered in a Markdown table.
#[derive(Debug, Clone, PartialEq)]
pub struct MarkdownOptions {
    /// Number of digits after the decimal point for floating-point cells.
    pub float_decimals: usize,
    /// Text shown for null (missing) cells.
    pub null: String,
}

impl Default for MarkdownOptions {
    /// Four decimals, nulls shown as `—`.
    fn default() -> Self {
        Self {
            float_decimals: 4,
            null: "—".to_owned(),
        }
    }
}

impl MarkdownOptions {
    /// Default options with `float_decimals` digits after the decimal point.
    pub fn with_decimals(float_decimals: usize) -> Self {
        Self {
            float_decimals,
            ..Self::default()
        }
    }
}

/// The three files written by [`write_all`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TablePaths {
    /// `<dir>/<stem>.csv`
    pub csv: PathBuf,
    /// `<dir>/<stem>.parquet`
    pub parquet: PathBuf,
    /// `<dir>/<stem>.md`
    pub markdown: PathBuf,
}

/// Build a DataFrame from columns of equal length, e.g.
/// `frame(vec![Column::new("eps".into(), eps), Column::new("acc".into(), acc)])`.
///
/// Columns may hold plain values (`Vec<f64>`, `Vec<i64>`, `Vec<String>`, `Vec<&str>`, …)
/// or optional ones (`Vec<Option<f64>>`) for missing cells. Errors (instead of panicking)
/// when lengths differ or names repeat.
pub fn frame(columns: Vec<Column>) -> Result<DataFrame> {
    Ok(DataFrame::new_infer_height(columns)?)
}

/// Write `df` as CSV (with a header row) to `path`, atomically.
pub fn write_csv(df: &DataFrame, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let mut df = df.clone();
    write_atomic(path, |w| {
        CsvWriter::new(w).include_header(true).finish(&mut df)?;
        Ok(())
    })
}

/// Write `df` as Parquet (zstd-compressed) to `path`, atomically.
pub fn write_parquet(df: &DataFrame, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let mut df = df.clone();
    write_atomic(path, |w| {
        ParquetWriter::new(w).finish(&mut df)?;
        Ok(())
    })
}

/// Write `df` as a Markdown table (see [`to_markdown`]) to `path`, atomically.
pub fn write_markdown(
    df: &DataFrame,
    path: impl AsRef<Path>,
    opts: &MarkdownOptions,
) -> Result<()> {
    let path = path.as_ref();
    let text = to_markdown(df, opts)?;
    write_bytes(path, text.as_bytes())
}

/// Write `df` as `<dir>/<stem>.csv`, `<dir>/<stem>.parquet` and `<dir>/<stem>.md`
/// (Markdown with [`MarkdownOptions::default`]); `dir` is created if missing.
pub fn write_all(df: &DataFrame, dir: impl AsRef<Path>, stem: &str) -> Result<TablePaths> {
    write_all_with(df, dir, stem, &MarkdownOptions::default())
}

/// Like [`write_all`] with explicit Markdown options.
pub fn write_all_with(
    df: &DataFrame,
    dir: impl AsRef<Path>,
    stem: &str,
    opts: &MarkdownOptions,
) -> Result<TablePaths> {
    if stem.is_empty() || stem.contains(['/', '\\']) {
        return Err(ReportError::InvalidArgument(format!(
            "table stem {stem:?} must be a non-empty file name without separators"
        )));
    }
    let dir = dir.as_ref();
    let paths = TablePaths {
        csv: dir.join(format!("{stem}.csv")),
        parquet: dir.join(format!("{stem}.parquet")),
        markdown: dir.join(format!("{stem}.md")),
    };
    write_csv(df, &paths.csv)?;
    write_parquet(df, &paths.parquet)?;
    write_markdown(df, &paths.markdown, opts)?;
    Ok(paths)
}

/// Read a CSV file written by [`write_csv`] (header row, types inferred).
pub fn read_csv(path: impl AsRef<Path>) -> Result<DataFrame> {
    let path = path.as_ref();
    // polars panics when both the options and the argument carry a path; only the
    // argument does here.
    let df = CsvReadOptions::default()
        .with_has_header(true)
        .try_into_reader_with_file_path(Some(path.to_path_buf()))?
        .finish()?;
    Ok(df)
}

/// Read a Parquet file written by [`write_parquet`].
pub fn read_parquet(path: impl AsRef<Path>) -> Result<DataFrame> {
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(|e| ReportError::io(path, e))?;
    Ok(ParquetReader::new(file).finish()?)
}

/// Render `df` as a GitHub pipe table: a header row, an alignment row (numeric columns
/// right-aligned) and one line per DataFrame row. Floats use `opts.float_decimals`
/// decimals, nulls show `opts.null`, `|` in text is escaped and newlines become spaces.
/// A DataFrame without columns renders as an empty string.
pub fn to_markdown(df: &DataFrame, opts: &MarkdownOptions) -> Result<String> {
    let columns = df.columns();
    if columns.is_empty() {
        return Ok(String::new());
    }
    let mut out = String::new();
    let header: Vec<String> = columns
        .iter()
        .map(|c| escape_cell(c.name().as_str()))
        .collect();
    push_row(&mut out, &header);
    let align: Vec<String> = columns
        .iter()
        .map(|c| {
            if c.dtype().is_primitive_numeric() {
                "---:".to_owned()
            } else {
                "---".to_owned()
            }
        })
        .collect();
    push_row(&mut out, &align);
    for row in 0..df.height() {
        let mut cells = Vec::with_capacity(columns.len());
        for column in columns {
            let value = column.get(row)?;
            cells.push(format_value(&value, opts));
        }
        push_row(&mut out, &cells);
    }
    Ok(out)
}

fn push_row(out: &mut String, cells: &[String]) {
    out.push('|');
    for cell in cells {
        out.push(' ');
        out.push_str(cell);
        out.push_str(" |");
    }
    out.push('\n');
}

/// Format one cell for Markdown.
pub(crate) fn format_value(value: &AnyValue<'_>, opts: &MarkdownOptions) -> String {
    match value {
        AnyValue::Null => opts.null.clone(),
        AnyValue::Float32(v) => format_float(f64::from(*v), opts.float_decimals),
        AnyValue::Float64(v) => format_float(*v, opts.float_decimals),
        AnyValue::String(s) => escape_cell(s),
        AnyValue::StringOwned(s) => escape_cell(s.as_str()),
        AnyValue::Boolean(b) => b.to_string(),
        other => escape_cell(&other.to_string()),
    }
}

/// Format a float with a fixed number of decimals; NaN and infinities spelled out.
pub(crate) fn format_float(v: f64, decimals: usize) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "∞" } else { "−∞" }.to_owned()
    } else {
        let s = format!("{v:.decimals$}");
        // Avoid "-0.000".
        if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
            s[1..].to_owned()
        } else {
            s
        }
    }
}

/// Escape text so it stays inside one Markdown table cell.
pub(crate) fn escape_cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '|' => out.push_str("\\|"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}
