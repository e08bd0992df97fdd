//! The committed model under a real ONNX Runtime library. It runs when ORT_DYLIB_PATH named
//! one as the tests were built (`.ci/run` installs it from PyPI), and is listed as ignored, with
//! the reason, otherwise; `cargo test -- --ignored` runs it on a pip-installed onnxruntime found
//! at run time, and then fails if there is none. A separate test binary because ort runs one
//! engine per process.

mod common;

use scalpmap::model::backend::{self, BackendError};
use scalpmap::model::BackendChoice;

#[test]
#[cfg_attr(not(scalpmap_ort_named), ignore = "no ONNX Runtime: set ORT_DYLIB_PATH to a libonnxruntime and build the tests again")]
fn onnxruntime_agrees_with_pytorch_and_tract_reference() {
    match backend::init(BackendChoice::OnnxRuntime) {
        Err(BackendError::NotFound { searched }) => panic!("no ONNX Runtime library (searched {searched}); set ORT_DYLIB_PATH"),
        Err(e) => panic!("{e}"),
        Ok(info) => eprintln!("ONNX Runtime {} from {:?}", info.version, info.library),
    }
    let mut seg = common::segmenter(BackendChoice::OnnxRuntime).unwrap();
    let r = common::reference();
    let d = common::max_diff_to_reference(&mut seg);
    assert!(d < r.tolerance, "ONNX Runtime differs from PyTorch by {d}");
    let mut det = scalpmap::model::face::FaceDetector::new(1).unwrap();
    let d = common::face_max_diff(&mut det);
    assert!(d < 1e-4, "ONNX Runtime's face detector differs from training's by {d}");
}
