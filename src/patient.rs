//! Patients: photos grouped per person (a folder per patient, or a manifest CSV
//! `patient,view,file`, optionally with what the practitioner knows: `scar_cm2`, `sex`), their
//! views combined with the SALT weights into a percent hair loss, a severity band and an area to
//! cover with its interval, and the stage ([`crate::stage`]). Pure functions of the per-photo
//! reports and the rules.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::measure::{Interval, SkinTone};
use crate::report::Report;
use crate::rules::Rules;
pub use crate::stage::{stage, Sex, Stage};
use crate::synth::scene::View;

/// One manifest row: which patient a photo belongs to, its view if known, and what the
/// practitioner gave about the patient: the area of scars they marked, the patient's sex.
#[derive(Clone, Debug, PartialEq)]
pub struct ManifestRow {
    pub patient: String,
    pub view: Option<String>,
    pub file: PathBuf,
    pub scar_cm2: Option<f64>,
    pub sex: Option<Sex>,
}

/// What the practitioner gave about one patient (over all of the patient's manifest rows).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Given {
    /// Scars marked, cm² (the largest value given on the patient's rows).
    pub scar_cm2: Option<f64>,
    pub sex: Option<Sex>,
}

/// Each patient's [`Given`] from the manifest rows; a patient given two different sexes is an
/// error that names the patient (a mistyped row must not pick the scale silently).
pub fn given_per_patient(rows: &[ManifestRow], name: &str) -> Result<BTreeMap<String, Given>, String> {
    let mut out: BTreeMap<String, Given> = BTreeMap::new();
    for r in rows {
        let g = out.entry(r.patient.clone()).or_default();
        if let Some(cm2) = r.scar_cm2 {
            g.scar_cm2 = Some(g.scar_cm2.map_or(cm2, |a| a.max(cm2)));
        }
        match (g.sex, r.sex) {
            (Some(a), Some(b)) if a != b => {
                return Err(format!("{name}: patient {} is given as both male and female; fix the sex column", r.patient))
            }
            (None, Some(b)) => g.sex = Some(b),
            _ => {}
        }
    }
    out.retain(|_, g| *g != Given::default());
    Ok(out)
}

/// Reads a manifest CSV with the header `patient,view,file` (and optionally `scar_cm2`: scars the
/// practitioner marked on that patient, in cm²; `sex`: m or f, which sets the stage's scale);
/// files are relative to the manifest's folder; an empty view or sex means unknown.
pub fn read_manifest(path: &Path) -> Result<Vec<ManifestRow>, String> {
    let bytes = crate::fsio::read_regular(path, MAX_MANIFEST_BYTES, "a manifest of a million photos is about 60 MB")
        .map_err(|e| format!("{}: cannot read the manifest ({e})", path.display()))?;
    parse_manifest(&bytes, path.parent().unwrap_or(Path::new(".")), &path.display().to_string())
}

pub fn parse_manifest(bytes: &[u8], base: &Path, name: &str) -> Result<Vec<ManifestRow>, String> {
    let mut rdr = csv::ReaderBuilder::new().trim(csv::Trim::All).flexible(false).from_reader(bytes);
    let header = rdr.headers().map_err(|e| format!("{name}: {e}"))?.clone();
    let col = |n: &str| header.iter().position(|h| h.eq_ignore_ascii_case(n));
    let scar_col = col("scar_cm2");
    let sex_col = col("sex");
    let (Some(p), Some(v), Some(f)) = (col("patient"), col("view"), col("file")) else {
        return Err(format!(
            "{name}: the header must name the columns patient,view,file (found: {})",
            header.iter().collect::<Vec<_>>().join(",")
        ));
    };
    let mut rows = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| format!("{name}: line {line}: {e}"))?;
        let patient = rec.get(p).unwrap_or("").to_string();
        let file = rec.get(f).unwrap_or("");
        if patient.is_empty() || file.is_empty() {
            return Err(format!("{name}: line {line}: patient and file must not be empty"));
        }
        let view = match rec.get(v).unwrap_or("") {
            "" => None,
            s => Some(
                View::parse(&s.to_ascii_lowercase())
                    .ok_or_else(|| format!("{name}: line {line}: unknown view '{s}' (top, front, back, left, right)"))?
                    .name()
                    .to_string(),
            ),
        };
        let scar_cm2 = match scar_col.and_then(|c| rec.get(c)).unwrap_or("") {
            "" => None,
            s => Some(
                s.parse::<f64>()
                    .ok()
                    .filter(|a| a.is_finite() && *a >= 0.0 && *a <= 1000.0)
                    .ok_or_else(|| format!("{name}: line {line}: scar_cm2 '{s}' must be an area in cm² from 0 to 1000"))?,
            ),
        };
        let sex = match sex_col.and_then(|c| rec.get(c)).unwrap_or("") {
            "" => None,
            s => Some(Sex::parse(s).ok_or_else(|| format!("{name}: line {line}: sex '{s}' must be m or f (or empty: unknown)"))?),
        };
        rows.push(ManifestRow { patient, view, file: base.join(file), scar_cm2, sex });
    }
    Ok(rows)
}

