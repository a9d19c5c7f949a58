//! The synthetic DFFD must be learnable but not trivially: global colour statistics must not
//! separate real from fake, trace-sensitive features must, and a detector trained without a
//! source must find that source harder.

use dfr_data::decode::decode_rgb8;
use dfr_data::synth::{generate, SynthConfig};
use dfr_data::{DataConfig, Label, LayoutKind, Sample, Split};

fn dataset() -> (tempfile::TempDir, Vec<Sample>) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("dffd");
    generate(&SynthConfig::default(), &root, false).unwrap();
    let ds = DataConfig::new(&root, LayoutKind::Dffd).scan().unwrap();
    (dir, ds.samples)
}

fn luma(img: &dfr_data::decode::Rgb8) -> (usize, usize, Vec<f64>) {
    let (w, h) = (img.width as usize, img.height as usize);
    let l = img
        .data
        .chunks_exact(3)
        .map(|p| (0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64) / 255.0)
        .collect();
    (w, h, l)
}

/// Mean and standard deviation of each colour channel.
fn colour_features(s: &Sample) -> Vec<f64> {
    let img = decode_rgb8(&s.path).unwrap();
    let n = (img.width * img.height) as f64;
    let mut f = Vec::new();
    for c in 0..3 {
        let vals: Vec<f64> = img
            .data
            .iter()
            .skip(c)
            .step_by(3)
            .map(|&v| v as f64 / 255.0)
            .collect();
        let m = vals.iter().sum::<f64>() / n;
        let sd = (vals.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n).sqrt();
        f.push(m);
        f.push(sd);
    }
    f
}

/// Periodicity and high-frequency features of the luma residual.
fn trace_features(s: &Sample) -> Vec<f64> {
    let img = decode_rgb8(&s.path).unwrap();
    let (w, h, l) = luma(&img);
    let at = |x: usize, y: usize| l[y.min(h - 1) * w + x.min(w - 1)];
    // High-pass residual: pixel minus the mean of its 3×3 neighbourhood.
    let mut hp = vec![0.0; w * h];
    for y in 0..h {
        for x in 0..w {
            let mut s = 0.0;
            for dy in 0..3 {
                for dx in 0..3 {
                    s += at((x + dx).saturating_sub(1), (y + dy).saturating_sub(1));
                }
            }
            hp[y * w + x] = l[y * w + x] - s / 9.0;
        }
    }
    let n = (w * h) as f64;
    let proj = |f: &dyn Fn(usize, usize) -> f64| {
        let mut acc = 0.0;
        for y in 0..h {
            for x in 0..w {
                acc += f(x, y) * hp[y * w + x];
            }
        }
        (acc / n).abs()
    };
    let sgn = |k: usize| if k.is_multiple_of(2) { 1.0 } else { -1.0 };
    let checker = proj(&|x, y| sgn(x + y));
    let cols = proj(&|x, _| sgn(x));
    let rows = proj(&|_, y| sgn(y));
    let mut p4 = 0.0;
    for (fx, fy) in [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0)] {
        let q = std::f64::consts::FRAC_PI_2;
        p4 += proj(&|x, y| (x as f64 * q + fx * q).cos() * (y as f64 * q + fy * q).cos());
    }
    let energy = hp.iter().map(|v| v * v).sum::<f64>() / n;
    let grad = {
        let mut g = 0.0;
        for y in 0..h - 1 {
            for x in 0..w - 1 {
                g += (at(x + 1, y) - at(x, y)).powi(2) + (at(x, y + 1) - at(x, y)).powi(2);
            }
        }
        g / n
    };
    [checker, cols, rows, p4, energy, grad]
        .iter()
        .map(|v| (v + 1e-9).ln())
        .collect()
}

/// Logistic regression on standardised features, class-balanced, plain gradient descent.
struct Logistic {
    mean: Vec<f64>,
    sd: Vec<f64>,
    w: Vec<f64>,
    b: f64,
}

