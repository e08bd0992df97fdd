//! Reading photos: format detection by content (not extension), decoding of JPEG, PNG, WebP
//! and TIFF (and HEIC through the system's libheif, see [`crate::heic`]), EXIF orientation applied, a pixel limit checked before the full decode, and errors
//! that name the file and say what to do. Only pixels are kept: no EXIF, GPS or maker notes
//! travel further.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, RgbImage};

/// Photos narrower than this on either side carry no usable scalp detail (thumbnails, icons,
/// banner strips).
pub const MIN_SIDE: u32 = 32;

/// Default ceiling: covers 50-megapixel phone cameras with room to spare.
pub const DEFAULT_MAX_PIXELS: u64 = 64_000_000;

/// Large JPEGs are decoded at a reduced scale (1/2, 1/4 or 1/8 in the DCT, far cheaper than a
/// full decode) as long as the long side stays at least this: the marker search runs at 768 px,
/// the model sees 256 px, and the overlay (at most 1024 px) is for looking at. A 12 MP phone
/// photo (4032 px) decodes at 1/4, 1008 px.
pub const DECODE_MIN_SIDE: u32 = 768;

/// A decoded, upright photo.
#[derive(Clone, Debug)]
pub struct Photo {
    pub path: PathBuf,
    /// The pixels, upright; smaller than the photo when a large JPEG was decoded at reduced scale.
    pub image: RgbImage,
    /// The photo's upright size: all pixel measurements refer to it.
    pub width: u32,
    pub height: u32,
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
    #[error("{path}: {width}x{height} is {} megapixels, over the limit of {}; resize the photo or raise --max-megapixels", mp_text(.mp), mp_text(.max_mp))]
    TooLarge { path: PathBuf, width: u32, height: u32, mp: f64, max_mp: f64 },
    #[error("{path}: {width}x{height} is too small to analyse (at least {MIN_SIDE} pixels on each side); use the original photo")]
    TooSmall { path: PathBuf, width: u32, height: u32 },
    #[error("{path}: the {format} data is damaged or truncated ({why}); re-export or re-upload the photo")]
    Corrupt { path: PathBuf, format: &'static str, why: String },
    #[error("{path}: the JPEG is truncated: it ends before its image does (cut short, or still being copied); copy or upload it again")]
    Truncated { path: PathBuf },
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

/// Megapixels as people write them: "0.26", "12", "64".
fn mp_text(mp: &f64) -> String {
    if *mp >= 10.0 {
        format!("{mp:.0}")
    } else {
        format!("{:.2}", mp).trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// The most bytes a photo file within `max_pixels` may have: 8 bytes a pixel (16-bit RGBA,
/// uncompressed) and 16 MiB of metadata. Larger files are refused unread.
pub fn max_file_bytes(max_pixels: u64) -> u64 {
    max_pixels.saturating_mul(8).saturating_add(16 << 20)
}

/// Reads a photo file: a regular file no larger than [`max_file_bytes`] allows.
pub fn read_file(path: &Path, max_pixels: u64) -> Result<Vec<u8>, PhotoError> {
    crate::fsio::read_regular(path, max_file_bytes(max_pixels), "no photo within --max-megapixels is that large")
        .map_err(|e| PhotoError::Read { path: path.to_path_buf(), why: e.to_string() })
}

/// Reads and decodes a photo file.
pub fn load(path: &Path, max_pixels: u64) -> Result<Photo, PhotoError> {
    decode(&read_file(path, max_pixels)?, path, max_pixels)
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
    // A decoder's error for a kind of file it does not handle reads like damage ("Number of
    // components cannot be zero"): name the kind instead, and what to do.
    let corrupt = |e: image::ImageError| match unsupported_kind(format, bytes) {
        Some(what) => PhotoError::Unsupported { path: p(), what },
        None => PhotoError::Corrupt { path: p(), format: name, why: e.to_string() },
    };
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
    if w < MIN_SIDE || h < MIN_SIDE {
        return Err(PhotoError::TooSmall { path: p(), width: w, height: h });
    }
    // A cut-short JPEG decodes without an error, its missing rows grey, which would be measured.
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        return Err(PhotoError::Truncated { path: p() });
    }
    // A damaged EXIF block must not lose the photo: fall back to "as stored".
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let scaled = if format == ImageFormat::Jpeg { decode_jpeg_reduced(bytes, w, h) } else { None };
    let mut img = match scaled {
        Some(small) => DynamicImage::ImageRgb8(small),
        None => DynamicImage::from_decoder(decoder).map_err(corrupt)?,
    };
    img.apply_orientation(orientation);
    use image::metadata::Orientation::*;
    let swaps = matches!(orientation, Rotate90 | Rotate270 | Rotate90FlipH | Rotate270FlipH);
    let (width, height) = if swaps { (h, w) } else { (w, h) };
    Ok(Photo {
        path: p(),
        image: img.to_rgb8(),
        width,
        height,
        format: name,
        stored_width: w,
        stored_height: h,
        orientation: orientation_name(orientation),
    })
}

/// The kind of a JPEG or TIFF that the decoders do not read, when the file is one: JPEGs coded
/// losslessly, arithmetically or hierarchically (their start-of-frame marker says so), and
/// floating-point TIFFs (SampleFormat 3 in the first directory).
fn unsupported_kind(format: ImageFormat, bytes: &[u8]) -> Option<String> {
    match format {
        ImageFormat::Jpeg => {
            let kind = match jpeg_frame_marker(bytes)? {
                0xC3 => "lossless",
                0xC5..=0xC7 => "hierarchical",
                0xC9..=0xCB => "arithmetic-coded",
                0xCD..=0xCF => "arithmetic-coded hierarchical",
                _ => return None,
            };
            Some(format!("a {kind} JPEG, which scalpmap cannot decode; save it again as an ordinary (baseline) JPEG"))
        }
        ImageFormat::Tiff if tiff_sample_format(bytes) == Some(3) => {
            Some("a floating-point TIFF, which scalpmap cannot decode; export it as an 8- or 16-bit TIFF, PNG or JPEG".into())
        }
        _ => None,
    }
}

/// What a walk over a JPEG's segments found: its start-of-frame marker (0xC0-0xCF but DHT 0xC4,
/// JPG 0xC8 and DAC 0xCC), and where the walk ended.
struct JpegWalk {
    frame: Option<u8>,
    end: WalkEnd,
}

enum WalkEnd {
    /// At the first scan (start-of-scan marker), at this offset.
    Scan(usize),
    /// At bytes that are not a marker: a layout the walk does not know.
    Unknown,
    /// At the end of the file, before any scan.
    Short,
}

/// Walks a JPEG's segments by their lengths from the start (so a thumbnail's markers inside
/// EXIF are skipped) up to the first scan.
fn walk_jpeg(bytes: &[u8]) -> JpegWalk {
    let mut frame = None;
    let mut i = 2;
    while i + 4 <= bytes.len() {
        if bytes[i] != 0xFF {
            return JpegWalk { frame, end: WalkEnd::Unknown };
        }
        match bytes[i + 1] {
            0xFF => i += 1,
            0xDA => return JpegWalk { frame, end: WalkEnd::Scan(i) },
            0x01 | 0xD0..=0xD7 => i += 2,
            m => {
                if matches!(m, 0xC0..=0xCF) && !matches!(m, 0xC4 | 0xC8 | 0xCC) {
                    frame = frame.or(Some(m));
                }
                i += 2 + u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]) as usize;
            }
        }
    }
    JpegWalk { frame, end: WalkEnd::Short }
}

/// The start-of-frame marker of a JPEG, which names how it is coded.
fn jpeg_frame_marker(bytes: &[u8]) -> Option<u8> {
    walk_jpeg(bytes).frame
}

/// The SampleFormat (tag 339) of a TIFF's first directory: 1 unsigned, 2 signed, 3 float.
fn tiff_sample_format(bytes: &[u8]) -> Option<u16> {
    let le = match bytes.get(..4)? {
        [0x49, 0x49, 42, 0] => true,
        [0x4D, 0x4D, 0, 42] => false,
        _ => return None,
    };
    let u16_at =
        |i: usize| bytes.get(i..i + 2).map(|b| if le { u16::from_le_bytes([b[0], b[1]]) } else { u16::from_be_bytes([b[0], b[1]]) });
    let u32_at = |i: usize| {
        bytes.get(i..i + 4).map(|b| {
            if le {
                u32::from_le_bytes([b[0], b[1], b[2], b[3]])
            } else {
                u32::from_be_bytes([b[0], b[1], b[2], b[3]])
            }
        })
    };
    let ifd = u32_at(4)? as usize;
    let n = u16_at(ifd)? as usize;
    (0..n.min(512)).map(|k| ifd + 2 + 12 * k).find(|&e| u16_at(e) == Some(339)).and_then(|e| u16_at(e + 8))
}

/// Whether a JPEG's image data reaches its end-of-image marker: after the first scan an
/// end-of-image marker must follow. A layout the walk does not know is left to the decoder.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    match walk_jpeg(bytes).end {
        WalkEnd::Scan(i) => bytes[i..].windows(2).any(|w| w == [0xFF, 0xD9]),
        WalkEnd::Unknown => true,
        WalkEnd::Short => false,
    }
}

