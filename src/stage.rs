//! The stage on the Hamilton-Norwood (men) or Ludwig (women) scale, from a patient's per-view
//! fractions to cover and the rules' cut points (`[stage]`, fit for the model's maps when the
//! model carries them), with the evidence that drove it. The scale follows the patient's sex when
//! the practitioner gives it (manifest column `sex`); otherwise it is read from the pattern.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::rules::Rules;

/// The patient's sex as the practitioner gives it: it picks the scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sex {
    Male,
    Female,
}

impl Sex {
    /// `m`, `male`, `man` or `f`, `female`, `woman`, any case.
    pub fn parse(s: &str) -> Option<Sex> {
        match s.to_ascii_lowercase().as_str() {
            "m" | "male" | "man" => Some(Sex::Male),
            "f" | "female" | "woman" => Some(Sex::Female),
            _ => None,
        }
    }
}

impl Stage {
    /// "Norwood IV", "Ludwig II", or "stage unknown".
    pub fn label(&self) -> String {
        match &self.stage {
            Some(s) => format!("{} {s}", if self.scale == "ludwig" { "Ludwig" } else { "Norwood" }),
            None => "stage unknown".into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    /// "hamilton-norwood" or "ludwig".
    pub scale: String,
    /// For example "IV", "III vertex", "II"; `None` when no top, front or back view is known
    /// (the evidence says so): a side view or an unnamed photo cannot be staged.
    pub stage: Option<String>,
    /// "moderate" with a top view, "low" without.
    pub confidence: String,
    pub evidence: Vec<String>,
    /// The patient's sex when the practitioner gave it: it chose the scale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sex: Option<Sex>,
}

/// Norwood or Ludwig from the per-view fractions to cover; `thin` and `all` are the weighted
/// thinning and to-cover fractions. A given `sex` sets the scale (Norwood for men, Ludwig for
/// women); without it a diffuse pattern behind a kept frontal hairline is read as Ludwig.
pub fn stage(cover: &BTreeMap<String, f64>, thin: f64, all: f64, rules: &Rules, sex: Option<Sex>) -> Stage {
    let s = &rules.stage;
    let mut evidence: Vec<String> = cover.iter().map(|(v, f)| format!("{v}: {:.0} % of the visible scalp to cover", f * 100.0)).collect();
    let top = cover.get("top").copied();
    let front = cover.get("front").copied();
    let back = cover.get("back").copied();
    let confidence = if top.is_some() { "moderate" } else { "low" }.to_string();
    let thin_share = if all > 0.0 { thin / all } else { 0.0 };
    let front_kept = front.is_none_or(|f| f < s.affected);
    let diffuse = all >= s.affected && thin_share >= s.diffuse_share && front_kept;
    let staged_views = top.is_some() || front.is_some() || back.is_some();
    let ludwig = match sex {
        Some(Sex::Female) => {
            evidence.push(if front_kept {
                "the patient is a woman: the Ludwig scale".to_string()
            } else {
                "the patient is a woman: the Ludwig scale (the front shows loss too, which it does not grade)".to_string()
            });
            true
        }
        Some(Sex::Male) => {
            if diffuse {
                evidence.push(format!(
                    "thinning is {:.0} % of the loss behind a kept frontal hairline (a diffuse pattern); the patient is a man: the Norwood scale",
                    thin_share * 100.0
                ));
            }
            false
        }
        None => {
            if diffuse {
                evidence.push(format!(
                    "thinning is {:.0} % of the loss and the frontal hairline is kept: a diffuse (female) pattern; give the patient's sex in the manifest to set the scale",
                    thin_share * 100.0
                ));
            }
            diffuse
        }
    };
    if ludwig && (staged_views || sex.is_none()) {
        let l = top.unwrap_or(all);
        let stage = if l < s.ludwig_upper[0] {
            "I"
        } else if l < s.ludwig_upper[1] {
            "II"
        } else {
            "III"
        };
        return Stage { scale: "ludwig".into(), stage: Some(stage.into()), confidence, evidence, sex };
    }
    const NAMES: [&str; 7] = ["I", "II", "III", "IV", "V", "VI", "VII"];
    if !staged_views {
        evidence.push("no top, front or back view known: the stage cannot be read; name the views in the file names or a manifest".into());
        let scale = if ludwig { "ludwig" } else { "hamilton-norwood" };
        return Stage { scale: scale.into(), stage: None, confidence: "none".into(), evidence, sex };
    }
    let stage = match (top, front, back) {
        (Some(t), _, b) => {
            let i = s.norwood_top_upper.iter().position(|&u| t < u).unwrap_or(6);
            if i <= 2 && front_kept && b.is_some_and(|b| b >= s.affected) {
                evidence.push("crown loss with the front kept: the vertex variant".into());
                "III vertex".to_string()
            } else {
                evidence.push(format!("top-view loss {:.0} % sets the stage", t * 100.0));
                NAMES[i].to_string()
            }
        }
        (None, Some(f), b) if f >= s.affected => {
            evidence.push("no top view: the front shows recession, so at least II; the top decides beyond".into());
            if b.is_some_and(|b| b >= s.affected) { "IV" } else { "II" }.to_string()
        }
        (None, _, Some(b)) if b >= s.affected => {
            evidence.push("no top view: crown loss with the front kept".into());
            "III vertex".to_string()
        }
        _ => {
            evidence.push("no view shows loss above the affected threshold".into());
            "I".to_string()
        }
    };
    Stage { scale: "hamilton-norwood".into(), stage: Some(stage), confidence, evidence, sex }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn views(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn norwood_and_ludwig_table() {
        let r = Rules::default();
        // (views, thinning, all, scale, stage)
        type Case = (&'static [(&'static str, f64)], f64, f64, &'static str, &'static str);
        let cases: [Case; 11] = [
            (&[("top", 0.05)], 0.0, 0.05, "hamilton-norwood", "I"),
            (&[("top", 0.15)], 0.02, 0.15, "hamilton-norwood", "II"),
            (&[("top", 0.30)], 0.05, 0.30, "hamilton-norwood", "III"),
            (&[("top", 0.45)], 0.05, 0.45, "hamilton-norwood", "IV"),
            (&[("top", 0.60)], 0.05, 0.60, "hamilton-norwood", "V"),
            (&[("top", 0.70)], 0.05, 0.70, "hamilton-norwood", "VI"),
            (&[("top", 0.90)], 0.05, 0.90, "hamilton-norwood", "VII"),
            (&[("top", 0.15), ("back", 0.30), ("front", 0.02)], 0.05, 0.2, "hamilton-norwood", "III vertex"),
            (&[("front", 0.30)], 0.0, 0.30, "hamilton-norwood", "II"),
            (&[("top", 0.40), ("front", 0.05)], 0.30, 0.40, "ludwig", "II"),
            (&[("top", 0.70)], 0.50, 0.70, "ludwig", "III"),
        ];
        for (v, thin, all, scale, stage_name) in cases {
            let s = stage(&views(v), thin, all, &r, None);
            assert_eq!((s.scale.as_str(), s.stage.as_deref()), (scale, Some(stage_name)), "{v:?}");
            assert!(!s.evidence.is_empty());
        }
        // A receded front rules out Ludwig even when thinning dominates.
        assert_eq!(stage(&views(&[("top", 0.40), ("front", 0.30)]), 0.3, 0.4, &r, None).scale, "hamilton-norwood");
        assert_eq!(stage(&views(&[("back", 0.05)]), 0.0, 0.05, &r, None).confidence, "low");
        // Side views or unnamed photos only: unknown, never "I".
        for v in [&[("left", 0.6)][..], &[]] {
            let s = stage(&views(v), 0.0, 0.6, &r, None);
            assert_eq!((s.stage.as_deref(), s.label().as_str()), (None, "stage unknown"), "{v:?}");
            assert!(s.evidence.iter().any(|e| e.contains("name the views")));
        }
    }

    #[test]
    fn a_given_sex_sets_the_scale() {
        let r = Rules::default();
        let diffuse = views(&[("top", 0.40), ("front", 0.05)]);
        // Without it the diffuse pattern reads as Ludwig; a man is staged on the Norwood scale.
        assert_eq!(stage(&diffuse, 0.3, 0.4, &r, None).label(), "Ludwig II");
        let man = stage(&diffuse, 0.3, 0.4, &r, Some(Sex::Male));
        assert_eq!((man.label().as_str(), man.sex), ("Norwood IV", Some(Sex::Male)));
        assert!(man.evidence.iter().any(|e| e.contains("the patient is a man")), "{:?}", man.evidence);
        // A woman is staged on the Ludwig scale even with little thinning or a receded front.
        let woman = stage(&views(&[("top", 0.40), ("front", 0.30)]), 0.05, 0.4, &r, Some(Sex::Female));
        assert_eq!(woman.label(), "Ludwig II");
        assert!(woman.evidence.iter().any(|e| e.contains("does not grade")), "{:?}", woman.evidence);
        assert_eq!(stage(&views(&[("top", 0.02)]), 0.0, 0.02, &r, Some(Sex::Female)).label(), "Ludwig I");
        // Side views only: still unknown, on her scale.
        let side = stage(&views(&[("left", 0.5)]), 0.4, 0.5, &r, Some(Sex::Female));
        assert_eq!((side.scale.as_str(), side.stage.as_deref()), ("ludwig", None));
        for (text, sex) in [("M", Some(Sex::Male)), ("female", Some(Sex::Female)), ("Woman", Some(Sex::Female)), ("x", None), ("", None)] {
            assert_eq!(Sex::parse(text), sex, "{text}");
        }
    }
}
