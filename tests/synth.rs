//! The renderer's promises: truth areas are exact pixel counts, the density map agrees with
//! the labels, the same seed gives the same bytes (whatever the thread count), loss patterns
//! land where they should, and the committed samples are what their truth says.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use scalpmap::classes::{Class, HAIR_MIN_PER_CM2, THINNING_MIN_PER_CM2};
use scalpmap::synth::color::ItaClass;
use scalpmap::synth::scene::{PatternKind, ScarKind, View};
use scalpmap::synth::{make_item, write_item, Overrides, PhotoFormat, Truth};

fn decode_labels(bytes: &[u8]) -> image::GrayImage {
    image::load_from_memory(bytes).expect("labels decode").to_luma8()
}

fn decode_density(bytes: &[u8]) -> image::ImageBuffer<image::Luma<u16>, Vec<u16>> {
    image::load_from_memory(bytes).expect("density decodes").to_luma16()
}

fn histogram(labels: &image::GrayImage) -> [u64; Class::COUNT] {
    let mut h = [0u64; Class::COUNT];
    for p in labels.pixels() {
        h[p.0[0] as usize] += 1;
    }
    h
}

/// Checks one item's truth against its own label and density maps.
fn check_truth(truth: &Truth, labels: &image::GrayImage, density: &image::ImageBuffer<image::Luma<u16>, Vec<u16>>) {
    assert_eq!((labels.width(), labels.height()), (truth.width, truth.height));
    assert!(labels.pixels().all(|p| (p.0[0] as usize) < Class::COUNT), "{}: label out of range", truth.name);
    let hist = histogram(labels);
    let s = &truth.scale;
    assert!((s.px_per_cm - (s.px_per_cm_x * s.px_per_cm_y).sqrt()).abs() < 1e-9);
    for c in &truth.classes {
        assert_eq!(c.pixels, hist[c.id as usize], "{}: {} pixel count", truth.name, c.name);
        let expected = c.pixels as f64 / (s.px_per_cm_x * s.px_per_cm_y);
        assert!(
            (c.area_cm2 - expected).abs() <= 1e-9 * expected.max(1.0),
            "{}: {} area {} vs {}",
            truth.name,
            c.name,
            c.area_cm2,
            expected
        );
    }
    let total: u64 = truth.classes.iter().map(|c| c.pixels).sum();
    assert_eq!(total, (truth.width * truth.height) as u64);
    // The density map is the field the labels were cut from: the thresholds must agree
    // pixel by pixel (values are hairs/cm² × density_scale, rounded).
    let k = truth.files.density_scale as f32;
    let (hair_min, thin_min) = ((HAIR_MIN_PER_CM2 * k) as u16, (THINNING_MIN_PER_CM2 * k) as u16);
    for (l, d) in labels.pixels().zip(density.pixels()) {
        let (l, d) = (l.0[0], d.0[0]);
        let ok = match Class::from_u8(l).unwrap() {
            Class::Background | Class::Scar => d == 0,
            Class::Hair => d >= hair_min,
            Class::Thinning => d >= thin_min && d <= hair_min,
            Class::Bare => d <= thin_min,
        };
        assert!(ok, "{}: label {l} with density value {d}", truth.name);
    }
}

#[test]
fn truth_areas_are_exact_pixel_counts_and_density_agrees_with_labels() {
    for index in 0..16 {
        let item = make_item(11, index, 192, PhotoFormat::Png, &Overrides::default()).unwrap();
        check_truth(&item.truth, &decode_labels(&item.labels), &decode_density(&item.density));
        let scalp: u64 = item.truth.classes.iter().filter(|c| c.id != 0).map(|c| c.pixels).sum();
        assert!(scalp > 0, "item {index} shows no scalp");
        // Surface areas are physical: positive wherever pixels are, and a visible half-head
        // is far less than the whole ~500 cm² scalp (DOMAIN.md).
        let surface: f64 = item.truth.classes.iter().map(|c| c.surface_cm2).sum();
        assert!(surface > 0.0 && surface < 500.0, "item {index}: visible scalp {surface} cm²");
    }
}

