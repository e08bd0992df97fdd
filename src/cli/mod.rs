//! clap argument definitions and their translation into library configs.

mod messages;
mod plan;
mod review;

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use scalpmap::analyze::Settings;
use scalpmap::batch::{self, BatchConfig, Summary};
use scalpmap::model::{self, backend, BackendChoice};
use scalpmap::report::{Failure, Report};
use scalpmap::rules::{Rules, ScaleRules};
use scalpmap::synth::color::{HairColour, ItaClass};
use scalpmap::synth::scene::{PatternKind, ScarKind, View};
use scalpmap::synth::{self, Overrides, PhotoFormat, SynthConfig};

use messages::{count, say};

/// Exit code for a bad command line or setup problem (as clap uses).
const EXIT_USAGE: i32 = 2;
/// Exit code when some photos of a batch failed (the others were analysed).
const EXIT_SOME_FAILED: i32 = 1;
/// The most workers a batch starts (each holds a model session and a photo in memory).
const MAX_JOBS: usize = 256;

#[derive(Parser, Debug)]
#[command(name = "scalpmap", version, about = "Maps hair loss on scalp photos and drafts SMP treatment plans")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Analyse scalp photos: zone maps, measurements, JSON reports and overlays.
    Analyze(AnalyzeArgs),
    /// Analyse photos per patient and draft SMP treatment plans: patient JSON, HTML pages, index.
    Plan(PlanArgs),
    /// Check and correct the maps of an analyze or plan output folder in a local page; reports
    /// and plans follow the corrections.
    Review(review::ReviewArgs),
    /// Print the treatment rules (`--default`: the full default file to start a clinic's own).
    Rules(RulesArgs),
    /// Render synthetic scalp photos with exact ground truth (labels, density, areas).
    Synth(SynthArgs),
}

#[derive(clap::Args, Debug)]
struct PlanArgs {
    #[command(flatten)]
    analyze: AnalyzeArgs,
    /// CSV with the header `patient,view,file` (files relative to the CSV); without it, each
    /// folder below an input folder is a patient, and a photo directly in one is its own.
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// A clinic's rules (TOML); only the keys it changes are needed.
    #[arg(long)]
    rules: Option<PathBuf>,
    /// Date of the first session (YYYY-MM-DD), to date the schedule.
    #[arg(long)]
    start_date: Option<chrono::NaiveDate>,
    /// Let the manifest name photos outside its own folder (`/elsewhere/x.jpg`, `../x.jpg`);
    /// without it such rows are refused, so a manifest can only reach the photos beside it.
    #[arg(long, requires = "manifest")]
    allow_any_path: bool,
}

