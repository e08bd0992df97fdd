//! Everything random about one rendered photo, drawn up front from the item's seed: view,
//! loss pattern and stage, skin, hair, scars, light, camera and photo defects.
//!
//! Rendering is then a pure function of a `Scene`, which is what makes truth exact and
//! renders reproducible.

use serde::{Deserialize, Serialize};

use super::color::{ita_deg, HairColour, ItaClass};
use super::geom::{v3, ScalpPos, V3};
use super::rng::Rng;

/// The standard intake views (DOMAIN.md "The photos practitioners take").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum View {
    Top,
    Front,
    Back,
    Left,
    Right,
}

impl View {
    pub const ALL: [View; 5] = [View::Top, View::Front, View::Back, View::Left, View::Right];

    pub fn name(self) -> &'static str {
        match self {
            View::Top => "top",
            View::Front => "front",
            View::Back => "back",
            View::Left => "left",
            View::Right => "right",
        }
    }

    pub fn parse(s: &str) -> Option<View> {
        let s = s.to_ascii_lowercase();
        let s = match s.as_str() {
            "top-down" | "topdown" | "vertex" => "top",
            "crown" | "occipital" => "back",
            "hairline" => "front",
            other => other,
        }
        .to_string();
        View::ALL.into_iter().find(|v| v.name() == s)
    }
}

/// Loss pattern families the renderer draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PatternKind {
    /// Male pattern, Hamilton-Norwood I-VII (with the III-vertex variant).
    Norwood,
    /// Female pattern diffuse crown thinning, Ludwig I-III.
    Ludwig,
    /// Alopecia areata: round, sharply bounded patches.
    Areata,
    /// Diffuse thinning with a soft top-to-sides density gradient.
    Diffuse,
}

impl PatternKind {
    pub const ALL: [PatternKind; 4] = [PatternKind::Norwood, PatternKind::Ludwig, PatternKind::Areata, PatternKind::Diffuse];

    pub fn parse(s: &str) -> Option<PatternKind> {
        match s.to_ascii_lowercase().as_str() {
            "norwood" | "hamilton-norwood" | "male" => Some(PatternKind::Norwood),
            "ludwig" | "female" => Some(PatternKind::Ludwig),
            "areata" | "alopecia-areata" => Some(PatternKind::Areata),
            "diffuse" => Some(PatternKind::Diffuse),
            _ => None,
        }
    }
}

/// One alopecia-areata patch on the scalp.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Patch {
    pub polar_deg: f32,
    pub azimuth_deg: f32,
    pub radius_cm: f32,
    /// Fraction of hair lost in the patch's core (0-1).
    pub loss: f32,
}

/// The loss pattern with its parameters.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Pattern {
    pub kind: PatternKind,
    /// "I".."VII" or "IIIv" for Norwood, "I".."III" for Ludwig, absent otherwise.
    pub stage: Option<String>,
    /// Ordinal stage: Norwood 1-7 (III-vertex is 3), Ludwig 1-3.
    pub stage_level: Option<u8>,
    pub vertex_variant: bool,
    /// Diffuse: the loss at the vertex (0-1).
    pub diffuse_loss: f32,
    /// Softness of the pattern edges, cm: the width of the thinning band around loss.
    pub edge_cm: f32,
    pub patches: Vec<Patch>,
    /// Norwood crown centre, cm behind the vertex on the scalp map.
    pub crown_offset_cm: f32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScarKind {
    /// Linear strip scar from follicular-unit transplantation, across the back.
    Fut,
    /// Dot scars from follicular-unit extraction in the donor area.
    Fue,
    /// Irregular trauma or burn scar.
    Trauma,
}

