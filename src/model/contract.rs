//! The model contract (../shared/DESIGN.md): what a scalpmap segmentation model must declare
//! in its ONNX `metadata_props`, read at load time so that a retrained or larger model can be
//! dropped in with `--model` without code changes.

use serde::Serialize;

use super::onnx_meta;
use crate::classes::Class;

/// Contract revision this build understands.
pub const CONTRACT_VERSION: &str = "1";

/// Everything the analyser takes from the model instead of hard-coding it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelContract {
    pub model_version: String,
    pub classes: Vec<String>,
    pub input_width: usize,
    pub input_height: usize,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    /// Density output times this is hairs per cm².
    pub density_unit: f32,
    pub resize_rule: String,
    pub training_data_sha256: String,
    /// Whether the model's scar class may be drawn (`scalpmap.scar_detection`, "on" when the
    /// key is absent). A model whose scar class has not passed the false-scar check on real
    /// photos says "off", and the analyser never paints scar from it.
    pub scar_detection: bool,
    /// The Norwood cut points on the top view's fraction to cover that were fit for this
    /// model's maps (`scalpmap.norwood_top_upper`, six increasing numbers), if it carries them.
    pub norwood_top_upper: Option<Vec<f64>>,
    /// The head check's threshold (`scalpmap.head_threshold`), when the model has one: the
    /// model then has a third output `head` (1 x 1, the probability that the photo shows a
    /// head), and a photo scored under this is "no scalp found", never a bald scalp.
    pub head_threshold: Option<f32>,
}

/// Why a model file was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ContractError {
    #[error("{0}")]
    NotOnnx(String),
    #[error("the model has no scalpmap contract: metadata key '{0}' is missing (was it exported by training/run.sh?)")]
    Missing(&'static str),
    #[error("the model's metadata '{key}' is invalid: {why}")]
    Invalid { key: &'static str, why: String },
}

impl ModelContract {
    /// Reads and checks the contract from ONNX file bytes.
    pub fn from_onnx(bytes: &[u8]) -> Result<ModelContract, ContractError> {
        let info = onnx_meta::read(bytes).map_err(|e| ContractError::NotOnnx(e.to_string()))?;
        if !info.has_graph {
            return Err(ContractError::NotOnnx("not an ONNX model: no graph in the file".into()));
        }
        let get = |key: &'static str| -> Result<&str, ContractError> {
            info.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).ok_or(ContractError::Missing(key))
        };
        let contract = get("scalpmap.contract")?;
        if contract != CONTRACT_VERSION {
            return Err(ContractError::Invalid {
                key: "scalpmap.contract",
                why: format!("version {contract}, this scalpmap reads {CONTRACT_VERSION}"),
            });
        }
        let classes: Vec<String> = get("scalpmap.classes")?.split(',').map(|s| s.trim().to_string()).collect();
        let expected: Vec<&str> = Class::ALL.iter().map(|c| c.name()).collect();
        if classes != expected {
            return Err(ContractError::Invalid {
                key: "scalpmap.classes",
                why: format!("got [{}], scalpmap needs [{}] in this order", classes.join(", "), expected.join(", ")),
            });
        }
        let size = floats::<2>(get("scalpmap.input_size")?, "scalpmap.input_size")?;
        if size.iter().any(|&v| !(16.0..=4096.0).contains(&v) || v.fract() != 0.0) {
            return Err(ContractError::Invalid {
                key: "scalpmap.input_size",
                why: "width and height must be whole numbers from 16 to 4096".into(),
            });
        }
        let std = floats::<3>(get("scalpmap.std")?, "scalpmap.std")?;
        if std.iter().any(|&s| s <= 0.0) {
            return Err(ContractError::Invalid { key: "scalpmap.std", why: "must be positive".into() });
        }
        let density_unit = floats::<1>(get("scalpmap.density_unit")?, "scalpmap.density_unit")?[0];
        Ok(ModelContract {
            model_version: get("scalpmap.model_version")?.to_string(),
            classes,
            input_width: size[0] as usize,
            input_height: size[1] as usize,
            mean: floats::<3>(get("scalpmap.mean")?, "scalpmap.mean")?,
            std,
            density_unit,
            resize_rule: get("scalpmap.resize_rule")?.to_string(),
            training_data_sha256: get("scalpmap.training_data_sha256")?.to_string(),
            scar_detection: match get("scalpmap.scar_detection") {
                Err(_) | Ok("on") => true,
                Ok("off") => false,
                Ok(other) => {
                    return Err(ContractError::Invalid { key: "scalpmap.scar_detection", why: format!("'{other}' is neither on nor off") })
                }
            },
            norwood_top_upper: match get("scalpmap.norwood_top_upper") {
                Err(_) => None,
                Ok(s) => Some(cut_points(s)?),
            },
            head_threshold: match get("scalpmap.head_threshold") {
                Err(_) => None,
                Ok(s) => Some(head_threshold(s)?),
            },
        })
    }
}

/// A probability strictly between 0 and 1.
fn head_threshold(s: &str) -> Result<f32, ContractError> {
    let t = floats::<1>(s, "scalpmap.head_threshold")?[0];
    if !(t > 0.0 && t < 1.0) {
        return Err(ContractError::Invalid { key: "scalpmap.head_threshold", why: format!("'{s}' must be a probability between 0 and 1") });
    }
    Ok(t)
}