#[test]
fn same_seed_same_bytes_and_other_seed_differs() {
    let ov = Overrides::default();
    let a = make_item(5, 3, 160, PhotoFormat::Jpeg, &ov).unwrap();
    let b = make_item(5, 3, 160, PhotoFormat::Jpeg, &ov).unwrap();
    assert_eq!(a.photo, b.photo);
    assert_eq!(a.labels, b.labels);
    assert_eq!(a.density, b.density);
    assert_eq!(serde_json::to_string(&a.truth).unwrap(), serde_json::to_string(&b.truth).unwrap());
    let c = make_item(6, 3, 160, PhotoFormat::Jpeg, &ov).unwrap();
    assert_ne!(a.photo, c.photo);
}

fn files_in(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap())
        })
        .collect()
}

#[test]
fn cli_output_is_identical_with_one_or_two_threads() {
    let dir = tempfile::tempdir().unwrap();
    let run = |jobs: &str, out: &str| {
        let st = Command::new(env!("CARGO_BIN_EXE_scalpmap"))
            .args(["synth", "--count", "6", "--size", "128", "--seed", "42", "--jobs", jobs, "--out"])
            .arg(dir.path().join(out))
            .output()
            .unwrap();
        assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    };
    run("1", "one");
    run("2", "two");
    let (one, two) = (files_in(&dir.path().join("one")), files_in(&dir.path().join("two")));
    assert_eq!(one.len(), 24, "4 files per photo, and no temporary files left: {:?}", one.keys());
    assert_eq!(one, two);
}

#[test]
fn cli_rejects_bad_options_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_scalpmap")).args(["synth", "--view", "sideways", "--out"]).arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown view 'sideways'"));
    let out = Command::new(env!("CARGO_BIN_EXE_scalpmap")).args(["synth", "--size", "8", "--out"]).arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--size 8 is out of range"));
}

/// Pixel counts of (hair, thinning, bare, scar) over `n` items with the given overrides.
fn class_totals(seed: u64, n: u64, ov: &Overrides, stage: Option<&str>) -> [u64; Class::COUNT] {
    let mut total = [0u64; Class::COUNT];
    let mut found = 0;
    let mut index = 0;
    while found < n && index < 400 {
        let scene = scalpmap::synth::scene_for(seed, index, ov);
        if stage.is_none() || scene.pattern.stage.as_deref() == stage {
            let item = make_item(seed, index, 128, PhotoFormat::Png, ov).unwrap();
            for c in &item.truth.classes {
                total[c.id as usize] += c.pixels;
            }
            found += 1;
        }
        index += 1;
    }
    assert_eq!(found, n, "not enough items with stage {stage:?}");
    total
}

#[test]
fn patterns_land_where_they_should() {
    let top_norwood = Overrides { view: Some(View::Top), pattern: Some(PatternKind::Norwood), ..Default::default() };
    let nw6 = class_totals(1, 4, &top_norwood, Some("VI"));
    assert!(nw6[Class::Bare as usize] > nw6[Class::Hair as usize], "Norwood VI top-down: {nw6:?}");
    let nw7 = class_totals(2, 3, &top_norwood, Some("VII"));
    assert!(nw7[Class::Bare as usize] > 2 * nw7[Class::Hair as usize], "Norwood VII top-down: {nw7:?}");
    let nw2 = class_totals(3, 4, &top_norwood, Some("II"));
    assert!(nw2[Class::Hair as usize] > 5 * nw2[Class::Bare as usize], "Norwood II top-down: {nw2:?}");

    // Ludwig III thins the crown but keeps a frontal line of hair; Ludwig I is thinning, not bare.
    let ludwig = Overrides { view: Some(View::Top), pattern: Some(PatternKind::Ludwig), ..Default::default() };
    let l1 = class_totals(4, 3, &ludwig, Some("I"));
    assert!(l1[Class::Thinning as usize] > l1[Class::Bare as usize], "Ludwig I: {l1:?}");
    let l3 = class_totals(4, 3, &ludwig, Some("III"));
    assert!(l3[Class::Bare as usize] > 0 && l3[Class::Hair as usize] > 0, "Ludwig III: {l3:?}");

    // A FUT strip runs across the back: a back view shows scar pixels.
    let fut = Overrides { view: Some(View::Back), scar: Some(ScarKind::Fut), ..Default::default() };
    let f = class_totals(5, 4, &fut, None);
    assert!(f[Class::Scar as usize] > 0, "FUT back view: {f:?}");

    // Diffuse thinning shows as thinning from above.
    let diffuse = Overrides { view: Some(View::Top), pattern: Some(PatternKind::Diffuse), ..Default::default() };
    let d = class_totals(6, 4, &diffuse, None);
    assert!(d[Class::Thinning as usize] > 0, "diffuse: {d:?}");
}

