//! tract plans for the two towers, one optimized plan per concrete input shape bucket.
//!
//! perf-baseline.md finding 3: a symbolic sequence length fails at run time for the CLIP text
//! graph (the causal mask is constant-folded to a wrong shape), while concrete shapes work and
//! optimize in well under a second. So the text tower gets one plan per sequence-length bucket,
//! built on first use and cached; texts are padded on the right up to their bucket. With CLIP's
//! causal mask and EOS pooling (and with masked mean pooling in sentence-transformers models)
//! right padding does not change the result; `tests/parity.rs` checks it numerically. The batch
//! dimension is symbolic (it works for both towers), so one plan serves every batch size.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tract_onnx::prelude::*;

use super::dense::PackCache;
use crate::EmbedError;

/// The runnable form of a plan.
pub type Plan = Arc<TypedRunnableModel>;

fn model_err(path: &Path, what: impl std::fmt::Display) -> EmbedError {
    EmbedError::Model(format!("{}: {what}", path.display()))
}

fn infer_err(e: impl std::fmt::Debug) -> EmbedError {
    EmbedError::Inference(format!("{e:?}"))
}

/// Builds the runnable plan of `model` (its input facts set): tract's declutter, the pooled-row
/// rewrite ([`super::pooled_row`], on tract's own ops), clipgate's kernel rewrites
/// ([`super::dense`] and the others), then tract's optimizer.
fn build_plan(model: InferenceModel, packs: &PackCache) -> TractResult<Plan> {
    let mut typed = model.into_typed()?.into_decluttered()?;
    let pooled = super::pooled_row::rewrite(&mut typed)?;
    let dense = super::dense::rewrite(&mut typed, packs)?;
    let patches = super::patch_embed::rewrite(&mut typed, packs)?;
    let softmax = super::softmax::rewrite(&mut typed)?;
    let attention = super::attention::rewrite(&mut typed)?;
    let layer_norms = super::layer_norm::rewrite(&mut typed)?;
    let elementwise = super::elementwise::rewrite(&mut typed)?;
    tracing::debug!(
        pooled,
        dense,
        patches,
        softmax,
        attention,
        layer_norms,
        elementwise,
        "ops on clipgate's kernels"
    );
    typed.into_optimized()?.into_runnable()
}

/// What to feed into each input of a text graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextInput {
    InputIds,
    AttentionMask,
    /// BERT-style segment ids: all zeros for a single sentence.
    TokenTypeIds,
    /// Explicit positions 0..len.
    PositionIds,
}

fn input_names(model: &InferenceModel) -> Result<Vec<String>, TractError> {
    model
        .input_outlets()?
        .iter()
        .map(|o| Ok(model.node(o.node).name.clone()))
        .collect()
}

fn load_onnx(path: &Path, output: &str) -> Result<InferenceModel, EmbedError> {
    let mut model = tract_onnx::onnx()
        .model_for_path(path)
        .map_err(|e| model_err(path, format!("cannot load ONNX model: {e}")))?;
    // ONNX output names are tensor names: tract keeps them as outlet labels.
    let outlets: Vec<OutletId> = model
        .output_outlets()
        .map_err(|e| model_err(path, e))?
        .to_vec();
    let label = |o: &OutletId| {
        model
            .outlet_label(*o)
            .map(str::to_string)
            .unwrap_or_else(|| model.node(o.node).name.clone())
    };
    let outputs: Vec<String> = outlets.iter().map(label).collect();
    let chosen = outlets
        .iter()
        .zip(&outputs)
        .find(|(_, n)| n.as_str() == output)
        .map(|(o, _)| *o);
    let chosen = chosen.ok_or_else(|| {
        model_err(
            path,
            format!("expected an output named \"{output}\", the model has {outputs:?}"),
        )
    })?;
    model
        .select_output_outlets(&[chosen])
        .map_err(|e| model_err(path, e))?;
    Ok(model)
}

