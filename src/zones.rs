//! Zones: the connected thinning, bare and scar regions of a cleaned class map, measured in
//! photo pixels (and cm² when a scale is known), each with a centroid, a bounding box, a
//! simplified outline polygon a planning tool can draw, and the mean predicted density.
//!
//! The map is usually coarser than the photo: each map pixel stands for `sx` x `sy` photo
//! pixels, and every coordinate here is scaled back to photo pixels.

use serde::{Deserialize, Serialize};

use crate::classes::Class;
use crate::masks::{regions, ClassMap};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Zone {
    pub class: Class,
    /// Area in photo pixels.
    pub area_px: f64,
    /// Flat area in cm² at the report's scale (`measurement.scale`: given, marker or head
    /// estimate; no surface correction); absent without a scale.
    pub area_cm2: Option<f64>,
    /// Centre of mass, photo pixels (x, y).
    pub centroid: [f64; 2],
    /// [x_min, y_min, x_max, y_max], photo pixels.
    pub bbox: [f64; 4],
    /// Outer boundary, clockwise in image coordinates, simplified; photo pixels.
    pub outline: Vec<[f64; 2]>,
    /// Mean predicted follicle density over the zone, hairs/cm².
    pub mean_density_per_cm2: f64,
}

/// Geometry of the map relative to the photo.
#[derive(Clone, Copy, Debug)]
pub struct MapScale {
    /// Photo pixels per map pixel, horizontally and vertically.
    pub sx: f64,
    pub sy: f64,
    /// Photo pixels per cm, if known.
    pub px_per_cm: Option<f64>,
}

impl MapScale {
    /// Flat area in cm² of `area_px` photo pixels at this scale; absent without one.
    pub fn flat_cm2(&self, area_px: f64) -> Option<f64> {
        self.px_per_cm.map(|k| area_px / (k * k))
    }
}

/// Zones of the classes thinning, bare and scar, largest first.
pub fn zones(map: &ClassMap, density: &[f32], scale: MapScale, simplify_px: f64) -> Vec<Zone> {
    let (w, h) = (map.width, map.height);
    let (id, info) = regions(map);
    let n = info.len();
    let mut sum_x = vec![0f64; n];
    let mut sum_y = vec![0f64; n];
    let mut sum_d = vec![0f64; n];
    let mut bbox = vec![[usize::MAX, usize::MAX, 0, 0]; n];
    let mut first = vec![usize::MAX; n];
    for (i, &r) in id.iter().enumerate() {
        let r = r as usize;
        let (x, y) = (i % w, i / w);
        sum_x[r] += x as f64 + 0.5;
        sum_y[r] += y as f64 + 0.5;
        sum_d[r] += density.get(i).copied().unwrap_or(0.0) as f64;
        let b = &mut bbox[r];
        *b = [b[0].min(x), b[1].min(y), b[2].max(x + 1), b[3].max(y + 1)];
        if first[r] == usize::MAX {
            first[r] = i; // row-major: the topmost, then leftmost pixel
        }
    }
    let px_area = scale.sx * scale.sy;
    let mut out: Vec<Zone> = (0..n)
        .filter(|&r| matches!(Class::from_u8(info[r].0), Some(Class::Thinning | Class::Bare | Class::Scar)))
        .map(|r| {
            let count = info[r].1 as f64;
            let area_px = count * px_area;
            let trace = outline(&id, w, h, r as u32, first[r]);
            let poly: Vec<[f64; 2]> = simplify_closed(&trace, simplify_px / scale.sx.max(scale.sy).max(1e-9))
                .into_iter()
                .map(|[x, y]| [x * scale.sx, y * scale.sy])
                .collect();
            let b = bbox[r];
            Zone {
                class: Class::from_u8(info[r].0).expect("filtered to known classes"),
                area_px,
                area_cm2: scale.flat_cm2(area_px),
                centroid: [sum_x[r] / count * scale.sx, sum_y[r] / count * scale.sy],
                bbox: [b[0] as f64 * scale.sx, b[1] as f64 * scale.sy, b[2] as f64 * scale.sx, b[3] as f64 * scale.sy],
                outline: poly,
                mean_density_per_cm2: sum_d[r] / count,
            }
        })
        .collect();
    out.sort_by(|a, b| b.area_px.total_cmp(&a.area_px).then(a.centroid[1].total_cmp(&b.centroid[1])));
    out
}

