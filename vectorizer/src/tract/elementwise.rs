//! Graph rewrite: f32 `Add` / `Mul` of two tensors of the same shape, or of a tensor and a
//! one-element constant (plans with a symbolic batch size), or of a tensor and a computed one
//! repeated over its leading axes (every plan), as plain loops.
//!
//! Why: tract specializes these (its `OptAddUnicast`, `OptMulByScalar`, …) only when it can
//! prove the shapes equal with concrete sizes. With the batch size symbolic, the residual adds,
//! the quick-GELU products and the layer norms' scalings stay on its generic broadcasting path:
//! 12 of 70 ms of a ViT-B/32 image in the batch plan against 3 in the batch-of-one plan
//! (`examples/op_profile.rs`). Plans with concrete shapes are left to tract.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::math::{Add, Mul};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Add,
    Mul,
}

impl Kind {
    fn apply(self, a: f32, b: f32) -> f32 {
        match self {
            Kind::Add => a + b,
            Kind::Mul => a * b,
        }
    }
}

/// `a ∘ b` with `b` repeated over `a`'s leading axes: `b`'s shape is `a`'s trailing axes,
/// possibly behind unit axes (an attention mask `[1, 1, L, L]` added to scores `[1, H, L, L]`),
/// or all of `a`'s shape (same shapes: one repetition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastInner(pub Kind);

impl Op for BroadcastInner {
    fn name(&self) -> StaticName {
        format!("Clipgate{:?}BroadcastInner", self.0).into()
    }
    op_as_typed_op!();
}

impl EvalOp for BroadcastInner {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        ensure!(inputs.len() == 2, "two inputs expected");
        let mut it = inputs.into_iter();
        let (Some(a), Some(b)) = (it.next(), it.next()) else {
            bail!("two inputs expected");
        };
        let block = b.len();
        ensure!(
            block > 0 && a.len() % block == 0,
            "shapes {:?} and {:?}",
            a.shape(),
            b.shape()
        );
        let mut a = a.into_tensor();
        {
            let mut av = a.try_as_plain_ram_mut()?;
            let av = av.as_slice_mut::<f32>()?;
            let bv = b.try_as_plain_ram()?;
            let bv = bv.as_slice::<f32>()?;
            let k = self.0;
            for chunk in av.chunks_exact_mut(block) {
                for (x, y) in chunk.iter_mut().zip(bv) {
                    *x = k.apply(*x, *y);
                }
            }
        }
        Ok(tvec!(a.into_tvalue()))
    }
}

impl TypedOp for BroadcastInner {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(f32::fact(&*inputs[0].shape)))
    }
    as_op!();
}

/// Whether `small` is `big`'s trailing axes behind unit axes (and strictly smaller).
fn inner_broadcast(big: &ShapeFact, small: &ShapeFact) -> bool {
    if big.rank() != small.rank() || big == small {
        return false;
    }
    let one = 1.to_dim();
    let lead = small.iter().take_while(|d| **d == one).count();
    small.iter().skip(lead).eq(big.iter().skip(lead))
}

/// `a ∘ c` with `c` one constant value (stored as its bits, so the op is `Eq`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByScalar(pub Kind, pub u32);

impl Op for ByScalar {
    fn name(&self) -> StaticName {
        format!("Clipgate{:?}ByScalar", self.0).into()
    }
    op_as_typed_op!();
}

impl EvalOp for ByScalar {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        ensure!(inputs.len() == 1, "one input expected");
        let mut a = inputs
            .into_iter()
            .next()
            .map(|v| v.into_tensor())
            .unwrap_or_default();
        let (k, c) = (self.0, f32::from_bits(self.1));
        {
            let mut av = a.try_as_plain_ram_mut()?;
            for x in av.as_slice_mut::<f32>()? {
                *x = k.apply(*x, c);
            }
        }
        Ok(tvec!(a.into_tvalue()))
    }
}

impl TypedOp for ByScalar {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(f32::fact(&*inputs[0].shape)))
    }
    as_op!();
}

