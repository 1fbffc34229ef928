//! Per-op time of one image through the vision tower: tract's own plan (concrete batch 1) next
//! to clipgate's plan (clipgate's rewrites, symbolic batch), summed by op name over ITERS runs.
//!
//! `cargo run --release -p vectorizer --example op_profile [-- ITERS]`
//!
//! Variants, by environment: `PROFILE_TEXT=LEN` (the text tower at LEN tokens), `PROFILE_BATCH=N`
//! (the batch plan on N images, per image), `PROFILE_PAUSE_MS` / `PROFILE_TRASH_MB` (idle, and
//! write that much other memory, before each run: an isolated request), `PROFILE_NODES` /
//! `PROFILE_DECLUTTERED` (print the first nodes, the last with `PROFILE_TAIL`, of clipgate's plan
//! / of tract's decluttered graph instead of timing).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use tract_linalg::multithread::{multithread_tract_scope, Executor};
use tract_onnx::prelude::*;
use vectorizer::tract::plans::VisionTower;

fn profile(
    plan: &Arc<TypedRunnableModel>,
    input: &Tensor,
    iters: usize,
) -> TractResult<BTreeMap<String, (f64, usize)>> {
    let mut by_op: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    let mut state = plan.spawn()?;
    // PROFILE_PAUSE_MS: idle this long before each run, as between isolated requests.
    let pause = std::env::var("PROFILE_PAUSE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(std::time::Duration::from_millis);
    // PROFILE_TRASH_MB: write this much other memory before each run, as another runtime's
    // forward pass would between two requests (evicting caches and page-table entries).
    let mut trash = vec![
        0u8;
        std::env::var("PROFILE_TRASH_MB")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0)
            << 20
    ];
    for it in 0..iters {
        if let Some(p) = pause {
            std::thread::sleep(p);
        }
        for b in trash.iter_mut().step_by(64) {
            *b = b.wrapping_add(it as u8);
        }
        state.run_plan_with_eval(tvec![input.clone().into()], |ctx, st, node, inputs| {
            let t = Instant::now();
            let r = tract_onnx::tract_core::plan::eval(ctx, st, node, inputs);
            let e = by_op.entry(node.op().name().to_string()).or_default();
            e.0 += t.elapsed().as_secs_f64() * 1e3 / iters as f64;
            e.1 += 1;
            r
        })?;
    }
    Ok(by_op)
}

/// The first `limit` nodes of `m` in evaluation order: id, name, op, inputs, output shape.
fn print_nodes(m: &TypedModel, limit: usize) -> TractResult<()> {
    // PROFILE_TAIL: the last `limit` nodes instead of the first.
    let order = m.eval_order()?;
    let skip = if std::env::var_os("PROFILE_TAIL").is_some() {
        order.len().saturating_sub(limit)
    } else {
        0
    };
    for id in order.into_iter().skip(skip).take(limit) {
        let n = m.node(id);
        let ins: Vec<String> = n.inputs.iter().map(|i| format!("{}", i.node)).collect();
        println!(
            "{id} {} {:?} <- {ins:?} {:?}",
            n.name,
            n.op(),
            m.outlet_fact(OutletId::new(id, 0)).map(|f| f.shape.clone())
        );
    }
    Ok(())
}

