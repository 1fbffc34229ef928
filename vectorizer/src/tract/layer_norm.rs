//! Graph rewrite: layer normalization over the last axis as one op.
//!
//! Why: tract-onnx expands ONNX `LayerNormalization` into `Reduce<Sum>`, a multiplication by
//! `1/D`, a broadcast subtraction and an `RmsNorm`: four ops and four passes over the tensor per
//! norm, 26 norms per ViT-B/32 image (25 per text). `examples/op_profile.rs` put them at 1.6–3.3
//! ms of a ~55 ms image (the `Reduce<Sum>` alone 0.9–2.0 ms), where one pass per row of 768
//! floats costs microseconds. The fused op computes the same quantities in the same order:
//! `d = x - Σx·(1/D)`, then `d / sqrt(Σd²/D + eps)`, with 16 partial sums per row.
//!
//! The affine part (`·γ + β`), where a model has one, stays as the ops that follow.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::math::{Mul, Sub};
use tract_onnx::tract_core::ops::nn::{Reduce, Reducer, RmsNorm};

/// `(x - mean) / sqrt(var + eps)` over the last axis of an f32 tensor; `inv_len` is the
/// graph's own `1/D` constant and `eps` its epsilon, both stored as bits so the op is `Eq`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LastAxisLayerNorm {
    inv_len: u32,
    eps: u32,
}

impl Op for LastAxisLayerNorm {
    fn name(&self) -> StaticName {
        "ClipgateLayerNorm".into()
    }

    op_as_typed_op!();
}

impl EvalOp for LastAxisLayerNorm {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let [x] = &inputs[..] else {
            bail!("layer norm takes one input");
        };
        // Out of place: the input is usually also the next residual connection's, so it is
        // shared and writing in place would cost a copy first.
        // SAFETY: every row of `y` (all of it: `x` is whole rows) is written below.
        let mut y = unsafe { Tensor::uninitialized::<f32>(x.shape())? };
        let row = x.shape().last().copied().unwrap_or(0);
        if row > 0 {
            let (inv_len, eps) = (f32::from_bits(self.inv_len), f32::from_bits(self.eps));
            let xv = x.try_as_plain_ram()?;
            let mut yv = y.try_as_plain_ram_mut()?;
            for (xr, yr) in xv
                .as_slice::<f32>()?
                .chunks_exact(row)
                .zip(yv.as_slice_mut::<f32>()?.chunks_exact_mut(row))
            {
                layer_norm_row(xr, yr, inv_len, eps);
            }
        }
        Ok(tvec!(y.into_tvalue()))
    }
}

impl TypedOp for LastAxisLayerNorm {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(f32::fact(&*inputs[0].shape)))
    }

    as_op!();
}

/// Σ of `row`, in 16 interleaved partial sums (independent adds the compiler vectorizes).
#[inline(always)]
fn lane_sum(row: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0f32; 16];
    let mut chunks = row.chunks_exact(16);
    for c in &mut chunks {
        for (a, x) in acc.iter_mut().zip(c) {
            *a += f(*x);
        }
    }
    for (a, x) in acc.iter_mut().zip(chunks.remainder()) {
        *a += f(*x);
    }
    acc.iter().sum()
}

/// `y = d / sqrt(Σd²·inv_len + eps)` with `d = x - Σx·inv_len` (`x`, `y` one row each).
pub fn layer_norm_row(x: &[f32], y: &mut [f32], inv_len: f32, eps: f32) {
    #[cfg(target_arch = "x86_64")]
    if super::gemm::available() {
        // SAFETY: the CPU has AVX-512F (what `available` checks).
        return unsafe { layer_norm_row_avx512(x, y, inv_len, eps) };
    }
    layer_norm_row_portable(x, y, inv_len, eps)
}

/// [`layer_norm_row_portable`] compiled for AVX-512: the 16 partial sums are one register, and
/// each pass is a few instructions per 16 floats (the baseline build only has 4-lane SSE).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn layer_norm_row_avx512(x: &[f32], y: &mut [f32], inv_len: f32, eps: f32) {
    layer_norm_row_portable(x, y, inv_len, eps)
}

#[inline(always)]
fn layer_norm_row_portable(x: &[f32], y: &mut [f32], inv_len: f32, eps: f32) {
    let mean = lane_sum(x, |v| v) * inv_len;
    let var = lane_sum(x, |v| (v - mean) * (v - mean)) * inv_len;
    let scale = 1.0 / (var + eps).sqrt();
    for (y, x) in y.iter_mut().zip(x) {
        *y = (*x - mean) * scale;
    }
}

/// Whether `node` is a binary op of kind `K` without a quantized output type.
fn bin_of<K: tract_onnx::tract_core::ops::binary::BinMiniOp>(node: &TypedNode) -> bool {
    node.op_as::<TypedBinOp>()
        .is_some_and(|b| b.0.is::<K>() && b.1.is_none())
        && node.inputs.len() == 2
}

