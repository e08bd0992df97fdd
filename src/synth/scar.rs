//! Scars on the scalp: the FUT strip across the back, FUE dot scars in the donor area, and
//! irregular trauma or burn scars. Each answers "is this scalp position scar tissue?" and
//! gives the fine grain of its tissue.

use super::geom::{ScalpPos, MAP_RADIUS_CM, V3};
use super::pattern::ValueNoise;
use super::rng::Rng;
use super::scene::{Scar, ScarKind};

const DEG_CM: f32 = MAP_RADIUS_CM * std::f32::consts::PI / 180.0;

/// A scar with its geometry precomputed for per-pixel queries.
pub struct ScarShape<'a> {
    pub spec: &'a Scar,
    /// FUE dot centres bucketed on a polar/azimuth grid of `CELL` degrees.
    dots: Vec<Vec<V3>>,
    /// Uneven tone of the scar tissue, a few mm across, over the whole scalp map.
    grain: ValueNoise,
}

/// Grain lattice: 128 cells of 3 mm cover the scalp map (radius about 19 cm at the nape).
const GRAIN_CELLS: usize = 128;
const GRAIN_CELL_CM: f32 = 0.3;

const CELL: f32 = 2.0;
const POLAR_CELLS: usize = 90;
const AZ_CELLS: usize = 180;

