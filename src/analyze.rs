//! One photo through the whole analysis: decode, prepare, segment, clean the class map,
//! measure classes and zones, assess quality, build the report and the overlay. Every stage but
//! the model run is a pure function, timed separately.

use std::path::Path;
use std::time::Instant;

use image::RgbImage;
use sha2::{Digest, Sha256};

use crate::classes::Class;
use crate::correction::{Corrected, ReviewState};
use crate::marker::MarkerFound;
use crate::masks::{clean, ClassMap};
use crate::measure::{area_cm2, scale_from_head, scale_from_marker, scalp_outline, skin_tone, surface_factors, ScaleInfo};
use crate::model::{prepare, BackendInfo, Segmenter};
use crate::photo::{self, PhotoError};
use crate::report::*;
use crate::rules::{Rules, ScaleRules};
use crate::synth::scene::View;
use crate::zones::{zones, MapScale};
use crate::{overlay, quality};

/// What the analysis is told, besides the photo.
#[derive(Clone, Debug)]
pub struct Settings {
    pub px_per_cm: Option<f64>,
    /// Regions below this area merge into their surroundings: cm² with a scale...
    pub min_region_cm2: f64,
    /// ...or this fraction of the map without one.
    pub min_region_fraction: f64,
    /// Outline simplification tolerance, in map cells.
    pub simplify_cells: f64,
    pub max_pixels: u64,
    pub anonymize: bool,
    pub model: ModelInfo,
    pub backend: BackendInfo,
    pub scale_rules: ScaleRules,
    /// Take the lower face out of side views' maps ([`crate::model::face`]).
    pub face_stage: bool,
}

impl Settings {
    pub fn new(model: ModelInfo, backend: BackendInfo) -> Settings {
        Settings {
            px_per_cm: None,
            min_region_cm2: 0.2,
            min_region_fraction: 0.0005,
            simplify_cells: 1.0,
            max_pixels: photo::DEFAULT_MAX_PIXELS,
            anonymize: false,
            model,
            backend,
            scale_rules: Rules::default().scale,
            face_stage: true,
        }
    }
}

pub struct Analysis {
    pub report: Report,
    pub overlay: RgbImage,
    /// The map the report rests on: the model's, or the practitioner's correction of it.
    pub class_map: ClassMap,
    /// The model's own answer (cleaned), which `NAME.mask.png` keeps even under a correction.
    pub model_map: ClassMap,
}

#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    #[error(transparent)]
    Photo(#[from] PhotoError),
    #[error("{path}: {why}")]
    Inference { path: String, why: String },
}