/// A JPEG of `w` x `h` decoded in the DCT at the smallest scale that keeps the long side at
/// least [`DECODE_MIN_SIDE`]; None when no reduction applies or anything goes wrong (the full
/// decoder then runs and reports the error).
fn decode_jpeg_reduced(bytes: &[u8], w: u32, h: u32) -> Option<RgbImage> {
    let long = w.max(h);
    if long < 2 * DECODE_MIN_SIDE || w > u16::MAX as u32 || h > u16::MAX as u32 {
        return None;
    }
    let k = long as f64 / DECODE_MIN_SIDE as f64;
    let (rw, rh) = ((w as f64 / k).ceil() as u16, (h as f64 / k).ceil() as u16);
    let mut d = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    d.read_info().ok()?;
    let (sw, sh) = d.scale(rw, rh).ok()?;
    let px = d.decode().ok()?;
    let info = d.info()?;
    if (info.width, info.height) != (sw, sh) {
        return None;
    }
    match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => RgbImage::from_raw(sw as u32, sh as u32, px),
        jpeg_decoder::PixelFormat::L8 => RgbImage::from_raw(sw as u32, sh as u32, px.iter().flat_map(|&g| [g, g, g]).collect()),
        // CMYK and 16-bit JPEGs take the full decoder, which converts them.
        _ => None,
    }
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
        Ok(image) if image.width() < MIN_SIDE || image.height() < MIN_SIDE => {
            Err(PhotoError::TooSmall { path: p(), width: image.width(), height: image.height() })
        }
        Ok(image) => Ok(Photo {
            path: p(),
            stored_width: image.width(),
            stored_height: image.height(),
            width: image.width(),
            height: image.height(),
            image,
            format: "HEIC",
            // libheif applies the container's rotation and mirroring itself.
            orientation: "by-libheif",
        }),
        Err(HeicError::NoLibrary(why)) => {
            Err(PhotoError::Unsupported { path: p(), what: format!("HEIC, but {why}; or convert the photo to JPEG") })
        }
        Err(HeicError::TooLarge(w, h)) => {
            let px = w as u64 * h as u64;
            Err(PhotoError::TooLarge { path: p(), width: w, height: h, mp: px as f64 / 1e6, max_mp: max_pixels as f64 / 1e6 })
        }
        Err(HeicError::Corrupt(why)) => Err(PhotoError::Corrupt { path: p(), format: "HEIC", why }),
    }
}

