//! A small Markdown report page: title, sections, paragraphs, tables and images.
//!
//! ```no_run
//! use dfr_report::markdown::ReportPage;
//! use dfr_report::table::MarkdownOptions;
//! # let df = dfr_report::polars::prelude::DataFrame::empty();
//!
//! let mut page = ReportPage::new("Robustness report");
//! page.section("FGSM")
//!     .paragraph("Accuracy under attack, baseline vs gradient-regularised.")
//!     .image("accuracy vs ε", "out/fgsm_accuracy.png");
//! page.table(&df, &MarkdownOptions::default())?;
//! page.write("out")?; // out/report.md, image links made relative to out/
//! # Ok::<(), dfr_report::ReportError>(())
//! ```

use std::path::{Component, Path, PathBuf};

use polars::prelude::DataFrame;

use crate::atomic::write_bytes;
use crate::error::Result;
use crate::table::{to_markdown, MarkdownOptions};

/// File name of the page written by [`ReportPage::write`].
pub const REPORT_FILE_NAME: &str = "report.md";

#[derive(Debug, Clone, PartialEq)]
enum Block {
    Heading {
        level: usize,
        text: String,
    },
    Paragraph(String),
    Table {
        caption: Option<String>,
        markdown: String,
    },
    Image {
        alt: String,
        path: PathBuf,
    },
    Link {
        text: String,
        path: PathBuf,
    },
}

/// Builder of one Markdown page; blocks appear in the order they are added.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportPage {
    title: String,
    blocks: Vec<Block>,
}

