//! The committed model under a real ONNX Runtime library, when the machine has one
//! (ORT_DYLIB_PATH or a pip-installed onnxruntime); skipped with a note otherwise. A separate
//! test binary because ort runs one engine per process.

mod common;

use scalpmap::model::backend::{self, BackendError};
use scalpmap::model::BackendChoice;

#[test]
fn onnxruntime_agrees_with_pytorch_and_tract_reference() {
    match backend::init(BackendChoice::OnnxRuntime) {
        Err(BackendError::NotFound { searched }) => {
            eprintln!("skipped: no ONNX Runtime library (searched {searched}); set ORT_DYLIB_PATH to run this check");
            return;
        }
        Err(e) => panic!("{e}"),
        Ok(info) => eprintln!("ONNX Runtime {} from {:?}", info.version, info.library),
    }
    let mut seg = common::segmenter(BackendChoice::OnnxRuntime).unwrap();
    let r = common::reference();
    let d = common::max_diff_to_reference(&mut seg);
    assert!(d < r.tolerance, "ONNX Runtime differs from PyTorch by {d}");
}
