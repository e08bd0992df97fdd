//! The ONNX model: its contract (read from the file's metadata), the inference engine choice
//! (tract built in, or a real ONNX Runtime library), and the `Segmenter` that runs it with the
//! contract's pre-processing, and the side views' face stage (`face`).

pub mod backend;
pub mod contract;
pub mod face;
pub mod onnx_meta;
pub mod segmenter;

pub use backend::{BackendChoice, BackendInfo};
pub use contract::ModelContract;
pub use segmenter::{prepare, Segmentation, Segmenter};

use std::borrow::Cow;
use std::path::Path;

/// The largest `--model` file read (the shipped one is 0.5 MB; ONNX Runtime's own limit for a
/// single protobuf is 2 GB).
const MAX_MODEL_BYTES: u64 = 1 << 30;

/// The shipped model, compiled into the binary so an installed `scalpmap` needs no files.
pub static EMBEDDED_MODEL: &[u8] = include_bytes!("../../models/scalpmap-seg.onnx");

/// A model's bytes, checked contract, and where it came from ("embedded" or its path).
pub struct LoadedModel {
    pub bytes: Cow<'static, [u8]>,
    pub contract: ModelContract,
    pub source: String,
}

impl LoadedModel {
    /// How reports name this model.
    pub fn info(&self) -> crate::report::ModelInfo {
        crate::report::ModelInfo {
            version: self.contract.model_version.clone(),
            source: self.source.clone(),
            training_data_sha256: self.contract.training_data_sha256.clone(),
            scar_detection: if self.contract.scar_detection { "on".into() } else { crate::report::SCAR_DETECTION_OFF.into() },
        }
    }
}

/// Loads `--model FILE`, or the embedded model when `path` is `None`, and checks its contract.
pub fn load(path: Option<&Path>) -> anyhow::Result<LoadedModel> {
    let (bytes, source) = match path {
        None => (Cow::Borrowed(EMBEDDED_MODEL), "embedded".to_string()),
        Some(p) => (
            Cow::Owned(
                crate::fsio::read_regular(p, MAX_MODEL_BYTES, "a scalpmap model is a few MB; check the --model path")
                    .map_err(|e| anyhow::anyhow!("cannot read the model {}: {e}", p.display()))?,
            ),
            p.display().to_string(),
        ),
    };
    let contract = ModelContract::from_onnx(&bytes).map_err(|e| anyhow::anyhow!("model {source}: {e}"))?;
    Ok(LoadedModel { bytes, contract, source })
}
