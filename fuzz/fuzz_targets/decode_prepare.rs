//! Any bytes as a photo: decoding (format sniffing, EXIF orientation, pixel limit, reduced-scale
//! JPEG) and the model's pre-processing must return a result or an error, never panic.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use scalpmap::model::{prepare, ModelContract, EMBEDDED_MODEL};

fn contract() -> &'static ModelContract {
    static C: OnceLock<ModelContract> = OnceLock::new();
    C.get_or_init(|| ModelContract::from_onnx(EMBEDDED_MODEL).expect("the embedded model keeps the contract"))
}

fuzz_target!(|data: &[u8]| {
    // A small pixel limit keeps each run fast; the limit itself is under test too.
    if let Ok(photo) = scalpmap::photo::decode(data, Path::new("fuzz.jpg"), 4_000_000) {
        let input = prepare(&photo.image, contract());
        assert!(input.iter().all(|v| v.is_finite()));
    }
});
