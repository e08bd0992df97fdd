//! The printed calibration marker (`docs/marker.svg`): a black square of known side with a white
//! square of half that side in its middle, on white paper. Found by shape alone, so no library
//! of fiducials is needed and any printer will do: dark blobs after a local threshold, each
//! tested for one centred hole of a quarter of its area and for the second moments of a
//! (possibly tilted) square. The square's longer principal axis is unaffected by tilt, so it
//! gives the scale even on a curved, slanted scalp.

use serde::{Deserialize, Serialize};

use crate::masks::{regions, ClassMap};

/// Longest side of the luminance image the search runs on.
pub const SEARCH_SIDE: usize = 768;

/// A marker found in a photo.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MarkerFound {
    /// Centre, photo pixels.
    pub centre_px: [f64; 2],
    /// Side of the black square along its longer (untilted) axis, photo pixels.
    pub side_px: f64,
    /// Its apparent tilt from the square's aspect, degrees.
    pub tilt_deg: f64,
}

impl MarkerFound {
    /// The same marker in a photo `k` times larger.
    pub fn scaled(&self, k: f64) -> MarkerFound {
        MarkerFound { centre_px: [self.centre_px[0] * k, self.centre_px[1] * k], side_px: self.side_px * k, tilt_deg: self.tilt_deg }
    }
}

/// Pixels darker than this share of their neighbourhood's mean are ink.
const DARK_SHARE: f32 = 0.6;

/// Box mean of `lum` over a (2r+1)² window, from an integral image.
fn box_mean(lum: &[f32], w: usize, h: usize, r: usize) -> Vec<f32> {
    let mut ii = vec![0f64; (w + 1) * (h + 1)];
    for y in 0..h {
        let mut row = 0f64;
        for x in 0..w {
            row += lum[y * w + x] as f64;
            ii[(y + 1) * (w + 1) + x + 1] = ii[y * (w + 1) + x + 1] + row;
        }
    }
    let mut out = vec![0f32; w * h];
    for y in 0..h {
        let (y0, y1) = (y.saturating_sub(r), (y + r + 1).min(h));
        for x in 0..w {
            let (x0, x1) = (x.saturating_sub(r), (x + r + 1).min(w));
            let s = ii[y1 * (w + 1) + x1] - ii[y0 * (w + 1) + x1] - ii[y1 * (w + 1) + x0] + ii[y0 * (w + 1) + x0];
            out[y * w + x] = (s / ((y1 - y0) * (x1 - x0)) as f64) as f32;
        }
    }
    out
}

/// Centroid and principal second moments (larger first) of a set of pixels.
fn moments(px: &[(usize, usize)]) -> ([f64; 2], f64, f64) {
    let m = crate::measure::moments(px.iter().map(|&(x, y)| (x as f64, y as f64)));
    (m.centre, m.l1, m.l2)
}

/// A dark blob that passed the shape tests.
struct Candidate {
    bad: f64,
    centre: [f64; 2],
    aspect: f64,
    ring: Vec<(usize, usize)>,
    hole: Vec<(usize, usize)>,
    bbox: [usize; 4],
}

/// How far a blob is from the ideal marker (0 is perfect), with its centre and aspect, or None
/// when it is not one.
fn score(outer: &[(usize, usize)], hole: &[(usize, usize)]) -> Option<(f64, [f64; 2], f64)> {
    let a = outer.len() as f64;
    let ratio = hole.len() as f64 / a;
    if !(0.13..=0.38).contains(&ratio) {
        return None;
    }
    let (c, l1, l2) = moments(outer);
    let (hc, h1, h2) = moments(hole);
    // A rectangle's area is 12 sqrt(l1 l2); a disc's only 0.955 of that.
    let squareness = 12.0 * (l1 * l2).sqrt() / a;
    let hole_squareness = 12.0 * (h1 * h2).sqrt() / hole.len() as f64;
    if !(0.975..=1.08).contains(&squareness) || !(0.9..=1.15).contains(&hole_squareness) {
        return None;
    }
    // Tilt up to about 65 degrees; the hole must share the outer square's shape and centre.
    let aspect = (l2 / l1).sqrt();
    if aspect < 0.42 || ((h2 / h1).sqrt() - aspect).abs() > 0.2 {
        return None;
    }
    let off = ((hc[0] - c[0]).powi(2) + (hc[1] - c[1]).powi(2)).sqrt() / a.sqrt();
    if off > 0.08 {
        return None;
    }
    Some(((ratio - 0.25).abs() * 4.0 + (squareness - 1.0).abs() * 5.0 + off * 5.0, c, aspect))
}