/// The patient a photo belongs to without a manifest: the first folder below the input folder
/// it was found in; a photo directly in an input folder, or named as a file, is its own patient
/// (its file stem).
pub fn patient_from_folders(photo: &Path, roots: &[PathBuf]) -> String {
    for root in roots {
        if let Ok(rel) = photo.strip_prefix(root) {
            let parts: Vec<_> = rel.components().collect();
            if parts.len() >= 2 {
                return crate::fsio::name_text(parts[0].as_os_str());
            }
        }
    }
    photo.file_stem().map(crate::fsio::name_text).unwrap_or_else(|| "patient".into())
}

/// One analysed photo of a patient.
#[derive(Clone, Debug)]
pub struct PatientPhoto {
    /// Base name of its outputs (NAME.json, NAME.overlay.png).
    pub output: String,
    pub report: Report,
}

/// A view's numbers in the patient report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ViewRow {
    pub file: String,
    pub output: String,
    pub view: Option<String>,
    /// SALT weight, percent (0 for front and unknown views).
    pub salt_weight: f64,
    pub hair: f64,
    pub thinning: f64,
    pub bare: f64,
    pub scar: f64,
    /// (thinning + bare + scar) / scalp.
    pub to_cover_fraction: f64,
    /// Measured area to cover in this photo when it has a scale.
    pub measured_to_cover_cm2: Option<Interval>,
    pub scale_method: Option<String>,
    pub retake: bool,
    /// The stage this view alone suggests ("Norwood III vertex", "Ludwig II").
    pub stage: String,
    /// "reviewed 2026-12-01" (or "retake ...") when the map is a practitioner's correction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HairLoss {
    /// SALT-style percent of the scalp without hair (thinning counted at the rules' weight);
    /// `None` when no photo of the patient showed scalp (severity "unknown").
    pub percent: Option<f64>,
    pub severity: String,
    /// Sum of the SALT weights of the views present, percent.
    pub weight_covered: f64,
    pub method: String,
}

/// The combined numbers of a patient's views.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fusion {
    pub views: Vec<ViewRow>,
    pub missing_views: Vec<String>,
    pub hair_loss: HairLoss,
    /// thinning / bare / scar shares of the scalp, SALT-weighted.
    pub thinning_fraction: f64,
    pub bare_fraction: f64,
    pub scar_fraction: f64,
    /// `None` when nothing gives it (no SALT view and no scale): `area_method` says why.
    pub area_to_cover_cm2: Option<Interval>,
    pub area_method: String,
    pub stage: Stage,
    pub skin: Option<SkinTone>,
    /// Mean model density over hair and thinning, hairs/cm², across views.
    pub density_on_hair: Option<f64>,
    pub density_on_thinning: Option<f64>,
    pub front_loss: Option<f64>,
    pub warnings: Vec<String>,
}

const SALT_VIEWS: [&str; 4] = ["top", "back", "left", "right"];

/// The largest manifest read.
const MAX_MANIFEST_BYTES: u64 = 256 << 20;

