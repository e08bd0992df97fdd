//! `scalpmap-run.json`: what a batch was asked to do, written into its output folder beside the
//! summary, so that `scalpmap review` can analyse a corrected photo and plan its patient again
//! exactly as the run did: the settings that shape a report, where each output's photo was,
//! the view it was given, and (for `plan`) its patient and the rules in effect.
//!
//! Under `--anonymize` no photo path is recorded (review then finds photos by their SHA-256 in
//! a folder it is given), and patients are their anonymous ids.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::rules::{Rules, ScaleRules};

pub const RECORD_NAME: &str = "scalpmap-run.json";
pub const RECORD_SCHEMA: &str = "scalpmap-run/1";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub schema: String,
    pub scalpmap_version: String,
    /// "embedded" or the --model path.
    pub model_source: String,
    pub model_version: String,
    pub px_per_cm: Option<f64>,
    pub max_pixels: u64,
    pub anonymize: bool,
    pub scale_rules: ScaleRules,
    /// Whether side views went through the face stage (records written before it existed: yes,
    /// as the scalpmap that reads them does by default).
    #[serde(default = "yes")]
    pub face_stage: bool,
    /// By output name (`NAME.json`).
    pub photos: BTreeMap<String, RecordedPhoto>,
    /// Present for `plan` runs.
    pub plan: Option<PlanRecord>,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordedPhoto {
    /// The photo's canonical path (None under --anonymize, or when it could not be resolved).
    pub path: Option<String>,
    /// The view the run gave it (manifest or --view); None when it came from the name.
    pub view: Option<String>,
    /// Its patient (`plan` only).
    pub patient: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanRecord {
    pub rules: Rules,
    /// How patient reports name the rules ("default", or the file).
    pub rules_name: String,
    /// The first session's date, YYYY-MM-DD.
    pub start_date: Option<String>,
    /// Scars practitioners marked in the manifest, cm² per patient.
    pub scars: BTreeMap<String, f64>,
    /// Patients' sex as the manifest gave it (absent in records before 0.3.1).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sexes: BTreeMap<String, crate::patient::Sex>,
}

pub fn read(out: &Path) -> anyhow::Result<RunRecord> {
    let path = out.join(RECORD_NAME);
    let bytes = crate::fsio::read_regular(&path, 256 << 20, "a run record is small").map_err(|e| {
        anyhow::anyhow!("{}: {e}; is {} the --out of an analyze or plan run (0.2.1 or later)?", path.display(), out.display())
    })?;
    let r: RunRecord = serde_json::from_slice(&bytes).map_err(|e| anyhow::anyhow!("{}: not a run record ({e})", path.display()))?;
    anyhow::ensure!(r.schema == RECORD_SCHEMA, "{}: schema {} is not {RECORD_SCHEMA}", path.display(), r.schema);
    Ok(r)
}

pub fn write(out: &Path, r: &RunRecord) -> anyhow::Result<()> {
    crate::fsio::write_atomic(&out.join(RECORD_NAME), &serde_json::to_vec_pretty(r)?)
}

impl PlanRecord {
    /// The record of a plan run: what the manifest gave per patient is kept as the two maps the
    /// file holds (`scars` as records before 0.3.1 have it, `sexes` beside it); `given` is the
    /// inverse.
    pub fn new(
        rules: Rules,
        rules_name: String,
        start_date: Option<chrono::NaiveDate>,
        given: &BTreeMap<String, crate::patient::Given>,
    ) -> Self {
        PlanRecord {
            rules,
            rules_name,
            start_date: start_date.map(|d| d.format("%Y-%m-%d").to_string()),
            scars: given.iter().filter_map(|(p, g)| Some((p.clone(), g.scar_cm2?))).collect(),
            sexes: given.iter().filter_map(|(p, g)| Some((p.clone(), g.sex?))).collect(),
        }
    }

    /// What the manifest gave about each patient, as `clinic::patient_reports` takes it.
    pub fn given(&self) -> BTreeMap<String, crate::patient::Given> {
        let mut out: BTreeMap<String, crate::patient::Given> = BTreeMap::new();
        for (p, &cm2) in &self.scars {
            out.entry(p.clone()).or_default().scar_cm2 = Some(cm2);
        }
        for (p, &sex) in &self.sexes {
            out.entry(p.clone()).or_default().sex = Some(sex);
        }
        out
    }

    pub fn start(&self) -> Option<chrono::NaiveDate> {
        self.start_date.as_deref().and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patient::{Given, Sex};

    #[test]
    fn plan_record_keeps_what_the_manifest_gave() {
        let mut given = BTreeMap::new();
        given.insert("a".to_string(), Given { scar_cm2: Some(2.5), sex: None });
        given.insert("b".to_string(), Given { scar_cm2: None, sex: Some(Sex::Female) });
        given.insert("c".to_string(), Given { scar_cm2: Some(1.0), sex: Some(Sex::Male) });
        given.insert("d".to_string(), Given::default());
        let date = chrono::NaiveDate::from_ymd_opt(2026, 12, 2);
        let r = PlanRecord::new(Rules::default(), "default".into(), date, &given);
        assert_eq!(r.start_date.as_deref(), Some("2026-12-02"));
        assert_eq!(r.start(), date);
        assert_eq!(r.scars.keys().collect::<Vec<_>>(), ["a", "c"]);
        assert_eq!(r.sexes.keys().collect::<Vec<_>>(), ["b", "c"]);
        // A patient given nothing leaves no trace; everyone else comes back as given.
        given.remove("d");
        assert_eq!(r.given(), given);
        // Through the file and back.
        let back: PlanRecord = serde_json::from_slice(&serde_json::to_vec(&r).unwrap()).unwrap();
        assert_eq!(back.given(), given);
    }
}
