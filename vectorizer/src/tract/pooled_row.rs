//! The vision tower's last layer for the pooled token only.
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

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::array::{Gather, Slice};
use tract_onnx::tract_core::ops::change_axes::AxisOp;
use tract_onnx::tract_core::ops::nn::Softmax;

/// Rewrites every `Gather` of one constant scalar index into a slice of one element and the
/// removal of that axis, then declutters `model` again. Returns how many were rewritten.
pub fn rewrite(model: &mut TypedModel) -> TractResult<usize> {
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
