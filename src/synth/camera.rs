//! The camera a render is photographed with: shadow, vignette, blur, white balance and
//! exposure in linear light, then sRGB encoding and sensor noise (`finish`), and the separable
//! Gaussian blur the renderer also uses for the backdrop and scar relief. Split out of
//! `render.rs`, which owns the scene's geometry, classes and strands.

use image::RgbImage;

use super::color::SrgbLut;
use super::render::Buf;
use super::rng::Rng;
use super::scene::Scene;

/// The camera: shadow, vignette, blur, white balance and exposure in linear light, then
/// sRGB encoding and sensor noise.
pub(super) fn finish(mut img: Buf, n: usize, scene: &Scene, r: &mut Rng) -> RgbImage {
    let d = &scene.defects;
    let half = n as f32 / 2.0;
    let [sang, soff, sstr] = d.shadow;
    let (sn, cs) = sang.to_radians().sin_cos();
    for (i, px) in img.iter_mut().enumerate() {
        let (x, y) = ((i % n) as f32 - half, (i / n) as f32 - half);
        let rr = (x * x + y * y) / (half * half * 2.0);
        let mut k = d.exposure * (1.0 - d.vignette * rr);
        if sstr > 0.0 {
            let s = (x * cs + y * sn) / half - soff;
            k *= 1.0 - sstr * super::pattern::smoothstep(-0.15, 0.15, s);
        }
        for (p, wb) in px.iter_mut().zip(d.white_balance) {
            *p *= k * wb;
        }
    }
    if d.blur_sigma_px > 0.05 {
        gaussian_blur(&mut img, n, d.blur_sigma_px);
    }
    let lut = SrgbLut::new();
    let mut out = RgbImage::new(n as u32, n as u32);
    for (i, p) in out.pixels_mut().enumerate() {
        let px = img[i];
        // Approximately Gaussian sensor noise from three uniforms: cheaper than Box-Muller.
        let g = (r.f32() + r.f32() + r.f32() - 1.5) * 2.0 * d.noise_sigma;
        for (out_c, lin) in p.0.iter_mut().zip(px) {
            let chroma = (r.f32() - 0.5) * d.noise_sigma * 0.6;
            *out_c = (lut.encode(lin) as f32 + g + chroma).round().clamp(0.0, 255.0) as u8;
        }
    }
    out
}

/// Separable Gaussian blur with clamped edges of a square image.
pub(super) fn gaussian_blur(img: &mut Buf, n: usize, sigma: f32) {
    blur(img, n, n, sigma);
}

/// Separable Gaussian blur with clamped edges of a `w` x `h` image of `C`-channel pixels.
pub(super) fn blur<const C: usize>(img: &mut [[f32; C]], w: usize, h: usize, sigma: f32) {
    let rad = (sigma * 2.5).ceil() as isize;
    let mut k: Vec<f32> = (-rad..=rad).map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp()).collect();
    let sum: f32 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= sum);
    let mut tmp = vec![[0.0f32; C]; w * h];
    blur_pass(img, &mut tmp, w, h, &k, true);
    blur_pass(&tmp, img, w, h, &k, false);
}

/// One direction of [`blur`]: `dst` is `src` convolved with the odd-length kernel `k` along
/// rows (`along_x`) or columns, edges clamped.
fn blur_pass<const C: usize>(src: &[[f32; C]], dst: &mut [[f32; C]], w: usize, h: usize, k: &[f32], along_x: bool) {
    let rad = (k.len() / 2) as isize;
    let (len, step) = if along_x { (w as isize, 1) } else { (h as isize, w) };
    for y in 0..h {
        for x in 0..w {
            let (at, base) = if along_x { (x as isize, y * w) } else { (y as isize, x) };
            let mut acc = [0.0; C];
            for (j, wt) in k.iter().enumerate() {
                let t = (at + j as isize - rad).clamp(0, len - 1) as usize;
                let s = src[base + t * step];
                for c in 0..C {
                    acc[c] += s[c] * wt;
                }
            }
            dst[y * w + x] = acc;
        }
    }
}
