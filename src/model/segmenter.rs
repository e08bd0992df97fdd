//! Runs the segmentation model on one photo: the contract's pre-processing (area resize to the
//! input size, normalisation), one ort session per worker, and checked outputs.

use std::sync::OnceLock;

use image::RgbImage;
use ndarray::{Array2, Array3, Array4, Axis};
use ort::session::{builder::GraphOptimizationLevel, Session};
use ort::value::TensorRef;

use super::contract::ModelContract;

#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    #[error("the inference engine could not start: {0}")]
    Engine(String),
    #[error("the model could not be loaded by the engine: {0}")]
    Load(String),
    #[error("inference failed: {0}")]
    Run(String),
    #[error("the model broke its contract: {0}")]
    Contract(String),
}

/// Class probabilities and density at the model's resolution.
#[derive(Clone, Debug)]
pub struct Segmentation {
    /// C x H x W, softmax over C, in the contract's class order.
    pub probs: Array3<f32>,
    /// H x W, hairs per cm² of scalp.
    pub density: Array2<f32>,
    /// The head check's probability that the photo shows a head, when the model has one.
    pub head: Option<f32>,
}

impl Segmentation {
    /// Whether the model's head check says there is no head in the photo (never for a model
    /// without the check).
    pub fn no_head(&self, threshold: Option<f32>) -> bool {
        matches!((self.head, threshold), (Some(h), Some(t)) if h < t)
    }

    /// The most probable class per pixel (H x W, class ids).
    pub fn classes(&self) -> Array2<u8> {
        self.classes_except(None)
    }

    /// The most probable class per pixel among all but `excluded` (a class the model may not
    /// draw, such as scar while scar detection is off).
    pub fn classes_except(&self, excluded: Option<u8>) -> Array2<u8> {
        self.probs.map_axis(Axis(0), |p| {
            p.iter()
                .enumerate()
                .filter(|&(i, _)| Some(i as u8) != excluded)
                .fold((0u8, f32::MIN), |(bi, bv), (i, &v)| if v > bv { (i as u8, v) } else { (bi, bv) })
                .0
        })
    }
}

static ENVIRONMENT: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();

fn environment() -> Result<&'static ort::environment::Environment, InferenceError> {
    ENVIRONMENT
        .get_or_init(|| ort::init().with_name("scalpmap").with_telemetry(false).build().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| InferenceError::Engine(e.clone()))
}

/// A session builder on the chosen engine with `threads` intra-op threads (ignored by tract) and
/// every graph optimisation on; the segmentation model and the face detector both start here.
pub(crate) fn session_builder(threads: usize) -> Result<ort::session::builder::SessionBuilder, InferenceError> {
    // ort panics when used before an engine is set: refuse instead.
    if super::backend::active().is_none() {
        return Err(InferenceError::Engine("no inference engine chosen: call model::backend::init first".into()));
    }
    let env = environment()?;
    // ort's builder errors are not Send/Sync: turn them into strings at this boundary.
    let builder = Session::builder(env).map_err(|e| InferenceError::Load(e.to_string()))?;
    // tract's ort stub refuses thread settings (it runs on the calling thread): keep the
    // builder it hands back and go on.
    let builder = builder.with_intra_threads(threads.max(1)).unwrap_or_else(|e| e.recover());
    // ONNX Runtime optimises every graph by default; ort-tract only when asked. Without this
    // tract runs the unoptimised graph: 355 instead of ~140 ms per image in a batch here.
    Ok(builder.with_optimization_level(GraphOptimizationLevel::All).unwrap_or_else(|e| e.recover()))
}

/// One model session with its contract; not shared between threads (`run` takes `&mut`).
pub struct Segmenter {
    session: Session,
    contract: ModelContract,
    threads: usize,
    /// The side views' face detector, started on the first side view this worker sees.
    face: Option<super::face::FaceDetector>,
}

impl Segmenter {
    /// Builds a session from ONNX bytes. The engine must have been chosen with
    /// [`super::backend::init`] first. `threads` is the engine's intra-op thread count
    /// (ignored by tract, which runs each session on the calling thread).
    pub fn new(model: &[u8], contract: ModelContract, threads: usize) -> Result<Segmenter, InferenceError> {
        let session = session_builder(threads)?.commit_from_memory(model).map_err(|e| InferenceError::Load(e.to_string()))?;
        check_io(&session, contract.head_threshold.is_some())?;
        Ok(Segmenter { session, contract, threads, face: None })
    }

    pub fn contract(&self) -> &ModelContract {
        &self.contract
    }

    /// The face detector of this worker (the embedded one), started when first asked for.
    pub fn face_detector(&mut self) -> Result<&mut super::face::FaceDetector, InferenceError> {
        match &mut self.face {
            Some(face) => Ok(face),
            slot @ None => Ok(slot.insert(super::face::FaceDetector::new(self.threads)?)),
        }
    }