/// Outer boundary of region `r` along pixel edges (crack following), as corner points in map
/// pixels. Starts at the top-left corner of its topmost-leftmost pixel `start`, heading east
/// with the region on the right; diagonal-only contacts are not crossed (4-connectivity).
pub fn outline(id: &[u32], w: usize, h: usize, r: u32, start: usize) -> Vec<[f64; 2]> {
    let inside = |x: i64, y: i64| x >= 0 && y >= 0 && (x as usize) < w && (y as usize) < h && id[y as usize * w + x as usize] == r;
    // Directions E, S, W, N in image coordinates (y down).
    const D: [(i64, i64); 4] = [(1, 0), (0, 1), (-1, 0), (0, -1)];
    let (sx, sy) = ((start % w) as i64, (start / w) as i64);
    let (mut x, mut y, mut d) = (sx, sy, 0usize);
    let mut pts = vec![[x as f64, y as f64]];
    let limit = 4 * (w + 1) * (h + 1);
    for _ in 0..limit {
        x += D[d].0;
        y += D[d].1;
        // The start vertex touches only its own pixel (nothing lies above or left of the
        // topmost-leftmost pixel), so the trace passes it exactly once: at the end.
        if (x, y) == (sx, sy) {
            break;
        }
        // The two pixels ahead of vertex (x, y) when moving in direction d: left and right.
        let (al, ar) = match d {
            0 => ((x, y - 1), (x, y)),
            1 => ((x, y), (x - 1, y)),
            2 => ((x - 1, y), (x - 1, y - 1)),
            _ => ((x - 1, y - 1), (x, y - 1)),
        };
        let nd = if !inside(ar.0, ar.1) {
            (d + 1) % 4 // region ends ahead on the right: turn right
        } else if inside(al.0, al.1) {
            (d + 3) % 4 // region continues ahead on the left: turn left
        } else {
            d
        };
        if nd != d {
            pts.push([x as f64, y as f64]);
        }
        d = nd;
    }
    pts
}

/// Douglas-Peucker on a closed polygon: split at the vertex farthest from the first, simplify
/// both halves, drop points within `eps` of the simplified line.
pub fn simplify_closed(pts: &[[f64; 2]], eps: f64) -> Vec<[f64; 2]> {
    if pts.len() <= 4 || eps <= 0.0 {
        return pts.to_vec();
    }
    let far = (1..pts.len()).max_by(|&a, &b| dist2(pts[0], pts[a]).total_cmp(&dist2(pts[0], pts[b]))).unwrap_or(1);
    let mut first: Vec<[f64; 2]> = pts[..=far].to_vec();
    let mut second: Vec<[f64; 2]> = pts[far..].to_vec();
    second.push(pts[0]);
    first = douglas_peucker(&first, eps);
    second = douglas_peucker(&second, eps);
    first.pop();
    second.pop();
    first.extend(second);
    first
}

fn dist2(a: [f64; 2], b: [f64; 2]) -> f64 {
    (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)
}

