//! Every layout, source selection, class weights and every bad-input case of scanning.

use dfr_data::decode::write_png_atomic;
use dfr_data::{DataConfig, DataError, Label, LayoutKind, SourceFilter, Split};
use std::path::Path;

fn png(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    write_png_atomic(path, 8, 8, &[128u8; 8 * 8 * 3]).unwrap();
}

fn dffd_tree(root: &Path) {
    for (src, n) in [
        ("ffhq", 3),
        ("celeba", 1),
        ("stargan", 4),
        ("stylegan_ffhq", 2),
    ] {
        for split in ["train", "validation", "test"] {
            for i in 0..n {
                png(&root.join(src).join(split).join(format!("{i}.png")));
            }
        }
    }
    // Non-image files and hidden files are ignored.
    std::fs::write(root.join("ffhq/train/notes.txt"), "x").unwrap();
    std::fs::write(root.join("ffhq/train/.hidden.png"), "x").unwrap();
    std::fs::write(root.join("README.md"), "x").unwrap();
}

#[test]
fn dffd_layout_labels_sources_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    dffd_tree(dir.path());
    let ds = DataConfig::new(dir.path(), LayoutKind::Dffd)
        .scan()
        .unwrap();
    let train = ds.split(Split::Train);
    assert_eq!(train.len(), 10);
    assert_eq!(train.iter().filter(|s| s.label == Label::Real).count(), 4);
    assert!(train.iter().all(|s| s.path.extension().unwrap() == "png"));
    let st: Vec<_> = train.iter().filter(|s| s.method == "stargan").collect();
    assert_eq!(st.len(), 4);
    assert!(st.iter().all(|s| s.label == Label::Fake));
    // Class weights N/(2·N_c): 10/(2·4) and 10/(2·6).
    let w = ds.class_weights().unwrap();
    assert!((w.weights[0] - 1.25).abs() < 1e-12 && (w.weights[1] - 10.0 / 12.0).abs() < 1e-12);
}

#[test]
fn unknown_dffd_source_is_an_error_listing_known_names_unless_mapped() {
    let dir = tempfile::tempdir().unwrap();
    dffd_tree(dir.path());
    png(&dir.path().join("mysrc/train/0.png"));
    let err = DataConfig::new(dir.path(), LayoutKind::Dffd)
        .scan()
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DataError::UnknownSource { .. }), "{msg}");
    assert!(
        msg.contains("mysrc") && msg.contains("stylegan_celeba") && msg.contains("sources = {"),
        "{msg}"
    );
    let mut cfg = DataConfig::new(dir.path(), LayoutKind::Dffd);
    cfg.sources.insert("mysrc".into(), Label::Fake);
    let ds = cfg.scan().unwrap();
    let mine: Vec<_> = ds.samples.iter().filter(|s| s.method == "mysrc").collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].label, Label::Fake);
}

#[test]
fn source_selection_per_split_supports_leave_one_method_out() {
    let dir = tempfile::tempdir().unwrap();
    dffd_tree(dir.path());
    let mut cfg = DataConfig::new(dir.path(), LayoutKind::Dffd);
    cfg.train = SourceFilter {
        include: vec![],
        exclude: vec!["stargan".into()],
    };
    cfg.test = SourceFilter {
        include: vec!["ffhq".into(), "stargan".into()],
        exclude: vec![],
    };
    let ds = cfg.scan().unwrap();
    assert!(ds.split(Split::Train).iter().all(|s| s.method != "stargan"));
    assert_eq!(ds.split(Split::Train).len(), 6);
    let test = ds.split(Split::Test);
    assert_eq!(test.len(), 7);
    assert!(test
        .iter()
        .all(|s| s.method == "ffhq" || s.method == "stargan"));
    assert_eq!(ds.split(Split::Validation).len(), 10);

    cfg.test.include = vec!["stylegan_v9".into()];
    let msg = cfg.scan().unwrap_err().to_string();
    assert!(msg.contains("stylegan_v9") && msg.contains("test"), "{msg}");
}

#[test]
fn folder_layout_with_val_alias_and_method_subfolders() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    png(&r.join("train/real/a.png"));
    png(&r.join("train/real/b.jpg.png"));
    png(&r.join("train/fake/deepfakes/c.png"));
    png(&r.join("train/fake/faceswap/sub/d.png"));
    png(&r.join("val/real/e.png"));
    png(&r.join("val/fake/f.png"));
    png(&r.join("test/fake/x/g.png"));
    std::fs::write(r.join("train/real/ignore.txt"), "x").unwrap();
    let ds = DataConfig::new(r, LayoutKind::Folder).scan().unwrap();
    let train = ds.split(Split::Train);
    assert_eq!(train.len(), 4);
    let methods: Vec<&str> = train.iter().map(|s| s.method.as_str()).collect();
    assert_eq!(methods.iter().filter(|m| **m == "real").count(), 2);
    assert!(methods.contains(&"deepfakes") && methods.contains(&"faceswap"));
    let val = ds.split(Split::Validation);
    assert_eq!(val.len(), 2);
    assert_eq!(
        val.iter().find(|s| s.label == Label::Fake).unwrap().method,
        "fake"
    );
    assert_eq!(ds.split(Split::Test)[0].method, "x");
}

