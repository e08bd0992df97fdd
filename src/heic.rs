//! HEIC/HEIF decoding through the system's libheif, loaded at run time (cargo feature `heic`).
//!
//! Phones save HEIC by default, but HEVC decoding is patent-encumbered and no pure-Rust decoder
//! exists. Linking libheif would make every build need its headers, so the library is opened
//! with `libloading` when the first HEIC photo arrives (`LIBHEIF_PATH`, else the loader's
//! search for `libheif.so.1`); a machine without it gets a clear per-photo error, never a
//! failed build. Only the stable C entry points of libheif 1.x are used, and libheif applies the
//! file's own rotation and mirroring (`irot`/`imir`) while decoding, so the pixels come upright.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::OnceLock;

use image::RgbImage;

/// `struct heif_error`, returned by value.
#[repr(C)]
struct HeifError {
    code: c_int,
    subcode: c_int,
    message: *const c_char,
}

// Enum values from libheif's heif.h (stable across 1.x).
const COLORSPACE_RGB: c_int = 1;
const CHROMA_INTERLEAVED_RGB: c_int = 10;
const CHANNEL_INTERLEAVED: c_int = 10;

type Ctx = c_void;
type Handle = c_void;
type Image = c_void;

struct Lib {
    _lib: libloading::Library,
    version: String,
    ctx_alloc: unsafe extern "C" fn() -> *mut Ctx,
    ctx_free: unsafe extern "C" fn(*mut Ctx),
    read_memory: unsafe extern "C" fn(*mut Ctx, *const c_void, usize, *const c_void) -> HeifError,
    primary_handle: unsafe extern "C" fn(*mut Ctx, *mut *mut Handle) -> HeifError,
    handle_release: unsafe extern "C" fn(*const Handle),
    handle_width: unsafe extern "C" fn(*const Handle) -> c_int,
    handle_height: unsafe extern "C" fn(*const Handle) -> c_int,
    decode: unsafe extern "C" fn(*const Handle, *mut *mut Image, c_int, c_int, *const c_void) -> HeifError,
    plane: unsafe extern "C" fn(*const Image, c_int, *mut c_int) -> *const u8,
    image_width: unsafe extern "C" fn(*const Image, c_int) -> c_int,
    image_height: unsafe extern "C" fn(*const Image, c_int) -> c_int,
    image_release: unsafe extern "C" fn(*const Image),
}

// SAFETY: the function pointers are plain C entry points; libheif is thread-safe for separate
// contexts, and every call here uses its own context.
unsafe impl Send for Lib {}
unsafe impl Sync for Lib {}

const CANDIDATES: [&str; 4] = ["libheif.so.1", "libheif.so", "libheif.1.dylib", "libheif.dll"];

fn open() -> Result<Lib, String> {
    let names: Vec<String> = match std::env::var("LIBHEIF_PATH") {
        Ok(p) if !p.is_empty() => vec![p],
        _ => CANDIDATES.iter().map(|s| s.to_string()).collect(),
    };
    let mut last = String::new();
    for name in &names {
        // SAFETY: loading libheif runs only its own initialisers.
        match unsafe { libloading::Library::new(name) } {
            Ok(lib) => return bind(lib).map_err(|e| format!("{name}: {e}")),
            Err(e) => last = e.to_string(),
        }
    }
    Err(format!("libheif was not found ({last}); install it (Debian/Ubuntu: `apt install libheif1`) or set LIBHEIF_PATH"))
}

fn bind(lib: libloading::Library) -> Result<Lib, String> {
    macro_rules! sym {
        ($name:literal) => {
            // SAFETY: the symbol's type is the one declared in libheif's heif.h.
            *unsafe { lib.get(concat!($name, "\0").as_bytes()) }.map_err(|e| format!("missing {}: {e}", $name))?
        };
    }
    let get_version: unsafe extern "C" fn() -> *const c_char = sym!("heif_get_version");
    // SAFETY: heif_get_version returns a static NUL-terminated string.
    let version = unsafe { CStr::from_ptr(get_version()) }.to_string_lossy().into_owned();
    // libheif >= 1.13 wants heif_init before use (it loads decoder plugins); older ones lack it.
    if let Ok(init) = unsafe { lib.get::<unsafe extern "C" fn(*const c_void) -> HeifError>(b"heif_init\0") } {
        // SAFETY: a null parameter block means defaults.
        let e = unsafe { init(std::ptr::null()) };
        if e.code != 0 {
            return Err(format!("heif_init failed: {}", message(&e)));
        }
    }
    Ok(Lib {
        version,
        ctx_alloc: sym!("heif_context_alloc"),
        ctx_free: sym!("heif_context_free"),
        read_memory: sym!("heif_context_read_from_memory_without_copy"),
        primary_handle: sym!("heif_context_get_primary_image_handle"),
        handle_release: sym!("heif_image_handle_release"),
        handle_width: sym!("heif_image_handle_get_width"),
        handle_height: sym!("heif_image_handle_get_height"),
        decode: sym!("heif_decode_image"),
        plane: sym!("heif_image_get_plane_readonly"),
        image_width: sym!("heif_image_get_width"),
        image_height: sym!("heif_image_get_height"),
        image_release: sym!("heif_image_release"),
        _lib: lib,
    })
}

