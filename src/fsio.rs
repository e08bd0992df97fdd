//! Files in and out. In: only regular files, and only up to a stated size (`read_regular`), so
//! a FIFO, a device or a huge sparse file can neither hang nor exhaust a batch. Out: names
//! unique in a batch (`unique_name`), and files that are either whole or absent (write to a
//! hidden temporary name in the target folder, flush, then rename over the final name).

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a file given to scalpmap was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("not a regular file (a pipe, device, socket or folder): scalpmap reads only regular files")]
    NotRegular,
    #[error("{size} bytes, more than the {limit} bytes it may have; {what}")]
    TooLarge { size: u64, limit: u64, what: &'static str },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Reads a regular file (after following links) of at most `limit` bytes. A FIFO would block
/// the reader until a writer comes, `/dev/zero` never ends, and a sparse file claims gigabytes
/// it does not hold: each is refused before a byte is read. `what` says what to do when the
/// file is too large. The size is checked again while reading, for a file still growing.
pub fn read_regular(path: &Path, limit: u64, what: &'static str) -> Result<Vec<u8>, ReadError> {
    let meta = fs::metadata(path)?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular);
    }
    if meta.len() > limit {
        return Err(ReadError::TooLarge { size: meta.len(), limit, what });
    }
    let f = File::open(path)?;
    // The file opened may not be the one looked at (replaced in between): look again.
    if !f.metadata()?.is_file() {
        return Err(ReadError::NotRegular);
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    f.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge { size: bytes.len() as u64, limit, what });
    }
    Ok(bytes)
}

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

/// `dir/.name.tmp-PID-N`: hidden, unique per write (the process id and a counter, so two
/// workers writing one name never share a temporary), and in the same folder so the rename
/// cannot cross file systems.
fn temp_name(path: &Path) -> PathBuf {
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}-{}", std::process::id(), WRITES.fetch_add(1, Ordering::Relaxed)))
}

/// Removes temporaries left in `dir` by runs that were killed (a process that no longer exists,
/// judged by /proc on Linux; elsewhere nothing is removed). Returns how many were removed.
pub fn remove_stale_temporaries(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else { return 0 };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) =
            name.strip_prefix('.').and_then(|n| n.rsplit_once(".tmp-")).map(|(_, t)| t.split('-').next().unwrap_or(t).to_string())
        else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else { continue };
        let gone = cfg!(target_os = "linux") && pid != std::process::id() && !Path::new("/proc").join(pid.to_string()).exists();
        if gone && fs::remove_file(e.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// A file or folder name as text without losing what tells names apart: valid UTF-8 as is,
/// other bytes as `\xNN` (Latin-1 "Müller" and "Möller" stay two patients, where a lossy
/// conversion turns both into the same replacement character).
pub fn name_text(name: &std::ffi::OsStr) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let mut out = String::new();
        for chunk in name.as_bytes().utf8_chunks() {
            out.push_str(chunk.valid());
            for b in chunk.invalid() {
                out.push_str(&format!("\\x{b:02x}"));
            }
        }
        out
    }
    #[cfg(not(unix))]
    {
        name.to_string_lossy().into_owned()
    }
}

/// A path as text, losslessly as [`name_text`] does for names: two photos whose paths differ
/// only in bytes that are not UTF-8 keep different texts in reports and summaries.
pub fn path_text(path: &Path) -> String {
    name_text(path.as_os_str())
}

/// The longest output base name, in bytes: with a `-N` suffix, `.overlay.png` and a temporary
/// name's `.` and `.tmp-PID-N` it stays far below the 255 bytes file systems allow.
pub const MAX_STEM_BYTES: usize = 120;

/// `s` cut to at most `max` bytes at a character boundary.
pub fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Name of the lock a run holds on its output folder.
pub const LOCK_NAME: &str = ".scalpmap.lock";

/// A run's hold on its output folder: two runs writing one `--out` at once would mix their
/// summaries and reports. The lock is a file created exclusively, holding the process id; it is
/// removed when the run ends. One left by a killed run (its process gone, judged by /proc on
/// Linux) is taken over; elsewhere the message says to remove it.
#[derive(Debug)]
pub struct OutLock {
    path: PathBuf,
}

