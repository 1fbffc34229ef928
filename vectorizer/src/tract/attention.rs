//! Graph rewrite: the attention products (`Q·Kᵀ` and `P·V`, an `EinSum` of two computed
//! tensors with batch axes: batch × heads) on a small AVX-512 kernel.
//!
//! Why: each of these products is tiny (50×64×50 per head for an image) and tract packs both
//! operands and dispatches its general matmul for each: with its other ops single-threaded,
//! 7.3 of a 53 ms image (`examples/op_profile.rs`). Here the second operand is copied once
//! into `[batch][k][n]` rows, and every output row is `Σ_k a[k]·B[k][..]`: a few 16-lane
//! accumulators, no packing of the first operand (read with its strides).

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::einsum::EinSum;

use super::gemm;

/// Where each axis of a product lives: positions in A, B and C.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchedProduct {
    /// Batch axes: (position in A, in B, in C).
    batch: TVec<(usize, usize, usize)>,
    /// The row axis: (in A, in C). Either may be absent, for one row: the pooled token's query
    /// in the vision tower's last layer (`pooled_row`) is a unit axis of A that C drops.
    m: (Option<usize>, Option<usize>),
    /// The contracted axis: (in A, in B).
    k: (usize, usize),
    /// The column axis: (in B, in C); last in C.
    n: (usize, usize),
    c_rank: usize,
}

impl Op for BatchedProduct {
    fn name(&self) -> StaticName {
        "ClipgateBatchedProduct".into()
    }
    op_as_typed_op!();
}

fn strides(shape: &[usize]) -> TVec<usize> {
    let mut s: TVec<usize> = tvec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

impl BatchedProduct {
    fn c_shape<D: Clone + From<usize>>(&self, a: &[D], b: &[D]) -> TVec<D> {
        let mut c: TVec<D> = tvec![D::from(1); self.c_rank];
        for &(pa, _, pc) in &self.batch {
            c[pc] = a[pa].clone();
        }
        if let (Some(pa), Some(pc)) = self.m {
            c[pc] = a[pa].clone();
        }
        c[self.n.1] = b[self.n.0].clone();
        c
    }
}

impl EvalOp for BatchedProduct {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        ensure!(inputs.len() == 2, "two inputs expected");
        let (a, b) = (&inputs[0], &inputs[1]);
        let (ash, bsh) = (a.shape(), b.shape());
        for &(pa, pb, _) in &self.batch {
            ensure!(ash[pa] == bsh[pb], "batch axes differ: {ash:?} {bsh:?}");
        }
        ensure!(ash[self.k.0] == bsh[self.k.1], "k differs: {ash:?} {bsh:?}");
        let m = self.m.0.map_or(1, |pa| ash[pa]);
        let (k, n) = (ash[self.k.0], bsh[self.n.0]);
        let csh = self.c_shape(ash, bsh);
        let (sa, sb, sc) = (strides(ash), strides(bsh), strides(&csh));
        let av = a.try_as_plain_ram()?;
        let av = av.as_slice::<f32>()?;
        let bv = b.try_as_plain_ram()?;
        let bv = bv.as_slice::<f32>()?;
        // SAFETY: every element of C is written below (all batch indices × m × n).
        let mut c = unsafe { Tensor::uninitialized::<f32>(&csh)? };
        let mut cv = c.try_as_plain_ram_mut()?;
        let cv = cv.as_slice_mut::<f32>()?;
        let c_len = cv.len();
        let out = SharedOut(cv.as_mut_ptr());
        // Offsets of every batch index in A, B and C (last batch axis fastest).
        let batches: usize = self.batch.iter().map(|&(pa, _, _)| ash[pa]).product();
        let mut offsets = Vec::with_capacity(batches);
        let mut idx: TVec<usize> = tvec![0; self.batch.len()];
        for _ in 0..batches {
            let (mut oa, mut ob, mut oc) = (0, 0, 0);
            for (i, &(pa, pb, pc)) in self.batch.iter().enumerate() {
                oa += idx[i] * sa[pa];
                ob += idx[i] * sb[pb];
                oc += idx[i] * sc[pc];
            }
            offsets.push((oa, ob, oc));
            for i in (0..idx.len()).rev() {
                idx[i] += 1;
                if idx[i] < ash[self.batch[i].0] {
                    break;
                }
                idx[i] = 0;
            }
        }
        let np = n.div_ceil(16) * 16;
        let (sbk, sbn, sam, sak, scm) = (
            sb[self.k.1],
            sb[self.n.0],
            self.m.0.map_or(0, |pa| sa[pa]),
            sa[self.k.0],
            self.m.1.map_or(0, |pc| sc[pc]),
        );
        // Batch indices split over the dense threads when the products are worth it.
        let parts = if m * n * k * batches >= 1 << 20 {
            batches.min(8)
        } else {
            1
        };
        let per = batches.div_ceil(parts);
        gemm::run_parts(parts, &|part| {
            let mut bp = vec![0f32; k * np];
            for &(oa, ob, oc) in offsets.iter().skip(part * per).take(per) {
                for kk in 0..k {
                    let row = &mut bp[kk * np..kk * np + n];
                    let base = ob + kk * sbk;
                    if sbn == 1 {
                        row.copy_from_slice(&bv[base..base + n]);
                    } else {
                        for (j, v) in row.iter_mut().enumerate() {
                            *v = bv[base + j * sbn];
                        }
                    }
                }
                for mm in 0..m {
                    let a0 = oa + mm * sam;
                    let c0 = oc + mm * scm;
                    let arow = &av[a0..a0 + (k.max(1) - 1) * sak + 1];
                    assert!(c0 + n <= c_len, "output row out of bounds");
                    // SAFETY: within C (checked above); batch indices of different parts
                    // write disjoint rows of C.
                    let crow = unsafe { std::slice::from_raw_parts_mut(out.at(c0), n) };
                    row_product(k, arow, sak, &bp, np, crow);
                }
            }
        });
        Ok(tvec!(c.into_tvalue()))
    }
}

