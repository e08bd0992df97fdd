//! The draft SMP treatment: zones to treat with target densities, needles and pigment; the
//! number of sessions with every reason spelled out; hours and impressions per session; the
//! schedule with dates and aftercare. Table-driven from [`Rules`], a pure function of a
//! patient's [`Fusion`], so every rule has a table test.

use chrono::{Days, Months, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::measure::Interval;
use crate::patient::Fusion;
use crate::rules::Rules;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub sessions: u32,
    /// Why that many: the base and each rule that added one.
    pub reasons: Vec<Reason>,
    pub zones: Vec<ZonePlan>,
    /// `None` when the area to cover is unknown (no SALT view and no scale).
    pub impressions_total: Option<f64>,
    pub schedule: Vec<Session>,
    pub pigment: String,
    pub needle_depth: String,
    pub touch_up: String,
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    pub rule: String,
    pub sessions: i32,
    pub why: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZonePlan {
    /// "hairline", "bare", "thinning" or "scar".
    pub kind: String,
    /// `None` when the patient's area to cover is unknown.
    pub area_cm2: Option<Interval>,
    /// Mean target impressions per cm² over the zone.
    pub target_per_cm2: f64,
    pub impressions: Option<f64>,
    pub needle: String,
    pub note: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub number: u32,
    /// Days after the first session.
    pub day: u32,
    /// Calendar date, with --start-date.
    pub date: Option<String>,
    pub purpose: String,
    pub share: f64,
    /// `None` (with `hours`) when the area to cover is unknown.
    pub impressions: Option<f64>,
    pub hours: Option<f64>,
    pub pigment: String,
    pub aftercare: Vec<String>,
}

/// Zones to treat: the area to cover split by class, the hairline band carved out of the bare
/// area when the front has receded, scars with their blending margin. Empty when there is
/// nothing to cover; zones without areas (but with their densities and needles) when the
/// patient's area to cover is unknown.
pub fn zones(f: &Fusion, rules: &Rules) -> Vec<ZonePlan> {
    let d = &rules.density;
    let n = &rules.needles;
    let all = f.thinning_fraction + f.bare_fraction + f.scar_fraction;
    if all <= 0.0 || f.area_to_cover_cm2.is_some_and(|a| a.value <= 0.0) {
        return Vec::new();
    }
    let part = |x: f64| f.area_to_cover_cm2.map(|a| a.scale(x / all));
    let with = |area: Option<Interval>, target: f64| (area, area.map(|a| a.value * target));
    let mut out = Vec::new();
    let mut bare = part(f.bare_fraction);
    // The hairline band: present when the front view shows recession (or, without a front view,
    // when the bare area is large enough to include it).
    let receded = f.front_loss.map(|x| x >= rules.stage.affected).unwrap_or(false);
    let band = d.hairline_band_cm * d.hairline_length_cm;
    if receded && f.bare_fraction > 0.0 {
        let mean_share = (d.hairline_front_share + 1.0) / 2.0;
        let target = d.full_per_cm2 * mean_share;
        let area = bare.map(|b| Interval { value: band.min(b.value), low: band.min(b.low), high: band.min(b.high) });
        let (area_cm2, impressions) = with(area, target);
        out.push(ZonePlan {
            kind: "hairline".into(),
            area_cm2,
            target_per_cm2: target,
            impressions,
            needle: n.hairline.clone(),
            note: format!(
                "soft, irregular front edge: {:.0} % of full density at the front rising to full over {:.1} cm; never a straight line",
                d.hairline_front_share * 100.0,
                d.hairline_band_cm
            ),
        });
        bare = bare.zip(area).map(|(b, h)| Interval { value: b.value - h.value, low: (b.low - h.low).max(0.0), high: b.high - h.high });
    }
    if f.bare_fraction > 0.0 && bare.is_none_or(|b| b.value > 0.0) {
        let (area_cm2, impressions) = with(bare, d.full_per_cm2);
        out.push(ZonePlan {
            kind: "bare".into(),
            area_cm2,
            target_per_cm2: d.full_per_cm2,
            impressions,
            needle: n.bare.clone(),
            note: "full density: dots about 1 mm apart".into(),
        });
    }
    if f.thinning_fraction > 0.0 {
        let native = f.density_on_hair.filter(|x| *x > 0.0).unwrap_or(d.native_per_cm2);
        let existing = f.density_on_thinning.unwrap_or(native / 2.0).clamp(0.0, native);
        let target = d.full_per_cm2 * (1.0 - existing / native);
        let (area_cm2, impressions) = with(part(f.thinning_fraction), target);
        out.push(ZonePlan {
            kind: "thinning".into(),
            area_cm2,
            target_per_cm2: target,
            impressions,
            needle: n.thinning.clone(),
            note: format!("fills the gap between the existing {existing:.0} hairs/cm² and the {native:.0} on full hair, to blend in"),
        });
    }
    if f.scar_fraction > 0.0 {
        // A circle of the scar's area: its rim times the margin is the least blending area;
        // long strip scars have more rim.
        let margin = |x: f64| 2.0 * (std::f64::consts::PI * x).sqrt() * d.scar_margin_cm + std::f64::consts::PI * d.scar_margin_cm.powi(2);
        let area = part(f.scar_fraction).map(|a| Interval {
            value: a.value + margin(a.value),
            low: a.low + margin(a.low),
            high: a.high + margin(a.high),
        });
        let (area_cm2, impressions) = with(area, d.full_per_cm2);
        out.push(ZonePlan {
            kind: "scar".into(),
            area_cm2,
            target_per_cm2: d.full_per_cm2,
            impressions,
            needle: n.scar.clone(),
            note: format!(
                "scar plus a {:.1} cm blended margin (at least; more for strip scars); scar tissue takes pigment unpredictably",
                d.scar_margin_cm
            ),
        });
    }
    out
}

/// The number of sessions and why, before the area rule (which needs the impressions).
pub fn base_sessions(f: &Fusion, rules: &Rules) -> Vec<Reason> {
    let s = &rules.sessions;
    let mut r = vec![Reason {
        rule: "base".into(),
        sessions: s.base as i32,
        why: "usually 3 sessions; even a small area takes 3-4 for lasting retention".into(),
    }];
    if f.scar_fraction > 0.0 && s.scar_extra > 0 {
        r.push(Reason {
            rule: "scars".into(),
            sessions: s.scar_extra as i32,
            why: "scar tissue takes pigment unpredictably (scars take 2-4 sessions)".into(),
        });
    }
    let all = f.thinning_fraction + f.bare_fraction + f.scar_fraction;
    if all > 0.0 && f.thinning_fraction / all >= s.diffuse_share && s.diffuse_extra > 0 {
        r.push(Reason {
            rule: "diffuse-thinning".into(),
            sessions: s.diffuse_extra as i32,
            why: format!(
                "{:.0} % of the area is thinning over existing hair: dots between hairs build up slower",
                100.0 * f.thinning_fraction / all
            ),
        });
    }
    if let Some(skin) = &f.skin {
        if s.light_skin_classes.contains(&skin.ita_class) && s.light_skin_extra > 0 {
            r.push(Reason {
                rule: "light-skin".into(),
                sessions: s.light_skin_extra as i32,
                why: format!(
                    "{} skin (ITA {:.0}°): diluted pigment built up over more passes to avoid a blue shift",
                    skin.ita_class.replace('_', " "),
                    skin.ita_deg
                ),
            });
        }
        if s.dark_skin_classes.contains(&skin.ita_class) && s.dark_skin_extra > 0 {
            r.push(Reason {
                rule: "dark-skin".into(),
                sessions: s.dark_skin_extra as i32,
                why: format!(
                    "{} skin (ITA {:.0}°): bolder impressions, checked for retention in an extra pass",
                    skin.ita_class, skin.ita_deg
                ),
            });
        }
    }
    r
}

fn count(reasons: &[Reason]) -> u32 {
    reasons.iter().map(|r| r.sessions).sum::<i32>().max(1) as u32
}

/// Hours for `impressions` at the rules' rate, not below the minimum session.
fn hours(impressions: f64, rules: &Rules) -> f64 {
    (impressions / rules.sessions.impressions_per_hour).max(rules.sessions.min_hours)
}

/// Session days: the second after `interval_days`, the third and later `third_interval_days`
/// after the one before.
pub fn session_days(n: u32, rules: &Rules) -> Vec<u32> {
    let s = &rules.sessions;
    let mut days = vec![0u32];
    for k in 1..n {
        let gap = if k == 1 { s.interval_days } else { s.third_interval_days };
        days.push(days[k as usize - 1].saturating_add(gap));
    }
    days
}

/// The aftercare attached to a session.
pub fn aftercare(number: u32, last: bool, rules: &Rules) -> Vec<String> {
    let a = &rules.aftercare;
    let mut v: Vec<String> = a.before_each.iter().chain(&a.after_each).cloned().collect();
    if last {
        v.extend(a.after_final.iter().cloned());
    } else {
        v.extend(a.between.iter().cloned());
    }
    if number == 1 {
        v.insert(0, "Before the first session: a test patch of the pigment dilution is advised.".into());
    }
    v
}

/// The whole plan. `start` dates the sessions. Nothing to cover drafts no sessions; an unknown
/// area to cover drafts the sessions the rules ask for without impressions or hours.
pub fn plan(f: &Fusion, rules: &Rules, start: Option<NaiveDate>) -> Plan {
    let s = &rules.sessions;
    let zones = zones(f, rules);
    let skin_class = f.skin.as_ref().map(|k| k.ita_class.as_str());
    let pigment = rules.pigment.for_class(skin_class).to_string();
    if zones.is_empty() {
        return Plan {
            sessions: 0,
            reasons: Vec::new(),
            zones,
            impressions_total: Some(0.0),
            schedule: Vec::new(),
            pigment,
            needle_depth: rules.needles.depth.clone(),
            touch_up: "none: no treatment is drafted".into(),
            warnings: vec!["no area to cover was found: no treatment is drafted".into()],
        };
    }
    // `+ 0.0`: an empty f64 sum is -0.0.
    let total: Option<f64> = zones.iter().map(|z| z.impressions).sum::<Option<f64>>().map(|t| t + 0.0);
    let mut reasons = base_sessions(f, rules);
    let mut warnings = Vec::new();
    // The area rule: add sessions while the largest session would run past the longest one.
    let mut n = count(&reasons).min(s.maximum);
    let largest = |n: u32| rules.sessions.build_up(n).iter().cloned().fold(0.0, f64::max) * total.unwrap_or(0.0);
    let mut added = 0;
    while largest(n) / s.impressions_per_hour > s.max_hours && n < s.maximum {
        n += 1;
        added += 1;
    }
    if added > 0 {
        reasons.push(Reason {
            rule: "large-area".into(),
            sessions: added,
            why: format!("{:.0} impressions: the largest session would pass {:.0} hours", total.unwrap_or(0.0), s.max_hours),
        });
    }
    if count(&reasons) > s.maximum {
        warnings.push(format!("the rules ask for {} sessions; capped at the maximum of {}", count(&reasons), s.maximum));
    }
    if largest(n) / s.impressions_per_hour > s.max_hours {
        warnings.push(format!("even at {n} sessions the largest runs past {:.0} hours: split it over two days", s.max_hours));
    }
    if total.is_none() {
        warnings.push(
            "the area to cover is unknown, so impressions and hours are not estimated and a large area could need more sessions; name the views (top, back, left, right) or give a scale"
                .into(),
        );
    }
    if f.scar_fraction > 0.0 {
        warnings.push(format!("scars must be healed for at least {} months, flat and smooth, before SMP", s.scar_healed_months));
    }
    if f.skin.is_some() {
        warnings.push("the skin tone comes from an uncalibrated photo (about 14° median ITA error on renders with random exposure): confirm it by eye before choosing the pigment".into());
    }
    let days = session_days(n, rules);
    let shares = s.build_up(n);
    let schedule: Vec<Session> = (0..n)
        .map(|k| {
            let number = k + 1;
            let impressions = total.map(|t| t * shares[k as usize]);
            let purpose = s.purposes.get(k as usize).or(s.purposes.last()).cloned().unwrap_or_default();
            let pig = if k == 0 && rules.pigment.first_session_lighter {
                format!("{pigment}; one step lighter for the base")
            } else {
                pigment.clone()
            };
            Session {
                number,
                day: days[k as usize],
                date: start.and_then(|d| d.checked_add_days(Days::new(days[k as usize] as u64))).map(|d| d.to_string()),
                purpose,
                share: shares[k as usize],
                impressions,
                hours: impressions.map(|i| hours(i, rules)),
                pigment: pig,
                aftercare: aftercare(number, number == n, rules),
            }
        })
        .collect();
    let [y0, y1] = s.touch_up_years;
    let last_day = *days.last().unwrap_or(&0);
    let touch_up = match start.and_then(|d| d.checked_add_days(Days::new(last_day as u64))) {
        Some(end) => {
            let a = end.checked_add_months(Months::new(y0.saturating_mul(12))).map(|d| d.to_string()).unwrap_or_default();
            let b = end.checked_add_months(Months::new(y1.saturating_mul(12))).map(|d| d.to_string()).unwrap_or_default();
            format!("touch-up every {y0}-{y1} years: between {a} and {b}")
        }
        None => format!("touch-up every {y0}-{y1} years after the last session"),
    };
    Plan {
        sessions: n,
        reasons,
        zones,
        impressions_total: total,
        schedule,
        pigment,
        needle_depth: rules.needles.depth.clone(),
        touch_up,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::SkinTone;
    use crate::patient::{HairLoss, Stage};

    fn fusion(thin: f64, bare: f64, scar: f64, area: f64) -> Fusion {
        Fusion {
            views: vec![],
            missing_views: vec![],
            hair_loss: HairLoss { percent: Some(0.0), severity: "none".into(), weight_covered: 100.0, method: String::new() },
            thinning_fraction: thin,
            bare_fraction: bare,
            scar_fraction: scar,
            area_to_cover_cm2: Some(Interval { value: area, low: area * 0.8, high: area * 1.2 }),
            area_method: String::new(),
            stage: Stage {
                scale: "hamilton-norwood".into(),
                stage: Some("IV".into()),
                confidence: "moderate".into(),
                evidence: vec![],
                sex: None,
            },
            skin: None,
            density_on_hair: Some(160.0),
            density_on_thinning: Some(40.0),
            front_loss: None,
            warnings: vec![],
        }
    }

    fn skin(class: &str) -> Option<SkinTone> {
        Some(SkinTone { ita_deg: 0.0, ita_class: class.into(), lab: [0.0; 3], cells: 100 })
    }

    #[test]
    fn session_count_rules_table() {
        let r = Rules::default();
        // (thinning, bare, scar, area cm², skin, expected sessions, expected rules)
        type Case = (f64, f64, f64, f64, Option<&'static str>, u32, &'static [&'static str]);
        let cases: [Case; 7] = [
            (0.0, 0.3, 0.0, 40.0, None, 3, &["base"]),
            (0.0, 0.3, 0.05, 40.0, None, 4, &["base", "scars"]),
            (0.4, 0.1, 0.0, 40.0, None, 4, &["base", "diffuse-thinning"]),
            (0.0, 0.3, 0.0, 40.0, Some("very_light"), 4, &["base", "light-skin"]),
            (0.0, 0.3, 0.0, 40.0, Some("dark"), 4, &["base", "dark-skin"]),
            (0.0, 0.3, 0.0, 40.0, Some("tan"), 3, &["base"]),
            // 400 cm² at 100/cm²: 40,000 impressions; 40 % in one session is 4.6 h at 3,500/h:
            // fits in 3. 470 cm² needs a 4th (40 % of 47,000 is 5.4 h; 35 % is 4.7 h).
            (0.0, 0.8, 0.0, 400.0, None, 3, &["base"]),
        ];
        for (t, b, s, a, sk, n, rules_hit) in cases {
            let mut f = fusion(t, b, s, a);
            if let Some(c) = sk {
                f.skin = skin(c);
            }
            let p = plan(&f, &r, None);
            let hit: Vec<&str> = p.reasons.iter().map(|x| x.rule.as_str()).collect();
            assert_eq!((p.sessions, hit.as_slice()), (n, rules_hit), "{t} {b} {s} {a} {sk:?}");
        }
        let p = plan(&fusion(0.0, 0.9, 0.0, 470.0), &r, None);
        assert_eq!(p.sessions, 4);
        assert_eq!(p.reasons.last().unwrap().rule, "large-area");
        // Scars + diffuse + light skin + large area: capped at the maximum, with a warning.
        let mut f = fusion(0.5, 0.2, 0.1, 700.0);
        f.skin = skin("very_light");
        let p = plan(&f, &r, None);
        assert_eq!(p.sessions, 5);
        assert!(p.warnings.iter().any(|w| w.contains("capped")), "{:?}", p.warnings);
    }

    #[test]
    fn zone_densities_follow_the_rules() {
        let r = Rules::default();
        let mut f = fusion(0.2, 0.2, 0.1, 100.0);
        f.front_loss = Some(0.3);
        let z = zones(&f, &r);
        let kinds: Vec<&str> = z.iter().map(|z| z.kind.as_str()).collect();
        assert_eq!(kinds, ["hairline", "bare", "thinning", "scar"]);
        // Bare is 40 cm² of the 100; the hairline band 1.5 x 16 = 24 cm² of it at 80 % mean.
        let area = |k: usize| z[k].area_cm2.unwrap();
        assert_eq!(area(0).value, 24.0);
        assert_eq!(z[0].target_per_cm2, 80.0);
        assert!((area(1).value - 16.0).abs() < 1e-9);
        assert_eq!(z[1].target_per_cm2, 100.0);
        // Thinning: 40 of 160 hairs/cm² present, so 75 % of full.
        assert_eq!(z[2].target_per_cm2, 75.0);
        assert!((z[2].impressions.unwrap() - 40.0 * 75.0).abs() < 1e-9);
        // Scar 20 cm² plus a 1 cm margin around a circle of that area.
        let expected = 20.0 + 2.0 * (std::f64::consts::PI * 20.0).sqrt() + std::f64::consts::PI;
        assert!((area(3).value - expected).abs() < 1e-9);
        assert!(z.iter().map(|z| z.area_cm2.unwrap()).all(|a| a.low <= a.value && a.value <= a.high));
        // No recession: no hairline band.
        f.front_loss = Some(0.02);
        assert_eq!(zones(&f, &r)[0].kind, "bare");
    }

    #[test]
    fn schedule_dates_hours_and_aftercare() {
        let r = Rules::default();
        let start = NaiveDate::from_ymd_opt(2026, 12, 1);
        let p = plan(&fusion(0.0, 0.5, 0.0, 100.0), &r, start);
        let dates: Vec<&str> = p.schedule.iter().map(|s| s.date.as_deref().unwrap()).collect();
        assert_eq!(dates, ["2026-12-01", "2026-12-15", "2027-01-14"]);
        assert_eq!(p.schedule.iter().map(|s| s.day).collect::<Vec<_>>(), [0, 14, 44]);
        // 10,000 impressions: 4,000 / 4,000 / 2,000, each under 2 h at 3,500 an hour: raised to 2 h.
        assert_eq!(p.impressions_total, Some(10_000.0));
        assert_eq!(p.schedule.iter().map(|s| s.impressions.unwrap()).collect::<Vec<_>>(), [4000.0, 4000.0, 2000.0]);
        assert!(p.schedule.iter().all(|s| s.hours == Some(2.0)));
        let big = plan(&fusion(0.0, 0.5, 0.0, 400.0), &r, None);
        assert_eq!(big.schedule[0].hours, Some(16_000.0 / 3500.0));
        assert_eq!(p.schedule.iter().map(|s| s.purpose.as_str()).collect::<Vec<_>>(), ["light base", "density", "refine"]);
        assert!(p.schedule[0].pigment.contains("one step lighter"));
        assert!(p.schedule[1].aftercare.iter().any(|a| a.contains("Between sessions")));
        let last = &p.schedule[2].aftercare;
        assert!(
            last.iter().any(|a| a.contains("28 days"))
                && last.iter().any(|a| a.contains("SPF"))
                && !last.iter().any(|a| a.contains("Between"))
        );
        assert!(p.touch_up.contains("2031-01-14") && p.touch_up.contains("2033-01-14"), "{}", p.touch_up);
        assert_eq!(plan(&fusion(0.0, 0.5, 0.0, 100.0), &r, None).schedule[1].date, None);
    }

    #[test]
    fn pigment_by_skin_class_and_nothing_to_cover() {
        let r = Rules::default();
        let mut f = fusion(0.0, 0.5, 0.0, 100.0);
        f.skin = skin("dark");
        assert!(plan(&f, &r, None).pigment.contains("undiluted"));
        f.skin = skin("very_light");
        assert!(plan(&f, &r, None).pigment.contains("1 part pigment to 4"));
        f.skin = None;
        assert!(plan(&f, &r, None).pigment.contains("test patch"));
    }

    #[test]
    fn nothing_to_cover_drafts_no_sessions() {
        let r = Rules::default();
        // No loss found, or loss with a measured area of zero: no zones, no sessions, no schedule.
        for f in [fusion(0.0, 0.0, 0.0, 0.0), fusion(0.0, 0.0, 0.0, 50.0), fusion(0.1, 0.2, 0.0, 0.0)] {
            let p = plan(&f, &r, NaiveDate::from_ymd_opt(2026, 12, 1));
            assert!(p.zones.is_empty() && p.schedule.is_empty() && p.reasons.is_empty(), "{p:?}");
            assert_eq!((p.sessions, p.impressions_total), (0, Some(0.0)));
            assert!(p.warnings.iter().any(|w| w.contains("no treatment is drafted")));
            assert!(!p.touch_up.contains("every"), "no touch-up of a treatment never drafted: {}", p.touch_up);
        }
    }

    #[test]
    fn an_unknown_area_drafts_sessions_without_impressions_never_zero() {
        let r = Rules::default();
        let mut f = fusion(0.1, 0.3, 0.0, 0.0);
        f.area_to_cover_cm2 = None;
        f.front_loss = Some(0.3);
        let p = plan(&f, &r, None);
        assert_eq!(p.sessions, 3);
        assert_eq!(p.impressions_total, None);
        assert_eq!(p.zones.iter().map(|z| z.kind.as_str()).collect::<Vec<_>>(), ["hairline", "bare", "thinning"]);
        assert!(p.zones.iter().all(|z| z.area_cm2.is_none() && z.impressions.is_none() && z.target_per_cm2 > 0.0));
        assert!(p.schedule.iter().all(|s| s.impressions.is_none() && s.hours.is_none()));
        assert!(p.warnings.iter().any(|w| w.contains("area to cover is unknown")));
        let json = serde_json::to_string(&p).unwrap();
        assert!(!json.contains("-0.0") && !json.contains(":0.0,\"hours\""), "{json}");
    }
}
