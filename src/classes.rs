//! The segmentation classes shared by the renderer, the model contract and the reports.
//!
//! The order is the contract: class `i` is channel `i` of the model output and value `i`
//! in every label map.

use serde::{Deserialize, Serialize};

/// One pixel's class. `repr(u8)` values are the label-map values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum Class {
    /// Not scalp: backdrop, clothes, face below the hairline, ears, neck.
    Background = 0,
    /// Hair-bearing scalp at covering density.
    Hair = 1,
    /// Hair present but thin enough for skin to show through.
    Thinning = 2,
    /// Scalp without (or with almost no) hair.
    Bare = 3,
    /// Scar tissue: hairless, lighter or pinker than skin.
    Scar = 4,
}

impl Class {
    pub const ALL: [Class; 5] = [Class::Background, Class::Hair, Class::Thinning, Class::Bare, Class::Scar];
    pub const COUNT: usize = 5;

    pub fn name(self) -> &'static str {
        match self {
            Class::Background => "background",
            Class::Hair => "hair",
            Class::Thinning => "thinning",
            Class::Bare => "bare",
            Class::Scar => "scar",
        }
    }

    pub fn from_u8(v: u8) -> Option<Class> {
        Class::ALL.get(v as usize).copied()
    }

    /// Whether the pixel lies on the scalp (any class but background).
    pub fn is_scalp(self) -> bool {
        self != Class::Background
    }
}

/// Follicle density, in hairs per cm² of scalp surface, at or above which scalp is `Hair`.
///
/// Chosen at about half the lowest normal density in DOMAIN.md (African descent, 148-160
/// hairs/cm²): clinicians see thinning once roughly half the hair is gone.
pub const HAIR_MIN_PER_CM2: f32 = 75.0;

/// Follicle density below which scalp is `Bare`: a few stray hairs per cm² do not cover
/// anything and an SMP practitioner treats such skin as bald.
pub const THINNING_MIN_PER_CM2: f32 = 15.0;

/// The class of scalp with follicle density `d` (hairs/cm²) that is not scar.
pub fn class_for_density(d: f32) -> Class {
    if d >= HAIR_MIN_PER_CM2 {
        Class::Hair
    } else if d >= THINNING_MIN_PER_CM2 {
        Class::Thinning
    } else {
        Class::Bare
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn density_thresholds_split_the_three_scalp_classes() {
        assert_eq!(class_for_density(230.0), Class::Hair);
        assert_eq!(class_for_density(HAIR_MIN_PER_CM2), Class::Hair);
        assert_eq!(class_for_density(HAIR_MIN_PER_CM2 - 0.01), Class::Thinning);
        assert_eq!(class_for_density(THINNING_MIN_PER_CM2), Class::Thinning);
        assert_eq!(class_for_density(THINNING_MIN_PER_CM2 - 0.01), Class::Bare);
        assert_eq!(class_for_density(0.0), Class::Bare);
    }

    #[test]
    fn label_values_round_trip() {
        for c in Class::ALL {
            assert_eq!(Class::from_u8(c as u8), Some(c));
        }
        assert_eq!(Class::from_u8(5), None);
    }
}