/// Six increasing fractions in [0, 1], comma-separated.
fn cut_points(s: &str) -> Result<Vec<f64>, ContractError> {
    const KEY: &str = "scalpmap.norwood_top_upper";
    let v = floats::<6>(s, KEY)?.map(f64::from).to_vec();
    if v.iter().any(|c| !(0.0..=1.0).contains(c)) || v.windows(2).any(|w| w[1] < w[0]) {
        return Err(ContractError::Invalid { key: KEY, why: format!("'{s}' must be six non-decreasing fractions from 0 to 1") });
    }
    Ok(v)
}

fn floats<const N: usize>(s: &str, key: &'static str) -> Result<[f32; N], ContractError> {
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    if parts.len() != N {
        return Err(ContractError::Invalid { key, why: format!("expected {N} comma-separated numbers, got '{s}'") });
    }
    let mut out = [0.0f32; N];
    for (o, p) in out.iter_mut().zip(&parts) {
        *o = p
            .parse::<f32>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| ContractError::Invalid { key, why: format!("'{p}' is not a number") })?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::onnx_meta::tests::model_bytes;

    const GOOD: [(&str, &str); 9] = [
        ("scalpmap.contract", "1"),
        ("scalpmap.model_version", "0.1.0"),
        ("scalpmap.classes", "background,hair,thinning,bare,scar"),
        ("scalpmap.input_size", "256,256"),
        ("scalpmap.mean", "0.485,0.456,0.406"),
        ("scalpmap.std", "0.229,0.224,0.225"),
        ("scalpmap.density_unit", "100"),
        ("scalpmap.resize_rule", "whole photo"),
        ("scalpmap.training_data_sha256", "abc"),
    ];

    fn with(key: &str, value: &str) -> Vec<u8> {
        let meta: Vec<(&str, &str)> = GOOD.iter().map(|&(k, v)| if k == key { (k, value) } else { (k, v) }).collect();
        model_bytes(&meta)
    }

    #[test]
    fn reads_a_good_contract() {
        let c = ModelContract::from_onnx(&model_bytes(&GOOD)).unwrap();
        assert_eq!((c.input_width, c.input_height), (256, 256));
        assert_eq!(c.mean, [0.485, 0.456, 0.406]);
        assert_eq!(c.density_unit, 100.0);
        assert_eq!(c.classes.len(), 5);
        assert!(c.scar_detection, "scar detection is on unless the model says off");
        assert_eq!(c.norwood_top_upper, None);
        assert_eq!(c.head_threshold, None, "a model without the head check has none");
    }

    #[test]
    fn reads_the_optional_scar_switch_and_cut_points() {
        let mut meta = GOOD.to_vec();
        meta.push(("scalpmap.scar_detection", "off"));
        meta.push(("scalpmap.norwood_top_upper", "0.1,0.2,0.3,0.4,0.5,0.6"));
        let c = ModelContract::from_onnx(&model_bytes(&meta)).unwrap();
        assert!(!c.scar_detection);
        let cuts = c.norwood_top_upper.unwrap();
        assert_eq!(cuts.len(), 6);
        assert!((cuts[5] - 0.6).abs() < 1e-6);
        let err = |k: &'static str, v: &'static str| {
            let mut m = GOOD.to_vec();
            m.push((k, v));
            ModelContract::from_onnx(&model_bytes(&m)).unwrap_err().to_string()
        };
        assert!(err("scalpmap.scar_detection", "maybe").contains("neither on nor off"));
        assert!(err("scalpmap.norwood_top_upper", "0.5,0.4,0.6,0.7,0.8,0.9").contains("non-decreasing"));
        assert!(err("scalpmap.norwood_top_upper", "0.1,0.2").contains("expected 6"));
        let mut meta = GOOD.to_vec();
        meta.push(("scalpmap.head_threshold", "0.2718"));
        assert_eq!(ModelContract::from_onnx(&model_bytes(&meta)).unwrap().head_threshold, Some(0.2718));
        for bad in ["0", "1", "-0.5", "NaN", "half"] {
            let mut m = GOOD.to_vec();
            m.push(("scalpmap.head_threshold", bad));
            assert!(ModelContract::from_onnx(&model_bytes(&m)).unwrap_err().to_string().contains("head_threshold"), "{bad}");
        }
    }

    #[test]
    fn refuses_broken_contracts_with_reasons() {
        let err = |b: Vec<u8>| ModelContract::from_onnx(&b).unwrap_err().to_string();
        assert!(err(with("scalpmap.classes", "background,hair,bare")).contains("in this order"));
        assert!(err(with("scalpmap.input_size", "256")).contains("expected 2"));
        assert!(err(with("scalpmap.input_size", "0,256")).contains("16 to 4096"));
        assert!(err(with("scalpmap.std", "0.2,0,0.2")).contains("positive"));
        assert!(err(with("scalpmap.mean", "a,b,c")).contains("'a' is not a number"));
        assert!(err(with("scalpmap.contract", "9")).contains("version 9"));
        assert!(err(model_bytes(&GOOD[1..])).contains("'scalpmap.contract' is missing"));
        assert!(err(b"not onnx at all".to_vec()).contains("ONNX"));
    }
}