impl TypedOp for BatchedProduct {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(f32::fact(
            &*self.c_shape(&inputs[0].shape, &inputs[1].shape)
        )))
    }
    as_op!();
}

/// C's buffer, written by several parts at once (disjoint rows).
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);
// SAFETY: see `eval`: parts write disjoint rows.
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

impl SharedOut {
    /// A method, so closures capture the whole (`Sync`) wrapper and not its raw pointer field.
    fn at(&self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }
}

/// `out[j] = Σ_kk a[kk·ka] · bp[kk·np + j]` for `j < out.len()`.
fn row_product(k: usize, a: &[f32], ka: usize, bp: &[f32], np: usize, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if gemm::available() && k > 0 {
        let mut c0 = 0;
        while c0 < out.len() {
            let w = (out.len() - c0).min(64);
            // SAFETY: AVX-512F checked; `a` holds k elements `ka` apart, and `bp` k rows of
            // `np ≥ c0 + w` floats (rounded up to 16, so whole-vector loads stay inside).
            unsafe { row_chunk(k, a.as_ptr(), ka, bp, np, c0, &mut out[c0..c0 + w]) };
            c0 += w;
        }
        return;
    }
    out.fill(0.0);
    for kk in 0..k {
        let av = a[kk * ka];
        for (j, o) in out.iter_mut().enumerate() {
            *o += av * bp[kk * np + j];
        }
    }
}

/// Up to 64 columns from `c0`: four 16-lane accumulators, masked at the edge.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn row_chunk(
    k: usize,
    a: *const f32,
    ka: usize,
    bp: &[f32],
    np: usize,
    c0: usize,
    out: &mut [f32],
) {
    use std::arch::x86_64::*;
    let w = out.len();
    let vecs = w.div_ceil(16);
    unsafe {
        let z = _mm512_setzero_ps();
        let mut acc = [z; 4];
        let p = bp.as_ptr().add(c0);
        for kk in 0..k {
            let av = _mm512_set1_ps(*a.add(kk * ka));
            let row = p.add(kk * np);
            for (v, acc) in acc.iter_mut().enumerate().take(vecs) {
                *acc = _mm512_fmadd_ps(av, _mm512_loadu_ps(row.add(16 * v)), *acc);
            }
        }
        for (v, acc) in acc.iter().enumerate().take(vecs) {
            let left = w - 16 * v;
            let mask: __mmask16 = if left >= 16 {
                0xffff
            } else {
                ((1u32 << left) - 1) as u16
            };
            _mm512_mask_storeu_ps(out.as_mut_ptr().add(16 * v), mask, *acc);
        }
    }
}

