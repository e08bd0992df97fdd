//! The treatment rules: every number and text the plan uses, with its default in
//! `src/rules.toml` (each citing its source in DOMAIN.md) and a clinic's overrides merged on
//! top from a TOML file. Unknown keys are refused, so a typo never silently keeps a default.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The default rules file, printed by `scalpmap rules --default`.
pub const DEFAULT_TOML: &str = include_str!("rules.toml");

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    pub scale: ScaleRules,
    pub views: ViewRules,
    pub loss: LossRules,
    pub stage: StageRules,
    pub sessions: SessionRules,
    pub density: DensityRules,
    pub needles: NeedleRules,
    pub pigment: PigmentRules,
    pub aftercare: AftercareRules,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleRules {
    pub head_breadth_cm: f64,
    pub head_breadth_low_cm: f64,
    pub head_breadth_high_cm: f64,
    pub marker_side_cm: f64,
    pub correct_top_view: bool,
    pub max_tilt_deg: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewRules {
    pub top: f64,
    pub back: f64,
    pub left: f64,
    pub right: f64,
    pub scalp_cm2: f64,
    pub scalp_sd_cm2: f64,
}

impl ViewRules {
    /// SALT weight in percent of a view name; 0 for front and unknown views.
    pub fn weight(&self, view: &str) -> f64 {
        match view {
            "top" => self.top,
            "back" => self.back,
            "left" => self.left,
            "right" => self.right,
            _ => 0.0,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LossRules {
    pub thinning_weight: f64,
    pub fraction_uncertainty: f64,
    pub severity_upper: Vec<f64>,
    pub severity_names: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageRules {
    pub affected: f64,
    pub norwood_top_upper: Vec<f64>,
    pub diffuse_share: f64,
    pub ludwig_upper: Vec<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRules {
    pub base: u32,
    pub maximum: u32,
    pub scar_extra: u32,
    pub scar_healed_months: u32,
    pub diffuse_extra: u32,
    pub diffuse_share: f64,
    pub light_skin_extra: u32,
    pub light_skin_classes: Vec<String>,
    pub dark_skin_extra: u32,
    pub dark_skin_classes: Vec<String>,
    pub min_hours: f64,
    pub max_hours: f64,
    pub impressions_per_hour: f64,
    pub interval_days: u32,
    pub third_interval_days: u32,
    pub touch_up_years: [u32; 2],
    pub build_up_2: Vec<f64>,
    pub build_up_3: Vec<f64>,
    pub build_up_4: Vec<f64>,
    pub build_up_5: Vec<f64>,
    pub purposes: Vec<String>,
}

impl SessionRules {
    /// Each session's share of the impressions for `n` sessions (even shares beyond the table).
    pub fn build_up(&self, n: u32) -> Vec<f64> {
        let table = match n {
            2 => &self.build_up_2,
            3 => &self.build_up_3,
            4 => &self.build_up_4,
            5 => &self.build_up_5,
            _ => return vec![1.0 / n.max(1) as f64; n.max(1) as usize],
        };
        let sum: f64 = table.iter().sum();
        table.iter().map(|s| s / sum).collect()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DensityRules {
    pub full_per_cm2: f64,
    pub hairline_front_share: f64,
    pub hairline_band_cm: f64,
    pub hairline_length_cm: f64,
    pub scar_margin_cm: f64,
    pub native_per_cm2: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeedleRules {
    pub hairline: String,
    pub bare: String,
    pub thinning: String,
    pub scar: String,
    pub depth: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PigmentRules {
    pub very_light: String,
    pub light: String,
    pub intermediate: String,
    pub tan: String,
    pub brown: String,
    pub dark: String,
    pub unknown: String,
    pub first_session_lighter: bool,
}

impl PigmentRules {
    /// The dilution for an ITA class name (`very_light` ... `dark`), or the unknown advice.
    pub fn for_class(&self, class: Option<&str>) -> &str {
        match class {
            Some("very_light") => &self.very_light,
            Some("light") => &self.light,
            Some("intermediate") => &self.intermediate,
            Some("tan") => &self.tan,
            Some("brown") => &self.brown,
            Some("dark") => &self.dark,
            _ => &self.unknown,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AftercareRules {
    pub before_each: Vec<String>,
    pub after_each: Vec<String>,
    pub between: Vec<String>,
    pub after_final: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("{path}: cannot read the rules file ({why})")]
    Read { path: String, why: String },
    #[error("{path}: {why}; `scalpmap rules --default` prints every key with its default")]
    Invalid { path: String, why: String },
}

impl Default for Rules {
    fn default() -> Rules {
        toml::from_str(DEFAULT_TOML).expect("src/rules.toml is valid (tested)")
    }
}

/// Table `over` merged into `base`, key by key; non-table values replace.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

impl Rules {
    /// The defaults with a clinic's TOML text merged on top; `name` names it in errors.
    pub fn from_overrides(text: &str, name: &str) -> Result<Rules, RulesError> {
        Rules::layered(None, text, name)
    }

    /// The defaults, then the Norwood cut points a model was fit with (`model_cuts`, from its
    /// metadata: cut points belong to the maps they were fit on), then a clinic's TOML text on
    /// top, which wins wherever it names a key.
    pub fn layered(model_cuts: Option<&[f64]>, text: &str, name: &str) -> Result<Rules, RulesError> {
        let invalid = |why: String| RulesError::Invalid { path: name.to_string(), why };
        let over: toml::Table = toml::from_str(text).map_err(|e| invalid(e.to_string().trim().to_string()))?;
        let mut base: toml::Table = toml::from_str(DEFAULT_TOML).expect("src/rules.toml is valid (tested)");
        if let Some(cuts) = model_cuts {
            let mut stage = toml::Table::new();
            stage.insert("norwood_top_upper".into(), toml::Value::Array(cuts.iter().map(|&c| toml::Value::Float(c)).collect()));
            merge(&mut base, toml::Table::from_iter([("stage".to_string(), toml::Value::Table(stage))]));
        }
        merge(&mut base, over);
        let rules: Rules = base.try_into().map_err(|e: toml::de::Error| invalid(e.to_string().trim().to_string()))?;
        rules.check().map_err(invalid)?;
        Ok(rules)
    }

    pub fn load(path: &Path) -> Result<Rules, RulesError> {
        Rules::load_over_model(path, None)
    }

    /// A clinic's file over the defaults and a model's cut points (see [`Rules::layered`]).
    pub fn load_over_model(path: &Path, model_cuts: Option<&[f64]>) -> Result<Rules, RulesError> {
        let bytes = crate::fsio::read_regular(path, 1 << 20, "a rules file is a few kB")
            .map_err(|e| RulesError::Read { path: path.display().to_string(), why: e.to_string() })?;
        let text =
            String::from_utf8(bytes).map_err(|_| RulesError::Read { path: path.display().to_string(), why: "not UTF-8 text".into() })?;
        Rules::layered(model_cuts, &text, &path.display().to_string())
    }

    /// Values that would make the plan meaningless (or its arithmetic overflow).
    fn check(&self) -> Result<(), String> {
        let s = &self.sessions;
        // TOML allows nan and inf; no rule means anything with them.
        fn finite(v: &toml::Value, path: &str) -> Result<(), String> {
            match v {
                toml::Value::Float(f) if !f.is_finite() => Err(format!("{path} must be a finite number")),
                toml::Value::Float(f) if f.abs() > 1e9 => Err(format!("{path} is out of range")),
                toml::Value::Table(t) => {
                    t.iter().try_for_each(|(k, v)| finite(v, &if path.is_empty() { k.clone() } else { format!("{path}.{k}") }))
                }
                toml::Value::Array(a) => a.iter().try_for_each(|v| finite(v, path)),
                _ => Ok(()),
            }
        }
        finite(&toml::Value::try_from(self).map_err(|e| e.to_string())?, "")?;
        if s.maximum > 12 || s.base > 12 {
            return Err("sessions.base and sessions.maximum must be at most 12".into());
        }
        for (k, v) in [("sessions.interval_days", s.interval_days), ("sessions.third_interval_days", s.third_interval_days)] {
            if !(1..=365).contains(&v) {
                return Err(format!("{k} must be between 1 and 365, not {v}"));
            }
        }
        if s.touch_up_years[0] > s.touch_up_years[1] || s.touch_up_years[1] > 50 {
            return Err("sessions.touch_up_years must be [low, high] with low <= high <= 50".into());
        }
        if s.scar_extra > 12 || s.diffuse_extra > 12 || s.light_skin_extra > 12 || s.dark_skin_extra > 12 || s.scar_healed_months > 600 {
            return Err("sessions.*_extra must be at most 12 and sessions.scar_healed_months at most 600".into());
        }
        let shares = [
            ("density.hairline_front_share", self.density.hairline_front_share),
            ("loss.thinning_weight", self.loss.thinning_weight),
            ("loss.fraction_uncertainty", self.loss.fraction_uncertainty),
            ("stage.affected", self.stage.affected),
            ("stage.diffuse_share", self.stage.diffuse_share),
            ("sessions.diffuse_share", s.diffuse_share),
        ];
        for (k, v) in shares {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{k} must be between 0 and 1, not {v}"));
            }
        }
        let nonneg = [
            ("density.hairline_band_cm", self.density.hairline_band_cm),
            ("density.hairline_length_cm", self.density.hairline_length_cm),
            ("density.scar_margin_cm", self.density.scar_margin_cm),
            ("views.top", self.views.top),
            ("views.back", self.views.back),
            ("views.left", self.views.left),
            ("views.right", self.views.right),
            ("views.scalp_sd_cm2", self.views.scalp_sd_cm2),
            ("sessions.min_hours", s.min_hours),
            ("scale.head_breadth_low_cm", self.scale.head_breadth_low_cm),
        ];
        for (k, v) in nonneg {
            if v < 0.0 {
                return Err(format!("{k} must not be negative, not {v}"));
            }
        }
        if !(0.0..90.0).contains(&self.scale.max_tilt_deg) {
            return Err("scale.max_tilt_deg must be from 0 to below 90".into());
        }
        if self.loss.severity_upper.windows(2).any(|w| w[0] > w[1]) {
            return Err("loss.severity_upper must ascend".into());
        }
        let positive = [
            ("scale.head_breadth_cm", self.scale.head_breadth_cm),
            ("scale.marker_side_cm", self.scale.marker_side_cm),
            ("views.scalp_cm2", self.views.scalp_cm2),
            ("sessions.impressions_per_hour", s.impressions_per_hour),
            ("sessions.max_hours", s.max_hours),
            ("density.full_per_cm2", self.density.full_per_cm2),
            ("density.native_per_cm2", self.density.native_per_cm2),
        ];
        for (k, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("{k} must be a positive number, not {v}"));
            }
        }
        if !(self.scale.head_breadth_low_cm <= self.scale.head_breadth_cm && self.scale.head_breadth_cm <= self.scale.head_breadth_high_cm)
        {
            return Err("scale.head_breadth_low_cm <= head_breadth_cm <= head_breadth_high_cm must hold".into());
        }
        if s.base == 0 || s.base > s.maximum {
            return Err(format!("sessions.base ({}) must be at least 1 and at most sessions.maximum ({})", s.base, s.maximum));
        }
        if s.min_hours > s.max_hours {
            return Err("sessions.min_hours must not exceed sessions.max_hours".into());
        }
        if self.loss.severity_upper.len() != self.loss.severity_names.len() || self.loss.severity_upper.is_empty() {
            return Err("loss.severity_upper and loss.severity_names must have the same, non-zero length".into());
        }
        if self.stage.norwood_top_upper.len() != 6 || self.stage.ludwig_upper.len() != 2 {
            return Err("stage.norwood_top_upper needs 6 bounds (I-VI) and stage.ludwig_upper 2 (I, II)".into());
        }
        for (n, t) in [(2, &s.build_up_2), (3, &s.build_up_3), (4, &s.build_up_4), (5, &s.build_up_5)] {
            if t.len() != n || t.iter().any(|x| !(x.is_finite() && *x > 0.0)) {
                return Err(format!("sessions.build_up_{n} needs {n} positive shares"));
            }
        }
        if s.purposes.is_empty() {
            return Err("sessions.purposes must not be empty".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_file_parses_and_passes_its_own_checks() {
        let r = Rules::default();
        r.check().unwrap();
        assert_eq!(Rules::from_overrides("", "empty").unwrap(), r);
        assert_eq!(r.views.top + r.views.back + r.views.left + r.views.right, 100.0);
    }

    #[test]
    fn overrides_change_only_their_keys() {
        let r = Rules::from_overrides("[sessions]\nbase = 4\n[pigment]\ndark = \"clinic mix D\"\n", "clinic.toml").unwrap();
        assert_eq!(r.sessions.base, 4);
        assert_eq!(r.pigment.dark, "clinic mix D");
        assert_eq!(r.sessions.maximum, Rules::default().sessions.maximum);
        assert_eq!(r.density, Rules::default().density);
    }

    #[test]
    fn typos_and_bad_values_are_refused_naming_the_file() {
        let e = Rules::from_overrides("[sessions]\nbsae = 4\n", "clinic.toml").unwrap_err().to_string();
        assert!(e.contains("clinic.toml") && e.contains("bsae") && e.contains("rules --default"), "{e}");
        let e = Rules::from_overrides("[sessions]\nbase = 9\n", "c.toml").unwrap_err().to_string();
        assert!(e.contains("sessions.base"), "{e}");
        let e = Rules::from_overrides("[density]\nfull_per_cm2 = -1.0\n", "c.toml").unwrap_err().to_string();
        assert!(e.contains("full_per_cm2"), "{e}");
        let e = Rules::from_overrides("[density]\nhairline_band_cm = inf\n", "c.toml").unwrap_err().to_string();
        assert!(e.contains("density.hairline_band_cm") && e.contains("finite"), "{e}");
        let e = Rules::from_overrides("[sessions]\nmaximum = 4000000000\n", "c.toml").unwrap_err().to_string();
        assert!(e.contains("at most 12"), "{e}");
        let e = Rules::from_overrides("[sessions]\ntouch_up_years = [9, 4]\n", "c.toml").unwrap_err().to_string();
        assert!(e.contains("touch_up_years"), "{e}");
        let e = Rules::from_overrides("not toml [", "c.toml").unwrap_err().to_string();
        assert!(e.contains("c.toml"), "{e}");
    }

    #[test]
    fn a_models_cut_points_sit_between_the_defaults_and_the_clinic() {
        let cuts = [0.05, 0.15, 0.25, 0.45, 0.6, 0.7];
        let r = Rules::layered(Some(&cuts), "", "none").unwrap();
        assert_eq!(r.stage.norwood_top_upper, cuts.to_vec());
        assert_eq!(r.sessions, Rules::default().sessions, "only the cut points change");
        let clinic = Rules::layered(Some(&cuts), "[stage]\nnorwood_top_upper = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]\n", "c.toml").unwrap();
        assert_eq!(clinic.stage.norwood_top_upper, vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6], "the clinic's file wins");
        let other = Rules::layered(Some(&cuts), "[sessions]\nbase = 4\n", "c.toml").unwrap();
        assert_eq!((other.stage.norwood_top_upper, other.sessions.base), (cuts.to_vec(), 4));
    }

    #[test]
    fn build_up_shares_sum_to_one() {
        let s = Rules::default().sessions;
        for n in 1..=7 {
            let b = s.build_up(n);
            assert_eq!(b.len(), n as usize);
            assert!((b.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
    }
}