    /// Segments a photo (any size; resized by the contract's rule).
    pub fn segment(&mut self, photo: &RgbImage) -> Result<Segmentation, InferenceError> {
        let input = prepare(photo, &self.contract);
        self.run(&input)
    }

    /// Runs the model on an already prepared 1x3xHxW input.
    pub fn run(&mut self, input: &Array4<f32>) -> Result<Segmentation, InferenceError> {
        let c = &self.contract;
        let (h, w, k) = (c.input_height, c.input_width, c.classes.len());
        let tensor = TensorRef::from_array_view(input.view()).map_err(|e| InferenceError::Run(e.to_string()))?;
        let outputs = self.session.run(ort::inputs!["image" => tensor]).map_err(|e| InferenceError::Run(e.to_string()))?;
        let probs = outputs["probs"].try_extract_array::<f32>().map_err(|e| InferenceError::Contract(format!("output 'probs': {e}")))?;
        let dens = outputs["density"].try_extract_array::<f32>().map_err(|e| InferenceError::Contract(format!("output 'density': {e}")))?;
        if probs.shape() != [1, k, h, w] || dens.shape() != [1, 1, h, w] {
            return Err(InferenceError::Contract(format!(
                "output shapes {:?} and {:?}, expected [1, {k}, {h}, {w}] and [1, 1, {h}, {w}]",
                probs.shape(),
                dens.shape()
            )));
        }
        if probs.iter().chain(dens.iter()).any(|v| !v.is_finite()) {
            return Err(InferenceError::Contract("the model produced NaN or infinite values".into()));
        }
        let head = match c.head_threshold {
            None => None,
            Some(_) => {
                let h = outputs["head"].try_extract_array::<f32>().map_err(|e| InferenceError::Contract(format!("output 'head': {e}")))?;
                let values: Vec<f32> = h.iter().copied().collect();
                match values[..] {
                    [v] if (0.0..=1.0).contains(&v) => Some(v),
                    _ => {
                        let shape = h.shape();
                        return Err(InferenceError::Contract(format!(
                            "output 'head' must be one probability, got {values:?} (shape {shape:?})"
                        )));
                    }
                }
            }
        };
        let probs = probs.index_axis(Axis(0), 0).to_owned().into_dimensionality().map_err(|e| InferenceError::Contract(e.to_string()))?;
        let density = dens
            .index_axis(Axis(0), 0)
            .index_axis(Axis(0), 0)
            .mapv(|v| v * c.density_unit)
            .into_dimensionality()
            .map_err(|e| InferenceError::Contract(e.to_string()))?;
        Ok(Segmentation { probs, density, head })
    }
}

fn check_io(session: &Session, head_check: bool) -> Result<(), InferenceError> {
    let ins: Vec<&str> = session.inputs().iter().map(|o| o.name()).collect();
    let outs: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
    if ins != ["image"] || !outs.contains(&"probs") || !outs.contains(&"density") {
        return Err(InferenceError::Contract(format!(
            "inputs {ins:?} and outputs {outs:?}; scalpmap needs input 'image' and outputs 'probs', 'density'"
        )));
    }
    if head_check && !outs.contains(&"head") {
        return Err(InferenceError::Contract(format!("the metadata sets scalpmap.head_threshold but the outputs {outs:?} have no 'head'")));
    }
    Ok(())
}

/// The contract's pre-processing: area-average resize of the whole photo to the input size
/// (aspect not kept), scaled to [0, 1] and normalised by mean/std, written straight into the
/// 1x3xHxW tensor without an intermediate image.
pub fn prepare(photo: &RgbImage, c: &ModelContract) -> Array4<f32> {
    let (sw, sh) = (photo.width() as usize, photo.height() as usize);
    let (ow, oh) = (c.input_width, c.input_height);
    let cols = area_weights(sw, ow);
    let rows = area_weights(sh, oh);
    let src = photo.as_raw();
    // Horizontal pass into a (source rows x output columns x 3) buffer.
    let mut tmp = vec![0f32; sh * ow * 3];
    for y in 0..sh {
        let row = &src[y * sw * 3..(y + 1) * sw * 3];
        for (x, (start, ws)) in cols.iter().enumerate() {
            let mut acc = [0f32; 3];
            for (k, w) in ws.iter().enumerate() {
                let p = (start + k) * 3;
                acc[0] += row[p] as f32 * w;
                acc[1] += row[p + 1] as f32 * w;
                acc[2] += row[p + 2] as f32 * w;
            }
            tmp[(y * ow + x) * 3..(y * ow + x) * 3 + 3].copy_from_slice(&acc);
        }
    }
    let mut out = Array4::<f32>::zeros((1, 3, oh, ow));
    let scale: [f32; 3] = std::array::from_fn(|ch| 1.0 / (255.0 * c.std[ch]));
    let offset: [f32; 3] = std::array::from_fn(|ch| c.mean[ch] / c.std[ch]);
    for (y, (start, ws)) in rows.iter().enumerate() {
        for x in 0..ow {
            let mut acc = [0f32; 3];
            for (k, w) in ws.iter().enumerate() {
                let p = ((start + k) * ow + x) * 3;
                acc[0] += tmp[p] * w;
                acc[1] += tmp[p + 1] * w;
                acc[2] += tmp[p + 2] * w;
            }
            for ch in 0..3 {
                out[[0, ch, y, x]] = acc[ch] * scale[ch] - offset[ch];
            }
        }
    }
    out
}

