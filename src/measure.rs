//! Measurements in physical units: the photo's scale (given, from a printed marker, or estimated
//! from the head outline as an interval), the surface area under each map cell (undoing the
//! foreshortening of a curved scalp in top-down views), areas in cm² with their intervals, and
//! the skin tone (ITA) of bare scalp. Pure functions of the class map and the settings.

use serde::{Deserialize, Serialize};

use crate::classes::Class;
use crate::masks::ClassMap;
use crate::rules::ScaleRules;
use crate::synth::color::{ita_deg, linear_to_lab, srgb_to_linear_f, ItaClass};

/// Ratio of the scalp outline's minor axis (measured at the crown's scale) to the head breadth
/// in top-down views, with its 5-95 % range: below 1 because the crown is nearer the camera than
/// the widest point and hair ends near the ears. Measured on 15 whole-head top renders
/// (`scalpmap synth --seed 4242 --view top`, heads fully in frame): median 0.88, 0.81-0.90.
pub const TOP_OUTLINE_FACTOR: [f64; 3] = [0.81, 0.88, 0.90];

/// How a photo's scale was found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScaleInfo {
    /// "given" (--px-per-cm), "marker" (printed calibration marker) or "head-width" (estimated).
    pub method: String,
    pub px_per_cm: f64,
    /// Interval: equal to px_per_cm when given.
    pub px_per_cm_low: f64,
    pub px_per_cm_high: f64,
    pub estimated: bool,
    pub note: String,
}

impl ScaleInfo {
    pub fn given(px_per_cm: f64) -> ScaleInfo {
        ScaleInfo {
            method: "given".into(),
            px_per_cm,
            px_per_cm_low: px_per_cm,
            px_per_cm_high: px_per_cm,
            estimated: false,
            note: "from --px-per-cm".into(),
        }
    }
}

/// A value with its interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

/// Intervals of independent parts add bound by bound (the widest the sum can be).
impl std::ops::Add for Interval {
    type Output = Interval;
    fn add(self, o: Interval) -> Interval {
        Interval { value: self.value + o.value, low: self.low + o.low, high: self.high + o.high }
    }
}

impl Interval {
    pub fn exact(v: f64) -> Interval {
        Interval { value: v, low: v, high: v }
    }
    pub fn scale(self, k: f64) -> Interval {
        Interval { value: self.value * k, low: self.low * k, high: self.high * k }
    }
}

/// Skin tone of the bare scalp.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SkinTone {
    pub ita_deg: f64,
    /// Chardon's ITA class (never a Fitzpatrick type).
    pub ita_class: String,
    /// Median CIELAB of the cells used.
    pub lab: [f64; 3],
    /// Bare cells used, after excluding glare and deep shadow.
    pub cells: usize,
}

/// Fewest bare cells for a skin-tone reading.
pub const SKIN_MIN_CELLS: usize = 50;

fn median(v: &mut [f32]) -> f32 {
    v.sort_by(f32::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Bare cells of regions that touch hair or thinning: bare scalp inside the head, not a patch
/// of skin-coloured backdrop the model took for bare.
pub fn scalp_bare_cells(map: &ClassMap) -> Vec<bool> {
    let (id, info) = crate::masks::regions(map);
    let (w, h) = (map.width, map.height);
    let mut touches = vec![false; info.len()];
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            if map.data[i] != Class::Bare as u8 {
                continue;
            }
            let hairy = |j: usize| map.data[j] == Class::Hair as u8 || map.data[j] == Class::Thinning as u8;
            if (x > 0 && hairy(i - 1)) || (x + 1 < w && hairy(i + 1)) || (y > 0 && hairy(i - w)) || (y + 1 < h && hairy(i + w)) {
                touches[id[i] as usize] = true;
            }
        }
    }
    map.data.iter().zip(&id).map(|(&k, &r)| k == Class::Bare as u8 && touches[r as usize]).collect()
}

