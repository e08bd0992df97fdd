//! The per-photo report: serde types with a schema version. Planning tools read these; the
//! JSON Schema in `schemas/report.schema.json` describes them.

use serde::{Deserialize, Serialize};

use crate::measure::{Interval, ScaleInfo, SkinTone};
use crate::model::BackendInfo;
use crate::quality::Quality;
use crate::zones::Zone;

/// Bumped whenever a field changes meaning or disappears; additions keep the version.
pub const REPORT_SCHEMA: &str = "scalpmap-report/1";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    pub scalpmap_version: String,
    pub input: InputInfo,
    /// View, when known (from the file name).
    pub view: Option<String>,
    pub model: ModelInfo,
    pub backend: BackendInfo,
    pub timings_ms: Timings,
    pub analysis: AnalysisGrid,
    /// Photo pixels per cm, when given; areas in cm² are present only then.
    pub px_per_cm: Option<f64>,
    pub classes: Vec<ClassShare>,
    /// (thinning + bare) / scalp.
    pub loss_fraction_of_scalp: f64,
    pub density: DensitySummary,
    pub zones: Vec<Zone>,
    pub quality: Quality,
    pub measurement: Measurement,
    /// SHA-256 of the view, scale and scale rules the photo was analysed with
    /// ([`crate::analyze::options_sha256`]): `--resume` analyses again when they change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options_sha256: Option<String>,
    /// Present when the map is a practitioner's correction (`scalpmap review`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<crate::correction::ReviewInfo>,
    /// Present on side views, where the face stage ran ([`crate::model::face`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub face_stage: Option<FaceStage>,
}

/// What the side views' face stage took out of the model's map.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaceStage {
    /// Whether the face detector found a face (score at least 0.5).
    pub face_found: bool,
    /// Its score, when found.
    pub score: Option<f64>,
    /// Map cells of the lower face set to background (scalp classes the model had drawn there).
    pub cells_removed: u64,
    /// The lower face's share of the map.
    pub region_fraction: f64,
}

impl Report {
    /// A class's fraction of the scalp, by class name (None for background or an unknown name).
    pub fn fraction_of_scalp(&self, class: &str) -> Option<f64> {
        self.classes.iter().find(|c| c.class == class).and_then(|c| c.fraction_of_scalp)
    }
}

/// Physical measurements: the scale and how it was found, the foreshortening correction,
/// surface areas in cm² with intervals, and the skin tone of bare scalp.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    pub scale: Option<ScaleInfo>,
    /// Why there is no scale, when there is none.
    pub no_scale_reason: Option<String>,
    /// "ellipsoid-top" (top-down views) or "none".
    pub correction: String,
    /// Surface areas, present with a scale.
    pub areas_cm2: Option<Areas>,
    pub skin: Option<SkinTone>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Areas {
    pub hair: Interval,
    pub thinning: Interval,
    pub bare: Interval,
    pub scar: Interval,
    /// thinning + bare + scar: the area SMP covers.
    pub to_cover: Interval,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputInfo {
    /// The path as given, bytes that are not UTF-8 written `\xNN` (or a stable hash of the
    /// canonical path with --anonymize).
    pub file: String,
    pub sha256: String,
    pub bytes: u64,
    pub format: String,
    /// Upright size (after EXIF orientation).
    pub width: u32,
    pub height: u32,
    pub orientation_applied: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub version: String,
    /// "embedded" or the --model path.
    pub source: String,
    pub training_data_sha256: String,
    /// "on", or "off" with the reason: the model's scar class is not drawn, and only the scars a
    /// practitioner marks (the manifest's `scar_cm2`) are planned. Absent in reports older than the key.
    #[serde(default = "scar_detection_on")]
    pub scar_detection: String,
}

fn scar_detection_on() -> String {
    "on".into()
}

/// What reports say when a model's scar class is switched off.
pub const SCAR_DETECTION_OFF: &str =
    "off: no scar detector has yet passed the false-scar check on real photos, so no scar is drawn from the photo; scars a practitioner marks (the manifest's scar_cm2 column) are still planned";

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    pub decode: f64,
    pub prepare: f64,
    pub infer: f64,
    pub post: f64,
    pub total: f64,
}

/// The class map's grid: each map pixel stands for `photo_px_per_cell` photo pixels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnalysisGrid {
    pub width: usize,
    pub height: usize,
    pub photo_px_per_cell: [f64; 2],
    /// Regions smaller than this many cells were merged into their surroundings.
    pub min_region_cells: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassShare {
    pub class: String,
    pub fraction_of_photo: f64,
    /// Absent for background.
    pub fraction_of_scalp: Option<f64>,
    pub area_px: f64,
    pub area_cm2: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DensitySummary {
    /// Mean predicted follicle density, hairs/cm², over hair and over thinning pixels.
    pub mean_on_hair_per_cm2: Option<f64>,
    pub mean_on_thinning_per_cm2: Option<f64>,
}

/// Version of the patient report (`patients/ID.json`).
pub const PATIENT_SCHEMA: &str = "scalpmap-patient/2";

/// One patient: the views combined and the draft treatment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PatientReport {
    pub schema: String,
    pub scalpmap_version: String,
    pub patient: String,
    /// "default" or the --rules file.
    pub rules: String,
    pub assessment: crate::patient::Fusion,
    pub plan: crate::plan::Plan,
}

/// A photo the batch could not analyse.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub file: String,
    pub error: String,
}
