//! In-process inference with tract-onnx: cached plans per input shape and a batching runner
//! thread (issue 2 item 4).

pub mod attention;
pub mod dense;
pub mod elementwise;
pub mod gemm;
pub mod layer_norm;
pub mod patch_embed;
pub mod plans;
pub mod pooled_row;
pub mod runner;
pub mod softmax;
pub mod spin_pool;

use tract_onnx::prelude::*;

/// The shared loop of the single-op rewrites (`attention`, `patch_embed`, `softmax`): every node,
/// in evaluation order, for which `matched` returns an op and its inputs, is replaced by that op.
/// Returns how many were replaced.
pub(crate) fn replace_each<O: TypedOp>(
    model: &mut TypedModel,
    mut matched: impl FnMut(&TypedModel, &TypedNode) -> TractResult<Option<(TVec<OutletId>, O)>>,
) -> TractResult<usize> {
    let mut replaced = 0;
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some((inputs, op)) = matched(model, node)? else {
            continue;
        };
        let patch = TypedModelPatch::replace_single_op(model, node, &inputs, op)?;
        patch.apply(model)?;
        replaced += 1;
    }
    Ok(replaced)
}

/// The value of a one-element f32 constant (a scale such as quick GELU's 1.702), if `fact` is one.
pub(crate) fn const_scalar(fact: &TypedFact) -> Option<f32> {
    let t = fact.konst.as_ref()?;
    if t.len() != 1 || t.datum_type() != f32::datum_type() {
        return None;
    }
    t.try_as_plain_ram()
        .ok()?
        .as_slice::<f32>()
        .ok()?
        .first()
        .copied()
}