/// The model input back in 0-255 sRGB, one [r, g, b] per cell: the photo on the model's grid
/// without a second pass over the full-resolution photo.
pub fn input_rgb(input: &Array4<f32>, c: &ModelContract) -> Vec<[f32; 3]> {
    let (h, w) = (input.shape()[2], input.shape()[3]);
    let mut out = Vec::with_capacity(h * w);
    for y in 0..h {
        for x in 0..w {
            let ch = |k: usize| (input[[0, k, y, x]] * c.std[k] + c.mean[k]) * 255.0;
            out.push([ch(0), ch(1), ch(2)]);
        }
    }
    out
}

/// Rec. 601 luma of an sRGB triple (0-255 in, 0-255 out).
pub fn luma(c: &[f32; 3]) -> f32 {
    0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]
}

/// For each output index, the first source index it covers and the weights (summing to 1) of
/// the source pixels under it: exact box filtering for any scale factor, up or down.
pub fn area_weights(src: usize, dst: usize) -> Vec<(usize, Vec<f32>)> {
    let ratio = src as f64 / dst as f64;
    (0..dst)
        .map(|i| {
            let (a, b) = (i as f64 * ratio, (i + 1) as f64 * ratio);
            let first = a.floor() as usize;
            let last = ((b.ceil() as usize).max(first + 1)).min(src);
            let ws: Vec<f64> = (first..last).map(|j| (b.min(j as f64 + 1.0) - a.max(j as f64)).max(0.0)).collect();
            let total: f64 = ws.iter().sum();
            (first, ws.iter().map(|w| (w / total) as f32).collect())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contract(w: usize, h: usize) -> ModelContract {
        ModelContract {
            model_version: "t".into(),
            classes: vec![],
            input_width: w,
            input_height: h,
            mean: [0.0; 3],
            std: [1.0; 3],
            density_unit: 100.0,
            resize_rule: String::new(),
            training_data_sha256: String::new(),
            scar_detection: true,
            norwood_top_upper: None,
            head_threshold: None,
        }
    }

    #[test]
    fn a_class_switched_off_is_never_the_answer() {
        // Two pixels; the second's most probable class is scar (4), its next bare (3).
        let probs = Array3::from_shape_vec((5, 1, 2), vec![0.1, 0.0, 0.6, 0.1, 0.1, 0.1, 0.1, 0.3, 0.1, 0.5]).unwrap();
        let s = Segmentation { probs, density: Array2::zeros((1, 2)), head: None };
        assert_eq!(s.classes().into_raw_vec_and_offset().0, vec![1, 4]);
        assert_eq!(s.classes_except(Some(4)).into_raw_vec_and_offset().0, vec![1, 3]);
    }

    #[test]
    fn area_weights_are_exact_boxes() {
        assert_eq!(area_weights(4, 2), vec![(0, vec![0.5, 0.5]), (2, vec![0.5, 0.5])]);
        // 3 -> 2: each output covers 1.5 source pixels.
        let w = area_weights(3, 2);
        assert_eq!(w[0].0, 0);
        assert!((w[0].1[0] - 2.0 / 3.0).abs() < 1e-6 && (w[0].1[1] - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(w[1].0, 1);
        assert_eq!(area_weights(2, 4), vec![(0, vec![1.0]), (0, vec![1.0]), (1, vec![1.0]), (1, vec![1.0])]);
    }

    #[test]
    fn prepare_averages_2x2_blocks_and_normalises() {
        // 4x2 photo: left 2x2 block has red 0 and 255 (mean 127.5), right block all 51.
        let mut img = RgbImage::new(4, 2);
        for (x, y, p) in img.enumerate_pixels_mut() {
            *p = if x < 2 { image::Rgb([if (x + y) % 2 == 0 { 0 } else { 255 }, 0, 0]) } else { image::Rgb([51, 51, 51]) };
        }
        let mut c = contract(2, 1);
        c.mean = [0.5, 0.0, 0.0];
        c.std = [0.5, 1.0, 1.0];
        let t = prepare(&img, &c);
        assert_eq!(t.shape(), &[1, 3, 1, 2]);
        assert!((t[[0, 0, 0, 0]] - 0.0).abs() < 1e-6, "(0.5 - 0.5) / 0.5");
        assert!((t[[0, 1, 0, 1]] - 0.2).abs() < 1e-6, "51/255");
        // Luminance of the right cell (grey 51) comes back from the normalised tensor.
        assert!((luma(&input_rgb(&t, &c)[1]) - 51.0).abs() < 1e-3);
    }
}