impl<'a> ScarShape<'a> {
    pub fn new(spec: &'a Scar) -> ScarShape<'a> {
        let mut dots = Vec::new();
        if spec.kind == ScarKind::Fue {
            dots = vec![Vec::new(); POLAR_CELLS * AZ_CELLS];
            let mut r = Rng::new(spec.seed);
            // Donor area: back and sides between the ears and the nape (where FUE punches go).
            for _ in 0..spec.count {
                let polar = r.range(90.0, 122.0);
                let az = -90.0 + r.range(-115.0, 115.0);
                let key = cell(polar, az);
                dots[key].push(ScalpPos::dir(polar, az));
            }
        }
        // Its own stream from the scar's seed, so drawing the grain moves no other draw.
        let grain = ValueNoise::new(&mut Rng::new(spec.seed ^ 0x6772_6169_6E00), GRAIN_CELLS, GRAIN_CELL_CM);
        ScarShape { spec, dots, grain }
    }

    /// The tissue's grain at a scalp position, in [-1, 1].
    pub fn grain(&self, pos: &ScalpPos) -> f32 {
        self.grain.at(pos.u, pos.v)
    }

    /// Whether the scalp position is inside this scar.
    pub fn contains(&self, pos: &ScalpPos) -> bool {
        let s = self.spec;
        match s.kind {
            ScarKind::Fut => {
                // Strip at a fixed height across the back, tapering at its ends.
                let from_back = 180.0 - pos.from_front;
                if from_back > s.azimuth_deg {
                    return false;
                }
                let wobble = 1.5 * (pos.azimuth.to_radians() * 3.0 + s.shape[0] * 6.3).sin();
                let taper = 1.0 - (from_back / s.azimuth_deg).powi(6);
                let half_w = 0.5 * s.size_cm * taper * (0.8 + 0.4 * s.shape[1]);
                ((pos.polar - s.polar_deg - wobble) * DEG_CM).abs() < half_w
            }
            ScarKind::Fue => {
                let q = ScalpPos::dir(pos.polar, pos.azimuth);
                let max_cos = (s.size_cm / MAP_RADIUS_CM).cos();
                let (pi, ai) = ((pos.polar / CELL) as isize, ((pos.azimuth + 180.0) / CELL) as isize);
                for dp in -1..=1 {
                    let p = pi + dp;
                    if p < 0 || p >= POLAR_CELLS as isize {
                        continue;
                    }
                    for da in -1..=1 {
                        let a = (ai + da).rem_euclid(AZ_CELLS as isize);
                        if self.dots[p as usize * AZ_CELLS + a as usize].iter().any(|c| c.dot(q) > max_cos) {
                            return true;
                        }
                    }
                }
                false
            }
            ScarKind::Trauma => {
                let c = ScalpPos::dir(s.polar_deg, s.azimuth_deg);
                let q = ScalpPos::dir(pos.polar, pos.azimuth);
                let dist = c.dot(q).clamp(-1.0, 1.0).acos() * MAP_RADIUS_CM;
                if dist > s.size_cm * 1.8 {
                    return false;
                }
                // Angle around the centre in its tangent plane gives an irregular outline.
                let e1 = c.cross(super::geom::v3(0.0, 0.0, 1.0));
                let e1 = if e1.len() < 1e-3 { super::geom::v3(1.0, 0.0, 0.0) } else { e1.norm() };
                let e2 = c.cross(e1);
                let ang = q.dot(e2).atan2(q.dot(e1));
                let k = &s.shape;
                let r = s.size_cm
                    * (1.0
                        + 0.28 * (2.0 * ang + 6.3 * k[2]).sin()
                        + 0.15 * (3.0 * ang + 6.3 * k[3]).sin()
                        + 0.08 * (5.0 * ang + 6.3 * k[4]).sin())
                    * (0.75 + 0.25 * k[5]);
                dist < r
            }
        }
    }
}

fn cell(polar: f32, az: f32) -> usize {
    let p = ((polar / CELL) as usize).min(POLAR_CELLS - 1);
    let a = (((az + 180.0).rem_euclid(360.0) / CELL) as usize).min(AZ_CELLS - 1);
    p * AZ_CELLS + a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::pattern::map_pos;

    fn scar(kind: ScarKind) -> Scar {
        Scar {
            kind,
            polar_deg: 105.0,
            azimuth_deg: 60.0,
            size_cm: 0.3,
            count: 400,
            lighter_l: 10.0,
            pinker_a: 5.0,
            shiny: false,
            relief: 0.0,
            shape: [0.0; 6],
            seed: 1,
        }
    }

    fn pos(polar: f32, az: f32) -> ScalpPos {
        let r = polar.to_radians() * MAP_RADIUS_CM;
        map_pos(r * az.to_radians().cos(), r * az.to_radians().sin())
    }

    #[test]
    fn fut_strip_crosses_the_back_only() {
        let s = scar(ScarKind::Fut);
        let shape = ScarShape::new(&s);
        // Straight back (azimuth -90): wobble is 1.5*sin(-3*pi/2) = +1.5 degrees.
        assert!(shape.contains(&pos(106.5, -90.0)));
        assert!(!shape.contains(&pos(95.0, -90.0)));
        assert!(!shape.contains(&pos(106.5, 90.0)), "not on the forehead");
    }

    #[test]
    fn fue_dots_cover_a_small_fraction_of_the_donor_area() {
        let mut s = scar(ScarKind::Fue);
        s.size_cm = 0.05; // 1 mm punches
        let shape = ScarShape::new(&s);
        let mut hits = 0;
        let mut n = 0;
        for i in 0..200 {
            for j in 0..200 {
                n += 1;
                hits += shape.contains(&pos(92.0 + i as f32 * 0.14, -150.0 + j as f32 * 0.6)) as u32;
            }
        }
        let frac = hits as f32 / n as f32;
        assert!(frac > 0.002 && frac < 0.2, "{frac}");
        assert!(!shape.contains(&pos(10.0, 90.0)));
    }

    #[test]
    fn trauma_scar_contains_its_centre() {
        let mut s = scar(ScarKind::Trauma);
        s.polar_deg = 30.0;
        s.azimuth_deg = 45.0;
        s.size_cm = 2.0;
        let shape = ScarShape::new(&s);
        assert!(shape.contains(&pos(30.0, 45.0)));
        assert!(!shape.contains(&pos(80.0, -135.0)));
    }
}