fn share(r: &Report, name: &str) -> f64 {
    r.fraction_of_scalp(name).unwrap_or(0.0)
}

fn view_row(p: &PatientPhoto, rules: &Rules, sex: Option<Sex>) -> ViewRow {
    let r = &p.report;
    let (hair, thinning, bare, scar) = (share(r, "hair"), share(r, "thinning"), share(r, "bare"), share(r, "scar"));
    ViewRow {
        file: r.input.file.clone(),
        output: p.output.clone(),
        view: r.view.clone(),
        salt_weight: r.view.as_deref().map(|v| rules.views.weight(v)).unwrap_or(0.0),
        hair,
        thinning,
        bare,
        scar,
        to_cover_fraction: thinning + bare + scar,
        measured_to_cover_cm2: r.measurement.areas_cm2.as_ref().map(|a| a.to_cover),
        scale_method: r.measurement.scale.as_ref().map(|s| s.method.clone()),
        retake: r.quality.retake,
        stage: match r.view.as_deref() {
            // The scales are defined on the top, front and crown; a side view alone says nothing.
            Some(v @ ("top" | "front" | "back")) => {
                let alone = BTreeMap::from([(v.to_string(), thinning + bare + scar)]);
                stage(&alone, thinning, thinning + bare + scar, rules, sex).label()
            }
            _ => "not staged from this view".into(),
        },
        review: r.review.as_ref().map(crate::correction::ReviewInfo::label),
    }
}

fn mean(v: impl Iterator<Item = f64>) -> Option<f64> {
    let (mut s, mut n) = (0.0, 0usize);
    for x in v {
        s += x;
        n += 1;
    }
    (n > 0).then(|| s / n as f64)
}

/// Severity band name for a percent, from the rules' upper bounds.
pub fn severity(percent: f64, rules: &Rules) -> String {
    let l = &rules.loss;
    let p = percent.round();
    l.severity_upper
        .iter()
        .position(|&u| p <= u)
        .map(|i| l.severity_names[i].clone())
        .unwrap_or_else(|| l.severity_names.last().cloned().unwrap_or_default())
}

/// Per-view means of a field over the rows of each view (several photos of one view average).
fn by_view(rows: &[ViewRow], f: impl Fn(&ViewRow) -> f64) -> BTreeMap<String, f64> {
    let mut acc: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    for r in rows {
        if let Some(v) = &r.view {
            let e = acc.entry(v.clone()).or_insert((0.0, 0));
            e.0 += f(r);
            e.1 += 1;
        }
    }
    acc.into_iter().map(|(k, (s, n))| (k, s / n as f64)).collect()
}

/// Combines a patient's photos, nothing given about the patient.
pub fn fuse(photos: &[PatientPhoto], rules: &Rules) -> Fusion {
    fuse_given(photos, rules, &Given::default())
}

/// Combines a patient's photos with what the practitioner gave: the sex sets the stage's scale,
/// marked scars are added ([`add_marked_scar`]).
pub fn fuse_given(photos: &[PatientPhoto], rules: &Rules, given: &Given) -> Fusion {
    let mut f = fuse_photos(photos, rules, given.sex);
    if let Some(cm2) = given.scar_cm2 {
        add_marked_scar(&mut f, cm2, rules);
    }
    f
}

