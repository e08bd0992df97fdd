//! The procedural scalp-photo renderer with exact ground truth (`scalpmap synth`).
//!
//! No public scalp data set has pixel masks or scars, so scalpmap renders its own: heads
//! with Norwood, Ludwig, alopecia-areata and diffuse loss, scars, every skin tone, hair
//! colour and length, under phone-camera light and defects. Each item is a photo, a label
//! map, a density map and a truth JSON whose areas are exact pixel counts.
//!
//! Classes come from the follicle density of the scalp under each pixel (hairs per cm² of
//! scalp surface; see [`crate::classes`]): **hair** at or above
//! [`HAIR_MIN_PER_CM2`](crate::classes::HAIR_MIN_PER_CM2) (75), **thinning** from
//! [`THINNING_MIN_PER_CM2`](crate::classes::THINNING_MIN_PER_CM2) (15) up to that, **bare**
//! below 15, and **scar** wherever a scar lies (always hairless). Everything off the
//! original hair-bearing scalp (backdrop, clothes, face, ears, neck) is **background**.
//! The label describes the follicles, not what the strands happen to cover: long hair lying
//! over a thin patch still leaves that patch labelled thinning.

mod camera;
pub mod color;
pub mod geom;
pub mod pattern;
pub mod render;
pub mod rng;
pub mod scar;
pub mod scene;
mod strands;

use std::io::Cursor;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use image::codecs::jpeg::JpegEncoder;
use image::{ImageFormat, RgbImage};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::classes::{Class, HAIR_MIN_PER_CM2, THINNING_MIN_PER_CM2};
use crate::fsio::write_atomic;
pub use render::{render, Rendered, DENSITY_SCALE};
pub use scene::{Overrides, Scene};

/// The most items one run renders (the job list is built up front).
pub const MAX_COUNT: usize = 1_000_000;

/// Version of the truth JSON layout; bump when a field changes meaning.
pub const TRUTH_SCHEMA: &str = "scalpmap-synth-truth/1";

/// Photo encoding for rendered items.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhotoFormat {
    /// JPEG at the scene's quality (40-95), as phones and messengers deliver photos.
    Jpeg,
    /// Lossless PNG.
    Png,
}

/// What `scalpmap synth` was asked for.
#[derive(Clone, Debug)]
pub struct SynthConfig {
    pub count: usize,
    pub size: u32,
    pub seed: u64,
    pub out: PathBuf,
    pub format: PhotoFormat,
    /// First item index (items are named by seed and index, so ranges can be rendered apart).
    pub start: u64,
    pub overrides: Overrides,
    /// Render each item as a whole patient: its one head in all five views, in a folder of its
    /// own named by the item, each photo named by its view (the marker, if asked for, on the
    /// top view only), so that `scalpmap plan` reads the folder as one patient.
    pub patients: bool,
}

/// Area of one class in the truth JSON.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ClassArea {
    pub id: u8,
    pub name: String,
    pub pixels: u64,
    /// `pixels / (px_per_cm_x * px_per_cm_y)`: area in the image plane at the scale below.
    pub area_cm2: f64,
    /// Physical scalp surface these pixels show, cm², with the foreshortening of the curved
    /// head undone per pixel (0 for background, which has no single surface).
    pub surface_cm2: f64,
    /// This class's share of the whole scalp's surface, cm², whether the photo shows it or not
    /// (0 for background): the truth for a patient's combined views.
    pub whole_scalp_cm2: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Scale {
    /// Geometric mean of the two axes.
    pub px_per_cm: f64,
    pub px_per_cm_x: f64,
    pub px_per_cm_y: f64,
    /// Where the scale holds: the camera's aim point on the head, as a sticker placed there
    /// would measure it. Nearer and farther parts of the head are larger or smaller.
    pub reference: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Files {
    pub photo: String,
    pub labels: String,
    pub density: String,
    /// Stored 16-bit value = hairs/cm² × this.
    pub density_scale: f64,
}

/// The truth written beside every rendered photo.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Truth {
    pub schema: String,
    pub generator: String,
    pub name: String,
    pub seed: u64,
    pub index: u64,
    pub width: u32,
    pub height: u32,
    pub files: Files,
    pub view: scene::View,
    pub pattern: scene::PatternKind,
    /// "hamilton-norwood" or "ludwig" where the pattern has a stage.
    pub stage_scale: Option<String>,
    pub stage: Option<String>,
    pub scale: Scale,
    pub skin: scene::Skin,
    pub hair: scene::Hair,
    pub class_thresholds_per_cm2: Thresholds,
    pub classes: Vec<ClassArea>,
    pub follicles_drawn: u64,
    /// The options the item was rendered with: with seed, index and size they reproduce it.
    pub requested: Overrides,
    /// Every parameter of the render, for the curious and for debugging the model.
    pub scene: Scene,
    /// The calibration marker, when one was asked for and is in view.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marker: Option<render::MarkerTruth>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Thresholds {
    pub hair_min: f32,
    pub thinning_min: f32,
}

