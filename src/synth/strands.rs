//! Strands: each follicle sampled on the visible scalp grown into a hair along the flow from
//! the crown whorl, drawn anti-aliased into the linear image. Split out of `render.rs`, which
//! samples the follicles and owns the scene's geometry and classes.

use super::color::{lab_to_linear, HairColour};
use super::geom::{v3, Camera, Ellipsoid, ScalpPos, V3};
use super::render::{Buf, Follicle};
use super::rng::Rng;
use super::scene::Scene;

/// Grows each follicle into a strand along the flow from the crown whorl and draws it
/// anti-aliased into the linear image.
#[allow(clippy::too_many_arguments)]
pub(super) fn draw_strands(
    img: &mut Buf,
    no_hair: &[bool],
    n: usize,
    follicles: &[Follicle],
    scene: &Scene,
    head: &Ellipsoid,
    cam: &Camera,
    light: V3,
    r: &mut Rng,
) {
    let h = &scene.hair;
    let whorl = ScalpPos::dir(h.whorl_polar_deg, h.whorl_azimuth_deg);
    let base = h.colour.lab();
    let pigment = lab_to_linear(base[0], base[1], base[2]);
    let white = lab_to_linear(HairColour::White.lab()[0], 0.0, 4.0);
    let elevation: f32 = if h.length_cm < 0.3 {
        0.9
    } else if h.length_cm < 1.5 {
        0.5
    } else {
        0.22
    };
    let l = &scene.light;
    let mut pts: Vec<(f32, f32)> = Vec::with_capacity(9);
    for f in follicles {
        let q = (f.p - head.centre).div_el(head.radii).norm();
        // Barbers taper the sides and back: strands shorten below the temples.
        let taper = 1.0 - 0.65 * super::pattern::smoothstep(0.35, -0.1, q.z);
        let len = h.length_cm * taper * r.range(0.6, 1.3);
        // Flow: away from the whorl along the surface, swirled near it.
        let away = q - whorl;
        let mut t = (away - f.n * away.dot(f.n)).norm();
        let swirl = (h.swirl_deg.to_radians() * (-away.len() * 2.5).exp()) + r.range(-0.25, 0.25);
        t = t * swirl.cos() + f.n.cross(t) * swirl.sin();
        let e = elevation + r.range(-0.15, 0.15);
        let mut dir = (t * e.cos() + f.n * e.sin()).norm();
        let px_per_cm = cam.fx / cam.depth(f.p).max(1.0);
        let segs = ((len * px_per_cm / 5.0).ceil() as usize).clamp(1, 8);
        let step = len / segs as f32;
        let mut p = f.p;
        pts.clear();
        let (sx, sy) = match cam.project(p) {
            Some(s) => s,
            None => continue,
        };
        let (ox, oy) = (f.x - sx, f.y - sy); // sub-pixel follicle position
        pts.push((f.x, f.y));
        for _ in 0..segs {
            p = head.onto(p + dir * step, 0.002);
            let nn = head.normal(p);
            // Longer hair lies down along the scalp; curl bends it at random.
            dir = (dir - nn * (dir.dot(nn) * 0.45) + v3(r.range(-1.0, 1.0), r.range(-1.0, 1.0), r.range(-1.0, 1.0)) * h.curl).norm();
            match cam.project(p) {
                Some((x, y)) => pts.push((x + ox, y + oy)),
                None => break,
            }
        }
        let albedo = if r.chance(h.white_fraction) { white } else { pigment.map(|c| c * r.range(0.75, 1.25)) };
        // Kajiya-Kay: hair shines where the half vector is perpendicular to the strand.
        let view = (cam.pos - f.p).norm();
        let half = (light + view).norm();
        let th = dir.dot(half);
        let spec = 0.25 * l.intensity * (1.0 - th * th).max(0.0).sqrt().powf(30.0);
        let diff = l.ambient + l.intensity * (0.3 + 0.7 * f.n.dot(light).max(0.0));
        let col = albedo.map(|c| c * diff + spec);
        // Width times 2.6: a strand also shades the skin beside it with its own shadow.
        let width_px = h.strand_width_cm * px_per_cm * 2.6;
        let alpha = width_px.clamp(0.2, 1.0);
        // Above one pixel (high-resolution renders) a strand is drawn as parallel lines one
        // pixel apart, so its width stays physical instead of shrinking to a pixel.
        let lanes = if width_px > 1.0 { (width_px.ceil() as usize).min(12) } else { 1 };
        let lane_alpha = if lanes > 1 { width_px / lanes as f32 } else { alpha };
        // The hair's root shows through the skin as a dark dot, even on a fresh shave: dense
        // follicles read as a shadow over the scalp, thin ones as sparse dots.
        // About 0.35 mm across: one pixel at the scale of the training renders (512 px, 20-55
        // px/cm); drawn physically larger on high-resolution renders, so a 12 MP render
        // area-averaged to the model's input looks like a small one.
        let dot_px = ROOT_DOT_CM * px_per_cm;
        let dot_col = pigment.map(|c| c * 0.8);
        let dot_alpha = (alpha * 0.8).min(0.6);
        if dot_px > 2.0 {
            let rows = dot_px.ceil() as usize;
            for j in 0..rows {
                let o = j as f32 - (rows - 1) as f32 / 2.0;
                let y = pts[0].1 + o;
                line(img, no_hair, n, (pts[0].0 - dot_px / 2.0, y), (pts[0].0 + dot_px / 2.0, y), dot_col, dot_alpha);
            }
        } else {
            line(img, no_hair, n, pts[0], (pts[0].0 + 1.0, pts[0].1 + 0.3), dot_col, dot_alpha);
        }
        let last = pts.len().saturating_sub(1).max(1) as f32;
        for (k, w) in pts.windows(2).enumerate() {
            // Strands taper towards the tip.
            let taper = 1.0 - 0.5 * k as f32 / last;
            if lanes == 1 {
                line(img, no_hair, n, w[0], w[1], col, alpha * taper);
                continue;
            }
            let (dx, dy) = (w[1].0 - w[0].0, w[1].1 - w[0].1);
            let len = (dx * dx + dy * dy).sqrt().max(1e-6);
            let (px, py) = (-dy / len, dx / len);
            for j in 0..lanes {
                let o = j as f32 - (lanes - 1) as f32 / 2.0;
                line(img, no_hair, n, (w[0].0 + px * o, w[0].1 + py * o), (w[1].0 + px * o, w[1].1 + py * o), col, lane_alpha * taper);
            }
        }
        if pts.len() == 1 {
            line(img, no_hair, n, pts[0], (pts[0].0 + 0.7, pts[0].1), col, alpha);
        }
    }
}