impl ReportPage {
    /// An empty page with a level-1 title.
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            blocks: Vec::new(),
        }
    }

    /// Start a section (level-2 heading).
    pub fn section(&mut self, heading: impl Into<String>) -> &mut Self {
        self.heading(2, heading)
    }

    /// Start a subsection (level-3 heading).
    pub fn subsection(&mut self, heading: impl Into<String>) -> &mut Self {
        self.heading(3, heading)
    }

    fn heading(&mut self, level: usize, text: impl Into<String>) -> &mut Self {
        self.blocks.push(Block::Heading {
            level,
            text: one_line(&text.into()),
        });
        self
    }

    /// Add a paragraph of Markdown text (inline formatting is kept as written).
    pub fn paragraph(&mut self, text: impl Into<String>) -> &mut Self {
        self.blocks.push(Block::Paragraph(text.into()));
        self
    }

    /// Add `df` as a Markdown table (see [`crate::table::to_markdown`]).
    pub fn table(&mut self, df: &DataFrame, opts: &MarkdownOptions) -> Result<&mut Self> {
        self.push_table(None, df, opts)
    }

    /// Add `df` as a Markdown table preceded by an italic caption.
    pub fn table_with_caption(
        &mut self,
        caption: impl Into<String>,
        df: &DataFrame,
        opts: &MarkdownOptions,
    ) -> Result<&mut Self> {
        self.push_table(Some(caption.into()), df, opts)
    }

    fn push_table(
        &mut self,
        caption: Option<String>,
        df: &DataFrame,
        opts: &MarkdownOptions,
    ) -> Result<&mut Self> {
        let markdown = to_markdown(df, opts)?;
        self.blocks.push(Block::Table { caption, markdown });
        Ok(self)
    }

    /// Add an image. Paths inside the directory the page is written to are linked
    /// relative to it; other paths are linked as given.
    pub fn image(&mut self, alt: impl Into<String>, path: impl AsRef<Path>) -> &mut Self {
        self.blocks.push(Block::Image {
            alt: alt.into(),
            path: path.as_ref().to_path_buf(),
        });
        self
    }

    /// Add a link to a file (e.g. a CSV or SVG), on its own line.
    pub fn link(&mut self, text: impl Into<String>, path: impl AsRef<Path>) -> &mut Self {
        self.blocks.push(Block::Link {
            text: text.into(),
            path: path.as_ref().to_path_buf(),
        });
        self
    }

    /// The page as Markdown, with file links exactly as given.
    pub fn render(&self) -> String {
        self.render_impl(None)
    }

    /// The page as Markdown, with links to files under `dir` made relative to `dir`.
    pub fn render_relative_to(&self, dir: impl AsRef<Path>) -> String {
        self.render_impl(Some(dir.as_ref()))
    }

    fn render_impl(&self, base: Option<&Path>) -> String {
        let mut out = format!("# {}\n", one_line(&self.title));
        for block in &self.blocks {
            out.push('\n');
            match block {
                Block::Heading { level, text } => {
                    out.push_str(&"#".repeat(*level));
                    out.push(' ');
                    out.push_str(text);
                    out.push('\n');
                }
                Block::Paragraph(text) => {
                    out.push_str(text.trim_end());
                    out.push('\n');
                }
                Block::Table { caption, markdown } => {
                    if let Some(c) = caption {
                        out.push_str(&format!("*{}*\n\n", one_line(c)));
                    }
                    out.push_str(markdown);
                }
                Block::Image { alt, path } => {
                    out.push_str(&format!(
                        "![{}]({})\n",
                        escape_brackets(alt),
                        link_target(path, base)
                    ));
                }
                Block::Link { text, path } => {
                    out.push_str(&format!(
                        "[{}]({})\n",
                        escape_brackets(text),
                        link_target(path, base)
                    ));
                }
            }
        }
        out
    }

    /// Write the page to `<dir>/report.md` atomically (links relative to `dir`); returns
    /// the path written.
    pub fn write(&self, dir: impl AsRef<Path>) -> Result<PathBuf> {
        let dir = dir.as_ref();
        let path = dir.join(REPORT_FILE_NAME);
        write_bytes(&path, self.render_relative_to(dir).as_bytes())?;
        Ok(path)
    }

    /// Write the page to `path` atomically, links relative to the directory of `path`.
    pub fn write_to(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let dir = path.parent().unwrap_or(Path::new(""));
        write_bytes(path, self.render_relative_to(dir).as_bytes())
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn escape_brackets(s: &str) -> String {
    one_line(s).replace('[', "\\[").replace(']', "\\]")
}

/// Markdown link target for `path`: relative to `base` when inside it, `/` separators,
/// spaces and parentheses percent-encoded.
fn link_target(path: &Path, base: Option<&Path>) -> String {
    let rel = base
        .and_then(|b| strip_base(path, b))
        .unwrap_or_else(|| path.to_path_buf());
    let mut parts = Vec::new();
    let mut absolute = false;
    for c in rel.components() {
        match c {
            Component::RootDir => absolute = true,
            Component::CurDir => {}
            Component::ParentDir => parts.push("..".to_owned()),
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            Component::Prefix(p) => parts.push(p.as_os_str().to_string_lossy().into_owned()),
        }
    }
    let joined = parts.join("/");
    let joined = if absolute {
        format!("/{joined}")
    } else {
        joined
    };
    let mut out = String::with_capacity(joined.len());
    for ch in joined.chars() {
        match ch {
            ' ' => out.push_str("%20"),
            '(' => out.push_str("%28"),
            ')' => out.push_str("%29"),
            '<' => out.push_str("%3C"),
            '>' => out.push_str("%3E"),
            c => out.push(c),
        }
    }
    out
}

/// `path` relative to `base` when `path` lies under it (lexically, ignoring `.`).
fn strip_base(path: &Path, base: &Path) -> Option<PathBuf> {
    let clean = |p: &Path| -> PathBuf {
        p.components()
            .filter(|c| !matches!(c, Component::CurDir))
            .collect()
    };
    let (p, b) = (clean(path), clean(base));
    if b.as_os_str().is_empty() {
        return None;
    }
    p.strip_prefix(&b).ok().map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_relative_and_encoded() {
        assert_eq!(
            link_target(Path::new("out/a b.png"), Some(Path::new("out"))),
            "a%20b.png"
        );
        assert_eq!(
            link_target(Path::new("./out/x/y.png"), Some(Path::new("out"))),
            "x/y.png"
        );
        assert_eq!(
            link_target(Path::new("other/y.png"), Some(Path::new("out"))),
            "other/y.png"
        );
        assert_eq!(link_target(Path::new("/abs/y.png"), None), "/abs/y.png");
    }
}