#[cfg(not(feature = "heic"))]
fn decode_heif(_: &[u8], path: &Path, _: u64) -> Result<Photo, PhotoError> {
    Err(PhotoError::Unsupported {
        path: path.to_path_buf(),
        what: "HEIC, and this build has no HEIC support (cargo feature `heic`); convert the photo to JPEG".into(),
    })
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
    fn a_cut_short_jpeg_is_truncated_at_any_length() {
        let img = RgbImage::from_fn(200, 150, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x * y) % 256) as u8]));
        let mut buf = std::io::Cursor::new(Vec::new());
        img.write_to(&mut buf, ImageFormat::Jpeg).unwrap();
        let whole = buf.into_inner();
        assert!(decode(&whole, Path::new("whole.jpg"), DEFAULT_MAX_PIXELS).is_ok());
        for tenth in 1..10 {
            let cut = &whole[..whole.len() * tenth / 10];
            let e = decode(cut, Path::new("cut.jpg"), DEFAULT_MAX_PIXELS).unwrap_err();
            assert!(matches!(e, PhotoError::Truncated { .. }), "cut to {tenth}/10: {e}");
            assert!(e.to_string().contains("cut.jpg") && e.to_string().contains("ends before"), "{e}");
        }
    }

    #[test]
    fn decodes_by_content_whatever_the_extension() {
        let p = decode(&png(40, 33), Path::new("photo.jpg"), DEFAULT_MAX_PIXELS).unwrap();
        assert_eq!((p.image.width(), p.image.height(), p.format), (40, 33, "PNG"));
        assert_eq!(p.image.get_pixel(0, 0).0, [10, 20, 30]);
    }

    #[test]
    fn large_jpegs_decode_at_reduced_scale_keeping_their_size() {
        // 3200x2000 smooth gradient: the 1/4-scale decode (800x500) must match the full decode
        // area-averaged to that size.
        let img = RgbImage::from_fn(3200, 2000, |x, y| image::Rgb([(x / 13) as u8, (y / 8) as u8, ((x + y) / 21) as u8]));
        let mut buf = Cursor::new(Vec::new());
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, 90).encode_image(&img).unwrap();
        let p = decode(buf.get_ref(), Path::new("big.jpg"), DEFAULT_MAX_PIXELS).unwrap();
        assert_eq!((p.width, p.height), (3200, 2000), "measurements refer to the photo's own size");
        assert_eq!(p.image.dimensions(), (800, 500));
        let full = image::load_from_memory(buf.get_ref()).unwrap().to_rgb8();
        let small = image::imageops::resize(&full, 800, 500, image::imageops::FilterType::Triangle);
        let diff: f64 =
            p.image.as_raw().iter().zip(small.as_raw()).map(|(a, b)| (*a as f64 - *b as f64).abs()).sum::<f64>() / (800.0 * 500.0 * 3.0);
        assert!(diff < 2.0, "mean difference {diff}");
        // Small photos are decoded whole.
        let q = decode(&png(40, 33), Path::new("s.png"), DEFAULT_MAX_PIXELS).unwrap();
        assert_eq!((q.width, q.height, q.image.width()), (40, 33, 40));
        let e = decode(&png(10, 300), Path::new("strip.png"), DEFAULT_MAX_PIXELS).unwrap_err().to_string();
        assert!(e.contains("strip.png") && e.contains("too small"), "{e}");
    }

    #[test]
    fn clear_errors_name_the_file() {
        let e = decode(b"", Path::new("a.jpg"), 100).unwrap_err().to_string();
        assert!(e.contains("a.jpg") && e.contains("empty"), "{e}");
        let e = decode(b"hello, this is text\n", Path::new("b.jpg"), 100).unwrap_err().to_string();
        assert!(e.contains("b.jpg") && e.contains("text file"), "{e}");
        let e = decode(b"%PDF-1.7 ...", Path::new("c.jpg"), 100).unwrap_err().to_string();
        assert!(e.contains("PDF"), "{e}");
        let e = decode(&png(40, 40), Path::new("d.png"), 100).unwrap_err().to_string();
        assert!(e.contains("d.png") && e.contains("over the limit"), "{e}");
        let good = png(64, 64);
        let e = decode(&good[..good.len() / 2], Path::new("e.png"), 10_000).unwrap_err().to_string();
        assert!(e.contains("e.png") && e.contains("damaged or truncated"), "{e}");
    }
}
