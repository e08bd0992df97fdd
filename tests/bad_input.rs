//! Bad and odd input, generated here (nothing downloaded): each file gets a clear per-photo
//! error naming it, or a correct result; the batch goes on; nothing panics; exit codes are as
//! documented; no EXIF or maker-note text reaches any output. Model-level faults give one
//! clear message and exit 2.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageFormat, RgbImage, RgbaImage};
use scalpmap::batch::Summary;
use scalpmap::report::Report;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn photo(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 255 / w.max(1)) as u8, (y * 255 / h.max(1)) as u8, 120]))
}

fn encode(img: &DynamicImage, f: ImageFormat) -> Vec<u8> {
    let mut buf = Cursor::new(Vec::new());
    img.write_to(&mut buf, f).unwrap();
    buf.into_inner()
}

fn jpeg(w: u32, h: u32) -> Vec<u8> {
    encode(&DynamicImage::ImageRgb8(photo(w, h)), ImageFormat::Jpeg)
}

fn png(w: u32, h: u32) -> Vec<u8> {
    encode(&DynamicImage::ImageRgb8(photo(w, h)), ImageFormat::Png)
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in bytes {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
        }
    }
    !c
}

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut v = (data.len() as u32).to_be_bytes().to_vec();
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    v.extend_from_slice(&body);
    v.extend_from_slice(&crc32(&body).to_be_bytes());
    v
}

/// A PNG whose header claims `w` x `h` (with a token IDAT): a decompression bomb's first bytes.
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    v.extend(png_chunk(b"IHDR", &ihdr));
    v.extend(png_chunk(b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]));
    v.extend(png_chunk(b"IEND", &[]));
    v
}

