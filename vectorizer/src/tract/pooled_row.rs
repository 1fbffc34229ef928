//! A tower's last layer for the pooled token only (both rewrites are applied to every plan).
//!
//! CLIP's vision tower pools the class token: `last_hidden_state[:, 0, :]`, an ONNX `Gather` with
//! a constant scalar index on the token axis. Every op of the last encoder layer but its first
//! layer norm and its key / value projections is row-wise in the tokens (the query projection,
//! the attention of the query over all keys, the output projection, the residuals, the second
//! layer norm and the MLP), so only the pooled token's row of them is used. Those products are
//! 10 of the layer's 12 d² of weights: computing 1 row of them instead of 50 drops about 7 % of
//! the tower's dense work.
//!
//! tract already knows how to compute only what a `Slice` keeps: its declutter pass
//! `PushSliceUp` moves a slice above each op that can be sliced along that axis, until it reaches
//! a wire other consumers read in full (here the first layer norm, which also feeds the keys and
//! values, and the residual). It does this for a one-element *vector* index (`Gather::declutter`)
//! but not for a scalar one, which is what the HF export holds. This rewrite turns the scalar
//! `Gather` into `Slice` + removal of the axis and declutters again, so tract pushes the slice up.

use std::collections::{HashMap, HashSet};

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::array::{Gather, Slice};
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::change_axes::AxisOp;
use tract_onnx::tract_core::ops::einsum::EinSum;
use tract_onnx::tract_core::ops::element_wise::ElementWiseOp;
use tract_onnx::tract_core::ops::nn::{Reduce, RmsNorm, Softmax};

/// Both rewrites: the vision tower's constant index ([`rewrite_constant`]) and the text tower's
/// computed one ([`rewrite_computed`]). Returns how many pooling gathers were moved up.
pub fn rewrite(model: &mut TypedModel) -> TractResult<usize> {
    Ok(rewrite_constant(model)? + rewrite_computed(model)?)
}

/// Rewrites every `Gather` of one constant scalar index into a slice of one element and the
/// removal of that axis, then declutters `model` again. Returns how many were rewritten.
pub fn rewrite_constant(model: &mut TypedModel) -> TractResult<usize> {
    let mut rewritten = 0;
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(op) = node.op_as::<Gather>() else {
            continue;
        };
        let (data, indices) = (node.inputs[0], node.inputs[1]);
        let data_fact = model.outlet_fact(data)?;
        let Some(index) = model.outlet_fact(indices)?.konst.as_ref() else {
            continue;
        };
        if index.rank() != 0 || !data_fact.is_plain() {
            continue;
        }
        let Ok(index) = index.cast_to_scalar::<i64>() else {
            continue;
        };
        let Some(len) = data_fact.shape[op.axis].to_i64().ok() else {
            continue;
        };
        let index = if index < 0 { index + len } else { index };
        if !(0..len).contains(&index) {
            continue;
        }
        let mut patch = TypedModelPatch::default();
        let wire = patch.tap_model(model, data)?;
        let axis = op.axis;
        let wire = patch.wire_node(
            format!("{}.slice", node.name),
            Slice::new(axis, index as usize, index as usize + 1),
            &[wire],
        )?[0];
        let wire = patch.wire_node(format!("{}.rm", node.name), AxisOp::Rm(axis), &[wire])?[0];
        patch.shunt_outside(model, id.into(), wire)?;
        patch.apply(model)?;
        rewritten += 1;
    }
    if rewritten > 0 {
        model.declutter()?;
        // tract's `Softmax` cannot be sliced (it has no `TypedOp::slice`), so the pushed slice
        // stops at the attention probabilities, short of the query projection. A slice along an
        // axis the softmax does not normalize over commutes with it: move it above, and let
        // declutter carry it on up to the query projection.
        while slice_above_softmax(model)? {
            model.declutter()?;
        }
    }
    Ok(rewritten)
}

