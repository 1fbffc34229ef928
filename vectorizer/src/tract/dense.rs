//! Graph rewrite: every dense layer of a decluttered tract graph (an `EinSum` of an activation
//! `[…, k]` with a constant `k×m` or `m×k` f32 weight) becomes a [`Dense`] op that runs
//! clipgate's kernel ([`super::gemm`]) on weights packed once, when the plan is built.
//!
//! Everything else in the graph (attention products, layer norms, softmax, GELU) stays tract's.
//! The rewrite runs between declutter and optimization, so tract's optimizer still fuses and
//! plans the rest of the graph around the new ops.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::einsum::EinSum;

use super::gemm::{self, PackedWeights};

/// Where an output axis of [`Dense`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutAxis {
    /// The input axis of that index (a row axis).
    Input(usize),
    /// A unit axis the product adds.
    Unit,
    /// The weight's `m` axis.
    M,
}

/// `y = x · W (+ bias)`: the input's trailing `contracted` axes (their product is `k`) against a
/// `k×m` weight packed at plan-build time. The other input axes are rows, laid out in the output
/// as `out` says (tract's einsum may drop or add unit axes on the way).
#[derive(Debug, Clone)]
pub struct Dense {
    weights: PackedWeights,
    contracted: usize,
    out: TVec<OutAxis>,
    /// A second input of the output's shape is added to the product (a skip connection).
    residual: bool,
}

impl PartialEq for Dense {
    fn eq(&self, other: &Dense) -> bool {
        self.weights.same_as(&other.weights)
            && self.contracted == other.contracted
            && self.out == other.out
            && self.residual == other.residual
    }
}
impl Eq for Dense {}

impl Op for Dense {
    fn name(&self) -> StaticName {
        "ClipgateDense".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("{:?}", self.weights)])
    }

    op_as_typed_op!();
}

impl Dense {
    fn out_shape<D: Clone + From<usize>>(&self, input: &[D]) -> TVec<D> {
        self.out
            .iter()
            .map(|a| match a {
                OutAxis::Input(i) => input[*i].clone(),
                OutAxis::Unit => D::from(1),
                OutAxis::M => D::from(self.weights.m()),
            })
            .collect()
    }
}

impl EvalOp for Dense {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        ensure!(
            inputs.len() == 1 + self.residual as usize,
            "Dense takes {} input(s)",
            1 + self.residual as usize
        );
        let x = &inputs[0];
        let shape = x.shape();
        let k = self.weights.k();
        ensure!(
            shape.len() >= self.contracted
                && shape[shape.len() - self.contracted..]
                    .iter()
                    .product::<usize>()
                    == k,
            "Dense: input shape {shape:?} does not end in {k} values"
        );
        let n = x.len() / k.max(1);
        let out_shape = self.out_shape(shape);
        // SAFETY: `matmul` writes every element of the n×m output.
        let mut y = unsafe { Tensor::uninitialized::<f32>(&out_shape)? };
        ensure!(
            y.len() == n * self.weights.m(),
            "Dense: output shape {out_shape:?}"
        );
        {
            let xs = x.try_as_plain_ram()?;
            let xs = xs.as_slice::<f32>()?;
            let mut ys = y.try_as_plain_ram_mut()?;
            let ys = ys.as_slice_mut::<f32>()?;
            match inputs.get(1) {
                Some(r) => {
                    ensure!(
                        r.shape() == &*out_shape,
                        "Dense: residual shape {:?}",
                        r.shape()
                    );
                    let rs = r.try_as_plain_ram()?;
                    self.weights
                        .matmul_add(xs, n, Some(rs.as_slice::<f32>()?), ys);
                }
                None => self.weights.matmul(xs, n, ys),
            }
        }
        Ok(tvec!(y.into_tvalue()))
    }
}

impl TypedOp for Dense {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs[0].rank() >= self.contracted, "Dense: input rank");
        Ok(tvec!(f32::fact(&*self.out_shape(&inputs[0].shape))))
    }

    as_op!();
}

/// How a matched `EinSum` maps onto [`Dense`].
struct Match {
    activation: OutletId,
    residual: Option<OutletId>,
    dense: Dense,
    /// The node whose output the dense op replaces: the einsum, or the `+ bias` after it.
    last: usize,
}

/// Packed weights already made for a model, by content: the text tower builds one plan per
/// sequence-length bucket from the same weights, and each plan reuses the packed matrices
/// instead of holding its own copy (151 MB for ViT-B/32's text tower).
#[derive(Clone, Default)]
pub struct PackCache {
    packed: Arc<Mutex<HashMap<PackKey, PackedWeights>>>,
}

