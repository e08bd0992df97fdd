//! Scale, foreshortening and patient fusion against the renderer's exact truth, and
//! `scalpmap plan` / `scalpmap rules` end to end: patient JSON valid against its schema, HTML
//! pages and the index, manifests, a clinic's rules file.

use std::path::{Path, PathBuf};

use scalpmap::classes::Class;
use scalpmap::masks::ClassMap;
use scalpmap::measure::{area_cm2, scale_from_head, scalp_outline, surface_factors, ScaleInfo};
use scalpmap::patient::{fuse, PatientPhoto};
use scalpmap::report::{PatientReport, Report};
use scalpmap::rules::Rules;
use scalpmap::synth::scene::View;
use scalpmap::synth::{make_item, Overrides, PhotoFormat, Truth};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn scalpmap(args: &[&str]) -> std::process::Output {
    assert_cmd::Command::cargo_bin("scalpmap").unwrap().args(args).output().unwrap()
}

/// Renders one item in memory: its truth and its label map.
fn render(seed: u64, index: u64, view: View) -> (Truth, ClassMap, Vec<u8>) {
    let ov = Overrides { view: Some(view), ..Default::default() };
    let item = make_item(seed, index, 512, PhotoFormat::Jpeg, &ov).unwrap();
    let labels = image::load_from_memory(&item.labels).unwrap().to_luma8();
    let map = ClassMap::new(labels.width() as usize, labels.height() as usize, labels.into_raw());
    (item.truth, map, item.photo)
}

const LOSS: [Class; 3] = [Class::Thinning, Class::Bare, Class::Scar];

fn truth_surface(t: &Truth, classes: &[Class]) -> f64 {
    classes.iter().map(|c| t.classes[*c as usize].surface_cm2).sum()
}

/// Top views whose whole scalp is in the frame, from truth label maps.
fn whole_top_views(n: usize) -> Vec<(Truth, ClassMap)> {
    let mut out = Vec::new();
    let mut i = 0;
    while out.len() < n {
        let (t, map, _) = render(4242, i, View::Top);
        i += 1;
        let o = scalp_outline(&map, 1.0, 1.0).unwrap();
        if o.whole_in_frame() && truth_surface(&t, &LOSS) > 5.0 {
            out.push((t, map));
        }
    }
    out
}

#[test]
fn top_view_areas_at_known_scale_match_the_surface_truth() {
    let rules = Rules::default().scale;
    let mut corrected = Vec::new();
    let mut flat = Vec::new();
    for (t, map) in whole_top_views(12) {
        let o = scalp_outline(&map, 1.0, 1.0);
        let k = ScaleInfo::given(t.scale.px_per_cm);
        let truth = truth_surface(&t, &LOSS);
        let (f, name) = surface_factors(&map, 1.0, 1.0, Some("top"), o.as_ref(), &rules);
        assert_eq!(name, "ellipsoid-top");
        corrected.push(area_cm2(&map, &f, &LOSS, 1.0, &k, name).value / truth - 1.0);
        flat.push(area_cm2(&map, &vec![1.0; f.len()], &LOSS, 1.0, &k, "none").value / truth - 1.0);
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.abs().total_cmp(&b.abs()));
        v[v.len() / 2].abs()
    };
    let (mc, mf) = (med(&mut corrected), med(&mut flat));
    eprintln!("relative area error, median |.|: corrected {mc:.3}, flat {mf:.3}\ncorrected {corrected:.3?}\nflat {flat:.3?}");
    // Measured: corrected 0.083 (worst 0.40), flat 0.48: the ellipsoid correction is needed.
    assert!(mc <= 0.12, "median relative error with the correction {mc:.3}");
    assert!(mc < mf / 3.0, "the correction must beat the flat count: {mc:.3} vs {mf:.3}");
}

#[test]
fn head_width_scale_intervals_contain_the_truth() {
    let rules = Rules::default().scale;
    let mut inside_scale = 0;
    let mut inside_area = 0;
    let views = whole_top_views(12);
    for (t, map) in &views {
        let o = scalp_outline(map, 1.0, 1.0);
        let k = scale_from_head(Some("top"), o.as_ref(), &rules).unwrap();
        assert!(k.estimated && k.method == "head-width");
        inside_scale += (k.px_per_cm_low <= t.scale.px_per_cm && t.scale.px_per_cm <= k.px_per_cm_high) as usize;
        let (f, name) = surface_factors(map, 1.0, 1.0, Some("top"), o.as_ref(), &rules);
        let a = area_cm2(map, &f, &LOSS, 1.0, &k, name);
        let truth = truth_surface(t, &LOSS);
        inside_area += (a.low <= truth && truth <= a.high) as usize;
        eprintln!(
            "scale {:.1} in [{:.1}, {:.1}] (truth {:.1}); area {truth:.1} in [{:.1}, {:.1}]",
            k.px_per_cm, k.px_per_cm_low, k.px_per_cm_high, t.scale.px_per_cm, a.low, a.high
        );
    }
    eprintln!("scale inside {inside_scale}/12, area inside {inside_area}/12");
    // Measured: 12/12 and 12/12.
    assert!(inside_scale >= 11 && inside_area >= 11, "scale {inside_scale}/12, area {inside_area}/12");
}