#[test]
fn csv_manifest_relative_paths_and_optional_method() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    png(&r.join("frames/a.png"));
    png(&r.join("frames/b.png"));
    png(&r.join("frames/c.png"));
    std::fs::write(
        r.join("manifest.csv"),
        "path,label,split,method\nframes/a.png,real,train,youtube\nframes/b.png,1,val,\nframes/c.png,fake,test,celebdf\n",
    )
    .unwrap();
    let ds = DataConfig::new(r, LayoutKind::Csv).scan().unwrap();
    assert_eq!(ds.samples.len(), 3);
    let v = &ds.split(Split::Validation)[0];
    assert_eq!((v.label, v.method.as_str()), (Label::Fake, "fake"));
    assert_eq!(v.path, r.join("frames/b.png"));
    // Passing the file itself works too.
    let ds2 = DataConfig::new(r.join("manifest.csv"), LayoutKind::Csv)
        .scan()
        .unwrap();
    assert_eq!(ds2.samples, ds.samples);
}

#[test]
fn csv_errors_name_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m.csv");
    std::fs::write(&m, "path,label,split\na.png,maybe,train\n").unwrap();
    let msg = DataConfig::new(&m, LayoutKind::Csv)
        .scan()
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("m.csv:2") && msg.contains("maybe") && msg.contains("real|fake"),
        "{msg}"
    );
    std::fs::write(&m, "file,label\na.png,real\n").unwrap();
    let msg = DataConfig::new(&m, LayoutKind::Csv)
        .scan()
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("m.csv:1") && msg.contains("path,label,split"),
        "{msg}"
    );
    std::fs::write(&m, "path,label,split\na.png,real,holdout\n").unwrap();
    let msg = DataConfig::new(&m, LayoutKind::Csv)
        .scan()
        .unwrap_err()
        .to_string();
    assert!(msg.contains("holdout"), "{msg}");
}

#[test]
fn missing_root_nothing_matched_and_empty_split_show_the_expected_layout() {
    let dir = tempfile::tempdir().unwrap();
    let err = DataConfig::new(dir.path().join("nope"), LayoutKind::Dffd)
        .scan()
        .unwrap_err();
    assert!(matches!(err, DataError::MissingRoot { .. }));
    assert!(
        err.to_string()
            .contains("<root>/<source>/{train,validation,test}"),
        "{err}"
    );

    // A directory with images in the wrong layout matches nothing.
    png(&dir.path().join("images/a.png"));
    let err = DataConfig::new(dir.path(), LayoutKind::Folder)
        .scan()
        .unwrap_err();
    assert!(matches!(err, DataError::NothingMatched { .. }), "{err}");
    assert!(err.to_string().contains("{real,fake}"), "{err}");

    let r = dir.path().join("dffd");
    png(&r.join("ffhq/train/a.png"));
    let ds = DataConfig::new(&r, LayoutKind::Dffd).scan().unwrap();
    let err = ds.require_split(Split::Test).unwrap_err();
    assert!(matches!(err, DataError::EmptySplit { .. }));
    assert!(err.to_string().contains("`test`"), "{err}");
}

#[test]
fn invalid_max_bad_fraction_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = DataConfig::new(dir.path(), LayoutKind::Dffd);
    cfg.max_bad_fraction = 1.5;
    assert!(cfg
        .scan()
        .unwrap_err()
        .to_string()
        .contains("max_bad_fraction"));
}

#[cfg(unix)]
#[test]
fn symbolic_link_loops_are_listed_once_and_cannot_hang_the_scan() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    dffd_tree(&root);
    // loops: a split linking to itself and to its source (which holds the other splits)
    symlink(".", root.join("ffhq/train/self")).unwrap();
    symlink("..", root.join("ffhq/train/up")).unwrap();
    symlink("..", root.join("stargan/validation/up")).unwrap();
    // a link to images outside the tree is followed
    png(&dir.path().join("elsewhere/extra.png"));
    symlink(
        dir.path().join("elsewhere"),
        root.join("celeba/test/linked"),
    )
    .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let r = root.clone();
    std::thread::spawn(move || {
        let _ = tx.send(DataConfig::new(&r, LayoutKind::Dffd).scan());
    });
    let ds = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the scan did not finish within 60 s")
        .unwrap();
    assert_eq!(ds.split(Split::Train).len(), 10);
    assert_eq!(ds.split(Split::Validation).len(), 10);
    assert_eq!(ds.split(Split::Test).len(), 11);
}