/// Content hashes, stored shape (rows, cols) and whether rows are `k`.
type PackKey = (u64, u64, usize, usize, bool);

impl PackCache {
    /// The packed form of a row-major `rows × cols` weight matrix: `k × m` when `k_first`, else
    /// `m × k` (transposed before packing). Packed once per distinct content.
    pub fn packed(
        &self,
        data: &[f32],
        rows: usize,
        cols: usize,
        k_first: bool,
    ) -> TractResult<PackedWeights> {
        ensure!(data.len() == rows * cols, "weight is not {rows}×{cols}");
        let (h1, h2) = content_key(data);
        let key = (h1, h2, rows, cols, k_first);
        let mut packed = self
            .packed
            .lock()
            .map_err(|_| anyhow!("pack cache poisoned"))?;
        Ok(packed
            .entry(key)
            .or_insert_with(|| {
                if k_first {
                    PackedWeights::pack(data, rows, cols)
                } else {
                    let mut t = vec![0f32; rows * cols];
                    for r in 0..rows {
                        for col in 0..cols {
                            t[col * rows + r] = data[r * cols + col];
                        }
                    }
                    PackedWeights::pack(&t, cols, rows)
                }
            })
            .clone())
    }
}

/// Two independent 64-bit hashes of the matrix's bits: a key for equal content, computed at
/// plan-build time only (about 20 ms for ViT-B/32's text tower).
fn content_key(data: &[f32]) -> (u64, u64) {
    let (mut h1, mut h2) = (0x9E37_79B9_7F4A_7C15u64, 0xC2B2_AE3D_27D4_EB4Fu64);
    for pair in data.chunks(2) {
        let lo = pair[0].to_bits() as u64;
        let hi = pair.get(1).map(|v| v.to_bits() as u64).unwrap_or(0);
        let v = lo | (hi << 32);
        h1 = (h1 ^ v).wrapping_mul(0x0000_0100_0000_01B3).rotate_left(29);
        h2 = h2.wrapping_add(v).wrapping_mul(0xFF51_AFD7_ED55_8CCD) ^ (h2 >> 31);
    }
    (h1, h2 ^ data.len() as u64)
}

