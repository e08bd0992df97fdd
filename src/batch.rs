//! A batch: collecting photos from files and folders, analysing them in parallel with one
//! model session per worker, writing each photo's outputs atomically, recording failures
//! without stopping, and the batch summary (JSON and CSV).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use image::ImageFormat;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::analyze::{analyze_corrected, Analysis, Settings};
use crate::fsio::write_atomic;
use crate::model::{ModelContract, Segmenter};
use crate::report::{Failure, Report};

/// File extensions taken from folders (files named explicitly are always tried).
const PHOTO_EXTENSIONS: [&str; 8] = ["jpg", "jpeg", "png", "webp", "tif", "tiff", "heic", "heif"];
/// Suffixes of scalpmap's own outputs (analysis overlays and masks, the renderer's truth
/// maps), never taken as inputs when a folder is walked.
const OUTPUT_SUFFIXES: [&str; 4] = [".overlay.png", ".mask.png", ".labels.png", ".density.png"];

/// Photos found under `paths`, sorted and de-duplicated, plus the paths that could not be read.
pub fn collect_inputs(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<Failure>) {
    let mut found = BTreeSet::new();
    let mut failures = Vec::new();
    let mut seen_dirs = HashSet::new();
    for p in paths {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => walk(p, &mut found, &mut failures, &mut seen_dirs),
            Ok(_) => {
                found.insert(p.clone());
            }
            Err(e) => failures
                .push(Failure { file: crate::fsio::path_text(p), error: format!("{}: cannot read ({e})", crate::fsio::path_text(p)) }),
        }
    }
    (found.into_iter().collect(), failures)
}

fn walk(dir: &Path, found: &mut BTreeSet<PathBuf>, failures: &mut Vec<Failure>, seen: &mut HashSet<PathBuf>) {
    // Canonical paths guard against symlink loops.
    let Ok(canon) = dir.canonicalize() else {
        failures.push(Failure {
            file: crate::fsio::path_text(dir),
            error: format!("{}: cannot resolve the folder", crate::fsio::path_text(dir)),
        });
        return;
    };
    if !seen.insert(canon) {
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            failures.push(Failure {
                file: crate::fsio::path_text(dir),
                error: format!("{}: cannot list the folder ({e})", crate::fsio::path_text(dir)),
            });
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_ascii_lowercase();
        match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => walk(&path, found, failures, seen),
            Ok(_) => {
                let is_photo =
                    path.extension().is_some_and(|e| PHOTO_EXTENSIONS.contains(&e.to_string_lossy().to_ascii_lowercase().as_str()));
                if is_photo && !name.starts_with('.') && !OUTPUT_SUFFIXES.iter().any(|s| name.ends_with(s)) {
                    found.insert(path);
                }
            }
            Err(e) => failures.push(Failure {
                file: crate::fsio::path_text(&path),
                error: format!("{}: cannot read ({e})", crate::fsio::path_text(&path)),
            }),
        }
    }
}

/// Names a batch writes for itself (`summary.json`, `summary.csv`, `index.html`): no photo's
/// outputs may take them.
const RESERVED_NAMES: [&str; 2] = ["summary", "index"];

/// Output base names: the file stem (after its prefix, if any), with `-2`, `-3`... for repeats
/// in input order. Unique for any set of inputs, also where the file system ignores case, a
/// suffixed name is itself an input's stem (`x`, `x`, `x-2`), or a stem is a batch's own name.
pub fn output_names(inputs: &[PathBuf], prefixes: &HashMap<PathBuf, String>) -> Vec<String> {
    let mut taken: std::collections::HashSet<String> = RESERVED_NAMES.iter().map(|s| s.to_string()).collect();
    inputs
        .iter()
        .map(|p| {
            let stem: String = p.file_stem().map(crate::fsio::name_text).unwrap_or_else(|| "photo".into());
            let stem = match prefixes.get(p) {
                Some(pre) => format!("{pre}_{stem}"),
                None => stem,
            };
            let stem: String = stem.chars().map(|c| if c.is_control() || c == '/' || c == '\\' { '_' } else { c }).collect();
            // Long names (a 250-byte photo name, a long patient id before it) are cut, and the
            // suffix keeps the cut names apart.
            crate::fsio::unique_name(&mut taken, crate::fsio::clip(&stem, crate::fsio::MAX_STEM_BYTES))
        })
        .collect()
}

