//! scalpmap: maps hair loss on scalp photos and drafts scalp micropigmentation (SMP) plans.
//!
//! The library holds every stage; `src/main.rs` is a thin clap front end over it: decoding
//! (`photo`, `heic`), the model contract and engines (`model`), class maps and zones (`masks`,
//! `zones`), quality, physical measurement (`measure`, `marker`), the per-photo report and
//! overlay (`report`, `overlay`, `analyze`), batches (`batch`), patients and the treatment plan
//! (`patient`, `plan`, `rules`, `clinic`, `html`), and the synthetic renderer (`synth`) that
//! gives the model and the tests exact ground truth.

pub mod analyze;
pub mod batch;
pub mod classes;
pub mod clinic;
pub mod correction;
pub mod fsio;
#[cfg(feature = "heic")]
pub mod heic;
pub mod html;
pub mod marker;
pub mod masks;
pub mod measure;
pub mod model;
pub mod overlay;
pub mod patient;
pub mod photo;
pub mod plan;
pub mod quality;
pub mod record;
pub mod report;
pub mod review;
pub mod rules;
pub mod stage;
pub mod synth;
pub mod zones;