fn fuse_photos(photos: &[PatientPhoto], rules: &Rules, sex: Option<Sex>) -> Fusion {
    let all_rows: Vec<ViewRow> = photos.iter().map(|p| view_row(p, rules, sex)).collect();
    // A photo in which no scalp was found says nothing about the patient's loss: it is listed,
    // with its retake advice, but no figure is taken from it (a wall is not 100 % bare).
    let (usable, rows): (Vec<&PatientPhoto>, Vec<ViewRow>) =
        photos.iter().zip(&all_rows).filter(|(p, _)| !p.report.quality.no_scalp()).map(|(p, r)| (p, r.clone())).unzip();
    let tw = rules.loss.thinning_weight;
    let loss = |r: &ViewRow| r.bare + r.scar + tw * r.thinning;
    let per_view_loss = by_view(&rows, loss);
    let per_view_cover = by_view(&rows, |r| r.to_cover_fraction);
    let salt: Vec<(&str, f64)> =
        SALT_VIEWS.iter().filter(|v| per_view_loss.contains_key(**v)).map(|v| (*v, rules.views.weight(v))).collect();
    let missing: Vec<String> = SALT_VIEWS.iter().filter(|v| !per_view_loss.contains_key(**v)).map(|v| v.to_string()).collect();
    // `+ 0.0`: an empty f64 sum is -0.0, which must never reach a report.
    let covered: f64 = salt.iter().map(|(_, w)| w).sum::<f64>() + 0.0;
    let mut warnings = Vec::new();
    // SALT-weighted means over the views present, or plain means when no SALT view is known.
    let weighted = |f: &dyn Fn(&ViewRow) -> f64| -> f64 {
        if covered > 0.0 {
            let m = by_view(&rows, f);
            salt.iter().map(|(v, w)| m[*v] * w).sum::<f64>() / covered
        } else {
            mean(rows.iter().map(f)).unwrap_or(0.0)
        }
    };
    let percent = (!rows.is_empty()).then(|| 100.0 * weighted(&loss));
    let method = if covered > 0.0 {
        format!("SALT weights over the views present ({})", salt.iter().map(|(v, w)| format!("{v} {w:.0}")).collect::<Vec<_>>().join(", "))
    } else {
        warnings.push(
            "no top, back, left or right view known: the percent is a plain mean of the photos; name views in the file names or a manifest"
                .into(),
        );
        "plain mean of the photos (no SALT view known)".into()
    };
    if !missing.is_empty() && covered > 0.0 {
        warnings.push(format!(
            "missing views: {}; their share of the area is estimated from the views present and widens the interval",
            missing.join(", ")
        ));
    }
    for (p, r) in photos.iter().zip(&all_rows) {
        if p.report.quality.no_scalp() {
            warnings.push(format!("{}: no scalp found in the photo; it is left out of the plan, retake it", r.file));
        } else if r.retake {
            warnings.push(format!("{}: the photo's quality is poor; a retake is advised", r.file));
        }
    }

    let area = area_to_cover(&per_view_cover, &rows, rules);
    let front_loss = per_view_loss.get("front").copied();
    let cover_t = weighted(&|r: &ViewRow| r.thinning);
    let cover_b = weighted(&|r: &ViewRow| r.bare);
    let cover_s = weighted(&|r: &ViewRow| r.scar);
    let stage = stage(&per_view_cover, cover_t, cover_t + cover_b + cover_s, rules, sex);
    // The skin tone from the photo with the most usable bare skin.
    let skin = usable.iter().filter_map(|p| p.report.measurement.skin.clone()).max_by_key(|s| s.cells);
    Fusion {
        views: all_rows,
        missing_views: missing,
        hair_loss: HairLoss {
            percent,
            severity: percent.map_or_else(|| "unknown".into(), |p| severity(p, rules)),
            weight_covered: covered,
            method,
        },
        thinning_fraction: cover_t,
        bare_fraction: cover_b,
        scar_fraction: cover_s,
        area_to_cover_cm2: area.0,
        area_method: area.1,
        stage,
        skin,
        density_on_hair: mean(usable.iter().filter_map(|p| p.report.density.mean_on_hair_per_cm2)),
        density_on_thinning: mean(usable.iter().filter_map(|p| p.report.density.mean_on_thinning_per_cm2)),
        front_loss,
        warnings,
    }
}

/// Adds the scars a practitioner marked (`cm2`) to a fused patient: while scar detection is off no
/// scar comes from the photos, so these are the scars the plan treats (as a share of a typical
/// scalp, and their area added to the area to cover).
pub fn add_marked_scar(f: &mut Fusion, cm2: f64, rules: &Rules) {
    if cm2 <= 0.0 {
        return;
    }
    f.scar_fraction += cm2 / rules.views.scalp_cm2;
    f.area_to_cover_cm2 = Some(f.area_to_cover_cm2.unwrap_or(Interval::exact(0.0)) + Interval::exact(cm2));
    f.warnings.push(format!("scars marked by the practitioner: {cm2:.1} cm², added to the area to cover"));
}

