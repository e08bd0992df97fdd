//! A practitioner's correction of one photo's class map, as `scalpmap review` saves it beside the
//! outputs: `NAME.reviewed.png` (the corrected map, one class id per cell on the grid of
//! `NAME.mask.png`) and `NAME.review.json` (when, the state, which cells changed from which class
//! to which, the model whose map was corrected). Batches read them back: a photo with a valid
//! correction is reported on the corrected map (see [`load_valid`]).
//!
//! The two files are tied by the map's SHA-256 in the JSON, and the JSON by the photo's SHA-256,
//! so a half-finished save, a map edited by hand or a photo replaced under the same name is
//! never taken for a correction.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::classes::Class;
use crate::masks::ClassMap;

pub const CORRECTION_SCHEMA: &str = "scalpmap-review/1";

/// What the practitioner decided about the photo.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReviewState {
    /// The (corrected) map is right: plan on it.
    Reviewed,
    /// The photo cannot be used: take it again. Its map is still saved.
    Retake,
}

impl ReviewState {
    pub fn name(self) -> &'static str {
        match self {
            ReviewState::Reviewed => "reviewed",
            ReviewState::Retake => "retake",
        }
    }

    pub fn parse(s: &str) -> Option<ReviewState> {
        match s {
            "reviewed" => Some(ReviewState::Reviewed),
            "retake" => Some(ReviewState::Retake),
            _ => None,
        }
    }
}

/// Cells that went from one class to another, as runs `[first cell, count]` in row-major order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub from: Class,
    pub to: Class,
    pub cells: u64,
    pub runs: Vec<[u64; 2]>,
}

/// `NAME.review.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Correction {
    pub schema: String,
    pub scalpmap_version: String,
    /// RFC 3339, UTC, to the millisecond.
    pub reviewed_at: String,
    pub state: ReviewState,
    /// The view the practitioner set, when they set one (it overrides the name's and manifest's).
    pub view: Option<String>,
    /// The photo this correction belongs to.
    pub photo_sha256: String,
    /// SHA-256 of `NAME.reviewed.png`'s bytes.
    pub map_sha256: String,
    pub width: usize,
    pub height: usize,
    /// The model whose answer was corrected.
    pub model_version: String,
    pub changed_cells: u64,
    pub changes: Vec<Change>,
}

/// What a report says about its review (`review` in the report, absent when none).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReviewInfo {
    pub state: ReviewState,
    pub reviewed_at: String,
    /// Cells the practitioner changed from the model's answer.
    pub changed_cells: u64,
    /// The model whose map was corrected.
    pub model_version: String,
}

impl ReviewInfo {
    /// "reviewed 2026-12-01" / "retake 2026-12-01": how summaries and pages say it.
    pub fn label(&self) -> String {
        format!("{} {}", self.state.name(), self.reviewed_at.get(..10).unwrap_or(&self.reviewed_at))
    }
}

/// A correction checked against its photo, ready for the analysis to use.
#[derive(Clone, Debug)]
pub struct Corrected {
    pub map: ClassMap,
    pub correction: Correction,
}

impl Corrected {
    pub fn info(&self) -> ReviewInfo {
        let c = &self.correction;
        ReviewInfo {
            state: c.state,
            reviewed_at: c.reviewed_at.clone(),
            changed_cells: c.changed_cells,
            model_version: c.model_version.clone(),
        }
    }
}

pub fn map_path(out: &Path, name: &str) -> std::path::PathBuf {
    out.join(format!("{name}.reviewed.png"))
}

pub fn json_path(out: &Path, name: &str) -> std::path::PathBuf {
    out.join(format!("{name}.review.json"))
}

/// The changes from `before` to `after` (same grid), grouped by (from, to) in class order.
pub fn diff(before: &ClassMap, after: &ClassMap) -> Vec<Change> {
    let mut by_pair: BTreeMap<(u8, u8), Vec<[u64; 2]>> = BTreeMap::new();
    for (i, (&b, &a)) in before.data.iter().zip(&after.data).enumerate() {
        if b == a {
            continue;
        }
        let runs = by_pair.entry((b, a)).or_default();
        match runs.last_mut() {
            Some(run) if run[0] + run[1] == i as u64 => run[1] += 1,
            _ => runs.push([i as u64, 1]),
        }
    }
    by_pair
        .into_iter()
        .filter_map(|((b, a), runs)| {
            Some(Change { from: Class::from_u8(b)?, to: Class::from_u8(a)?, cells: runs.iter().map(|r| r[1]).sum(), runs })
        })
        .collect()
}