/// The text tower: ONNX graph plus the plans built so far, keyed by sequence length.
pub struct TextTower {
    path: PathBuf,
    model: InferenceModel,
    inputs: Vec<TextInput>,
    /// By (sequence length, batch of one).
    plans: HashMap<(usize, bool), Plan>,
    packs: PackCache,
    pub dim: Option<usize>,
}

impl TextTower {
    /// Loads `path` and checks that its inputs are token inputs and `output` exists.
    pub fn load(path: &Path, output: &str) -> Result<TextTower, EmbedError> {
        let model = load_onnx(path, output)?;
        let names = input_names(&model).map_err(|e| model_err(path, e))?;
        let mut inputs = Vec::new();
        for n in &names {
            inputs.push(match n.as_str() {
                "input_ids" => TextInput::InputIds,
                "attention_mask" => TextInput::AttentionMask,
                "token_type_ids" => TextInput::TokenTypeIds,
                "position_ids" => TextInput::PositionIds,
                other => {
                    return Err(model_err(
                        path,
                        format!("unexpected input \"{other}\" (expected input_ids, attention_mask, token_type_ids or position_ids)"),
                    ))
                }
            });
        }
        if !inputs.contains(&TextInput::InputIds) {
            return Err(model_err(
                path,
                format!("expected an input named \"input_ids\", the model has {names:?}"),
            ));
        }
        Ok(TextTower {
            path: path.to_path_buf(),
            model,
            inputs,
            plans: HashMap::new(),
            packs: PackCache::default(),
            dim: None,
        })
    }

    /// The plan for `batch` sequences of exactly `len` tokens. A single sequence (a query) gets
    /// a plan with a concrete batch size of 1, where tract's optimizer can specialize the
    /// element-wise ops; any other batch size shares one plan with a symbolic batch size. (The
    /// symbolic plan, which alone has the pooled-row gather of `pooled_row`, ran one text in
    /// the same time: 7 / 20 / 77 tokens min 7.13 / 10.85 / 25.54 ms against 7.28 / 10.96 /
    /// 25.56, alternating in one process; the concrete one was kept.)
    pub fn plan(&mut self, len: usize, batch: usize) -> Result<Plan, EmbedError> {
        let single = batch == 1;
        if let Some(p) = self.plans.get(&(len, single)) {
            return Ok(p.clone());
        }
        let mut model = self.model.clone();
        let n = if single {
            1.to_dim()
        } else {
            model.symbols.sym("N").to_dim()
        };
        for ix in 0..self.inputs.len() {
            model
                .set_input_fact(
                    ix,
                    InferenceFact::dt_shape(i64::datum_type(), tvec![n.clone(), len.to_dim()]),
                )
                .map_err(|e| model_err(&self.path, e))?;
        }
        let plan = build_plan(model, &self.packs).map_err(|e| {
            model_err(
                &self.path,
                format!("cannot build a plan for {len} tokens: {e:?}"),
            )
        })?;
        self.plans.insert((len, single), plan.clone());
        Ok(plan)
    }

    /// Runs one batch of token id sequences, all padded to `len` (`lens[i]` real tokens each).
    pub fn run(
        &mut self,
        ids: &[Vec<i64>],
        len: usize,
        pad_id: i64,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        let plan = self.plan(len, ids.len())?;
        let rows = self.run_plan(&plan, ids, len, pad_id)?;
        self.dim = rows.first().map(Vec::len);
        Ok(rows)
    }