/// Moves one `Slice` that is the only reader of a `Softmax` over other axes above that softmax.
fn slice_above_softmax(model: &mut TypedModel) -> TractResult<bool> {
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(slice) = node.op_as::<Slice>() else {
            continue;
        };
        let prev = model.node(node.inputs[0].node);
        let Some(softmax) = prev.op_as::<Softmax>() else {
            continue;
        };
        if softmax.axes.contains(&slice.axis) || prev.outputs[0].successors.len() != 1 {
            continue;
        }
        let mut patch = TypedModelPatch::default();
        let wire = patch.tap_model(model, prev.inputs[0])?;
        let wire = patch.wire_node(format!("{}.before", node.name), slice.clone(), &[wire])?[0];
        let wire = patch.wire_node(&prev.name, softmax.clone(), &[wire])?[0];
        patch.shunt_outside(model, id.into(), wire)?;
        patch.apply(model)?;
        return Ok(true);
    }
    Ok(false)
}

/// The text tower's pooling: `last_hidden_state` (`[N, L, d]`) flattened to `[N·L, d]` and
/// gathered at the EOS token of each text (indices computed from the input ids). No slice can
/// express that, so the gather itself is moved up, by hand, above the ops that are row-wise in
/// the tokens (final layer norm, the last layer's MLP, second layer norm, residuals and output
/// projection: each reads only its own token's row), to the wires that other ops read in full
/// (the attention output and the residual): those are gathered instead (each `[N, L, ...]` →
/// `[N, 1, ...]`, the token axis kept as a unit axis so that every op keeps its axes), and the
/// row-wise ops run on `N` rows instead of `N·L`. The attention itself is not crossed: its query
/// rows meet the causal mask's, which a per-text gather would have to follow.
///
/// Only the symbolic-batch plan has this shape: with a batch of one, tract's declutter has
/// folded the batch axis away and the products put the tokens first.
pub fn rewrite_computed(model: &mut TypedModel) -> TractResult<usize> {
    let mut rewritten = 0;
    // Node ids change with each applied patch: start over after each.
    'again: loop {
        for id in model.eval_order()? {
            // A graph this does not understand keeps its gather where it is: a model that
            // loads without the rewrite must load with it.
            match gather_rows_up(model, id) {
                Ok(Some(patch)) => {
                    // On a copy: a patch that fails half-way must not leave a broken graph.
                    let mut patched = model.clone();
                    match patch.apply(&mut patched) {
                        Ok(()) => {
                            *model = patched;
                            rewritten += 1;
                            continue 'again;
                        }
                        Err(e) => tracing::debug!("pooling gather left in place: {e:?}"),
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::debug!("pooling gather left in place: {e:?}"),
            }
        }
        return Ok(rewritten);
    }
}

/// Whether `node` reads and writes token rows independently: its output's token axis (1) is
/// axis 1 of every input that has it, and its op is one of those the row-wise part of a
/// transformer layer is made of.
fn row_wise(model: &TypedModel, node: &TypedNode, rows: &TDim) -> TractResult<bool> {
    let known = node.op_is::<EinSum>()
        || node.op_is::<TypedBinOp>()
        || node.op_is::<ElementWiseOp>()
        || node.op_as::<Reduce>().is_some_and(|r| !r.axes.contains(&1))
        || node.op_as::<RmsNorm>().is_some_and(|r| r.axis != 1);
    if !known || node.outputs.len() != 1 {
        return Ok(false);
    }
    let out = &node.outputs[0].fact;
    if out.rank() < 2 || out.shape[1] != *rows {
        return Ok(false);
    }
    let (ifacts, ofacts) = model.node_facts(node.id)?;
    let mapping = node.op.axes_mapping(&ifacts, &ofacts)?;
    let axis = mapping.axis((InOut::Out(0), 1))?;
    Ok(axis.inputs.iter().all(|p| p.is_empty() || p[..] == [1]))
}

/// The patch that moves the gather `id` (if it is a pooling gather, see [`rewrite_computed`])
/// above the row-wise ops that feed it.
fn gather_rows_up(model: &TypedModel, id: usize) -> TractResult<Option<TypedModelPatch>> {
    let node = model.node(id);
    let Some(gather) = node.op_as::<Gather>() else {
        return Ok(None);
    };
    let indices = node.inputs[1];
    // A gather already moved up stays behind, unread.
    let read = !node.outputs[0].successors.is_empty()
        || model.output_outlets()?.contains(&OutletId::new(id, 0));
    if !read || gather.axis != 0 || model.outlet_fact(indices)?.konst.is_some() {
        return Ok(None);
    }
    // The flattening of [N, L, ...] into [N·L, ...].
    let flat = model.node(node.inputs[0].node);
    let Some(flatten @ AxisOp::Reshape(0, from, to)) = flat.op_as::<AxisOp>() else {
        return Ok(None);
    };
    if from.len() != 2 || to.len() != 1 || flat.outputs[0].successors.len() != 1 {
        return Ok(None);
    }
    let (batch, rows) = (from[0].clone(), from[1].clone());
    let top = flat.inputs[0];
    // The row-wise nodes whose every reader is in the set, from the top down.
    let mut chain: HashSet<usize> = HashSet::new();
    let mut todo = vec![top.node];
    while let Some(n) = todo.pop() {
        let cand = model.node(n);
        if chain.contains(&n) || !row_wise(model, cand, &rows)? {
            continue;
        }
        let readers_in = cand.outputs[0]
            .successors
            .iter()
            .all(|s| chain.contains(&s.node) || (n == top.node && s.node == flat.id));
        if !readers_in {
            continue;
        }
        chain.insert(n);
        todo.extend(cand.inputs.iter().map(|i| i.node));
    }
    // Worth it only if a product moves (the MLP and output projection).
    if !chain.iter().any(|n| model.node(*n).op_is::<EinSum>()) {
        return Ok(None);
    }
    let mut patch = TypedModelPatch::default();
    let idx = patch.tap_model(model, indices)?;
    let mut mapped: HashMap<OutletId, OutletId> = HashMap::new();
    for n in model.eval_order()? {
        if !chain.contains(&n) {
            continue;
        }
        let cand = model.node(n);
        let (ifacts, ofacts) = model.node_facts(n)?;
        let mapping = cand.op.axes_mapping(&ifacts, &ofacts)?;
        let tokens = mapping.axis((InOut::Out(0), 1))?;
        let mut inputs = tvec![];
        for (j, &i) in cand.inputs.iter().enumerate() {
            if let Some(w) = mapped.get(&i) {
                inputs.push(*w);
                continue;
            }
            if chain.contains(&i.node) {
                bail!("{}: an input in the chain is not mapped yet", cand.name);
            }
            let fact = model.outlet_fact(i)?;
            let tapped = patch.tap_model(model, i)?;
            let wire = if tokens.inputs[j].is_empty() || fact.shape[1] == 1.to_dim() {
                // No token axis (the weights) or broadcast over it: as it is.
                tapped
            } else if fact.konst.is_none() && fact.shape[0] == batch && fact.shape[1] == rows {
                // A wire other ops read in full: its rows at the indices, token axis kept.
                let name = format!("{}.pooled-rows", model.node(i.node).name);
                let w = patch.wire_node(format!("{name}.flat"), flatten.clone(), &[tapped])?;
                let w = patch.wire_node(format!("{name}.gather"), gather.clone(), &[w[0], idx])?;
                let w = patch.wire_node(format!("{name}.unit"), AxisOp::Add(1), &w)?[0];
                mapped.insert(i, w);
                w
            } else {
                // Token rows shared by the batch (a constant [1, L, ...]): not this pattern.
                return Ok(None);
            };
            inputs.push(wire);
        }
        let out = patch.wire_node(&cand.name, cand.op.clone(), &inputs)?[0];
        mapped.insert(OutletId::new(n, 0), out);
    }
    let Some(&pooled) = mapped.get(&top) else {
        return Ok(None);
    };
    let out = patch.wire_node(format!("{}.rm", node.name), AxisOp::Rm(1), &[pooled])?[0];
    patch.shunt_outside(model, id.into(), out)?;
    Ok(Some(patch))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tract::gemm::tests::{assert_close, data};

    fn einsum(expr: &str) -> EinSum {
        EinSum::new(expr.parse().unwrap(), f32::datum_type())
    }

    /// Runs `build`'s graph as it is and through [`rewrite`] on the same inputs: the rewrite
    /// count, and whether both gave the same output (within float rounding).
    fn compare(build: impl Fn() -> TypedModel, inputs: TVec<Tensor>) -> usize {
        let plain = build().into_runnable().unwrap();
        let mut model = build();
        let count = rewrite(&mut model).unwrap();
        let rewritten = model.into_runnable().unwrap();
        let run = |p: &Arc<TypedRunnableModel>| {
            p.run(inputs.iter().map(|t| t.clone().into()).collect())
                .unwrap()[0]
                .clone()
                .into_tensor()
        };
        assert_close(&run(&plain), &run(&rewritten), 1e-5, "pooled rows");
        count
    }

    /// `x` `[N, L, d]` through a dense layer with a skip connection (plus `addend`, if any) and
    /// an RMS norm, flattened to `[N·L, d]` and gathered at computed row indices, as the
    /// text tower pools its EOS tokens.
    /// A model with a source `x` of `[N, l, d]` and `y = x · W` (a dense layer): `(model, x, y)`.
    fn dense_layer(l: usize, d: usize) -> (TypedModel, OutletId, OutletId) {
        let mut model = TypedModel::default();
        let n = model.symbols.sym("N").to_dim();
        let x = model
            .add_source("x", f32::fact([n, l.to_dim(), d.to_dim()]))
            .unwrap();
        let w = model
            .add_const("w", tensor1(&data(d * d, 3)).into_shape(&[d, d]).unwrap())
            .unwrap();
        let y = model
            .wire_node("dense", einsum("amk,kn->amn"), &[x, w])
            .unwrap()[0];
        (model, x, y)
    }

    fn text_like(addend: Option<Tensor>) -> TypedModel {
        let (l, d) = (5usize, 16usize);
        let (mut model, x, y) = dense_layer(l, d);
        let n = model.symbols.sym("N").to_dim();
        let idx = model.add_source("idx", i64::fact([n.clone()])).unwrap();
        let mut h = model
            .wire_node("skip", tract_onnx::tract_core::ops::math::add(), &[x, y])
            .unwrap()[0];
        if let Some(c) = addend {
            let c = model.add_const("c", c).unwrap();
            h = model
                .wire_node("addend", tract_onnx::tract_core::ops::math::add(), &[h, c])
                .unwrap()[0];
        }
        let eps = Arc::new(tensor0(1e-5f32));
        let r = model
            .wire_node("norm", RmsNorm { axis: 2, eps }, &[h])
            .unwrap()[0];
        let flat = AxisOp::Reshape(0, tvec![n.clone(), l.to_dim()], tvec![n * l]);
        let f = model.wire_node("flat", flat, &[r]).unwrap()[0];
        let g = model.wire_node("pool", Gather::new(0), &[f, idx]).unwrap();
        model.select_output_outlets(&g).unwrap();
        model
    }

    fn text_inputs() -> TVec<Tensor> {
        let x = tensor1(&data(3 * 5 * 16, 7))
            .into_shape(&[3, 5, 16])
            .unwrap();
        // Text 0 ends at token 4, text 1 at 0, text 2 at 2: flat rows 4, 5, 12.
        tvec![x, tensor1(&[4i64, 5, 12])]
    }

    #[test]
    fn computed_pooling_moves_above_row_wise_ops() {
        assert_eq!(compare(|| text_like(None), text_inputs()), 1);
        // Broadcast over the tokens: still row-wise.
        let bias = tensor1(&data(16, 5)).into_shape(&[1, 1, 16]).unwrap();
        assert_eq!(compare(|| text_like(Some(bias.clone())), text_inputs()), 1);
    }

    #[test]
    fn rows_shared_by_the_batch_keep_the_gather_in_place() {
        // A constant [1, L, d] (per-token values shared by every text) is not gathered by
        // the text's indices: the graph is left as it is.
        let c = tensor1(&data(5 * 16, 9)).into_shape(&[1, 5, 16]).unwrap();
        assert_eq!(compare(|| text_like(Some(c.clone())), text_inputs()), 0);
    }

    #[test]
    fn constant_pooling_becomes_a_slice() {
        let (l, d) = (6usize, 16usize);
        let build = || {
            let (mut model, _, y) = dense_layer(l, d);
            let i = model.add_const("i", tensor0(2i64)).unwrap();
            let g = model.wire_node("pool", Gather::new(1), &[y, i]).unwrap();
            model.select_output_outlets(&g).unwrap();
            model
        };
        let x = tensor1(&data(2 * l * d, 4)).into_shape(&[2, l, d]).unwrap();
        assert_eq!(compare(build, tvec![x]), 1);
    }
}
