//! `scalpmap review`: serves the review page for an output folder until the page's Stop button
//! or Ctrl-C.

use std::path::PathBuf;

use scalpmap::review::server::{ReviewConfig, ReviewServer};

use super::messages::say;
use super::{BackendArg, EXIT_USAGE};

#[derive(clap::Args, Debug)]
pub(super) struct ReviewArgs {
    /// The --out folder of an `analyze` or `plan` run.
    out: PathBuf,
    /// Port on 127.0.0.1 (default: one the system picks).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Folders to search for photos that are no longer where the run found them (moved, or
    /// the run was --anonymize): they are matched by their bytes (SHA-256).
    #[arg(long)]
    photos: Vec<PathBuf>,
    /// Inference engine for analysing a corrected photo again (as for analyze).
    #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
    backend: BackendArg,
}

pub(super) fn review_cmd(a: ReviewArgs) -> i32 {
    let cfg = ReviewConfig { out: a.out, port: a.port, photos: a.photos, engine: super::backend_choice(a.backend) };
    match ReviewServer::start(cfg) {
        Ok(server) => {
            // The address on stdout alone (a script can read it); the rest on stderr.
            println!("{}", server.url());
            use std::io::Write;
            let _ = std::io::stdout().flush();
            say!("review page at the address above (127.0.0.1 only); stop with the page's Stop button or Ctrl-C");
            server.wait();
            0
        }
        Err(e) => {
            say!("scalpmap review: {e:#}");
            EXIT_USAGE
        }
    }
}
