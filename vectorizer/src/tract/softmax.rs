//! Graph rewrite: softmax over the last axis (attention probabilities) on an AVX-512 row
//! kernel.
//!
//! Why: CLIP's attention rows are 50 (image) or 7–77 (text) long. tract's fast softmax path
//! needs rows that are a multiple of 4, and its general path calls three kernels per row, so a
//! ViT-B/32 image spent ~7 ms of ~75 in its 12 softmaxes (`examples/op_profile.rs`); this
//! kernel does a row in one pass of masked 16-lane vectors.
//!
//! `exp` is Cephes' `expf` (range reduction by ln 2, degree-6 polynomial, ~1 ulp), the same
//! scheme as the SIMD exp of common inference runtimes; results are `exp(x - max) / Σ`.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::nn::{Softmax, SoftmaxKind};

use super::gemm;

/// Softmax over the last axis of an f32 tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastAxisSoftmax;

impl Op for LastAxisSoftmax {
    fn name(&self) -> StaticName {
        "ClipgateSoftmax".into()
    }

    op_as_typed_op!();
}

impl EvalOp for LastAxisSoftmax {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        ensure!(inputs.len() == 1, "softmax takes one input");
        let mut t = inputs
            .into_iter()
            .next()
            .map(|v| v.into_tensor())
            .unwrap_or_default();
        let row = t.shape().last().copied().unwrap_or(0);
        if row > 0 {
            let mut view = t.try_as_plain_ram_mut()?;
            let data = view.as_slice_mut::<f32>()?;
            for r in data.chunks_exact_mut(row) {
                softmax_row(r);
            }
        }
        Ok(tvec!(t.into_tvalue()))
    }
}

impl TypedOp for LastAxisSoftmax {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(f32::fact(&*inputs[0].shape)))
    }

    as_op!();
}

/// In place: `row[i] = exp(row[i] - max) / Σ exp(row[j] - max)`.
pub fn softmax_row(row: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if gemm::available() {
        // SAFETY: AVX-512F is present (checked just above).
        unsafe { softmax_row_avx512(row) };
        return;
    }
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f32;
    for x in row.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    let inv = sum.recip();
    for x in row.iter_mut() {
        *x *= inv;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn softmax_row_avx512(row: &mut [f32]) {
    use std::arch::x86_64::*;
    let n = row.len();
    let p = row.as_mut_ptr();
    let mask_at = |i: usize| -> __mmask16 {
        let left = n - i;
        if left >= 16 {
            0xffff
        } else {
            ((1u32 << left) - 1) as u16
        }
    };
    unsafe {
        let mut vmax = _mm512_set1_ps(f32::NEG_INFINITY);
        let mut i = 0;
        while i < n {
            let m = mask_at(i);
            let v = _mm512_mask_loadu_ps(_mm512_set1_ps(f32::NEG_INFINITY), m, p.add(i));
            vmax = _mm512_max_ps(vmax, v);
            i += 16;
        }
        let max = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
        let mut vsum = _mm512_setzero_ps();
        let mut i = 0;
        while i < n {
            let m = mask_at(i);
            let v = _mm512_maskz_loadu_ps(m, p.add(i));
            let e = exp512(_mm512_sub_ps(v, max));
            _mm512_mask_storeu_ps(p.add(i), m, e);
            vsum = _mm512_mask_add_ps(vsum, m, vsum, e);
            i += 16;
        }
        let inv = _mm512_set1_ps(1.0 / _mm512_reduce_add_ps(vsum));
        let mut i = 0;
        while i < n {
            let m = mask_at(i);
            let v = _mm512_maskz_loadu_ps(m, p.add(i));
            _mm512_mask_storeu_ps(p.add(i), m, _mm512_mul_ps(v, inv));
            i += 16;
        }
    }
}

/// `1 / (1 + e^-x)` on 16 lanes, from `e^-|x|` (so `exp` only sees `x ≤ 0` and never overflows):
/// `1 / (1 + e)` for `x ≥ 0`, `e / (1 + e)` below.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn sigmoid512(x: std::arch::x86_64::__m512) -> std::arch::x86_64::__m512 {
    use std::arch::x86_64::*;
    let neg_abs = _mm512_castsi512_ps(_mm512_or_si512(
        _mm512_castps_si512(x),
        _mm512_set1_epi32(i32::MIN),
    ));
    let e = exp512(neg_abs);
    let one = _mm512_set1_ps(1.0);
    let d = _mm512_add_ps(one, e);
    let pos = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(x, _mm512_setzero_ps());
    _mm512_div_ps(_mm512_mask_blend_ps(pos, e, one), d)
}

/// Cephes `expf` on 16 lanes, for `x ≤ 0` (softmax arguments); `scalef` applies `2^n` and
/// flushes very negative inputs to 0.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn exp512(x: std::arch::x86_64::__m512) -> std::arch::x86_64::__m512 {
    use std::arch::x86_64::*;
    // Below -103.97 f32's exp is 0 (past the smallest subnormal).
    let live = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(x, _mm512_set1_ps(-103.9));
    let x = _mm512_max_ps(x, _mm512_set1_ps(-103.9));
    let fx = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
        _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)),
    );
    let r = _mm512_fnmadd_ps(fx, _mm512_set1_ps(0.693_359_4), x);
    let r = _mm512_fnmadd_ps(fx, _mm512_set1_ps(-2.121_944_4e-4), r);
    let mut y = _mm512_set1_ps(1.987_569_1e-4);
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.398_199_9e-3));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(8.333_452e-3));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(4.166_579_6e-2));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.666_666_5e-1));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(0.5));
    let r2 = _mm512_mul_ps(r, r);
    y = _mm512_fmadd_ps(y, r2, r);
    y = _mm512_add_ps(y, _mm512_set1_ps(1.0));
    _mm512_maskz_mov_ps(live, _mm512_scalef_ps(y, fx))
}