/// One rendered item, encoded and ready to write.
pub struct Item {
    pub truth: Truth,
    pub photo: Vec<u8>,
    pub labels: Vec<u8>,
    pub density: Vec<u8>,
}

/// Item name: the seed and index, so separately rendered ranges never collide.
pub fn item_name(seed: u64, index: u64) -> String {
    format!("synth-{seed}-{index:05}")
}

/// Draws the scene for item `index` of a run seeded `seed`.
pub fn scene_for(seed: u64, index: u64, overrides: &Overrides) -> Scene {
    Scene::sample(&mut rng::Rng::for_item(seed, index), overrides)
}

/// Renders and encodes item `index`; a pure function of its arguments.
pub fn make_item(seed: u64, index: u64, size: u32, format: PhotoFormat, overrides: &Overrides) -> Result<Item> {
    let scene = scene_for(seed, index, overrides);
    let r = render(&scene, size);
    let name = match overrides.view_in_name {
        true => format!("{}-{}", item_name(seed, index), scene.view.name()),
        false => item_name(seed, index),
    };
    let ext = match format {
        PhotoFormat::Jpeg => "jpg",
        PhotoFormat::Png => "png",
    };
    let photo = match format {
        PhotoFormat::Jpeg => encode_jpeg(&r.photo, scene.defects.jpeg_quality)?,
        PhotoFormat::Png => encode_png(&r.photo)?,
    };
    let labels = encode_png(&r.labels)?;
    let density = encode_png(&r.density)?;
    let c = &r.counts;
    let px_area = c.px_per_cm_x * c.px_per_cm_y;
    let classes = Class::ALL
        .iter()
        .map(|&k| ClassArea {
            id: k as u8,
            name: k.name().to_string(),
            pixels: c.pixels[k as usize],
            area_cm2: c.pixels[k as usize] as f64 / px_area,
            surface_cm2: c.surface_cm2[k as usize],
            whole_scalp_cm2: c.whole_scalp_cm2[k as usize],
        })
        .collect();
    let stage_scale = match scene.pattern.kind {
        scene::PatternKind::Norwood => Some("hamilton-norwood".to_string()),
        scene::PatternKind::Ludwig => Some("ludwig".to_string()),
        _ => None,
    };
    let truth = Truth {
        schema: TRUTH_SCHEMA.to_string(),
        generator: format!("scalpmap {}", env!("CARGO_PKG_VERSION")),
        name: name.clone(),
        seed,
        index,
        width: size,
        height: size,
        files: Files {
            photo: format!("{name}.{ext}"),
            labels: format!("{name}.labels.png"),
            density: format!("{name}.density.png"),
            density_scale: DENSITY_SCALE as f64,
        },
        view: scene.view,
        pattern: scene.pattern.kind,
        stage_scale,
        stage: scene.pattern.stage.clone(),
        scale: Scale {
            px_per_cm: px_area.sqrt(),
            px_per_cm_x: c.px_per_cm_x,
            px_per_cm_y: c.px_per_cm_y,
            reference: "camera aim point on the head".to_string(),
        },
        skin: scene.skin.clone(),
        hair: scene.hair.clone(),
        class_thresholds_per_cm2: Thresholds { hair_min: HAIR_MIN_PER_CM2, thinning_min: THINNING_MIN_PER_CM2 },
        classes,
        follicles_drawn: c.follicles,
        requested: overrides.clone(),
        marker: c.marker.clone(),
        scene,
    };
    Ok(Item { truth, photo, labels, density })
}