/// Synthetic patients: the same person rendered from the four SALT views and the front. The
/// truth to cover is the whole scalp's thinning + bare + scar surface, seen or not.
struct SynthPatient {
    whole_to_cover: f64,
    photos: Vec<PatientPhoto>,
    /// The same photos with the model's fractions replaced by the renders' exact ones.
    exact: Vec<PatientPhoto>,
}

/// The shipped model on tract, with default settings, for analysing renders in memory.
fn analyzer() -> (scalpmap::model::Segmenter, scalpmap::analyze::Settings) {
    use scalpmap::model::{self, backend, BackendChoice, Segmenter};
    let engine = backend::init(BackendChoice::Tract).unwrap().clone();
    let loaded = model::load(None).unwrap();
    let seg = Segmenter::new(&loaded.bytes, loaded.contract.clone(), 1).unwrap();
    (seg, scalpmap::analyze::Settings::new(loaded.info(), engine))
}

fn synth_patients(n: u64) -> Vec<SynthPatient> {
    use scalpmap::analyze::analyze_bytes;
    let (mut seg, settings) = analyzer();
    (0..n)
        .map(|i| {
            let mut photos = Vec::new();
            let mut exact = Vec::new();
            let mut whole = 0.0;
            for view in [View::Top, View::Back, View::Left, View::Right, View::Front] {
                let (t, _, jpeg) = render(777, i, view);
                whole = LOSS.iter().map(|c| t.classes[*c as usize].whole_scalp_cm2).sum();
                let name = format!("p{i}-{}.jpg", view.name());
                let a = analyze_bytes(&mut seg, &jpeg, Path::new(&name), Some(view.name()), &settings, 0.0).unwrap();
                let mut r: Report = a.report;
                photos.push(PatientPhoto { output: name.clone(), report: r.clone() });
                let scalp: u64 = t.classes[1..].iter().map(|c| c.pixels).sum();
                for c in r.classes.iter_mut().skip(1) {
                    let k = Class::ALL.iter().position(|k| k.name() == c.class).unwrap();
                    c.fraction_of_scalp = Some(t.classes[k].pixels as f64 / scalp.max(1) as f64);
                }
                exact.push(PatientPhoto { output: name, report: r });
            }
            SynthPatient { whole_to_cover: whole, photos, exact }
        })
        .collect()
}

#[test]
fn fused_patient_areas_fall_in_their_intervals() {
    let rules = Rules::default();
    let patients = synth_patients(8);
    let (mut exact_in, mut model_in) = (0, 0);
    let mut exact_err = Vec::new();
    for p in &patients {
        let e = fuse(&p.exact, &rules);
        let m = fuse(&p.photos, &rules);
        let t = p.whole_to_cover;
        assert!(e.missing_views.is_empty() && e.hair_loss.weight_covered == 100.0);
        let (ea, ma) = (e.area_to_cover_cm2.unwrap(), m.area_to_cover_cm2.unwrap());
        exact_in += (ea.low <= t && t <= ea.high) as usize;
        model_in += (ma.low <= t && t <= ma.high) as usize;
        exact_err.push((ea.value - t).abs());
        eprintln!(
            "truth {t:.0} cm²; exact fractions {:.0} [{:.0}, {:.0}]; model {:.0} [{:.0}, {:.0}], {} {}",
            ea.value,
            ea.low,
            ea.high,
            ma.value,
            ma.low,
            ma.high,
            m.stage.scale,
            m.stage.label()
        );
    }
    exact_err.sort_by(f64::total_cmp);
    eprintln!("inside: exact fractions {exact_in}/8, model {model_in}/8; exact median error {:.0} cm²", exact_err[4]);
    // Measured: exact fractions 8/8 inside, median error 17 cm²; model v0.1.x 5/8 (its
    // fractions are off by more than the rules' 0.12 on some views: models/MODEL_CARD.md).
    assert!(exact_in >= 7, "fusion of exact fractions: {exact_in}/8 inside");
    assert!(exact_err[4] <= 30.0, "fusion of exact fractions: median error {:.0} cm²", exact_err[4]);
    assert!(model_in >= 4, "with the shipped model: {model_in}/8 inside");
}

