//! `scalpmap review` end to end in a real headless Chromium: the binary serves a planned sample
//! patient, `tests/e2e/review.mjs` (Node with playwright-core, driving Debian's `chromium`)
//! paints the front of the head from loss to background with mouse and keys, saves, then on a
//! tablet-sized touch window reassigns a bare zone of the front view and saves it as a retake,
//! and stops the server; this test then checks the files those saves wrote.
//!
//! Needs `node`, `chromium` and `npm ci --prefix tests/e2e`. Without them the test says so and
//! passes, unless SCALPMAP_E2E=require (as `.ci/run` sets), where their absence fails it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::repo;

const TOP: &str = "synth-2026-00505_synth-2026-00505-top";
const FRONT: &str = "synth-2026-00505_synth-2026-00505-front";

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

fn chromium() -> Option<String> {
    let named = std::env::var("SCALPMAP_CHROMIUM").ok();
    named.into_iter().chain(["/usr/bin/chromium".to_string(), "/usr/bin/chromium-browser".to_string()]).find(|p| Path::new(p).is_file())
}

/// What is missing to run the browser test, if anything.
fn missing() -> Option<String> {
    if Command::new("node").arg("--version").output().map(|o| !o.status.success()).unwrap_or(true) {
        return Some("node is not installed".into());
    }
    if chromium().is_none() {
        return Some("no Chromium at /usr/bin/chromium (apt install chromium) or SCALPMAP_CHROMIUM".into());
    }
    if !repo().join("tests/e2e/node_modules/playwright-core").is_dir() {
        return Some("playwright-core is not installed (npm ci --prefix tests/e2e)".into());
    }
    None
}

#[test]
fn a_practitioner_corrects_a_map_in_chromium_and_the_plan_follows() {
    if let Some(why) = missing() {
        assert!(std::env::var("SCALPMAP_E2E").as_deref() != Ok("require"), "the browser test must run here, but {why}");
        eprintln!("skipped: {why}");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let out = common::planned_sample(d.path());
    let bin = assert_cmd::cargo::cargo_bin("scalpmap");
    let top_before = read_json(&out.join(format!("{TOP}.json")));
    let patient_before = read_json(&out.join("patients/synth-2026-00505.json"));

    let started = Instant::now();
    let mut server = Command::new(&bin)
        .args(["review", out.to_str().unwrap(), "--backend", "tract"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut url = String::new();
    BufReader::new(server.stdout.take().unwrap()).read_line(&mut url).unwrap();
    let url = url.trim().to_string();
    assert!(url.starts_with("http://127.0.0.1:") && url.contains("/?t="), "{url}");
    eprintln!("review served in {:.0} ms", started.elapsed().as_secs_f64() * 1e3);

    let run = Command::new("node")
        .current_dir(repo().join("tests/e2e"))
        .env("SCALPMAP_CHROMIUM", chromium().unwrap())
        .args(["review.mjs", &url, TOP, FRONT])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout).to_string();
    if !run.status.success() {
        let _ = server.kill();
        panic!("the browser run failed:\n{stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    }
    let seen: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap();
    eprintln!(
        "page: loss {} -> {}, plan area {}, {}; tablet bare cells {}; {}",
        seen["loss_before"], seen["loss_after"], seen["plan_area"], seen["status"], seen["tablet_bare"], seen["tablet_status"]
    );
    // The page's Stop button ended the server, and its lock is gone.
    let deadline = Instant::now() + Duration::from_secs(20);
    let code = loop {
        if let Some(s) = server.try_wait().unwrap() {
            break s.code();
        }
        if Instant::now() > deadline {
            let _ = server.kill();
            panic!("the server did not stop");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(code, Some(0));
    assert!(!out.join(scalpmap::fsio::LOCK_NAME).exists());

    // The corrected map is what the page painted: loss in the front half made background.
    let corrected = scalpmap::correction::read_map_png(&std::fs::read(out.join(format!("{TOP}.reviewed.png"))).unwrap()).unwrap();
    let painted: Vec<u8> = seen["saved_map"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u8).collect();
    assert_eq!(corrected.data, painted, "the saved map is the page's");
    let model = scalpmap::correction::read_map_png(&std::fs::read(out.join(format!("{TOP}.mask.png"))).unwrap()).unwrap();
    let c = read_json(&out.join(format!("{TOP}.review.json")));
    assert!(c["changed_cells"].as_u64().unwrap() > 100);
    for ch in c["changes"].as_array().unwrap() {
        assert_eq!(ch["to"], "background", "{ch}");
    }
    let upper = model.width * model.height / 2 + model.width;
    let cleared = (0..upper).filter(|&i| matches!(model.data[i], 2 | 3) && corrected.data[i] == 0).count();
    assert!(cleared > 100, "loss cells in the front half cleared: {cleared}");
    // The report's loss fraction and the patient's area fell; the page showed the new plan.
    let top_after = read_json(&out.join(format!("{TOP}.json")));
    let loss = |r: &serde_json::Value| r["loss_fraction_of_scalp"].as_f64().unwrap();
    assert!(loss(&top_after) < loss(&top_before) - 0.02, "{} -> {}", loss(&top_before), loss(&top_after));
    assert_eq!(top_after["review"]["state"], "reviewed");
    let patient_after = read_json(&out.join("patients/synth-2026-00505.json"));
    let area = |p: &serde_json::Value| p["assessment"]["area_to_cover_cm2"]["value"].as_f64().unwrap();
    assert!(area(&patient_after) < area(&patient_before) * 0.95, "{} -> {}", area(&patient_before), area(&patient_after));
    assert!(seen["plan_area"].as_str().unwrap().starts_with(&format!("{} cm²", area(&patient_after).round())), "{seen}");
    assert_eq!(seen["badge"], "reviewed");
    // The tablet's touch correction of the front view was saved as a retake.
    let f = read_json(&out.join(format!("{FRONT}.review.json")));
    assert_eq!(f["state"], "retake");
    assert!(f["changes"].as_array().unwrap().iter().any(|k| k["from"] == "bare" && k["to"] == "background"));
    assert!(read_json(&out.join(format!("{FRONT}.json")))["quality"]["retake"].as_bool().unwrap());
}
