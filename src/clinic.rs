//! From an analysed batch to patients: the photos grouped per patient, each patient's views
//! fused and a plan drafted, and the outputs written atomically: `patients/ID.json` (schema
//! `schemas/patient.schema.json`), `patients/ID.html`, and `index.html` for the batch.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;

use base64::Engine;
use chrono::NaiveDate;

use crate::fsio::write_atomic;
use crate::html::{self, IndexRow, Picture};
use crate::patient::{fuse_given, Given, PatientPhoto};
use crate::plan::plan;
use crate::report::{PatientReport, PATIENT_SCHEMA};
use crate::rules::Rules;

/// A file-name-safe patient id: letters, digits, `-`, `_` and `.` kept, others `_`.
pub fn safe_id(id: &str) -> String {
    let s: String = id.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
    let s = crate::fsio::clip(&s, crate::fsio::MAX_STEM_BYTES).to_string();
    if s.is_empty() || s.starts_with('.') {
        format!("p{s}")
    } else {
        s
    }
}

/// Fuses and plans every patient; `given` holds what practitioners gave about patients (marked
/// scars, sex).
pub fn patient_reports(
    groups: BTreeMap<String, Vec<PatientPhoto>>,
    given: &BTreeMap<String, Given>,
    rules: &Rules,
    rules_name: &str,
    start: Option<NaiveDate>,
) -> Vec<(PatientReport, Vec<PatientPhoto>)> {
    groups
        .into_iter()
        .map(|(patient, photos)| {
            let assessment = fuse_given(&photos, rules, given.get(&patient).unwrap_or(&Given::default()));
            let plan = plan(&assessment, rules, start);
            let r = PatientReport {
                schema: PATIENT_SCHEMA.into(),
                scalpmap_version: env!("CARGO_PKG_VERSION").into(),
                patient,
                rules: rules_name.into(),
                assessment,
                plan,
            };
            (r, photos)
        })
        .collect()
}

/// The overlay of a photo as a JPEG data URI, at most `max_side` pixels on its long side.
fn overlay_uri(out: &Path, output: &str, max_side: u32) -> Option<String> {
    let img = image::open(out.join(format!("{output}.overlay.png"))).ok()?;
    let img = if img.width().max(img.height()) > max_side { img.thumbnail(max_side, max_side) } else { img };
    let mut buf = Cursor::new(Vec::new());
    img.to_rgb8().write_to(&mut buf, image::ImageFormat::Jpeg).ok()?;
    Some(format!("data:image/jpeg;base64,{}", base64::engine::general_purpose::STANDARD.encode(buf.get_ref())))
}

/// Each patient's page id (`patients/ID.json`), unique in the order given: the ids
/// [`write`] uses, which `scalpmap review` computes again to rewrite one patient.
pub fn patient_ids<'a>(patients: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    // "a b" and "a_b" share a safe id, and "a_b-2" is one a suffix would make: every page unique.
    let mut taken = std::collections::HashSet::new();
    patients.into_iter().map(|p| crate::fsio::unique_name(&mut taken, &safe_id(p))).collect()
}

/// Writes each patient's JSON and HTML under `out/patients/`, and `out/index.html`.
pub fn write(out: &Path, reports: &[(PatientReport, Vec<PatientPhoto>)], failed: &[(String, String)]) -> anyhow::Result<Vec<IndexRow>> {
    let ids = patient_ids(reports.iter().map(|(r, _)| r.patient.as_str()));
    let mut rows = Vec::new();
    for ((r, photos), id) in reports.iter().zip(&ids) {
        rows.push(write_patient(out, id, r, photos)?);
    }
    write_index(out, &rows, failed)?;
    Ok(rows)
}

/// Writes one patient's `patients/ID.json` and `patients/ID.html`; returns their index row.
pub fn write_patient(out: &Path, id: &str, r: &PatientReport, photos: &[PatientPhoto]) -> anyhow::Result<IndexRow> {
    let dir = out.join("patients");
    std::fs::create_dir_all(&dir).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    let pictures: Vec<Picture> = photos
        .iter()
        .map(|p| {
            let review = p.report.review.as_ref().map(|k| format!(", {}", k.label())).unwrap_or_default();
            Picture {
                caption: format!("{} ({}{review})", p.report.input.file, p.report.view.as_deref().unwrap_or("view unknown")),
                data_uri: overlay_uri(out, &p.output, 640),
            }
        })
        .collect();
    write_atomic(&dir.join(format!("{id}.json")), &serde_json::to_vec_pretty(r)?)?;
    write_atomic(&dir.join(format!("{id}.html")), html::patient_page(r, &pictures, photos).as_bytes())?;
    Ok(index_row(id, r, photos))
}

/// A patient's row in the batch index.
pub fn index_row(id: &str, r: &PatientReport, photos: &[PatientPhoto]) -> IndexRow {
    let a = &r.assessment;
    IndexRow {
        patient: r.patient.clone(),
        page: format!("patients/{id}.html"),
        photos: photos.len(),
        percent: a.hair_loss.percent,
        severity: a.hair_loss.severity.clone(),
        area: a.area_to_cover_cm2,
        stage: a.stage.label(),
        sessions: r.plan.sessions,
        warnings: a.warnings.len() + r.plan.warnings.len(),
        reviewed: photos.iter().filter(|p| p.report.review.is_some()).count(),
    }
}

/// Writes `out/index.html` for these patients and failed photos.
pub fn write_index(out: &Path, rows: &[IndexRow], failed: &[(String, String)]) -> anyhow::Result<()> {
    write_atomic(&out.join("index.html"), html::index_page(rows, failed).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patient_pages_are_unique_when_safe_ids_collide() {
        let ids = patient_ids(["a b", "a_b", "a_b-2", "A_B"]);
        assert_eq!(ids, ["a_b", "a_b-2", "a_b-2-2", "A_B-3"]);
    }

    #[test]
    fn ids_are_safe_file_names() {
        assert_eq!(safe_id("anna-2026_01"), "anna-2026_01");
        assert_eq!(safe_id("../etc/passwd"), "p.._etc_passwd");
        assert_eq!(safe_id("Zoë K"), "Zo__K");
        assert_eq!(safe_id(""), "p");
    }
}
