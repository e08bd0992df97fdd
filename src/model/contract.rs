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
        })
    }
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
