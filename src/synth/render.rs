//! Turns a `Scene` into pixels: the photo, the label map, the density map and the truth
//! counts. One ray per pixel finds the head, neck or shoulders; head pixels above the
//! original hairline are scalp and take their class from the follicle density (or a scar);
//! follicles are sampled on the visible scalp and grown into strands; then the camera adds
//! white balance, exposure, blur, vignette, shadow and noise (`camera.rs`).

use image::{GrayImage, ImageBuffer, Luma, RgbImage};

use super::camera::{blur, finish, gaussian_blur};
use super::color::lab_to_linear;
use super::geom::{v3, Camera, Ellipsoid, ScalpPos, V3};
use super::pattern::{hairline_polar, DensityField};
use super::rng::Rng;
use super::scar::ScarShape;
use super::scene::{direction, Scene, View};
use super::strands::draw_strands;
use crate::classes::{class_for_density, Class};

/// Density map encoding: stored value = hairs/cm² × this, as 16-bit PNG.
pub const DENSITY_SCALE: f32 = 100.0;

/// What one render produces besides the pixels.
#[derive(Clone, Debug)]
pub struct Counts {
    pub pixels: [u64; Class::COUNT],
    /// Physical scalp surface seen by each class's pixels, cm² (foreshortening undone).
    pub surface_cm2: [f64; Class::COUNT],
    pub px_per_cm_x: f64,
    pub px_per_cm_y: f64,
    pub follicles: u64,
    /// The whole scalp's surface per class, cm², seen or not: the truth for a patient.
    pub whole_scalp_cm2: [f64; Class::COUNT],
    pub marker: Option<MarkerTruth>,
}

/// Where the calibration marker landed in the photo, and the scale at its centre.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MarkerTruth {
    pub side_cm: f64,
    pub centre_px: [f64; 2],
    /// Pixels per cm at the marker's depth (geometric mean of the two axes).
    pub px_per_cm: f64,
}

pub struct Rendered {
    pub photo: RgbImage,
    pub labels: GrayImage,
    pub density: ImageBuffer<Luma<u16>, Vec<u16>>,
    pub counts: Counts,
}

pub(super) type Buf = Vec<[f32; 3]>;

pub(super) struct Follicle {
    pub(super) x: f32,
    pub(super) y: f32,
    pub(super) p: V3,
    pub(super) n: V3,
}

/// The marker as placed: its plane (centre, normal, in-plane axes) and sizes, cm.
pub struct MarkerPlane {
    pub centre: V3,
    pub normal: V3,
    pub e1: V3,
    pub e2: V3,
    pub side: f32,
    pub margin: f32,
}

/// What a ray sees of the marker: paper, ink, or nothing.
#[derive(Clone, Copy, Debug, PartialEq)]
enum MarkerHit {
    Paper,
    Ink,
}

impl MarkerPlane {
    pub fn new(spec: &super::scene::MarkerSpec, head: &Ellipsoid) -> MarkerPlane {
        let p = head.point(ScalpPos::dir(spec.polar_deg, spec.azimuth_deg));
        let normal = head.normal(p);
        // Lifted a little off the skin: paper lies on the hair's roots.
        let centre = p + normal * 0.04;
        let helper = if normal.z.abs() < 0.9 { v3(0.0, 0.0, 1.0) } else { v3(1.0, 0.0, 0.0) };
        let a = helper.cross(normal).norm();
        let b = normal.cross(a);
        let (s, c) = spec.rotation_deg.to_radians().sin_cos();
        MarkerPlane { centre, normal, e1: a * c + b * s, e2: b * c - a * s, side: spec.side_cm, margin: spec.margin_cm }
    }

    /// Ray parameter and what it hits, for a ray meeting the marker from the front.
    fn hit(&self, origin: V3, dir: V3) -> Option<(f32, MarkerHit)> {
        let dn = dir.dot(self.normal);
        if dn >= -1e-4 {
            return None;
        }
        let t = (self.centre - origin).dot(self.normal) / dn;
        if t <= 0.0 {
            return None;
        }
        let q = origin + dir * t - self.centre;
        let (u, v) = (q.dot(self.e1).abs(), q.dot(self.e2).abs());
        let half = self.side / 2.0;
        let m = u.max(v);
        if m > half + self.margin {
            None
        } else if m <= half && m > half / 2.0 {
            Some((t, MarkerHit::Ink))
        } else {
            Some((t, MarkerHit::Paper))
        }
    }
}