fn ms(t: Instant) -> f64 {
    (t.elapsed().as_secs_f64() * 1e6).round() / 1e3
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of the options that feed an analysis besides the photo and the model: the view, the
/// given scale and the scale rules (head breadth, marker size). `--resume` analyses a photo
/// again when they differ from its report's.
pub fn options_sha256(view: Option<&str>, s: &Settings) -> String {
    let face_stage = s.face_stage && crate::model::face::applies_to(view);
    let options = serde_json::json!({ "view": view, "px_per_cm": s.px_per_cm, "scale_rules": s.scale_rules, "face_stage": face_stage });
    sha256_hex(options.to_string().as_bytes())
}

/// The view named in a file name (`..._top.jpg`, `front`, `crown`, `left`...), if any: the
/// first whole word the view vocabulary of [`View::parse`] knows.
pub fn view_from_name(path: &Path) -> Option<String> {
    let stem = path.file_stem()?.to_string_lossy().to_ascii_lowercase();
    stem.split(|c: char| !c.is_ascii_alphanumeric()).find_map(View::parse).map(|v| v.name().to_string())
}

/// The view a photo is analysed as: the one given (manifest, `--view`), else its file name's.
pub fn view_of(given: Option<&str>, path: &Path) -> Option<String> {
    given.map(str::to_string).or_else(|| view_from_name(path))
}

/// Analyses photo bytes read from `path`; `view` (from a manifest) overrides the file name's.
pub fn analyze_bytes(
    seg: &mut Segmenter,
    bytes: &[u8],
    path: &Path,
    view: Option<&str>,
    s: &Settings,
    read_ms: f64,
) -> Result<Analysis, AnalyzeError> {
    analyze_corrected(seg, bytes, path, view, s, read_ms, None, None)
}

/// [`analyze_bytes`], with a practitioner's correction of this photo's map (checked by
/// [`crate::correction::load_valid`]): everything measured rests on the corrected map, its view
/// (when it sets one) is the photo's, a retake mark makes the photo a retake, and the report
/// says it was reviewed. `sha256`: the bytes' SHA-256 when the caller has it already (a 12 MP
/// photo's hash is not taken twice).
#[allow(clippy::too_many_arguments)]
pub fn analyze_corrected(
    seg: &mut Segmenter,
    bytes: &[u8],
    path: &Path,
    view: Option<&str>,
    s: &Settings,
    read_ms: f64,
    corrected: Option<&Corrected>,
    sha256: Option<&str>,
) -> Result<Analysis, AnalyzeError> {
    let started = Instant::now();
    let t = Instant::now();
    let photo = photo::decode(bytes, path, s.max_pixels)?;
    let decode_ms = ms(t) + read_ms;
    let t = Instant::now();
    let input = prepare(&photo.image, seg.contract());
    let prepare_ms = ms(t);
    let t = Instant::now();
    let out = seg.run(&input).map_err(|e| AnalyzeError::Inference { path: path.display().to_string(), why: e.to_string() })?;
    // The model input, back in sRGB: the face stage, skin tone and quality read its colours.
    let rgb = crate::model::segmenter::input_rgb(&input, seg.contract());
    let (mw, mh) = (seg.contract().input_width, seg.contract().input_height);
    // A practitioner's map of another grid (another model) is not used.
    let corrected = corrected.filter(|k| k.map.width == mw && k.map.height == mh);
    let view = corrected.and_then(|k| k.correction.view.as_deref()).or(view);
    let view_used = view_of(view, path);
    let no_head = out.no_head(seg.contract().head_threshold);
    let face = if s.face_stage && !no_head && crate::model::face::applies_to(view_used.as_deref()) {
        let inference =
            |e: crate::model::segmenter::InferenceError| AnalyzeError::Inference { path: path.display().to_string(), why: e.to_string() };
        let found = seg.face_detector().map_err(inference)?.detect(&rgb, mw, mh).map_err(inference)?;
        let region = found.as_ref().map(|f| crate::model::face::lower_face(f, mw)).unwrap_or_default();
        Some((found, region))
    } else {
        None
    };
    let infer_ms = ms(t);
    let t = Instant::now();
    let c = seg.contract();
    // Measurements refer to the photo's own pixels, even when it was decoded smaller.
    let (pw, ph) = (photo.width, photo.height);
    let decoded_scale = pw as f64 / photo.image.width().max(1) as f64;
    let (sx, sy) = (pw as f64 / mw as f64, ph as f64 / mh as f64);
    let min_cells = match s.px_per_cm {
        Some(k) => (s.min_region_cm2 * k * k / (sx * sy)).round() as usize,
        None => (s.min_region_fraction * (mw * mh) as f64).round() as usize,
    }
    .max(1);
    // With scar detection off, a pixel the model calls scar takes its next most probable class.
    let excluded = (!c.scar_detection).then_some(Class::Scar as u8);
    // The head check: a photo with no head in it is no scalp at all, never a bald one.
    let mut raw = if no_head {
        ClassMap::new(mw, mh, vec![Class::Background as u8; mw * mh])
    } else {
        ClassMap::new(mw, mh, out.classes_except(excluded).iter().copied().collect())
    };
    let face_stage = face.map(|(found, region)| take_out_face(&mut raw, found, &region));
    let mut map = clean(&raw, min_cells, Class::COUNT);
    let marker = crate::marker::find_in_photo(&photo.image).map(|m| m.scaled(decoded_scale));
    if let Some(m) = &marker {
        crate::marker::clear_from_map(&mut map, m, sx, sy);
    }
    let model_map = map.clone();
    // The practitioner's map is final: not cleaned again, the marker left as they painted it.
    if let Some(k) = corrected {
        map = k.map.clone();
    }
    let density: Vec<f32> = out.density.iter().copied().collect();
    let measurement = measure(&map, sx, sy, view_used.as_deref(), marker.as_ref(), &rgb, s);
    // Zones and class shares use the scale the report states (given, marker or head
    // estimate), so every cm² in one report rests on the same px/cm.
    let map_scale = MapScale { sx, sy, px_per_cm: measurement.scale.as_ref().map(|k| k.px_per_cm) };
    let zs = zones(&map, &density, map_scale, s.simplify_cells * sx.max(sy));
    let hist = map.histogram(Class::COUNT);
    let cells = (mw * mh) as f64;
    let scalp_cells: u64 = hist[1..].iter().sum();
    let share = |n: u64| if scalp_cells > 0 { n as f64 / scalp_cells as f64 } else { 0.0 };
    let classes: Vec<ClassShare> = Class::ALL
        .iter()
        .map(|&k| {
            let n = hist[k as usize];
            let area_px = n as f64 * sx * sy;
            ClassShare {
                class: k.name().into(),
                fraction_of_photo: n as f64 / cells,
                fraction_of_scalp: (k != Class::Background).then(|| share(n)),
                area_px,
                area_cm2: map_scale.flat_cm2(area_px),
            }
        })
        .collect();
    let mean_on = |class: Class| {
        let v: Vec<f64> = map.data.iter().zip(&density).filter(|(&m, _)| m == class as u8).map(|(_, &d)| d as f64).collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    let lum: Vec<f32> = rgb.iter().map(crate::model::segmenter::luma).collect();
    // A practitioner's map stands over the check: they have looked at the photo.
    let head = quality::HeadCheck { score: out.head, sent_back_under: c.head_threshold.filter(|_| no_head && corrected.is_none()) };
    let mut q = quality::assess(&photo.image, &map, &lum, head);
    if corrected.is_some_and(|k| k.correction.state == ReviewState::Retake) {
        q.retake = true;
        q.reasons.push("marked for a retake at review".into());
    }
    let shares: Vec<f64> = Class::ALL.iter().map(|&k| share(hist[k as usize])).collect();
    let overlay = overlay::render(&photo.image, (pw, ph), &map, &zs, &shares);
    let post_ms = ms(t);
    let file = if s.anonymize { crate::batch::anonymous_name(path) } else { crate::fsio::path_text(path) };
    let report = Report {
        schema: REPORT_SCHEMA.into(),
        scalpmap_version: env!("CARGO_PKG_VERSION").into(),
        input: InputInfo {
            file,
            sha256: sha256.map_or_else(|| sha256_hex(bytes), str::to_string),
            bytes: bytes.len() as u64,
            format: photo.format.into(),
            width: pw,
            height: ph,
            orientation_applied: photo.orientation.into(),
        },
        view: view_used.clone(),
        model: s.model.clone(),
        backend: s.backend.clone(),
        timings_ms: Timings { decode: decode_ms, prepare: prepare_ms, infer: infer_ms, post: post_ms, total: ms(started) + read_ms },
        analysis: AnalysisGrid { width: mw, height: mh, photo_px_per_cell: [sx, sy], min_region_cells: min_cells },
        px_per_cm: s.px_per_cm,
        loss_fraction_of_scalp: share(hist[Class::Thinning as usize] + hist[Class::Bare as usize]),
        classes,
        density: DensitySummary { mean_on_hair_per_cm2: mean_on(Class::Hair), mean_on_thinning_per_cm2: mean_on(Class::Thinning) },
        zones: zs,
        quality: q,
        measurement,
        options_sha256: Some(options_sha256(view_used.as_deref(), s)),
        review: corrected.map(Corrected::info),
        face_stage,
    };
    Ok(Analysis { report, overlay, class_map: map, model_map })
}

/// A side view's lower face is never scalp, whatever the model drew there: the region's cells
/// become background, and the report says how many were scalp.
fn take_out_face(raw: &mut ClassMap, found: Option<crate::model::face::Face>, region: &[bool]) -> FaceStage {
    let mut removed = 0;
    for (cell, _) in raw.data.iter_mut().zip(region).filter(|(_, &r)| r) {
        removed += u64::from(*cell != Class::Background as u8);
        *cell = Class::Background as u8;
    }
    FaceStage {
        face_found: found.is_some(),
        score: found.map(|f| f.score as f64),
        cells_removed: removed,
        region_fraction: region.iter().filter(|&&r| r).count() as f64 / raw.data.len().max(1) as f64,
    }
}

/// Scale (given, else a printed marker, else estimated from the head outline), surface areas
/// and skin tone.
fn measure(
    map: &ClassMap,
    sx: f64,
    sy: f64,
    view: Option<&str>,
    marker: Option<&MarkerFound>,
    rgb: &[[f32; 3]],
    s: &Settings,
) -> Measurement {
    let outline = scalp_outline(map, sx, sy);
    let scale = match (s.px_per_cm, marker) {
        (Some(k), _) => Ok(ScaleInfo::given(k)),
        (None, Some(m)) => Ok(scale_from_marker(m, &s.scale_rules)),
        (None, None) => scale_from_head(view, outline.as_ref(), &s.scale_rules),
    };
    let (factors, correction) = surface_factors(map, sx, sy, view, outline.as_ref(), &s.scale_rules);
    let areas = scale.as_ref().ok().map(|k| {
        let a = |classes: &[Class]| area_cm2(map, &factors, classes, sx * sy, k, correction);
        Areas {
            hair: a(&[Class::Hair]),
            thinning: a(&[Class::Thinning]),
            bare: a(&[Class::Bare]),
            scar: a(&[Class::Scar]),
            to_cover: a(&[Class::Thinning, Class::Bare, Class::Scar]),
        }
    });
    let (scale, no_scale_reason) = match scale {
        Ok(k) => (Some(k), None),
        Err(why) => (None, Some(why)),
    };
    Measurement { scale, no_scale_reason, correction: correction.into(), areas_cm2: areas, skin: skin_tone(rgb, map) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_face_region_becomes_background_and_is_counted() {
        let mut raw = ClassMap::new(2, 2, vec![1, 0, 3, 2]);
        let stage = take_out_face(&mut raw, None, &[true, true, false, true]);
        assert_eq!(raw.data, vec![0, 0, 3, 0]);
        assert_eq!((stage.cells_removed, stage.region_fraction, stage.face_found), (2, 0.75, false));
    }

    #[test]
    fn views_come_from_file_names() {
        assert_eq!(view_from_name(Path::new("n5-p11-top-down.jpg")).as_deref(), Some("top"));
        assert_eq!(view_from_name(Path::new("client_42_Crown.JPG")).as_deref(), Some("back"));
        assert_eq!(view_from_name(Path::new("IMG_0001.jpg")), None);
        assert_eq!(view_from_name(Path::new("frontal.jpg")), None, "whole words only");
        assert_eq!(view_from_name(Path::new("a-front.png")).as_deref(), Some("front"));
    }

    #[test]
    fn sha256_of_empty_is_the_known_digest() {
        assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
}
