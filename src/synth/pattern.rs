//! Where the scalp is and how dense its hair is: the original hairline, the loss patterns
//! (Norwood, Ludwig, alopecia areata, diffuse) as a retention field, and the follicle
//! density map baked on the scalp map for fast per-pixel lookup.

use super::geom::{ScalpPos, MAP_RADIUS_CM};
use super::rng::Rng;
use super::scene::{Pattern, PatternKind};

/// Polar angle (degrees from the vertex) of the original, mature hairline at `from_front`
/// degrees of azimuth from the midline front: the edge of the hair-bearing scalp before any
/// loss. Front hairline about 8 cm above the glabella (DOMAIN.md, Garg), temples, above the
/// ears, and the nape.
pub fn hairline_polar(from_front: f32) -> f32 {
    const TABLE: [(f32, f32); 7] = [(0.0, 57.0), (20.0, 59.0), (40.0, 68.0), (60.0, 80.0), (90.0, 96.0), (135.0, 114.0), (180.0, 122.0)];
    let f = from_front.clamp(0.0, 180.0);
    for w in TABLE.windows(2) {
        let ((a, pa), (b, pb)) = (w[0], w[1]);
        if f <= b {
            let t = smooth((f - a) / (b - a));
            return pa + (pb - pa) * t;
        }
    }
    TABLE[TABLE.len() - 1].1
}