/// Renders `scene` at `size` x `size` pixels.
pub fn render(scene: &Scene, size: u32) -> Rendered {
    let n = size as usize;
    let mut rng = Rng::new(scene.detail_seed);
    let head = Ellipsoid { centre: v3(0.0, 0.0, 0.0), radii: v3(scene.head_radii_cm[0], scene.head_radii_cm[1], scene.head_radii_cm[2]) };
    let r = head.radii;
    let neck = Ellipsoid { centre: v3(0.0, -0.15 * r.y, -1.25 * r.z), radii: v3(0.7 * r.x, 0.62 * r.y, 1.1 * r.z) };
    let torso = Ellipsoid { centre: v3(0.0, -0.2 * r.y, -3.1 * r.z), radii: v3(2.6 * r.x, 1.2 * r.y, 1.15 * r.z) };
    let cam = camera(scene, size);
    let light = v3(scene.light.dir[0], scene.light.dir[1], scene.light.dir[2]).norm();

    let mut img = background(scene, n);
    if scene.background_blur_px > 0.05 {
        gaussian_blur(&mut img, n, scene.background_blur_px * n as f32 / 512.0);
    }
    // Pixels hair must not be drawn over: ears stand out from the head, in front of the hair.
    let mut no_hair = vec![false; n * n];
    let field = DensityField::bake(&scene.pattern, scene.hair.native_density_per_cm2, &mut rng.fork(11));
    let scars: Vec<ScarShape> = scene.scars.iter().map(ScarShape::new).collect();

    let skin = lab_to_linear(scene.skin.lab[0], scene.skin.lab[1], scene.skin.lab[2]);
    let clothes = lab_to_linear(scene.clothes_lab[0], scene.clothes_lab[1], scene.clothes_lab[2]);
    let hair_lab = scene.hair.colour.lab();
    let brow = lab_to_linear(hair_lab[0].min(40.0), hair_lab[1], hair_lab[2]);
    let mean_len = scene.hair.length_cm;
    let hairline_phase = [rng.range(0.0, 6.3), rng.range(0.0, 6.3)];
    let sheen = (scene.skin.shine * 40.0 + 12.0).round();
    // Real scalp skin is blotchy: uneven tone and patches of redness, a few cm across.
    let tone = super::pattern::ValueNoise::new(&mut rng.fork(14), 32, 2.2);
    let redness = super::pattern::ValueNoise::new(&mut rng.fork(15), 32, 1.4);
    let blotch = rng.range(0.03, 0.12);

    // Height of scar tissue per pixel (0 off scars), shaded into the photo after the loop.
    let mut relief = vec![0.0f32; n * n];
    let mut labels = vec![0u8; n * n];
    let mut density = vec![0u16; n * n];
    let mut counts = Counts {
        pixels: [0; Class::COUNT],
        surface_cm2: [0.0; Class::COUNT],
        px_per_cm_x: (cam.fx / cam.depth(target(scene))) as f64,
        px_per_cm_y: (cam.fy / cam.depth(target(scene))) as f64,
        follicles: 0,
        whole_scalp_cm2: [0.0; Class::COUNT],
        marker: None,
    };
    let mut follicles: Vec<Follicle> = Vec::new();
    let marker = scene.marker.as_ref().map(|m| MarkerPlane::new(m, &head));

    for y in 0..n {
        for x in 0..n {
            let i = y * n + x;
            let d = cam.ray(x as f32 + 0.5, y as f32 + 0.5);
            let th = head.hit(cam.pos, d).unwrap_or(f32::INFINITY);
            let tn = neck.hit(cam.pos, d).unwrap_or(f32::INFINITY);
            let tt = torso.hit(cam.pos, d).unwrap_or(f32::INFINITY);
            let view_dir = -d;
            if let Some((tm, what)) = marker.as_ref().and_then(|m| m.hit(cam.pos, d)) {
                if tm <= th && tm <= tn && tm <= tt {
                    // The sticker hides the scalp: background, no hair drawn over it.
                    counts.pixels[0] += 1;
                    no_hair[i] = true;
                    let albedo = if what == MarkerHit::Ink { [0.03, 0.03, 0.035] } else { [0.78, 0.78, 0.76] };
                    img[i] =
                        shade(albedo, marker.as_ref().map_or(v3(0.0, 0.0, 1.0), |m| m.normal), view_dir, light, scene, 0.05, 20.0, 1.0);
                    continue;
                }
            }
            if th.is_finite() && th <= tn && th <= tt {
                let p = cam.pos + d * th;
                let nrm = head.normal(p);
                let pos = ScalpPos::of(&head, p);
                let wiggle = 1.4 * (pos.azimuth.to_radians() * 5.0 + hairline_phase[0]).sin()
                    + 0.7 * (pos.azimuth.to_radians() * 13.0 + hairline_phase[1]).sin();
                let on_scalp = pos.polar < hairline_polar(pos.from_front) + wiggle && !in_ear(&pos);
                if on_scalp {
                    let scar = scars.iter().find(|s| s.contains(&pos));
                    let dens = if scar.is_some() { 0.0 } else { field.at(pos.u, pos.v) };
                    let class = if scar.is_some() { Class::Scar } else { class_for_density(dens) };
                    labels[i] = class as u8;
                    density[i] = (dens * DENSITY_SCALE).round().min(65535.0) as u16;
                    // Surface area under this pixel: t² cos³(off-axis) / (fx fy |cos incidence|).
                    let cos_axis = d.dot(cam.fwd);
                    let cos_inc = d.dot(nrm).abs().max(0.05);
                    let area = (th * th * cos_axis.powi(3) / (cam.fx * cam.fy * cos_inc)) as f64;
                    counts.pixels[class as usize] += 1;
                    counts.surface_cm2[class as usize] += area;
                    // Hair coverage of the skin here, for occlusion darkening and hidden glare.
                    let cover = 1.0 - (-dens * scene.hair.strand_width_cm * mean_len.min(1.5) * 1.5).exp();
                    let t = 1.0 + blotch * tone.at(pos.u, pos.v);
                    let red = blotch * 0.8 * redness.at(pos.u, pos.v).max(0.0);
                    let mut albedo = [skin[0] * t * (1.0 + red), skin[1] * t * (1.0 - red), skin[2] * t * (1.0 - red)];
                    let mut shine = scene.skin.shine * (1.0 - cover);
                    let mut gloss = sheen;
                    // Drawn for every scalp pixel, scar or not, so a scar moves no later draw.
                    let mut pore = 1.0 + 0.05 * (rng.f32() - 0.5);
                    if let Some(s) = scar {
                        // Scar tissue has no follicles, pores or blotches and little melanin:
                        // paler and pinker than the scalp, even but for a grain of its own,
                        // and glossier (a tighter, brighter highlight).
                        let sp = s.spec;
                        let l = scene.skin.lab[0] + sp.lighter_l + SCAR_GRAIN_L * s.grain(&pos);
                        albedo = lab_to_linear(l, scene.skin.lab[1] + sp.pinker_a, scene.skin.lab[2] - 2.0);
                        shine = (scene.skin.shine.max(0.1) * 1.5 + if sp.shiny { 0.25 } else { 0.08 }).min(1.0);
                        gloss = sheen * 1.6;
                        pore = 1.0;
                        relief[i] = sp.relief;
                    }
                    let ao = 1.0 - 0.45 * cover;
                    img[i] = shade(albedo, nrm, view_dir, light, scene, shine, gloss, pore * ao);
                    let lambda = dens * area as f32;
                    for _ in 0..rng.poisson(lambda) {
                        follicles.push(Follicle { x: x as f32 + rng.f32(), y: y as f32 + rng.f32(), p, n: nrm });
                    }
                } else {
                    counts.pixels[0] += 1;
                    no_hair[i] = in_ear(&pos);
                    let t = 1.0 + blotch * tone.at(pos.u, pos.v);
                    let albedo = face_albedo(&pos, skin.map(|c| c * t), brow);
                    img[i] = shade(albedo, nrm, view_dir, light, scene, scene.skin.shine * 0.5, sheen, 1.0 + 0.04 * (rng.f32() - 0.5));
                }
            } else if tn.is_finite() && tn <= tt {
                counts.pixels[0] += 1;
                let p = cam.pos + d * tn;
                let albedo = skin.map(|c| c * 0.92);
                img[i] = shade(albedo, neck.normal(p), view_dir, light, scene, 0.1, 20.0, 1.0);
            } else if tt.is_finite() {
                counts.pixels[0] += 1;
                let p = cam.pos + d * tt;
                let fold = 0.85 + 0.15 * ((p.x * 0.9 + p.z * 0.4).sin() * (p.y * 0.7).cos());
                img[i] = shade(clothes, torso.normal(p), view_dir, light, scene, 0.0, 8.0, fold);
            } else {
                counts.pixels[0] += 1;
            }
        }
    }

    counts.follicles = follicles.len() as u64;
    counts.marker = marker.as_ref().and_then(|m| {
        let (x, y) = cam.project(m.centre)?;
        let depth = cam.depth(m.centre) as f64;
        Some(MarkerTruth {
            side_cm: m.side as f64,
            centre_px: [x as f64, y as f64],
            px_per_cm: ((cam.fx as f64 * cam.fy as f64).sqrt()) / depth,
        })
    });
    counts.whole_scalp_cm2 = whole_scalp_cm2(&head, &field, &scars, hairline_phase);
    if !scars.is_empty() {
        let edge_px = (SCAR_EDGE_CM * (counts.px_per_cm_x * counts.px_per_cm_y).sqrt() as f32).max(0.7);
        shade_relief(&mut img, &relief, n, edge_px, &cam, light);
    }
    draw_strands(&mut img, &no_hair, n, &follicles, scene, &head, &cam, light, &mut rng.fork(12));
    let photo = finish(img, n, scene, &mut rng.fork(13));
    Rendered {
        photo,
        labels: GrayImage::from_raw(size, size, labels).expect("label buffer matches its size"),
        density: ImageBuffer::from_raw(size, size, density).expect("density buffer matches its size"),
        counts,
    }
}