/// ITA from bare scalp cells of the (area-averaged) photo, `rgb` in 0-255 per map cell: only
/// bare regions touching hair or thinning count; glare (any channel >= 240, or luminance
/// >= 230) and deep shadow (luminance < 30) are excluded before the medians of L* and b*.
pub fn skin_tone(rgb: &[[f32; 3]], map: &ClassMap) -> Option<SkinTone> {
    let mut ls = Vec::new();
    let mut as_ = Vec::new();
    let mut bs = Vec::new();
    let keep = scalp_bare_cells(map);
    let lum = crate::model::segmenter::luma;
    // Keeping only the darker half against shine was tried: no better on renders.
    let cells = rgb.iter().zip(&keep).filter(|(c, k)| **k && !(c.iter().any(|&v| v >= 240.0) || lum(c) >= 230.0 || lum(c) < 30.0));
    for (c, _) in cells {
        let lab = linear_to_lab(c.map(|v| srgb_to_linear_f(v / 255.0)));
        ls.push(lab[0]);
        as_.push(lab[1]);
        bs.push(lab[2]);
    }
    if ls.len() < SKIN_MIN_CELLS {
        return None;
    }
    let cells = ls.len();
    let (l, a, b) = (median(&mut ls), median(&mut as_), median(&mut bs));
    if b <= 0.0 {
        return None; // not skin: ITA is defined for skin's positive b*
    }
    let ita = ita_deg(l, b);
    Some(SkinTone { ita_deg: ita as f64, ita_class: ItaClass::of(ita).name().into(), lab: [l as f64, a as f64, b as f64], cells })
}

/// Centroid and second moments of a set of points: the principal variances (larger first) and
/// the angle of the major axis.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Moments {
    pub n: usize,
    pub centre: [f64; 2],
    pub l1: f64,
    pub l2: f64,
    pub angle: f64,
}

/// [`Moments`] of `points` (iterated twice: mean, then spread).
pub fn moments<I: Iterator<Item = (f64, f64)> + Clone>(points: I) -> Moments {
    let (mut n, mut mx, mut my) = (0usize, 0f64, 0f64);
    for (x, y) in points.clone() {
        n += 1;
        mx += x;
        my += y;
    }
    let k = n.max(1) as f64;
    let (mx, my) = (mx / k, my / k);
    let (mut cxx, mut cyy, mut cxy) = (0f64, 0f64, 0f64);
    for (x, y) in points {
        let (dx, dy) = (x - mx, y - my);
        cxx += dx * dx;
        cyy += dy * dy;
        cxy += dx * dy;
    }
    let (cxx, cyy, cxy) = (cxx / k, cyy / k, cxy / k);
    let disc = ((cxx - cyy).powi(2) / 4.0 + cxy * cxy).sqrt();
    Moments {
        n,
        centre: [mx, my],
        l1: (cxx + cyy) / 2.0 + disc,
        l2: ((cxx + cyy) / 2.0 - disc).max(0.0),
        angle: 0.5 * (2.0 * cxy).atan2(cxx - cyy),
    }
}

/// Principal axes of the scalp (non-background) cells, in photo pixels: centre, unit vector of
/// the major axis, and the semi-axes of the ellipse with the same second moments.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outline {
    pub centre: [f64; 2],
    pub major_dir: [f64; 2],
    pub semi_major: f64,
    pub semi_minor: f64,
    /// Share of the frame's border cells that are scalp: the head runs out of the photo.
    pub border_share: f64,
}

pub fn scalp_outline(map: &ClassMap, sx: f64, sy: f64) -> Option<Outline> {
    let (w, h) = (map.width, map.height);
    let cells = (0..h).flat_map(move |y| (0..w).map(move |x| (x, y))).filter(|&(x, y)| map.get(x, y) != 0);
    let m = moments(cells.map(|(x, y)| ((x as f64 + 0.5) * sx, (y as f64 + 0.5) * sy)));
    if m.n < 3 {
        return None;
    }
    let mut border = 0usize;
    let mut scalp_border = 0usize;
    for y in 0..h {
        for x in 0..w {
            if x == 0 || y == 0 || x == w - 1 || y == h - 1 {
                border += 1;
                scalp_border += (map.get(x, y) != 0) as usize;
            }
        }
    }
    Some(Outline {
        centre: m.centre,
        major_dir: [m.angle.cos(), m.angle.sin()],
        semi_major: 2.0 * m.l1.sqrt(),
        semi_minor: 2.0 * m.l2.sqrt(),
        border_share: scalp_border as f64 / border.max(1) as f64,
    })
}