/// Blobs darker than [`DARK_SHARE`] of their neighbourhood (a box of radius `r`) that pass
/// the shape tests.
fn candidates(lum: &[f32], w: usize, h: usize, r: usize) -> Vec<Candidate> {
    let mean = box_mean(lum, w, h, r);
    let dark: Vec<u8> = lum.iter().zip(&mean).map(|(&l, &m)| (l < DARK_SHARE * m && l < 160.0) as u8).collect();
    let (id, info) = regions(&ClassMap::new(w, h, dark));
    let (min_area, max_area) = (40, w * h / 6);
    // Pixels of each dark region of a plausible size, gathered in one pass.
    let mut members: Vec<Vec<(usize, usize)>> = vec![Vec::new(); info.len()];
    for (i, &rid) in id.iter().enumerate() {
        let (class, size) = info[rid as usize];
        if class == 1 && (min_area..=max_area).contains(&size) {
            members[rid as usize].push((i % w, i / w));
        }
    }
    let mut out = Vec::new();
    for (rid, ring) in members.into_iter().enumerate() {
        if ring.is_empty() {
            continue;
        }
        let (x0, x1) = ring.iter().fold((usize::MAX, 0), |(a, b), p| (a.min(p.0), b.max(p.0)));
        let (y0, y1) = ring.iter().fold((usize::MAX, 0), |(a, b), p| (a.min(p.1), b.max(p.1)));
        // Touching the frame: cut off, its area would lie.
        if x0 == 0 || y0 == 0 || x1 + 1 == w || y1 + 1 == h {
            continue;
        }
        let hole = holes(&id, w, rid as u32, [x0, y0, x1, y1]);
        if hole.is_empty() {
            continue;
        }
        let outer: Vec<(usize, usize)> = ring.iter().chain(&hole).copied().collect();
        if let Some((bad, centre, aspect)) = score(&outer, &hole) {
            out.push(Candidate { bad, centre, aspect, ring, hole, bbox: [x0, y0, x1, y1] });
        }
    }
    out
}

/// Pixels inside the box that are not of region `rid` and cannot be reached from the box's
/// rim without crossing it: the region's holes.
fn holes(id: &[u32], w: usize, rid: u32, [x0, y0, x1, y1]: [usize; 4]) -> Vec<(usize, usize)> {
    let (bw, bh) = (x1 - x0 + 1, y1 - y0 + 1);
    let inside = |x: usize, y: usize| id[(y0 + y) * w + x0 + x] == rid;
    let mut reached = vec![false; bw * bh];
    let mut stack: Vec<(usize, usize)> = Vec::new();
    let rim = (0..bw).flat_map(|x| [(x, 0), (x, bh - 1)]).chain((0..bh).flat_map(|y| [(0, y), (bw - 1, y)]));
    for (x, y) in rim {
        if !inside(x, y) && !reached[y * bw + x] {
            reached[y * bw + x] = true;
            stack.push((x, y));
        }
    }
    while let Some((x, y)) = stack.pop() {
        let next = [(x.wrapping_sub(1), y), (x + 1, y), (x, y.wrapping_sub(1)), (x, y + 1)];
        for (nx, ny) in next {
            if nx < bw && ny < bh && !inside(nx, ny) && !reached[ny * bw + nx] {
                reached[ny * bw + nx] = true;
                stack.push((nx, ny));
            }
        }
    }
    (0..bh)
        .flat_map(|y| (0..bw).map(move |x| (x, y)))
        .filter(|&(x, y)| !inside(x, y) && !reached[y * bw + x])
        .map(|(x, y)| (x + x0, y + y0))
        .collect()
}