/// Recognizes `…k,km->…m` (or the weight given as `m×k`, or as the first input).
fn match_dense(
    model: &TypedModel,
    node: &TypedNode,
    cache: &PackCache,
) -> TractResult<Option<Match>> {
    let Some(op) = node.op_as::<EinSum>() else {
        return Ok(None);
    };
    if op.q_params.is_some() || op.operating_dt != f32::datum_type() || node.inputs.len() != 2 {
        return Ok(None);
    }
    let facts = model.node_input_facts(node.id)?;
    let konst = |ix: usize| {
        facts[ix]
            .konst
            .clone()
            .filter(|t| t.rank() >= 2 && t.datum_type() == f32::datum_type())
    };
    let (wix, w) = match (konst(0), konst(1)) {
        (None, Some(w)) => (1, w),
        (Some(w), None) => (0, w),
        _ => return Ok(None),
    };
    let aix = 1 - wix;
    if facts[aix].datum_type != f32::datum_type() || !facts[aix].is_plain() {
        return Ok(None);
    }
    let (ins, outs) = op.axes.to_strs();
    if ins.len() != 2 || outs.len() != 1 {
        return Ok(None);
    }
    let (a, wa, out): (Vec<char>, Vec<char>, Vec<char>) = (
        ins[aix].chars().collect(),
        ins[wix].chars().collect(),
        outs[0].chars().collect(),
    );
    // The weight's one output axis `j` is its first or last; its other axes are contracted and
    // are, in the same order, the activation's trailing axes (one or several: an attention
    // output projection contracts heads × head size). Flattened, that is `[n, k] · [k, m]`.
    let (k_first, j, contracted) = if out.last() == wa.last() {
        (true, wa[wa.len() - 1], &wa[..wa.len() - 1])
    } else if out.last() == wa.first() {
        (false, wa[0], &wa[1..])
    } else {
        return Ok(None);
    };
    if contracted.is_empty()
        || a.len() < contracted.len()
        || &a[a.len() - contracted.len()..] != contracted
    {
        return Ok(None);
    }
    // Rows: the activation's other axes. The output keeps them in order, except that unit axes
    // may be dropped or added, and ends with `j` (unit axes aside): then the output is the
    // row-major `n×m` product.
    let prefix = &a[..a.len() - contracted.len()];
    let a_dims = &facts[aix].shape;
    let out_fact = model.outlet_fact(OutletId::new(node.id, 0))?;
    let unit = |d: &TDim| *d == 1.to_dim();
    let mut out_axes: TVec<OutAxis> = tvec![];
    let mut rows_seen = vec![];
    for (pos, ax) in out.iter().enumerate() {
        if *ax == j {
            out_axes.push(OutAxis::M);
        } else if let Some(i) = prefix.iter().position(|p| p == ax) {
            out_axes.push(OutAxis::Input(i));
            if !unit(&a_dims[i]) {
                rows_seen.push(i);
            }
        } else if unit(&out_fact.shape[pos]) {
            out_axes.push(OutAxis::Unit);
        } else {
            return Ok(None);
        }
    }
    let rows_in: Vec<usize> = (0..prefix.len()).filter(|&i| !unit(&a_dims[i])).collect();
    let j_pos = out.iter().position(|c| *c == j).unwrap_or(0);
    let j_last = out
        .iter()
        .enumerate()
        .skip(j_pos + 1)
        .all(|(pos, _)| unit(&out_fact.shape[pos]));
    // Every dropped prefix axis must be a unit axis.
    let dropped_ok = (0..prefix.len()).all(|i| unit(&a_dims[i]) || out.contains(&prefix[i]));
    if rows_seen != rows_in || !j_last || !dropped_ok || prefix.contains(&j) {
        return Ok(None);
    }
    let ws = w.shape();
    let m = if k_first { ws[ws.len() - 1] } else { ws[0] };
    let k: usize = ws.iter().product::<usize>() / m.max(1);
    // Weight as stored: `rows × cols` row-major (k×m when `k_first`, m×k otherwise).
    let (rows, cols) = if k_first { (k, m) } else { (m, k) };
    let data = w.try_as_plain_ram()?;
    let data = data.as_slice::<f32>()?;
    let weights = cache.packed(data, rows, cols, k_first)?;
    let mut dense = Dense {
        weights,
        contracted: contracted.len(),
        out: out_axes,
        residual: false,
    };
    // A following `+ bias` (a constant that varies only along `m`) goes into the kernel's store.
    let mut last = node.id;
    if let Some(next) = model.single_succ(node.id)? {
        if let Some(bias) = bias_of(model, next, node.id, m)? {
            dense.weights = dense.weights.with_bias(&bias);
            last = next.id;
        }
    }
    // Then CLIP's activation, `y · sigmoid(1.702 · y)`, into the store as well.
    if let Some((alpha, end)) = quick_gelu_of(model, last)? {
        dense.weights = dense.weights.with_quick_gelu(alpha);
        last = end;
    }
    // Then a skip connection: `+ r` with `r` a computed tensor of the output's shape.
    let mut residual = None;
    if let Some(next) = model.single_succ(last)? {
        if let Some(r) = residual_of(model, next, last)? {
            residual = Some(r);
            dense.residual = true;
            last = next.id;
        }
    }
    Ok(Some(Match {
        activation: node.inputs[aix],
        residual,
        dense,
        last,
    }))
}

/// `(α, last node)` when `from`'s output `y` feeds exactly `y · sigmoid(α · y)` (three nodes:
/// a multiplication by the constant α, a sigmoid, the product with `y`) and nothing else.
fn quick_gelu_of(model: &TypedModel, from: usize) -> TractResult<Option<(f32, usize)>> {
    use tract_onnx::tract_core::ops::element_wise::ElementWiseOp;
    use tract_onnx::tract_core::ops::math::Mul;
    use tract_onnx::tract_core::ops::nn::Sigmoid;
    let y = OutletId::new(from, 0);
    let node = model.node(from);
    if node.outputs.len() != 1 || node.outputs[0].successors.len() != 2 {
        return Ok(None);
    }
    let is_mul = |n: &TypedNode| {
        n.op_as::<TypedBinOp>()
            .is_some_and(|b| b.0.is::<Mul>() && b.1.is_none())
            && n.inputs.len() == 2
    };
    let scalar = |o: OutletId| model.outlet_fact(o).ok().and_then(super::const_scalar);
    let succ: Vec<&TypedNode> = node.outputs[0]
        .successors
        .iter()
        .map(|i| model.node(i.node))
        .collect();
    for (scale, product) in [(succ[0], succ[1]), (succ[1], succ[0])] {
        if !is_mul(scale) || !is_mul(product) || scale.id == product.id {
            continue;
        }
        let alpha = match (scale.inputs[0] == y, scale.inputs[1] == y) {
            (true, false) => scalar(scale.inputs[1]),
            (false, true) => scalar(scale.inputs[0]),
            _ => None,
        };
        let Some(alpha) = alpha else { continue };
        let Some(sig) = model.single_succ(scale.id)? else {
            continue;
        };
        let is_sigmoid = sig
            .op_as::<ElementWiseOp>()
            .is_some_and(|e| e.0.is::<Sigmoid>() && e.1.is_none());
        let sig_out = OutletId::new(sig.id, 0);
        let pair = (product.inputs[0], product.inputs[1]);
        if is_sigmoid
            && model
                .single_succ(sig.id)?
                .is_some_and(|n| n.id == product.id)
            && (pair == (y, sig_out) || pair == (sig_out, y))
            && model.outlet_fact(OutletId::new(product.id, 0))?.shape == model.outlet_fact(y)?.shape
        {
            return Ok(Some((alpha, product.id)));
        }
    }
    Ok(None)
}

