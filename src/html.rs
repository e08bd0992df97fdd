//! Self-contained HTML: one page per patient (photos with overlays embedded, the zone table,
//! the plan and schedule) and an index per batch. maud escapes every value, so file names and
//! rule texts from a clinic's files cannot inject markup. No external resources: the pages open
//! offline and carry no trackers.

use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::measure::Interval;
use crate::patient::PatientPhoto;
use crate::report::PatientReport;
use crate::zones::Zone;

const STYLE: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;color:#222}\
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}\
th{background:#f3f3f3}.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}.warn{background:#fff4d6;border-left:4px solid #e69f00;padding:.4em .8em;margin:.3em 0}\
.photos{display:flex;flex-wrap:wrap;gap:1em}.photos figure{margin:0;max-width:340px}.photos img{width:100%;border:1px solid #ccc}\
figcaption{font-size:.9em;color:#555}.draft{color:#a00;font-weight:600}ul{margin:.2em 0;padding-left:1.2em}";

/// An overlay to show: its caption and a data URI (JPEG, base64).
pub struct Picture {
    pub caption: String,
    pub data_uri: Option<String>,
}

fn interval(i: &Interval, unit: &str) -> String {
    format!("{:.0} {unit} ({:.0}-{:.0})", i.value, i.low, i.high)
}

/// An interval that may be unknown: "unknown", never 0.
fn maybe_interval(i: Option<&Interval>, unit: &str) -> String {
    i.map_or_else(|| "unknown".into(), |i| interval(i, unit))
}

/// A percent (0-100) that may be unknown.
fn percent(x: Option<f64>) -> String {
    x.map_or_else(|| "unknown".into(), |x| format!("{x:.0} %"))
}

/// A count or duration that may be unknown.
fn maybe(x: Option<f64>, decimals: usize) -> String {
    x.map_or_else(|| "unknown".into(), |x| format!("{x:.decimals$}"))
}

fn pct(x: f64) -> String {
    format!("{:.0} %", x * 100.0)
}

/// Zones listed per photo on a patient page.
const ZONES_SHOWN: usize = 8;

fn largest_zones(p: &PatientPhoto) -> Vec<&Zone> {
    let mut z: Vec<&Zone> = p.report.zones.iter().collect();
    z.sort_by(|a, b| b.area_px.total_cmp(&a.area_px));
    z.truncate(ZONES_SHOWN);
    z
}

fn page(title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body { (body) }
        }
    }
    .into_string()
}

/// The page of one patient; `photos` gives each photo's zones for the zone table.
pub fn patient_page(r: &PatientReport, pictures: &[Picture], photos: &[PatientPhoto]) -> String {
    let a = &r.assessment;
    let p = &r.plan;
    let body = html! {
        h1 { "Patient " (r.patient) }
        p class="draft" { "Draft SMP plan for a practitioner to check and adjust; not a diagnosis." }
        @for w in a.warnings.iter().chain(&p.warnings) { div class="warn" { (w) } }
        h2 { "Assessment" }
        table {
            tr { th { "Hair loss (SALT-style)" } td { (percent(a.hair_loss.percent)) " — " (a.hair_loss.severity) br; small { (a.hair_loss.method) } } }
            tr { th { "Area to cover" } td { (maybe_interval(a.area_to_cover_cm2.as_ref(), "cm²")) br; small { (a.area_method) } } }
            tr { th { "Stage" } td { (a.stage.label()) " (confidence " (a.stage.confidence) ")" ul { @for e in &a.stage.evidence { li { (e) } } } } }
            tr { th { "Skin tone" } td {
                @if let Some(s) = &a.skin { "ITA " (format!("{:.0}°", s.ita_deg)) ", " (s.ita_class.replace('_', " ")) " (Chardon class, not a Fitzpatrick type)" }
                @else { "not measured (too little bare skin without glare)" }
            } }
            tr { th { "Missing views" } td { @if a.missing_views.is_empty() { "none" } @else { (a.missing_views.join(", ")) } } }
        }
        h2 { "Photos" }
        div class="photos" {
            @for pic in pictures {
                figure {
                    @if let Some(uri) = &pic.data_uri { img src=(uri) alt=(pic.caption); } @else { p { "(overlay not available)" } }
                    figcaption { (pic.caption) }
                }
            }
        }
        table {
            tr { th { "Photo" } th { "View" } th class="num" { "SALT weight" } th class="num" { "Hair" } th class="num" { "Thinning" } th class="num" { "Bare" } th class="num" { "Scar" } th { "Measured to cover" } th { "Stage (this view)" } th { "Retake" } }
            @for v in &a.views {
                tr {
                    td { (v.file) } td { (v.view.as_deref().unwrap_or("unknown")) } td class="num" { (format!("{:.0}", v.salt_weight)) }
                    td class="num" { (pct(v.hair)) } td class="num" { (pct(v.thinning)) } td class="num" { (pct(v.bare)) } td class="num" { (pct(v.scar)) }
                    td { @if let Some(m) = &v.measured_to_cover_cm2 { (interval(m, "cm²")) " " small { "(" (v.scale_method.as_deref().unwrap_or("")) ")" } } @else { "no scale" } }
                    td { (v.stage) }
                    td { @if v.retake { "advised" } @else { "no" } }
                }
            }
        }
        h2 { "Zones found" }
        p { small { "Connected thinning, bare and scar regions of each photo, largest first (at most " (ZONES_SHOWN) " a photo); areas in the photo's pixels, and in cm² where it has a scale." } }
        table {
            tr { th { "Photo" } th { "Zone" } th class="num" { "Area (px)" } th class="num" { "Area (cm²)" } th { "Centre (x, y)" } th class="num" { "Density /cm²" } }
            @for ph in photos {
                @for z in largest_zones(ph) {
                    tr {
                        td { (ph.report.input.file) } td { (z.class.name()) }
                        td class="num" { (format!("{:.0}", z.area_px)) }
                        td class="num" { @if let Some(a) = z.area_cm2 { (format!("{a:.1}")) } @else { "—" } }
                        td { (format!("{:.0}, {:.0}", z.centroid[0], z.centroid[1])) }
                        td class="num" { (format!("{:.0}", z.mean_density_per_cm2)) }
                    }
                }
            }
        }
        h2 { "Zones and density" }
        table {
            tr { th { "Zone" } th { "Area" } th class="num" { "Target /cm²" } th class="num" { "Impressions" } th { "Needle" } th { "Note" } }
            @for z in &p.zones {
                tr { td { (z.kind) } td { (maybe_interval(z.area_cm2.as_ref(), "cm²")) } td class="num" { (format!("{:.0}", z.target_per_cm2)) } td class="num" { (maybe(z.impressions, 0)) } td { (z.needle) } td { (z.note) } }
            }
            tr { th colspan="3" { "Total" } th class="num" { (maybe(p.impressions_total, 0)) } th colspan="2" { "Depth: " (p.needle_depth) } }
        }
        p { "Pigment: " (p.pigment) }
        h2 { @if p.sessions == 0 { "No sessions" } @else if p.sessions == 1 { "1 session" } @else { (p.sessions) " sessions" } }
        ul { @for reason in &p.reasons { li { (format!("{:+}", reason.sessions)) " " b { (reason.rule) } ": " (reason.why) } } }
        table {
            tr { th class="num" { "#" } th { "When" } th { "Purpose" } th class="num" { "Impressions" } th class="num" { "Hours" } th { "Pigment" } th { "Aftercare" } }
            @for s in &p.schedule {
                tr {
                    td class="num" { (s.number) }
                    td { @if let Some(d) = &s.date { (d) br; } small { "day " (s.day) } }
                    td { (s.purpose) " (" (pct(s.share)) ")" }
                    td class="num" { (maybe(s.impressions, 0)) }
                    td class="num" { (maybe(s.hours, 1)) }
                    td { (s.pigment) }
                    td { ul { @for c in &s.aftercare { li { (c) } } } }
                }
            }
        }
        p { (p.touch_up) }
        p { small { "scalpmap " (r.scalpmap_version) ", rules: " (r.rules) ". Report " (r.schema) "." } }
    };
    page(&format!("scalpmap: patient {}", r.patient), body)
}

/// One row of the batch index.
#[derive(Clone, Debug)]
pub struct IndexRow {
    pub patient: String,
    pub page: String,
    pub photos: usize,
    pub percent: Option<f64>,
    pub severity: String,
    pub area: Option<Interval>,
    pub stage: String,
    pub sessions: u32,
    pub warnings: usize,
    /// Photos whose map a practitioner reviewed (`scalpmap review`).
    pub reviewed: usize,
}

pub fn index_page(rows: &[IndexRow], failed: &[(String, String)]) -> String {
    let body = html! {
        h1 { "scalpmap: " (rows.len()) @if rows.len() == 1 { " patient" } @else { " patients" } }
        p class="draft" { "Draft SMP plans for a practitioner to check and adjust." }
        table {
            tr { th { "Patient" } th class="num" { "Photos" } th class="num" { "Hair loss" } th { "Severity" } th { "Area to cover" } th { "Stage" } th class="num" { "Sessions" } th class="num" { "Warnings" } th class="num" { "Reviewed" } }
            @for r in rows {
                tr {
                    td { a href=(r.page) { (r.patient) } } td class="num" { (r.photos) } td class="num" { (percent(r.percent)) } td { (r.severity) }
                    td { (maybe_interval(r.area.as_ref(), "cm²")) } td { (r.stage) } td class="num" { (r.sessions) } td class="num" { (r.warnings) }
                    td class="num" { (r.reviewed) " of " (r.photos) }
                }
            }
        }
        @if !failed.is_empty() {
            h2 { "Photos that failed" }
            ul { @for (f, e) in failed { li { (f) ": " (e) } } }
        }
    };
    page("scalpmap: batch index", body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped() {
        let rows = [IndexRow {
            patient: "<script>alert(1)</script>".into(),
            page: "patients/x.html".into(),
            photos: 1,
            percent: Some(12.0),
            severity: "limited".into(),
            area: Some(Interval::exact(3.0)),
            stage: "II".into(),
            sessions: 3,
            warnings: 0,
            reviewed: 0,
        }];
        let html = index_page(&rows, &[("a&b.jpg".into(), "bad".into())]);
        assert!(!html.contains("<script>") && html.contains("&lt;script&gt;") && html.contains("a&amp;b.jpg"));
        assert!(html.starts_with("<!DOCTYPE html>") && !html.contains("http"), "self-contained");
    }
}