impl Logistic {
    fn fit(x: &[Vec<f64>], y: &[f64]) -> Logistic {
        let d = x[0].len();
        let n = x.len() as f64;
        let mean: Vec<f64> = (0..d)
            .map(|j| x.iter().map(|r| r[j]).sum::<f64>() / n)
            .collect();
        let sd: Vec<f64> = (0..d)
            .map(|j| {
                (x.iter().map(|r| (r[j] - mean[j]).powi(2)).sum::<f64>() / n)
                    .sqrt()
                    .max(1e-12)
            })
            .collect();
        let z: Vec<Vec<f64>> = x
            .iter()
            .map(|r| (0..d).map(|j| (r[j] - mean[j]) / sd[j]).collect())
            .collect();
        let pos = y.iter().sum::<f64>();
        let cw = [n / (2.0 * (n - pos)), n / (2.0 * pos)];
        let (mut w, mut b) = (vec![0.0; d], 0.0);
        for _ in 0..3000 {
            let mut gw = vec![0.0; d];
            let mut gb = 0.0;
            for (r, &t) in z.iter().zip(y) {
                let p =
                    1.0 / (1.0 + (-(r.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>() + b)).exp());
                let k = cw[t as usize] * (p - t);
                for j in 0..d {
                    gw[j] += k * r[j];
                }
                gb += k;
            }
            for j in 0..d {
                w[j] -= 0.5 * (gw[j] / n + 1e-3 * w[j]);
            }
            b -= 0.5 * gb / n;
        }
        Logistic { mean, sd, w, b }
    }

    fn predict(&self, r: &[f64]) -> bool {
        let s: f64 = r
            .iter()
            .enumerate()
            .map(|(j, v)| (v - self.mean[j]) / self.sd[j] * self.w[j])
            .sum::<f64>()
            + self.b;
        s > 0.0
    }
}

fn label(s: &Sample) -> f64 {
    (s.label == Label::Fake) as u8 as f64
}

fn balanced_accuracy(m: &Logistic, x: &[Vec<f64>], s: &[&Sample]) -> f64 {
    let mut ok = [0.0; 2];
    let mut n = [0.0; 2];
    for (r, s) in x.iter().zip(s) {
        let c = label(s) as usize;
        n[c] += 1.0;
        ok[c] += (m.predict(r) == (c == 1)) as u8 as f64;
    }
    0.5 * (ok[0] / n[0] + ok[1] / n[1])
}

#[test]
fn colour_statistics_do_not_solve_it_but_traces_do_and_held_out_sources_are_harder() {
    let (_dir, samples) = dataset();
    let train: Vec<&Sample> = samples.iter().filter(|s| s.split == Split::Train).collect();
    let test: Vec<&Sample> = samples.iter().filter(|s| s.split == Split::Test).collect();
    let y: Vec<f64> = train.iter().map(|s| label(s)).collect();

    let colour_train: Vec<Vec<f64>> = train.iter().map(|s| colour_features(s)).collect();
    let colour_test: Vec<Vec<f64>> = test.iter().map(|s| colour_features(s)).collect();
    let colour = Logistic::fit(&colour_train, &y);
    let colour_acc = balanced_accuracy(&colour, &colour_test, &test);

    let trace_train: Vec<Vec<f64>> = train.iter().map(|s| trace_features(s)).collect();
    let trace_test: Vec<Vec<f64>> = test.iter().map(|s| trace_features(s)).collect();
    let traces = Logistic::fit(&trace_train, &y);
    let trace_acc = balanced_accuracy(&traces, &trace_test, &test);
    eprintln!(
        "balanced accuracy: colour statistics {colour_acc:.3}, trace features {trace_acc:.3}"
    );
    assert!(
        colour_acc < 0.65,
        "colour statistics separate the classes: {colour_acc:.3}"
    );
    assert!(trace_acc > 0.75, "traces are not learnable: {trace_acc:.3}");

    // Leave one GAN source out: its detection rate must drop.
    for held_out in ["pggan_v1", "pggan_v2", "stylegan_ffhq"] {
        let keep: Vec<usize> = (0..train.len())
            .filter(|&i| train[i].method != held_out)
            .collect();
        let m = Logistic::fit(
            &keep
                .iter()
                .map(|&i| trace_train[i].clone())
                .collect::<Vec<_>>(),
            &keep.iter().map(|&i| y[i]).collect::<Vec<_>>(),
        );
        let recall = |m: &Logistic| {
            let idx: Vec<usize> = (0..test.len())
                .filter(|&i| test[i].method == held_out)
                .collect();
            idx.iter().filter(|&&i| m.predict(&trace_test[i])).count() as f64 / idx.len() as f64
        };
        let (with, without) = (recall(&traces), recall(&m));
        eprintln!("{held_out}: recall trained with it {with:.3}, without {without:.3}");
        assert!(
            without < with,
            "{held_out}: held-out recall {without:.3} ≥ seen {with:.3}"
        );
    }
}
