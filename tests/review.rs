//! `scalpmap review`'s server through its HTTP API, as the page uses it: the token, loopback and
//! Host checks, names that try to leave the folder, oversized bodies, saving and reloading a
//! correction, concurrent saves of one photo, a photo that moved, and the corrections reaching
//! reports, the summary, the patient's plan and a later `plan --resume`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use scalpmap::model::BackendChoice;
use scalpmap::review::server::{ReviewConfig, ReviewServer, MAX_BODY};

mod common;

const TOP: &str = "synth-2026-00505_synth-2026-00505-top";
const FRONT: &str = "synth-2026-00505_synth-2026-00505-front";

fn start(out: &Path, photos: Vec<PathBuf>) -> ReviewServer {
    ReviewServer::start(ReviewConfig { out: out.to_path_buf(), port: 0, photos, engine: BackendChoice::Tract }).unwrap()
}

struct Reply {
    status: u16,
    headers: String,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body[..self.body.len().min(300)])))
    }
}

/// One HTTP/1.1 request on its own connection; `extra` are header lines.
fn request(addr: SocketAddr, method: &str, target: &str, extra: &[String], body: &[u8]) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut head = format!("{method} {target} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    if !extra.iter().any(|h| h.starts_with("Host:")) {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for h in extra {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    // The server may answer (413) and close before a large body is all sent.
    let _ = s.write_all(head.as_bytes()).and_then(|_| s.write_all(body));
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or_else(|| panic!("no reply: {}", String::from_utf8_lossy(&raw)));
    let headers = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = headers.split(' ').nth(1).unwrap().parse().unwrap();
    let body = raw[split + 4..].to_vec();
    let chunked = headers.to_ascii_lowercase().contains("transfer-encoding: chunked");
    Reply { status, body: if chunked { dechunk(&body) } else { body }, headers }
}

/// A chunked body's bytes (the server chunks large replies).
fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else { return out };
        let size = usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap().split(';').next().unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 2 + size + 2..];
    }
}

fn token_header(server: &ReviewServer) -> Vec<String> {
    vec![format!("X-Scalpmap-Token: {}", server.token())]
}

fn get(server: &ReviewServer, target: &str) -> Reply {
    request(server.addr(), "GET", target, &token_header(server), b"")
}

fn cells(server: &ReviewServer, name: &str, key: &str) -> Vec<u8> {
    let p = get(server, &format!("/api/photo/{name}")).json();
    base64::engine::general_purpose::STANDARD.decode(p[key].as_str().unwrap()).unwrap()
}

fn save(server: &ReviewServer, name: &str, map: &[u8], state: &str) -> Reply {
    let body = serde_json::json!({ "map": base64::engine::general_purpose::STANDARD.encode(map), "state": state });
    request(server.addr(), "POST", &format!("/api/photo/{name}"), &token_header(server), body.to_string().as_bytes())
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The map with every thinning and bare cell in the top `rows` rows made background.
fn cleared_top(map: &[u8], width: usize, rows: usize) -> Vec<u8> {
    let mut m = map.to_vec();
    for c in m.iter_mut().take(width * rows) {
        if *c == 2 || *c == 3 {
            *c = 0;
        }
    }
    m
}

#[test]
fn every_request_needs_the_token_and_the_right_host() {
    let d = tempfile::tempdir().unwrap();
    let out = common::planned_sample(d.path());
    let server = start(&out, vec![]);
    assert!(server.addr().ip().is_loopback(), "bound to {}", server.addr());
    let addr = server.addr();
    let t = server.token().to_string();
    assert_eq!(request(addr, "GET", "/", &[], b"").status, 403, "no token");
    assert_eq!(request(addr, "GET", "/api/state", &[], b"").status, 403);
    assert_eq!(request(addr, "GET", &format!("/api/state?t={}", &t[..63]), &[], b"").status, 403, "a token one character short");
    assert_eq!(request(addr, "GET", "/api/state?t=", &[], b"").status, 403);
    let page = request(addr, "GET", &format!("/?t={t}"), &[], b"");
    assert_eq!(page.status, 200);
    assert!(page.headers.contains("Set-Cookie: scalpmap_review=") && page.headers.contains("SameSite=Strict"), "{}", page.headers);
    let html = String::from_utf8(page.body).unwrap();
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("src=\"//"), "no external resource");
    // The cookie serves reads; a save needs the header, which another site cannot send.
    let cookie = vec![format!("Cookie: scalpmap_review={t}")];
    assert_eq!(request(addr, "GET", "/api/state", &cookie, b"").status, 200);
    let map = cells(&server, TOP, "current");
    let body = serde_json::json!({ "map": base64::engine::general_purpose::STANDARD.encode(&map), "state": "reviewed" }).to_string();
    assert_eq!(request(addr, "POST", &format!("/api/photo/{TOP}"), &cookie, body.as_bytes()).status, 403);
    assert_eq!(request(addr, "POST", &format!("/api/photo/{TOP}?t={t}"), &[], body.as_bytes()).status, 403);
    assert!(!out.join(format!("{TOP}.review.json")).exists(), "a refused save writes nothing");
    // DNS rebinding: a page elsewhere reaching 127.0.0.1 under its own name.
    let evil = vec![format!("X-Scalpmap-Token: {t}"), "Host: evil.example:80".to_string()];
    assert_eq!(request(addr, "GET", "/api/state", &evil, b"").status, 403);
    let local = vec![format!("X-Scalpmap-Token: {t}"), format!("Host: localhost:{}", addr.port())];
    assert_eq!(request(addr, "GET", "/api/state", &local, b"").status, 200);
    let csp = get(&server, "/api/state").headers;
    assert!(csp.contains("Content-Security-Policy: default-src 'none'"), "{csp}");
    server.stop();
    assert!(TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err(), "nothing listens after stop");
    assert!(!out.join(scalpmap::fsio::LOCK_NAME).exists(), "the folder's lock is released");
}