fn encode_jpeg(img: &RgbImage, quality: u8) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    img.write_with_encoder(JpegEncoder::new_with_quality(&mut buf, quality)).context("JPEG encoding failed")?;
    Ok(buf)
}

fn encode_png<P, C>(img: &image::ImageBuffer<P, C>) -> Result<Vec<u8>>
where
    P: image::PixelWithColorType,
    [P::Subpixel]: image::EncodableLayout,
    C: std::ops::Deref<Target = [P::Subpixel]>,
{
    let mut buf = Cursor::new(Vec::new());
    img.write_to(&mut buf, ImageFormat::Png).context("PNG encoding failed")?;
    Ok(buf.into_inner())
}

/// Writes an item's four files into `dir`, each atomically; the JSON goes last so that a
/// truth file on disk always has its images beside it.
pub fn write_item(dir: &Path, item: &Item) -> Result<()> {
    let f = &item.truth.files;
    write_atomic(&dir.join(&f.photo), &item.photo)?;
    write_atomic(&dir.join(&f.labels), &item.labels)?;
    write_atomic(&dir.join(&f.density), &item.density)?;
    let json = serde_json::to_vec_pretty(&item.truth).context("truth JSON serialisation failed")?;
    write_atomic(&dir.join(format!("{}.json", item.truth.name)), &json)
}

/// The photos one item of a run stands for: (folder, overrides) for each. One, or with
/// `patients` the five views of one head.
fn item_jobs(config: &SynthConfig, index: u64) -> Vec<(PathBuf, Overrides)> {
    if !config.patients {
        return vec![(config.out.clone(), config.overrides.clone())];
    }
    let dir = config.out.join(item_name(config.seed, index));
    scene::View::ALL
        .iter()
        .map(|&v| {
            let o = Overrides {
                view: Some(v),
                marker: config.overrides.marker && v == scene::View::Top,
                view_in_name: true,
                ..config.overrides.clone()
            };
            (dir.clone(), o)
        })
        .collect()
}

/// Renders `config.count` items (patients with `config.patients`) in parallel into
/// `config.out`, calling `tick` after each photo. Returns the number of photos written.
pub fn run(config: &SynthConfig, tick: &(dyn Fn() + Sync)) -> Result<usize> {
    if config.size < 64 || config.size > 4096 {
        bail!("--size {} is out of range: use 64 to 4096 pixels", config.size);
    }
    if config.count > MAX_COUNT {
        bail!("--count {} is out of range: render at most {MAX_COUNT} items a run (use --start for more)", config.count);
    }
    if config.start.checked_add(config.count as u64).is_none() {
        bail!("--start {} is out of range: --start plus --count must stay below 2^64", config.start);
    }
    std::fs::create_dir_all(&config.out)
        .with_context(|| format!("cannot create output folder {}: check the path and permissions", config.out.display()))?;
    if config.patients && config.overrides.view.is_some() {
        bail!("--patients renders all five views: leave out --view");
    }
    let jobs: Vec<(u64, PathBuf, Overrides)> = (0..config.count as u64)
        .flat_map(|k| item_jobs(config, config.start + k).into_iter().map(move |(d, o)| (config.start + k, d, o)))
        .collect();
    jobs.par_iter().try_for_each(|(index, dir, overrides)| -> Result<()> {
        let item =
            make_item(config.seed, *index, config.size, config.format, overrides).with_context(|| format!("rendering item {index}"))?;
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create output folder {}: check the path and permissions", dir.display()))?;
        write_item(dir, &item)?;
        tick();
        Ok(())
    })?;
    Ok(jobs.len())
}
