//! The review page's HTTP server: 127.0.0.1 only, a random token that every request must carry
//! (in the URL once, then a same-site cookie or the `X-Scalpmap-Token` header; saves need the
//! header, which another site's form cannot send), a Host check against DNS rebinding, bodies
//! capped, and only names the folder lists ever reach the file system. The page and its
//! script are compiled in: nothing is fetched from anywhere.

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tiny_http::{Header, Method, Request, Response, Server};

use super::{ApiError, Folder, SaveRequest};
use crate::model::BackendChoice;

/// The page: HTML, CSS and script in one file, compiled into the binary.
pub const PAGE: &str = include_str!("page.html");
/// The largest request body taken (a save of a 1024 x 1024 map is 1.4 MB of base64).
pub const MAX_BODY: usize = 4 << 20;
/// Threads answering requests: the page loads a photo and its map at once; saves queue on the folder.
const WORKERS: usize = 4;
const COOKIE: &str = "scalpmap_review";

pub struct ReviewConfig {
    pub out: PathBuf,
    /// 0 for a port the system picks.
    pub port: u16,
    /// Folders to search (by SHA-256) for photos no longer at their recorded paths.
    pub photos: Vec<PathBuf>,
    pub engine: BackendChoice,
}

/// A running review server; [`ReviewServer::stop`] (or dropping it) closes its port.
pub struct ReviewServer {
    server: Option<Arc<Server>>,
    workers: Vec<JoinHandle<()>>,
    addr: SocketAddr,
    token: String,
    _lock: crate::fsio::OutLock,
}

struct Ctx {
    folder: Mutex<Folder>,
    token: String,
    port: u16,
    /// To wake every worker when the page asks to stop.
    server: Arc<Server>,
    stopping: std::sync::atomic::AtomicBool,
}