/// A stable stand-in for a file name: `anon-` and 16 hex digits of the path's SHA-256.
pub fn anonymous_name(path: &Path) -> String {
    // The canonical path, so that `in/x.jpg` and `./in/x.jpg` are one photo.
    let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    format!("anon-{}", &crate::analyze::sha256_hex(canonical.to_string_lossy().as_bytes())[..16])
}

pub struct BatchConfig<'a> {
    pub inputs: Vec<PathBuf>,
    pub out: PathBuf,
    pub model: &'a [u8],
    pub contract: ModelContract,
    pub settings: Settings,
    /// Intra-op threads per session (ONNX Runtime only).
    pub session_threads: usize,
    /// Views given by a manifest, by input path; others come from the file name.
    pub views: HashMap<PathBuf, String>,
    /// Output names start with these (the patient, in `plan`), by input path.
    pub name_prefixes: HashMap<PathBuf, String>,
    /// Skip photos whose outputs are up to date (see [`up_to_date`]).
    pub resume: bool,
}

/// Summary status of a photo skipped by --resume.
pub const UP_TO_DATE: &str = "up-to-date";

/// The earlier report of a photo, when its outputs are complete and were made from the same
/// bytes (SHA-256), by the same model (version and training data) and scalpmap version, with the
/// same scale and the same review (`reviewed_at`, None for none); otherwise None and the photo is
/// analysed again.
///
/// The photo is found by its output name and its bytes' SHA-256 (`sha256`), not by the path's
/// spelling (`in/`, `./in/`, absolute, or a moved folder): the report comes back naming the
/// photo as `file`, today's spelling. `view` is the view this run gives the photo (manifest, `--view` or name);
/// a changed view, scale or scale rule means analysing again.
pub fn up_to_date(
    out: &Path,
    name: &str,
    file: &str,
    sha256: &str,
    view: Option<&str>,
    s: &Settings,
    reviewed_at: Option<&str>,
) -> Option<Report> {
    let mut r: Report = serde_json::from_slice(&std::fs::read(out.join(format!("{name}.json"))).ok()?).ok()?;
    let same = r.input.sha256 == sha256
        && r.model == s.model
        && r.scalpmap_version == env!("CARGO_PKG_VERSION")
        && r.px_per_cm == s.px_per_cm
        && r.options_sha256.as_deref() == Some(crate::analyze::options_sha256(view, s).as_str())
        && r.review.as_ref().map(|k| k.reviewed_at.as_str()) == reviewed_at
        && out.join(format!("{name}.overlay.png")).is_file()
        && out.join(format!("{name}.mask.png")).is_file();
    r.input.file = file.to_string();
    same.then_some(r)
}

/// One row of the batch summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    pub file: String,
    pub output: Option<String>,
    pub status: String,
    pub error: Option<String>,
    pub view: Option<String>,
    pub hair: Option<f64>,
    pub thinning: Option<f64>,
    pub bare: Option<f64>,
    pub scar: Option<f64>,
    pub loss_fraction_of_scalp: Option<f64>,
    pub zones: Option<usize>,
    pub retake: Option<bool>,
    pub total_ms: Option<f64>,
    /// "reviewed 2026-12-01" or "retake 2026-12-01" when a practitioner corrected the map.
    #[serde(default)]
    pub review: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Summary {
    pub schema: String,
    pub photos: usize,
    /// Photos with a report: analysed now, or up to date from an earlier run (--resume).
    pub analysed: usize,
    pub failed: usize,
    /// Of the analysed, those whose report was already up to date.
    #[serde(default)]
    pub skipped: usize,
    pub seconds: f64,
    pub rows: Vec<SummaryRow>,
}

impl SummaryRow {
    pub fn ok(file: String, output: String, r: &Report) -> SummaryRow {
        SummaryRow {
            file,
            output: Some(output),
            status: "ok".into(),
            error: None,
            view: r.view.clone(),
            hair: r.fraction_of_scalp("hair"),
            thinning: r.fraction_of_scalp("thinning"),
            bare: r.fraction_of_scalp("bare"),
            scar: r.fraction_of_scalp("scar"),
            loss_fraction_of_scalp: Some(r.loss_fraction_of_scalp),
            zones: Some(r.zones.len()),
            retake: Some(r.quality.retake),
            total_ms: Some(r.timings_ms.total),
            review: r.review.as_ref().map(crate::correction::ReviewInfo::label),
        }
    }

    pub fn failed(f: &Failure) -> SummaryRow {
        SummaryRow {
            file: f.file.clone(),
            output: None,
            status: "failed".into(),
            error: Some(f.error.clone()),
            view: None,
            hair: None,
            thinning: None,
            bare: None,
            scar: None,
            loss_fraction_of_scalp: None,
            zones: None,
            retake: None,
            total_ms: None,
            review: None,
        }
    }
}