/// Recognizes `EinSum`s of two computed f32 tensors with one row, one contracted and one
/// column axis (the column axis last in the output) plus batch axes present everywhere.
fn match_product(model: &TypedModel, node: &TypedNode) -> TractResult<Option<BatchedProduct>> {
    let Some(op) = node.op_as::<EinSum>() else {
        return Ok(None);
    };
    if op.q_params.is_some() || op.operating_dt != f32::datum_type() || node.inputs.len() != 2 {
        return Ok(None);
    }
    let facts = model.node_input_facts(node.id)?;
    if facts
        .iter()
        .any(|f| f.konst.is_some() || f.datum_type != f32::datum_type() || !f.is_plain())
    {
        return Ok(None);
    }
    let (ins, outs) = op.axes.to_strs();
    if ins.len() != 2 || outs.len() != 1 {
        return Ok(None);
    }
    let (a, b, c): (Vec<char>, Vec<char>, Vec<char>) = (
        ins[0].chars().collect(),
        ins[1].chars().collect(),
        outs[0].chars().collect(),
    );
    let pos = |v: &[char], x: char| v.iter().position(|y| *y == x);
    let (mut batch, mut m, mut k, mut n) = (tvec![], None, None, None);
    // Unit axes that only one of A, B, C has (tract drops or adds them freely).
    let (mut a_units, mut b_units): (TVec<usize>, usize) = (tvec![], 0);
    let c_fact = model.outlet_fact(OutletId::new(node.id, 0))?;
    let unit = |d: &TDim| *d == 1.to_dim();
    let mut all: Vec<char> = a.iter().chain(&b).chain(&c).copied().collect();
    all.sort_unstable();
    all.dedup();
    for x in all {
        match (pos(&a, x), pos(&b, x), pos(&c, x)) {
            (Some(pa), Some(pb), Some(pc)) => {
                if facts[0].shape[pa] != facts[1].shape[pb] {
                    return Ok(None);
                }
                batch.push((pa, pb, pc));
            }
            (Some(pa), None, Some(pc)) if m.is_none() => m = Some((Some(pa), Some(pc))),
            (Some(pa), Some(pb), None) if k.is_none() => k = Some((pa, pb)),
            (None, Some(pb), Some(pc)) if n.is_none() => n = Some((pb, pc)),
            (Some(pa), None, None) if unit(&facts[0].shape[pa]) => a_units.push(pa),
            (None, Some(pb), None) if unit(&facts[1].shape[pb]) => b_units += 1,
            (None, None, Some(pc)) if unit(&c_fact.shape[pc]) => {}
            _ => return Ok(None),
        }
    }
    // No row axis in C: one row, A's unit axis if it has one (the pooled query row).
    let m = m.unwrap_or_else(|| (a_units.pop(), None));
    let (Some(k), Some(n)) = (k, n) else {
        return Ok(None);
    };
    if n.1 + 1 != c.len()
        || a.len() != batch.len() + usize::from(m.0.is_some()) + 1 + a_units.len()
        || b.len() != batch.len() + 2 + b_units
    {
        return Ok(None);
    }
    // Batch axes in output order, so the batch index walks C's memory in order.
    batch.sort_by_key(|t| t.2);
    Ok(Some(BatchedProduct {
        batch,
        m,
        k,
        n,
        c_rank: c.len(),
    }))
}

/// Replaces the attention products of `model` (decluttered); returns how many.
pub fn rewrite(model: &mut TypedModel) -> TractResult<usize> {
    if !gemm::available() {
        return Ok(0);
    }
    super::replace_each(model, |model, node| {
        Ok(match_product(model, node)?.map(|op| (node.inputs.iter().copied().collect(), op)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tract::gemm::tests::{assert_close, data};

    /// The product through the rewrite against tract's own einsum of the same inputs.
    fn check(expr: &str, a: &[usize], b: &[usize]) {
        let build = |rewrite_it: bool| {
            let mut model = TypedModel::default();
            let x = model.add_source("a", f32::fact(a)).unwrap();
            let y = model.add_source("b", f32::fact(b)).unwrap();
            let out = model
                .wire_node(
                    "p",
                    EinSum::new(expr.parse().unwrap(), f32::datum_type()),
                    &[x, y],
                )
                .unwrap();
            model.select_output_outlets(&out).unwrap();
            if rewrite_it {
                assert_eq!(rewrite(&mut model).unwrap(), 1, "{expr} not rewritten");
            }
            model.into_runnable().unwrap()
        };
        let ta = Tensor::from_shape(a, &data(a.iter().product(), 1)).unwrap();
        let tb = Tensor::from_shape(b, &data(b.iter().product(), 2)).unwrap();
        let run = |p: &Arc<TypedRunnableModel>| {
            p.run(tvec![ta.clone().into(), tb.clone().into()]).unwrap()[0]
                .clone()
                .into_tensor()
        };
        assert_close(&run(&build(false)), &run(&build(true)), 1e-4, expr);
    }

    #[test]
    fn attention_products_match_tracts_einsum() {
        if !gemm::available() {
            return;
        }
        // Q·Kᵀ and P·V as CLIP's graphs have them (batch 2, 3 heads, 50 and 7 positions).
        check("ambk,anbk->abmn", &[2, 50, 3, 64], &[2, 50, 3, 64]);
        check("abmk,akbn->ambn", &[2, 3, 50, 50], &[2, 50, 3, 64]);
        check("ambk,anbk->abmn", &[1, 7, 8, 16], &[1, 7, 8, 16]);
        // Batch-of-one plans: a unit axis only in the output, or only in the first operand.
        check("mbk,nbk->abmn", &[8, 2, 16], &[8, 2, 16]);
        check("abmk,kbn->mbn", &[1, 2, 8, 8], &[8, 2, 16]);
        // Wider than one 64-column chunk, and no batch axis at all.
        check("bmk,bkn->bmn", &[2, 5, 9], &[2, 9, 130]);
        check("mk,kn->mn", &[3, 4], &[4, 17]);
        // The pooled row (`pooled_row`): one query row, a unit axis of A that C drops; and no
        // row axis at all.
        check("abmk,akbn->abn", &[2, 3, 1, 50], &[2, 50, 3, 64]);
        check("bk,bkn->bn", &[3, 50], &[3, 50, 20]);
    }
}