/// Replaces `RmsNorm(x - Reduce<Sum>(x) · c)` over the last axis of an f32 tensor with
/// [`LastAxisLayerNorm`]; returns how many.
pub fn rewrite(model: &mut TypedModel) -> TractResult<usize> {
    super::replace_each(model, |model, node| {
        let Some(rms) = node.op_as::<RmsNorm>() else {
            return Ok(None);
        };
        let fact = model.outlet_fact(node.inputs[0])?;
        if fact.datum_type != f32::datum_type()
            || !fact.is_plain()
            || rms.axis + 1 != fact.rank()
            || rms.eps.len() != 1
        {
            return Ok(None);
        }
        let eps = rms.eps.cast_to_scalar::<f32>()?;
        // d = x - m
        let sub = model.node(node.inputs[0].node);
        if !bin_of::<Sub>(sub) {
            return Ok(None);
        }
        let (x, m) = (sub.inputs[0], sub.inputs[1]);
        if model.outlet_fact(x)?.shape != fact.shape {
            return Ok(None);
        }
        // m = Σx · c (either operand order)
        let mul = model.node(m.node);
        if !bin_of::<Mul>(mul) {
            return Ok(None);
        }
        let (sum, c) = match (
            super::const_scalar(model.outlet_fact(mul.inputs[1])?),
            super::const_scalar(model.outlet_fact(mul.inputs[0])?),
        ) {
            (Some(c), _) => (mul.inputs[0], c),
            (None, Some(c)) => (mul.inputs[1], c),
            _ => return Ok(None),
        };
        let reduce_node = model.node(sum.node);
        let Some(reduce) = reduce_node.op_as::<Reduce>() else {
            return Ok(None);
        };
        let summed_last = reduce.reducer == Reducer::Sum
            && reduce.axes.len() == 1
            && reduce.axes[0] == rms.axis
            && reduce_node.inputs[0] == x;
        Ok(summed_last.then(|| {
            (
                tvec![x],
                LastAxisLayerNorm {
                    inv_len: c.to_bits(),
                    eps: eps.to_bits(),
                },
            )
        }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tract::gemm::tests::assert_close;

    #[test]
    fn matches_a_float64_layer_norm_on_odd_lengths() {
        for len in [1usize, 7, 16, 17, 50, 768] {
            let row: Vec<f32> = (0..len)
                .map(|i| ((i * 37 % 23) as f32 - 9.0) * 0.37 + 3.0)
                .collect();
            let mean = row.iter().map(|x| *x as f64).sum::<f64>() / len as f64;
            let var = row.iter().map(|x| (*x as f64 - mean).powi(2)).sum::<f64>() / len as f64;
            let mut got = vec![f32::NAN; len];
            layer_norm_row(&row, &mut got, 1.0 / len as f32, 1e-5);
            for (g, x) in got.iter().zip(&row) {
                let want = (*x as f64 - mean) / (var + 1e-5).sqrt();
                assert!((*g as f64 - want).abs() <= 2e-6, "len {len}: {g} vs {want}");
            }
        }
    }

    /// An ONNX `LayerNormalization` (as tract-onnx expands it) through the rewrite against
    /// tract's own evaluation of the same graph.
    #[test]
    fn rewritten_onnx_layer_norm_equals_tracts() {
        let (rows, d) = (5usize, 40usize);
        let x: Vec<f32> = (0..rows * d)
            .map(|i| ((i * 53 % 31) as f32 - 15.0) * 0.21 + (i / d) as f32)
            .collect();
        let mut model = TypedModel::default();
        let src = model.add_source("x", f32::fact([1, rows, d])).unwrap();
        let sum = model
            .wire_node("sum", Reduce::new(tvec![2], Reducer::Sum), &[src])
            .unwrap()[0];
        let c = model
            .add_const("c", tensor3(&[[[1.0f32 / d as f32]]]))
            .unwrap();
        let mean = model
            .wire_node("mean", TypedBinOp(Box::new(Mul), None), &[sum, c])
            .unwrap()[0];
        let dd = model
            .wire_node("d", TypedBinOp(Box::new(Sub), None), &[src, mean])
            .unwrap()[0];
        let out = model
            .wire_node(
                "rms",
                RmsNorm {
                    axis: 2,
                    eps: rctensor0(1e-5f32),
                },
                &[dd],
            )
            .unwrap();
        model.select_output_outlets(&out).unwrap();
        let input = tensor1(&x).into_shape(&[1, rows, d]).unwrap();
        let theirs = model
            .clone()
            .into_runnable()
            .unwrap()
            .run(tvec![input.clone().into()])
            .unwrap();
        let mut ours = model;
        assert_eq!(rewrite(&mut ours).unwrap(), 1);
        let ours = ours.into_optimized().unwrap();
        assert!(ours
            .nodes()
            .iter()
            .all(|n| n.op().name() != "RmsNorm" && n.op().name() != "Reduce<Sum>"));
        let ours = ours
            .into_runnable()
            .unwrap()
            .run(tvec![input.into()])
            .unwrap();
        assert_close(&theirs[0], &ours[0], 1e-6, "layer norm");
    }
}
