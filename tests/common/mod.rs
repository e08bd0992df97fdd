//! Helpers shared by the tests: the committed model, its PyTorch reference outputs, the formula
//! input both sides compute identically, and a planned copy of the sample patient.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use ndarray::Array4;
use scalpmap::model::{backend, BackendChoice, ModelContract, Segmenter};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A `plan` output folder for the sample patient (its photos copied into `dir/in/`): `dir/out`.
pub fn planned_sample(dir: &Path) -> PathBuf {
    let input = dir.join("in").join("synth-2026-00505");
    std::fs::create_dir_all(&input).unwrap();
    for e in std::fs::read_dir(repo().join("samples/synth-2026-00505")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), input.join(e.file_name())).unwrap();
    }
    let out = dir.join("out");
    let o = assert_cmd::Command::cargo_bin("scalpmap")
        .unwrap()
        .args(["plan", dir.join("in").to_str().unwrap(), "--out", out.to_str().unwrap(), "--backend", "tract", "--jobs", "2"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

pub fn model_bytes() -> Vec<u8> {
    std::fs::read(repo().join("models/scalpmap-seg.onnx")).expect("models/scalpmap-seg.onnx is committed")
}

#[derive(serde::Deserialize)]
pub struct Reference {
    pub tolerance: f32,
    pub points: Vec<[usize; 2]>,
    pub probs: Vec<Vec<f32>>,
    pub density: Vec<f32>,
    /// The head check's output on the formula input (ONNX Runtime's, from training), when the
    /// model has the check.
    #[serde(default)]
    pub head: Option<f32>,
}

pub fn reference() -> Reference {
    serde_json::from_slice(&std::fs::read(repo().join("models/scalpmap-seg.reference.json")).unwrap()).unwrap()
}

/// x[0, c, y, x] = 2 * sin(0.05 x + 0.031 y + 1.7 c), in f64 then f32, as training/export.py.
pub fn formula_input(size: usize) -> Array4<f32> {
    Array4::from_shape_fn((1, 3, size, size), |(_, c, y, x)| (2.0 * (0.05 * x as f64 + 0.031 * y as f64 + 1.7 * c as f64).sin()) as f32)
}

pub fn segmenter(choice: BackendChoice) -> Result<Segmenter, String> {
    backend::init(choice).map_err(|e| e.to_string())?;
    let bytes = model_bytes();
    let contract = ModelContract::from_onnx(&bytes).map_err(|e| e.to_string())?;
    Segmenter::new(&bytes, contract, 1).map_err(|e| e.to_string())
}

/// Largest absolute difference between the engine's outputs and PyTorch's at the reference points
/// (and ONNX Runtime's head check, from training).
pub fn max_diff_to_reference(seg: &mut Segmenter) -> f32 {
    let r = reference();
    let size = seg.contract().input_width;
    let out = seg.run(&formula_input(size)).unwrap();
    let unit = seg.contract().density_unit;
    let mut worst = 0f32;
    for (i, [y, x]) in r.points.iter().enumerate() {
        for (k, want) in r.probs[i].iter().enumerate() {
            worst = worst.max((out.probs[[k, *y, *x]] - want).abs());
        }
        worst = worst.max((out.density[[*y, *x]] / unit - r.density[i]).abs());
    }
    // The head check, when the model has it: the reference must have its value too.
    if seg.contract().head_threshold.is_some() {
        let want = r.head.expect("the reference has the head check's output");
        worst = worst.max((out.head.expect("the model has a head output") - want).abs());
    }
    worst
}

/// `models/face-detector.reference.json` (training/scalpmap_train/facedet.py `reference`).
#[derive(serde::Deserialize)]
pub struct FaceReference {
    /// Per batch item (the formula image at 0-3 quarter turns), its 16 highest-scoring anchors.
    pub top_anchors: Vec<Vec<usize>>,
    pub top_scores: Vec<Vec<f32>>,
    pub top_boxes: Vec<Vec<Vec<f32>>>,
    pub decode_case: FaceDecodeCase,
}

#[derive(serde::Deserialize)]
pub struct FaceDecodeCase {
    pub above_threshold: usize,
    pub score: f32,
    #[serde(rename = "box")]
    pub bbox: [f64; 4],
    pub keypoints: Vec<f64>,
}

pub fn face_reference() -> FaceReference {
    serde_json::from_slice(&std::fs::read(repo().join("models/face-detector.reference.json")).unwrap()).unwrap()
}

/// Item k: the image 0.5 + 0.4 sin(6 x / 128 + c) cos(5 y / 128 - c) (f64, then f32) turned k
/// times anticlockwise (numpy's rot90: the turned (y, x) comes from (x, 127 - y)), as facedet.py.
pub fn face_formula_input() -> Array4<f32> {
    Array4::from_shape_fn((4, 3, 128, 128), |(k, c, y, x)| {
        let (mut y, mut x) = (y, x);
        for _ in 0..k {
            (y, x) = (x, 127 - y);
        }
        let (xf, yf, cf) = (x as f64 / 128.0, y as f64 / 128.0, c as f64);
        (0.5 + 0.4 * (6.0 * xf + cf).sin() * (5.0 * yf - cf).cos()) as f32
    })
}

/// Largest difference between the engine's face detector and ONNX Runtime's in training, over the
/// reference's 16 highest-scoring anchors of each turn (scores, and box values in input widths).
pub fn face_max_diff(det: &mut scalpmap::model::face::FaceDetector) -> f32 {
    let r = face_reference();
    let (scores, boxes) = det.run(&face_formula_input()).unwrap();
    let mut worst = 0f32;
    for k in 0..4 {
        for (i, &a) in r.top_anchors[k].iter().enumerate() {
            worst = worst.max((scores[k * 896 + a] - r.top_scores[k][i]).abs());
            for (j, &v) in r.top_boxes[k][i].iter().enumerate() {
                worst = worst.max((boxes[(k * 896 + a) * 16 + j] - v).abs() / 128.0);
            }
        }
    }
    worst
}
