//! Per-stage speed of `scalpmap analyze` on one 12-megapixel JPEG (a 3464x3464 render): decode
//! (reduced-scale DCT decode and, for comparison, the full decode), prepare (area resize into
//! the model input), inference, masks and zones (clean-up and connected zones with outlines),
//! the whole analysis of one photo, and writing the report and overlay. ort holds one engine per process, so inference runs with the engine named by
//! `SCALPMAP_BENCH_BACKEND` (`tract`, the default, or `onnxruntime`, which needs ORT_DYLIB_PATH).
//!
//! Run: `cargo bench --bench stages` and `SCALPMAP_BENCH_BACKEND=onnxruntime cargo bench --bench stages`.

use std::io::Cursor;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use scalpmap::analyze::{analyze_bytes, Settings};
use scalpmap::classes::Class;
use scalpmap::masks::{clean, ClassMap};
use scalpmap::model::{self, backend, prepare, BackendChoice, Segmenter};
use scalpmap::photo::{decode, DEFAULT_MAX_PIXELS};
use scalpmap::synth::{make_item, Overrides, PhotoFormat};
use scalpmap::zones::{zones, MapScale};

fn bench(c: &mut Criterion) {
    let choice = match std::env::var("SCALPMAP_BENCH_BACKEND").as_deref() {
        Ok("onnxruntime") => BackendChoice::OnnxRuntime,
        _ => BackendChoice::Tract,
    };
    let engine = backend::init(choice).expect("engine").clone();
    let loaded = model::load(None).unwrap();
    let mut seg = Segmenter::new(&loaded.bytes, loaded.contract.clone(), 1).unwrap();
    let settings = Settings::new(loaded.info(), engine.clone());
    let jpeg = make_item(9000, 0, 3464, PhotoFormat::Jpeg, &Overrides::default()).unwrap().photo;
    let path = Path::new("bench.jpg");

    let mut g = c.benchmark_group("stages_12mp");
    g.sample_size(10).measurement_time(Duration::from_secs(6)).warm_up_time(Duration::from_secs(1));
    g.bench_function("decode_reduced", |b| b.iter(|| decode(&jpeg, path, DEFAULT_MAX_PIXELS).unwrap()));
    g.bench_function("decode_full_image_crate", |b| b.iter(|| image::load_from_memory(&jpeg).unwrap().to_rgb8()));
    let photo = decode(&jpeg, path, DEFAULT_MAX_PIXELS).unwrap();
    g.bench_function("prepare", |b| b.iter(|| prepare(&photo.image, seg.contract())));
    let input = prepare(&photo.image, seg.contract());
    g.bench_function(format!("infer_{}", engine.name), |b| b.iter(|| seg.run(&input).unwrap()));
    let out = seg.run(&input).unwrap();
    let (mw, mh) = (seg.contract().input_width, seg.contract().input_height);
    let raw = ClassMap::new(mw, mh, out.classes().iter().copied().collect());
    let density: Vec<f32> = out.density.iter().copied().collect();
    let scale = MapScale { sx: 3464.0 / mw as f64, sy: 3464.0 / mh as f64, px_per_cm: None };
    g.bench_function("masks_and_zones", |b| {
        b.iter(|| {
            let map = clean(&raw, 33, Class::COUNT);
            zones(&map, &density, scale, scale.sx)
        })
    });
    g.bench_function(format!("analyze_bytes_{}", engine.name), |b| {
        b.iter(|| analyze_bytes(&mut seg, &jpeg, path, Some("top"), &settings, 0.0).unwrap())
    });
    let a = analyze_bytes(&mut seg, &jpeg, path, Some("top"), &settings, 0.0).unwrap();
    g.bench_function("write_report_and_overlay", |b| {
        b.iter(|| {
            let json = serde_json::to_vec_pretty(&a.report).unwrap();
            let mut png = Cursor::new(Vec::new());
            a.overlay.write_to(&mut png, image::ImageFormat::Png).unwrap();
            json.len() + png.get_ref().len()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
