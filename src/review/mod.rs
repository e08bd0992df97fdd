//! `scalpmap review`: a practitioner looks at an `analyze` or `plan` output folder, corrects
//! class maps, and the reports and plans follow. This module owns the folder's side of it
//! ([`Folder`]): what is listed, where each photo is, saving a correction (the map and its JSON,
//! atomically), analysing the photo again on the corrected map, and planning its patient again.
//! [`server`] puts it on a loopback HTTP port for the page in `page.html`.

pub mod server;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Cursor;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::analyze::{analyze_corrected, sha256_hex, Analysis, Settings};
use crate::batch::{Summary, SummaryRow};
use crate::classes::Class;
use crate::correction::{self, Corrected, Correction, ReviewState, CORRECTION_SCHEMA};
use crate::fsio::write_atomic;
use crate::html::IndexRow;
use crate::masks::ClassMap;
use crate::model::{backend, BackendChoice, LoadedModel, Segmenter};
use crate::patient::PatientPhoto;
use crate::record::RunRecord;
use crate::report::Report;
use crate::synth::scene::View;

/// Long side of the photo the page shows: enough for a 1280x800 screen or a tablet, far less
/// than a 12 MP original to send.
const DISPLAY_MAX_SIDE: u32 = 1600;
/// Decoded photos kept for the page (each at most DISPLAY_MAX_SIDE², as JPEG).
const PHOTO_CACHE: usize = 32;

/// An error the page is told about: an HTTP status and a sentence saying what to do.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into() }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> ApiError {
        ApiError::new(500, format!("{e:#}"))
    }
}

/// What the page sends to save a photo's review.
#[derive(Debug, Deserialize)]
pub struct SaveRequest {
    /// The corrected map: one class id per cell, row-major, base64.
    pub map: String,
    /// "reviewed" or "retake".
    pub state: String,
    /// A view to set (top, front, back, left, right), or none to keep the photo's.
    pub view: Option<String>,
}

/// A patient's plan as the page shows it.
#[derive(Clone, Debug, Serialize)]
pub struct PatientSummary {
    pub patient: String,
    pub page: String,
    pub photos: Vec<String>,
    pub percent: Option<f64>,
    pub area_to_cover_cm2: Option<crate::measure::Interval>,
    pub stage: String,
    pub sessions: u32,
    pub reviewed: usize,
}

/// One photo in the list.
#[derive(Clone, Debug, Serialize)]
pub struct PhotoSummary {
    pub name: String,
    pub file: String,
    pub view: Option<String>,
    pub retake: bool,
    pub reasons: Vec<String>,
    pub review: Option<String>,
    pub loss_fraction_of_scalp: f64,
    pub area_to_cover_cm2: Option<f64>,
}

/// The folder under review. Not thread-safe by itself: the server holds it in a mutex, so
/// saves (of one photo or of several) happen one after another.
pub struct Folder {
    out: PathBuf,
    record: RunRecord,
    summary: Summary,
    /// The current report of every analysed photo, by output name.
    reports: BTreeMap<String, Report>,
    /// Patient of each output (a `plan` folder), and each patient's page id.
    patient_of: HashMap<String, String>,
    page_ids: BTreeMap<String, String>,
    index_rows: BTreeMap<String, IndexRow>,
    /// Where to look for photos not at their recorded path (`--photos`), and what was found.
    photo_dirs: Vec<PathBuf>,
    by_sha: Option<HashMap<String, PathBuf>>,
    jpeg_cache: Vec<(String, Vec<u8>)>,
    model: Option<(LoadedModel, Segmenter, Settings)>,
    engine: BackendChoice,
}