#[test]
fn skin_tone_override_gives_its_ita_class() {
    for class in ItaClass::ALL {
        let ov = Overrides { skin: Some(class), ..Default::default() };
        let scene = scalpmap::synth::scene_for(9, 0, &ov);
        assert_eq!(ItaClass::of(scene.skin.ita_deg), class);
    }
}

fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples")
}

fn truths_in(dir: &Path) -> Vec<PathBuf> {
    let mut truths: Vec<PathBuf> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "json")).collect();
    truths.sort();
    truths
}

/// Checks a truth file's maps and that its files are byte for byte what the renderer makes.
fn check_sample(path: &Path) -> Truth {
    let truth: Truth = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let dir = path.parent().unwrap();
    let labels = image::open(dir.join(&truth.files.labels)).unwrap().to_luma8();
    let density = image::open(dir.join(&truth.files.density)).unwrap().to_luma16();
    check_truth(&truth, &labels, &density);
    let format = if truth.files.photo.ends_with(".png") { PhotoFormat::Png } else { PhotoFormat::Jpeg };
    let again = make_item(truth.seed, truth.index, truth.width, format, &truth.requested).unwrap();
    assert_eq!(again.photo, std::fs::read(dir.join(&truth.files.photo)).unwrap(), "{} photo differs from a re-render", truth.name);
    assert_eq!(again.labels, std::fs::read(dir.join(&truth.files.labels)).unwrap());
    truth
}

#[test]
fn the_sample_patient_is_one_head_in_five_named_views_with_the_marker_on_top() {
    let dir = samples_dir().join("synth-2026-00505");
    let truths: Vec<Truth> = truths_in(&dir).iter().map(|p| check_sample(p)).collect();
    let mut views: Vec<&str> = truths.iter().map(|t| t.view.name()).collect();
    views.sort();
    assert_eq!(views, ["back", "front", "left", "right", "top"]);
    for t in &truths {
        // The view is in the name, where `analyze` and `plan` read it.
        assert!(t.files.photo.contains(&format!("-{}.", t.view.name())), "{}", t.files.photo);
        assert_eq!(t.marker.is_some(), t.view == View::Top, "{}: the marker is on the top view only", t.name);
        // One head: the same pattern, stage, skin and hair in every view.
        let first = &truths[0];
        assert_eq!((t.index, t.pattern, &t.stage), (first.index, first.pattern, &first.stage));
        assert_eq!(serde_json::to_value(&t.skin).unwrap(), serde_json::to_value(&first.skin).unwrap());
        assert_eq!(serde_json::to_value(&t.hair).unwrap(), serde_json::to_value(&first.hair).unwrap());
    }
}

#[test]
fn committed_samples_match_their_truth_and_rerender_identically() {
    let truths = truths_in(&samples_dir());
    assert!((8..=12).contains(&truths.len()), "samples/ should hold 8-12 photos, has {}", truths.len());
    let mut views = std::collections::HashSet::new();
    let mut patterns = std::collections::HashSet::new();
    let mut skins = std::collections::HashSet::new();
    let mut scars = 0;
    for path in &truths {
        // The sample is exactly what the renderer makes from its seed and options.
        let truth = check_sample(path);
        views.insert(truth.view);
        patterns.insert(truth.pattern);
        skins.insert(truth.skin.ita_class);
        scars += truth.classes[Class::Scar as usize].pixels.min(1);
    }
    assert_eq!(views.len(), 5, "samples cover every view: {views:?}");
    assert_eq!(patterns.len(), 4, "samples cover every pattern: {patterns:?}");
    assert!(skins.len() >= 4, "samples span skin tones: {skins:?}");
    assert!(scars >= 2, "samples show scars");
}

#[test]
fn write_item_leaves_four_whole_files() {
    let dir = tempfile::tempdir().unwrap();
    let item = make_item(1, 0, 96, PhotoFormat::Jpeg, &Overrides::default()).unwrap();
    write_item(dir.path(), &item).unwrap();
    let files = files_in(dir.path());
    assert_eq!(files.len(), 4, "{:?}", files.keys());
    let json: Truth = serde_json::from_slice(&files[&format!("{}.json", item.truth.name)]).unwrap();
    assert_eq!(json.name, item.truth.name);
    assert!(files.contains_key(&json.files.photo) && files.contains_key(&json.files.labels) && files.contains_key(&json.files.density));
}
