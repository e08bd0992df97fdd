//! The face stage of side views: MediaPipe's short-range face detector (`models/face-detector.onnx`,
//! embedded) finds the face on a left or right view, and its lower face (cheeks, beard, chin,
//! neck below them) is taken out of the scalp map: the segmentation model reads beards as hair
//! and necks as bare, and no scalp is ever below the eyes. What it measured is in
//! `training/DECISIONS.md` (runs 10 and 11); `training/scalpmap_train/facedet.py` is the
//! reference this module is tested against, step for step:
//!
//! - input: the 256x256 model input's pixels (2i + 1, 2j + 1), 0-255 rounded, at four quarter
//!   turns (faces in photos taken sideways are found too);
//! - MediaPipe's SSD anchors for this network and its box and keypoint decoding;
//! - per turn the most confident detection (score at least 0.5), merged as MediaPipe's weighted
//!   non-maximum suppression merges it; over the turns the most confident;
//! - the region: below the line through the eyes, within the box's width (in the face's own
//!   axes), down to the box's bottom plus half its height.

use ndarray::Array4;
use ort::session::Session;
use ort::value::TensorRef;

use super::segmenter::InferenceError;

/// The detector, compiled into the binary (0.5 MB), its input fixed at the four turns of one photo.
pub static EMBEDDED_FACE_DETECTOR: &[u8] = include_bytes!("../../models/face-detector.onnx");

/// The detector's input side, pixels.
pub const SIZE: usize = 128;
const ANCHORS: usize = 896;
/// Quarter turns of the photo the detector looks at: its graph's fixed batch.
const TURNS: usize = 4;
const MIN_SCORE: f32 = 0.5;
const MIN_SUPPRESSION_IOU: f64 = 0.3;
/// How far below the box the region reaches, in box heights (chin and beard).
const BELOW_BOX: f64 = 0.5;
/// MediaPipe's SsdAnchorsCalculator strides for this network; layers of one stride share a grid.
const STRIDES: [usize; 4] = [8, 16, 16, 16];

/// The most confident face. Its box and keypoints are normalised ([0, 1]) coordinates in the
/// detector input turned `turn` times; [`turn`] maps a point back to the unturned photo.
#[derive(Clone, Debug, PartialEq)]
pub struct Face {
    pub score: f32,
    /// Quarter turns (anticlockwise) of the input it was found in.
    pub turn: u8,
    /// xmin, ymin, width, height in the turned input.
    pub bbox: [f64; 4],
    /// Right eye, left eye, nose tip, mouth, right ear, left ear in the turned input.
    pub keypoints: [[f64; 2]; 6],
}

/// Anchor centres (x, y in [0, 1]) in the network's output order.
pub fn anchors() -> Vec<[f64; 2]> {
    let mut out = Vec::with_capacity(ANCHORS);
    let mut layer = 0;
    while layer < STRIDES.len() {
        let stride = STRIDES[layer];
        let mut per_cell = 0;
        while layer < STRIDES.len() && STRIDES[layer] == stride {
            // One anchor of aspect 1 and one interpolated scale, per layer of this stride.
            per_cell += 2;
            layer += 1;
        }
        let cells = SIZE.div_ceil(stride);
        for y in 0..cells {
            for x in 0..cells {
                let c = [(x as f64 + 0.5) / cells as f64, (y as f64 + 0.5) / cells as f64];
                out.extend(std::iter::repeat_n(c, per_cell));
            }
        }
    }
    out
}