impl Folder {
    /// Opens an output folder of `analyze` or `plan` (0.2.1 or later: it needs the run record
    /// and the class maps those write).
    pub fn open(out: &Path, photo_dirs: Vec<PathBuf>, engine: BackendChoice) -> anyhow::Result<Folder> {
        let record = crate::record::read(out)?;
        let summary_path = out.join("summary.json");
        let bytes = crate::fsio::read_regular(&summary_path, 1 << 30, "a summary is small")
            .map_err(|e| anyhow::anyhow!("{}: {e}; is {} an analyze or plan output folder?", summary_path.display(), out.display()))?;
        let summary: Summary = serde_json::from_slice(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", summary_path.display()))?;
        let mut reports = BTreeMap::new();
        for row in summary.rows.iter().filter(|r| r.status != "failed") {
            let Some(name) = &row.output else { continue };
            let path = out.join(format!("{name}.json"));
            let r: Report = crate::fsio::read_regular(&path, 64 << 20, "a report is small")
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .ok_or_else(|| anyhow::anyhow!("{}: missing or unreadable; run the analysis again", path.display()))?;
            reports.insert(name.clone(), r);
        }
        let patient_of: HashMap<String, String> = record
            .photos
            .iter()
            .filter_map(|(n, p)| Some((n.clone(), p.patient.clone()?)))
            .filter(|(n, _)| reports.contains_key(n))
            .collect();
        let patients: std::collections::BTreeSet<&String> = patient_of.values().collect();
        let ids = crate::clinic::patient_ids(patients.iter().map(|p| p.as_str()));
        let page_ids = patients.into_iter().cloned().zip(ids).collect();
        let mut f = Folder {
            out: out.to_path_buf(),
            record,
            summary,
            reports,
            patient_of,
            page_ids,
            index_rows: BTreeMap::new(),
            photo_dirs,
            by_sha: None,
            jpeg_cache: Vec::new(),
            model: None,
            engine,
        };
        if f.record.plan.is_some() {
            for patient in f.page_ids.keys().cloned().collect::<Vec<_>>() {
                let (r, photos) = f.plan_patient(&patient);
                let row = crate::clinic::index_row(&f.page_ids[&patient], &r, &photos);
                f.index_rows.insert(patient, row);
            }
        }
        Ok(f)
    }

    pub fn out(&self) -> &Path {
        &self.out
    }

    /// Whether output `name` is a photo of this folder (the only names the API accepts).
    pub fn knows(&self, name: &str) -> bool {
        self.reports.contains_key(name)
    }

    /// Whether `patients/ID.html` is one of this folder's patient pages.
    pub fn knows_page(&self, id: &str) -> bool {
        self.page_ids.values().any(|v| v == id)
    }

    /// The list the page starts from.
    pub fn state(&self) -> serde_json::Value {
        let photos: Vec<PhotoSummary> = self.reports.iter().map(|(n, r)| photo_summary(n, r)).collect();
        let patients: Vec<PatientSummary> =
            if self.record.plan.is_some() { self.page_ids.keys().map(|p| self.patient_summary(p)).collect() } else { Vec::new() };
        let classes: Vec<serde_json::Value> = Class::ALL
            .iter()
            .map(|&c| {
                let [r, g, b] = crate::overlay::colour(c);
                serde_json::json!({ "id": c as u8, "name": c.name(), "colour": format!("#{r:02x}{g:02x}{b:02x}") })
            })
            .collect();
        let failed: Vec<&SummaryRow> = self.summary.rows.iter().filter(|r| r.status == "failed").collect();
        serde_json::json!({
            "folder": crate::fsio::path_text(&self.out),
            "kind": if self.record.plan.is_some() { "plan" } else { "analyze" },
            "model_version": self.record.model_version,
            "scalpmap_version": env!("CARGO_PKG_VERSION"),
            "classes": classes,
            "views": View::ALL.iter().map(|v| v.name()).collect::<Vec<_>>(),
            "photos": photos,
            "patients": patients,
            "failed": failed.iter().map(|r| serde_json::json!({"file": r.file, "error": r.error})).collect::<Vec<_>>(),
        })
    }

    fn patient_summary(&self, patient: &str) -> PatientSummary {
        let row = &self.index_rows[patient];
        let mut photos: Vec<String> = self.patient_of.iter().filter(|(_, p)| p.as_str() == patient).map(|(n, _)| n.clone()).collect();
        photos.sort();
        PatientSummary {
            patient: patient.to_string(),
            page: row.page.clone(),
            photos,
            percent: row.percent,
            area_to_cover_cm2: row.area,
            stage: row.stage.clone(),
            sessions: row.sessions,
            reviewed: row.reviewed,
        }
    }

    /// One photo for the editor: its report's numbers, the model's map and the current one
    /// (base64, a class id per cell), and its saved review.
    pub fn photo(&self, name: &str) -> Result<serde_json::Value, ApiError> {
        let r = self.reports.get(name).ok_or_else(|| ApiError::new(404, "no such photo in this folder"))?;
        let (w, h) = (r.analysis.width, r.analysis.height);
        let model = self.model_map(name, w, h)?;
        let saved = correction::load_valid(&self.out, name, &r.input.sha256, w, h);
        let current = saved.as_ref().map(|k| &k.map).unwrap_or(&model);
        let b64 = |m: &ClassMap| base64::engine::general_purpose::STANDARD.encode(&m.data);
        Ok(serde_json::json!({
            "summary": photo_summary(name, r),
            "patient": self.patient_of.get(name),
            "width": w,
            "height": h,
            "model": b64(&model),
            "current": b64(current),
            "correction": saved.as_ref().map(|k| &k.correction),
            "photo_found": self.locate(name).is_some(),
        }))
    }

    fn model_map(&self, name: &str, w: usize, h: usize) -> Result<ClassMap, ApiError> {
        let path = self.out.join(format!("{name}.mask.png"));
        let m = crate::fsio::read_regular(&path, 64 << 20, "a class map is small").ok().and_then(|b| correction::read_map_png(&b));
        match m {
            Some(m) if m.width == w && m.height == h => Ok(m),
            _ => Err(ApiError::new(
                409,
                format!(
                    "{} is missing or not this photo's class map: analyse the photos again with scalpmap 0.2.1 or later",
                    path.display()
                ),
            )),
        }
    }

    /// The photo's file and bytes: at its recorded path if its bytes are still the analysed
    /// ones, else found by SHA-256 in the `--photos` folders (read again and checked, since a
    /// file may change after the folders were hashed). One read and one hash per call.
    fn locate(&self, name: &str) -> Option<(PathBuf, Vec<u8>)> {
        let sha = &self.reports.get(name)?.input.sha256;
        let recorded = self.record.photos.get(name).and_then(|p| p.path.as_ref()).map(PathBuf::from);
        let indexed = self.by_sha.as_ref().and_then(|m| m.get(sha).cloned());
        recorded.into_iter().chain(indexed).find_map(|p| {
            let bytes = self.read_photo(&p)?;
            (&sha256_hex(&bytes) == sha).then_some((p, bytes))
        })
    }

    fn read_photo(&self, path: &Path) -> Option<Vec<u8>> {
        crate::photo::read_file(path, self.record.max_pixels).ok()
    }

    /// Hashes the photos under the `--photos` folders once, when a photo is first missed.
    fn index_photo_dirs(&mut self) {
        if self.by_sha.is_some() || self.photo_dirs.is_empty() {
            return;
        }
        let (found, _) = crate::batch::collect_inputs(&self.photo_dirs);
        let map = found.into_iter().filter_map(|p| Some((sha256_hex(&self.read_photo(&p)?), p))).collect();
        self.by_sha = Some(map);
    }

    fn photo_bytes(&mut self, name: &str) -> Result<(PathBuf, Vec<u8>), ApiError> {
        if let Some(found) = self.locate(name) {
            return Ok(found);
        }
        self.index_photo_dirs();
        self.locate(name).ok_or_else(|| {
            let at = self.record.photos.get(name).and_then(|p| p.path.clone()).unwrap_or_else(|| "an unrecorded path (--anonymize)".into());
            ApiError::new(
                409,
                format!("the photo is no longer at {at} with the bytes that were analysed; start review with --photos FOLDER to find it"),
            )
        })
    }

    /// The photo upright, at most DISPLAY_MAX_SIDE on its long side, as a JPEG without any
    /// metadata (no EXIF, no GPS); the overlay when the photo cannot be found (`false`).
    pub fn display_jpeg(&mut self, name: &str) -> Result<(Vec<u8>, bool), ApiError> {
        if !self.knows(name) {
            return Err(ApiError::new(404, "no such photo in this folder"));
        }
        if let Some((_, j)) = self.jpeg_cache.iter().find(|(n, _)| n == name) {
            return Ok((j.clone(), true));
        }
        let Ok((path, bytes)) = self.photo_bytes(name) else {
            let overlay = std::fs::read(self.out.join(format!("{name}.overlay.png")))
                .map_err(|e| ApiError::new(404, format!("neither the photo nor its overlay can be read ({e})")))?;
            return Ok((overlay, false));
        };
        let photo = crate::photo::decode(&bytes, &path, self.record.max_pixels).map_err(|e| ApiError::new(500, e.to_string()))?;
        let img = image::DynamicImage::ImageRgb8(photo.image);
        let img = if img.width().max(img.height()) > DISPLAY_MAX_SIDE { img.thumbnail(DISPLAY_MAX_SIDE, DISPLAY_MAX_SIDE) } else { img };
        let mut buf = Cursor::new(Vec::new());
        img.to_rgb8().write_to(&mut buf, image::ImageFormat::Jpeg).map_err(|e| ApiError::new(500, e.to_string()))?;
        if self.jpeg_cache.len() >= PHOTO_CACHE {
            self.jpeg_cache.remove(0);
        }
        self.jpeg_cache.push((name.to_string(), buf.get_ref().clone()));
        Ok((buf.into_inner(), true))
    }

    /// Saves a review of `name`: the corrected map and its JSON (each atomically; the JSON last,
    /// naming the map's SHA-256), keeps the model's report as `NAME.model.json` the first time,
    /// analyses the photo again on the corrected map, rewrites its report, overlay and the
    /// summary, and plans its patient again. Returns the photo and its patient as the page shows them.
    pub fn save(&mut self, name: &str, req: &SaveRequest) -> Result<serde_json::Value, ApiError> {
        let old = self.reports.get(name).ok_or_else(|| ApiError::new(404, "no such photo in this folder"))?.clone();
        let (w, h) = (old.analysis.width, old.analysis.height);
        let cells = base64::engine::general_purpose::STANDARD
            .decode(req.map.as_bytes())
            .map_err(|_| ApiError::new(400, "the map is not base64"))?;
        if cells.len() != w * h {
            return Err(ApiError::new(400, format!("the map has {} cells; this photo's grid has {w} x {h} = {}", cells.len(), w * h)));
        }
        if cells.iter().any(|&c| c as usize >= Class::COUNT) {
            return Err(ApiError::new(400, "the map holds a value that is not a class (0-4)"));
        }
        let state = ReviewState::parse(&req.state).ok_or_else(|| ApiError::new(400, "state must be 'reviewed' or 'retake'"))?;
        let view = match req.view.as_deref().filter(|v| !v.is_empty()) {
            None => None,
            Some(v) => {
                Some(View::parse(v).ok_or_else(|| ApiError::new(400, format!("unknown view '{v}': top, front, back, left or right")))?)
            }
        };
        let map = ClassMap::new(w, h, cells);
        let model_map = self.model_map(name, w, h)?;
        // Find the photo before anything is written: a save that cannot be applied writes nothing.
        let (path, bytes) = self.photo_bytes(name)?;
        let changes = correction::diff(&model_map, &map);
        let png = correction::map_png(&map)?;
        let previous = correction::load_valid(&self.out, name, &old.input.sha256, w, h);
        let c = Correction {
            schema: CORRECTION_SCHEMA.into(),
            scalpmap_version: env!("CARGO_PKG_VERSION").into(),
            reviewed_at: timestamp_after(previous.as_ref().map(|k| k.correction.reviewed_at.as_str())),
            state,
            view: view.map(|v| v.name().to_string()),
            photo_sha256: old.input.sha256.clone(),
            map_sha256: sha256_hex(&png),
            width: w,
            height: h,
            model_version: self.record.model_version.clone(),
            changed_cells: changes.iter().map(|k| k.cells).sum(),
            changes,
        };
        let json = serde_json::to_vec_pretty(&c).map_err(anyhow::Error::from)?;
        // The analysis runs before anything is written: a photo that cannot be analysed now
        // leaves the folder as it was.
        let corrected = Corrected { map, correction: c };
        let analysis = self.analyse(name, &old, &path, &bytes, &corrected)?;
        // The model's own report, kept once: what the photo said before anyone corrected it.
        let original = self.out.join(format!("{name}.model.json"));
        if old.review.is_none() && !original.exists() {
            write_atomic(&original, &serde_json::to_vec_pretty(&old).map_err(anyhow::Error::from)?)?;
        }
        write_atomic(&correction::map_path(&self.out, name), &png)?;
        write_atomic(&correction::json_path(&self.out, name), &json)?;
        self.commit(name, &old, &path, analysis)?;
        let patient = self.patient_of.get(name).cloned();
        if let Some(p) = &patient {
            self.replan(p)?;
        }
        Ok(serde_json::json!({
            "photo": self.photo(name)?,
            "patient": patient.map(|p| self.patient_summary(&p)),
        }))
    }

    /// The photo analysed again on the corrected map, in memory.
    fn analyse(&mut self, name: &str, old: &Report, path: &Path, bytes: &[u8], corrected: &Corrected) -> Result<Analysis, ApiError> {
        if self.model.is_none() {
            self.model = Some(self.load_model()?);
        }
        let Some((_, seg, settings)) = self.model.as_mut() else { unreachable!("loaded above") };
        // The view the run used (manifest, --view or the name), unless the review sets one.
        let given = self.record.photos.get(name).and_then(|p| p.view.clone()).or_else(|| old.view.clone());
        let mut a = analyze_corrected(seg, bytes, path, given.as_deref(), settings, 0.0, Some(corrected), Some(&old.input.sha256))
            .map_err(|e| ApiError::new(500, e.to_string()))?;
        // The report names the photo as the run did (its path then, or its anonymous id).
        a.report.input.file = old.input.file.clone();
        Ok(a)
    }

    /// Writes the new report, overlay and class map, and the summary.
    fn commit(&mut self, name: &str, old: &Report, path: &Path, a: Analysis) -> Result<(), ApiError> {
        let inputs: HashSet<PathBuf> = path.canonicalize().ok().into_iter().collect();
        crate::batch::write_outputs(&self.out, name, &a, &inputs)?;
        if let Some(row) = self.summary.rows.iter_mut().find(|r| r.output.as_deref() == Some(name)) {
            let status = row.status.clone();
            *row = SummaryRow::ok(old.input.file.clone(), name.to_string(), &a.report);
            row.status = if status == crate::batch::UP_TO_DATE { "ok".into() } else { status };
        }
        write_atomic(&self.out.join("summary.json"), &serde_json::to_vec_pretty(&self.summary).map_err(anyhow::Error::from)?)?;
        write_atomic(&self.out.join("summary.csv"), crate::batch::summary_csv(&self.summary.rows).as_bytes())?;
        self.jpeg_cache.retain(|(n, _)| n != name);
        self.reports.insert(name.to_string(), a.report);
        Ok(())
    }

    /// The model the run used, with the run's settings; refused if it is not the same model.
    fn load_model(&self) -> Result<(LoadedModel, Segmenter, Settings), ApiError> {
        let rec = &self.record;
        let path = (rec.model_source != "embedded").then(|| PathBuf::from(&rec.model_source));
        let loaded = crate::model::load(path.as_deref())?;
        if loaded.contract.model_version != rec.model_version {
            return Err(ApiError::new(
                409,
                format!(
                    "the run used model {} and {} is model {}: review with the scalpmap that made the folder",
                    rec.model_version, loaded.source, loaded.contract.model_version
                ),
            ));
        }
        let engine = backend::init(self.engine).map_err(|e| ApiError::new(500, e.to_string()))?.clone();
        let seg = Segmenter::new(&loaded.bytes, loaded.contract.clone(), 1).map_err(|e| ApiError::new(500, e.to_string()))?;
        let mut s = Settings::new(loaded.info(), engine);
        s.px_per_cm = rec.px_per_cm;
        s.max_pixels = rec.max_pixels;
        s.anonymize = rec.anonymize;
        s.scale_rules = rec.scale_rules.clone();
        s.face_stage = rec.face_stage;
        Ok((loaded, seg, s))
    }

    /// A patient's assessment and plan from the current reports, as `plan` drafts them.
    fn plan_patient(&self, patient: &str) -> (crate::report::PatientReport, Vec<PatientPhoto>) {
        let plan = self.record.plan.as_ref().expect("a plan folder");
        let mut photos: Vec<PatientPhoto> = self
            .patient_of
            .iter()
            .filter(|(_, p)| p.as_str() == patient)
            .filter_map(|(n, _)| Some(PatientPhoto { output: n.clone(), report: self.reports.get(n)?.clone() }))
            .collect();
        photos.sort_by(|x, y| x.report.input.file.cmp(&y.report.input.file));
        let groups = BTreeMap::from([(patient.to_string(), photos)]);
        let mut out = crate::clinic::patient_reports(groups, &plan.given(), &plan.rules, &plan.rules_name, plan.start());
        out.pop().expect("one patient in, one out")
    }

    /// Plans `patient` again and rewrites their report, page and the index.
    fn replan(&mut self, patient: &str) -> Result<(), ApiError> {
        let (r, photos) = self.plan_patient(patient);
        let id = self.page_ids[patient].clone();
        let row = crate::clinic::write_patient(&self.out, &id, &r, &photos)?;
        self.index_rows.insert(patient.to_string(), row);
        let rows: Vec<IndexRow> = self.index_rows.values().cloned().collect();
        let failed: Vec<(String, String)> = self
            .summary
            .rows
            .iter()
            .filter(|r| r.status == "failed")
            .map(|r| (r.file.clone(), r.error.clone().unwrap_or_default()))
            .collect();
        crate::clinic::write_index(&self.out, &rows, &failed)?;
        Ok(())
    }
}

fn photo_summary(name: &str, r: &Report) -> PhotoSummary {
    PhotoSummary {
        name: name.to_string(),
        file: r.input.file.clone(),
        view: r.view.clone(),
        retake: r.quality.retake,
        reasons: r.quality.reasons.clone(),
        review: r.review.as_ref().map(crate::correction::ReviewInfo::label),
        loss_fraction_of_scalp: r.loss_fraction_of_scalp,
        area_to_cover_cm2: r.measurement.areas_cm2.as_ref().map(|a| a.to_cover.value),
    }
}

/// Now, as RFC 3339 UTC to the millisecond, and always after `previous` (two saves within one
/// millisecond still get two times: `--resume` tells reviews apart by it).
fn timestamp_after(previous: Option<&str>) -> String {
    use chrono::{DateTime, SecondsFormat, Utc};
    let mut now: DateTime<Utc> = std::time::SystemTime::now().into();
    if let Some(p) = previous.and_then(|p| DateTime::parse_from_rfc3339(p).ok()) {
        let p = p.with_timezone(&Utc);
        if now <= p {
            now = p + chrono::Duration::milliseconds(1);
        }
    }
    now.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_always_move_forward() {
        let future = "2999-01-01T00:00:00.000Z";
        assert_eq!(timestamp_after(Some(future)), "2999-01-01T00:00:00.001Z");
        let now = timestamp_after(None);
        assert!(now.ends_with('Z') && now.len() == 24, "{now}");
    }
}