fn median_lum(lum: &[f32], w: usize, px: &[(usize, usize)]) -> f32 {
    let mut v: Vec<f32> = px.iter().map(|&(x, y)| lum[y * w + x]).collect();
    v.sort_by(f32::total_cmp);
    v[v.len() / 2]
}

/// The black square's side, re-measured at the threshold halfway between the ink and the paper
/// (edge blur then moves the boundary neither in nor out), as the longer principal axis of the
/// square with its hole: sqrt(12 l1), which tilt does not shorten.
fn refined_side(lum: &[f32], w: usize, h: usize, c: &Candidate) -> f64 {
    let first = || (12.0 * moments(&c.ring.iter().chain(&c.hole).copied().collect::<Vec<_>>()).1).sqrt();
    let ink = median_lum(lum, w, &c.ring);
    let paper = median_lum(lum, w, &c.hole);
    if paper - ink < 10.0 {
        return first();
    }
    let mid = (ink + paper) / 2.0;
    let [x0, y0, x1, y1] = c.bbox;
    // Within the paper margin (at least an eighth of the side) around the ring.
    let pad = (((x1 - x0).max(y1 - y0) as f64) / 16.0).round() as usize + 1;
    let (bx0, by0) = (x0.saturating_sub(pad), y0.saturating_sub(pad));
    let (bx1, by1) = ((x1 + pad).min(w - 1), (y1 + pad).min(h - 1));
    let (bw, bh) = (bx1 - bx0 + 1, by1 - by0 + 1);
    // The ink component at the new threshold that holds the old ring, as region 1 of a box map.
    let mut comp = vec![0u32; bw * bh];
    let mut stack: Vec<(usize, usize)> = c.ring.iter().filter(|&&(x, y)| lum[y * w + x] < mid).map(|&(x, y)| (x - bx0, y - by0)).collect();
    for &(x, y) in &stack {
        comp[y * bw + x] = 1;
    }
    while let Some((x, y)) = stack.pop() {
        for (nx, ny) in [(x.wrapping_sub(1), y), (x + 1, y), (x, y.wrapping_sub(1)), (x, y + 1)] {
            if nx < bw && ny < bh && comp[ny * bw + nx] == 0 && lum[(ny + by0) * w + nx + bx0] < mid {
                comp[ny * bw + nx] = 1;
                stack.push((nx, ny));
            }
        }
    }
    let ring: Vec<(usize, usize)> = (0..bh).flat_map(|y| (0..bw).map(move |x| (x, y))).filter(|&(x, y)| comp[y * bw + x] == 1).collect();
    if ring.is_empty() {
        return first();
    }
    let hole = holes(&comp, bw, 1, [0, 0, bw - 1, bh - 1]);
    let outer: Vec<(usize, usize)> = ring.into_iter().chain(hole).collect();
    (12.0 * moments(&outer).1).sqrt()
}

/// Finds the marker in a luminance image `lum` (`w` x `h`, 0-255) that stands for a photo
/// `scale` times larger. Two neighbourhood sizes are tried (markers small and large in the
/// frame); the best candidate wins; None when nothing passes.
pub fn find(lum: &[f32], w: usize, h: usize, scale: f64) -> Option<MarkerFound> {
    if w < 16 || h < 16 {
        return None;
    }
    let side = w.max(h);
    let best = [(side / 24).max(4), (side / 8).max(8)]
        .into_iter()
        .flat_map(|r| candidates(lum, w, h, r))
        .min_by(|a, b| a.bad.total_cmp(&b.bad))?;
    Some(MarkerFound {
        centre_px: [(best.centre[0] + 0.5) * scale, (best.centre[1] + 0.5) * scale],
        side_px: refined_side(lum, w, h, &best) * scale,
        tilt_deg: best.aspect.clamp(0.0, 1.0).acos().to_degrees(),
    })
}