/// Runs the batch. `on_report` sees each report as it is written (for --jsonl), `tick` each
/// finished photo (for the progress bar). A photo that fails is recorded; the batch goes on.
pub fn run(
    cfg: &BatchConfig,
    pre_failures: Vec<Failure>,
    on_report: &(dyn Fn(&Report) + Sync),
    tick: &(dyn Fn() + Sync),
) -> anyhow::Result<Summary> {
    let started = Instant::now();
    std::fs::create_dir_all(&cfg.out).map_err(|e| anyhow::anyhow!("cannot create the output folder {}: {e}", cfg.out.display()))?;
    // Leftovers of a killed run are never whole outputs: clear them.
    crate::fsio::remove_stale_temporaries(&cfg.out);
    // With --anonymize the output files are named by the same stable hash as the reports.
    let names = if cfg.settings.anonymize {
        cfg.inputs.iter().map(|p| anonymous_name(p)).collect()
    } else {
        output_names(&cfg.inputs, &cfg.name_prefixes)
    };
    let input_set: HashSet<PathBuf> = cfg.inputs.iter().filter_map(|p| p.canonicalize().ok()).collect();
    // One session per worker: sessions are checked out of a pool and returned, so a worker
    // builds at most one, however rayon splits the work.
    let pool: Mutex<Vec<Segmenter>> = Mutex::new(Vec::new());
    let mut first = Segmenter::new(cfg.model, cfg.contract.clone(), cfg.session_threads)?;
    probe(&mut first, &cfg.settings.model.source)?;
    pool.lock().unwrap_or_else(|p| p.into_inner()).push(first);
    let rows: Vec<SummaryRow> = cfg
        .inputs
        .par_iter()
        .zip(names.par_iter())
        .map(|(path, name)| {
            let file = if cfg.settings.anonymize { anonymous_name(path) } else { crate::fsio::path_text(path) };
            let result = (|| -> anyhow::Result<(Report, bool)> {
                let t = Instant::now();
                let bytes = crate::photo::read_file(path, cfg.settings.max_pixels)?;
                let read_ms = t.elapsed().as_secs_f64() * 1e3;
                // A practitioner's correction of this very photo (`scalpmap review`) is used.
                let (mw, mh) = (cfg.contract.input_width, cfg.contract.input_height);
                // Hashed only when needed (a review saved for this output, or --resume), and once.
                let sha = std::cell::OnceCell::new();
                let sha256 = || sha.get_or_init(|| crate::analyze::sha256_hex(&bytes)).as_str();
                let corrected = crate::correction::json_path(&cfg.out, name)
                    .is_file()
                    .then(|| crate::correction::load_valid(&cfg.out, name, sha256(), mw, mh))
                    .flatten();
                // A view set at review wins over the manifest's and the name's.
                let given = corrected.as_ref().and_then(|k| k.correction.view.as_deref()).or(cfg.views.get(path).map(String::as_str));
                if cfg.resume {
                    let view = crate::analyze::view_of(given, path);
                    let reviewed_at = corrected.as_ref().map(|k| k.correction.reviewed_at.as_str());
                    if let Some(done) = up_to_date(&cfg.out, name, &file, sha256(), view.as_deref(), &cfg.settings, reviewed_at) {
                        return Ok((done, true));
                    }
                }
                // Take the lock only to pop: building a session must not block the others.
                let pooled = pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
                let mut seg = match pooled {
                    Some(s) => s,
                    None => Segmenter::new(cfg.model, cfg.contract.clone(), cfg.session_threads)?,
                };
                let analysis = analyze_corrected(
                    &mut seg,
                    &bytes,
                    path,
                    given,
                    &cfg.settings,
                    read_ms,
                    corrected.as_ref(),
                    sha.get().map(String::as_str),
                );
                pool.lock().unwrap_or_else(|p| p.into_inner()).push(seg);
                let analysis = analysis?;
                write_outputs(&cfg.out, name, &analysis, &input_set)?;
                Ok((analysis.report, false))
            })();
            tick();
            match result {
                Ok((report, skipped)) => {
                    on_report(&report);
                    let mut row = SummaryRow::ok(file, name.clone(), &report);
                    if skipped {
                        row.status = UP_TO_DATE.into();
                    }
                    row
                }
                Err(e) => {
                    // With --anonymize the message must not name the photo or its folder either.
                    let error = format!("{e:#}");
                    let error = if cfg.settings.anonymize { error.replace(&path.display().to_string(), &file) } else { error };
                    SummaryRow::failed(&Failure { file, error })
                }
            }
        })
        .collect();
    let mut all: Vec<SummaryRow> = pre_failures
        .iter()
        .map(|f| match cfg.settings.anonymize {
            true => {
                let anon = anonymous_name(Path::new(&f.file));
                SummaryRow::failed(&Failure { error: f.error.replace(&f.file, &anon), file: anon })
            }
            false => SummaryRow::failed(f),
        })
        .collect();
    all.extend(rows);
    let failed = all.iter().filter(|r| r.status == "failed").count();
    let skipped = all.iter().filter(|r| r.status == UP_TO_DATE).count();
    let summary = Summary {
        schema: "scalpmap-summary/1".into(),
        photos: all.len(),
        analysed: all.len() - failed,
        failed,
        skipped,
        seconds: (started.elapsed().as_secs_f64() * 1e3).round() / 1e3,
        rows: all,
    };
    let st = &cfg.settings;
    let record = crate::record::RunRecord {
        schema: crate::record::RECORD_SCHEMA.into(),
        scalpmap_version: env!("CARGO_PKG_VERSION").into(),
        model_source: st.model.source.clone(),
        model_version: st.model.version.clone(),
        px_per_cm: st.px_per_cm,
        max_pixels: st.max_pixels,
        anonymize: st.anonymize,
        scale_rules: st.scale_rules.clone(),
        face_stage: st.face_stage,
        photos: cfg
            .inputs
            .iter()
            .zip(&names)
            .map(|(p, n)| {
                let path = (!st.anonymize).then(|| p.canonicalize().ok().map(|c| c.to_string_lossy().into_owned())).flatten();
                (n.clone(), crate::record::RecordedPhoto { path, view: cfg.views.get(p).cloned(), patient: None })
            })
            .collect(),
        plan: None,
    };
    crate::record::write(&cfg.out, &record)?;
    write_atomic(&cfg.out.join("summary.json"), &serde_json::to_vec_pretty(&summary)?)?;
    write_atomic(&cfg.out.join("summary.csv"), summary_csv(&summary.rows).as_bytes())?;
    Ok(summary)
}