/// Lightness swing (CIELAB L*) of a scar's grain.
const SCAR_GRAIN_L: f32 = 4.0;
/// Width of the slope at a scar's edge, cm: a raised or sunken scar's rim catches the light
/// on one side and is shadowed on the other.
const SCAR_EDGE_CM: f32 = 0.08;
/// Brightness change at the steepest point of a full-height (relief 1) edge facing the light.
const SCAR_EDGE_SHADE: f32 = 0.35;

/// Shades the edges of raised or sunken scar tissue: the height map (scar pixels' relief)
/// smoothed over `edge_px` gives each edge a slope; where the slope faces the light (projected
/// into the image) the pixel brightens, where it faces away it darkens. Before the strands,
/// which lie over it.
fn shade_relief(img: &mut Buf, relief: &[f32], n: usize, edge_px: f32, cam: &Camera, light: V3) {
    // Only the scars' bounding box, grown by the blur's reach, can change.
    let (mut x0, mut y0, mut x1, mut y1) = (n, n, 0, 0);
    for (i, _) in relief.iter().enumerate().filter(|(_, &h)| h != 0.0) {
        let (x, y) = (i % n, i / n);
        (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
    }
    if x0 > x1 {
        return;
    }
    let reach = (edge_px * 2.5).ceil() as usize + 2;
    let (x0, y0, x1, y1) = (x0.saturating_sub(reach), y0.saturating_sub(reach), (x1 + reach).min(n - 1), (y1 + reach).min(n - 1));
    let (w, h) = (x1 - x0 + 1, y1 - y0 + 1);
    let mut height: Vec<[f32; 1]> = (0..w * h).map(|i| [relief[(y0 + i / w) * n + x0 + i % w]]).collect();
    blur(&mut height, w, h, edge_px);
    // The light's direction in the image plane (image y grows downwards), not normalised: a
    // light from behind the camera, as a flash, shades edges little.
    let (lx, ly) = (light.dot(cam.right), -light.dot(cam.up));
    // The steepest slope of a unit step smoothed by a Gaussian of sigma s is 1 / (s sqrt(2 pi)).
    let k = SCAR_EDGE_SHADE * edge_px * (2.0 * std::f32::consts::PI).sqrt();
    for y in 1..h.saturating_sub(1) {
        for x in 1..w.saturating_sub(1) {
            let j = y * w + x;
            let gx = (height[j + 1][0] - height[j - 1][0]) * 0.5;
            let gy = (height[j + w][0] - height[j - w][0]) * 0.5;
            // A rising height faces away from its uphill direction: the lit side of a raised
            // scar is where the uphill gradient points away from the light.
            let f = (1.0 - k * (gx * lx + gy * ly)).clamp(0.55, 1.45);
            if f != 1.0 {
                let i = (y0 + y) * n + x0 + x;
                img[i] = img[i].map(|c| c * f);
            }
        }
    }
}

fn target(scene: &Scene) -> V3 {
    let t = scene.camera.target;
    v3(t[0], t[1], t[2])
}

/// The pinhole camera: placed `distance` from the target along the view direction, focal
/// length set so that one cm at the target's depth is `px_per_cm * size` pixels.
fn camera(scene: &Scene, size: u32) -> Camera {
    let c = &scene.camera;
    let t = target(scene);
    let pos = t + direction(c.azimuth_deg, c.elevation_deg) * c.distance_cm;
    let s = size as f32;
    let f = c.px_per_cm * s * c.distance_cm;
    // Top-down photos have no natural "up": use the face direction and let roll spin it.
    let up = if scene.view == View::Top { v3(0.0, 1.0, 0.0) } else { v3(0.0, 0.0, 1.0) };
    let cx = s * (0.5 + c.shift[0]);
    let cy = s * (0.5 + c.shift[1]);
    Camera::look_at(pos, t, up, c.roll_deg, f * c.stretch_x, f * c.stretch_y, cx, cy)
}

/// Surface of the whole hair-bearing scalp per class, cm²: the same scalp rule, density field
/// and scars as the pixels, integrated over the ellipsoid on a 0.5° x 1° grid of directions.
fn whole_scalp_cm2(head: &Ellipsoid, field: &DensityField, scars: &[ScarShape], hairline_phase: [f32; 2]) -> [f64; Class::COUNT] {
    let mut out = [0.0; Class::COUNT];
    let (dp, da) = (0.5f32, 1.0f32);
    let r = head.radii;
    for i in 0..(160.0 / dp) as usize {
        let polar = (i as f32 + 0.5) * dp;
        let (st, ct) = (polar.to_radians().sin(), polar.to_radians().cos());
        for j in 0..(360.0 / da) as usize {
            let az = -180.0 + (j as f32 + 0.5) * da;
            let (sa, ca) = (az.to_radians().sin(), az.to_radians().cos());
            let p = head.point(ScalpPos::dir(polar, az));
            let pos = ScalpPos::of(head, p);
            let wiggle = 1.4 * (pos.azimuth.to_radians() * 5.0 + hairline_phase[0]).sin()
                + 0.7 * (pos.azimuth.to_radians() * 13.0 + hairline_phase[1]).sin();
            let on_scalp = pos.polar < hairline_polar(pos.from_front) + wiggle && !in_ear(&pos);
            if !on_scalp {
                continue;
            }
            let class = if scars.iter().any(|s| s.contains(&pos)) { Class::Scar } else { class_for_density(field.at(pos.u, pos.v)) };
            // |dp/dpolar x dp/dazimuth| for p = centre + radii * dir(polar, azimuth).
            let a = v3(r.x * ct * ca, r.y * ct * sa, -r.z * st);
            let b = v3(-r.x * st * sa, r.y * st * ca, 0.0);
            let area = a.cross(b).len() * dp.to_radians() * da.to_radians();
            out[class as usize] += area as f64;
        }
    }
    out
}

/// The ear: about 6 cm tall and 3 cm wide on the side of the head, just behind the middle.
fn in_ear(pos: &ScalpPos) -> bool {
    ear_ellipse(pos) < 1.0
}

fn ear_ellipse(pos: &ScalpPos) -> f32 {
    ((pos.polar - 113.0) / 18.0).powi(2) + ((pos.from_front - 97.0) / 9.5).powi(2)
}

/// Skin albedo of the non-scalp head: forehead, brows, eyes, ears.
fn face_albedo(pos: &ScalpPos, skin: [f32; 3], brow: [f32; 3]) -> [f32; 3] {
    if in_ear(pos) {
        // Ear: a redder helix with a shadowed rim and a dark concha inside.
        let e = ear_ellipse(pos);
        let c = ((pos.polar - 116.0) / 8.0).powi(2) + ((pos.from_front - 96.0) / 4.5).powi(2);
        let k = if c < 1.0 {
            0.35 + 0.3 * c
        } else if e > 0.8 {
            0.6
        } else {
            1.0
        };
        return [skin[0] * k * 1.08, skin[1] * k * 0.88, skin[2] * k * 0.88];
    }
    if pos.from_front < 45.0 {
        let f = pos.from_front;
        let brow_polar = 94.0 + 4.0 * ((f - 22.0) / 16.0).powi(2);
        if (8.0..38.0).contains(&f) && (pos.polar - brow_polar).abs() < 2.2 {
            return mix(skin, brow, 0.7);
        }
        let de = ((pos.polar - 103.0) / 2.6).powi(2) + ((f - 21.0) / 8.0).powi(2);
        if de < 1.0 {
            let iris = ((pos.polar - 103.0) / 2.0).powi(2) + ((f - 21.0) / 2.6).powi(2) < 1.0;
            return if iris { [0.03, 0.025, 0.02] } else { mix(skin, [0.7, 0.68, 0.65], 0.6) };
        }
        if f < 8.0 && pos.polar > 104.0 {
            // Nose ridge catches a little more light.
            return skin.map(|c| c * 1.05);
        }
        if f < 14.0 && (pos.polar - 131.0).abs() < 1.6 {
            return [skin[0] * 0.75, skin[1] * 0.45, skin[2] * 0.45];
        }
    }
    skin
}

fn mix(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t]
}