/// A JPEG whose frame header claims `w` x `h`.
fn jpeg_claiming(w: u16, h: u16) -> Vec<u8> {
    let mut v = jpeg(64, 64);
    let sof = v.windows(2).position(|m| m == [0xFF, 0xC0]).expect("baseline JPEG");
    v[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
    v[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
    v
}

/// An APP1 EXIF segment with one Orientation entry, followed by text no output may repeat.
fn exif_app1(orientation: u16) -> Vec<u8> {
    let mut tiff = b"II*\0".to_vec();
    tiff.extend(8u32.to_le_bytes());
    tiff.extend(1u16.to_le_bytes());
    tiff.extend(0x0112u16.to_le_bytes());
    tiff.extend(3u16.to_le_bytes());
    tiff.extend(1u32.to_le_bytes());
    tiff.extend(orientation.to_le_bytes());
    tiff.extend([0, 0]);
    tiff.extend(0u32.to_le_bytes());
    tiff.extend(b"GPS 48.8584N 2.2945E MAKERNOTE-SECRET");
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend(tiff);
    let mut seg = vec![0xFF, 0xE1];
    seg.extend(((payload.len() + 2) as u16).to_be_bytes());
    seg.extend(payload);
    seg
}

fn with_app1(jpeg: &[u8], app1: &[u8]) -> Vec<u8> {
    let mut v = jpeg[..2].to_vec();
    v.extend_from_slice(app1);
    v.extend_from_slice(&jpeg[2..]);
    v
}

fn cmyk_jpeg(w: u16, h: u16) -> Vec<u8> {
    let mut out = Vec::new();
    let data: Vec<u8> = (0..w as usize * h as usize).flat_map(|i| [(i % 200) as u8, 40, 90, 10]).collect();
    jpeg_encoder::Encoder::new(&mut out, 85).encode(&data, w, h, jpeg_encoder::ColorType::Cmyk).unwrap();
    out
}

/// An animated WebP: VP8X with the animation flag, ANIM, and two ANMF frames of a lossless image.
fn animated_webp(w: u32, h: u32) -> Vec<u8> {
    let still = encode(&DynamicImage::ImageRgba8(RgbaImage::from_pixel(w, h, image::Rgba([200, 120, 90, 255]))), ImageFormat::WebP);
    let vp8l = &still[12..]; // the VP8L chunk of the RIFF container
    let u24 = |v: u32| v.to_le_bytes()[..3].to_vec();
    let chunk = |kind: &[u8], data: &[u8]| {
        let mut c = kind.to_vec();
        c.extend((data.len() as u32).to_le_bytes());
        c.extend_from_slice(data);
        if data.len() % 2 == 1 {
            c.push(0);
        }
        c
    };
    let mut vp8x = vec![0x02 | 0x10, 0, 0, 0];
    vp8x.extend(u24(w - 1));
    vp8x.extend(u24(h - 1));
    let mut body = b"WEBP".to_vec();
    body.extend(chunk(b"VP8X", &vp8x));
    body.extend(chunk(b"ANIM", &[0, 0, 0, 0, 0, 0]));
    for _ in 0..2 {
        let mut f = [u24(0), u24(0), u24(w - 1), u24(h - 1), u24(100)].concat();
        f.push(0);
        f.extend_from_slice(vp8l);
        body.extend(chunk(b"ANMF", &f));
    }
    let mut v = b"RIFF".to_vec();
    v.extend((body.len() as u32).to_le_bytes());
    v.extend(body);
    v
}

/// What each corpus file must give: Ok, or an error containing these words.
enum Expect {
    Ok,
    Err(&'static str),
}

/// The corpus: file name, bytes, expectation.
/// `jpeg` with its start-of-frame marker (baseline, 0xC0) changed to `marker`: the frame header
/// of a lossless (0xC3) or arithmetic-coded (0xC9) JPEG.
fn jpeg_with_frame(jpeg: &[u8], marker: u8) -> Vec<u8> {
    let mut v = jpeg.to_vec();
    let at = v.windows(2).position(|w| w == [0xFF, 0xC0]).expect("a baseline frame");
    v[at + 1] = marker;
    v
}

/// A little-endian 64x64 TIFF of one 32-bit floating-point sample per pixel.
fn float_tiff() -> Vec<u8> {
    let (w, h) = (64u32, 64u32);
    let entries: [(u16, u16, u32); 10] = [
        (256, 4, w),                   // ImageWidth
        (257, 4, h),                   // ImageLength
        (258, 3, 32),                  // BitsPerSample
        (259, 3, 1),                   // Compression: none
        (262, 3, 1),                   // Photometric: black is zero
        (273, 4, 8 + 2 + 12 * 10 + 4), // StripOffsets: right after the directory
        (277, 3, 1),                   // SamplesPerPixel
        (278, 4, h),                   // RowsPerStrip
        (279, 4, w * h * 4),           // StripByteCounts
        (339, 3, 3),                   // SampleFormat: IEEE float
    ];
    let mut v = b"II*\0".to_vec();
    v.extend_from_slice(&8u32.to_le_bytes());
    v.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for (tag, kind, value) in entries {
        v.extend_from_slice(&tag.to_le_bytes());
        v.extend_from_slice(&kind.to_le_bytes());
        v.extend_from_slice(&1u32.to_le_bytes());
        v.extend_from_slice(&value.to_le_bytes());
    }
    v.extend_from_slice(&0u32.to_le_bytes());
    for i in 0..w * h {
        v.extend_from_slice(&((i % 97) as f32 / 97.0).to_le_bytes());
    }
    v
}

fn corpus() -> Vec<(String, Vec<u8>, Expect)> {
    use Expect::*;
    let good = jpeg(96, 64);
    let good_png = png(96, 64);
    let mut v: Vec<(String, Vec<u8>, Expect)> = vec![
        ("empty.jpg".into(), vec![], Err("empty")),
        ("truncated.jpg".into(), good[..good.len() / 3].to_vec(), Err("truncated")),
        ("truncated-90.jpg".into(), good[..good.len() * 9 / 10].to_vec(), Err("ends before its image")),
        ("truncated.png".into(), good_png[..good_png.len() / 2].to_vec(), Err("damaged or truncated")),
        ("only-markers.jpg".into(), vec![0xFF, 0xD8, 0xFF, 0xD9], Err("truncated")),
        ("png-named.jpg".into(), good_png.clone(), Ok),
        ("jpeg-named.png".into(), good.clone(), Ok),
        ("notes.jpg".into(), b"Client notes: top view retake next week.\n".to_vec(), Err("text file")),
        ("page.png".into(), b"<!DOCTYPE html><html><body>404</body></html>".to_vec(), Err("text file")),
        ("scan.jpg".into(), b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj".to_vec(), Err("PDF")),
        ("archive.jpg".into(), b"PK\x03\x04\x14\x00\x00\x00\x08\x00garbage".to_vec(), Err("unknown content")),
        ("noise.jpg".into(), (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8 | 0x80).collect(), Err("not a supported photo")),
        ("bomb.png".into(), png_claiming(100_000, 100_000), Err("over the limit")),
        ("bomb.jpg".into(), jpeg_claiming(65_000, 65_000), Err("over the limit")),
        ("zero-size.png".into(), png_claiming(0, 10), Err("damaged or truncated")),
        ("one-pixel.png".into(), png(1, 1), Err("too small")),
        ("strip.png".into(), png(10, 100_000), Err("too small")),
        ("tiny-ok.png".into(), png(32, 32), Ok),
        (
            "sixteen-bit.png".into(),
            encode(&DynamicImage::ImageRgb16(DynamicImage::ImageRgb8(photo(80, 60)).to_rgb16()), ImageFormat::Png),
            Ok,
        ),
        ("grey.png".into(), encode(&DynamicImage::ImageLuma8(DynamicImage::ImageRgb8(photo(80, 60)).to_luma8()), ImageFormat::Png), Ok),
        ("grey.jpg".into(), encode(&DynamicImage::ImageLuma8(DynamicImage::ImageRgb8(photo(80, 60)).to_luma8()), ImageFormat::Jpeg), Ok),
        ("alpha.png".into(), encode(&DynamicImage::ImageRgba8(DynamicImage::ImageRgb8(photo(80, 60)).to_rgba8()), ImageFormat::Png), Ok),
        ("cmyk.jpg".into(), cmyk_jpeg(80, 60), Ok),
        ("still.webp".into(), encode(&DynamicImage::ImageRgba8(DynamicImage::ImageRgb8(photo(80, 60)).to_rgba8()), ImageFormat::WebP), Ok),
        ("animated.webp".into(), animated_webp(64, 48), Ok),
        ("photo.tiff".into(), encode(&DynamicImage::ImageRgb8(photo(80, 60)), ImageFormat::Tiff), Ok),
        ("animated.gif".into(), b"GIF89a\x40\x00\x30\x00\x80\x00\x00NETSCAPE2.0".to_vec(), Err("not a supported photo")),
        ("bitmap.jpg".into(), b"BM\x36\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00\x28\x00".to_vec(), Err("not a supported photo")),
        ("arithmetic.jpg".into(), jpeg_with_frame(&good, 0xC9), Err("arithmetic-coded JPEG")),
        ("lossless.jpg".into(), jpeg_with_frame(&good, 0xC3), Err("lossless JPEG")),
        ("float.tiff".into(), float_tiff(), Err("floating-point TIFF")),
        ("trailing-garbage.jpg".into(), [good.clone(), b"trailing bytes after EOI".to_vec()].concat(), Ok),
        (
            "corrupt-exif.jpg".into(),
            with_app1(&good, &[0xFF, 0xE1, 0x00, 0x10, b'E', b'x', b'i', b'f', 0, 0, b'M', b'M', 0, 42, 0xFF, 0xFF, 0xFF, 0xFF]),
            Ok,
        ),
    ];
    for o in 1..=8u16 {
        v.push((format!("orientation-{o}.jpg"), with_app1(&good, &exif_app1(o)), Ok));
    }
    v
}

#[test]
fn a_corpus_of_bad_input_gives_clear_errors_and_correct_results() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    let cases = corpus();
    let mut expect: BTreeMap<PathBuf, &Expect> = BTreeMap::new();
    for (name, bytes, e) in &cases {
        std::fs::write(input.join(name), bytes).unwrap();
        expect.insert(input.join(name), e);
    }
    // File-system oddities.
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let odd = input.join(std::ffi::OsStr::from_bytes(b"caf\xe9-top.jpg"));
        std::fs::write(&odd, jpeg(96, 64)).unwrap();
        expect.insert(odd, &Expect::Ok);
        std::os::unix::fs::symlink("loop.jpg", input.join("loop.jpg")).unwrap();
        expect.insert(input.join("loop.jpg"), &Expect::Err("cannot read"));
        // Unreadable: only meaningful when not running as root (root reads it anyway).
        let locked = input.join("locked.jpg");
        std::fs::write(&locked, jpeg(96, 64)).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
        let readable = std::fs::read(&locked).is_ok();
        expect.insert(locked, if readable { &Expect::Ok } else { &Expect::Err("cannot read") });
    }
    // A folder named like a photo is a folder: its photo is found.
    std::fs::create_dir(input.join("album.jpg")).unwrap();
    std::fs::write(input.join("album.jpg/inside.png"), png(64, 64)).unwrap();
    expect.insert(input.join("album.jpg/inside.png"), &Expect::Ok);
    assert!(expect.len() >= 30, "{} kinds", expect.len());

    let out = dir.path().join("out");
    // Folders are searched for photo extensions; a .gif is only tried when named.
    let o = assert_cmd::Command::cargo_bin("scalpmap")
        .unwrap()
        .arg("analyze")
        .arg(&input)
        .arg(input.join("animated.gif"))
        .arg("--out")
        .arg(&out)
        .args(["--backend", "tract", "--jobs", "2"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(o.status.code(), Some(1), "some photos failed, the others were analysed: {stderr}");
    let summary: Summary = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let rows: BTreeMap<String, _> = summary.rows.iter().map(|r| (r.file.clone(), r)).collect();
    let mut wrong = Vec::new();
    for (path, e) in &expect {
        let key = scalpmap::fsio::path_text(path);
        let Some(row) = rows.get(&key) else {
            wrong.push(format!("{key}: missing from the summary"));
            continue;
        };
        match (e, row.status.as_str(), row.error.as_deref()) {
            (Expect::Ok, "ok", _) => {}
            (Expect::Err(words), "failed", Some(err)) if err.contains(words) => {
                // Every error names its file.
                let name = path.file_name().unwrap().to_string_lossy();
                if !err.contains(name.as_ref()) {
                    wrong.push(format!("{key}: the error does not name the file: {err}"));
                }
            }
            (_, status, err) => wrong.push(format!("{key}: got {status} {err:?}")),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // EXIF orientation: 5-8 turn the 96x64 photo upright as 64x96.
    for o in 1..=8 {
        let r: Report = serde_json::from_slice(&std::fs::read(out.join(format!("orientation-{o}.json"))).unwrap()).unwrap();
        let expected = if o >= 5 { (64, 96) } else { (96, 64) };
        assert_eq!((r.input.width, r.input.height), expected, "orientation {o}");
        assert_eq!(r.input.orientation_applied == "none", o == 1, "orientation {o}: {}", r.input.orientation_applied);
    }
    // Nothing of the EXIF block (GPS, maker notes) reaches any output, and no output carries EXIF.
    for entry in std::fs::read_dir(&out).unwrap().flatten() {
        let bytes = std::fs::read(entry.path()).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("MAKERNOTE-SECRET") && !text.contains("48.8584N"), "{} leaks EXIF", entry.path().display());
        assert!(!bytes.windows(4).any(|w| w == b"eXIf" || w == b"Exif"), "{} carries EXIF", entry.path().display());
    }
    // Nothing half-written is left behind.
    assert!(std::fs::read_dir(&out).unwrap().flatten().all(|e| !e.file_name().to_string_lossy().contains(".tmp-")));
}

#[test]
fn a_photo_deleted_during_the_run_is_reported_and_the_rest_analysed() {
    use scalpmap::analyze::Settings;
    use scalpmap::batch::{run, BatchConfig};
    use scalpmap::model::{self, backend, BackendChoice};
    let dir = tempfile::tempdir().unwrap();
    let keep = dir.path().join("keep.jpg");
    let gone = dir.path().join("gone.jpg");
    std::fs::write(&keep, jpeg(96, 64)).unwrap();
    std::fs::write(&gone, jpeg(96, 64)).unwrap();
    let (inputs, failures) = scalpmap::batch::collect_inputs(&[dir.path().to_path_buf()]);
    assert_eq!(inputs.len(), 2);
    std::fs::remove_file(&gone).unwrap(); // after the folder was read, before the photo is
    let engine = backend::init(BackendChoice::Tract).unwrap().clone();
    let loaded = model::load(None).unwrap();
    let cfg = BatchConfig {
        inputs,
        out: dir.path().join("out"),
        model: &loaded.bytes,
        contract: loaded.contract.clone(),
        settings: Settings::new(loaded.info(), engine),
        session_threads: 1,
        views: Default::default(),
        name_prefixes: Default::default(),
        resume: false,
    };
    let s = run(&cfg, failures, &|_| {}, &|| {}).unwrap();
    assert_eq!((s.analysed, s.failed), (1, 1));
    let row = s.rows.iter().find(|r| r.status == "failed").unwrap();
    assert!(row.error.as_deref().unwrap().contains("gone.jpg") && row.error.as_deref().unwrap().contains("cannot read"), "{row:?}");
}

#[test]
fn model_faults_give_one_clear_message_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let samples = repo().join("samples");
    let run = |extra: &[&str], env: Option<(&str, &str)>| {
        let mut c = assert_cmd::Command::cargo_bin("scalpmap").unwrap();
        c.arg("analyze").arg(&samples).arg("--out").arg(&out).args(extra);
        if let Some((k, v)) = env {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let corrupt = dir.path().join("corrupt.onnx");
    std::fs::write(&corrupt, [0x08, 0x07, 0x12, 0xFF, 0xFF, 0xFF]).unwrap();
    // A valid ONNX protobuf (ir_version 7, nothing else): no scalpmap contract.
    let bare = dir.path().join("no-contract.onnx");
    std::fs::write(&bare, [0x08, 0x07]).unwrap();
    let nan = repo().join("tests/fixtures/nan-output.onnx");
    // (arguments, an environment variable to set, what the error must name)
    type Case<'a> = (Vec<&'a str>, Option<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (vec!["--backend", "tract", "--model", "/nonexistent/model.onnx"], None, "model.onnx"),
        (vec!["--backend", "tract", "--model", corrupt.to_str().unwrap()], None, "corrupt.onnx"),
        (vec!["--backend", "tract", "--model", bare.to_str().unwrap()], None, "no-contract.onnx"),
        (vec!["--backend", "tract", "--model", nan.to_str().unwrap()], None, "NaN"),
        (vec!["--backend", "onnxruntime"], Some(("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")), "ONNX Runtime"),
    ];
    for (args, env, words) in cases {
        let o = run(&args, env);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(words) && !stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().filter(|l| !l.trim().is_empty()).count(), 1, "one message: {stderr}");
    }
}

#[test]
fn no_socket_is_opened_during_a_batch() {
    // strace records every socket-family call of the process and its threads.
    if std::process::Command::new("strace").arg("-V").output().is_err() {
        eprintln!("skipped: strace is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("trace");
    let o = std::process::Command::new("strace")
        .args(["-f", "-e", "trace=socket,connect,bind,sendto,socketpair", "-o"])
        .arg(&log)
        .arg(env!("CARGO_BIN_EXE_scalpmap"))
        .arg("analyze")
        .arg(repo().join("samples"))
        .arg("--out")
        .arg(dir.path().join("out"))
        .args(["--backend", "tract"])
        .output()
        .unwrap();
    let trace = std::fs::read_to_string(&log).unwrap_or_default();
    if !o.status.success() && trace.is_empty() {
        eprintln!("skipped: strace cannot trace here ({})", String::from_utf8_lossy(&o.stderr).trim());
        return;
    }
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let calls: Vec<&str> =
        trace.lines().filter(|l| ["socket(", "connect(", "bind(", "sendto(", "socketpair("].iter().any(|c| l.contains(c))).collect();
    assert!(calls.is_empty(), "network calls during a batch:\n{}", calls.join("\n"));
}

#[test]
fn inputs_are_never_overwritten_even_when_out_is_the_input_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.jpg"), jpeg(96, 64)).unwrap();
    std::fs::write(dir.path().join("x.overlay.png"), png(64, 64)).unwrap();
    let before = std::fs::read(dir.path().join("x.overlay.png")).unwrap();
    // --out among the photos is refused before anything is written: x.jpg's overlay, its
    // NAME.json and the summary would sit among (and could replace) the user's own files.
    let o = assert_cmd::Command::cargo_bin("scalpmap")
        .unwrap()
        .arg("analyze")
        .arg(dir.path().join("x.jpg"))
        .arg(dir.path().join("x.overlay.png"))
        .arg("--out")
        .arg(dir.path())
        .args(["--backend", "tract"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("folder of its own"), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read(dir.path().join("x.overlay.png")).unwrap(), before);
    assert!(!dir.path().join("x.json").exists() && !dir.path().join("summary.csv").exists());
}

#[test]
fn an_interrupted_run_leaves_only_whole_files_and_resume_finishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    let sample = std::fs::read(repo().join("samples/synth-2026-00003.jpg")).unwrap();
    for i in 0..24 {
        std::fs::write(input.join(format!("p{i:02}.jpg")), &sample).unwrap();
    }
    let out = dir.path().join("out");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_scalpmap"))
        .arg("analyze")
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .args(["--backend", "tract", "--jobs", "2"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    // Every visible output is whole: reports parse and have their overlay, overlays decode.
    let mut done = 0;
    for e in std::fs::read_dir(&out).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue; // a temporary of the killed run, never a final name
        }
        if name.ends_with(".overlay.png") {
            image::open(e.path()).unwrap_or_else(|err| panic!("{name} is not whole: {err}"));
        } else if let Some(stem) = name.strip_suffix(".json") {
            if stem == "summary" || stem == "scalpmap-run" {
                continue;
            }
            let _: Report =
                serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap_or_else(|err| panic!("{name} is not whole: {err}"));
            assert!(out.join(format!("{stem}.overlay.png")).is_file(), "{name} without its overlay");
            done += 1;
        }
    }
    eprintln!("{done} of 24 reports were written before the kill");
    // `analyze --resume` into the same folder must succeed; the summary it wrote.
    let resume = |extra: &[&str]| -> Summary {
        let o = assert_cmd::Command::cargo_bin("scalpmap")
            .unwrap()
            .arg("analyze")
            .arg(&input)
            .arg("--out")
            .arg(&out)
            .args(["--backend", "tract", "--resume"])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap()
    };
    // --resume skips what is done, finishes the rest and clears the dead run's temporaries.
    let s = resume(&["--jobs", "2"]);
    assert_eq!((s.analysed, s.failed, s.skipped), (24, 0, done));
    assert!(std::fs::read_dir(&out).unwrap().flatten().all(|e| !e.file_name().to_string_lossy().contains(".tmp-")));
    // A changed photo is analysed again; the others stay skipped.
    std::fs::write(input.join("p00.jpg"), std::fs::read(repo().join("samples/synth-2026-00050.jpg")).unwrap()).unwrap();
    let s = resume(&[]);
    assert_eq!(s.skipped, 23);
    let row = s.rows.iter().find(|r| r.file.ends_with("p00.jpg")).unwrap();
    assert_eq!(row.status, "ok");
}

#[test]
fn a_full_standard_output_is_an_error_never_a_panic_or_a_silent_success() {
    if !Path::new("/dev/full").exists() {
        eprintln!("skipped: no /dev/full here");
        return;
    }
    let full = || std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let run = |args: &[&str]| std::process::Command::new(env!("CARGO_BIN_EXE_scalpmap")).args(args).stdout(full()).output().unwrap();
    let o = run(&["rules", "--default"]);
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot write to standard output"));
    let out = tempfile::tempdir().unwrap();
    let photo = repo().join("samples/synth-2026-00003.jpg");
    let o = run(&["analyze", photo.to_str().unwrap(), "--backend", "tract", "--jsonl", "--out", out.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--jsonl: cannot write"), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.path().join("synth-2026-00003.json").exists(), "the reports themselves are written");
}

#[test]
fn a_closed_or_full_standard_error_never_panics_and_every_output_is_still_written() {
    use std::process::{Command, Stdio};
    let input = tempfile::tempdir().unwrap();
    std::fs::write(input.path().join("a_top.jpg"), std::fs::read(repo().join("samples/synth-2026-00003.jpg")).unwrap()).unwrap();
    std::fs::write(input.path().join("broken.jpg"), b"not a photo").unwrap();
    // A reader that went away (`scalpmap plan ... 2>&1 | head`): the pipe is closed at once.
    let out = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_scalpmap"))
        .args(["plan", input.path().to_str().unwrap(), "--backend", "tract", "--out", out.path().to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "a lost message is a failure, not a panic (101) nor a success");
    for f in ["index.html", "summary.csv", "summary.json", "patients/a_top.html", "patients/a_top.json"] {
        assert!(out.path().join(f).is_file(), "{f} was written");
    }
    // The same with standard error on a full device.
    if Path::new("/dev/full").exists() {
        let out = tempfile::tempdir().unwrap();
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_scalpmap"))
            .args(["plan", input.path().to_str().unwrap(), "--backend", "tract", "--out", out.path().to_str().unwrap()])
            .stderr(full)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1));
        assert!(out.path().join("index.html").is_file() && out.path().join("patients/a_top.html").is_file());
    }
}

#[test]
fn misspelt_flags_are_named_and_a_view_can_be_given_on_the_command_line() {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_scalpmap")).args(["analyze", "x.jpg", "--ot", "o"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("'--out'") && !err.contains("use '-- --ot'"), "{err}");
    // --view for a photo whose name names none; a name that does name one keeps it.
    let input = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(repo().join("samples/synth-2026-00003.jpg")).unwrap();
    std::fs::write(input.path().join("IMG_0001.jpg"), &bytes).unwrap();
    std::fs::write(input.path().join("IMG_0002_back.jpg"), &bytes).unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_scalpmap"))
        .args(["analyze", input.path().to_str().unwrap(), "--view", "top", "--backend", "tract", "--out", out.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.trim_end().ends_with("summary.csv") && err.contains("2 photos"), "the last line names the summary: {err}");
    let view = |name: &str| -> serde_json::Value {
        let r: serde_json::Value = serde_json::from_slice(&std::fs::read(out.path().join(name)).unwrap()).unwrap();
        r["view"].clone()
    };
    assert_eq!(view("IMG_0001.json"), "top");
    assert_eq!(view("IMG_0002_back.json"), "back");
}

fn bin(args: &[&str]) -> std::process::Output {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_scalpmap"));
    c.args(args);
    // A hang is the failure these tests look for: never wait on one forever.
    let mut child = c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed().as_secs() > 120 {
            child.kill().unwrap();
            panic!("scalpmap {args:?} hung");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
#[cfg(unix)]
fn pipes_devices_and_sparse_giants_are_refused_unread_and_the_batch_goes_on() {
    let input = tempfile::tempdir().unwrap();
    let d = input.path();
    std::fs::write(d.join("good.jpg"), std::fs::read(repo().join("samples/synth-2026-00003.jpg")).unwrap()).unwrap();
    let fifo = d.join("pipe.jpg");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().is_ok_and(|s| s.success());
    std::os::unix::fs::symlink("/dev/zero", d.join("zero.jpg")).unwrap();
    std::fs::File::create(d.join("sparse.jpg")).unwrap().set_len(3 << 30).unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = bin(&["analyze", d.to_str().unwrap(), "--backend", "tract", "--out", out.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    let s: Summary = serde_json::from_slice(&std::fs::read(out.path().join("summary.json")).unwrap()).unwrap();
    let error = |name: &str| s.rows.iter().find(|r| r.file.ends_with(name)).and_then(|r| r.error.clone()).unwrap_or_default();
    assert_eq!(s.analysed, 1, "the good photo is analysed");
    assert!(error("zero.jpg").contains("not a regular file"), "{}", error("zero.jpg"));
    assert!(error("sparse.jpg").contains("bytes, more than"), "{}", error("sparse.jpg"));
    if made {
        assert!(error("pipe.jpg").contains("not a regular file"), "{}", error("pipe.jpg"));
        // --model on a pipe: a clear usage error, not a hang.
        let o = bin(&[
            "analyze",
            d.join("good.jpg").to_str().unwrap(),
            "--model",
            fifo.to_str().unwrap(),
            "--out",
            out.path().to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&o.stderr).contains("not a regular file"), "{}", String::from_utf8_lossy(&o.stderr));
    } else {
        eprintln!("no mkfifo here: the pipe case was not checked");
    }
}

#[test]
fn numbers_outside_the_range_where_the_arithmetic_holds_are_refused_with_the_range() {
    let out = tempfile::tempdir().unwrap();
    let photo = repo().join("samples/synth-2026-00003.jpg");
    for (flag, value) in [
        ("--px-per-cm", "1e-300"),
        ("--px-per-cm", "1e300"),
        ("--px-per-cm", "NaN"),
        ("--max-megapixels", "0"),
        ("--max-megapixels", "1e30"),
    ] {
        let o = bin(&["analyze", photo.to_str().unwrap(), flag, value, "--out", out.path().to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{flag} {value}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(flag) && err.contains("out of range") && err.contains(" to "), "{flag} {value}: {err}");
    }
    for args in [["--count", "18446744073709551615"], ["--start", "18446744073709551615"]] {
        let o = bin(&["synth", args[0], args[1], "--out", out.path().join("s").to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("out of range"), "{}", String::from_utf8_lossy(&o.stderr));
    }
    // A limit below a small photo names both in megapixels a person can read.
    let o =
        bin(&["analyze", photo.to_str().unwrap(), "--max-megapixels", "0.1", "--backend", "tract", "--out", out.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("512x512 is 0.26 megapixels, over the limit of 0.1"), "{err}");
}

#[test]
fn a_second_run_into_one_out_is_refused_and_an_unwritable_out_is_found_before_any_work() {
    let photo = repo().join("samples/synth-2026-00003.jpg");
    let out = tempfile::tempdir().unwrap();
    // A run in progress (this test's own process holds the lock).
    std::fs::write(out.path().join(".scalpmap.lock"), std::process::id().to_string()).unwrap();
    for cmd in ["analyze", "plan"] {
        let o = bin(&[cmd, photo.to_str().unwrap(), "--backend", "tract", "--out", out.path().to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{cmd}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("another scalpmap run") && err.contains(&std::process::id().to_string()), "{err}");
        assert!(!out.path().join("summary.json").exists(), "nothing written beside the other run's files");
    }
    std::fs::remove_file(out.path().join(".scalpmap.lock")).unwrap();
    let o = bin(&["analyze", photo.to_str().unwrap(), "--backend", "tract", "--out", out.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    assert!(!out.path().join(".scalpmap.lock").exists(), "the lock goes with the run");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let ro = tempfile::tempdir().unwrap();
        std::fs::set_permissions(ro.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
        // Root writes through permissions; /proc takes no new files from anyone.
        let unwritable = if std::fs::write(ro.path().join("probe"), b"x").is_err() {
            ro.path().to_path_buf()
        } else if Path::new("/proc/self").exists() {
            PathBuf::from("/proc")
        } else {
            eprintln!("running as root without /proc: the unwritable-folder case was not checked");
            return;
        };
        let o = bin(&["analyze", photo.to_str().unwrap(), "--backend", "tract", "--out", unwritable.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&o.stderr).contains("cannot write in the output folder"), "{}", String::from_utf8_lossy(&o.stderr));
    }
}
