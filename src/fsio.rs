//! Output files: names unique in a batch (`unique_name`), and files that are either whole or
//! absent (write to a hidden temporary name in the target folder, flush, then rename over the
//! final name).

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Writes `bytes` to `path` atomically (same-folder temporary file, then rename), so an
/// interrupted run never leaves a half-written file under the final name.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_name(path);
    let result = (|| -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_data()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}: check the folder exists and is writable", path.display()))
}

/// `dir/.name.tmp-PID`: hidden, unique per process, and in the same folder so the rename
/// cannot cross file systems.
fn temp_name(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Removes temporaries left in `dir` by runs that were killed (a process that no longer exists,
/// judged by /proc on Linux; elsewhere nothing is removed). Returns how many were removed.
pub fn remove_stale_temporaries(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else { return 0 };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix('.').and_then(|n| n.rsplit_once(".tmp-")).map(|(_, pid)| pid.to_string()) else { continue };
        let Ok(pid) = pid.parse::<u32>() else { continue };
        let gone = cfg!(target_os = "linux") && pid != std::process::id() && !Path::new("/proc").join(pid.to_string()).exists();
        if gone && fs::remove_file(e.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// `stem`, or `stem-2`, `stem-3`... : the first that `taken` (lower-cased names) does not hold,
/// which is then added to it. Names compare without case, as on the file systems of most clinics'
/// laptops, so `x` and `X` are told apart too.
pub fn unique_name(taken: &mut std::collections::HashSet<String>, stem: &str) -> String {
    let mut name = stem.to_string();
    let mut n = 1;
    while taken.contains(&name.to_lowercase()) {
        n += 1;
        name = format!("{stem}-{n}");
    }
    taken.insert(name.to_lowercase());
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_whole_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        write_atomic(&p, b"{\"x\":1}").unwrap();
        write_atomic(&p, b"{\"x\":2}").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"{\"x\":2}");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn temporaries_of_dead_runs_are_removed_and_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        // PID 4194304 is above Linux's pid_max limit, so never a live process.
        for n in [".a.json.tmp-4194304", ".b.png.tmp-4194304", "c.json", ".d.tmp-x"] {
            fs::write(dir.path().join(n), b"x").unwrap();
        }
        fs::write(dir.path().join(format!(".e.json.tmp-{}", std::process::id())), b"x").unwrap();
        assert_eq!(remove_stale_temporaries(dir.path()), 2);
        let mut left: Vec<String> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        assert_eq!(left, vec![".d.tmp-x".to_string(), format!(".e.json.tmp-{}", std::process::id()), "c.json".into()]);
    }

    #[test]
    fn missing_folder_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nope").join("a.json");
        let err = write_atomic(&p, b"x").unwrap_err().to_string();
        assert!(err.contains("a.json"), "{err}");
    }
}
