//! Finding and checking the files of a model directory.
//!
//! Two layouts are read (issue 2 item 1):
//! - the Hugging Face ONNX export layout of a CLIP model (optimum / Xenova style): `config.json`,
//!   `preprocessor_config.json`, `tokenizer.json`, and `onnx/text_model.onnx` (`input_ids`,
//!   `attention_mask` → `text_embeds`) + `onnx/vision_model.onnx` (`pixel_values` →
//!   `image_embeds`), the two ONNX files also accepted at the directory root;
//! - the sentence-transformers layout of a separate text model (the container's
//!   `/app/models/text` + `/app/models/clip` split, spec §7.2): `tokenizer.json`, `config.json`,
//!   optional `modules.json` / `sentence_bert_config.json`, and `onnx/model.onnx` (or `model.onnx`)
//!   with output `sentence_embedding`.
//!
//! Every problem is reported as one [`EmbedError::Model`] naming the file and what was expected,
//! so that a wrong `--model-dir` is fixed from the first message.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::image::ImageConfig;
use crate::EmbedError;

/// The files of a CLIP model directory (HF ONNX layout).
#[derive(Debug, Clone)]
pub struct ClipFiles {
    pub dir: PathBuf,
    /// config.json, verbatim: what `/meta` answers (the container returns `CLIPConfig.to_dict()`).
    pub config: Value,
    pub config_path: PathBuf,
    pub preprocessor_path: PathBuf,
    pub image: ImageConfig,
    /// tokenizer.json; `None` only when a separate text model replaces the text tower.
    pub tokenizer: Option<PathBuf>,
    /// text_model.onnx; `None` only when a separate text model replaces the text tower.
    pub text_onnx: Option<PathBuf>,
    pub vision_onnx: PathBuf,
    /// Maximum number of text positions (text_config.max_position_embeddings, default 77).
    pub max_positions: usize,
}

/// The files of a sentence-transformers text model directory.
#[derive(Debug, Clone)]
pub struct SentenceFiles {
    pub dir: PathBuf,
    pub config: Value,
    pub tokenizer: PathBuf,
    pub onnx: PathBuf,
    /// Whether modules.json lists a `Normalize` module.
    pub has_normalize_module: bool,
    /// sentence_bert_config.json `max_seq_length`, else config.json `max_position_embeddings`.
    pub max_seq_length: usize,
}

fn model_err(path: &Path, what: impl std::fmt::Display) -> EmbedError {
    EmbedError::Model(format!("{}: {what}", path.display()))
}

fn read_json(path: &Path) -> Result<Value, EmbedError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            model_err(path, "file not found")
        } else {
            model_err(path, format!("cannot read: {e}"))
        }
    })?;
    serde_json::from_str(&text).map_err(|e| model_err(path, format!("not valid JSON: {e}")))
}

fn require_file(path: PathBuf, what: &str) -> Result<PathBuf, EmbedError> {
    if path.is_file() {
        Ok(path)
    } else {
        Err(model_err(
            &path,
            format!("file not found (expected {what})"),
        ))
    }
}

/// `dir/onnx/name`, else `dir/name`; the error names the preferred location.
fn find_onnx(dir: &Path, name: &str, what: &str) -> Result<PathBuf, EmbedError> {
    let nested = dir.join("onnx").join(name);
    if nested.is_file() {
        return Ok(nested);
    }
    let root = dir.join(name);
    if root.is_file() {
        return Ok(root);
    }
    Err(model_err(
        &nested,
        format!(
            "file not found (expected {what}; {} was tried too)",
            root.display()
        ),
    ))
}

fn check_dir(dir: &Path) -> Result<(), EmbedError> {
    if dir.is_dir() {
        Ok(())
    } else {
        Err(model_err(dir, "model directory not found"))
    }
}

/// Reads a CLIP model directory. With `text_replaced`, the text tower files are optional.
pub fn read_clip_dir(dir: &Path, text_replaced: bool) -> Result<ClipFiles, EmbedError> {
    check_dir(dir)?;
    let config_path = dir.join("config.json");
    let config = read_json(&config_path)?;
    if !config.is_object() {
        return Err(model_err(
            &config_path,
            "expected a JSON object (the CLIP model config)",
        ));
    }
    let max_positions = config
        .pointer("/text_config/max_position_embeddings")
        .or_else(|| config.get("max_position_embeddings"))
        .and_then(Value::as_u64)
        .map_or(77, |n| n as usize);
    if max_positions < 2 {
        return Err(model_err(
            &config_path,
            format!("max_position_embeddings {max_positions} is too small"),
        ));
    }
    let preprocessor_path = dir.join("preprocessor_config.json");
    let pre = read_json(&preprocessor_path)?;
    let image = ImageConfig::from_json(&pre).map_err(|e| model_err(&preprocessor_path, e))?;
    if image.output_size().is_none() {
        return Err(model_err(
            &preprocessor_path,
            "expected do_center_crop with crop_size, or an exact resize size: the vision model needs a fixed input size",
        ));
    }
    let vision_onnx = find_onnx(
        dir,
        "vision_model.onnx",
        "the CLIP vision tower: pixel_values → image_embeds",
    )?;
    let (tokenizer, text_onnx) = if text_replaced {
        (None, None)
    } else {
        (
            Some(require_file(
                dir.join("tokenizer.json"),
                "the CLIP tokenizer in tokenizers JSON format",
            )?),
            Some(find_onnx(
                dir,
                "text_model.onnx",
                "the CLIP text tower: input_ids, attention_mask → text_embeds",
            )?),
        )
    };
    Ok(ClipFiles {
        dir: dir.to_path_buf(),
        config,
        config_path,
        preprocessor_path,
        image,
        tokenizer,
        text_onnx,
        vision_onnx,
        max_positions,
    })
}

/// Reads a sentence-transformers text model directory.
pub fn read_sentence_dir(dir: &Path) -> Result<SentenceFiles, EmbedError> {
    check_dir(dir)?;
    let config_path = dir.join("config.json");
    let config = read_json(&config_path)?;
    let tokenizer = require_file(
        dir.join("tokenizer.json"),
        "the text model's tokenizer in tokenizers JSON format",
    )?;
    let onnx = find_onnx(
        dir,
        "model.onnx",
        "the text model with output sentence_embedding",
    )?;
    let modules_path = dir.join("modules.json");
    let has_normalize_module = if modules_path.is_file() {
        let modules = read_json(&modules_path)?;
        let list = modules
            .as_array()
            .ok_or_else(|| model_err(&modules_path, "expected a JSON array of modules"))?;
        list.iter().any(|m| {
            m.get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.ends_with("models.Normalize") || t == "Normalize")
        })
    } else {
        false
    };
    let sbert_path = dir.join("sentence_bert_config.json");
    let from_sbert = if sbert_path.is_file() {
        read_json(&sbert_path)?
            .get("max_seq_length")
            .and_then(Value::as_u64)
    } else {
        None
    };
    let max_seq_length = from_sbert
        .or_else(|| {
            config
                .get("max_position_embeddings")
                .and_then(Value::as_u64)
        })
        .map_or(512, |n| n as usize);
    Ok(SentenceFiles {
        dir: dir.to_path_buf(),
        config,
        tokenizer,
        onnx,
        has_normalize_module,
        max_seq_length,
    })
}