/// Most of the frame's border that may be scalp for the head to count as whole in the photo.
pub const MAX_BORDER_SHARE: f64 = 0.05;

impl Outline {
    /// The head lies (almost) wholly in the photo: its outline can be trusted for the scale
    /// estimate and the foreshortening correction.
    pub fn whole_in_frame(&self) -> bool {
        self.border_share <= MAX_BORDER_SHARE
    }
}

/// The scale from the head outline of a top-down view: the outline's minor axis is the head
/// breadth times [`TOP_OUTLINE_FACTOR`]. The interval combines the breadth range of the rules
/// with the factor's range. None, with the reason, when the view or the outline does not allow it.
pub fn scale_from_head(view: Option<&str>, outline: Option<&Outline>, r: &ScaleRules) -> Result<ScaleInfo, String> {
    if view != Some("top") {
        return Err("the head-width estimate needs a top-down view".into());
    }
    let o = outline.ok_or("no scalp found")?;
    if !o.whole_in_frame() {
        return Err(format!("the head runs out of the frame ({:.0} % of the border is scalp)", o.border_share * 100.0));
    }
    let minor_px = 2.0 * o.semi_minor;
    let [f_lo, f, f_hi] = TOP_OUTLINE_FACTOR;
    Ok(ScaleInfo {
        method: "head-width".into(),
        px_per_cm: minor_px / (r.head_breadth_cm * f),
        px_per_cm_low: minor_px / (r.head_breadth_high_cm * f_hi),
        px_per_cm_high: minor_px / (r.head_breadth_low_cm * f_lo),
        estimated: true,
        note: format!(
            "estimated: scalp outline {minor_px:.0} px across = head breadth {:.1} cm ({:.1}-{:.1}) x {f:.2}",
            r.head_breadth_cm, r.head_breadth_low_cm, r.head_breadth_high_cm
        ),
    })
}

/// Relative uncertainty of a marker's scale: on 29 renders with the whole marker in frame (seed
/// 606, `cargo test --release --test plan printed`), the marker's scale was off by 0.8 %
/// (median), 4.3 % at worst; the scalp around it lies at other depths, hence the margin.
pub const MARKER_SCALE_UNCERTAINTY: f64 = 0.06;

/// The scale at a printed marker of `marker_side_cm`.
pub fn scale_from_marker(m: &crate::marker::MarkerFound, r: &ScaleRules) -> ScaleInfo {
    let k = m.side_px / r.marker_side_cm;
    ScaleInfo {
        method: "marker".into(),
        px_per_cm: k,
        px_per_cm_low: k * (1.0 - MARKER_SCALE_UNCERTAINTY),
        px_per_cm_high: k * (1.0 + MARKER_SCALE_UNCERTAINTY),
        estimated: false,
        note: format!(
            "printed marker at ({:.0}, {:.0}): {:.1} px for {:.1} cm, tilted about {:.0}°",
            m.centre_px[0], m.centre_px[1], m.side_px, r.marker_side_cm, m.tilt_deg
        ),
    }
}

/// Surface area factor of each map cell (1 = flat), and the name of the correction: in top-down
/// views the scalp is a dome whose edges are seen at a slant, so a cell at normalised radius
/// rho of the outline ellipse covers 1 / cos(tilt) = 1 / sqrt(1 - rho²) times its flat area
/// (an ellipsoid head seen along its axis), capped at `max_tilt_deg`. A head running out of the
/// frame has no trustworthy outline, and is counted flat.
pub fn surface_factors(
    map: &ClassMap,
    sx: f64,
    sy: f64,
    view: Option<&str>,
    outline: Option<&Outline>,
    r: &ScaleRules,
) -> (Vec<f64>, &'static str) {
    let n = map.width * map.height;
    let (Some(o), true, Some("top")) = (outline, r.correct_top_view, view) else {
        return (vec![1.0; n], "none");
    };
    if !o.whole_in_frame() {
        return (vec![1.0; n], "none");
    }
    let cap = 1.0 / r.max_tilt_deg.to_radians().cos().max(1e-3);
    let [ux, uy] = o.major_dir;
    let mut f = vec![1.0; n];
    for y in 0..map.height {
        for x in 0..map.width {
            let (dx, dy) = ((x as f64 + 0.5) * sx - o.centre[0], (y as f64 + 0.5) * sy - o.centre[1]);
            let (a, b) = ((dx * ux + dy * uy) / o.semi_major.max(1e-9), (-dx * uy + dy * ux) / o.semi_minor.max(1e-9));
            let rho2 = a * a + b * b;
            f[y * map.width + x] = if rho2 >= 1.0 { cap } else { (1.0 / (1.0 - rho2).sqrt()).min(cap) };
        }
    }
    (f, "ellipsoid-top")
}

