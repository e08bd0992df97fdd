//! Photo quality: sharpness, glare on the scalp, exposure, and how much scalp is visible;
//! a retake is advised, with the reasons, when any is poor.

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::masks::ClassMap;
use crate::model::segmenter::area_weights;

/// Thresholds, chosen on the rendered samples and the real dev photos (the README's photo guide names what they catch).
pub const BLUR_MIN_SHARPNESS: f64 = 20.0;
pub const GLARE_MAX_FRACTION: f64 = 0.08;
pub const SCALP_MIN_FRACTION: f64 = 0.05;
/// Below this share the model found no head in the photo at all (a wall, a floor, a hand):
/// the photo is not of a scalp, and a patient's plan leaves it out.
pub const NO_SCALP_FRACTION: f64 = 0.01;
pub const DARK_MAX_MEAN: f64 = 45.0;
pub const BRIGHT_MIN_MEAN: f64 = 225.0;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quality {
    /// Variance of the Laplacian of the luminance at 512 px on the long side: low is blurry.
    pub sharpness: f64,
    /// Fraction of scalp pixels that are near-white (>= 250 luminance): flash glare.
    pub glare_fraction: f64,
    /// Mean luminance (0-255) of the scalp, or of the whole photo when no scalp was found.
    pub mean_luminance: f64,
    /// Fraction of the photo that is scalp.
    pub scalp_fraction: f64,
    pub retake: bool,
    pub reasons: Vec<String>,
    /// The model's head check: the probability that the photo shows a head (absent for a model
    /// without the check). Under the model's threshold the photo is "no scalp found".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_score: Option<f64>,
}

impl Quality {
    /// Whether the model found no scalp in the photo at all: a retake, and nothing to measure.
    pub fn no_scalp(&self) -> bool {
        self.scalp_fraction < NO_SCALP_FRACTION
    }
}

/// Luminance of an RGB photo area-resized to `w` x `h`.
pub fn luminance(photo: &RgbImage, w: usize, h: usize) -> Vec<f32> {
    let (sw, sh) = (photo.width() as usize, photo.height() as usize);
    let cols = area_weights(sw, w);
    let rows = area_weights(sh, h);
    let src = photo.as_raw();
    let mut tmp = vec![0f32; sh * w];
    for y in 0..sh {
        for (x, (start, ws)) in cols.iter().enumerate() {
            tmp[y * w + x] = ws
                .iter()
                .enumerate()
                .map(|(k, wt)| {
                    let p = (y * sw + start + k) * 3;
                    (0.299 * src[p] as f32 + 0.587 * src[p + 1] as f32 + 0.114 * src[p + 2] as f32) * wt
                })
                .sum();
        }
    }
    let mut out = vec![0f32; w * h];
    for (y, (start, ws)) in rows.iter().enumerate() {
        for x in 0..w {
            out[y * w + x] = ws.iter().enumerate().map(|(k, wt)| tmp[(start + k) * w + x] * wt).sum();
        }
    }
    out
}

/// Variance of the 4-neighbour Laplacian.
pub fn laplacian_variance(lum: &[f32], w: usize, h: usize) -> f64 {
    if w < 3 || h < 3 {
        return 0.0;
    }
    let (mut sum, mut sq, mut n) = (0f64, 0f64, 0f64);
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let i = y * w + x;
            let l = (lum[i - 1] + lum[i + 1] + lum[i - w] + lum[i + w] - 4.0 * lum[i]) as f64;
            sum += l;
            sq += l * l;
            n += 1.0;
        }
    }
    let mean = sum / n;
    sq / n - mean * mean
}

/// What the model's head check said of a photo (both `None` for a model without the check).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct HeadCheck {
    /// The probability that the photo shows a head.
    pub score: Option<f32>,
    /// The model's threshold, when the score fell under it and the photo is sent back (its map
    /// is then empty: "no scalp found" says why).
    pub sent_back_under: Option<f32>,
}

