//! Reading photos: format detection by content (not extension), decoding of JPEG, PNG, WebP
//! and TIFF (and HEIC through the system's libheif, see [`crate::heic`]), EXIF orientation applied, a pixel limit checked before the full decode, and errors
//! that name the file and say what to do. Only pixels are kept: no EXIF, GPS or maker notes
//! travel further.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, RgbImage};

/// Default ceiling: covers 50-megapixel phone cameras with room to spare.
pub const DEFAULT_MAX_PIXELS: u64 = 64_000_000;

/// A decoded, upright photo.
#[derive(Clone, Debug)]
pub struct Photo {
    pub path: PathBuf,
    pub image: RgbImage,
    pub format: &'static str,
    /// Size as stored in the file, before EXIF orientation.
    pub stored_width: u32,
    pub stored_height: u32,
    /// The EXIF orientation that was applied ("none" when upright as stored).
    pub orientation: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum PhotoError {
    #[error("{path}: cannot read the file ({why})")]
    Read { path: PathBuf, why: String },
    #[error("{path}: the file is empty")]
    Empty { path: PathBuf },
    #[error("{path}: not a supported photo ({what}); scalpmap reads JPEG, PNG, WebP, TIFF and HEIC (with libheif)")]
    Unsupported { path: PathBuf, what: String },
    #[error("{path}: {width}x{height} is {mp:.0} megapixels, over the limit of {max_mp:.0}; resize the photo or raise --max-megapixels")]
    TooLarge { path: PathBuf, width: u32, height: u32, mp: f64, max_mp: f64 },
    #[error("{path}: the {format} data is damaged or truncated ({why}); re-export or re-upload the photo")]
    Corrupt { path: PathBuf, format: &'static str, why: String },
}

fn format_name(f: ImageFormat) -> &'static str {
    match f {
        ImageFormat::Jpeg => "JPEG",
        ImageFormat::Png => "PNG",
        ImageFormat::WebP => "WebP",
        ImageFormat::Tiff => "TIFF",
        _ => "image",
    }
}

/// Reads and decodes a photo file.
pub fn load(path: &Path, max_pixels: u64) -> Result<Photo, PhotoError> {
    let bytes = std::fs::read(path).map_err(|e| PhotoError::Read { path: path.to_path_buf(), why: e.to_string() })?;
    decode(&bytes, path, max_pixels)
}

/// Decodes photo bytes; `path` is only used to name the photo in errors and results.
pub fn decode(bytes: &[u8], path: &Path, max_pixels: u64) -> Result<Photo, PhotoError> {
    let p = || path.to_path_buf();
    if bytes.is_empty() {
        return Err(PhotoError::Empty { path: p() });
    }
    if is_heif(bytes) {
        return decode_heif(bytes, path, max_pixels);
    }
    let format = image::guess_format(bytes).map_err(|_| PhotoError::Unsupported { path: p(), what: sniff(bytes) })?;
    if !matches!(format, ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP | ImageFormat::Tiff) {
        return Err(PhotoError::Unsupported { path: p(), what: format!("{format:?} image") });
    }
    let name = format_name(format);
    let corrupt = |e: image::ImageError| PhotoError::Corrupt { path: p(), format: name, why: e.to_string() };
    let mut reader = ImageReader::new(Cursor::new(bytes));
    reader.set_format(format);
    let mut limits = image::Limits::default();
    // Allocation ceiling: the RGBA8 worst case of the pixel limit, plus decoder slack.
    limits.max_alloc = Some(max_pixels.saturating_mul(4).saturating_add(64 << 20));
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(corrupt)?;
    let (w, h) = decoder.dimensions();
    let pixels = w as u64 * h as u64;
    if pixels > max_pixels {
        return Err(PhotoError::TooLarge { path: p(), width: w, height: h, mp: pixels as f64 / 1e6, max_mp: max_pixels as f64 / 1e6 });
    }
    if w == 0 || h == 0 {
        return Err(PhotoError::Corrupt { path: p(), format: name, why: "zero width or height".into() });
    }
    // A damaged EXIF block must not lose the photo: fall back to "as stored".
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    img.apply_orientation(orientation);
    Ok(Photo {
        path: p(),
        image: img.to_rgb8(),
        format: name,
        stored_width: w,
        stored_height: h,
        orientation: orientation_name(orientation),
    })
}

/// An ISO media file whose brand is HEIC/HEIF (AVIF is not one of them).
fn is_heif(bytes: &[u8]) -> bool {
    bytes.len() >= 12 && &bytes[4..8] == b"ftyp" && HEIF_BRANDS.contains(&&bytes[8..12])
}

const HEIF_BRANDS: [&[u8]; 8] = [b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"];

#[cfg(feature = "heic")]
fn decode_heif(bytes: &[u8], path: &Path, max_pixels: u64) -> Result<Photo, PhotoError> {
    use crate::heic::HeicError;
    let p = || path.to_path_buf();
    match crate::heic::decode(bytes, max_pixels) {
        Ok(image) => Ok(Photo {
            path: p(),
            stored_width: image.width(),
            stored_height: image.height(),
            image,
            format: "HEIC",
            // libheif applies the container's rotation and mirroring itself.
            orientation: "by-libheif",
        }),
        Err(HeicError::NoLibrary(why)) => Err(PhotoError::Unsupported { path: p(), what: format!("HEIC, but {why}; or convert the photo to JPEG") }),
        Err(HeicError::TooLarge(w, h)) => {
            let px = w as u64 * h as u64;
            Err(PhotoError::TooLarge { path: p(), width: w, height: h, mp: px as f64 / 1e6, max_mp: max_pixels as f64 / 1e6 })
        }
        Err(HeicError::Corrupt(why)) => Err(PhotoError::Corrupt { path: p(), format: "HEIC", why }),
    }
}

#[cfg(not(feature = "heic"))]
fn decode_heif(_: &[u8], path: &Path, _: u64) -> Result<Photo, PhotoError> {
    Err(PhotoError::Unsupported { path: path.to_path_buf(), what: "HEIC, and this build has no HEIC support (cargo feature `heic`); convert the photo to JPEG".into() })
}

fn orientation_name(o: image::metadata::Orientation) -> &'static str {
    use image::metadata::Orientation::*;
    match o {
        NoTransforms => "none",
        Rotate90 => "rotate90",
        Rotate180 => "rotate180",
        Rotate270 => "rotate270",
        FlipHorizontal => "flip-horizontal",
        FlipVertical => "flip-vertical",
        Rotate90FlipH => "rotate90-flip-horizontal",
        Rotate270FlipH => "rotate270-flip-horizontal",
    }
}

/// A hint at what a non-image file is, for the error message.
fn sniff(bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(16)];
    if head.starts_with(b"%PDF") {
        "a PDF document".into()
    } else if head.len() >= 12 && &head[4..8] == b"ftyp" {
        format!("an ISO media file, brand '{}'", String::from_utf8_lossy(&head[8..12]))
    } else if head.iter().all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace()) {
        "a text file".into()
    } else {
        "unknown content".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let mut buf = Cursor::new(Vec::new());
        RgbImage::from_pixel(w, h, image::Rgb([10, 20, 30])).write_to(&mut buf, ImageFormat::Png).unwrap();
        buf.into_inner()
    }

    #[test]
    fn decodes_by_content_whatever_the_extension() {
        let p = decode(&png(3, 2), Path::new("photo.jpg"), DEFAULT_MAX_PIXELS).unwrap();
        assert_eq!((p.image.width(), p.image.height(), p.format), (3, 2, "PNG"));
        assert_eq!(p.image.get_pixel(0, 0).0, [10, 20, 30]);
    }

    #[test]
    fn clear_errors_name_the_file() {
        let e = decode(b"", Path::new("a.jpg"), 100).unwrap_err().to_string();
        assert!(e.contains("a.jpg") && e.contains("empty"), "{e}");
        let e = decode(b"hello, this is text\n", Path::new("b.jpg"), 100).unwrap_err().to_string();
        assert!(e.contains("b.jpg") && e.contains("text file"), "{e}");
        let e = decode(b"%PDF-1.7 ...", Path::new("c.jpg"), 100).unwrap_err().to_string();
        assert!(e.contains("PDF"), "{e}");
        let e = decode(&png(20, 10), Path::new("d.png"), 100).unwrap_err().to_string();
        assert!(e.contains("d.png") && e.contains("over the limit"), "{e}");
        let good = png(8, 8);
        let e = decode(&good[..good.len() / 2], Path::new("e.png"), 1000).unwrap_err().to_string();
        assert!(e.contains("e.png") && e.contains("damaged or truncated"), "{e}");
    }
}