/// One input's most confident face from the raw outputs (`scores` 896, `boxes` 896 x 16), merged
/// with the detections that overlap it (IoU above 0.3), weighted by score; None below 0.5.
pub fn decode(scores: &[f32], boxes: &[f32], anchors: &[[f64; 2]]) -> Option<(f32, [f64; 4], [[f64; 2]; 6])> {
    let keep: Vec<usize> = (0..scores.len().min(anchors.len())).filter(|&i| scores[i] >= MIN_SCORE).collect();
    let rect = |i: usize| {
        let r = &boxes[i * 16..i * 16 + 4];
        let (cx, cy) = (r[0] as f64 / SIZE as f64 + anchors[i][0], r[1] as f64 / SIZE as f64 + anchors[i][1]);
        let (w, h) = (r[2] as f64 / SIZE as f64, r[3] as f64 / SIZE as f64);
        [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0]
    };
    // The first of the highest scores, as numpy's argmax takes it.
    let top = *keep.iter().reduce(|a, b| if scores[*b] > scores[*a] { b } else { a })?;
    let t = rect(top);
    let area = |r: &[f64; 4]| (r[2] - r[0]) * (r[3] - r[1]);
    let (mut total, mut r_sum, mut k_sum) = (0.0, [0.0; 4], [[0.0; 2]; 6]);
    for &i in &keep {
        let r = rect(i);
        let inter = (r[2].min(t[2]) - r[0].max(t[0])).max(0.0) * (r[3].min(t[3]) - r[1].max(t[1])).max(0.0);
        let iou = inter / (area(&r) + area(&t) - inter).max(1e-12);
        if i != top && iou <= MIN_SUPPRESSION_IOU {
            continue;
        }
        let w = scores[i] as f64;
        total += w;
        for (s, v) in r_sum.iter_mut().zip(r) {
            *s += w * v;
        }
        for (k, s) in k_sum.iter_mut().enumerate() {
            let raw = &boxes[i * 16 + 4 + 2 * k..i * 16 + 6 + 2 * k];
            s[0] += w * (raw[0] as f64 / SIZE as f64 + anchors[i][0]);
            s[1] += w * (raw[1] as f64 / SIZE as f64 + anchors[i][1]);
        }
    }
    let r = r_sum.map(|v| v / total);
    let k = k_sum.map(|p| [p[0] / total, p[1] / total]);
    Some((scores[top], [r[0], r[1], r[2] - r[0], r[3] - r[1]], k))
}

/// Where pixel (y, x) of a `n`-square image turned `k` quarter turns anticlockwise (numpy's
/// rot90) comes from in the unturned image.
fn turned_source(y: usize, x: usize, k: u8, n: usize) -> (usize, usize) {
    let (mut y, mut x) = (y, x);
    for _ in 0..k {
        (y, x) = (x, n - 1 - y);
    }
    (y, x)
}

/// Normalised (x, y) in the image turned `k` times back to the unturned image's.
pub fn turn(p: [f64; 2], k: u8) -> [f64; 2] {
    let [mut x, mut y] = p;
    for _ in 0..k {
        (x, y) = (1.0 - y, x);
    }
    [x, y]
}

/// The detector's batch: the model input's (w x h, 0-255 per cell, row-major) odd pixels, rounded
/// and scaled to [0, 1], at 0-3 quarter turns. None when the input is not 256x256.
pub fn detector_input(rgb: &[[f32; 3]], w: usize, h: usize) -> Option<Array4<f32>> {
    if w != 2 * SIZE || h != 2 * SIZE || rgb.len() != w * h {
        return None;
    }
    let mut out = Array4::<f32>::zeros((TURNS, 3, SIZE, SIZE));
    for k in 0..TURNS {
        for y in 0..SIZE {
            for x in 0..SIZE {
                let (sy, sx) = turned_source(y, x, k as u8, SIZE);
                let p = rgb[(2 * sy + 1) * w + 2 * sx + 1];
                for c in 0..3 {
                    out[[k, c, y, x]] = p[c].round().clamp(0.0, 255.0) / 255.0;
                }
            }
        }
    }
    Some(out)
}