/// Rewrites the f32 `Add` / `Mul` nodes described in the module doc; returns how many.
pub fn rewrite(model: &mut TypedModel) -> TractResult<usize> {
    let mut replaced = 0;
    for id in model.eval_order()? {
        let node = model.node(id);
        let Some(bin) = node.op_as::<TypedBinOp>() else {
            continue;
        };
        let kind = if bin.0.is::<Add>() {
            Kind::Add
        } else if bin.0.is::<Mul>() {
            Kind::Mul
        } else {
            continue;
        };
        if node.inputs.len() != 2 || bin.1.is_some() {
            continue;
        }
        let facts = model.node_input_facts(id)?;
        let out = model.outlet_fact(OutletId::new(id, 0))?;
        let plain_f32 = |f: &TypedFact| f.datum_type == f32::datum_type() && f.is_plain();
        if !facts.iter().all(|f| plain_f32(f)) {
            continue;
        }
        // Computed operands with an inner broadcast stay on tract's generic path even with
        // concrete shapes: rewrite them in every plan (the others only when shapes are symbolic).
        let computed = facts.iter().all(|f| f.konst.is_none());
        if computed
            && inner_broadcast(&facts[0].shape, &facts[1].shape)
            && facts[0].shape == out.shape
        {
            drop(facts);
            let patch = TypedModelPatch::replace_single_op(
                model,
                node,
                &node.inputs,
                BroadcastInner(kind),
            )?;
            patch.apply(model)?;
            replaced += 1;
            continue;
        }
        if computed
            && inner_broadcast(&facts[1].shape, &facts[0].shape)
            && facts[1].shape == out.shape
        {
            let swapped = [node.inputs[1], node.inputs[0]];
            drop(facts);
            let patch =
                TypedModelPatch::replace_single_op(model, node, &swapped, BroadcastInner(kind))?;
            patch.apply(model)?;
            replaced += 1;
            continue;
        }
        if out.shape.as_concrete().is_some() {
            continue;
        }
        let scalar = super::const_scalar;
        let patch = if facts[0].shape == facts[1].shape && facts[0].shape == out.shape {
            TypedModelPatch::replace_single_op(model, node, &node.inputs, BroadcastInner(kind))?
        } else if let (Some(c), true) = (scalar(facts[1]), facts[0].shape == out.shape) {
            TypedModelPatch::replace_single_op(
                model,
                node,
                &node.inputs[..1],
                ByScalar(kind, c.to_bits()),
            )?
        } else if let (Some(c), true) = (scalar(facts[0]), facts[1].shape == out.shape) {
            TypedModelPatch::replace_single_op(
                model,
                node,
                &node.inputs[1..],
                ByScalar(kind, c.to_bits()),
            )?
        } else {
            continue;
        };
        drop(facts);
        patch.apply(model)?;
        replaced += 1;
    }
    Ok(replaced)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::tract_core::ops::math;

    /// `a ∘ b` through the rewrite against tract's own op, with a symbolic leading axis (`sym`)
    /// or concrete shapes; `b_const` makes `b` a constant.
    fn check(op: TypedBinOp, a: &[usize], b: &[usize], sym: bool, b_const: bool, name: &str) {
        let av: Vec<f32> = (0..a.iter().product::<usize>())
            .map(|i| i as f32 * 0.5 - 3.0)
            .collect();
        let bv: Vec<f32> = (0..b.iter().product::<usize>())
            .map(|i| 1.5 - i as f32 * 0.25)
            .collect();
        let bt = Tensor::from_shape(b, &bv).unwrap();
        let build = |rewrite_it: bool| {
            let mut model = TypedModel::default();
            let n = model.symbols.sym("N");
            let mut shape: TVec<TDim> = a.iter().map(|d| d.to_dim()).collect();
            if sym {
                shape[0] = n.to_dim();
            }
            let x = model.add_source("a", f32::fact(&*shape)).unwrap();
            let y = if b_const {
                model.add_const("b", bt.clone()).unwrap()
            } else if a == b {
                model.add_source("b", f32::fact(&*shape)).unwrap()
            } else {
                model.add_source("b", f32::fact(b)).unwrap()
            };
            let out = model.wire_node("op", op.clone(), &[x, y]).unwrap();
            model.select_output_outlets(&out).unwrap();
            if rewrite_it {
                assert_eq!(rewrite(&mut model).unwrap(), 1, "{name}: not rewritten");
                let node = model.node(model.output_outlets().unwrap()[0].node);
                assert_eq!(node.op().name(), name);
            }
            model.into_runnable().unwrap()
        };
        let at = Tensor::from_shape(a, &av).unwrap();
        let run = |p: Arc<TypedRunnableModel>| {
            let mut inputs = tvec![at.clone().into()];
            if !b_const {
                inputs.push(bt.clone().into());
            }
            p.run(inputs).unwrap()[0].clone().into_tensor()
        };
        assert_eq!(run(build(false)), run(build(true)), "{name}");
    }

    #[test]
    fn rewritten_adds_and_muls_equal_tracts() {
        let add = || TypedBinOp(Box::new(math::Add), None);
        let mul = || TypedBinOp(Box::new(math::Mul), None);
        check(
            add(),
            &[2, 3, 5],
            &[2, 3, 5],
            true,
            false,
            "ClipgateAddBroadcastInner",
        );
        check(
            mul(),
            &[2, 3, 5],
            &[1, 1, 1],
            true,
            true,
            "ClipgateMulByScalar",
        );
        check(
            add(),
            &[1, 4, 6, 6],
            &[1, 1, 6, 6],
            false,
            false,
            "ClipgateAddBroadcastInner",
        );
    }
}