/// Lambert plus Blinn-Phong; `shine` scales the specular term (flash glare on bare scalp).
#[allow(clippy::too_many_arguments)]
fn shade(albedo: [f32; 3], n: V3, view: V3, light: V3, scene: &Scene, shine: f32, exponent: f32, k: f32) -> [f32; 3] {
    let l = &scene.light;
    let diff = l.ambient + l.intensity * n.dot(light).max(0.0);
    let h = (light + view).norm();
    let spec = if n.dot(light) > 0.0 { shine * l.intensity * n.dot(h).max(0.0).powf(exponent) } else { 0.0 };
    [albedo[0] * diff * k + spec, albedo[1] * diff * k + spec, albedo[2] * diff * k + spec * 0.97]
}

/// A cluttered room behind the head: a wall gradient and random furniture-like shapes.
fn background(scene: &Scene, n: usize) -> Buf {
    let mut r = Rng::new(scene.background_seed);
    let muted = |r: &mut Rng| {
        let l = r.range(10.0, 92.0);
        let sat = if r.chance(0.25) { 45.0 } else { 14.0 };
        lab_to_linear(l, r.range(-sat, sat), r.range(-sat, sat))
    };
    let (c0, c1) = (muted(&mut r), muted(&mut r));
    let ang = r.range(0.0, std::f32::consts::TAU);
    let (ga, gb) = (ang.cos() / n as f32, ang.sin() / n as f32);
    let mut img: Buf = (0..n * n)
        .map(|i| {
            let (x, y) = ((i % n) as f32, (i / n) as f32);
            let t = (0.5 + (x - n as f32 / 2.0) * ga + (y - n as f32 / 2.0) * gb).clamp(0.0, 1.0);
            mix(c0, c1, t)
        })
        .collect();
    let shapes = 4 + r.below(16);
    for _ in 0..shapes {
        let col = muted(&mut r);
        let (cx, cy) = (r.range(-0.1, 1.1) * n as f32, r.range(-0.1, 1.1) * n as f32);
        let (hw, hh) = (r.range(0.02, 0.4) * n as f32, r.range(0.02, 0.4) * n as f32);
        // 3.14, not PI: the renders (and the training data's hash) depend on this exact bound.
        #[allow(clippy::approx_constant)]
        let rot = if r.chance(0.6) { 0.0 } else { r.range(0.0, 3.14) };
        let (sn, cs) = rot.sin_cos();
        let kind = r.below(3); // 0 box, 1 ellipse, 2 striped box (fabric, blinds)
        let stripe = r.range(3.0, 18.0);
        let col2 = muted(&mut r);
        // Some surfaces are textured (carpet, fabric, wood), most are smooth.
        let grain = if r.chance(0.3) { r.range(0.1, 0.5) } else { 0.0 };
        let reach = hw.max(hh) * 1.42;
        let (x0, x1) = (((cx - reach).max(0.0)) as usize, ((cx + reach).min(n as f32 - 1.0)).max(0.0) as usize);
        let (y0, y1) = (((cy - reach).max(0.0)) as usize, ((cy + reach).min(n as f32 - 1.0)).max(0.0) as usize);
        for y in y0..=y1 {
            for x in x0..=x1 {
                let (dx, dy) = (x as f32 - cx, y as f32 - cy);
                let (u, v) = (dx * cs + dy * sn, -dx * sn + dy * cs);
                let inside = match kind {
                    1 => (u / hw).powi(2) + (v / hh).powi(2) < 1.0,
                    _ => u.abs() < hw && v.abs() < hh,
                };
                if inside {
                    let c = if kind == 2 && ((u / stripe).floor() as i32) % 2 == 0 { col2 } else { col };
                    // Light falls off across each object a little, so shapes are not flat cut-outs.
                    let k = 0.85 + 0.15 * (v / hh.max(1.0)).clamp(-1.0, 1.0) + grain * (r.f32() - 0.5);
                    img[y * n + x] = c.map(|c| c * k);
                }
            }
        }
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A camera looking down -z with image x along +x and image up along +y.
    fn camera() -> Camera {
        Camera::look_at(v3(0.0, 0.0, 10.0), v3(0.0, 0.0, 0.0), v3(0.0, 1.0, 0.0), 0.0, 100.0, 100.0, 32.0, 32.0)
    }

    fn disk(n: usize, height: f32) -> Vec<f32> {
        (0..n * n)
            .map(|i| {
                let (x, y) = ((i % n) as f32 - 32.0, (i / n) as f32 - 32.0);
                if x * x + y * y < 100.0 {
                    height
                } else {
                    0.0
                }
            })
            .collect()
    }

    fn shaded(height: f32) -> Buf {
        let n = 64;
        let mut img: Buf = vec![[0.5; 3]; n * n];
        let cam = camera();
        // Light from the image's left, a little towards the camera.
        let light = (cam.right * -1.0 + cam.fwd * -0.5).norm();
        shade_relief(&mut img, &disk(n, height), n, 1.5, &cam, light);
        img
    }

    #[test]
    fn a_raised_scar_is_lit_on_the_lights_side_and_a_sunken_one_on_the_far_side() {
        let n = 64;
        let (left, right, centre) = (32 * n + 22, 32 * n + 42, 32 * n + 32);
        let raised = shaded(1.0);
        assert!(raised[left][0] > 0.55 && raised[right][0] < 0.45, "{:?} {:?}", raised[left], raised[right]);
        assert!((raised[centre][0] - 0.5).abs() < 1e-3, "flat top unshaded");
        let sunken = shaded(-1.0);
        assert!(sunken[left][0] < 0.45 && sunken[right][0] > 0.55);
        let flat = shaded(0.0);
        assert!(flat.iter().all(|p| *p == [0.5; 3]), "no relief, no change");
    }
}