/// The lower-face region on a `size`-square map (row-major), from a face found by [`detect`].
pub fn lower_face(face: &Face, size: usize) -> Vec<bool> {
    let k = face.turn;
    let s = size as f64;
    let at = |p: [f64; 2]| {
        let q = turn(p, k);
        [q[0] * s, q[1] * s]
    };
    let (reye, leye, mouth) = (at(face.keypoints[0]), at(face.keypoints[1]), at(face.keypoints[3]));
    let [bx, by, bw, bh] = face.bbox;
    let corners = [[bx, by], [bx, by + bh], [bx + bw, by], [bx + bw, by + bh]].map(at);
    let eyes = [(reye[0] + leye[0]) / 2.0, (reye[1] + leye[1]) / 2.0];
    let (dx, dy) = (mouth[0] - eyes[0], mouth[1] - eyes[1]);
    let norm = (dx * dx + dy * dy).sqrt().max(1e-6);
    let down = [dx / norm, dy / norm];
    let right = [-down[1], down[0]];
    let dot = |a: [f64; 2], b: [f64; 2]| a[0] * b[0] + a[1] * b[1];
    let centre = [corners.iter().map(|c| c[0]).sum::<f64>() / 4.0, corners.iter().map(|c| c[1]).sum::<f64>() / 4.0];
    let half_w = corners.iter().map(|c| dot([c[0] - centre[0], c[1] - centre[1]], right).abs()).fold(0.0, f64::max);
    let along_c: Vec<f64> = corners.iter().map(|c| dot([c[0] - eyes[0], c[1] - eyes[1]], down)).collect();
    let (lo, hi) = along_c.iter().fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    let reach = hi + BELOW_BOX * (hi - lo);
    let mut out = vec![false; size * size];
    for y in 0..size {
        for x in 0..size {
            let p = [x as f64 + 0.5, y as f64 + 0.5];
            let along = dot([p[0] - eyes[0], p[1] - eyes[1]], down);
            let across = dot([p[0] - centre[0], p[1] - centre[1]], right);
            out[y * size + x] = along > 0.0 && along <= reach && across.abs() <= half_w;
        }
    }
    out
}

/// A session of the face detector; like [`super::Segmenter`], one per worker.
pub struct FaceDetector {
    session: Session,
    anchors: Vec<[f64; 2]>,
}

impl FaceDetector {
    /// The embedded detector on the engine already chosen ([`super::backend::init`]).
    pub fn new(threads: usize) -> Result<FaceDetector, InferenceError> {
        let session = super::segmenter::session_builder(threads)?
            .commit_from_memory(EMBEDDED_FACE_DETECTOR)
            .map_err(|e| InferenceError::Load(format!("face detector: {e}")))?;
        Ok(FaceDetector { session, anchors: anchors() })
    }

    /// Raw outputs for the batch of one photo's four turns (4 x 3 x 128 x 128; the graph's shape
    /// is fixed, which tract runs much faster): (scores 4 x 896, boxes 4 x 896 x 16).
    pub fn run(&mut self, batch: &Array4<f32>) -> Result<(Vec<f32>, Vec<f32>), InferenceError> {
        let n = batch.shape()[0];
        let tensor = TensorRef::from_array_view(batch.view()).map_err(|e| InferenceError::Run(e.to_string()))?;
        let outputs = self.session.run(ort::inputs!["image" => tensor]).map_err(|e| InferenceError::Run(format!("face detector: {e}")))?;
        let get = |name: &str, shape: &[usize]| -> Result<Vec<f32>, InferenceError> {
            let a =
                outputs[name].try_extract_array::<f32>().map_err(|e| InferenceError::Contract(format!("face detector '{name}': {e}")))?;
            if a.shape() != shape || a.iter().any(|v| !v.is_finite()) {
                return Err(InferenceError::Contract(format!(
                    "face detector '{name}': shape {:?}, expected {shape:?}, all finite",
                    a.shape()
                )));
            }
            Ok(a.iter().copied().collect())
        };
        Ok((get("scores", &[n, ANCHORS])?, get("boxes", &[n, ANCHORS, 16])?))
    }

    /// The most confident face over four quarter turns of the 256x256 model input (`rgb`, 0-255
    /// per cell, row-major); None when there is none (or the input is not 256x256).
    pub fn detect(&mut self, rgb: &[[f32; 3]], w: usize, h: usize) -> Result<Option<Face>, InferenceError> {
        let Some(batch) = detector_input(rgb, w, h) else { return Ok(None) };
        let (scores, boxes) = self.run(&batch)?;
        let mut best: Option<Face> = None;
        for (k, (s, b)) in scores.chunks_exact(ANCHORS).zip(boxes.chunks_exact(ANCHORS * 16)).enumerate() {
            if let Some((score, bbox, keypoints)) = decode(s, b, &self.anchors) {
                if best.as_ref().is_none_or(|f| score > f.score) {
                    best = Some(Face { score, turn: k as u8, bbox, keypoints });
                }
            }
        }
        Ok(best)
    }
}