fn main() -> TractResult<()> {
    let iters: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = std::env::var_os("CLIPGATE_BENCH_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("fixtures/bench/vit-b32"));
    if let Some(len) = std::env::var("PROFILE_TEXT")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        // The text tower for one text of `len` tokens, as the runner runs it.
        let mut text = vectorizer::tract::plans::TextTower::load(
            &dir.join("onnx/text_model.onnx"),
            "text_embeds",
        )?;
        let plan = text.plan(len, 1)?;
        if std::env::var_os("PROFILE_SHAPES").is_some() {
            let m = plan.model();
            for n in m.nodes() {
                if n.op().name() == "Add" {
                    let facts: Vec<String> = n
                        .inputs
                        .iter()
                        .map(|i| {
                            m.outlet_fact(*i)
                                .map(|f| format!("{:?} const={}", f.shape, f.konst.is_some()))
                                .unwrap_or_default()
                        })
                        .collect();
                    println!("Add {} {facts:?}", n.name);
                }
            }
        }
        let ids: Vec<i64> = (0..len as i64).map(|i| 400 + i).collect();
        let ids = Tensor::from_shape(&[1, len], &ids)?;
        let mask = Tensor::from_shape(&[1, len], &vec![1i64; len])?;
        let m = multithread_tract_scope(Executor::SingleThread, || {
            vectorizer::tract::gemm::with_threads(2, || -> TractResult<_> {
                let mut by_op: BTreeMap<String, (f64, usize)> = BTreeMap::new();
                let mut state = plan.spawn()?;
                for it in 0..iters + 2 {
                    state.run_plan_with_eval(
                        tvec![ids.clone().into(), mask.clone().into()],
                        |ctx, st, node, inputs| {
                            let t = Instant::now();
                            let r = tract_onnx::tract_core::plan::eval(ctx, st, node, inputs);
                            if it >= 2 {
                                let e = by_op.entry(node.op().name().to_string()).or_default();
                                e.0 += t.elapsed().as_secs_f64() * 1e3 / iters as f64;
                                e.1 += 1;
                            }
                            r
                        },
                    )?;
                }
                Ok(by_op)
            })
        })?;
        let total: f64 = m.values().map(|v| v.0).sum();
        println!("== text, {len} tokens: {total:.2} ms");
        let mut v: Vec<_> = m.into_iter().collect();
        v.sort_by(|x, y| y.1 .0.total_cmp(&x.1 .0));
        for (name, (ms, n)) in v.iter().take(14) {
            println!("  {name:<28} {ms:>8.2} ms  ({} nodes)", n / iters.max(1));
        }
        return Ok(());
    }
    let onnx = dir.join("onnx/vision_model.onnx");
    let ours = VisionTower::load(&onnx, 224, 224)?;
    let mut model = tract_onnx::onnx().model_for_path(&onnx)?;
    model.set_input_fact(
        0,
        InferenceFact::dt_shape(f32::datum_type(), tvec![1, 3, 224, 224]),
    )?;
    let outs = model.output_outlets()?.to_vec();
    model.select_output_outlets(&outs[..1])?;
    let raw = model.into_optimized()?.into_runnable()?;
    let input = Tensor::zero::<f32>(&[1, 3, 224, 224])?;
    if std::env::var_os("PROFILE_DECLUTTERED").is_some() {
        let mut model = tract_onnx::onnx().model_for_path(&onnx)?;
        model.set_input_fact(
            0,
            InferenceFact::dt_shape(f32::datum_type(), tvec![1, 3, 224, 224]),
        )?;
        return print_nodes(&model.into_typed()?.into_decluttered()?, 40);
    }
    if std::env::var_os("PROFILE_NODES").is_some() {
        return print_nodes(ours.plan().model(), 60);
    }
    if std::env::var_os("PROFILE_SHAPES").is_some() {
        let m = ours.plan().model();
        for n in m.nodes() {
            let name = n.op().name();
            if name == "Mul" || name == "Add" || name == "MoveAxis" {
                let facts: Vec<String> = n
                    .inputs
                    .iter()
                    .map(|i| format!("{:?}", m.outlet_fact(*i).map(|f| f.shape.clone())))
                    .collect();
                println!("{name} {} {facts:?}", n.name);
            }
        }
        return Ok(());
    }
    if let Some(batch) = std::env::var("PROFILE_BATCH")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        // The symbolic-batch plan on `batch` images, as the runner runs it (tract
        // single-threaded, dense products on two threads); per image.
        let input = Tensor::zero::<f32>(&[batch, 3, 224, 224])?;
        let m = multithread_tract_scope(Executor::SingleThread, || {
            vectorizer::tract::gemm::with_threads(2, || -> TractResult<_> {
                profile(ours.plan(), &input, 2)?;
                profile(ours.plan(), &input, iters)
            })
        })?;
        let total: f64 = m.values().map(|v| v.0).sum();
        println!("== batch {batch}: {:.2} ms per image", total / batch as f64);
        let mut v: Vec<_> = m.into_iter().collect();
        v.sort_by(|x, y| y.1 .0.total_cmp(&x.1 .0));
        for (name, (ms, n)) in v.iter().take(8) {
            println!(
                "  {name:<28} {:>8.2} ms/image  ({} nodes)",
                ms / batch as f64,
                n / iters.max(1)
            );
        }
        return Ok(());
    }
    let exec = Executor::multithread_with_name(2, "profile");
    let a = multithread_tract_scope(exec, || -> TractResult<_> {
        profile(&raw, &input, 2)?;
        profile(&raw, &input, iters)
    })?;
    // As the runner runs it: tract single-threaded, the dense products on two threads.
    let b = multithread_tract_scope(Executor::SingleThread, || {
        vectorizer::tract::gemm::with_threads(2, || -> TractResult<_> {
            profile(ours.plan(), &input, 2)?;
            profile(ours.plan(), &input, iters)
        })
    })?;
    for (label, m) in [
        ("tract", a),
        ("clipgate (tract single-threaded, dense on 2)", b),
    ] {
        let total: f64 = m.values().map(|v| v.0).sum();
        println!("== {label}: {total:.2} ms per image");
        let mut v: Vec<_> = m.into_iter().collect();
        v.sort_by(|x, y| y.1 .0.total_cmp(&x.1 .0));
        for (name, (ms, n)) in v.iter().take(14) {
            println!("  {name:<28} {ms:>8.2} ms  ({} nodes)", n / iters.max(1));
        }
    }
    Ok(())
}