/// A class map as a grey PNG (the format of `NAME.mask.png`).
pub fn map_png(map: &ClassMap) -> anyhow::Result<Vec<u8>> {
    let img = image::GrayImage::from_raw(map.width as u32, map.height as u32, map.data.clone())
        .ok_or_else(|| anyhow::anyhow!("class map size"))?;
    let mut buf = Cursor::new(Vec::new());
    img.write_to(&mut buf, image::ImageFormat::Png)?;
    Ok(buf.into_inner())
}

/// Reads a class-map PNG (grey, one class id per pixel); None unless every value is a class.
pub fn read_map_png(bytes: &[u8]) -> Option<ClassMap> {
    let img = image::load_from_memory_with_format(bytes, image::ImageFormat::Png).ok()?;
    let grey = img.as_luma8()?;
    let map = ClassMap::new(grey.width() as usize, grey.height() as usize, grey.as_raw().clone());
    map.data.iter().all(|&v| (v as usize) < Class::COUNT).then_some(map)
}

/// Reads a file of at most `limit` bytes; None when it is missing, not a regular file, or larger.
fn read_small(path: &Path, limit: u64) -> Option<Vec<u8>> {
    crate::fsio::read_regular(path, limit, "a review file is small").ok()
}

/// The correction saved for output `name`, when there is one that belongs to this photo
/// (`photo_sha256`) and this grid, and whose map is the one its JSON names. Anything else
/// (none, another photo's, a map changed since, a damaged file) is None: the model's map stands.
pub fn load_valid(out: &Path, name: &str, photo_sha256: &str, width: usize, height: usize) -> Option<Corrected> {
    let json = read_small(&json_path(out, name), 64 << 20)?;
    let correction: Correction = serde_json::from_slice(&json).ok()?;
    if correction.photo_sha256 != photo_sha256 || correction.width != width || correction.height != height {
        return None;
    }
    let png = read_small(&map_path(out, name), 64 << 20)?;
    if crate::analyze::sha256_hex(&png) != correction.map_sha256 {
        return None;
    }
    let map = read_map_png(&png)?;
    (map.width == width && map.height == height).then_some(Corrected { map, correction })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_groups_runs_by_class_pair() {
        let before = ClassMap::from_rows(&["3333", "3311"]);
        let after = ClassMap::from_rows(&["0033", "0311"]);
        let d = diff(&before, &after);
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].from, d[0].to, d[0].cells), (Class::Bare, Class::Background, 3));
        assert_eq!(d[0].runs, vec![[0, 2], [4, 1]]);
        assert!(diff(&before, &before).is_empty());
    }

    #[test]
    fn maps_round_trip_through_png_and_bad_values_are_refused() {
        let m = ClassMap::from_rows(&["0123", "4321"]);
        assert_eq!(read_map_png(&map_png(&m).unwrap()), Some(m));
        let bad = ClassMap::new(2, 1, vec![0, 9]);
        assert_eq!(read_map_png(&map_png(&bad).unwrap()), None);
    }

    #[test]
    fn a_correction_is_taken_only_for_its_photo_and_its_map() {
        let d = tempfile::tempdir().unwrap();
        let map = ClassMap::from_rows(&["01", "23"]);
        let png = map_png(&map).unwrap();
        std::fs::write(map_path(d.path(), "x"), &png).unwrap();
        let c = Correction {
            schema: CORRECTION_SCHEMA.into(),
            scalpmap_version: "t".into(),
            reviewed_at: "2026-12-01T10:00:00.000Z".into(),
            state: ReviewState::Reviewed,
            view: None,
            photo_sha256: "aa".into(),
            map_sha256: crate::analyze::sha256_hex(&png),
            width: 2,
            height: 2,
            model_version: "m".into(),
            changed_cells: 0,
            changes: vec![],
        };
        std::fs::write(json_path(d.path(), "x"), serde_json::to_vec(&c).unwrap()).unwrap();
        assert_eq!(load_valid(d.path(), "x", "aa", 2, 2).map(|k| k.map), Some(map.clone()));
        assert!(load_valid(d.path(), "x", "bb", 2, 2).is_none(), "another photo");
        assert!(load_valid(d.path(), "x", "aa", 3, 2).is_none(), "another grid");
        std::fs::write(map_path(d.path(), "x"), map_png(&ClassMap::from_rows(&["00", "00"])).unwrap()).unwrap();
        assert!(load_valid(d.path(), "x", "aa", 2, 2).is_none(), "a map that is not the one the JSON names");
    }
}