fn schema(name: &str) -> jsonschema::Validator {
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(repo().join("schemas").join(name)).unwrap()).unwrap();
    jsonschema::validator_for(&s).expect("the schema itself is valid")
}

/// Two patients in folders (five views each, named by view), rendered into `dir`.
fn patient_folders(dir: &Path) {
    for (i, who) in ["anna", "bo"].iter().enumerate() {
        let d = dir.join(who);
        std::fs::create_dir_all(&d).unwrap();
        for view in [View::Top, View::Back, View::Left, View::Right, View::Front] {
            let (_, _, jpeg) = render(99, i as u64, view);
            std::fs::write(d.join(format!("{}.jpg", view.name())), jpeg).unwrap();
        }
    }
}

#[test]
fn plan_writes_valid_patient_reports_html_and_an_index() {
    let input = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    patient_folders(input.path());
    let rules = input.path().join("clinic.toml");
    std::fs::write(&rules, "[sessions]\nbase = 2\ninterval_days = 21\n").unwrap();
    let o = scalpmap(&[
        "plan",
        input.path().to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
        "--backend",
        "tract",
        "--rules",
        rules.to_str().unwrap(),
        "--start-date",
        "2027-03-01",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let v = schema("patient.schema.json");
    for who in ["anna", "bo"] {
        let raw: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.path().join(format!("patients/{who}.json"))).unwrap()).unwrap();
        let errors: Vec<String> = v.iter_errors(&raw).map(|e| format!("{e} at {}", e.instance_path())).collect();
        assert!(errors.is_empty(), "{who}.json breaks the schema: {errors:?}");
        let r: PatientReport = serde_json::from_value(raw).unwrap();
        assert_eq!(r.patient, who);
        // The shipped model carries the Norwood cut points fit for its maps; the clinic's file
        // does not set them, so they are used, and the report says so.
        assert!(scalpmap::model::load(None).unwrap().contract.norwood_top_upper.is_some());
        assert!(r.rules.contains("clinic.toml") && r.rules.contains("Norwood cut points"), "{}", r.rules);
        assert_eq!(r.assessment.views.len(), 5);
        assert!(r.assessment.missing_views.is_empty());
        assert_eq!(r.plan.reasons[0].sessions, 2, "the clinic's base");
        let s = &r.plan.schedule;
        assert_eq!(s[0].date.as_deref(), Some("2027-03-01"));
        assert_eq!(s[1].date.as_deref(), Some("2027-03-22"), "the clinic's interval");
        assert_eq!(s.len() as u32, r.plan.sessions);
        let html = std::fs::read_to_string(out.path().join(format!("patients/{who}.html"))).unwrap();
        for part in ["Assessment", "Zones found", "Zones and density", "sessions", "data:image/jpeg;base64,", "2027-03-01", "Aftercare"] {
            assert!(html.contains(part), "{who}.html lacks {part}");
        }
        // Per-photo outputs are named after the patient, and valid reports too.
        let photo: serde_json::Value = serde_json::from_slice(&std::fs::read(out.path().join(format!("{who}_top.json"))).unwrap()).unwrap();
        assert!(schema("report.schema.json").iter_errors(&photo).next().is_none());
        // The correction runs on top views whose head is whole in the frame, and says so.
        let m = &photo["measurement"];
        let whole = m["no_scale_reason"].as_str().is_none_or(|r| !r.contains("out of the frame"));
        assert_eq!(m["correction"], if whole { "ellipsoid-top" } else { "none" }, "{m}");
        // Zone and class areas in cm² rest on the scale the report states, or are absent.
        let k = m["scale"]["px_per_cm"].as_f64();
        for item in photo["zones"].as_array().unwrap().iter().chain(photo["classes"].as_array().unwrap()) {
            let px = item["area_px"].as_f64().unwrap();
            match k {
                Some(k) => assert!((item["area_cm2"].as_f64().unwrap() - px / (k * k)).abs() <= 1e-9 * px.max(1.0), "{item}"),
                None => assert!(item["area_cm2"].is_null(), "{item}"),
            }
        }
    }
    let index = std::fs::read_to_string(out.path().join("index.html")).unwrap();
    assert!(index.contains("patients/anna.html") && index.contains("patients/bo.html"));
}