    /// [`TextTower::run`] with the plan for `len` already built: takes `&self`, so several
    /// threads can run batches at once.
    pub fn run_plan(
        &self,
        plan: &Plan,
        ids: &[Vec<i64>],
        len: usize,
        pad_id: i64,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        let b = ids.len();
        let mut tensors: TVec<TValue> = tvec![];
        for kind in &self.inputs {
            let mut data = vec![0i64; b * len];
            for (row, seq) in data.chunks_exact_mut(len).zip(ids) {
                match kind {
                    TextInput::InputIds => {
                        row.fill(pad_id);
                        row[..seq.len()].copy_from_slice(seq);
                    }
                    TextInput::AttentionMask => row[..seq.len()].fill(1),
                    TextInput::TokenTypeIds => {}
                    TextInput::PositionIds => {
                        for (i, v) in row.iter_mut().enumerate() {
                            *v = i as i64;
                        }
                    }
                }
            }
            let t = Tensor::from_shape(&[b, len], &data).map_err(infer_err)?;
            tensors.push(t.into());
        }
        let out = plan.run(tensors).map_err(infer_err)?;
        rows_of(&out[0], b)
    }
}

/// The vision tower: one plan with a symbolic batch size and the configured image size.
pub struct VisionTower {
    plan: Plan,
    pub height: usize,
    pub width: usize,
}

impl VisionTower {
    pub fn load(path: &Path, height: usize, width: usize) -> Result<VisionTower, EmbedError> {
        let mut model = load_onnx(path, "image_embeds")?;
        let names = input_names(&model).map_err(|e| model_err(path, e))?;
        if names != ["pixel_values"] {
            return Err(model_err(
                path,
                format!("expected one input named \"pixel_values\", the model has {names:?}"),
            ));
        }
        // One plan with a symbolic batch size, single images included. A second, concrete
        // batch-1 plan (kept while tract's own element-wise ops ran and profited from concrete
        // shapes) ran a single image in the same time once they had all been replaced
        // (both plans alternating in one process, three runs: min 36.1 / 36.0 / 36.5 ms
        // against 36.0 / 36.2 / 36.5), and with its concrete shapes tract squeezes the pooled
        // row's unit axes (see `pooled_row`) into forms the dense rewrite does not take
        // (110–150 ms).
        let n = model.symbols.sym("N");
        let plan = model
            .set_input_fact(
                0,
                InferenceFact::dt_shape(
                    f32::datum_type(),
                    tvec![n.to_dim(), 3.to_dim(), height.to_dim(), width.to_dim()],
                ),
            )
            .and_then(|_| build_plan(model, &PackCache::default()))
            .map_err(|e| {
                model_err(
                    path,
                    format!("cannot build a plan for {height}x{width} images: {e:?}"),
                )
            })?;
        Ok(VisionTower {
            plan,
            height,
            width,
        })
    }

    /// The runnable plan (for per-op profiling in `examples/op_profile.rs`).
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Runs a batch of CHW tensors of `3 × height × width` values each.
    pub fn run(&self, images: &[&[f32]]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let b = images.len();
        let per = 3 * self.height * self.width;
        let mut data = Vec::with_capacity(b * per);
        for img in images {
            if img.len() != per {
                return Err(EmbedError::Inference(format!(
                    "image tensor has {} values, expected {per}",
                    img.len()
                )));
            }
            data.extend_from_slice(img);
        }
        // Moved into the tensor, not copied again (0.6 MB per image).
        let t = tract_ndarray::Array4::from_shape_vec((b, 3, self.height, self.width), data)
            .map_err(infer_err)?
            .into_tensor();
        let out = self.plan.run(tvec![t.into()]).map_err(infer_err)?;
        rows_of(&out[0], b)
    }
}

fn rows_of(v: &TValue, b: usize) -> Result<Vec<Vec<f32>>, EmbedError> {
    let view = v.to_plain_array_view::<f32>().map_err(infer_err)?;
    let shape = view.shape().to_vec();
    if shape.len() != 2 || shape[0] != b {
        return Err(EmbedError::Inference(format!(
            "model output has shape {shape:?}, expected [{b}, dim]"
        )));
    }
    Ok(view
        .outer_iter()
        .map(|r| r.iter().copied().collect())
        .collect())
}