#[test]
fn names_from_the_address_never_leave_the_folder_and_large_bodies_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let out = common::planned_sample(d.path());
    std::fs::write(d.path().join("secret.json"), b"{\"secret\": 1}").unwrap();
    let server = start(&out, vec![]);
    for target in [
        "/api/photo/..%2Fsecret",
        "/api/photo/../secret",
        "/api/photo/%2E%2E%2Fsecret/image",
        "/api/photo/summary",
        "/api/photo/scalpmap-run",
        "/patients/..%2F..%2Fsecret.html",
        "/patients/../index.html",
        "/patients/%2Fetc%2Fpasswd.html",
        "/summary.json",
        "/index.html",
        "/api/photo/%ff",
    ] {
        let r = get(&server, target);
        assert!(r.status == 404 || r.status == 400, "{target}: {}", r.status);
        assert!(!String::from_utf8_lossy(&r.body).contains("secret\": 1"), "{target}");
    }
    assert_eq!(get(&server, "/patients/synth-2026-00505.html").status, 200, "the folder's own patient page");
    // A body over the limit, by its Content-Length, and one that claims less than it sends.
    let big = vec![b'a'; MAX_BODY + 10];
    assert_eq!(request(server.addr(), "POST", &format!("/api/photo/{TOP}"), &token_header(&server), &big).status, 413);
    let mut s = TcpStream::connect(server.addr()).unwrap();
    let head = format!(
        "POST /api/photo/{TOP} HTTP/1.1\r\nHost: {}\r\nX-Scalpmap-Token: {}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        server.addr(),
        server.token()
    );
    s.write_all(head.as_bytes()).unwrap();
    let chunk = vec![b'a'; 1 << 20];
    for _ in 0..5 {
        if s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .and_then(|_| s.write_all(&chunk))
            .and_then(|_| s.write_all(b"\r\n"))
            .is_err()
        {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n");
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    assert!(raw.starts_with("HTTP/1.1 413"), "{}", &raw[..raw.len().min(200)]);
    // Saves the page could never send are refused and write nothing.
    let map = cells(&server, TOP, "current");
    let mut bad = map.clone();
    bad[0] = 9;
    assert_eq!(save(&server, TOP, &map[1..], "reviewed").status, 400, "wrong length");
    assert_eq!(save(&server, TOP, &bad, "reviewed").status, 400, "not a class");
    assert_eq!(save(&server, TOP, &map, "approved").status, 400, "unknown state");
    assert_eq!(save(&server, "nobody", &map, "reviewed").status, 404);
    let view = serde_json::json!({ "map": base64::engine::general_purpose::STANDARD.encode(&map), "state": "reviewed", "view": "ceiling" });
    let r = request(server.addr(), "POST", &format!("/api/photo/{TOP}"), &token_header(&server), view.to_string().as_bytes());
    assert_eq!(r.status, 400);
    assert_eq!(request(server.addr(), "POST", &format!("/api/photo/{TOP}"), &token_header(&server), b"{not json").status, 400);
    assert!(!out.join(format!("{TOP}.review.json")).exists() && !out.join(format!("{TOP}.reviewed.png")).exists());
}

#[test]
fn a_saved_correction_reaches_the_report_the_summary_the_plan_and_a_resumed_run() {
    let d = tempfile::tempdir().unwrap();
    let out = common::planned_sample(d.path());
    let before_report = read_json(&out.join(format!("{TOP}.json")));
    let before_patient = read_json(&out.join("patients/synth-2026-00505.json"));
    let server = start(&out, vec![]);
    let state = get(&server, "/api/state").json();
    assert_eq!(state["kind"], "plan");
    assert_eq!(state["photos"].as_array().unwrap().len(), 5);
    let model = cells(&server, TOP, "model");
    let width = get(&server, &format!("/api/photo/{TOP}")).json()["width"].as_u64().unwrap() as usize;
    let corrected = cleared_top(&model, width, width / 2);
    let changed = model.iter().zip(&corrected).filter(|(a, b)| a != b).count();
    assert!(changed > 100, "the sample's top view has loss in its upper half to clear ({changed} cells)");
    let r = save(&server, TOP, &corrected, "reviewed");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let saved = r.json();
    // The files: the map as sent, its JSON naming what changed, the model's report kept.
    let png = std::fs::read(out.join(format!("{TOP}.reviewed.png"))).unwrap();
    assert_eq!(scalpmap::correction::read_map_png(&png).unwrap().data, corrected);
    let c = read_json(&out.join(format!("{TOP}.review.json")));
    assert_eq!(c["changed_cells"].as_u64().unwrap() as usize, changed);
    assert_eq!(c["state"], "reviewed");
    assert_eq!(c["model_version"], before_report["model"]["version"]);
    assert!(c["changes"].as_array().unwrap().iter().all(|k| k["to"] == "background"));
    assert_eq!(read_json(&out.join(format!("{TOP}.model.json"))), before_report, "the model's report is kept as it was");
    // The report rests on the corrected map and says so; so do the summary and the plan.
    let after_report = read_json(&out.join(format!("{TOP}.json")));
    assert_eq!(after_report["review"]["reviewed_at"], c["reviewed_at"]);
    let loss = |r: &serde_json::Value| r["loss_fraction_of_scalp"].as_f64().unwrap();
    assert!(loss(&after_report) < loss(&before_report) - 0.01, "{} -> {}", loss(&before_report), loss(&after_report));
    assert_eq!(saved["photo"]["summary"]["loss_fraction_of_scalp"], after_report["loss_fraction_of_scalp"]);
    let summary = read_json(&out.join("summary.json"));
    let row = summary["rows"].as_array().unwrap().iter().find(|r| r["output"] == TOP).unwrap();
    assert!(row["review"].as_str().unwrap().starts_with("reviewed 20"), "{row}");
    assert!(std::fs::read_to_string(out.join("summary.csv")).unwrap().contains(",reviewed 20"));
    let after_patient = read_json(&out.join("patients/synth-2026-00505.json"));
    let area = |p: &serde_json::Value| p["assessment"]["area_to_cover_cm2"]["value"].as_f64().unwrap();
    assert!(area(&after_patient) < area(&before_patient), "{} -> {}", area(&before_patient), area(&after_patient));
    assert!((saved["patient"]["area_to_cover_cm2"]["value"].as_f64().unwrap() - area(&after_patient)).abs() < 1e-9);
    let views = after_patient["assessment"]["views"].as_array().unwrap();
    assert!(views.iter().any(|v| v["output"] == TOP && v["review"].as_str().is_some_and(|s| s.starts_with("reviewed"))));
    let page = std::fs::read_to_string(out.join("patients/synth-2026-00505.html")).unwrap();
    assert!(page.contains("top, reviewed 20"), "the patient page says which photo was reviewed");
    assert!(std::fs::read_to_string(out.join("index.html")).unwrap().contains("1 of 5"));
    // Reload: a new server shows the saved map; a retake mark is kept as such.
    server.stop();
    let server = start(&out, vec![]);
    assert_eq!(cells(&server, TOP, "current"), corrected);
    assert_eq!(cells(&server, TOP, "model"), model, "the model's answer stays for the eraser");
    let front = cells(&server, FRONT, "current");
    assert_eq!(save(&server, FRONT, &front, "retake").status, 200);
    let fr = read_json(&out.join(format!("{FRONT}.json")));
    assert!(fr["quality"]["retake"].as_bool().unwrap() && fr["review"]["state"] == "retake");
    server.stop();
    // A later run over the same photos keeps the corrections (and --resume sees them up to date).
    let o = assert_cmd::Command::cargo_bin("scalpmap")
        .unwrap()
        .args(["plan", d.path().join("in").to_str().unwrap(), "--out", out.to_str().unwrap(), "--backend", "tract", "--resume"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(read_json(&out.join(format!("{TOP}.json")))["loss_fraction_of_scalp"], after_report["loss_fraction_of_scalp"]);
    let again = read_json(&out.join("summary.json"));
    assert_eq!(again["skipped"], 5, "every photo, corrected or not, is up to date");
    let o = assert_cmd::Command::cargo_bin("scalpmap")
        .unwrap()
        .args(["plan", d.path().join("in").to_str().unwrap(), "--out", out.to_str().unwrap(), "--backend", "tract"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let fresh = read_json(&out.join(format!("{TOP}.json")));
    assert_eq!(fresh["loss_fraction_of_scalp"], after_report["loss_fraction_of_scalp"], "analysed afresh, on the correction");
    assert_eq!(area(&read_json(&out.join("patients/synth-2026-00505.json"))), area(&after_patient));
}

#[test]
fn concurrent_saves_of_one_photo_leave_one_whole_correction() {
    let d = tempfile::tempdir().unwrap();
    let out = common::planned_sample(d.path());
    let server = start(&out, vec![]);
    let model = cells(&server, TOP, "model");
    let width = get(&server, &format!("/api/photo/{TOP}")).json()["width"].as_u64().unwrap() as usize;
    let a = cleared_top(&model, width, width / 4);
    let b = cleared_top(&model, width, width / 2);
    for _ in 0..3 {
        std::thread::scope(|s| {
            let ha = s.spawn(|| save(&server, TOP, &a, "reviewed").status);
            let hb = s.spawn(|| save(&server, TOP, &b, "retake").status);
            assert_eq!((ha.join().unwrap(), hb.join().unwrap()), (200, 200));
        });
        let c = read_json(&out.join(format!("{TOP}.review.json")));
        let png = std::fs::read(out.join(format!("{TOP}.reviewed.png"))).unwrap();
        assert_eq!(c["map_sha256"], scalpmap::analyze::sha256_hex(&png), "the JSON names the map on disk");
        let map = scalpmap::correction::read_map_png(&png).unwrap().data;
        let expected_state = if map == a { "reviewed" } else { "retake" };
        assert!(map == a || map == b, "one of the two maps, whole");
        assert_eq!(c["state"], expected_state, "the map and its JSON come from the same save");
        let report = read_json(&out.join(format!("{TOP}.json")));
        assert_eq!(report["review"]["reviewed_at"], c["reviewed_at"], "the report rests on the last save");
        assert_eq!(cells(&server, TOP, "current"), map);
    }
    let leftovers: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') && n != scalpmap::fsio::LOCK_NAME)
        .collect();
    assert!(leftovers.is_empty(), "no temporary left: {leftovers:?}");
}

#[test]
fn a_moved_photo_is_found_by_its_bytes_or_the_save_is_refused_before_writing() {
    let d = tempfile::tempdir().unwrap();
    let out = common::planned_sample(d.path());
    let moved = d.path().join("moved");
    std::fs::rename(d.path().join("in"), &moved).unwrap();
    let server = start(&out, vec![]);
    let p = get(&server, &format!("/api/photo/{TOP}")).json();
    assert_eq!(p["photo_found"], false);
    let img = get(&server, &format!("/api/photo/{TOP}/image"));
    assert_eq!(img.status, 200);
    assert!(img.headers.contains("X-Scalpmap-Base: overlay"), "the overlay stands in: {}", img.headers);
    let map = cells(&server, TOP, "current");
    let r = save(&server, TOP, &map, "reviewed");
    assert_eq!(r.status, 409);
    assert!(r.json()["error"].as_str().unwrap().contains("--photos"));
    assert!(!out.join(format!("{TOP}.review.json")).exists() && !out.join(format!("{TOP}.model.json")).exists());
    server.stop();
    let server = start(&out, vec![moved.clone()]);
    let img = get(&server, &format!("/api/photo/{TOP}/image"));
    assert!(img.headers.contains("image/jpeg") && img.body.starts_with(&[0xff, 0xd8]), "{}", img.headers);
    // The photo shown carries no metadata: no EXIF (APP1) segment.
    assert!(!img.body.windows(6).any(|w| w == b"Exif\0\0"));
    assert_eq!(save(&server, TOP, &map, "reviewed").status, 200);
    assert_eq!(
        read_json(&out.join(format!("{TOP}.json")))["input"]["file"],
        read_json(&out.join(format!("{TOP}.model.json")))["input"]["file"]
    );
}

#[test]
fn review_refuses_a_folder_that_is_not_an_output_or_is_busy() {
    let d = tempfile::tempdir().unwrap();
    let err = |out: &Path| {
        ReviewServer::start(ReviewConfig { out: out.to_path_buf(), port: 0, photos: vec![], engine: BackendChoice::Tract }).err().unwrap()
    };
    let e = format!("{:#}", err(&d.path().join("missing")));
    assert!(e.contains("no such folder"), "{e}");
    let e = format!("{:#}", err(d.path()));
    assert!(e.contains("scalpmap-run.json"), "{e}");
    let out = common::planned_sample(d.path());
    let first = start(&out, vec![]);
    let e = format!("{:#}", err(&out));
    assert!(e.contains("another scalpmap run"), "{e}");
    first.stop();
    // The command line prints the address on stdout alone.
    let o = assert_cmd::Command::cargo_bin("scalpmap").unwrap().args(["review", d.path().join("nope").to_str().unwrap()]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no such folder"));
}
