//! Any text as a clinic's rules TOML: rules that pass their checks or a clear error, never a
//! panic; rules that load must also draft a plan without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scalpmap::measure::{Interval, SkinTone};
use scalpmap::patient::{Fusion, HairLoss, Stage};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(rules) = scalpmap::rules::Rules::from_overrides(text, "fuzz.toml") else { return };
    let f = Fusion {
        views: vec![],
        missing_views: vec![],
        hair_loss: HairLoss { percent: Some(40.0), severity: "moderate".into(), weight_covered: 100.0, method: String::new() },
        thinning_fraction: 0.2,
        bare_fraction: 0.3,
        scar_fraction: 0.05,
        area_to_cover_cm2: Some(Interval { value: 200.0, low: 120.0, high: 300.0 }),
        area_method: String::new(),
        stage: Stage { scale: "hamilton-norwood".into(), stage: Some("IV".into()), confidence: "moderate".into(), evidence: vec![] },
        skin: Some(SkinTone { ita_deg: 20.0, ita_class: "tan".into(), lab: [60.0, 10.0, 15.0], cells: 100 }),
        density_on_hair: Some(160.0),
        density_on_thinning: Some(40.0),
        front_loss: Some(0.3),
        warnings: vec![],
    };
    let plan = scalpmap::plan::plan(&f, &rules, chrono::NaiveDate::from_ymd_opt(2026, 12, 1));
    assert!(plan.sessions >= 1 && plan.schedule.len() == plan.sessions as usize);
});