/// Area to cover: each SALT view's fraction to cover times its share of a typical scalp
/// (DOMAIN: whole scalp 492 ± 31 cm², SALT weights). The interval takes the scalp size at ±2 sd
/// and each fraction ± the rules' uncertainty; a missing view counts from 0 to its whole share,
/// its value the mean of the views present. With no SALT view, the photos' measured areas
/// (when they have a scale) are summed instead.
fn area_to_cover(cover: &BTreeMap<String, f64>, rows: &[ViewRow], rules: &Rules) -> (Option<Interval>, String) {
    let v = &rules.views;
    let u = rules.loss.fraction_uncertainty;
    let (lo_total, total, hi_total) = (v.scalp_cm2 - 2.0 * v.scalp_sd_cm2, v.scalp_cm2, v.scalp_cm2 + 2.0 * v.scalp_sd_cm2);
    let present: Vec<(&str, f64)> = SALT_VIEWS.iter().filter_map(|k| cover.get(*k).map(|f| (*k, *f))).collect();
    if present.is_empty() {
        let measured: Vec<Interval> = rows.iter().filter_map(|r| r.measured_to_cover_cm2).collect();
        if measured.is_empty() {
            return (None, "unknown: no top, back, left or right view and no scale; name the views or give a scale".into());
        }
        let sum = measured.iter().fold(Interval::exact(0.0), |a, b| a + *b);
        return (Some(sum), "sum of the photos' measured areas (no SALT view known)".into());
    }
    let mean_present = present.iter().map(|(_, f)| f).sum::<f64>() / present.len() as f64;
    let mut out = Interval::exact(0.0);
    for k in SALT_VIEWS {
        let w = v.weight(k) / 100.0;
        let part = match cover.get(k) {
            Some(&f) => Interval { value: f * w * total, low: (f - u).max(0.0) * w * lo_total, high: (f + u).min(1.0) * w * hi_total },
            None => Interval { value: mean_present * w * total, low: 0.0, high: w * hi_total },
        };
        out = out + part;
    }
    (Some(out), format!("SALT views x typical scalp {total:.0} cm² (interval: scalp ± 2 sd, fractions ± {u:.2}, missing views 0 to whole)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn views(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn manifest_rows_resolve_files_and_views() {
        let csv = b"patient,view,file\nanna,top,anna/1.jpg\nanna,,anna/2.jpg\nbo , Crown , x.png\n";
        let rows = parse_manifest(csv, Path::new("/clinic"), "m.csv").unwrap();
        assert_eq!(
            rows[0],
            ManifestRow {
                patient: "anna".into(),
                view: Some("top".into()),
                file: PathBuf::from("/clinic/anna/1.jpg"),
                scar_cm2: None,
                sex: None
            }
        );
        assert_eq!(rows[1].view, None);
        assert_eq!((rows[2].patient.as_str(), rows[2].view.as_deref()), ("bo", Some("back")));
        let e = parse_manifest(b"patient,view,file\nanna,sideways,a.jpg\n", Path::new("."), "m.csv").unwrap_err();
        assert!(e.contains("m.csv") && e.contains("line 2") && e.contains("sideways"), "{e}");
        let e = parse_manifest(b"who,file\nanna,a.jpg\n", Path::new("."), "m.csv").unwrap_err();
        assert!(e.contains("patient,view,file"), "{e}");
        let e = parse_manifest(b"patient,view,file\nanna,top\n", Path::new("."), "m.csv").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn a_manifest_may_mark_scars_and_bad_areas_are_refused() {
        let rows = parse_manifest(b"patient,view,file,scar_cm2\nanna,top,a.jpg,12.5\nanna,back,b.jpg,\n", Path::new("."), "m.csv").unwrap();
        assert_eq!((rows[0].scar_cm2, rows[1].scar_cm2), (Some(12.5), None));
        for bad in ["-1", "nan", "lots", "5000"] {
            let csv = format!("patient,view,file,scar_cm2\nanna,top,a.jpg,{bad}\n");
            let e = parse_manifest(csv.as_bytes(), Path::new("."), "m.csv").unwrap_err();
            assert!(e.contains("line 2") && e.contains("scar_cm2"), "{e}");
        }
    }

    #[test]
    fn a_manifest_may_give_the_sex_once_per_patient() {
        let csv = b"patient,view,file,sex,scar_cm2\nanna,top,a.jpg,F,\nanna,back,b.jpg,,8\nbo,top,c.jpg,male,\ncy,top,d.jpg,,\n";
        let rows = parse_manifest(csv, Path::new("."), "m.csv").unwrap();
        assert_eq!(rows.iter().map(|r| r.sex).collect::<Vec<_>>(), [Some(Sex::Female), None, Some(Sex::Male), None]);
        let given = given_per_patient(&rows, "m.csv").unwrap();
        assert_eq!(given["anna"], Given { scar_cm2: Some(8.0), sex: Some(Sex::Female) });
        assert_eq!(given["bo"], Given { scar_cm2: None, sex: Some(Sex::Male) });
        assert!(!given.contains_key("cy"), "nothing given, nothing kept");
        let e = parse_manifest(b"patient,view,file,sex\nanna,top,a.jpg,yes\n", Path::new("."), "m.csv").unwrap_err();
        assert!(e.contains("line 2") && e.contains("sex 'yes'"), "{e}");
        let both = parse_manifest(b"patient,view,file,sex\nanna,top,a.jpg,m\nanna,back,b.jpg,f\n", Path::new("."), "m.csv").unwrap();
        let e = given_per_patient(&both, "m.csv").unwrap_err();
        assert!(e.contains("anna") && e.contains("both"), "{e}");
    }

    #[test]
    fn patients_come_from_the_first_folder_below_the_input() {
        let roots = [PathBuf::from("/in")];
        assert_eq!(patient_from_folders(Path::new("/in/anna/top.jpg"), &roots), "anna");
        assert_eq!(patient_from_folders(Path::new("/in/anna/2026/top.jpg"), &roots), "anna");
        assert_eq!(patient_from_folders(Path::new("/in/bo-top.jpg"), &roots), "bo-top");
        assert_eq!(patient_from_folders(Path::new("/else/c.jpg"), &roots), "c");
    }

    #[test]
    fn severity_bands_follow_salt() {
        let r = Rules::default();
        let cases = [
            (0.0, "none"),
            (0.4, "none"),
            (12.0, "limited"),
            (20.0, "limited"),
            (21.0, "moderate"),
            (49.0, "moderate"),
            (50.0, "severe"),
            (94.0, "severe"),
            (95.0, "very severe"),
            (100.0, "very severe"),
        ];
        for (p, name) in cases {
            assert_eq!(severity(p, &r), name, "{p}");
        }
    }

    #[test]
    fn area_to_cover_uses_salt_shares_and_widens_for_missing_views() {
        let r = Rules::default();
        let all = views(&[("top", 0.5), ("back", 0.25), ("left", 0.0), ("right", 0.0)]);
        let a = area_to_cover(&all, &[], &r).0.unwrap();
        // 0.5 * 40 % * 492 + 0.25 * 24 % * 492
        assert!((a.value - (0.5 * 0.4 + 0.25 * 0.24) * 492.0).abs() < 1e-9, "{a:?}");
        assert!((a.low - ((0.38 * 0.4 + 0.13 * 0.24) * 430.0)).abs() < 1e-9, "{a:?}");
        let b = area_to_cover(&views(&[("top", 0.5)]), &[], &r).0.unwrap();
        assert!((b.value - 0.5 * 492.0).abs() < 1e-9);
        assert!(b.low < a.low && b.high > a.high);
        let (c, m) = area_to_cover(&views(&[("front", 0.5)]), &[], &r);
        assert_eq!(c, None, "unknown, never 0");
        assert!(m.starts_with("unknown"));
    }
}
