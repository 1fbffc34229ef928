//! Graph rewrite: a convolution whose stride equals its kernel (a ViT's patch embedding:
//! 32×32 patches of a 224×224 image) as a copy of each patch into a row, clipgate's dense
//! kernel over the rows, and a transpose back to the convolution's `NCHW` output.
//!
//! Why: tract lowers it to im2col plus its own matmul, 3–5.6 ms of a ViT-B/32 image with the
//! runner's single-threaded tract executor (`examples/op_profile.rs`); the dense kernel runs it
//! on both cores from packed weights.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat, PaddingSpec};
use tract_onnx::tract_core::ops::nn::DataFormat;

use super::dense::PackCache;
use super::gemm::{self, PackedWeights};

/// `[N, C, H, W]` → `[N, OC, H/P, W/P]` with non-overlapping `P×P` patches.
#[derive(Debug, Clone)]
pub struct PatchEmbed {
    weights: PackedWeights,
    channels: usize,
    patch: usize,
}

impl PartialEq for PatchEmbed {
    fn eq(&self, other: &PatchEmbed) -> bool {
        self.weights.same_as(&other.weights)
            && self.channels == other.channels
            && self.patch == other.patch
    }
}
impl Eq for PatchEmbed {}

impl Op for PatchEmbed {
    fn name(&self) -> StaticName {
        "ClipgatePatchEmbed".into()
    }
    op_as_typed_op!();
}

impl EvalOp for PatchEmbed {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        ensure!(inputs.len() == 1, "one input expected");
        let x = &inputs[0];
        let sh = x.shape();
        let (c, p) = (self.channels, self.patch);
        ensure!(
            sh.len() == 4 && sh[1] == c && sh[2] >= p && sh[3] >= p,
            "patch embedding: input shape {sh:?}"
        );
        let (n, h, w) = (sh[0], sh[2], sh[3]);
        let (oh, ow) = ((h - p) / p + 1, (w - p) / p + 1);
        let (rows, k, m) = (n * oh * ow, c * p * p, self.weights.m());
        let xv = x.try_as_plain_ram()?;
        let xv = xv.as_slice::<f32>()?;
        // One row per patch, in (channel, row, column) order: the kernel's OIHW layout.
        let mut patches = vec![0f32; rows * k];
        for b in 0..n {
            for i in 0..oh {
                for j in 0..ow {
                    let row = &mut patches[((b * oh + i) * ow + j) * k..][..k];
                    for ch in 0..c {
                        for kh in 0..p {
                            let src = ((b * c + ch) * h + i * p + kh) * w + j * p;
                            row[(ch * p + kh) * p..][..p].copy_from_slice(&xv[src..src + p]);
                        }
                    }
                }
            }
        }
        let mut y = vec![0f32; rows * m];
        self.weights.matmul(&patches, rows, &mut y);
        let mut out = Tensor::zero::<f32>(&[n, m, oh, ow])?;
        {
            let mut ov = out.try_as_plain_ram_mut()?;
            let ov = ov.as_slice_mut::<f32>()?;
            let per = oh * ow;
            for b in 0..n {
                for l in 0..per {
                    let src = &y[(b * per + l) * m..][..m];
                    for (oc, v) in src.iter().enumerate() {
                        ov[(b * m + oc) * per + l] = *v;
                    }
                }
            }
        }
        Ok(tvec!(out.into_tvalue()))
    }
}

impl TypedOp for PatchEmbed {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let sh = &inputs[0].shape;
        ensure!(sh.len() == 4, "patch embedding: rank 4 input");
        let p = self.patch;
        let (Ok(h), Ok(w)) = (sh[2].to_usize(), sh[3].to_usize()) else {
            bail!("patch embedding: image size must be concrete");
        };
        ensure!(
            h >= p && w >= p,
            "patch embedding: image smaller than a patch"
        );
        Ok(tvec!(f32::fact([
            sh[0].clone(),
            self.weights.m().to_dim(),
            ((h - p) / p + 1).to_dim(),
            ((w - p) / p + 1).to_dim(),
        ])))
    }
    as_op!();
}

fn match_conv(
    model: &TypedModel,
    node: &TypedNode,
    cache: &PackCache,
) -> TractResult<Option<PatchEmbed>> {
    let Some(conv) = node.op_as::<Conv>() else {
        return Ok(None);
    };
    let ps = &conv.pool_spec;
    let ks = &ps.kernel_shape;
    let p = ks.first().copied().unwrap_or(0);
    let no_padding = match &ps.padding {
        PaddingSpec::Valid => true,
        PaddingSpec::Explicit(a, b) => a.iter().chain(b).all(|v| *v == 0),
        _ => false,
    };
    if conv.q_params.is_some()
        || conv.group != 1
        || conv.kernel_fmt != KernelFormat::OIHW
        || ps.data_format != DataFormat::NCHW
        || ks.len() != 2
        || ks[1] != p
        || p == 0
        || ps.strides.as_deref() != Some(&[p, p][..])
        || ps
            .dilations
            .as_ref()
            .is_some_and(|d| d.iter().any(|v| *v != 1))
        || !no_padding
        || node.inputs.len() < 2
        || node.inputs.len() > 3
    {
        return Ok(None);
    }
    let facts = model.node_input_facts(node.id)?;
    let x = facts[0];
    if x.datum_type != f32::datum_type()
        || !x.is_plain()
        || x.rank() != 4
        || x.shape[2].to_usize().is_err()
        || x.shape[3].to_usize().is_err()
    {
        return Ok(None);
    }
    let Some(kernel) = facts[1].konst.as_ref() else {
        return Ok(None);
    };
    let c = ps.input_channels;
    let oc = ps.output_channels;
    if kernel.datum_type() != f32::datum_type() || kernel.shape() != [oc, c, p, p] {
        return Ok(None);
    }
    let kv = kernel.try_as_plain_ram()?;
    let mut weights = cache.packed(kv.as_slice::<f32>()?, oc, c * p * p, false)?;
    if let Some(bias) = facts.get(2) {
        let Some(b) = bias.konst.as_ref() else {
            return Ok(None);
        };
        if b.datum_type() != f32::datum_type() {
            return Ok(None);
        }
        let bv = b.try_as_plain_ram()?;
        let bv = bv.as_slice::<f32>()?;
        match bv.len() {
            1 if bv[0] == 0.0 => {}
            len if len == oc => weights = weights.with_bias(bv),
            _ => return Ok(None),
        }
    }
    Ok(Some(PatchEmbed {
        weights,
        channels: c,
        patch: p,
    }))
}

/// Replaces patch-embedding convolutions of `model` (decluttered); returns how many.
pub fn rewrite(model: &mut TypedModel, cache: &PackCache) -> TractResult<usize> {
    if !gemm::available() {
        return Ok(0);
    }
    super::replace_each(model, |model, node| {
        Ok(match_conv(model, node, cache)?.map(|op| (tvec![node.inputs[0]], op)))
    })
}