#[test]
fn a_manifest_names_patients_and_views_and_missing_files_are_reported() {
    let input = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    patient_folders(input.path());
    let m = input.path().join("manifest.csv");
    std::fs::write(
        &m,
        "patient,view,file,scar_cm2,sex\nclient-7,top,anna/top.jpg,8,m\nclient-7,crown,anna/back.jpg,,\nclient-7,,anna/front.jpg,,\nclient-8,top,gone.jpg,,\n",
    )
    .unwrap();
    let o = scalpmap(&["plan", "--manifest", m.to_str().unwrap(), "--out", out.path().to_str().unwrap(), "--backend", "tract"]);
    assert_eq!(o.status.code(), Some(1), "one listed file is missing: {}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("gone.jpg"));
    let r: PatientReport = serde_json::from_slice(&std::fs::read(out.path().join("patients/client-7.json")).unwrap()).unwrap();
    let views: Vec<Option<&str>> = r.assessment.views.iter().map(|v| v.view.as_deref()).collect();
    // The manifest's views win; its empty view falls back to the file name (front.jpg).
    assert_eq!(views, [Some("back"), Some("front"), Some("top")]);
    assert_eq!(r.assessment.missing_views, ["left", "right"]);
    assert!(r.assessment.warnings.iter().any(|w| w.contains("missing views")));
    // The scar the practitioner marked is planned, whatever the model draws.
    assert!(r.assessment.warnings.iter().any(|w| w.contains("scars marked") && w.contains("8.0 cm²")), "{:?}", r.assessment.warnings);
    assert!(r.plan.reasons.iter().any(|x| x.rule == "scars"), "{:?}", r.plan.reasons);
    assert!(r.assessment.area_to_cover_cm2.unwrap().low >= 8.0);
    // The sex given on one of the patient's rows sets the scale, and the report says so.
    assert_eq!((r.assessment.stage.scale.as_str(), r.assessment.stage.sex), ("hamilton-norwood", Some(scalpmap::patient::Sex::Male)));
    let raw: serde_json::Value = serde_json::from_slice(&std::fs::read(out.path().join("patients/client-7.json")).unwrap()).unwrap();
    let errors: Vec<String> = schema("patient.schema.json").iter_errors(&raw).map(|e| e.to_string()).collect();
    assert!(errors.is_empty() && raw["assessment"]["stage"]["sex"] == "male", "{errors:?}");
    let record = scalpmap::record::read(out.path()).unwrap();
    assert_eq!(record.plan.unwrap().given()["client-7"].sex, Some(scalpmap::patient::Sex::Male), "review plans again with it");
    assert!(!out.path().join("patients/client-8.json").exists());
    let bad = input.path().join("bad.csv");
    for (csv, says) in [
        ("patient,view,file\nx,sideways,a.jpg\n", "sideways"),
        ("patient,view,file,sex\nx,top,anna/top.jpg,m\nx,back,anna/back.jpg,f\n", "both male and female"),
    ] {
        std::fs::write(&bad, csv).unwrap();
        let o = scalpmap(&["plan", "--manifest", bad.to_str().unwrap(), "--out", out.path().to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{csv}");
        assert!(String::from_utf8_lossy(&o.stderr).contains(says), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

#[test]
fn a_photo_without_scalp_is_listed_but_left_out_of_the_fusion() {
    let rules = Rules::default();
    let mut photos = synth_patients(1).remove(0).photos;
    let back = photos.iter().position(|p| p.report.view.as_deref() == Some("back")).unwrap();
    let whole = fuse(&photos, &rules);
    assert!(whole.missing_views.is_empty());
    // What the analyser reports for a photo in which the model found no scalp.
    photos[back].report.quality.scalp_fraction = 0.0;
    photos[back].report.quality.retake = true;
    let f = fuse(&photos, &rules);
    assert_eq!(f.views.len(), 5, "the photo is still listed");
    assert_eq!(f.missing_views, ["back"]);
    assert!(f.warnings.iter().any(|w| w.contains("no scalp found") && w.contains("left out")), "{:?}", f.warnings);
    assert!(f.area_to_cover_cm2.unwrap().high >= whole.area_to_cover_cm2.unwrap().high - 1e-9, "a missing view widens the interval");
}

#[test]
fn a_view_with_no_head_is_left_out_of_the_plan_and_the_models_cut_points_are_used() {
    let input = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let d = input.path().join("cem");
    std::fs::create_dir_all(&d).unwrap();
    let (_, _, top) = render(99, 0, View::Top);
    std::fs::write(d.join("top.jpg"), top).unwrap();
    // The "back" photo is of a beige wall: nothing in it may count as the patient's crown.
    let wall = image::RgbImage::from_fn(640, 480, |x, y| {
        let n = ((x * 7919 + y * 104_729) % 9) as f32 - 4.0;
        let v = |b: f32, g: f32| (b - g + n).clamp(0.0, 255.0) as u8;
        image::Rgb([v(225.0, y as f32 * 0.03), v(205.0, y as f32 * 0.03), v(175.0, x as f32 * 0.02)])
    });
    wall.save(d.join("back.jpg")).unwrap();
    let o = scalpmap(&["plan", input.path().to_str().unwrap(), "--out", out.path().to_str().unwrap(), "--backend", "tract"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let r: PatientReport = serde_json::from_slice(&std::fs::read(out.path().join("patients/cem.json")).unwrap()).unwrap();
    assert_eq!(r.assessment.views.len(), 2, "both photos are listed");
    assert!(r.assessment.missing_views.contains(&"back".to_string()), "{:?}", r.assessment.missing_views);
    assert!(r.assessment.warnings.iter().any(|w| w.contains("back.jpg") && w.contains("no scalp found")), "{:?}", r.assessment.warnings);
    // The shipped model carries the Norwood cut points fit for its maps, and the report says so.
    let cuts = scalpmap::model::load(None).unwrap().contract.norwood_top_upper;
    assert_eq!(cuts.is_some(), r.rules.contains("cut points"), "{}", r.rules);
}

#[test]
fn rules_default_prints_a_file_that_round_trips_and_bad_rules_exit_2() {
    let o = scalpmap(&["rules", "--default"]);
    assert_eq!(o.status.code(), Some(0));
    let text = String::from_utf8(o.stdout).unwrap();
    assert_eq!(Rules::from_overrides(&text, "printed").unwrap(), Rules::default());
    assert!(text.contains("DOMAIN"), "the defaults cite their sources");
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("typo.toml");
    std::fs::write(&f, "[sesions]\nbase = 4\n").unwrap();
    let o = scalpmap(&["rules", "--rules", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("sesions"));
    let o = scalpmap(&["plan", "samples", "--out", dir.path().join("o").to_str().unwrap(), "--rules", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn printed_markers_are_found_and_give_the_scale() {
    let mut inside = 0;
    let mut found = 0;
    let mut errors = Vec::new();
    for i in 0..40 {
        let ov = Overrides { marker: true, ..Default::default() };
        let item = make_item(606, i, 512, PhotoFormat::Jpeg, &ov).unwrap();
        let m = item.truth.marker.clone().expect("a marker was asked for");
        let photo = image::load_from_memory(&item.photo).unwrap().to_rgb8();
        // The whole sticker in frame: the black square's half-diagonal plus the widest margin.
        let reach = m.px_per_cm * (m.side_cm * 0.5 * std::f64::consts::SQRT_2 + 0.5);
        let (x, y) = (m.centre_px[0], m.centre_px[1]);
        if !(x > reach && y > reach && x < 512.0 - reach && y < 512.0 - reach) {
            continue;
        }
        inside += 1;
        if let Some(f) = scalpmap::marker::find_in_photo(&photo) {
            found += 1;
            assert!((f.centre_px[0] - x).hypot(f.centre_px[1] - y) < 0.2 * f.side_px, "found elsewhere: {f:?} vs {m:?}");
            errors.push(f.side_px / m.side_cm / m.px_per_cm - 1.0);
        }
    }
    errors.sort_by(|a, b| a.abs().total_cmp(&b.abs()));
    let (median, worst) = (errors[errors.len() / 2].abs(), errors.last().unwrap().abs());
    eprintln!("found {found} of {inside} markers fully in frame; scale error median {median:.4}, worst {worst:.4}");
    // Measured: 26 of 29, median 0.008, worst 0.043 (inside the 6 % the reports state).
    assert!(found as f64 >= 0.85 * inside as f64, "found {found} of {inside}");
    assert!(median <= 0.02 && worst <= scalpmap::measure::MARKER_SCALE_UNCERTAINTY, "median {median}, worst {worst}");
    // And none where there is none.
    for i in 0..60 {
        let item = make_item(4242, i, 512, PhotoFormat::Jpeg, &Overrides::default()).unwrap();
        let photo = image::load_from_memory(&item.photo).unwrap().to_rgb8();
        assert_eq!(scalpmap::marker::find_in_photo(&photo), None, "a marker found in render {i}, which has none");
    }
}

#[test]
fn skin_tone_from_photos_is_rough_but_measured() {
    use scalpmap::analyze::analyze_bytes;
    use scalpmap::synth::color::ItaClass;
    use scalpmap::synth::scene::PatternKind;
    let (mut seg, settings) = analyzer();
    let order = |c: &str| ItaClass::ALL.iter().position(|k| k.name() == c).unwrap() as i32;
    let (mut errors, mut within_one, mut n) = (Vec::new(), 0, 0);
    for i in 0..40 {
        let ov = Overrides { pattern: Some(PatternKind::Norwood), ..Default::default() };
        let item = make_item(5151, i, 512, PhotoFormat::Jpeg, &ov).unwrap();
        let a = analyze_bytes(&mut seg, &item.photo, Path::new("x.jpg"), None, &settings, 0.0).unwrap();
        let Some(s) = a.report.measurement.skin else { continue };
        assert!(s.cells >= scalpmap::measure::SKIN_MIN_CELLS);
        n += 1;
        errors.push((s.ita_deg - item.truth.skin.ita_deg as f64).abs());
        within_one += ((order(&s.ita_class) - order(item.truth.skin.ita_class.name())).abs() <= 1) as usize;
    }
    errors.sort_by(f64::total_cmp);
    let median = errors[errors.len() / 2];
    eprintln!("skin tone measured on {n} of 40 renders: median ITA error {median:.1}°, within one class {within_one}/{n}");
    // Renders vary exposure and white balance as phones do; the truth is the skin's albedo.
    assert!(median <= 25.0 && within_one as f64 >= 0.6 * n as f64, "median {median:.1}, within one {within_one}/{n}");
}

/// Every number in a JSON value, with its path.
fn numbers(v: &serde_json::Value, path: String, out: &mut Vec<(String, f64)>) {
    match v {
        serde_json::Value::Number(n) => out.push((path, n.as_f64().unwrap())),
        serde_json::Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| numbers(x, format!("{path}/{i}"), out)),
        serde_json::Value::Object(o) => o.iter().for_each(|(k, x)| numbers(x, format!("{path}/{k}"), out)),
        _ => {}
    }
}

#[test]
fn the_readme_quick_start_plans_the_sample_patient_and_unknowns_are_null() {
    let out = tempfile::tempdir().unwrap();
    let o = scalpmap(&["plan", repo().join("samples").to_str().unwrap(), "--out", out.path().to_str().unwrap(), "--backend", "tract"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.trim_end().ends_with("index.html"), "the last line names the page to open: {stderr}");
    let v = schema("patient.schema.json");
    let read = |id: &str| -> serde_json::Value {
        let raw: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.path().join(format!("patients/{id}.json"))).unwrap()).unwrap();
        let errors: Vec<String> = v.iter_errors(&raw).map(|e| format!("{e} at {}", e.instance_path())).collect();
        assert!(errors.is_empty(), "{id}.json breaks the schema: {errors:?}");
        raw
    };
    // The whole patient: five named views, the marker on top: an area, a stage, sessions with
    // impressions and hours, and a density plan per zone.
    let raw = read("synth-2026-00505");
    let r: PatientReport = serde_json::from_value(raw.clone()).unwrap();
    let a = &r.assessment;
    assert!(a.missing_views.is_empty() && a.views.len() == 5);
    assert!(a.views.iter().any(|v| v.view.as_deref() == Some("top") && v.scale_method.as_deref() == Some("marker")), "{:?}", a.views);
    let area = a.area_to_cover_cm2.expect("an area to cover");
    assert!(area.value > 20.0 && area.low <= area.value && area.value <= area.high, "{area:?}");
    assert!(a.stage.stage.is_some(), "{:?}", a.stage);
    let p = &r.plan;
    assert!(p.sessions >= 3 && p.schedule.len() == p.sessions as usize);
    assert!(p.impressions_total.is_some_and(|t| t > 1000.0), "{:?}", p.impressions_total);
    assert!(p.schedule.iter().all(|s| s.impressions.is_some_and(|i| i > 0.0) && s.hours.is_some_and(|h| h > 0.0)));
    assert!(!p.zones.is_empty() && p.zones.iter().all(|z| z.area_cm2.is_some() && z.target_per_cm2 > 0.0));
    let html = std::fs::read_to_string(out.path().join("patients/synth-2026-00505.html")).unwrap();
    assert!(!html.contains("unknown") && html.contains("sessions"), "nothing unknown on the whole patient's page");
    // A single photo whose name carries no view: unknown values are null (with a reason) and
    // "unknown" on the page, never 0 or -0; its sessions carry no impressions.
    let raw1 = read("synth-2026-00003");
    assert!(raw1["assessment"]["area_to_cover_cm2"].is_null() && raw1["assessment"]["stage"]["stage"].is_null());
    assert!(raw1["assessment"]["area_method"].as_str().unwrap().starts_with("unknown"));
    assert!(raw1["plan"]["impressions_total"].is_null());
    assert!(raw1["plan"]["schedule"].as_array().unwrap().iter().all(|s| s["impressions"].is_null() && s["hours"].is_null()));
    let html1 = std::fs::read_to_string(out.path().join("patients/synth-2026-00003.html")).unwrap();
    assert!(html1.contains("unknown") && !html1.contains("0 cm² (0-0)"), "unknowns say unknown");
    // No negative zero anywhere in any patient report.
    for id in ["synth-2026-00505", "synth-2026-00003", "synth-2026-00150"] {
        let mut all = Vec::new();
        numbers(&read(id), String::new(), &mut all);
        let negative_zero: Vec<&(String, f64)> = all.iter().filter(|(_, x)| *x == 0.0 && x.is_sign_negative()).collect();
        assert!(negative_zero.is_empty(), "{id}: {negative_zero:?}");
    }
}

fn summary_of(out: &Path) -> scalpmap::batch::Summary {
    serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn resume_finds_earlier_reports_however_the_folder_is_spelled_and_redoes_what_changed() {
    let base = tempfile::tempdir().unwrap();
    let input = base.path().join("in");
    std::fs::create_dir_all(input.join("anna")).unwrap();
    let (_, _, top) = render(99, 0, View::Top);
    let (_, _, back) = render(99, 0, View::Back);
    std::fs::write(input.join("anna/top.jpg"), &top).unwrap();
    std::fs::write(input.join("anna/IMG_2.jpg"), &back).unwrap();
    let out = base.path().join("out");
    let run = |dir: &str, extra: &[&str]| {
        let mut args = vec!["plan", dir, "--out", out.to_str().unwrap(), "--backend", "tract", "--resume"];
        args.extend_from_slice(extra);
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_scalpmap")).current_dir(base.path()).args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        let s = summary_of(&out);
        let skipped = s.skipped;
        let r: PatientReport = serde_json::from_slice(&std::fs::read(out.join("patients/anna.json")).unwrap()).unwrap();
        (skipped, r)
    };
    let (skipped, first) = run("in", &[]);
    assert_eq!(skipped, 0);
    // The same photos by another spelling: found, skipped, and still the patient's.
    let absolute = input.to_str().unwrap().to_string();
    for spelling in ["./in", "in/", absolute.as_str()] {
        let (skipped, r) = run(spelling, &[]);
        assert_eq!(skipped, 2, "{spelling}");
        assert_eq!(r.assessment.views.len(), 2, "{spelling}: the patient keeps both photos");
        assert_eq!(r.assessment.hair_loss.percent, first.assessment.hair_loss.percent);
    }
    // A view given now that the photo's name lacks: analysed again, with it.
    let (skipped, r) = run("in", &["--view", "back"]);
    assert_eq!(skipped, 1, "only IMG_2.jpg, whose view changed");
    assert!(r.assessment.views.iter().any(|v| v.file.ends_with("IMG_2.jpg") && v.view.as_deref() == Some("back")));
    // A changed scale rule (the clinic's head breadth) feeds the analysis: both again.
    let rules = base.path().join("clinic.toml");
    std::fs::write(&rules, "[scale]\nhead_breadth_cm = 16.0\n").unwrap();
    let (skipped, _) = run("in", &["--view", "back", "--rules", rules.to_str().unwrap()]);
    assert_eq!(skipped, 0);
}

#[test]
fn manifests_reach_only_their_own_folder_and_a_photo_belongs_to_one_patient() {
    let base = tempfile::tempdir().unwrap();
    let clinic = base.path().join("clinic");
    patient_folders(&clinic);
    let outside = base.path().join("elsewhere.jpg");
    std::fs::copy(clinic.join("anna/top.jpg"), &outside).unwrap();
    let m = clinic.join("manifest.csv");
    std::fs::write(
        &m,
        format!(
            "patient,view,file\nanna,top,anna/top.jpg\nanna,top,anna/top.jpg\nbo,top,anna/top.jpg\nbo,back,../elsewhere.jpg\nbo,front,{}\nbo,left,bo/left.jpg\n",
            outside.display()
        ),
    )
    .unwrap();
    let out = base.path().join("out");
    let plan = |extra: &[&str]| {
        let mut args = vec!["plan", "--manifest", m.to_str().unwrap(), "--out", out.to_str().unwrap(), "--backend", "tract"];
        args.extend_from_slice(extra);
        scalpmap(&args)
    };
    let o = plan(&[]);
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    let s = summary_of(&out);
    // anna/top.jpg once (listed twice for anna), refused for bo; both outside paths refused.
    assert_eq!(s.analysed, 2, "{:?}", s.rows);
    let errors: Vec<String> = s.rows.iter().filter_map(|r| r.error.clone()).collect();
    assert!(errors.iter().any(|e| e.contains("listed for patients anna and bo")), "{errors:?}");
    assert_eq!(
        errors.iter().filter(|e| e.contains("outside the manifest's folder") && e.contains("--allow-any-path")).count(),
        2,
        "{errors:?}"
    );
    let anna: PatientReport = serde_json::from_slice(&std::fs::read(out.join("patients/anna.json")).unwrap()).unwrap();
    assert_eq!(anna.assessment.views.len(), 1, "counted once");
    // Widened on request (both outside rows name one file: analysed once).
    let o = plan(&["--allow-any-path"]);
    assert_eq!(o.status.code(), Some(1), "the two-patient row still fails");
    assert_eq!(summary_of(&out).analysed, 3);
}

#[test]
#[cfg(unix)]
fn folders_whose_names_are_not_utf8_stay_two_patients_and_long_names_are_written() {
    use std::os::unix::ffi::OsStrExt;
    let input = tempfile::tempdir().unwrap();
    let (_, _, top) = render(99, 0, View::Top);
    for name in [&b"M\xfcller"[..], &b"M\xf6ller"[..]] {
        let d = input.path().join(std::ffi::OsStr::from_bytes(name));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("top.jpg"), &top).unwrap();
    }
    // A 240-byte photo name in a patient folder with a long name: joined, they pass 255 bytes.
    let long_patient = "p".repeat(120);
    let d = input.path().join(&long_patient);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join(format!("{}_top.jpg", "x".repeat(232))), &top).unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = scalpmap(&["plan", input.path().to_str().unwrap(), "--out", out.path().to_str().unwrap(), "--backend", "tract"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let s = summary_of(out.path());
    assert_eq!((s.analysed, s.failed), (3, 0), "{:?}", s.rows);
    let pages: Vec<String> = std::fs::read_dir(out.path().join("patients"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".html"))
        .collect();
    assert_eq!(pages.len(), 3, "Müller and Möller are two patients: {pages:?}");
    assert!(pages.iter().all(|p| p.len() <= 130), "{pages:?}");
}

/// Every file under `dir`, with its path relative to `dir`.
fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(all_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// `text` with the payload of every `base64,` data URI removed.
fn without_base64(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("base64,") {
        out.push_str(&rest[..i + 7]);
        rest = rest[i + 7..].trim_start_matches(|c: char| c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '=');
    }
    out.push_str(rest);
    out
}

#[test]
fn anonymized_plans_carry_no_input_name_anywhere_failures_included() {
    let base = tempfile::tempdir().unwrap();
    let clinic = base.path().join("clinic");
    let (_, _, top) = render(99, 0, View::Top);
    for who in ["Jane-Roe", "Rick-Moe"] {
        std::fs::create_dir_all(clinic.join(who)).unwrap();
        std::fs::write(clinic.join(who).join("IMG_secret_top.jpg"), &top).unwrap();
    }
    std::fs::write(clinic.join("Jane-Roe/broken_front.jpg"), b"not a photo").unwrap();
    let names = ["Jane", "Roe", "Rick", "Moe", "IMG_secret", "broken_front", "clinic"];
    let check = |out: &Path| {
        for f in all_files(out) {
            let rel = f.strip_prefix(out).unwrap().to_string_lossy().into_owned();
            // Pictures are compressed bytes and pages embed them as base64: either may hold "Roe"
            // by chance. Their names are checked; the pages' text with the pictures taken out.
            let is_png = rel.ends_with(".png");
            let text = without_base64(&String::from_utf8_lossy(&std::fs::read(&f).unwrap()));
            let text = if is_png { String::new() } else { text };
            for n in names {
                assert!(!rel.contains(n), "{rel}: its name carries {n}");
                assert!(!text.contains(n), "{rel} carries {n}");
            }
        }
    };
    // Folders as patients.
    let out = base.path().join("out-folders");
    let o = scalpmap(&["plan", clinic.to_str().unwrap(), "--out", out.to_str().unwrap(), "--backend", "tract", "--anonymize"]);
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    check(&out);
    // A manifest, with a missing file and a photo listed for two patients.
    let m = clinic.join("manifest.csv");
    std::fs::write(
        &m,
        "patient,view,file\nJane-Roe,top,Jane-Roe/IMG_secret_top.jpg\nRick-Moe,top,Rick-Moe/IMG_secret_top.jpg\nRick-Moe,back,Jane-Roe/IMG_secret_top.jpg\nJane-Roe,back,Jane-Roe/IMG_secret_gone.jpg\n",
    )
    .unwrap();
    let out = base.path().join("out-manifest");
    let o = scalpmap(&["plan", "--manifest", m.to_str().unwrap(), "--out", out.to_str().unwrap(), "--backend", "tract", "--anonymize"]);
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(summary_of(&out).failed, 2);
    check(&out);
}
