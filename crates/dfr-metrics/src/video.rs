//! Video-level scores from frame-level ones, as DeepfakeBench and the Celeb-DF / DFDC
//! protocols compute them: a video's score is the mean of its frames' fake-class scores,
//! its label the (single) label of its frames. Grouping is by an explicit video id, never
//! by a file's folder.

use std::collections::BTreeMap;

use crate::error::{MetricsError, Result};

/// Videos with their label and the mean score of their frames, in order of first
/// appearance.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoScores {
    /// Video ids.
    pub videos: Vec<String>,
    /// Label of each video (0 real, 1 fake).
    pub labels: Vec<u32>,
    /// Mean frame score of each video.
    pub scores: Vec<f64>,
    /// Frames per video.
    pub frames: Vec<usize>,
}

/// Groups frames by video id and averages their scores. Errors on unequal lengths, an
/// empty id, a non-finite score and a video whose frames carry both labels.
///
/// ```
/// use dfr_metrics::video_scores;
/// let v = video_scores(&[1, 1, 0, 0], &[0.9, 0.5, 0.2, 0.4], &["a", "a", "b", "b"])?;
/// assert_eq!(v.videos, ["a", "b"]);
/// assert_eq!(v.labels, [1, 0]);
/// assert!((v.scores[0] - 0.7).abs() < 1e-12 && (v.scores[1] - 0.3).abs() < 1e-12);
/// assert!(video_scores(&[1, 0], &[0.9, 0.1], &["a", "a"]).is_err()); // mixed labels
/// # Ok::<(), dfr_metrics::MetricsError>(())
/// ```
pub fn video_scores<S: AsRef<str>>(
    labels: &[u32],
    scores: &[f64],
    videos: &[S],
) -> Result<VideoScores> {
    for (name, len) in [("scores", scores.len()), ("videos", videos.len())] {
        if len != labels.len() {
            return Err(MetricsError::LengthMismatch {
                left_name: "labels",
                left: labels.len(),
                right_name: name,
                right: len,
            });
        }
    }
    if labels.is_empty() {
        return Err(MetricsError::Empty { what: "frames" });
    }
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    let mut out = VideoScores {
        videos: Vec::new(),
        labels: Vec::new(),
        scores: Vec::new(),
        frames: Vec::new(),
    };
    for (i, ((&l, &s), v)) in labels.iter().zip(scores).zip(videos).enumerate() {
        let v = v.as_ref();
        if v.is_empty() {
            return Err(MetricsError::InvalidConfig(format!(
                "frame {i} has an empty video id"
            )));
        }
        if l > 1 {
            return Err(MetricsError::InvalidLabel {
                index: i,
                label: l as usize,
                n_classes: 2,
            });
        }
        if !s.is_finite() {
            return Err(MetricsError::NonFinite {
                what: "scores",
                index: i,
                value: s,
            });
        }
        let k = *index.entry(v).or_insert_with(|| {
            out.videos.push(v.to_string());
            out.labels.push(l);
            out.scores.push(0.0);
            out.frames.push(0);
            out.videos.len() - 1
        });
        if out.labels[k] != l {
            return Err(MetricsError::InvalidConfig(format!(
                "video `{v}` has both real and fake frames (frame {i} is {l}, an earlier one {})",
                out.labels[k]
            )));
        }
        out.scores[k] += s;
        out.frames[k] += 1;
    }
    for (s, &n) in out.scores.iter_mut().zip(&out.frames) {
        *s /= n as f64;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roc_auc;

    #[test]
    fn video_auc_can_differ_from_frame_auc() {
        // frames: one fake video with a bad frame, one real video with a bad frame
        let labels = [1, 1, 1, 0, 0, 0];
        let scores = [0.9, 0.8, 0.1, 0.2, 0.3, 0.85];
        let videos = ["f", "f", "f", "r", "r", "r"];
        let frame = roc_auc(&labels, &scores).unwrap();
        let v = video_scores(&labels, &scores, &videos).unwrap();
        assert_eq!(v.frames, [3, 3]);
        assert!((v.scores[0] - 0.6).abs() < 1e-12);
        assert!((v.scores[1] - 0.45).abs() < 1e-12);
        assert_eq!(roc_auc(&v.labels, &v.scores).unwrap(), 1.0);
        assert!(frame < 1.0, "{frame}");
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(video_scores(&[1], &[0.5, 0.5], &["a", "a"]).is_err());
        assert!(video_scores(&[1, 1], &[0.5, 0.5], &["a"]).is_err());
        assert!(video_scores::<&str>(&[], &[], &[]).is_err());
        assert!(video_scores(&[1], &[f64::NAN], &["a"]).is_err());
        assert!(video_scores(&[2], &[0.5], &["a"]).is_err());
        let e = video_scores(&[1], &[0.5], &[""]).unwrap_err().to_string();
        assert!(e.contains("empty video id"), "{e}");
    }
}