/// Relative error of the area after the ellipsoid correction, added to the interval: on 12
/// whole-head top renders with their exact scale, the corrected loss area was off by 8 % (median)
/// and 28 % at the 90th percentile (`cargo test --release --test plan top_view`).
pub const ELLIPSOID_AREA_UNCERTAINTY: f64 = 0.15;
/// Without a correction, a photo's flat pixel count undercounts a curved scalp: the same top
/// renders counted flat were 48 % short (median), up to 66 %. The interval reaches to twice the
/// flat count.
pub const FLAT_AREA_HIGH_FACTOR: f64 = 2.0;

/// Surface area in cm² of the cells of `classes`, with the interval that the scale's interval
/// and the foreshortening correction (`correction`, from [`surface_factors`]) give.
pub fn area_cm2(map: &ClassMap, factors: &[f64], classes: &[Class], cell_px2: f64, s: &ScaleInfo, correction: &str) -> Interval {
    // `+ 0.0`: an empty float sum is -0.0, which reports would print as such.
    let px2: f64 =
        map.data.iter().zip(factors).filter(|(k, _)| classes.iter().any(|c| **k == *c as u8)).map(|(_, f)| f * cell_px2).sum::<f64>() + 0.0;
    let (lo, hi) = if correction == "none" {
        (1.0, FLAT_AREA_HIGH_FACTOR)
    } else {
        (1.0 - ELLIPSOID_AREA_UNCERTAINTY, 1.0 + ELLIPSOID_AREA_UNCERTAINTY)
    };
    // A larger px/cm means a smaller area: the high scale bounds the low area.
    Interval {
        value: px2 / (s.px_per_cm * s.px_per_cm),
        low: lo * px2 / (s.px_per_cm_high * s.px_per_cm_high),
        high: hi * px2 / (s.px_per_cm_low * s.px_per_cm_low),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Rules;

    #[test]
    fn lab_of_known_colours() {
        let white = linear_to_lab([1.0, 1.0, 1.0]);
        assert!((white[0] - 100.0).abs() < 0.01 && white[1].abs() < 0.01 && white[2].abs() < 0.01, "{white:?}");
        // sRGB (194, 150, 130): a light skin tone, L* about 65.5, b* about 17.
        let lab = linear_to_lab([194.0, 150.0, 130.0].map(|v: f32| srgb_to_linear_f(v / 255.0)));
        assert!((lab[0] - 65.5).abs() < 0.5 && (lab[2] - 17.0).abs() < 1.0, "{lab:?}");
    }

    #[test]
    fn bare_scalp_is_bare_touching_hair() {
        let map = ClassMap::from_rows(&["3300", "0000", "0133", "0033"]);
        let keep = scalp_bare_cells(&map);
        let kept: Vec<usize> = keep.iter().enumerate().filter(|(_, k)| **k).map(|(i, _)| i).collect();
        assert_eq!(kept, vec![10, 11, 14, 15], "the patch touching hair, not the one on the backdrop");
    }

    #[test]
    fn skin_tone_uses_bare_cells_without_glare() {
        // 8x8 map, bare but for one hair cell; 60 cells of one skin colour, 3 of glare.
        let mut data = vec![Class::Bare as u8; 64];
        data[63] = Class::Hair as u8;
        let map = ClassMap::new(8, 8, data);
        let mut rgb = vec![[194.0, 150.0, 130.0]; 64];
        for c in rgb.iter_mut().take(3) {
            *c = [255.0, 255.0, 255.0];
        }
        let t = skin_tone(&rgb, &map).unwrap();
        assert_eq!(t.cells, 60);
        let expected = ita_deg(t.lab[0] as f32, t.lab[2] as f32) as f64;
        assert_eq!(t.ita_deg, expected);
        assert_eq!(t.ita_class, ItaClass::of(t.ita_deg as f32).name());
        assert!(t.ita_deg > 41.0 && t.ita_deg < 45.0, "{}", t.ita_deg);
        // Too few bare cells: no reading.
        let map = ClassMap::new(8, 8, vec![Class::Hair as u8; 64]);
        assert_eq!(skin_tone(&rgb, &map), None);
    }

    #[test]
    fn outline_of_a_literal_rectangle() {
        // A 4x2 block of scalp cells in a 8x6 map, 2 photo px per cell.
        let map = ClassMap::from_rows(&["00000000", "00000000", "00111100", "00111100", "00000000", "00000000"]);
        let o = scalp_outline(&map, 2.0, 2.0).unwrap();
        assert_eq!(o.centre, [8.0, 6.0]);
        assert!((o.major_dir[0].abs() - 1.0).abs() < 1e-12);
        // Variance of a uniform 8-px run sampled at cell centres: (4²-1)/12 * 2² = 5, semi-axis 2*sqrt(5).
        assert!((o.semi_major - 2.0 * 5f64.sqrt()).abs() < 1e-9, "{}", o.semi_major);
        assert!((o.semi_minor - 2.0).abs() < 1e-9, "{}", o.semi_minor);
        assert_eq!(o.border_share, 0.0);
    }

    #[test]
    fn head_width_scale_needs_a_top_view_inside_the_frame() {
        let r = Rules::default().scale;
        let o = Outline { centre: [0.0, 0.0], major_dir: [1.0, 0.0], semi_major: 300.0, semi_minor: 200.0, border_share: 0.0 };
        let s = scale_from_head(Some("top"), Some(&o), &r).unwrap();
        assert!((s.px_per_cm - 400.0 / (15.2 * 0.88)).abs() < 1e-9);
        assert!(s.px_per_cm_low < s.px_per_cm && s.px_per_cm < s.px_per_cm_high && s.estimated);
        assert!(scale_from_head(Some("back"), Some(&o), &r).is_err());
        let cut = Outline { border_share: 0.3, ..o };
        assert!(scale_from_head(Some("top"), Some(&cut), &r).unwrap_err().contains("out of the frame"));
    }

    #[test]
    fn top_view_factors_grow_towards_the_rim_and_stop_at_the_cap() {
        let r = Rules::default().scale;
        let map = ClassMap::new(3, 1, vec![1, 1, 1]);
        let o = Outline { centre: [1.5, 0.5], major_dir: [1.0, 0.0], semi_major: 2.0, semi_minor: 2.0, border_share: 0.0 };
        let (f, name) = surface_factors(&map, 1.0, 1.0, Some("top"), Some(&o), &r);
        assert_eq!(name, "ellipsoid-top");
        // Centre cell at rho 0: factor 1; the side cells at rho 0.5: 1/sqrt(0.75).
        assert_eq!(f[1], 1.0);
        assert!((f[0] - 1.0 / 0.75f64.sqrt()).abs() < 1e-12);
        let far = Outline { semi_major: 0.5, semi_minor: 0.5, ..o };
        let (f, _) = surface_factors(&map, 1.0, 1.0, Some("top"), Some(&far), &r);
        assert!((f[0] - 1.0 / 75f64.to_radians().cos()).abs() < 1e-12);
        let (f, name) = surface_factors(&map, 1.0, 1.0, Some("back"), Some(&o), &r);
        assert_eq!((f, name), (vec![1.0; 3], "none"));
    }

    #[test]
    fn areas_follow_the_scale_interval() {
        let map = ClassMap::new(2, 1, vec![Class::Bare as u8, Class::Hair as u8]);
        let s = ScaleInfo {
            method: "head-width".into(),
            px_per_cm: 10.0,
            px_per_cm_low: 5.0,
            px_per_cm_high: 20.0,
            estimated: true,
            note: String::new(),
        };
        let a = area_cm2(&map, &[2.0, 1.0], &[Class::Bare], 100.0, &s, "none");
        assert_eq!(a, Interval { value: 2.0, low: 0.5, high: 16.0 });
        let a = area_cm2(&map, &[2.0, 1.0], &[Class::Bare], 100.0, &s, "ellipsoid-top");
        assert_eq!(a, Interval { value: 2.0, low: 0.5 * 0.85, high: 8.0 * 1.15 });
    }
}
