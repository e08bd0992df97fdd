//! Which inference engine runs the model: tract (pure Rust through `ort-tract`, always built
//! in) or a real ONNX Runtime library the user has, loaded at run time. ort keeps one engine
//! per process, so the choice is made once, before the first session.

use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};

/// What the user asked for with `--backend`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendChoice {
    /// ONNX Runtime when a library is found, tract otherwise.
    Auto,
    Tract,
    OnnxRuntime,
}

/// The engine that is running, as every report states it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendInfo {
    /// "tract" or "onnxruntime".
    pub name: String,
    pub version: String,
    /// The ONNX Runtime library file, when that engine runs.
    pub library: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("no ONNX Runtime library found (looked in: {searched}). Set ORT_DYLIB_PATH to a libonnxruntime of version 1.24 or newer (for example from `pip install onnxruntime`, under onnxruntime/capi/), or use --backend tract")]
    NotFound { searched: String },
    #[error(
        "cannot load ONNX Runtime from {path}: {why}. Set ORT_DYLIB_PATH to a working libonnxruntime 1.24 or newer, or use --backend tract"
    )]
    Load { path: PathBuf, why: String },
    #[error("ONNX Runtime {version} at {path} is too old: scalpmap needs 1.24 or newer (C API {api}). Install a newer onnxruntime or use --backend tract")]
    TooOld { path: PathBuf, version: String, api: u32 },
    #[error("the inference engine is already {active} in this process; it cannot switch to {wanted}")]
    Switch { active: String, wanted: String },
}

static ACTIVE: OnceLock<BackendInfo> = OnceLock::new();
static INIT: Mutex<()> = Mutex::new(());

/// Chooses and starts the engine for this process; later calls return the same one.
pub fn init(choice: BackendChoice) -> Result<&'static BackendInfo, BackendError> {
    let _guard = INIT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(active) = ACTIVE.get() {
        let ok = match choice {
            BackendChoice::Auto => true,
            BackendChoice::Tract => active.name == "tract",
            BackendChoice::OnnxRuntime => active.name == "onnxruntime",
        };
        return if ok {
            Ok(active)
        } else {
            Err(BackendError::Switch { active: active.name.clone(), wanted: format!("{choice:?}").to_lowercase() })
        };
    }
    let info = match choice {
        BackendChoice::Tract => start_tract(),
        BackendChoice::OnnxRuntime => start_onnxruntime()?,
        BackendChoice::Auto => match start_onnxruntime() {
            Ok(info) => info,
            Err(BackendError::NotFound { .. }) => start_tract(),
            Err(e) => return Err(e),
        },
    };
    Ok(ACTIVE.get_or_init(|| info))
}

/// The engine running in this process, if one was chosen.
pub fn active() -> Option<&'static BackendInfo> {
    ACTIVE.get()
}

fn start_tract() -> BackendInfo {
    ort::set_api(ort_tract::api());
    // ort-tract's build string: "ORT Build Info: backend=ort-tract, version=X".
    let version = ort::info().rsplit("version=").next().unwrap_or("unknown").to_string();
    BackendInfo { name: "tract".into(), version: format!("ort-tract {version}"), library: None }
}

/// Where ONNX Runtime is looked for, in order: `ORT_DYLIB_PATH` alone when set; otherwise the
/// `onnxruntime` Python wheel's library in an active virtual environment or the usual
/// site-packages folders; then the system's library folders.
pub fn candidate_libraries() -> Vec<PathBuf> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        return vec![PathBuf::from(p)];
    }
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Some(v) = std::env::var_os("VIRTUAL_ENV") {
        roots.push(PathBuf::from(v).join("lib"));
    }
    if let Some(h) = std::env::var_os("HOME") {
        let h = PathBuf::from(h);
        roots.push(h.join(".local/lib"));
        if let Ok(entries) = std::fs::read_dir(h.join(".pyenv/versions")) {
            roots.extend(entries.flatten().map(|e| e.path().join("lib")));
        }
    }
    roots.extend(["/usr/local/lib", "/usr/lib", "/usr/lib/python3"].map(PathBuf::from));
    let mut out = Vec::new();
    for root in &roots {
        for py in subdirs_starting(root, "python3").into_iter().chain([root.clone()]) {
            for sp in ["site-packages", "dist-packages"] {
                out.extend(libs_in(&py.join(sp).join("onnxruntime/capi")));
            }
        }
    }
    for dir in ["/usr/local/lib", "/usr/lib", "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/opt/onnxruntime/lib"] {
        out.extend(libs_in(Path::new(dir)));
    }
    out.dedup();
    out
}

fn subdirs_starting(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|it| {
            it.flatten().map(|e| e.path()).filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(prefix))).collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// `libonnxruntime.so*` files in a folder, newest-looking name first.
fn libs_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|it| {
            it.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    let n = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                    (n.starts_with("libonnxruntime.so") || n.starts_with("libonnxruntime.") && n.ends_with(".dylib"))
                        && !n.contains("providers")
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v.reverse();
    v
}

fn start_onnxruntime() -> Result<BackendInfo, BackendError> {
    let candidates = candidate_libraries();
    let Some(path) = candidates.first().cloned() else {
        return Err(BackendError::NotFound {
            searched: "ORT_DYLIB_PATH, Python site-packages (onnxruntime/capi), /usr/lib, /usr/local/lib".into(),
        });
    };
    if !path.exists() {
        return Err(BackendError::NotFound { searched: path.display().to_string() });
    }
    // SAFETY: loading a shared library runs its initialisers; this is the library the user
    // pointed to (or the onnxruntime wheel's), loaded once per process and never unloaded.
    let lib = unsafe { libloading::Library::new(&path) }.map_err(|e| BackendError::Load { path: path.clone(), why: e.to_string() })?;
    let (api, version) = unsafe {
        let get_base: libloading::Symbol<unsafe extern "C" fn() -> *const ort::sys::OrtApiBase> = lib
            .get(b"OrtGetApiBase\0")
            .map_err(|e| BackendError::Load { path: path.clone(), why: format!("no OrtGetApiBase symbol: {e}") })?;
        let base = get_base();
        if base.is_null() {
            return Err(BackendError::Load { path, why: "OrtGetApiBase returned null".into() });
        }
        let vptr = ((*base).GetVersionString)();
        let version = if vptr.is_null() { "unknown".to_string() } else { CStr::from_ptr(vptr).to_string_lossy().into_owned() };
        let api = ((*base).GetApi)(ort::sys::ORT_API_VERSION);
        if api.is_null() {
            return Err(BackendError::TooOld { path, version, api: ort::sys::ORT_API_VERSION });
        }
        // The table is plain function pointers; copy it out of the library's static.
        (std::ptr::read(api), version)
    };
    // The API table points into the library: it must stay loaded for the life of the process.
    std::mem::forget(lib);
    ort::set_api(api);
    Ok(BackendInfo { name: "onnxruntime".into(), version, library: Some(path) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libs_in_finds_only_the_runtime_library() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["libonnxruntime.so.1.31.1", "libonnxruntime_providers_shared.so", "other.so"] {
            std::fs::write(dir.path().join(n), b"").unwrap();
        }
        let found = libs_in(dir.path());
        assert_eq!(found, vec![dir.path().join("libonnxruntime.so.1.31.1")]);
    }
}