/// Searches a photo, area-averaged to at most [`SEARCH_SIDE`] pixels on its long side.
pub fn find_in_photo(photo: &image::RgbImage) -> Option<MarkerFound> {
    let (pw, ph) = (photo.width() as usize, photo.height() as usize);
    let k = (pw.max(ph) as f64 / SEARCH_SIDE as f64).max(1.0);
    let (w, h) = (((pw as f64 / k).round() as usize).max(1), ((ph as f64 / k).round() as usize).max(1));
    let lum = crate::quality::luminance(photo, w, h);
    find(&lum, w, h, pw as f64 / w as f64)
}

/// Clears the marker's sticker from a class map (cells of `sx` x `sy` photo pixels): the paper
/// hides the scalp, and the model was never shown one.
pub fn clear_from_map(map: &mut ClassMap, m: &MarkerFound, sx: f64, sy: f64) {
    // The black square's half-diagonal plus a paper margin of up to a quarter side.
    let reach = m.side_px * (0.5 * std::f64::consts::SQRT_2 + 0.25);
    for y in 0..map.height {
        for x in 0..map.width {
            let (px, py) = ((x as f64 + 0.5) * sx, (y as f64 + 0.5) * sy);
            if (px - m.centre_px[0]).hypot(py - m.centre_px[1]) <= reach {
                map.data[y * map.width + x] = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A grey image with a marker of outer side `s` at (cx, cy): ink ring, paper hole and margin.
    fn scene(w: usize, h: usize, cx: usize, cy: usize, s: usize) -> Vec<f32> {
        let mut lum = vec![120.0; w * h];
        let half = s as i64 / 2;
        for y in 0..h as i64 {
            for x in 0..w as i64 {
                let m = (x - cx as i64).abs().max((y - cy as i64).abs());
                let v = if m < half / 2 {
                    210.0
                } else if m < half {
                    20.0
                } else if m < half + 4 {
                    210.0
                } else {
                    continue;
                };
                lum[y as usize * w + x as usize] = v;
            }
        }
        lum
    }

    #[test]
    fn finds_a_literal_marker_and_its_size() {
        let lum = scene(200, 150, 80, 70, 40);
        let m = find(&lum, 200, 150, 2.0).unwrap();
        // Ink where max(|dx|, |dy|) < 20: 39 pixels across, centred on pixel (80, 70) whose
        // middle is (80.5, 70.5); at 2 photo px per search pixel. A uniform run of 39 pixels has
        // variance (39² - 1) / 12, so sqrt(12 l1) = sqrt(39² - 1).
        let expected = 2.0 * (39.0f64 * 39.0 - 1.0).sqrt();
        assert!((m.side_px - expected).abs() < 1e-9, "{m:?} vs {expected}");
        assert_eq!(m.centre_px, [161.0, 141.0]);
        assert!(m.tilt_deg < 10.0);
    }

    #[test]
    fn rejects_discs_squares_without_holes_and_cut_off_markers() {
        let (w, h) = (160, 160);
        let mut disc = vec![200.0; w * h];
        let mut solid = vec![200.0; w * h];
        for y in 0..h {
            for x in 0..w {
                let (dx, dy) = (x as f32 - 80.0, y as f32 - 80.0);
                let r = (dx * dx + dy * dy).sqrt();
                if (15.0..30.0).contains(&r) {
                    disc[y * w + x] = 20.0;
                }
                if dx.abs() < 25.0 && dy.abs() < 25.0 {
                    solid[y * w + x] = 20.0;
                }
            }
        }
        assert_eq!(find(&disc, w, h, 1.0), None, "a ring is not a square");
        assert_eq!(find(&solid, w, h, 1.0), None, "no hole");
        let cut = scene(100, 100, 5, 50, 40);
        assert_eq!(find(&cut, 100, 100, 1.0), None, "cut by the frame");
        assert_eq!(find(&vec![128.0; 64 * 64], 64, 64, 1.0), None);
    }
}