fn smooth(t: f32) -> f32 {
    let t = t.clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// 0 below `a`, 1 above `b`, smooth between.
pub fn smoothstep(a: f32, b: f32, x: f32) -> f32 {
    if b <= a {
        return if x < a { 0.0 } else { 1.0 };
    }
    smooth((x - a) / (b - a))
}

const DEG_CM: f32 = MAP_RADIUS_CM * std::f32::consts::PI / 180.0;

/// Smooth value noise on a lattice over the scalp map, for irregular pattern edges and
/// patchy density.
pub struct ValueNoise {
    n: usize,
    cell_cm: f32,
    values: Vec<f32>,
}

impl ValueNoise {
    pub fn new(rng: &mut Rng, n: usize, cell_cm: f32) -> ValueNoise {
        ValueNoise { n, cell_cm, values: (0..n * n).map(|_| rng.range(-1.0, 1.0)).collect() }
    }

    /// Noise in [-1, 1] at map position (u, v) cm.
    pub fn at(&self, u: f32, v: f32) -> f32 {
        let half = self.n as f32 * self.cell_cm / 2.0;
        let x = ((u + half) / self.cell_cm).clamp(0.0, (self.n - 2) as f32);
        let y = ((v + half) / self.cell_cm).clamp(0.0, (self.n - 2) as f32);
        let (i, j) = (x as usize, y as usize);
        let (fx, fy) = (smooth(x - i as f32), smooth(y - j as f32));
        let g = |a: usize, b: usize| self.values[b * self.n + a];
        let top = g(i, j) + (g(i + 1, j) - g(i, j)) * fx;
        let bot = g(i, j + 1) + (g(i + 1, j + 1) - g(i, j + 1)) * fx;
        top + (bot - top) * fy
    }
}

/// Fraction of native hair that pattern `p` leaves at a scalp position (1 = untouched).
pub fn retention(p: &Pattern, pos: &ScalpPos, edge_noise: f32) -> f32 {
    let edge = p.edge_cm;
    // Distance behind the original hairline along the meridian, cm.
    let behind_cm = (hairline_polar(pos.from_front) - pos.polar) * DEG_CM;
    let jitter = edge_noise * 0.8; // cm of irregularity on every boundary
    let loss = match p.kind {
        PatternKind::Norwood => norwood_loss(p, pos, behind_cm, jitter),
        PatternKind::Ludwig => {
            let level = p.stage_level.unwrap_or(1) as usize;
            let (au, av, amount) = [(3.6, 5.5, 0.7), (4.6, 6.5, 0.85), (5.6, 7.5, 0.97)][level.clamp(1, 3) - 1];
            // Elliptical crown-to-front thinning; the frontal 1-3 cm stays (DOMAIN.md, Ludwig).
            let d = ((pos.u / au).powi(2) + ((pos.v - 1.5) / av).powi(2)).sqrt();
            let core = 1.0 - smoothstep(1.0 - edge / av, 1.0 + edge / av, d + jitter / av);
            amount * core * smoothstep(1.0, 3.0, behind_cm)
        }
        PatternKind::Areata => {
            let q = ScalpPos::dir(pos.polar, pos.azimuth);
            p.patches.iter().fold(0.0f32, |acc, patch| {
                let c = ScalpPos::dir(patch.polar_deg, patch.azimuth_deg);
                let dist = q.dot(c).clamp(-1.0, 1.0).acos() * MAP_RADIUS_CM;
                let r = patch.radius_cm + jitter * 0.6;
                acc.max(patch.loss * (1.0 - smoothstep(r - edge, r + edge * 0.5, dist)))
            })
        }
        PatternKind::Diffuse => {
            // Heaviest at the vertex, fading towards the sides and back over `edge` cm.
            let top_cm = pos.polar * DEG_CM;
            p.diffuse_loss * (1.0 - smoothstep(4.0, 4.0 + 2.5 * edge, top_cm + jitter * 2.0)) * (0.85 + 0.15 * edge_noise)
        }
    };
    (1.0 - loss).clamp(0.0, 1.0)
}

/// Norwood: frontal and temporal recession, a crown patch, the bridge between them and,
/// from VI, the horseshoe that is all that remains (DOMAIN.md, Hamilton-Norwood).
fn norwood_loss(p: &Pattern, pos: &ScalpPos, behind_cm: f32, jitter: f32) -> f32 {
    let level = p.stage_level.unwrap_or(1);
    let edge = p.edge_cm;
    // (front recession cm, extra temple recession cm, crown radius cm, bridge loss)
    let (front, temple, crown, bridge) = match (level, p.vertex_variant) {
        (1, _) => (0.3, 0.6, 0.0, 0.0),
        (2, _) => (0.8, 1.8, 0.0, 0.0),
        (3, true) => (0.8, 1.8, 3.0, 0.0),
        (3, false) => (1.8, 3.2, 0.0, 0.0),
        (4, _) => (3.2, 2.8, 3.6, 0.25),
        (5, _) => (4.8, 2.6, 5.0, 0.55),
        _ => (7.0, 2.0, 6.5, 1.0),
    };
    let temple_bump = (-((pos.from_front - 42.0) / 16.0).powi(2)).exp();
    let rec = front + temple * temple_bump + jitter;
    // Recession only affects the front half; it fades out above the ears.
    let front_side = 1.0 - smoothstep(70.0, 100.0, pos.from_front);
    let front_loss = front_side * (1.0 - smoothstep(rec - edge * 0.5, rec + edge * 0.5, behind_cm));

    let crown_loss = if crown > 0.0 {
        let d = (pos.u.powi(2) + (pos.v + p.crown_offset_cm).powi(2)).sqrt();
        1.0 - smoothstep(crown - edge, crown + edge * 0.5, d + jitter)
    } else {
        0.0
    };

    let bridge_loss = if bridge > 0.0 {
        let d = ((pos.u / 4.8).powi(2) + ((pos.v - 1.0) / 6.5).powi(2)).sqrt();
        bridge * (1.0 - smoothstep(0.7, 1.15, d + jitter / 6.0))
    } else {
        0.0
    };

    let horseshoe_loss = if level >= 6 {
        // The remaining wreath's upper edge: higher on the sides in VI than in VII.
        let (side, back) = if level == 6 { (66.0, 82.0) } else { (80.0, 96.0) };
        let top = if pos.from_front <= 90.0 {
            hairline_polar(pos.from_front).min(side + (90.0 - pos.from_front) * 0.5)
        } else {
            side + (back - side) * (pos.from_front - 90.0) / 90.0
        };
        1.0 - smoothstep(top - 3.0, top + 5.0, pos.polar + jitter / DEG_CM)
    } else {
        0.0
    };
    front_loss.max(crown_loss).max(bridge_loss).max(horseshoe_loss)
}

/// Follicle density (hairs/cm² of scalp) baked on a square grid over the scalp map.
pub struct DensityField {
    n: usize,
    half_cm: f32,
    cell_cm: f32,
    values: Vec<f32>,
}

impl DensityField {
    /// Grid cells of 0.25 cm: finer than any pattern edge, coarse enough to bake in ~1 ms.
    pub fn bake(p: &Pattern, native: f32, rng: &mut Rng) -> DensityField {
        let edge_noise = ValueNoise::new(rng, 24, 2.0);
        let patchy = ValueNoise::new(rng, 48, 0.9);
        let half_cm = 20.0;
        let cell_cm = 0.25;
        let n = (2.0 * half_cm / cell_cm) as usize + 1;
        let mut values = Vec::with_capacity(n * n);
        for j in 0..n {
            for i in 0..n {
                let u = -half_cm + i as f32 * cell_cm;
                let v = -half_cm + j as f32 * cell_cm;
                let pos = map_pos(u, v);
                let keep = retention(p, &pos, edge_noise.at(u, v));
                values.push((native * keep * (1.0 + 0.08 * patchy.at(u, v))).max(0.0));
            }
        }
        DensityField { n, half_cm, cell_cm, values }
    }

    /// Bilinear lookup at map position (u, v) cm.
    pub fn at(&self, u: f32, v: f32) -> f32 {
        let max = (self.n - 2) as f32;
        let x = ((u + self.half_cm) / self.cell_cm).clamp(0.0, max);
        let y = ((v + self.half_cm) / self.cell_cm).clamp(0.0, max);
        let (i, j) = (x as usize, y as usize);
        let (fx, fy) = (x - i as f32, y - j as f32);
        let g = |a: usize, b: usize| self.values[b * self.n + a];
        let top = g(i, j) + (g(i + 1, j) - g(i, j)) * fx;
        let bot = g(i, j + 1) + (g(i + 1, j + 1) - g(i, j + 1)) * fx;
        top + (bot - top) * fy
    }
}

/// Scalp position of a map point (inverse of the azimuthal equidistant map).
pub fn map_pos(u: f32, v: f32) -> ScalpPos {
    let polar = (u * u + v * v).sqrt() / MAP_RADIUS_CM;
    let azimuth = v.atan2(u).to_degrees();
    ScalpPos { polar: polar.to_degrees(), from_front: super::geom::angle_diff_deg(azimuth, 90.0), azimuth, u, v }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::scene::Pattern;

    fn pattern(kind: PatternKind, level: u8) -> Pattern {
        Pattern {
            kind,
            stage: None,
            stage_level: Some(level),
            vertex_variant: false,
            diffuse_loss: 0.7,
            edge_cm: 1.0,
            patches: vec![],
            crown_offset_cm: 3.0,
        }
    }

    #[test]
    fn hairline_runs_from_forehead_to_nape() {
        assert_eq!(hairline_polar(0.0), 57.0);
        assert_eq!(hairline_polar(90.0), 96.0);
        assert_eq!(hairline_polar(180.0), 122.0);
        assert!((0..180).all(|f| hairline_polar(f as f32 + 1.0) >= hairline_polar(f as f32)));
    }

    #[test]
    fn norwood_vii_keeps_only_the_wreath() {
        let p = pattern(PatternKind::Norwood, 7);
        let vertex = map_pos(0.0, 0.0);
        let nape = map_pos(0.0, -16.5); // polar ~109 at the back
        assert!(retention(&p, &vertex, 0.0) < 0.01);
        assert!(retention(&p, &nape, 0.0) > 0.95);
        let p2 = pattern(PatternKind::Norwood, 2);
        assert!(retention(&p2, &vertex, 0.0) > 0.99, "Norwood II leaves the vertex alone");
    }

    #[test]
    fn ludwig_spares_the_frontal_line_and_thins_the_crown() {
        let p = pattern(PatternKind::Ludwig, 3);
        let near_hairline = map_pos(0.0, 8.4); // ~0.25 cm behind the front hairline
        assert!(retention(&p, &near_hairline, 0.0) > 0.95);
        assert!(retention(&p, &map_pos(0.0, 0.0), 0.0) < 0.1);
    }

    #[test]
    fn density_field_interpolates_its_grid() {
        let p = pattern(PatternKind::Diffuse, 1);
        let f = DensityField::bake(&p, 200.0, &mut Rng::new(3));
        let top = f.at(0.0, 0.0);
        let side = f.at(14.0, 0.0);
        assert!(top < 0.5 * side, "top {top} side {side}");
        assert!(side > 150.0 && side < 230.0);
    }
}
