//! HEIC through the system's libheif (cargo feature `heic`): a committed HEIC crop of a sample
//! decodes upright to the same pixels as the JPEG it came from; damaged HEIC names the file.
//! Skips cleanly on a machine without libheif, after checking that the message says so.

#![cfg(feature = "heic")]

use std::path::{Path, PathBuf};

use scalpmap::photo::{decode, PhotoError, DEFAULT_MAX_PIXELS};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn heic() -> Vec<u8> {
    std::fs::read(repo().join("tests/fixtures/top-crop.heic")).unwrap()
}

/// None when this machine has no libheif (and the error says how to get it).
fn decoded(name: &str) -> Option<scalpmap::photo::Photo> {
    match decode(&heic(), Path::new(name), DEFAULT_MAX_PIXELS) {
        Ok(p) => Some(p),
        Err(PhotoError::Unsupported { what, .. }) if what.contains("libheif was not found") => {
            assert!(what.contains("convert the photo to JPEG"), "{what}");
            eprintln!("skipped: {what}");
            None
        }
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn heic_decodes_to_the_pixels_it_was_made_from() {
    // Made by pillow-heif (quality 80) from samples/synth-2026-00350.jpg cropped to
    // (64, 128)-(448, 368).
    let Some(p) = decoded("IMG_0420.HEIC") else { return };
    assert_eq!((p.format, p.image.width(), p.image.height()), ("HEIC", 384, 240));
    let jpeg = image::open(repo().join("samples/synth-2026-00350.jpg")).unwrap().to_rgb8();
    let mut diff = 0u64;
    for (x, y, px) in p.image.enumerate_pixels() {
        let q = jpeg.get_pixel(x + 64, y + 128);
        diff += (0..3).map(|c| (px.0[c] as i64 - q.0[c] as i64).unsigned_abs()).sum::<u64>();
    }
    let mean = diff as f64 / (384.0 * 240.0 * 3.0);
    assert!(mean < 6.0, "mean absolute difference {mean:.2}");
}

#[test]
fn heic_is_found_by_content_and_limits_and_damage_are_clear() {
    if decoded("renamed.jpg").is_none() {
        return;
    }
    let e = decode(&heic(), Path::new("big.heic"), 10_000).unwrap_err().to_string();
    assert!(e.contains("big.heic") && e.contains("over the limit"), "{e}");
    let bytes = heic();
    let e = decode(&bytes[..bytes.len() / 3], Path::new("cut.heic"), DEFAULT_MAX_PIXELS).unwrap_err().to_string();
    assert!(e.contains("cut.heic") && e.contains("HEIC"), "{e}");
}