fn message(e: &HeifError) -> String {
    if e.message.is_null() {
        format!("error {}.{}", e.code, e.subcode)
    } else {
        // SAFETY: libheif's error messages are static or context-owned NUL-terminated strings,
        // read here before the context is freed.
        unsafe { CStr::from_ptr(e.message) }.to_string_lossy().trim().to_string()
    }
}

fn lib() -> Result<&'static Lib, String> {
    static LIB: OnceLock<Result<Lib, String>> = OnceLock::new();
    LIB.get_or_init(open).as_ref().map_err(Clone::clone)
}

/// The libheif version found, if any.
pub fn version() -> Option<String> {
    lib().ok().map(|l| l.version.clone())
}

/// Why a HEIC photo could not be decoded.
#[derive(Debug, PartialEq)]
pub enum HeicError {
    /// No usable libheif on this machine.
    NoLibrary(String),
    /// Larger than the pixel limit (width, height), found before decoding.
    TooLarge(u32, u32),
    /// libheif refused the data.
    Corrupt(String),
}

/// Frees what libheif allocated, on every path out of [`decode`].
struct Guard<'a> {
    lib: &'a Lib,
    ctx: *mut Ctx,
    handle: *mut Handle,
    image: *mut Image,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        // SAFETY: each pointer is null or was allocated by this library and not yet freed.
        unsafe {
            if !self.image.is_null() {
                (self.lib.image_release)(self.image);
            }
            if !self.handle.is_null() {
                (self.lib.handle_release)(self.handle);
            }
            if !self.ctx.is_null() {
                (self.lib.ctx_free)(self.ctx);
            }
        }
    }
}

/// Decodes the primary image of a HEIC/HEIF file to upright RGB, refusing more than
/// `max_pixels` before the pixels are decoded.
pub fn decode(bytes: &[u8], max_pixels: u64) -> Result<RgbImage, HeicError> {
    let lib = lib().map_err(HeicError::NoLibrary)?;
    // SAFETY: a fresh context; freed by the guard.
    let mut g = Guard { lib, ctx: unsafe { (lib.ctx_alloc)() }, handle: std::ptr::null_mut(), image: std::ptr::null_mut() };
    if g.ctx.is_null() {
        return Err(HeicError::Corrupt("libheif could not allocate a context".into()));
    }
    let check = |e: HeifError| if e.code == 0 { Ok(()) } else { Err(HeicError::Corrupt(message(&e))) };
    // SAFETY: `bytes` outlives the context (the guard drops at the end of this function).
    check(unsafe { (lib.read_memory)(g.ctx, bytes.as_ptr().cast(), bytes.len(), std::ptr::null()) })?;
    check(unsafe { (lib.primary_handle)(g.ctx, &mut g.handle) })?;
    let (w, h) = unsafe { ((lib.handle_width)(g.handle), (lib.handle_height)(g.handle)) };
    if w <= 0 || h <= 0 {
        return Err(HeicError::Corrupt(format!("image size {w}x{h}")));
    }
    if w as u64 * h as u64 > max_pixels {
        return Err(HeicError::TooLarge(w as u32, h as u32));
    }
    // SAFETY: null options mean libheif's defaults, which apply the file's transformations.
    check(unsafe { (lib.decode)(g.handle, &mut g.image, COLORSPACE_RGB, CHROMA_INTERLEAVED_RGB, std::ptr::null()) })?;
    let (iw, ih) = unsafe { ((lib.image_width)(g.image, CHANNEL_INTERLEAVED), (lib.image_height)(g.image, CHANNEL_INTERLEAVED)) };
    let mut stride: c_int = 0;
    let plane = unsafe { (lib.plane)(g.image, CHANNEL_INTERLEAVED, &mut stride) };
    if plane.is_null() || iw <= 0 || ih <= 0 || (stride as i64) < iw as i64 * 3 {
        return Err(HeicError::Corrupt("libheif returned no RGB plane".into()));
    }
    if iw as u64 * ih as u64 > max_pixels {
        return Err(HeicError::TooLarge(iw as u32, ih as u32));
    }
    let (iw, ih, stride) = (iw as usize, ih as usize, stride as usize);
    let mut rgb = Vec::with_capacity(iw * ih * 3);
    for y in 0..ih {
        // SAFETY: libheif guarantees `ih` rows of `stride` bytes, each with `iw` RGB pixels.
        let row = unsafe { std::slice::from_raw_parts(plane.add(y * stride), iw * 3) };
        rgb.extend_from_slice(row);
    }
    RgbImage::from_raw(iw as u32, ih as u32, rgb).ok_or_else(|| HeicError::Corrupt("plane size".into()))
}