/// Runs the model once on a plain grey picture: a model that fails or answers NaN there is
/// unusable, and one clear message beats the same failure on every photo.
fn probe(seg: &mut Segmenter, source: &str) -> anyhow::Result<()> {
    let grey = image::RgbImage::from_pixel(64, 64, image::Rgb([128, 128, 128]));
    let input = crate::model::prepare(&grey, seg.contract());
    seg.run(&input).map(|_| ()).map_err(|e| anyhow::anyhow!("the model ({source}) fails on a plain grey picture: {e}; use another model"))
}

/// Writes a photo's overlay, class map (`NAME.mask.png`, the model's answer) and report, the
/// report last; `inputs` (canonical paths) are never overwritten.
pub fn write_outputs(out: &Path, name: &str, a: &Analysis, inputs: &HashSet<PathBuf>) -> anyhow::Result<()> {
    let guard = |p: PathBuf| -> anyhow::Result<PathBuf> {
        // Inputs are never overwritten, even when --out is the input folder.
        if p.canonicalize().is_ok_and(|c| inputs.contains(&c)) {
            anyhow::bail!("{} would overwrite an input photo; choose another --out", p.display());
        }
        Ok(p)
    };
    let mut png = Cursor::new(Vec::new());
    a.overlay.write_to(&mut png, ImageFormat::Png)?;
    write_atomic(&guard(out.join(format!("{name}.overlay.png")))?, png.get_ref())?;
    // Always written (a few kB): `scalpmap review` shows it, and its eraser goes back to it.
    write_atomic(&guard(out.join(format!("{name}.mask.png")))?, &crate::correction::map_png(&a.model_map)?)?;
    // The report goes last: a report on disk always has its overlay beside it.
    write_atomic(&guard(out.join(format!("{name}.json")))?, &serde_json::to_vec_pretty(&a.report)?)
}

