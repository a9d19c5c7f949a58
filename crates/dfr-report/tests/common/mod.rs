//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::HashSet;
use std::path::Path;

/// Decode the PNG at `path`, check its size and that it is not blank; returns the number
/// of distinct colours.
pub fn check_png(path: &Path, width: u32, height: u32) -> usize {
    let img = image::open(path)
        .unwrap_or_else(|e| panic!("{} does not decode: {e}", path.display()))
        .to_rgb8();
    assert_eq!(img.dimensions(), (width, height), "{}", path.display());
    let colours: HashSet<[u8; 3]> = img.pixels().map(|p| p.0).collect();
    assert!(
        colours.len() >= 8,
        "{} looks blank: {} colours",
        path.display(),
        colours.len()
    );
    // Not (almost) all white either.
    let white = img.pixels().filter(|p| p.0 == [255, 255, 255]).count();
    assert!(
        white < img.pixels().len() * 99 / 100,
        "{} is almost all white",
        path.display()
    );
    colours.len()
}

/// Read the SVG at `path` and check it is an SVG document containing `needle`.
pub fn check_svg(path: &Path, needle: &str) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(text.contains("<svg"), "{} is not an SVG", path.display());
    assert!(
        text.contains("</svg>"),
        "{} is not a complete SVG",
        path.display()
    );
    assert!(text.contains(needle), "{} lacks {needle:?}", path.display());
    text
}

/// No temporary files left behind in `dir`.
pub fn no_temp_files(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            !name.ends_with(".tmp"),
            "temporary file left behind: {name}"
        );
    }
}