fn douglas_peucker(pts: &[[f64; 2]], eps: f64) -> Vec<[f64; 2]> {
    if pts.len() < 3 {
        return pts.to_vec();
    }
    let (a, b) = (pts[0], pts[pts.len() - 1]);
    let len = dist2(a, b).sqrt();
    let d = |p: [f64; 2]| {
        if len == 0.0 {
            dist2(a, p).sqrt()
        } else {
            ((b[0] - a[0]) * (a[1] - p[1]) - (a[0] - p[0]) * (b[1] - a[1])).abs() / len
        }
    };
    let (idx, max) =
        pts[1..pts.len() - 1].iter().enumerate().map(|(i, &p)| (i + 1, d(p))).fold((0, -1.0), |m, v| if v.1 > m.1 { v } else { m });
    if max > eps {
        let mut left = douglas_peucker(&pts[..=idx], eps);
        let right = douglas_peucker(&pts[idx..], eps);
        left.pop();
        left.extend(right);
        left
    } else {
        vec![a, b]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: MapScale = MapScale { sx: 1.0, sy: 1.0, px_per_cm: None };

    #[test]
    fn square_zone_has_exact_area_centroid_box_and_outline() {
        let m = ClassMap::from_rows(&["1111", "1331", "1331", "1111"]);
        let dens = vec![10.0; 16];
        let z = zones(&m, &dens, ONE, 0.0);
        assert_eq!(z.len(), 1);
        let z = &z[0];
        assert_eq!(z.class, Class::Bare);
        assert_eq!(z.area_px, 4.0);
        assert_eq!(z.centroid, [2.0, 2.0]);
        assert_eq!(z.bbox, [1.0, 1.0, 3.0, 3.0]);
        assert_eq!(z.outline, vec![[1.0, 1.0], [3.0, 1.0], [3.0, 3.0], [1.0, 3.0]]);
        assert_eq!(z.mean_density_per_cm2, 10.0);
    }

    #[test]
    fn scale_maps_back_to_photo_pixels_and_cm2() {
        let m = ClassMap::from_rows(&["22", "11"]);
        let s = MapScale { sx: 10.0, sy: 5.0, px_per_cm: Some(10.0) };
        let z = &zones(&m, &[0.0; 4], s, 0.0)[0];
        assert_eq!(z.class, Class::Thinning);
        assert_eq!(z.area_px, 100.0); // 2 map pixels x 50 photo pixels
        assert_eq!(z.area_cm2, Some(1.0));
        assert_eq!(z.centroid, [10.0, 2.5]);
        assert_eq!(z.bbox, [0.0, 0.0, 20.0, 5.0]);
        assert_eq!(z.outline, vec![[0.0, 0.0], [20.0, 0.0], [20.0, 5.0], [0.0, 5.0]]);
    }

    #[test]
    fn l_shape_outline_follows_every_corner() {
        let m = ClassMap::from_rows(&["300", "300", "333"]);
        let z = &zones(&m, &[0.0; 9], ONE, 0.0)[0];
        assert_eq!(z.area_px, 5.0);
        assert_eq!(z.outline, vec![[0.0, 0.0], [1.0, 0.0], [1.0, 2.0], [3.0, 2.0], [3.0, 3.0], [0.0, 3.0]]);
    }

    #[test]
    fn diagonal_touch_is_two_zones_sorted_by_size() {
        let m = ClassMap::from_rows(&["330", "330", "004"]);
        let z = zones(&m, &[0.0; 9], ONE, 0.0);
        assert_eq!(z.iter().map(|z| (z.class, z.area_px)).collect::<Vec<_>>(), vec![(Class::Bare, 4.0), (Class::Scar, 1.0)]);
    }

    #[test]
    fn simplification_drops_small_steps() {
        // A staircase diagonal: with eps 1.0 only the corners of the triangle remain.
        let m = ClassMap::from_rows(&["3000", "3300", "3330", "3333"]);
        let raw = &zones(&m, &[0.0; 16], ONE, 0.0)[0];
        assert_eq!(raw.outline.len(), 10);
        let s = &zones(&m, &[0.0; 16], ONE, 1.0)[0];
        assert!(s.outline.len() < raw.outline.len(), "{:?}", s.outline);
        assert!(s.outline.contains(&[0.0, 0.0]) && s.outline.contains(&[4.0, 4.0]) && s.outline.contains(&[0.0, 4.0]));
    }
}
