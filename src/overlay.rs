//! The overlay picture: the photo, scaled so its long side is at most `OVERLAY_MAX_SIDE`, with
//! each class tinted in the Okabe-Ito colour-blind-safe palette, zone outlines traced, and a
//! legend naming every class with its share of the scalp.

use std::sync::OnceLock;

use ab_glyph::{FontRef, PxScale};
use image::{imageops, Rgb, RgbImage};
use imageproc::drawing::{draw_filled_rect_mut, draw_line_segment_mut, draw_text_mut};
use imageproc::rect::Rect;

use crate::classes::Class;
use crate::masks::ClassMap;
use crate::zones::Zone;

pub const OVERLAY_MAX_SIDE: u32 = 1024;

/// Okabe & Ito (2008) colours: distinguishable with every common colour-vision deficiency.
pub fn colour(c: Class) -> [u8; 3] {
    match c {
        Class::Background => [0, 0, 0],
        Class::Hair => [0, 158, 115],      // bluish green
        Class::Thinning => [240, 228, 66], // yellow
        Class::Bare => [213, 94, 0],       // vermillion
        Class::Scar => [204, 121, 167],    // reddish purple
    }
}

static FONT: OnceLock<Option<FontRef<'static>>> = OnceLock::new();

fn font() -> Option<&'static FontRef<'static>> {
    FONT.get_or_init(|| FontRef::try_from_slice(include_bytes!("../assets/fonts/DejaVuSans.ttf")).ok()).as_ref()
}

/// Draws the overlay on `photo` (possibly decoded smaller than the photo's own `size`, in
/// which zone outlines are given). `scalp_share[c]` is class c's fraction of the scalp.
pub fn render(photo: &RgbImage, size: (u32, u32), map: &ClassMap, zones: &[Zone], scalp_share: &[f64]) -> RgbImage {
    let (pw, ph) = photo.dimensions();
    let k = (OVERLAY_MAX_SIDE as f64 / pw.max(ph).max(1) as f64).min(1.0);
    let (ow, oh) = (((pw as f64 * k).round() as u32).max(1), ((ph as f64 * k).round() as u32).max(1));
    let mut img = if k < 1.0 { imageops::resize(photo, ow, oh, imageops::FilterType::Triangle) } else { photo.clone() };
    // Tint: 45 % class colour over the photo; background untouched.
    for (x, y, px) in img.enumerate_pixels_mut() {
        let mx = (x as usize * map.width / ow as usize).min(map.width - 1);
        let my = (y as usize * map.height / oh as usize).min(map.height - 1);
        let c = Class::from_u8(map.get(mx, my)).unwrap_or(Class::Background);
        if c != Class::Background {
            let col = colour(c);
            for (p, c) in px.0.iter_mut().zip(col) {
                *p = (*p as f32 * 0.55 + c as f32 * 0.45).round() as u8;
            }
        }
    }
    // Zone outlines in the photo's own pixels, scaled to the overlay.
    let kx = ow as f32 / size.0.max(1) as f32;
    let ky = oh as f32 / size.1.max(1) as f32;
    for z in zones {
        let col = Rgb(colour(z.class));
        let n = z.outline.len();
        for i in 0..n {
            let (a, b) = (z.outline[i], z.outline[(i + 1) % n]);
            let (ax, ay, bx, by) = (a[0] as f32 * kx, a[1] as f32 * ky, b[0] as f32 * kx, b[1] as f32 * ky);
            for d in [-1.0f32, 0.0, 1.0] {
                draw_line_segment_mut(&mut img, (ax + d, ay), (bx + d, by), Rgb([0, 0, 0]));
            }
            draw_line_segment_mut(&mut img, (ax, ay), (bx, by), col);
        }
    }
    legend(&mut img, scalp_share);
    img
}

fn legend(img: &mut RgbImage, scalp_share: &[f64]) {
    let Some(font) = font() else { return };
    let size = (img.width().min(img.height()) as f32 / 28.0).clamp(11.0, 22.0);
    let line = (size * 1.35) as i32;
    let rows = [Class::Hair, Class::Thinning, Class::Bare, Class::Scar];
    let box_w = (size * 9.5) as u32;
    let box_h = (line * rows.len() as i32 + line / 2) as u32;
    if box_w + 8 > img.width() || box_h + 8 > img.height() {
        return;
    }
    draw_filled_rect_mut(img, Rect::at(4, 4).of_size(box_w, box_h), Rgb([255, 255, 255]));
    for (i, c) in rows.iter().enumerate() {
        let y = 4 + line / 4 + i as i32 * line;
        let sw = (size * 0.9) as u32;
        draw_filled_rect_mut(img, Rect::at(10, y + 2).of_size(sw, sw), Rgb(colour(*c)));
        let share = scalp_share.get(*c as usize).copied().unwrap_or(0.0) * 100.0;
        let text = format!("{} {share:.0}%", c.name());
        draw_text_mut(img, Rgb([0, 0, 0]), 16 + sw as i32, y, PxScale::from(size), font, &text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tints_classes_and_leaves_background_alone() {
        let photo = RgbImage::from_pixel(400, 200, Rgb([100, 100, 100]));
        let map = ClassMap::from_rows(&["0013", "0013"]);
        let out = render(&photo, photo.dimensions(), &map, &[], &[0.0, 0.5, 0.0, 0.5, 0.0]);
        assert_eq!(out.dimensions(), (400, 200));
        assert_eq!(
            out.get_pixel(390, 190).0,
            [
                (100.0f32 * 0.55 + 213.0 * 0.45).round() as u8,
                (100.0f32 * 0.55 + 94.0 * 0.45).round() as u8,
                (100.0f32 * 0.55 + 0.0 * 0.45).round() as u8
            ]
        );
        assert_eq!(out.get_pixel(150, 190).0, [100, 100, 100], "background pixel below the legend is untouched");
        // The legend box is drawn (white) in the top-left corner.
        assert_eq!(out.get_pixel(6, 6).0, [255, 255, 255]);
    }

    #[test]
    fn large_photos_are_scaled_down() {
        let photo = RgbImage::new(3000, 1500);
        let out = render(&photo, photo.dimensions(), &ClassMap::new(2, 2, vec![0; 4]), &[], &[0.0; 5]);
        assert_eq!(out.dimensions(), (1024, 512));
    }
}
