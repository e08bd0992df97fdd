//! The committed model under the default, pure-Rust engine (tract): its contract, agreement
//! with PyTorch, and its predictions on the committed samples against their exact truth.

mod common;

use scalpmap::classes::Class;
use scalpmap::model::{BackendChoice, ModelContract};
use scalpmap::synth::Truth;

#[test]
fn committed_model_declares_the_contract() {
    let c = ModelContract::from_onnx(&common::model_bytes()).unwrap();
    assert_eq!(c.classes, ["background", "hair", "thinning", "bare", "scar"]);
    assert_eq!((c.input_width, c.input_height), (256, 256));
    assert!(!c.model_version.is_empty());
    assert_eq!(c.training_data_sha256.len(), 64);
    assert!(common::model_bytes().len() < 8_000_000, "the shipped model stays under 8 MB");
    let t = c.head_threshold.expect("the shipped model has the head check");
    assert!(t > 0.0 && t <= 0.5, "threshold {t}");
}

#[test]
fn tract_agrees_with_pytorch() {
    let mut seg = common::segmenter(BackendChoice::Tract).unwrap();
    let r = common::reference();
    let d = common::max_diff_to_reference(&mut seg);
    assert!(d < r.tolerance, "tract differs from PyTorch by {d}");
}

/// Fraction of scalp that is thinning or bare.
fn loss_fraction(classes: &ndarray::Array2<u8>) -> f64 {
    let scalp = classes.iter().filter(|&&c| c != Class::Background as u8).count();
    let loss = classes.iter().filter(|&&c| c == Class::Thinning as u8 || c == Class::Bare as u8).count();
    loss as f64 / scalp.max(1) as f64
}

#[test]
fn predictions_on_samples_match_their_truth() {
    let mut seg = common::segmenter(BackendChoice::Tract).unwrap();
    let dir = common::repo().join("samples");
    let mut truths: Vec<_> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "json")).collect();
    truths.sort();
    let (mut agree, mut total) = (0usize, 0usize);
    let mut errors = Vec::new();
    let mut report = Vec::new();
    for path in &truths {
        let truth: Truth = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let photo = image::open(dir.join(&truth.files.photo)).unwrap().to_rgb8();
        let labels = image::open(dir.join(&truth.files.labels)).unwrap().to_luma8();
        let out = seg.segment(&photo).unwrap();
        assert!(!out.no_head(seg.contract().head_threshold), "{}: the head check finds no head ({:?})", truth.name, out.head);
        let pred = out.classes();
        let (h, w) = pred.dim();
        // Truth at the model's resolution: the label at each output pixel's centre.
        let gt = ndarray::Array2::from_shape_fn((h, w), |(y, x)| {
            labels.get_pixel((x * labels.width() as usize / w) as u32, (y * labels.height() as usize / h) as u32).0[0]
        });
        agree += pred.iter().zip(gt.iter()).filter(|(a, b)| a == b).count();
        total += pred.len();
        let (p, t) = (loss_fraction(&pred), loss_fraction(&gt));
        report.push(format!("{}: loss fraction predicted {p:.3}, truth {t:.3}", truth.name));
        errors.push((p - t).abs());
    }
    let acc = agree as f64 / total as f64;
    errors.sort_by(f64::total_cmp);
    let median = (errors[4] + errors[5]) / 2.0;
    eprintln!("{}\npixel accuracy {acc:.3}, median loss-fraction error {median:.3}", report.join("\n"));
    assert!(acc > MIN_PIXEL_ACCURACY, "pixel accuracy {acc:.3} on samples/\n{}", report.join("\n"));
    assert!(median <= LOSS_FRACTION_MEDIAN_TOLERANCE, "median loss-fraction error {median:.3}\n{}", report.join("\n"));
}

/// Stated tolerances for the shipped model v0.1.x (0.1.0 weights) on the 10 samples (measured: pixel accuracy
/// 0.804, median error 0.121 on the samples as rendered since the scar-tissue change; on 300 unseen renders its pixel
/// accuracy is 0.85 and loss-fraction MAE 0.12, models/MODEL_CARD.md); tighten as it improves.
const MIN_PIXEL_ACCURACY: f64 = 0.75;
const LOSS_FRACTION_MEDIAN_TOLERANCE: f64 = 0.15;

#[test]
fn tract_face_detector_agrees_with_training() {
    scalpmap::model::backend::init(BackendChoice::Tract).unwrap();
    let mut det = scalpmap::model::face::FaceDetector::new(1).unwrap();
    let d = common::face_max_diff(&mut det);
    assert!(d < 1e-4, "tract's face detector differs from ONNX Runtime in training by {d}");
}

#[test]
fn face_decoding_matches_training() {
    // facedet.py's decoding case: raw outputs from a formula, 241 anchors above the threshold.
    let scores: Vec<f32> = (0..896).map(|i| (0.3 + 0.3 * (i as f64 * 0.37).sin()) as f32).collect();
    let boxes: Vec<f32> = (0..896 * 16)
        .map(|n| {
            let (i, j) = (n / 16, n % 16);
            let v = (6.0 * ((i * 16 + j) as f64).sin()) as f32;
            if j == 2 || j == 3 {
                v + 30.0
            } else {
                v
            }
        })
        .collect();
    let r = common::face_reference().decode_case;
    assert_eq!(scores.iter().filter(|&&s| s >= 0.5).count(), r.above_threshold);
    let (score, bbox, kps) = scalpmap::model::face::decode(&scores, &boxes, &scalpmap::model::face::anchors()).unwrap();
    assert_eq!(score, r.score);
    for (a, b) in bbox.iter().zip(&r.bbox) {
        assert!((a - b).abs() < 1e-9, "box {bbox:?} against {:?}", r.bbox);
    }
    for (a, b) in kps.iter().flatten().zip(&r.keypoints) {
        assert!((a - b).abs() < 1e-9, "keypoints {kps:?} against {:?}", r.keypoints);
    }
}
