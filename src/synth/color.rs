//! Colour: CIELAB to linear sRGB, the Individual Typology Angle (ITA) and its classes, hair
//! colours, and the linear-to-sRGB encoding table used when a render is quantised.
//!
//! Shading happens in linear RGB; only the final photo is gamma-encoded.

use serde::{Deserialize, Serialize};

/// Skin-tone class by ITA (Chardon 1991; DOMAIN.md "Skin tone from a photo").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItaClass {
    VeryLight,
    Light,
    Intermediate,
    Tan,
    Brown,
    Dark,
}

impl ItaClass {
    pub const ALL: [ItaClass; 6] =
        [ItaClass::VeryLight, ItaClass::Light, ItaClass::Intermediate, ItaClass::Tan, ItaClass::Brown, ItaClass::Dark];

    /// ITA range in degrees; the outer classes are closed at values seen on real skin.
    pub fn range(self) -> (f32, f32) {
        match self {
            ItaClass::VeryLight => (55.0, 70.0),
            ItaClass::Light => (41.0, 55.0),
            ItaClass::Intermediate => (28.0, 41.0),
            ItaClass::Tan => (10.0, 28.0),
            ItaClass::Brown => (-30.0, 10.0),
            ItaClass::Dark => (-55.0, -30.0),
        }
    }

    pub fn of(ita_deg: f32) -> ItaClass {
        match ita_deg {
            x if x > 55.0 => ItaClass::VeryLight,
            x if x > 41.0 => ItaClass::Light,
            x if x > 28.0 => ItaClass::Intermediate,
            x if x > 10.0 => ItaClass::Tan,
            x if x > -30.0 => ItaClass::Brown,
            _ => ItaClass::Dark,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ItaClass::VeryLight => "very_light",
            ItaClass::Light => "light",
            ItaClass::Intermediate => "intermediate",
            ItaClass::Tan => "tan",
            ItaClass::Brown => "brown",
            ItaClass::Dark => "dark",
        }
    }

    pub fn parse(s: &str) -> Option<ItaClass> {
        ItaClass::ALL.into_iter().find(|c| c.name() == s.replace('-', "_"))
    }
}

/// ITA in degrees from L* and b*: atan((L* - 50) / b*) * 180 / pi.
pub fn ita_deg(l: f32, b: f32) -> f32 {
    ((l - 50.0) / b).atan().to_degrees()
}

/// CIELAB (D65) to linear sRGB, clamped to [0, 1].
pub fn lab_to_linear(l: f32, a: f32, b: f32) -> [f32; 3] {
    let fy = (l + 16.0) / 116.0;
    let fx = fy + a / 500.0;
    let fz = fy - b / 200.0;
    let finv = |t: f32| if t > 6.0 / 29.0 { t * t * t } else { 3.0 * (6.0f32 / 29.0).powi(2) * (t - 4.0 / 29.0) };
    let (x, y, z) = (0.95047 * finv(fx), finv(fy), 1.08883 * finv(fz));
    let r = 3.2404542 * x - 1.5371385 * y - 0.4985314 * z;
    let g = -0.969266 * x + 1.8760108 * y + 0.0415560 * z;
    let bl = 0.0556434 * x - 0.2040259 * y + 1.0572252 * z;
    [r.clamp(0.0, 1.0), g.clamp(0.0, 1.0), bl.clamp(0.0, 1.0)]
}

/// Linear sRGB in [0, 1] to CIELAB (D65): the inverse of [`lab_to_linear`].
pub fn linear_to_lab(rgb: [f32; 3]) -> [f32; 3] {
    let [r, g, b] = rgb;
    let x = (0.4124564 * r + 0.3575761 * g + 0.1804375 * b) / 0.95047;
    let y = 0.2126729 * r + 0.7151522 * g + 0.0721750 * b;
    let z = (0.0193339 * r + 0.119192 * g + 0.9503041 * b) / 1.08883;
    let f = |t: f32| if t > (6.0f32 / 29.0).powi(3) { t.cbrt() } else { t / (3.0 * (6.0f32 / 29.0).powi(2)) + 4.0 / 29.0 };
    let (fx, fy, fz) = (f(x), f(y), f(z));
    [116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)]
}