impl ScarKind {
    pub fn parse(s: &str) -> Option<ScarKind> {
        match s.to_ascii_lowercase().as_str() {
            "fut" | "strip" => Some(ScarKind::Fut),
            "fue" | "dots" => Some(ScarKind::Fue),
            "trauma" | "burn" => Some(ScarKind::Trauma),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Scar {
    pub kind: ScarKind,
    /// FUT: polar angle of the strip; trauma: of the centre.
    pub polar_deg: f32,
    /// Trauma: azimuth of the centre; FUT: half the strip's span, degrees from the back.
    pub azimuth_deg: f32,
    /// FUT: strip width; FUE: dot radius; trauma: mean radius.
    pub size_cm: f32,
    /// FUE: number of dots.
    pub count: u32,
    /// Lightness added to the skin (CIELAB L*), and redness (a*).
    pub lighter_l: f32,
    pub pinker_a: f32,
    pub shiny: bool,
    /// Height of the tissue against the scalp around it, -1 sunken (atrophic) to 1 raised
    /// (hypertrophic); the light shades its edges accordingly.
    #[serde(default)]
    pub relief: f32,
    /// Shape harmonics and phases (trauma outline, FUT wobble) and the FUE dot seed.
    pub shape: [f32; 6],
    pub seed: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Skin {
    pub ita_deg: f32,
    pub ita_class: ItaClass,
    pub lab: [f32; 3],
    /// Specular strength of bare scalp: 0 matte to 1 oily with strong flash glare.
    pub shine: f32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Hair {
    pub colour: HairColour,
    pub length_cm: f32,
    /// Follicle density of unaffected scalp, hairs/cm².
    pub native_density_per_cm2: f32,
    pub strand_width_cm: f32,
    /// Fraction of white strands (Grey mixes; others have a few).
    pub white_fraction: f32,
    /// Crown whorl on the scalp, and the swirl of the flow around it.
    pub whorl_polar_deg: f32,
    pub whorl_azimuth_deg: f32,
    pub swirl_deg: f32,
    /// Curl: random bend per strand segment, radians.
    pub curl: f32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Light {
    /// Direction towards the light, head frame.
    pub dir: [f32; 3],
    pub flash: bool,
    pub intensity: f32,
    pub ambient: f32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CameraSpec {
    pub target: [f32; 3],
    pub azimuth_deg: f32,
    pub elevation_deg: f32,
    pub distance_cm: f32,
    pub roll_deg: f32,
    /// Pixels per cm at the target's depth before stretch.
    pub px_per_cm: f32,
    pub stretch_x: f32,
    pub stretch_y: f32,
    /// Principal point offset as a fraction of the image size.
    pub shift: [f32; 2],
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PhotoDefects {
    pub white_balance: [f32; 3],
    pub exposure: f32,
    pub blur_sigma_px: f32,
    pub noise_sigma: f32,
    pub jpeg_quality: u8,
    pub vignette: f32,
    /// A soft cast shadow over part of the frame: (angle deg, offset fraction, strength); strength 0 for none.
    pub shadow: [f32; 3],
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Scene {
    pub view: View,
    pub pattern: Pattern,
    pub head_radii_cm: [f32; 3],
    pub skin: Skin,
    pub hair: Hair,
    pub scars: Vec<Scar>,
    pub light: Light,
    pub camera: CameraSpec,
    pub defects: PhotoDefects,
    pub clothes_lab: [f32; 3],
    pub background_seed: u64,
    /// Depth-of-field blur of the backdrop, pixels at 512 px (0 for a sharp one).
    pub background_blur_px: f32,
    /// Seed of the per-pixel draws (follicles, pores, noise).
    pub detail_seed: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marker: Option<MarkerSpec>,
}

/// What a caller may fix instead of drawing at random.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Overrides {
    pub view: Option<View>,
    pub pattern: Option<PatternKind>,
    pub skin: Option<ItaClass>,
    pub hair: Option<HairColour>,
    pub scar: Option<ScarKind>,
    /// Put a printed calibration marker (docs/marker.svg) on the scalp.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub marker: bool,
    /// Name the item with its view (`synth-SEED-INDEX-top`), as one view of a whole patient.
    /// Changes only the file names, never the pixels.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub view_in_name: bool,
}

/// A printed calibration marker stuck flat on the head: a black square of `side_cm` with a
/// white square of half its side in the middle, on white paper with a margin.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MarkerSpec {
    /// Where its centre touches the head (degrees from the vertex, azimuth as ScalpPos).
    pub polar_deg: f32,
    pub azimuth_deg: f32,
    /// Rotation in its own plane.
    pub rotation_deg: f32,
    pub side_cm: f32,
    pub margin_cm: f32,
}

/// Side of the printed marker's black square, cm (docs/marker.svg).
pub const MARKER_SIDE_CM: f32 = 2.0;

/// Near the middle of the camera's view of the head, off the aim point by 10-25 degrees so it
/// does not hide what the photo is of.
fn sample_marker(r: &mut Rng, cam: &CameraSpec) -> MarkerSpec {
    let off = r.range(10.0, 25.0) * if r.chance(0.5) { 1.0 } else { -1.0 };
    MarkerSpec {
        polar_deg: (90.0 - cam.elevation_deg + r.range(-8.0, 8.0)).clamp(3.0, 110.0),
        azimuth_deg: cam.azimuth_deg + off,
        rotation_deg: r.range(0.0, 90.0),
        side_cm: MARKER_SIDE_CM,
        margin_cm: r.range(0.25, 0.5),
    }
}

impl Scene {
    /// Draws a scene; every draw comes from `rng`, so the scene is a function of the seed.
    pub fn sample(rng: &mut Rng, ov: &Overrides) -> Scene {
        let view = ov.view.unwrap_or_else(|| *rng.pick(&View::ALL));
        let pattern = sample_pattern(&mut rng.fork(1), ov.pattern);
        let skin = sample_skin(&mut rng.fork(2), ov.skin);
        let mut hair = sample_hair(&mut rng.fork(3), &skin, ov.hair);
        let scars = sample_scars(&mut rng.fork(4), ov.scar);
        let mut r = rng.fork(5);
        let s = r.range(0.93, 1.07);
        let head_radii_cm = [7.6 * s * r.range(0.96, 1.04), 9.6 * s, 8.8 * s * r.range(0.96, 1.04)];
        let camera = sample_camera(&mut rng.fork(6), view, head_radii_cm);
        let light = sample_light(&mut rng.fork(7), &camera);
        let defects = sample_defects(&mut rng.fork(8));
        let mut r = rng.fork(9);
        let clothes_lab = [r.range(15.0, 85.0), r.range(-30.0, 30.0), r.range(-40.0, 30.0)];
        let background_seed = r.next_u64();
        let detail_seed = r.next_u64();
        let background_blur_px = if r.chance(0.5) { r.range(0.8, 3.0) } else { 0.0 };
        // Its own stream, drawn from a copy so that asking for a marker changes nothing else in
        // the scene (a fork advances its parent: the scar's short hair below would differ).
        let marker = ov.marker.then(|| sample_marker(&mut rng.clone().fork(16), &camera));
        // A client asking about scar camouflage is mostly photographed with the hair cut short,
        // as SMP wears it; long hair would hide the scar the labels mark. Last, and only for
        // heads with a scar, so every other scene keeps its draws.
        if !scars.is_empty() {
            let mut r = rng.fork(17);
            if r.chance(SCAR_SHORT_HAIR_P) {
                hair.length_cm = hair.length_cm.min(r.range(0.1, 0.6));
            }
        }
        Scene {
            view,
            pattern,
            head_radii_cm,
            skin,
            hair,
            scars,
            light,
            camera,
            defects,
            clothes_lab,
            background_seed,
            background_blur_px,
            detail_seed,
            marker,
        }
    }
}

/// Share of heads with a scar whose hair is cut to 1-6 mm for the photo.
const SCAR_SHORT_HAIR_P: f32 = 0.7;

const ROMAN: [&str; 7] = ["I", "II", "III", "IV", "V", "VI", "VII"];

fn sample_pattern(r: &mut Rng, kind: Option<PatternKind>) -> Pattern {
    let kind = kind.unwrap_or_else(|| PatternKind::ALL[r.weighted(&[0.5, 0.17, 0.16, 0.17])]);
    let mut p = Pattern {
        kind,
        stage: None,
        stage_level: None,
        vertex_variant: false,
        diffuse_loss: 0.0,
        edge_cm: r.range(0.9, 2.2),
        patches: Vec::new(),
        crown_offset_cm: r.range(2.5, 4.5),
    };
    match kind {
        PatternKind::Norwood => {
            // Stage I is rare in a hair-loss clinic; II-VII about evenly.
            let level = 1 + r.weighted(&[0.05, 0.15, 0.17, 0.16, 0.16, 0.16, 0.15]) as u8;
            p.vertex_variant = level == 3 && r.chance(0.35);
            p.stage = Some(if p.vertex_variant { "IIIv".into() } else { ROMAN[level as usize - 1].into() });
            p.stage_level = Some(level);
        }
        PatternKind::Ludwig => {
            let level = 1 + r.below(3) as u8;
            p.stage = Some(ROMAN[level as usize - 1].into());
            p.stage_level = Some(level);
            p.edge_cm = r.range(1.5, 2.8);
        }
        PatternKind::Areata => {
            let n = 1 + r.below(4);
            p.edge_cm = r.range(0.3, 0.7);
            for _ in 0..n {
                p.patches.push(Patch {
                    polar_deg: r.range(0.0, 105.0),
                    azimuth_deg: r.range(-180.0, 180.0),
                    radius_cm: r.range(0.8, 4.0),
                    loss: r.range(0.85, 1.0),
                });
            }
        }
        PatternKind::Diffuse => {
            // Enough loss that the vertex reads as thinning (below 75/cm² from 150-235).
            p.diffuse_loss = r.range(0.55, 0.92);
            p.edge_cm = r.range(2.5, 5.0);
        }
    }
    p
}

fn sample_skin(r: &mut Rng, class: Option<ItaClass>) -> Skin {
    // Uniform over the six classes, so dark and very light skin are not rare in training.
    let class = class.unwrap_or_else(|| *r.pick(&ItaClass::ALL));
    let (lo, hi) = class.range();
    let ita = r.range(lo + 0.5, hi - 0.5);
    let b = r.range(13.0, 21.0);
    let l = 50.0 + b * ita.to_radians().tan();
    let a = r.range(6.0, 15.0);
    debug_assert!((ita_deg(l, b) - ita).abs() < 1e-2);
    Skin { ita_deg: ita, ita_class: class, lab: [l, a, b], shine: r.range(0.05, 1.0) }
}

fn sample_hair(r: &mut Rng, skin: &Skin, colour: Option<HairColour>) -> Hair {
    let dark_skin = skin.ita_deg < 10.0;
    let colour = colour.unwrap_or_else(|| {
        if dark_skin {
            [HairColour::Black, HairColour::DarkBrown, HairColour::Grey, HairColour::White][r.weighted(&[0.55, 0.2, 0.18, 0.07])]
        } else {
            HairColour::ALL[r.weighted(&[0.2, 0.2, 0.18, 0.12, 0.07, 0.16, 0.07])]
        }
    });
    // Mostly short: SMP clients usually keep a buzz cut, and long hair over a bald patch
    // hides what the labels say is there.
    let length_cm = match r.weighted(&[0.22, 0.5, 0.28]) {
        0 => r.range(0.12, 0.3),
        1 => r.range(0.3, 1.5),
        _ => r.range(1.5, 4.0),
    };
    // Native density by the DOMAIN.md table (PMC6219221), loosely tied to skin tone.
    let native = if skin.ita_deg < -30.0 {
        r.range(140.0, 165.0)
    } else if skin.ita_deg < 28.0 {
        r.range(150.0, 190.0)
    } else {
        r.range(180.0, 235.0)
    };
    Hair {
        colour,
        length_cm,
        native_density_per_cm2: native,
        strand_width_cm: r.range(0.005, 0.009),
        white_fraction: match colour {
            HairColour::Grey => r.range(0.3, 0.7),
            HairColour::White => 1.0,
            _ => r.range(0.0, 0.05),
        },
        whorl_polar_deg: r.range(22.0, 38.0),
        whorl_azimuth_deg: -90.0 + r.range(-18.0, 18.0),
        swirl_deg: r.range(-70.0, 70.0),
        curl: if r.chance(0.2) { r.range(0.2, 0.6) } else { r.range(0.02, 0.15) },
    }
}

fn sample_scar(r: &mut Rng, kind: ScarKind) -> Scar {
    let mut shape = [0.0; 6];
    for s in shape.iter_mut() {
        *s = r.range(0.0, 1.0);
    }
    let (polar, az, size, count) = match kind {
        ScarKind::Fut => (r.range(100.0, 112.0), r.range(45.0, 80.0), r.range(0.12, 0.45), 0),
        ScarKind::Fue => (0.0, 0.0, r.range(0.04, 0.07), 150 + r.below(900) as u32),
        ScarKind::Trauma => (r.range(0.0, 100.0), r.range(-180.0, 180.0), r.range(0.7, 3.0), 0),
    };
    Scar {
        kind,
        polar_deg: polar,
        azimuth_deg: az,
        size_cm: size,
        count,
        lighter_l: r.range(5.0, 18.0),
        pinker_a: r.range(2.0, 12.0),
        shiny: r.chance(0.5),
        shape,
        seed: r.next_u64(),
        // Drawn last so the draws above keep their values.
        relief: r.range(-1.0, 1.0),
    }
}

fn sample_scars(r: &mut Rng, forced: Option<ScarKind>) -> Vec<Scar> {
    let mut scars = Vec::new();
    for (kind, p) in [(ScarKind::Fut, 0.12), (ScarKind::Fue, 0.12), (ScarKind::Trauma, 0.12)] {
        if forced == Some(kind) || r.chance(p) {
            scars.push(sample_scar(r, kind));
        }
    }
    scars
}

fn sample_camera(r: &mut Rng, view: View, radii: [f32; 3]) -> CameraSpec {
    // (azimuth of the camera seen from the head, elevation, target polar, target azimuth)
    let (az, el, tp, ta) = match view {
        View::Top => (r.range(-180.0, 180.0), r.range(58.0, 88.0), r.range(0.0, 22.0), r.range(-180.0, 180.0)),
        View::Front => (90.0 + r.range(-20.0, 20.0), r.range(25.0, 65.0), r.range(40.0, 62.0), 90.0),
        View::Back => (-90.0 + r.range(-25.0, 25.0), r.range(12.0, 60.0), r.range(45.0, 100.0), -90.0),
        View::Left => (180.0 + r.range(-25.0, 25.0), r.range(10.0, 50.0), r.range(55.0, 90.0), 180.0),
        View::Right => (r.range(-25.0, 25.0), r.range(10.0, 50.0), r.range(55.0, 90.0), 0.0),
    };
    let u = ScalpPos::dir(tp, ta);
    let target = v3(u.x * radii[0], u.y * radii[1], u.z * radii[2]);
    // The head's 16 cm width spans 60-170 % of the frame: above 100 % the photo is a, as many real close-ups are.
    // partial crop, as many real close-ups are (the dev photos mostly fill the frame).
    let fill = if r.chance(0.55) { r.range(1.0, 1.7) } else { r.range(0.6, 1.0) };
    let mut roll = r.range(-15.0, 15.0);
    if view == View::Top {
        roll = r.range(-180.0, 180.0);
    } else if r.chance(0.2) {
        roll += 90.0 * (1 + r.below(3)) as f32;
    }
    let (mut sx, mut sy) = (1.0, 1.0);
    if r.chance(0.25) {
        // Some exports squash photos to a square, as the real dev photos were.
        let k = r.range(0.75, 1.3);
        if r.chance(0.5) {
            sx = k
        } else {
            sy = k
        }
    }
    CameraSpec {
        target: [target.x, target.y, target.z],
        azimuth_deg: az,
        elevation_deg: el,
        distance_cm: r.range(25.0, 60.0),
        roll_deg: roll,
        px_per_cm: fill / 16.0, // times the image size at render time
        stretch_x: sx,
        stretch_y: sy,
        shift: [r.range(-0.15, 0.15), r.range(-0.15, 0.15)],
    }
}

/// Unit vector for a camera azimuth/elevation in the head frame.
pub fn direction(az_deg: f32, el_deg: f32) -> V3 {
    let (a, e) = (az_deg.to_radians(), el_deg.to_radians());
    v3(e.cos() * a.cos(), e.cos() * a.sin(), e.sin())
}

fn sample_light(r: &mut Rng, cam: &CameraSpec) -> Light {
    let flash = r.chance(0.45);
    let dir = if flash {
        // On-camera flash: light from (nearly) the camera's direction, hence the glare
        // spot on bare scalp seen in phone photos.
        direction(cam.azimuth_deg + r.range(-8.0, 8.0), cam.elevation_deg + r.range(-8.0, 8.0))
    } else {
        direction(r.range(-180.0, 180.0), r.range(15.0, 85.0))
    };
    Light { dir: [dir.x, dir.y, dir.z], flash, intensity: r.range(0.75, 1.25), ambient: r.range(0.18, 0.5) }
}

fn sample_defects(r: &mut Rng) -> PhotoDefects {
    PhotoDefects {
        white_balance: [r.range(0.85, 1.15), 1.0, r.range(0.82, 1.15)],
        exposure: r.range(0.8, 1.35),
        blur_sigma_px: if r.chance(0.5) { r.range(0.3, 1.8) } else { 0.0 },
        noise_sigma: r.range(0.5, 6.0),
        jpeg_quality: r.range(40.0, 95.99) as u8,
        vignette: r.range(0.0, 0.45),
        shadow: if r.chance(0.25) { [r.range(0.0, 360.0), r.range(-0.4, 0.4), r.range(0.2, 0.55)] } else { [0.0, 0.0, 0.0] },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_are_honoured_and_sampling_is_deterministic() {
        let ov = Overrides {
            view: Some(View::Back),
            pattern: Some(PatternKind::Ludwig),
            skin: Some(ItaClass::Dark),
            hair: None,
            scar: Some(ScarKind::Fut),
            marker: false,
            view_in_name: false,
        };
        let a = Scene::sample(&mut Rng::new(5), &ov);
        let b = Scene::sample(&mut Rng::new(5), &ov);
        assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
        assert_eq!(a.view, View::Back);
        assert_eq!(a.pattern.kind, PatternKind::Ludwig);
        assert_eq!(a.skin.ita_class, ItaClass::Dark);
        assert!(a.scars.iter().any(|s| s.kind == ScarKind::Fut));
        assert!((ita_deg(a.skin.lab[0], a.skin.lab[2]) - a.skin.ita_deg).abs() < 0.01);
    }

    #[test]
    fn every_view_and_pattern_is_drawn() {
        let mut r = Rng::new(9);
        let scenes: Vec<Scene> = (0..400).map(|_| Scene::sample(&mut r, &Overrides::default())).collect();
        for v in View::ALL {
            assert!(scenes.iter().any(|s| s.view == v), "{v:?}");
        }
        for k in PatternKind::ALL {
            assert!(scenes.iter().any(|s| s.pattern.kind == k), "{k:?}");
        }
        for level in 1..=7 {
            assert!(scenes.iter().any(|s| s.pattern.kind == PatternKind::Norwood && s.pattern.stage_level == Some(level)));
        }
        assert_eq!(View::parse("Top-Down"), Some(View::Top));
    }

    #[test]
    fn a_marker_or_a_view_changes_nothing_else_about_the_head() {
        // Scarred heads too, whose hair length is drawn last: one head in any view, with or
        // without the marker, as `synth --patients` promises.
        for seed in 0..40 {
            let head = |view: View, marker: bool| {
                let s = Scene::sample(
                    &mut Rng::new(seed),
                    &Overrides { view: Some(view), scar: Some(ScarKind::Fue), marker, ..Overrides::default() },
                );
                serde_json::to_string(&(&s.pattern, &s.skin, &s.hair, &s.scars, s.head_radii_cm)).unwrap()
            };
            let top = head(View::Top, true);
            for v in View::ALL {
                assert_eq!(head(v, false), top, "seed {seed} {v:?}");
            }
        }
    }

    #[test]
    fn heads_with_a_scar_mostly_have_short_hair() {
        let short = |ov: &Overrides| {
            let scenes: Vec<Scene> = (0..300).map(|i| Scene::sample(&mut Rng::new(i), ov)).collect();
            scenes.iter().filter(|s| s.hair.length_cm <= 0.6).count() as f32 / scenes.len() as f32
        };
        let scarred = short(&Overrides { scar: Some(ScarKind::Trauma), ..Overrides::default() });
        let any = short(&Overrides::default());
        // Without the rule about a third of heads have hair up to 6 mm; with it about 80 %.
        assert!(scarred > 0.7, "{scarred}");
        assert!(any < scarred - 0.2, "{any} vs {scarred}");
    }
}