impl ReviewServer {
    /// Opens the folder (holding its lock, so no batch writes it meanwhile) and listens.
    pub fn start(cfg: ReviewConfig) -> anyhow::Result<ReviewServer> {
        anyhow::ensure!(cfg.out.is_dir(), "{}: no such folder; give the --out folder of an analyze or plan run", cfg.out.display());
        let lock = crate::fsio::OutLock::acquire(&cfg.out)?;
        let folder = Folder::open(&cfg.out, cfg.photos, cfg.engine)?;
        let server = Server::http(SocketAddr::from((Ipv4Addr::LOCALHOST, cfg.port)))
            .map_err(|e| anyhow::anyhow!("cannot listen on 127.0.0.1:{}: {e}; try another --port", cfg.port))?;
        let addr = server.server_addr().to_ip().ok_or_else(|| anyhow::anyhow!("the server has no IP address"))?;
        let server = Arc::new(server);
        let token = random_token();
        let ctx = Arc::new(Ctx {
            folder: Mutex::new(folder),
            token: token.clone(),
            port: addr.port(),
            server: Arc::clone(&server),
            stopping: false.into(),
        });
        let workers = (0..WORKERS)
            .map(|_| {
                let (server, ctx) = (Arc::clone(&server), Arc::clone(&ctx));
                std::thread::spawn(move || {
                    while let Ok(rq) = server.recv() {
                        handle(&ctx, rq);
                    }
                })
            })
            .collect();
        Ok(ReviewServer { server: Some(server), workers, addr, token, _lock: lock })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// The address to open, with the token.
    pub fn url(&self) -> String {
        format!("http://{}/?t={}", self.addr, self.token)
    }

    /// Blocks until the page's "Stop" or the process ends.
    pub fn wait(mut self) {
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }

    /// Stops answering and closes the port.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(server) = self.server.take() else { return };
        for _ in 0..self.workers.len() {
            server.unblock();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        // tiny_http closes its listening socket on its own thread once the last handle is
        // dropped; wait (briefly) until the port refuses, so a stopped review listens for nothing.
        drop(server);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while std::net::TcpStream::connect_timeout(&self.addr, std::time::Duration::from_millis(100)).is_ok()
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

impl Drop for ReviewServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// 32 random bytes as hex, from the system's generator (std's hash keys are seeded from it).
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    let from_os = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).is_ok();
    if !from_os {
        use std::hash::{BuildHasher, Hasher};
        for chunk in bytes.chunks_mut(8) {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
            chunk.copy_from_slice(&h.finish().to_le_bytes()[..chunk.len()]);
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares in time independent of where the strings differ.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn header<'a>(rq: &'a Request, name: &'static str) -> Option<&'a str> {
    rq.headers().iter().find(|h| h.field.equiv(name)).map(|h| h.value.as_str())
}

/// `%XX` decoded (a `+` stays a `+`); None when the result is not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == key).and_then(|(_, v)| percent_decode(v)))
}

type Reply = Response<std::io::Cursor<Vec<u8>>>;

fn reply(status: u16, content_type: &str, body: Vec<u8>) -> Reply {
    let mut r = Response::from_data(body).with_status_code(status);
    for (k, v) in [
        ("Content-Type", content_type),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("X-Frame-Options", "SAMEORIGIN"),
        // Only this page's own inline script and style, images from itself: nothing external.
        (
            "Content-Security-Policy",
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; frame-src 'self'; form-action 'none'; base-uri 'none'",
        ),
    ] {
        if let Ok(h) = Header::from_bytes(k.as_bytes(), v.as_bytes()) {
            r.add_header(h);
        }
    }
    r
}

fn json(status: u16, v: &serde_json::Value) -> Reply {
    reply(status, "application/json", serde_json::to_vec(v).unwrap_or_default())
}

fn error(e: ApiError) -> Reply {
    json(e.status, &serde_json::json!({ "error": e.message }))
}

fn handle(ctx: &Ctx, mut rq: Request) {
    let resp = route(ctx, &mut rq);
    let _ = rq.respond(resp);
    // Answered first, so the page learns the server stopped; then every worker is woken to end.
    if ctx.stopping.load(std::sync::atomic::Ordering::SeqCst) {
        for _ in 0..WORKERS {
            ctx.server.unblock();
        }
    }
}

fn route(ctx: &Ctx, rq: &mut Request) -> Reply {
    // A page on another site that points a name at 127.0.0.1 (DNS rebinding) sends its own Host.
    let host_ok = header(rq, "Host").is_some_and(|h| h == format!("127.0.0.1:{}", ctx.port) || h == format!("localhost:{}", ctx.port));
    if !host_ok {
        return error(ApiError::new(403, "wrong Host: open the address scalpmap review printed"));
    }
    let url = rq.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let from_query = query_param(query, "t");
    let from_header = header(rq, "X-Scalpmap-Token").map(str::to_string);
    let from_cookie =
        header(rq, "Cookie").and_then(|c| c.split(';').find_map(|kv| kv.trim().strip_prefix(&format!("{COOKIE}=")).map(str::to_string)));
    let given = |t: &Option<String>| t.as_deref().is_some_and(|t| same_secret(t, &ctx.token));
    let is_post = *rq.method() == Method::Post;
    // Saves need the header: a cookie alone would let another site's form post here.
    let authorised = if is_post { given(&from_header) } else { given(&from_query) || given(&from_header) || given(&from_cookie) };
    if !authorised {
        return error(ApiError::new(403, "missing or wrong token: open the address scalpmap review printed"));
    }
    let segments: Vec<String> = match path.split('/').skip(1).map(percent_decode).collect::<Option<Vec<_>>>() {
        Some(s) => s,
        None => return error(ApiError::new(400, "the address is not UTF-8")),
    };
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (rq.method().clone(), seg.as_slice()) {
        (Method::Get, [""]) => {
            let mut r = reply(200, "text/html; charset=utf-8", PAGE.as_bytes().to_vec());
            if given(&from_query) {
                let cookie = format!("{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict", ctx.token);
                if let Ok(h) = Header::from_bytes(&b"Set-Cookie"[..], cookie.as_bytes()) {
                    r.add_header(h);
                }
            }
            r
        }
        (Method::Get, ["api", "state"]) => json(200, &lock(ctx).state()),
        (Method::Get, ["api", "photo", name]) => match lock(ctx).photo(name) {
            Ok(v) => json(200, &v),
            Err(e) => error(e),
        },
        (Method::Get, ["api", "photo", name, "image"]) => match lock(ctx).display_jpeg(name) {
            Ok((bytes, true)) => reply(200, "image/jpeg", bytes),
            Ok((bytes, false)) => {
                let mut r = reply(200, "image/png", bytes);
                if let Ok(h) = Header::from_bytes(&b"X-Scalpmap-Base"[..], &b"overlay"[..]) {
                    r.add_header(h);
                }
                r
            }
            Err(e) => error(e),
        },
        (Method::Post, ["api", "photo", name]) => {
            let body = match read_body(rq) {
                Ok(b) => b,
                Err(e) => return error(e),
            };
            let req: SaveRequest = match serde_json::from_slice(&body) {
                Ok(r) => r,
                Err(e) => return error(ApiError::new(400, format!("not a save request: {e}"))),
            };
            match lock(ctx).save(name, &req) {
                Ok(v) => json(200, &v),
                Err(e) => error(e),
            }
        }
        (Method::Post, ["api", "stop"]) => {
            ctx.stopping.store(true, std::sync::atomic::Ordering::SeqCst);
            json(200, &serde_json::json!({ "stopped": true }))
        }
        (Method::Get, ["patients", page]) => {
            // Only the folder's own patient pages, by their id: no path from the address is opened.
            let Some(id) = page.strip_suffix(".html") else { return error(ApiError::new(404, "not found")) };
            let f = lock(ctx);
            if !f.knows_page(id) {
                return error(ApiError::new(404, "no such patient page in this folder"));
            }
            match std::fs::read(f.out().join("patients").join(format!("{id}.html"))) {
                Ok(b) => reply(200, "text/html; charset=utf-8", b),
                Err(e) => error(ApiError::new(404, format!("the patient page cannot be read ({e})"))),
            }
        }
        _ => error(ApiError::new(404, "not found")),
    }
}

fn lock(ctx: &Ctx) -> std::sync::MutexGuard<'_, Folder> {
    ctx.folder.lock().unwrap_or_else(|p| p.into_inner())
}

/// The request body, refused (413) past MAX_BODY, whatever Content-Length claims.
fn read_body(rq: &mut Request) -> Result<Vec<u8>, ApiError> {
    let too_large = || ApiError::new(413, format!("the request is larger than {} MB", MAX_BODY >> 20));
    if rq.body_length().is_some_and(|n| n > MAX_BODY) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    rq.as_reader()
        .take(MAX_BODY as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| ApiError::new(400, format!("cannot read the request ({e})")))?;
    if body.len() > MAX_BODY {
        return Err(too_large());
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b%2Fc").as_deref(), Some("a b/c"));
        assert_eq!(percent_decode("..%2F..%2Fetc").as_deref(), Some("../../etc"));
        assert_eq!(percent_decode("x%").as_deref(), Some("x%"));
        assert_eq!(percent_decode("%ff"), None, "not UTF-8");
        assert_eq!(percent_decode("%C3%BC").as_deref(), Some("ü"));
    }

    #[test]
    fn tokens_are_long_random_and_compared_whole() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(same_secret(&a, &a.clone()) && !same_secret(&a, &b) && !same_secret(&a, &a[..63]));
    }
}