pub fn linear_to_srgb_f(c: f32) -> f32 {
    let c = c.clamp(0.0, 1.0);
    if c <= 0.0031308 {
        12.92 * c
    } else {
        1.055 * c.powf(1.0 / 2.4) - 0.055
    }
}

pub fn srgb_to_linear_f(c: f32) -> f32 {
    if c <= 0.04045 {
        c / 12.92
    } else {
        ((c + 0.055) / 1.055).powf(2.4)
    }
}

/// Linear [0, 1] to 8-bit sRGB through a 4096-entry table: `powf` per pixel would cost
/// more than the rest of the camera model.
pub struct SrgbLut {
    table: Vec<u8>,
}

impl SrgbLut {
    const N: usize = 4096;

    pub fn new() -> SrgbLut {
        let table = (0..Self::N).map(|i| (linear_to_srgb_f(i as f32 / (Self::N - 1) as f32) * 255.0).round() as u8).collect();
        SrgbLut { table }
    }

    pub fn encode(&self, c: f32) -> u8 {
        let i = (c.clamp(0.0, 1.0) * (Self::N - 1) as f32 + 0.5) as usize;
        self.table[i]
    }
}

impl Default for SrgbLut {
    fn default() -> Self {
        SrgbLut::new()
    }
}

/// Hair colours the renderer draws; `Grey` mixes pigmented and white strands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HairColour {
    Black,
    DarkBrown,
    Brown,
    Blond,
    Red,
    Grey,
    White,
}

impl HairColour {
    pub const ALL: [HairColour; 7] = [
        HairColour::Black,
        HairColour::DarkBrown,
        HairColour::Brown,
        HairColour::Blond,
        HairColour::Red,
        HairColour::Grey,
        HairColour::White,
    ];

    /// Typical CIELAB of the strand (pigmented strands for `Grey`).
    pub fn lab(self) -> [f32; 3] {
        match self {
            HairColour::Black => [14.0, 1.0, 2.0],
            HairColour::DarkBrown => [22.0, 4.0, 8.0],
            HairColour::Brown => [34.0, 7.0, 15.0],
            HairColour::Blond => [66.0, 4.0, 26.0],
            HairColour::Red => [33.0, 24.0, 28.0],
            HairColour::Grey => [20.0, 2.0, 5.0],
            HairColour::White => [88.0, 0.0, 6.0],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ita_classes_match_chardon_bounds() {
        assert_eq!(ItaClass::of(60.0), ItaClass::VeryLight);
        assert_eq!(ItaClass::of(45.0), ItaClass::Light);
        assert_eq!(ItaClass::of(30.0), ItaClass::Intermediate);
        assert_eq!(ItaClass::of(20.0), ItaClass::Tan);
        assert_eq!(ItaClass::of(0.0), ItaClass::Brown);
        assert_eq!(ItaClass::of(-40.0), ItaClass::Dark);
        assert!((ita_deg(50.0 + 15.0, 15.0) - 45.0).abs() < 1e-4);
        for c in ItaClass::ALL {
            let (lo, hi) = c.range();
            assert_eq!(ItaClass::of((lo + hi) / 2.0), c);
            assert_eq!(ItaClass::parse(c.name()), Some(c));
        }
    }

    #[test]
    fn lab_white_and_black_and_lut() {
        let w = lab_to_linear(100.0, 0.0, 0.0);
        assert!(w.iter().all(|c| (c - 1.0).abs() < 2e-3), "{w:?}");
        assert_eq!(lab_to_linear(0.0, 0.0, 0.0), [0.0, 0.0, 0.0]);
        let lut = SrgbLut::new();
        assert_eq!(lut.encode(0.0), 0);
        assert_eq!(lut.encode(1.0), 255);
        assert_eq!(lut.encode(0.2158), 128); // sRGB 128 is 0.2158 linear
        assert!((srgb_to_linear_f(linear_to_srgb_f(0.3)) - 0.3).abs() < 1e-5);
    }
}