/// CSV with RFC 4180 quoting.
pub fn summary_csv(rows: &[SummaryRow]) -> String {
    fn q(s: &str) -> String {
        // A cell a spreadsheet would run as a formula (a photo named "=HYPERLINK(...).jpg")
        // is written as text, with a leading apostrophe.
        let s = &if s.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{s}") } else { s.to_string() };
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    }
    fn f(v: Option<f64>) -> String {
        v.map(|x| format!("{x:.4}")).unwrap_or_default()
    }
    let mut out =
        String::from("file,output,status,error,view,hair,thinning,bare,scar,loss_fraction_of_scalp,zones,retake,total_ms,review\n");
    for r in rows {
        let cols = [
            q(&r.file),
            q(r.output.as_deref().unwrap_or("")),
            q(&r.status),
            q(r.error.as_deref().unwrap_or("")),
            q(r.view.as_deref().unwrap_or("")),
            f(r.hair),
            f(r.thinning),
            f(r.bare),
            f(r.scar),
            f(r.loss_fraction_of_scalp),
            r.zones.map(|z| z.to_string()).unwrap_or_default(),
            r.retake.map(|b| b.to_string()).unwrap_or_default(),
            r.total_ms.map(|t| format!("{t:.1}")).unwrap_or_default(),
            q(r.review.as_deref().unwrap_or("")),
        ];
        out.push_str(&cols.join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_never_start_a_formula() {
        let row = SummaryRow::failed(&Failure { file: "=HYPERLINK(\"x\")".into(), error: "-1 problem".into() });
        let csv = summary_csv(&[row]);
        let line = csv.lines().nth(1).unwrap();
        assert!(line.starts_with("\"'=HYPERLINK(") && line.contains(",'-1 problem,"), "{line}");
    }

    #[test]
    fn output_names_are_unique_in_input_order() {
        let inputs: Vec<PathBuf> = ["a/x.jpg", "b/x.jpg", "b/y.png", "c/x.JPG"].iter().map(PathBuf::from).collect();
        assert_eq!(output_names(&inputs, &HashMap::new()), vec!["x", "x-2", "y", "x-3"]);
        let prefixes = HashMap::from([(PathBuf::from("a/x.jpg"), "anna".to_string())]);
        assert_eq!(output_names(&inputs, &prefixes), vec!["anna_x", "x", "y", "x-2"]);
        let tricky: Vec<PathBuf> = ["a/x.jpg", "b/x.jpg", "a/x-2.jpg", "summary.jpg", "Index.png"].iter().map(PathBuf::from).collect();
        assert_eq!(output_names(&tricky, &HashMap::new()), vec!["x", "x-2", "x-2-2", "summary-2", "Index-2"]);
    }

    #[test]
    fn output_names_are_unique_for_any_inputs() {
        // A property over random batches drawn from names that collide: repeats, suffixes, case,
        // and the batch's own names.
        let pool = ["x", "X", "x-2", "x-3", "x-2-2", "summary", "SUMMARY", "index", "summary-2", "a b", "a_b", "y"];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |m: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % m as u64) as usize
        };
        for _ in 0..2000 {
            let n = 1 + next(12);
            let inputs: Vec<PathBuf> = (0..n).map(|_| PathBuf::from(format!("d{}/{}.jpg", next(3), pool[next(pool.len())]))).collect();
            let names = output_names(&inputs, &HashMap::new());
            let mut seen = std::collections::HashSet::new();
            for name in &names {
                assert!(seen.insert(name.to_lowercase()), "{name} twice in {names:?} from {inputs:?}");
                assert!(!RESERVED_NAMES.contains(&name.to_lowercase().as_str()), "{name} is the batch's own");
            }
        }
    }

    #[test]
    fn collect_walks_folders_skips_outputs_and_reports_missing() {
        let d = tempfile::tempdir().unwrap();
        let sub = d.path().join("client1");
        std::fs::create_dir(&sub).unwrap();
        for n in ["top.jpg", "back.PNG", "notes.txt", "top.overlay.png", "top.json", "s.labels.png", "s.density.png"] {
            std::fs::write(sub.join(n), b"x").unwrap();
        }
        #[cfg(unix)]
        std::os::unix::fs::symlink(d.path(), sub.join("loop")).unwrap();
        let (found, failures) = collect_inputs(&[d.path().to_path_buf(), d.path().join("missing.jpg")]);
        let names: Vec<String> = found.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, vec!["back.PNG", "top.jpg"]);
        assert_eq!(failures.len(), 1);
        assert!(failures[0].error.contains("missing.jpg"));
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let row = SummaryRow::failed(&Failure { file: "a,b.jpg".into(), error: "said \"no\"".into() });
        let csv = summary_csv(&[row]);
        assert_eq!(csv.lines().nth(1).unwrap(), "\"a,b.jpg\",,failed,\"said \"\"no\"\"\",,,,,,,,,,");
    }
}