/// Whether a view gets the face stage: the side views, where every photo shows a face and no
/// scalp lies below the eyes (on top, back and front views the detector's answers land on scalp).
pub fn applies_to(view: Option<&str>) -> bool {
    matches!(view, Some("left" | "right"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_follow_the_network_outputs() {
        let a = anchors();
        assert_eq!(a.len(), ANCHORS);
        // 16x16 cells of 2, then 8x8 cells of 6.
        assert_eq!(a[0], [0.5 / 16.0, 0.5 / 16.0]);
        assert_eq!(a[1], a[0]);
        assert_eq!(a[2], [1.5 / 16.0, 0.5 / 16.0]);
        assert_eq!(a[512], [0.5 / 8.0, 0.5 / 8.0]);
        assert_eq!(a[517], a[512]);
        assert_eq!(a[518], [1.5 / 8.0, 0.5 / 8.0]);
        assert_eq!(a[895], [7.5 / 8.0, 7.5 / 8.0]);
    }

    #[test]
    fn turns_match_numpy_rot90() {
        // np.rot90(m) for m = [[1, 2], [3, 4]] is [[2, 4], [1, 3]].
        let m = [[1, 2], [3, 4]];
        let at = |y, x, k| {
            let (sy, sx) = turned_source(y, x, k, 2);
            m[sy][sx]
        };
        assert_eq!([at(0, 0, 1), at(0, 1, 1), at(1, 0, 1), at(1, 1, 1)], [2, 4, 1, 3]);
        assert_eq!([at(0, 0, 2), at(0, 1, 2), at(1, 0, 2), at(1, 1, 2)], [4, 3, 2, 1]);
        // A point's normalised position comes back where it was after the four turns' inverse.
        let p = [0.2, 0.7];
        for k in 0..4 {
            let q = turn(p, k);
            let back = turn(q, (4 - k) % 4);
            assert!((back[0] - p[0]).abs() < 1e-12 && (back[1] - p[1]).abs() < 1e-12, "{k}");
        }
    }

    #[test]
    fn nothing_above_the_threshold_is_no_face() {
        let a = anchors();
        assert_eq!(decode(&[0.49; ANCHORS], &[0.0; ANCHORS * 16], &a), None);
    }

    #[test]
    fn overlapping_detections_merge_by_score() {
        let a = anchors();
        let mut scores = vec![0.0f32; ANCHORS];
        let mut boxes = vec![0.0f32; ANCHORS * 16];
        // Two detections on anchors 0 and 1 (same centre), widths 32 and 40 px: IoU 0.64.
        for (i, (s, w)) in [(0.9f32, 32.0f32), (0.6, 40.0)].into_iter().enumerate() {
            scores[i] = s;
            boxes[i * 16 + 2] = w;
            boxes[i * 16 + 3] = w;
        }
        // A third far away (anchor 895), not merged.
        scores[895] = 0.8;
        boxes[895 * 16 + 2] = 20.0;
        boxes[895 * 16 + 3] = 20.0;
        let (score, bbox, _) = decode(&scores, &boxes, &a).unwrap();
        assert_eq!(score, 0.9);
        let w = (0.9 * 32.0 + 0.6 * 40.0) / 1.5 / 128.0;
        assert!((bbox[2] - w).abs() < 1e-9, "{bbox:?}");
        assert!((bbox[0] - (a[0][0] - w / 2.0)).abs() < 1e-9);
    }

    #[test]
    fn the_region_lies_below_the_eyes_within_the_box() {
        // An upright face: eyes at y 0.4, mouth at 0.6, box x 0.3-0.7, y 0.3-0.7.
        let face = Face {
            score: 0.9,
            turn: 0,
            bbox: [0.3, 0.3, 0.4, 0.4],
            keypoints: [[0.4, 0.4], [0.6, 0.4], [0.5, 0.5], [0.5, 0.6], [0.3, 0.45], [0.7, 0.45]],
        };
        let m = lower_face(&face, 100);
        let at = |x: usize, y: usize| m[y * 100 + x];
        assert!(at(50, 45) && at(50, 85) && at(31, 60), "below the eyes, down to the box bottom + half its height");
        assert!(!at(50, 35) && !at(50, 95) && !at(25, 60) && !at(75, 60));
        // The same face found in the photo turned once lands on the same pixels.
        let turned = Face {
            turn: 1,
            // Where np.rot90 puts the points: (x, y) -> (y, 1 - x).
            keypoints: face.keypoints.map(|[x, y]| [y, 1.0 - x]),
            bbox: [0.3, 0.3, 0.4, 0.4],
            ..face.clone()
        };
        assert_eq!(lower_face(&turned, 100), m);
    }
}