impl OutLock {
    /// Creates `dir` if needed, checks that a file can be written there (before any photo is
    /// analysed, so an unwritable folder costs no time), and takes the lock.
    pub fn acquire(dir: &Path) -> Result<OutLock> {
        fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the output folder {}: check the path and permissions", dir.display()))?;
        let path = dir.join(LOCK_NAME);
        for _ in 0..2 {
            match fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    f.write_all(std::process::id().to_string().as_bytes()).and_then(|_| f.sync_data()).with_context(|| {
                        format!("cannot write in the output folder {}: check it is writable and not full", dir.display())
                    })?;
                    return Ok(OutLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = fs::read_to_string(&path).ok().and_then(|t| t.trim().parse::<u32>().ok());
                    let dead = cfg!(target_os = "linux")
                        && holder.is_some_and(|pid| pid != std::process::id() && !Path::new("/proc").join(pid.to_string()).exists());
                    if !dead {
                        let who = holder.map(|p| format!(" (process {p})")).unwrap_or_default();
                        anyhow::bail!(
                            "another scalpmap run{who} is writing to {}; wait for it to finish or give another --out \
                             (if no run is going on, remove {})",
                            dir.display(),
                            path.display()
                        );
                    }
                    // A killed run's lock: take it over.
                    let _ = fs::remove_file(&path);
                }
                Err(e) => {
                    return Err(anyhow::anyhow!("cannot write in the output folder {}: {e}; check it is writable", dir.display()));
                }
            }
        }
        anyhow::bail!("cannot take the lock {} in the output folder", path.display())
    }
}

impl Drop for OutLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
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
        fs::write(dir.path().join(".f.json.tmp-4194304-17"), b"x").unwrap();
        fs::write(dir.path().join(format!(".e.json.tmp-{}", std::process::id())), b"x").unwrap();
        assert_eq!(remove_stale_temporaries(dir.path()), 3);
        let mut left: Vec<String> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        assert_eq!(left, vec![".d.tmp-x".to_string(), format!(".e.json.tmp-{}", std::process::id()), "c.json".into()]);
    }

    #[test]
    fn temporaries_are_unique_per_write() {
        let p = Path::new("/x/a.json");
        let (a, b) = (temp_name(p), temp_name(p));
        assert_ne!(a, b);
        assert!(a.file_name().unwrap().to_string_lossy().starts_with(&format!(".a.json.tmp-{}-", std::process::id())));
    }

    #[test]
    #[cfg(unix)]
    fn only_regular_files_of_a_stated_size_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("a.jpg");
        fs::write(&ok, b"12345").unwrap();
        assert_eq!(read_regular(&ok, 5, "").unwrap(), b"12345");
        assert!(matches!(read_regular(&ok, 4, "x"), Err(ReadError::TooLarge { size: 5, limit: 4, .. })));
        assert!(matches!(read_regular(Path::new("/dev/zero"), 1 << 20, ""), Err(ReadError::NotRegular)));
        assert!(matches!(read_regular(dir.path(), 1 << 20, ""), Err(ReadError::NotRegular)));
        // A link to a device is the device.
        let link = dir.path().join("zero.jpg");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert!(matches!(read_regular(&link, 1 << 20, ""), Err(ReadError::NotRegular)));
        // A sparse file claiming far more than it holds is refused by its size, unread.
        let sparse = dir.path().join("sparse.jpg");
        File::create(&sparse).unwrap().set_len(3 << 30).unwrap();
        assert!(matches!(read_regular(&sparse, 1 << 20, ""), Err(ReadError::TooLarge { .. })));
    }

    #[test]
    fn one_run_at_a_time_holds_an_output_folder() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let lock = OutLock::acquire(&out).unwrap();
        let err = OutLock::acquire(&out).unwrap_err().to_string();
        assert!(err.contains("another scalpmap run") && err.contains(&std::process::id().to_string()), "{err}");
        drop(lock);
        assert!(!out.join(LOCK_NAME).exists(), "released at the end of the run");
        let again = OutLock::acquire(&out).unwrap();
        drop(again);
        // A lock left by a process that no longer exists is taken over (Linux).
        if cfg!(target_os = "linux") {
            fs::write(out.join(LOCK_NAME), "4194304").unwrap();
            assert!(OutLock::acquire(&out).is_ok());
        }
    }

    #[test]
    #[cfg(unix)]
    fn names_that_are_not_utf8_stay_apart() {
        use std::os::unix::ffi::OsStrExt;
        let (a, b) = (std::ffi::OsStr::from_bytes(b"M\xfcller"), std::ffi::OsStr::from_bytes(b"M\xf6ller"));
        assert_eq!((name_text(a).as_str(), name_text(b).as_str()), ("M\\xfcller", "M\\xf6ller"));
        assert_eq!(name_text(std::ffi::OsStr::new("Zoë")), "Zoë");
    }

    #[test]
    fn clipping_keeps_whole_characters() {
        assert_eq!(clip("abc", 5), "abc");
        assert_eq!(clip("ééé", 5), "éé");
        assert_eq!(clip(&"x".repeat(300), MAX_STEM_BYTES).len(), MAX_STEM_BYTES);
    }

    #[test]
    fn missing_folder_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nope").join("a.json");
        let err = write_atomic(&p, b"x").unwrap_err().to_string();
        assert!(err.contains("a.json"), "{err}");
    }
}