#[derive(clap::Args, Debug)]
struct RulesArgs {
    /// Print the default rules file, with the source of every value.
    #[arg(long)]
    default: bool,
    /// Print the rules in effect with this clinic file merged over the defaults.
    #[arg(long, conflicts_with = "default")]
    rules: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct AnalyzeArgs {
    /// Photos and folders (searched recursively for .jpg, .jpeg, .png, .webp, .tif, .tiff, .heic).
    paths: Vec<PathBuf>,
    /// Output folder for reports, overlays and the batch summary (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Another ONNX model that keeps the scalpmap contract (default: the embedded model).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Inference engine: auto takes ONNX Runtime when a library is found (ORT_DYLIB_PATH,
    /// a pip-installed onnxruntime, or the system), tract otherwise.
    #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
    backend: BackendArg,
    /// Photos analysed at once (default: all cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Scale of the photos in pixels per cm, for areas in cm².
    #[arg(long)]
    px_per_cm: Option<f64>,
    /// Print each report as one JSON line on stdout, for planning tools.
    #[arg(long)]
    jsonl: bool,
    /// Kept for older scripts: the class map (NAME.mask.png, one class id per pixel at the
    /// model's grid) is always written since 0.2.1.
    #[arg(long, hide = true)]
    #[allow(dead_code)]
    masks: bool,
    /// Replace file names in reports and summaries with stable hashes.
    #[arg(long)]
    anonymize: bool,
    /// Refuse photos larger than this many megapixels (checked before decoding).
    #[arg(long, default_value_t = 64.0)]
    max_megapixels: f64,
    /// Skip photos whose report in --out is up to date (same bytes, model and options).
    #[arg(long)]
    resume: bool,
    /// The view of photos whose file names (and manifest rows) name none: top, front, back,
    /// left or right.
    #[arg(long, value_parser = parse_view)]
    view: Option<View>,
    /// Keep side views' lower faces in the map (by default the face detector finds the face on
    /// left and right views and takes its cheeks, beard and chin out of the scalp).
    #[arg(long)]
    no_face_stage: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum BackendArg {
    Auto,
    Tract,
    Onnxruntime,
}

#[derive(clap::Args, Debug)]
struct SynthArgs {
    /// Number of photos to render.
    #[arg(long, default_value_t = 16)]
    count: usize,
    /// Width and height of each photo in pixels (64-4096).
    #[arg(long, default_value_t = 512)]
    size: u32,
    /// Seed: the same seed, index and options give byte-identical files.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output folder (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Index of the first item, to render a range of a larger set.
    #[arg(long, default_value_t = 0)]
    start: u64,
    /// Photo encoding.
    #[arg(long, value_enum, default_value_t = Format::Jpg)]
    format: Format,
    /// Worker threads (default: all cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Only this view: top, front, back, left, right.
    #[arg(long, value_parser = parse_view)]
    view: Option<View>,
    /// Only this loss pattern: norwood, ludwig, areata, diffuse.
    #[arg(long, value_parser = parse_pattern)]
    pattern: Option<PatternKind>,
    /// Only this skin-tone (ITA) class: very_light, light, intermediate, tan, brown, dark.
    #[arg(long, value_parser = parse_skin)]
    skin: Option<ItaClass>,
    /// Only this hair colour: black, dark_brown, brown, blond, red, grey, white.
    #[arg(long, value_parser = parse_hair)]
    hair: Option<HairColour>,
    /// Always include this scar: fut, fue, trauma.
    #[arg(long, value_parser = parse_scar)]
    scar: Option<ScarKind>,
    /// Stick the printed 2 cm calibration marker (docs/marker.svg) on the scalp; its scale is
    /// in the truth JSON (with --patients, on the top view).
    #[arg(long)]
    marker: bool,
    /// Render whole patients: each item's head in all five views, in a folder per patient,
    /// each photo named by its view, ready for `scalpmap plan`.
    #[arg(long)]
    patients: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    Jpg,
    Png,
}

fn parse_view(s: &str) -> Result<View, String> {
    View::parse(s).ok_or_else(|| format!("unknown view '{s}': use top, front, back, left or right"))
}
fn parse_pattern(s: &str) -> Result<PatternKind, String> {
    PatternKind::parse(s).ok_or_else(|| format!("unknown pattern '{s}': use norwood, ludwig, areata or diffuse"))
}
fn parse_skin(s: &str) -> Result<ItaClass, String> {
    ItaClass::parse(s).ok_or_else(|| format!("unknown skin class '{s}': use very_light, light, intermediate, tan, brown or dark"))
}
fn parse_hair(s: &str) -> Result<HairColour, String> {
    let v = serde_json::Value::String(s.replace('-', "_"));
    serde_json::from_value(v).map_err(|_| format!("unknown hair colour '{s}': use black, dark_brown, brown, blond, red, grey or white"))
}
fn parse_scar(s: &str) -> Result<ScarKind, String> {
    ScarKind::parse(s).ok_or_else(|| format!("unknown scar '{s}': use fut, fue or trauma"))
}

/// "0.2.0 (embedded model 0.5.0)": the crate and the model carry separate versions.
fn version_text() -> &'static str {
    let model = model::ModelContract::from_onnx(model::EMBEDDED_MODEL).map(|c| c.model_version).unwrap_or_else(|_| "unreadable".into());
    Box::leak(format!("{} (embedded model {model})", env!("CARGO_PKG_VERSION")).into_boxed_str())
}

/// Runs the command line and returns the process exit code.
pub fn main() -> i32 {
    use clap::{CommandFactory, FromArgMatches};
    // `plan` takes its photos from a manifest or from paths; `analyze` needs paths.
    let cmd = Cli::command()
        .version(version_text())
        .mut_subcommand("analyze", |c| c.mut_arg("paths", |a| a.required(true)))
        .mut_subcommand("plan", |c| c.mut_arg("paths", |a| a.required_unless_present("manifest")));
    let matches = cmd.clone().try_get_matches().unwrap_or_else(|e| messages::suggest_flag(e, &cmd).exit());
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let code = match cli.command {
        Command::Analyze(a) => analyze_cmd(a),
        Command::Plan(a) => plan::plan_cmd(a),
        Command::Review(a) => review::review_cmd(a),
        Command::Rules(a) => rules_cmd(a),
        Command::Synth(a) => synth_cmd(a),
    };
    // Every file was written; a message that could not be is still a failure to report.
    if code == 0 && messages::stderr_lost() {
        EXIT_SOME_FAILED
    } else {
        code
    }
}

fn progress(len: u64) -> ProgressBar {
    // Nothing on a pipe or in CI logs: the bar is for people at a terminal.
    if !std::io::stderr().is_terminal() {
        return ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden());
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {per_sec} eta {eta}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

fn synth_cmd(a: SynthArgs) -> i32 {
    let config = SynthConfig {
        count: a.count,
        size: a.size,
        seed: a.seed,
        out: a.out,
        format: match a.format {
            Format::Jpg => PhotoFormat::Jpeg,
            Format::Png => PhotoFormat::Png,
        },
        start: a.start,
        overrides: Overrides {
            view: a.view,
            pattern: a.pattern,
            skin: a.skin,
            hair: a.hair,
            scar: a.scar,
            marker: a.marker,
            view_in_name: false,
        },
        patients: a.patients,
    };
    let bar = progress(config.count as u64 * if config.patients { 5 } else { 1 });
    bar.set_prefix("synth");
    let started = Instant::now();
    let result = with_jobs(a.jobs, || synth::run(&config, &|| bar.inc(1)));
    bar.finish_and_clear();
    match result {
        Ok(n) => {
            let secs = started.elapsed().as_secs_f64();
            say!(
                "rendered {} into {} in {secs:.1} s ({:.1} photos/s)",
                count(n, "photo", "photos"),
                config.out.display(),
                n as f64 / secs.max(1e-9)
            );
            0
        }
        Err(e) => {
            say!("scalpmap synth: {e:#}");
            EXIT_USAGE
        }
    }
}

/// Runs `f` on a rayon pool of `jobs` threads, or the global pool when unset.
fn with_jobs<T: Send>(jobs: Option<usize>, f: impl FnOnce() -> anyhow::Result<T> + Send) -> anyhow::Result<T> {
    match jobs {
        Some(0) => anyhow::bail!("--jobs must be at least 1"),
        Some(j) => rayon::ThreadPoolBuilder::new().num_threads(j).build()?.install(f),
        None => f(),
    }
}

fn analyze_cmd(a: AnalyzeArgs) -> i32 {
    match analyze_inner(a) {
        Ok(code) => code,
        Err(e) => {
            say!("scalpmap analyze: {e:#}");
            EXIT_USAGE
        }
    }
}

/// A path the user typed that does not exist is a usage error (exit 2), not a failed photo.
fn check_paths_exist(paths: &[PathBuf]) -> anyhow::Result<()> {
    match paths.iter().find(|p| !p.exists()) {
        Some(p) => anyhow::bail!("{}: no such file or folder; check the path", p.display()),
        None => Ok(()),
    }
}

fn analyze_inner(a: AnalyzeArgs) -> anyhow::Result<i32> {
    anyhow::ensure!(!a.paths.is_empty(), "give at least one photo or folder");
    check_paths_exist(&a.paths)?;
    let (inputs, pre_failures) = batch::collect_inputs(&a.paths);
    let loaded = model::load(a.model.as_deref())?;
    let _lock = scalpmap::fsio::OutLock::acquire(&a.out)?;
    let (summary, _) = run_batch(&a, &loaded, BatchJob::new(inputs, pre_failures))?;
    Ok(if summary.failed > 0 { EXIT_SOME_FAILED } else { 0 })
}

/// What one batch covers beyond the command-line options: the photos, what `plan` knows about
/// them, and whether the caller wants the reports back.
struct BatchJob {
    inputs: Vec<PathBuf>,
    /// Inputs that failed before analysis (unreadable folders, manifest rows).
    pre_failures: Vec<Failure>,
    /// View per photo, from a manifest; photos without one get the view inferred.
    views: HashMap<PathBuf, String>,
    /// Output-name prefix per photo (the patient), so two patients' `IMG_0001.jpg` never collide.
    name_prefixes: HashMap<PathBuf, String>,
    scale_rules: ScaleRules,
    /// Keep every report in memory for the caller (`plan` fuses them per patient).
    keep_reports: bool,
}

impl BatchJob {
    /// A plain `analyze` batch: default scale rules, views inferred, reports not kept.
    fn new(inputs: Vec<PathBuf>, pre_failures: Vec<Failure>) -> BatchJob {
        BatchJob {
            inputs,
            pre_failures,
            views: HashMap::new(),
            name_prefixes: HashMap::new(),
            scale_rules: Rules::default().scale,
            keep_reports: false,
        }
    }
}

fn backend_choice(b: BackendArg) -> BackendChoice {
    match b {
        BackendArg::Auto => BackendChoice::Auto,
        BackendArg::Tract => BackendChoice::Tract,
        BackendArg::Onnxruntime => BackendChoice::OnnxRuntime,
    }
}

/// Analyses the job's photos as `a` says; returns the summary and, when asked, every report.
fn run_batch(a: &AnalyzeArgs, loaded: &model::LoadedModel, job: BatchJob) -> anyhow::Result<(Summary, Vec<Report>)> {
    let BatchJob { inputs, pre_failures, mut views, name_prefixes, scale_rules, keep_reports: keep } = job;
    if let Some(v) = a.view {
        for p in inputs.iter().filter(|p| scalpmap::analyze::view_from_name(p).is_none()) {
            views.entry(p.clone()).or_insert_with(|| v.name().to_string());
        }
    }
    // Ranges where the arithmetic stays valid: areas divide by the square of the scale.
    if let Some(k) = a.px_per_cm {
        anyhow::ensure!(
            (0.1..=100_000.0).contains(&k),
            "--px-per-cm {k} is out of range: give 0.1 to 100000 pixels per cm (a phone photo of a scalp is about 20-200)"
        );
    }
    anyhow::ensure!(
        (0.01..=1000.0).contains(&a.max_megapixels),
        "--max-megapixels {} is out of range: give 0.01 to 1000 (phones take 12-50)",
        a.max_megapixels
    );
    let jobs = match a.jobs {
        Some(0) => anyhow::bail!("--jobs must be at least 1"),
        Some(j) if j > MAX_JOBS => anyhow::bail!("--jobs must be at most {MAX_JOBS} (each worker holds a model session)"),
        Some(j) => j,
        None => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    };
    let engine = backend::init(backend_choice(a.backend))?.clone();
    if inputs.is_empty() && pre_failures.is_empty() {
        anyhow::bail!("no photos found in {:?}: give .jpg, .png, .webp, .tif or .heic files or folders holding them", a.paths);
    }
    // Outputs among the user's photos could overwrite their own files (NAME.json, summary.csv).
    if let Ok(out) = a.out.canonicalize() {
        let inside = |p: &PathBuf| p.parent().and_then(|d| d.canonicalize().ok()).is_some_and(|d| d == out);
        if let Some(p) = inputs.iter().find(|p| inside(p)) {
            anyhow::bail!(
                "--out {} holds the photo {}: scalpmap's outputs would sit among your files and could overwrite them; \
                 give --out a folder of its own",
                a.out.display(),
                p.display()
            );
        }
    }
    let mut settings = Settings::new(loaded.info(), engine.clone());
    settings.px_per_cm = a.px_per_cm;
    settings.anonymize = a.anonymize;
    settings.max_pixels = (a.max_megapixels * 1e6) as u64;
    settings.scale_rules = scale_rules;
    settings.face_stage = !a.no_face_stage;
    let total = inputs.len() + pre_failures.len();
    let cfg = BatchConfig {
        inputs,
        out: a.out.clone(),
        model: &loaded.bytes,
        contract: loaded.contract.clone(),
        settings,
        session_threads: 1,
        views,
        name_prefixes,
        resume: a.resume,
    };
    let bar = progress(total as u64);
    bar.set_prefix("analyze");
    bar.inc(pre_failures.len() as u64);
    let stdout = Mutex::new(std::io::stdout());
    let kept = Mutex::new(Vec::new());
    // A --jsonl reader that cannot take the lines (full disk, closed pipe) must not look served.
    let jsonl_failed: Mutex<Option<String>> = Mutex::new(None);
    let on_report = |r: &Report| {
        if a.jsonl {
            if let Ok(line) = serde_json::to_string(r) {
                use std::io::Write;
                let mut out = stdout.lock().unwrap_or_else(|p| p.into_inner());
                if let Err(e) = writeln!(out, "{line}").and_then(|_| out.flush()) {
                    jsonl_failed.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e.to_string());
                }
            }
        }
        if keep {
            kept.lock().unwrap_or_else(|p| p.into_inner()).push(r.clone());
        }
    };
    let summary = with_jobs(Some(jobs), || batch::run(&cfg, pre_failures, &on_report, &|| bar.inc(1)))?;
    bar.finish_and_clear();
    for row in summary.rows.iter().filter(|r| r.status == "failed") {
        say!("failed: {}", row.error.as_deref().unwrap_or("unknown error"));
    }
    let skipped = if summary.skipped > 0 { format!(" ({} up to date, skipped)", summary.skipped) } else { String::new() };
    say!(
        "analysed {} of {}{skipped} in {:.1} s with {} {}; summary: {}",
        summary.analysed,
        count(summary.photos, "photo", "photos"),
        summary.seconds,
        engine.name,
        engine.version,
        a.out.join("summary.csv").display()
    );
    if let Some(e) = jsonl_failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
        anyhow::bail!("--jsonl: cannot write the reports to standard output ({e}); they are in {}", a.out.display());
    }
    Ok((summary, kept.into_inner().unwrap_or_else(|p| p.into_inner())))
}

fn rules_cmd(a: RulesArgs) -> i32 {
    // `--default` (or no flag): the commented default file; `--rules FILE`: the rules in effect.
    let Some(path) = a.rules.filter(|_| !a.default) else {
        return print_or_fail(scalpmap::rules::DEFAULT_TOML);
    };
    let text = Rules::load(&path).and_then(|r| {
        toml::to_string(&r).map_err(|e| scalpmap::rules::RulesError::Invalid { path: path.display().to_string(), why: e.to_string() })
    });
    match text {
        Ok(text) => print_or_fail(&text),
        Err(e) => {
            say!("scalpmap rules: {e}");
            EXIT_USAGE
        }
    }
}

/// Writes `text` to stdout; a full disk or a closed pipe is an error (exit 1), never a panic.
fn print_or_fail(text: &str) -> i32 {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => 0,
        Err(e) => {
            say!("scalpmap rules: cannot write to standard output ({e})");
            EXIT_SOME_FAILED
        }
    }
}