/// Assesses a photo; `lum` is its luminance on the class map's grid (the model input turned
/// back to sRGB by [`crate::model::segmenter::input_rgb`], then [`crate::model::segmenter::luma`]).
pub fn assess(photo: &RgbImage, map: &ClassMap, lum: &[f32], head: HeadCheck) -> Quality {
    let (pw, ph) = (photo.width() as usize, photo.height() as usize);
    let long = pw.max(ph).max(1) as f64;
    let k = (512.0 / long).min(1.0);
    let (bw, bh) = (((pw as f64 * k).round() as usize).max(1), ((ph as f64 * k).round() as usize).max(1));
    let sharpness = laplacian_variance(&luminance(photo, bw, bh), bw, bh);
    let scalp: Vec<f32> = lum.iter().zip(&map.data).filter(|(_, &c)| c != 0).map(|(&l, _)| l).collect();
    let scalp_fraction = scalp.len() as f64 / map.data.len().max(1) as f64;
    let glare_fraction = if scalp.is_empty() { 0.0 } else { scalp.iter().filter(|&&l| l >= 250.0).count() as f64 / scalp.len() as f64 };
    let basis = if scalp.is_empty() { lum } else { &scalp[..] };
    let mean_luminance = basis.iter().map(|&l| l as f64).sum::<f64>() / basis.len().max(1) as f64;
    let mut reasons = Vec::new();
    if let Some(t) = head.sent_back_under {
        reasons.push(format!(
            "no scalp found: the model sees no head in the photo (head score {:.2}, under {t:.2}): photograph the head, scalp filling most of the frame",
            head.score.unwrap_or(0.0)
        ));
    }
    if sharpness < BLUR_MIN_SHARPNESS {
        reasons.push(format!("blurry (sharpness {sharpness:.0} < {BLUR_MIN_SHARPNESS:.0}): hold the phone still and focus on the scalp"));
    }
    if glare_fraction > GLARE_MAX_FRACTION {
        reasons.push(format!("glare on {:.0}% of the scalp: turn the flash off or light from the side", glare_fraction * 100.0));
    }
    if head.sent_back_under.is_some() {
        // Said above: the map is empty because there is no head, not because the scalp is small.
    } else if scalp_fraction < NO_SCALP_FRACTION {
        reasons.push(format!(
            "no scalp found (it fills {:.1}% of the photo): photograph the head, scalp filling most of the frame",
            scalp_fraction * 100.0
        ));
    } else if scalp_fraction < SCALP_MIN_FRACTION {
        reasons.push(format!("scalp fills only {:.1}% of the photo: move closer", scalp_fraction * 100.0));
    }
    if mean_luminance < DARK_MAX_MEAN {
        reasons.push(format!("too dark (mean {mean_luminance:.0}/255): add light"));
    } else if mean_luminance > BRIGHT_MIN_MEAN {
        reasons.push(format!("overexposed (mean {mean_luminance:.0}/255): reduce light or exposure"));
    }
    let head_score = head.score.map(f64::from);
    Quality { sharpness, glare_fraction, mean_luminance, scalp_fraction, retake: !reasons.is_empty(), reasons, head_score }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laplacian_of_flat_is_zero_and_of_checkerboard_is_large() {
        assert_eq!(laplacian_variance(&[7.0; 25], 5, 5), 0.0);
        let cb: Vec<f32> = (0..25).map(|i| if (i % 5 + i / 5) % 2 == 0 { 0.0 } else { 100.0 }).collect();
        // Interior Laplacian is +-400, alternating: variance 160000.
        assert!((laplacian_variance(&cb, 5, 5) - 160_000.0).abs() < 20_000.0);
    }

    #[test]
    fn flat_white_photo_of_scalp_is_glare_blur_and_overexposed() {
        let photo = RgbImage::from_pixel(8, 8, image::Rgb([255, 255, 255]));
        let map = ClassMap::new(4, 4, vec![3; 16]);
        let q = assess(&photo, &map, &luminance(&photo, 4, 4), HeadCheck::default());
        assert_eq!(q.scalp_fraction, 1.0);
        assert_eq!(q.glare_fraction, 1.0);
        assert!(q.retake && q.reasons.len() == 3, "{:?}", q.reasons);
    }

    #[test]
    fn no_scalp_is_told_apart_from_a_small_one() {
        let photo = RgbImage::from_fn(20, 20, |x, y| image::Rgb([((x * 37 + y * 91) % 256) as u8, 100, 100]));
        let q = assess(&photo, &ClassMap::new(10, 10, vec![0; 100]), &luminance(&photo, 10, 10), HeadCheck::default());
        assert_eq!(q.scalp_fraction, 0.0);
        assert!(q.retake && q.reasons.iter().any(|r| r.contains("no scalp found")), "{:?}", q.reasons);
        let mut few = vec![0u8; 100];
        few[..3].fill(3);
        let q = assess(&photo, &ClassMap::new(10, 10, few), &luminance(&photo, 10, 10), HeadCheck::default());
        assert!(q.reasons.iter().any(|r| r.contains("move closer")), "{:?}", q.reasons);
        assert!(!q.reasons.iter().any(|r| r.contains("no scalp found")));
    }

    #[test]
    fn the_head_check_says_why_nothing_was_measured_and_a_pass_changes_nothing() {
        let photo = RgbImage::from_fn(20, 20, |x, y| image::Rgb([((x * 37 + y * 91) % 256) as u8, 100, 100]));
        let lum = luminance(&photo, 10, 10);
        let empty = ClassMap::new(10, 10, vec![0; 100]);
        let q = assess(&photo, &empty, &lum, HeadCheck { score: Some(0.031), sent_back_under: Some(0.5) });
        assert!(q.retake && q.no_scalp());
        assert_eq!(q.head_score, Some(0.031f32 as f64));
        let found: Vec<&String> = q.reasons.iter().filter(|r| r.starts_with("no scalp found")).collect();
        assert_eq!(found.len(), 1, "one reason, not two: {:?}", q.reasons);
        assert!(found[0].contains("no head") && found[0].contains("0.03") && found[0].contains("0.50"), "{}", found[0]);
        let full = ClassMap::new(10, 10, vec![1; 100]);
        let scalp = assess(&photo, &full, &lum, HeadCheck::default());
        let passed = assess(&photo, &full, &lum, HeadCheck { score: Some(0.97), sent_back_under: None });
        assert_eq!(passed.reasons, scalp.reasons);
        assert_eq!(passed.retake, scalp.retake);
        assert_eq!(passed.head_score, Some(0.97f32 as f64));
        assert_eq!(scalp.head_score, None, "a model without the check");
    }
}
