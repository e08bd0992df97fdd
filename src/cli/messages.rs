//! What the command line tells the person at the terminal: lines on standard error that never
//! panic when it is closed, counts with the right plural, and "did you mean" for a misspelt flag.

use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set when a line could not be written to standard error (a closed pipe such as
/// `scalpmap plan ... 2>&1 | head`, or a full disk): the run still writes all its files, then
/// exits non-zero so that a script sees it was not told everything.
static STDERR_LOST: AtomicBool = AtomicBool::new(false);

/// Writes one line to standard error; a failure is remembered instead of panicking as
/// `eprintln!` does.
pub fn say_line(args: fmt::Arguments) {
    let mut err = std::io::stderr().lock();
    if writeln!(err, "{args}").and_then(|_| err.flush()).is_err() {
        STDERR_LOST.store(true, Ordering::Relaxed);
    }
}

/// Whether some line to standard error was lost.
pub fn stderr_lost() -> bool {
    STDERR_LOST.load(Ordering::Relaxed)
}

/// `eprintln!` that cannot panic: see [`say_line`].
macro_rules! say {
    ($($t:tt)*) => { $crate::cli::messages::say_line(format_args!($($t)*)) };
}
pub(crate) use say;

/// "1 photo", "3 photos", "0 photos".
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Edit distance between two short strings (flag names) where swapping two neighbouring
/// letters counts as one edit, as typing slips do (optimal string alignment).
fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for j in 0..=b.len() {
        d[0][j] = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

/// The one flag of `known` (long names, without `--`) that `typed` most likely meant: within
/// two edits (one for names of up to three letters) and closer than any other, or one that
/// `typed` is the start of.
pub fn nearest_flag<'a>(typed: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let typed = typed.trim_start_matches('-');
    let typed = typed.split('=').next().unwrap_or(typed);
    if typed.is_empty() {
        return None;
    }
    let known: Vec<&str> = known.into_iter().collect();
    let starts: Vec<&str> = known.iter().copied().filter(|k| k.starts_with(typed)).collect();
    if starts.len() == 1 {
        return Some(starts[0]);
    }
    let limit = if typed.len() <= 3 { 1 } else { 2 };
    let mut scored: Vec<(usize, &str)> = known.iter().map(|k| (distance(typed, k), *k)).filter(|(d, _)| *d <= limit).collect();
    scored.sort();
    match scored.as_slice() {
        [(d, k), rest @ ..] if rest.first().is_none_or(|(d2, _)| d2 > d) => Some(k),
        _ => None,
    }
}

/// clap's error for an unknown flag, with "a similar argument exists" filled in where clap's
/// own guess found nothing (it misses short typos such as `--ot` for `--out`).
pub fn suggest_flag(mut e: clap::Error, cmd: &clap::Command) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() != ErrorKind::UnknownArgument || e.get(ContextKind::SuggestedArg).is_some() {
        return e;
    }
    let Some(ContextValue::String(bad)) = e.get(ContextKind::InvalidArg).cloned() else { return e };
    if !bad.starts_with("--") {
        return e;
    }
    // The subcommand the user named, else the top level.
    let sub = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let cmd = sub.as_deref().and_then(|s| cmd.find_subcommand(s)).unwrap_or(cmd);
    let longs: Vec<String> = cmd.get_arguments().filter_map(|a| a.get_long().map(str::to_string)).chain(["help".to_string()]).collect();
    if let Some(k) = nearest_flag(&bad, longs.iter().map(String::as_str)) {
        e.insert(ContextKind::SuggestedArg, ContextValue::String(format!("--{k}")));
        e.insert(ContextKind::Suggested, ContextValue::StyledStrs(Vec::new()));
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misspelt_flags_find_the_one_meant() {
        let known = ["out", "model", "backend", "jobs", "px-per-cm", "jsonl", "masks", "anonymize", "max-megapixels", "resume", "view"];
        assert_eq!(nearest_flag("--ot", known), Some("out"));
        assert_eq!(nearest_flag("--otu", known), Some("out"));
        assert_eq!(nearest_flag("--anonymise", known), Some("anonymize"));
        assert_eq!(nearest_flag("--px-per-mm", known), Some("px-per-cm"));
        assert_eq!(nearest_flag("--max", known), Some("max-megapixels"));
        assert_eq!(nearest_flag("--resum=1", known), Some("resume"));
        // Two equally near (jobs/jsonl from "jso"? no: jsonl starts with it), or nothing near.
        assert_eq!(nearest_flag("--j", known), None);
        assert_eq!(nearest_flag("--colour", known), None);
        assert_eq!(nearest_flag("--", known), None);
    }

    #[test]
    fn counts_take_the_plural_they_need() {
        assert_eq!(count(1, "patient", "patients"), "1 patient");
        assert_eq!(count(0, "patient", "patients"), "0 patients");
        assert_eq!(count(12, "photo", "photos"), "12 photos");
    }
}