/// The other operand when `next` is an f32 `Add` of `ours` and something else.
fn added_to(next: &TypedNode, ours: OutletId) -> Option<OutletId> {
    let bin = next.op_as::<TypedBinOp>()?;
    if !bin.0.is::<tract_onnx::tract_core::ops::math::Add>() || next.inputs.len() != 2 {
        return None;
    }
    match (next.inputs[0] == ours, next.inputs[1] == ours) {
        (true, false) => Some(next.inputs[1]),
        (false, true) => Some(next.inputs[0]),
        _ => None,
    }
}

/// The other operand when `next` is `from + r` (f32 `Add`) with `r` computed (not a constant)
/// and of exactly the sum's shape.
fn residual_of(model: &TypedModel, next: &TypedNode, from: usize) -> TractResult<Option<OutletId>> {
    let ours = OutletId::new(from, 0);
    let Some(other) = added_to(next, ours) else {
        return Ok(None);
    };
    let fact = model.outlet_fact(other)?;
    let sum = model.outlet_fact(OutletId::new(next.id, 0))?;
    if fact.konst.is_some()
        || fact.datum_type != f32::datum_type()
        || !fact.is_plain()
        || fact.shape != sum.shape
        || model.outlet_fact(ours)?.shape != sum.shape
    {
        return Ok(None);
    }
    Ok(Some(other))
}

/// The bias vector when `next` is `einsum + c` with `c` constant, broadcast from `[…, m]` with
/// unit axes elsewhere, and the sum has the einsum's shape.
fn bias_of(
    model: &TypedModel,
    next: &TypedNode,
    from: usize,
    m: usize,
) -> TractResult<Option<Vec<f32>>> {
    let ours = OutletId::new(from, 0);
    let Some(other) = added_to(next, ours) else {
        return Ok(None);
    };
    let fact = model.outlet_fact(other)?;
    let Some(c) = fact.konst.as_ref() else {
        return Ok(None);
    };
    let shape = c.shape();
    if c.datum_type() != f32::datum_type()
        || shape.last() != Some(&m)
        || shape[..shape.len() - 1].iter().any(|d| *d != 1)
        || model.outlet_fact(OutletId::new(next.id, 0))?.shape != model.outlet_fact(ours)?.shape
    {
        return Ok(None);
    }
    let data = c.try_as_plain_ram()?;
    Ok(Some(data.as_slice::<f32>()?.to_vec()))
}

/// Replaces the dense layers of `model` (decluttered) with [`Dense`] ops when the CPU can run
/// the kernel; returns how many were replaced.
pub fn rewrite(model: &mut TypedModel, cache: &PackCache) -> TractResult<usize> {
    if !gemm::available() {
        return Ok(0);
    }
    let mut replaced = 0;
    for id in model.eval_order()? {
        let node = model.node(id);
        if node.op_as::<EinSum>().is_none() {
            continue;
        }
        let Some(m) = match_dense(model, node, cache)? else {
            continue;
        };
        let mut patch = TypedModelPatch::default();
        let mut taps = tvec![patch.tap_model(model, m.activation)?];
        if let Some(r) = m.residual {
            taps.push(patch.tap_model(model, r)?);
        }
        let wire = patch.wire_node(&node.name, m.dense, &taps)?;
        patch.shunt_outside(model, OutletId::new(m.last, 0), wire[0])?;
        patch.apply(model)?;
        replaced += 1;
    }
    Ok(replaced)
}
