//! `scalpmap plan`: photos grouped per patient (a manifest or the folders), analysed as one batch,
//! then fused, planned and written as patient reports, pages and an index.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use scalpmap::batch;
use scalpmap::clinic;
use scalpmap::model;
use scalpmap::patient::{given_per_patient, patient_from_folders, read_manifest, Given, PatientPhoto};
use scalpmap::report::Failure;
use scalpmap::rules::Rules;

use super::messages::{count, say};
use super::{check_paths_exist, run_batch, BatchJob, PlanArgs, EXIT_SOME_FAILED, EXIT_USAGE};

pub(super) fn plan_cmd(a: PlanArgs) -> i32 {
    match plan_inner(a) {
        Ok(code) => code,
        Err(e) => {
            say!("scalpmap plan: {e:#}");
            EXIT_USAGE
        }
    }
}

/// A patient's stable anonymous id (`--anonymize`).
fn anonymous_patient(patient: &str) -> String {
    format!("anon-{}", &scalpmap::analyze::sha256_hex(patient.as_bytes())[..12])
}

fn plan_inner(a: PlanArgs) -> anyhow::Result<i32> {
    // Stage cut points fit for the model's maps travel in its metadata; a clinic's file still wins.
    let model = model::load(a.analyze.model.as_deref())?;
    // Held until the patient pages and the index are written too.
    let _lock = scalpmap::fsio::OutLock::acquire(&a.analyze.out)?;
    let cuts = model.contract.norwood_top_upper.clone();
    let from_model = |name: String| match &cuts {
        Some(_) => format!("{name}, with model {}'s Norwood cut points unless set there", model.contract.model_version),
        None => name,
    };
    let (rules, rules_name) = match &a.rules {
        Some(p) => (Rules::load_over_model(p, cuts.as_deref())?, from_model(p.display().to_string())),
        None => (Rules::layered(cuts.as_deref(), "", "default")?, from_model("default".to_string())),
    };
    // Patients and views from the manifest, or from the folders.
    let mut patient_of: HashMap<PathBuf, String> = HashMap::new();
    let mut views: HashMap<PathBuf, String> = HashMap::new();
    // What the practitioner gave per patient: marked scars (the largest value on the patient's
    // rows) and sex.
    let mut given: BTreeMap<String, Given> = BTreeMap::new();
    let (inputs, pre_failures) = match &a.manifest {
        Some(m) => {
            let rows = read_manifest(m).map_err(|e| anyhow::anyhow!(e))?;
            anyhow::ensure!(!rows.is_empty(), "{}: the manifest lists no photos", m.display());
            given = given_per_patient(&rows, &m.display().to_string()).map_err(|e| anyhow::anyhow!(e))?;
            let mut inputs = Vec::new();
            let mut failures = Vec::new();
            let home = m.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")).canonicalize()?;
            // Each photo belongs to one patient, once: keyed by its canonical path.
            let mut owner: HashMap<PathBuf, String> = HashMap::new();
            for r in rows {
                let fail = |why: String| {
                    let f = scalpmap::fsio::path_text(&r.file);
                    Failure { error: format!("{f}: {why}"), file: f }
                };
                let Ok(canonical) = r.file.canonicalize().map_err(|_| ()).and_then(|c| if r.file.is_file() { Ok(c) } else { Err(()) })
                else {
                    failures.push(fail("listed in the manifest but not found".into()));
                    continue;
                };
                if !a.allow_any_path && !canonical.starts_with(&home) {
                    failures.push(fail(format!(
                        "outside the manifest's folder {}: refused (move the photo there, or pass --allow-any-path)",
                        home.display()
                    )));
                    continue;
                }
                match owner.get(&canonical) {
                    Some(p) if *p == r.patient => continue,
                    Some(p) => {
                        // With --anonymize no patient's name may reach the summary.
                        let who = if a.analyze.anonymize { "two patients".to_string() } else { format!("patients {p} and {}", r.patient) };
                        failures.push(fail(format!("listed for {who}: a photo belongs to one patient; fix the manifest")));
                        continue;
                    }
                    None => {
                        owner.insert(canonical, r.patient.clone());
                    }
                }
                if let Some(v) = r.view {
                    views.insert(r.file.clone(), v);
                }
                patient_of.insert(r.file.clone(), r.patient);
                inputs.push(r.file);
            }
            (inputs, failures)
        }
        None => {
            anyhow::ensure!(!a.analyze.paths.is_empty(), "give photos or folders, or --manifest");
            check_paths_exist(&a.analyze.paths)?;
            let (inputs, failures) = batch::collect_inputs(&a.analyze.paths);
            for p in &inputs {
                patient_of.insert(p.clone(), patient_from_folders(p, &a.analyze.paths));
            }
            (inputs, failures)
        }
    };
    // Reports name their input by path (or its hash with --anonymize): map back to the inputs.
    let key = |p: &PathBuf| if a.analyze.anonymize { batch::anonymous_name(p) } else { scalpmap::fsio::path_text(p) };
    let by_key: HashMap<String, PathBuf> = inputs.iter().map(|p| (key(p), p.clone())).collect();
    let prefixes: HashMap<PathBuf, String> = patient_of.iter().map(|(p, id)| (p.clone(), clinic::safe_id(id))).collect();
    // The clinic's scale rules (head breadth, marker size) apply to the analysis too.
    let job = BatchJob {
        views,
        name_prefixes: prefixes,
        scale_rules: rules.scale.clone(),
        keep_reports: true,
        ..BatchJob::new(inputs, pre_failures)
    };
    let (summary, reports) = run_batch(&a.analyze, &model, job)?;
    let outputs: HashMap<&str, &str> = summary.rows.iter().filter_map(|r| Some((r.file.as_str(), r.output.as_deref()?))).collect();
    let mut groups: BTreeMap<String, Vec<PatientPhoto>> = BTreeMap::new();
    for report in reports {
        let Some(path) = by_key.get(&report.input.file) else { continue };
        let Some(output) = outputs.get(report.input.file.as_str()) else { continue };
        let mut patient = patient_of.get(path).cloned().unwrap_or_else(|| "unknown".into());
        if a.analyze.anonymize {
            patient = anonymous_patient(&patient);
        }
        groups.entry(patient).or_default().push(PatientPhoto { output: output.to_string(), report });
    }
    for photos in groups.values_mut() {
        photos.sort_by(|x, y| x.report.input.file.cmp(&y.report.input.file));
    }
    if a.analyze.anonymize {
        given = given.into_iter().map(|(p, v)| (anonymous_patient(&p), v)).collect();
    }
    // What `scalpmap review` needs to plan a patient again: their photos and these rules.
    let mut record = scalpmap::record::read(&a.analyze.out)?;
    for (patient, photos) in &groups {
        for p in photos {
            if let Some(r) = record.photos.get_mut(&p.output) {
                r.patient = Some(patient.clone());
            }
        }
    }
    record.plan = Some(scalpmap::record::PlanRecord::new(rules.clone(), rules_name.clone(), a.start_date, &given));
    scalpmap::record::write(&a.analyze.out, &record)?;
    let reports = clinic::patient_reports(groups, &given, &rules, &rules_name, a.start_date);
    let failed: Vec<(String, String)> =
        summary.rows.iter().filter(|r| r.status == "failed").map(|r| (r.file.clone(), r.error.clone().unwrap_or_default())).collect();
    let rows = clinic::write(&a.analyze.out, &reports, &failed)?;
    say!("planned {}; open {}", count(rows.len(), "patient", "patients"), a.analyze.out.join("index.html").display());
    Ok(if summary.failed > 0 { EXIT_SOME_FAILED } else { 0 })
}
