//! Scene geometry: a small 3-vector, the ellipsoid head with neck and shoulders, the
//! pinhole camera, and the scalp-map coordinates that loss patterns are drawn in.
//!
//! Head frame: x to the patient's right, y forward (nose), z up, origin at the head's centre,
//! lengths in cm.

use std::ops::{Add, Mul, Neg, Sub};

#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct V3 {
    pub x: f32,
    pub y: f32,
    pub z: f32,
}

pub const fn v3(x: f32, y: f32, z: f32) -> V3 {
    V3 { x, y, z }
}

impl V3 {
    pub fn dot(self, o: V3) -> f32 {
        self.x * o.x + self.y * o.y + self.z * o.z
    }
    pub fn cross(self, o: V3) -> V3 {
        v3(self.y * o.z - self.z * o.y, self.z * o.x - self.x * o.z, self.x * o.y - self.y * o.x)
    }
    pub fn len(self) -> f32 {
        self.dot(self).sqrt()
    }
    pub fn norm(self) -> V3 {
        let l = self.len();
        if l > 0.0 {
            self * (1.0 / l)
        } else {
            self
        }
    }
    pub fn mul_el(self, o: V3) -> V3 {
        v3(self.x * o.x, self.y * o.y, self.z * o.z)
    }
    pub fn div_el(self, o: V3) -> V3 {
        v3(self.x / o.x, self.y / o.y, self.z / o.z)
    }
}

impl Add for V3 {
    type Output = V3;
    fn add(self, o: V3) -> V3 {
        v3(self.x + o.x, self.y + o.y, self.z + o.z)
    }
}
impl Sub for V3 {
    type Output = V3;
    fn sub(self, o: V3) -> V3 {
        v3(self.x - o.x, self.y - o.y, self.z - o.z)
    }
}
impl Mul<f32> for V3 {
    type Output = V3;
    fn mul(self, s: f32) -> V3 {
        v3(self.x * s, self.y * s, self.z * s)
    }
}
impl Neg for V3 {
    type Output = V3;
    fn neg(self) -> V3 {
        v3(-self.x, -self.y, -self.z)
    }
}

/// An axis-aligned ellipsoid.
#[derive(Clone, Copy, Debug)]
pub struct Ellipsoid {
    pub centre: V3,
    pub radii: V3,
}

impl Ellipsoid {
    /// Nearest ray parameter `t > 0` where `origin + t * dir` meets the surface.
    pub fn hit(&self, origin: V3, dir: V3) -> Option<f32> {
        // Scale space so the ellipsoid is the unit sphere, then solve the quadratic.
        let o = (origin - self.centre).div_el(self.radii);
        let d = dir.div_el(self.radii);
        let a = d.dot(d);
        let b = o.dot(d);
        let c = o.dot(o) - 1.0;
        let disc = b * b - a * c;
        if disc < 0.0 {
            return None;
        }
        let s = disc.sqrt();
        let t0 = (-b - s) / a;
        if t0 > 1e-4 {
            return Some(t0);
        }
        let t1 = (-b + s) / a;
        (t1 > 1e-4).then_some(t1)
    }

    /// Outward unit normal at a surface point.
    pub fn normal(&self, p: V3) -> V3 {
        let q = p - self.centre;
        v3(q.x / (self.radii.x * self.radii.x), q.y / (self.radii.y * self.radii.y), q.z / (self.radii.z * self.radii.z)).norm()
    }

    /// The surface point in the direction of unit-sphere point `u` (a parametrisation).
    pub fn point(&self, u: V3) -> V3 {
        self.centre + u.mul_el(self.radii)
    }

    /// Moves `p` radially (in unit-sphere space) onto the surface lifted by `lift` (fraction).
    pub fn onto(&self, p: V3, lift: f32) -> V3 {
        let q = (p - self.centre).div_el(self.radii);
        let l = q.len();
        if l < 1.0 + lift {
            self.centre + (q * ((1.0 + lift) / l.max(1e-6))).mul_el(self.radii)
        } else {
            p
        }
    }
}

/// Angular scalp-map position of a head-surface point.
///
/// `polar` is the angle from the vertex (0 at the top, 90 at the equator), `from_front` the
/// azimuth away from the midline front (0 front, 90 either side, 180 back), both in degrees;
/// `(u, v)` is an azimuthal equidistant map around the vertex in cm (v forward, u to the
/// right), with the head's mean radius, so distances along meridians are true.
#[derive(Clone, Copy, Debug)]
pub struct ScalpPos {
    pub polar: f32,
    pub from_front: f32,
    pub azimuth: f32,
    pub u: f32,
    pub v: f32,
}

pub const MAP_RADIUS_CM: f32 = 8.7;