/// Diameter of the dark dot a hair's root makes in the skin, as drawn.
const ROOT_DOT_CM: f32 = 0.035;

/// Anti-aliased line (Wu-style: each step splits its coverage between the two pixels
/// straddling the line), blended with opacity `alpha`.
fn line(img: &mut Buf, no_hair: &[bool], n: usize, a: (f32, f32), b: (f32, f32), col: [f32; 3], alpha: f32) {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let steps = dx.abs().max(dy.abs()).ceil().max(1.0) as usize;
    if steps > 4 * n {
        return;
    }
    let (sx, sy) = (dx / steps as f32, dy / steps as f32);
    let major_x = dx.abs() >= dy.abs();
    let lim = n as f32 - 1.0;
    for s in 0..steps {
        let x = a.0 + sx * (s as f32 + 0.5) - 0.5;
        let y = a.1 + sy * (s as f32 + 0.5) - 0.5;
        if x < 0.0 || y < 0.0 || x >= lim || y >= lim {
            continue;
        }
        let (xi, yi) = (x as usize, y as usize);
        let (p0, p1, f) = if major_x {
            let xr = (x + 0.5) as usize;
            (yi * n + xr, (yi + 1) * n + xr, y - yi as f32)
        } else {
            let yr = (y + 0.5) as usize;
            (yr * n + xi, yr * n + xi + 1, x - xi as f32)
        };
        if !no_hair[p0] {
            blend(&mut img[p0], col, alpha * (1.0 - f));
        }
        if !no_hair[p1] {
            blend(&mut img[p1], col, alpha * f);
        }
    }
}

fn blend(px: &mut [f32; 3], col: [f32; 3], a: f32) {
    for c in 0..3 {
        px[c] += (col[c] - px[c]) * a;
    }
}