/// Replaces f32 softmaxes over the last axis with [`LastAxisSoftmax`]; returns how many.
pub fn rewrite(model: &mut TypedModel) -> TractResult<usize> {
    if !gemm::available() {
        return Ok(0);
    }
    super::replace_each(model, |model, node| {
        let Some(op) = node.op_as::<Softmax>() else {
            return Ok(None);
        };
        let fact = model.outlet_fact(node.inputs[0])?;
        let last_axis_f32 = op.kind == SoftmaxKind::Softmax
            && op.quant_output_dt.is_none()
            && fact.datum_type == f32::datum_type()
            && fact.is_plain()
            && op.axes.len() == 1
            && op.axes[0] + 1 == fact.rank();
        Ok(last_axis_f32.then(|| (tvec![node.inputs[0]], LastAxisSoftmax)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_float64_softmax_on_odd_lengths() {
        for len in [1usize, 7, 16, 17, 50, 77, 100] {
            let row: Vec<f32> = (0..len)
                .map(|i| ((i * 37 % 23) as f32 - 11.0) * 1.7)
                .collect();
            let max = row
                .iter()
                .copied()
                .fold(f64::NEG_INFINITY, |a, b| a.max(b as f64));
            let exps: Vec<f64> = row.iter().map(|x| (*x as f64 - max).exp()).collect();
            let sum: f64 = exps.iter().sum();
            let mut got = row.clone();
            softmax_row(&mut got);
            for (g, e) in got.iter().zip(&exps) {
                let want = e / sum;
                assert!(
                    (*g as f64 - want).abs() <= 2e-7 * want.max(1e-3) + 1e-9,
                    "len {len}: {g} vs {want}"
                );
            }
        }
    }

    #[test]
    fn very_negative_inputs_underflow_to_zero() {
        let mut row = vec![0.0, -200.0, -1e30, f32::NEG_INFINITY];
        softmax_row(&mut row);
        assert_eq!(row, vec![1.0, 0.0, 0.0, 0.0]);
    }
}