impl ScalpPos {
    pub fn of(head: &Ellipsoid, p: V3) -> ScalpPos {
        let q = (p - head.centre).div_el(head.radii).norm();
        let polar = q.z.clamp(-1.0, 1.0).acos();
        let azimuth = q.y.atan2(q.x); // +90 deg is the front
        let from_front = angle_diff_deg(azimuth.to_degrees(), 90.0);
        ScalpPos {
            polar: polar.to_degrees(),
            from_front,
            azimuth: azimuth.to_degrees(),
            u: MAP_RADIUS_CM * polar * azimuth.cos(),
            v: MAP_RADIUS_CM * polar * azimuth.sin(),
        }
    }

    /// Unit-sphere direction for a polar angle and azimuth, both in degrees.
    pub fn dir(polar_deg: f32, azimuth_deg: f32) -> V3 {
        let (p, a) = (polar_deg.to_radians(), azimuth_deg.to_radians());
        v3(p.sin() * a.cos(), p.sin() * a.sin(), p.cos())
    }
}

/// Absolute difference of two angles in degrees, in [0, 180].
pub fn angle_diff_deg(a: f32, b: f32) -> f32 {
    let d = (a - b).rem_euclid(360.0);
    if d > 180.0 {
        360.0 - d
    } else {
        d
    }
}

/// A pinhole camera with separate x/y focal lengths (one-axis stretch) and a principal point.
#[derive(Clone, Copy, Debug)]
pub struct Camera {
    pub pos: V3,
    pub right: V3,
    pub up: V3,
    pub fwd: V3,
    pub fx: f32,
    pub fy: f32,
    pub cx: f32,
    pub cy: f32,
}

impl Camera {
    /// Camera at `pos` looking at `target`, with `up_hint` giving the image's up direction
    /// before `roll_deg` turns it about the viewing axis.
    #[allow(clippy::too_many_arguments, reason = "a pinhole camera's pose and intrinsics, each named where it is built")]
    pub fn look_at(pos: V3, target: V3, up_hint: V3, roll_deg: f32, fx: f32, fy: f32, cx: f32, cy: f32) -> Camera {
        let fwd = (target - pos).norm();
        let mut right = fwd.cross(up_hint).norm();
        if right.len() < 0.5 {
            right = fwd.cross(v3(0.0, 1.0, 0.0)).norm();
        }
        let up = right.cross(fwd).norm();
        let (s, c) = roll_deg.to_radians().sin_cos();
        let r2 = right * c + up * s;
        let u2 = up * c - right * s;
        Camera { pos, right: r2, up: u2, fwd, fx, fy, cx, cy }
    }

    /// Unit ray direction through the image point (x, y) in pixels.
    pub fn ray(&self, x: f32, y: f32) -> V3 {
        (self.fwd + self.right * ((x - self.cx) / self.fx) - self.up * ((y - self.cy) / self.fy)).norm()
    }

    /// Image position of a 3-D point, or `None` behind the camera.
    pub fn project(&self, p: V3) -> Option<(f32, f32)> {
        let d = p - self.pos;
        let z = d.dot(self.fwd);
        if z <= 1e-3 {
            return None;
        }
        Some((self.cx + self.fx * d.dot(self.right) / z, self.cy - self.fy * d.dot(self.up) / z))
    }

    /// Depth of a point along the viewing axis.
    pub fn depth(&self, p: V3) -> f32 {
        (p - self.pos).dot(self.fwd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ray_hits_unit_sphere_at_distance_four() {
        let s = Ellipsoid { centre: v3(0.0, 0.0, 0.0), radii: v3(1.0, 1.0, 1.0) };
        let t = s.hit(v3(0.0, 0.0, 5.0), v3(0.0, 0.0, -1.0)).unwrap();
        assert!((t - 4.0).abs() < 1e-5);
        assert!(s.hit(v3(2.0, 0.0, 5.0), v3(0.0, 0.0, -1.0)).is_none());
    }

    #[test]
    fn project_inverts_ray() {
        let cam = Camera::look_at(v3(0.0, -40.0, 10.0), v3(0.0, 0.0, 0.0), v3(0.0, 0.0, 1.0), 17.0, 900.0, 700.0, 256.0, 250.0);
        let d = cam.ray(100.0, 300.0);
        let (x, y) = cam.project(cam.pos + d * 33.0).unwrap();
        assert!((x - 100.0).abs() < 1e-2 && (y - 300.0).abs() < 1e-2, "{x} {y}");
    }

    #[test]
    fn scalp_positions_of_vertex_front_and_back() {
        let h = Ellipsoid { centre: v3(0.0, 0.0, 0.0), radii: v3(7.5, 9.5, 8.5) };
        let top = ScalpPos::of(&h, v3(0.0, 0.0, 8.5));
        assert!(top.polar < 1e-3);
        let front = ScalpPos::of(&h, v3(0.0, 9.5, 0.0));
        assert!((front.polar - 90.0).abs() < 1e-3 && front.from_front < 1e-3 && front.v > 0.0);
        let back = ScalpPos::of(&h, v3(0.0, -9.5, 0.0));
        assert!((back.from_front - 180.0).abs() < 1e-3 && back.v < 0.0);
        assert_eq!(angle_diff_deg(350.0, 10.0), 20.0);
    }
}
