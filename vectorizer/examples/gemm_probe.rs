//! The dense-layer product alone, CLIP's shapes: clipgate's kernel (`tract::gemm`) next to
//! tract's optimized matmul of the same constant weights, 1 and 2 threads, interleaved.
//! Prints min / median ms and GB/s of weights (small n) or GFLOP/s (large n).
//!
//! `cargo run --release -p vectorizer --example gemm_probe [-- ITERS]`

use std::time::Instant;

use tract_linalg::multithread::{multithread_tract_scope, Executor};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::einsum::EinSum;
use vectorizer::tract::gemm::PackedWeights;

fn data(len: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}

fn tract_plan(w: &[f32], n: usize, k: usize, m: usize) -> TractResult<Arc<TypedRunnableModel>> {
    let mut model = TypedModel::default();
    let x = model.add_source("x", f32::fact([n, k]))?;
    let wt = tensor1(w).into_shape(&[k, m])?;
    let w = model.add_const("w", wt)?;
    let y = model.wire_node(
        "mm",
        EinSum::new("nk,km->nm".parse()?, f32::datum_type()),
        &[x, w],
    )?;
    model.select_output_outlets(&y)?;
    model.into_optimized()?.into_runnable()
}

fn main() -> TractResult<()> {
    let iters: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    if !vectorizer::tract::gemm::available() {
        eprintln!("no AVX-512F on this CPU: nothing to compare");
        return Ok(());
    }
    let two = Executor::multithread_with_name(2, "probe");
    let one = Executor::SingleThread;
    // (n, k, m): text 7 and 77 tokens (MLP up), image 50 patches (MLP up / down), 16 images.
    let shapes = [
        (7, 512, 2048),
        (7, 2048, 512),
        (77, 512, 2048),
        (50, 768, 3072),
        (50, 3072, 768),
        (50, 768, 768),
        (800, 768, 3072),
    ];
    println!(
        "{:<18} {:>6} {:>10} {:>10} {:>10}  rate(ours 2thr)",
        "n×k×m", "thr", "tract ms", "ours ms", "ratio"
    );
    for (n, k, m) in shapes {
        if std::env::var_os("PROBE_CHAIN_N").is_some() {
            break;
        }
        let w = data(k * m, 7);
        let x = data(n * k, 11);
        let plan = tract_plan(&w, n, k, m)?;
        let packed = PackedWeights::pack(&w, k, m);
        let xt = tensor1(&x).into_shape(&[n, k])?;
        let mut y = vec![0f32; n * m];
        // Cross-check once.
        let want = plan.run(tvec![xt.clone().into()])?;
        packed.matmul(&x, n, &mut y);
        let want = want[0].to_plain_array_view::<f32>()?;
        let maxdiff = want
            .iter()
            .zip(&y)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        for (label, exec) in [("1", &one), ("2", &two)] {
            let (mut tt, mut to) = (Vec::new(), Vec::new());
            for _ in 0..iters {
                let t = Instant::now();
                multithread_tract_scope(exec.clone(), || plan.run(tvec![xt.clone().into()]))?;
                tt.push(t.elapsed().as_secs_f64() * 1e3);
                let t = Instant::now();
                multithread_tract_scope(exec.clone(), || packed.matmul(&x, n, &mut y));
                to.push(t.elapsed().as_secs_f64() * 1e3);
            }
            tt.sort_by(f64::total_cmp);
            to.sort_by(f64::total_cmp);
            let (tm, om) = (tt[iters / 2], to[iters / 2]);
            let rate = if n < 32 {
                format!("{:.1} GB/s", (k * m * 4) as f64 / om / 1e6)
            } else {
                format!("{:.1} GFLOP/s", (2 * n * k * m) as f64 / om / 1e6)
            };
            println!(
                "{:<18} {:>6} {:>10.3} {:>10.3} {:>9.2}x  {rate}  (min {:.3}/{:.3}, maxdiff {maxdiff:.2e})",
                format!("{n}×{k}×{m}"),
                label,
                tm,
                om,
                tm / om,
                tt[0],
                to[0],
            );
        }
    }
    // The text tower's 72 dense layers in sequence (151 MB of weights, beyond L3): weights come
    // from memory as they do in a real query.
    let only: Option<usize> = std::env::var("PROBE_CHAIN_N")
        .ok()
        .and_then(|s| s.parse().ok());
    for (n, d) in [(7usize, 512usize), (77, 512), (50, 768)] {
        if only.is_some_and(|o| o != n) {
            continue;
        }
        let mut layers = Vec::new();
        // PROBE_WARM: the same 6 layers 12 times (28 MB of weights at d = 768, inside L3), to
        // tell compute from weight streaming.
        let warm = std::env::var_os("PROBE_WARM").is_some();
        for l in 0..12u32 {
            if warm && l > 0 {
                for i in 0..6 {
                    let (k, m, plan, packed): &(usize, usize, _, PackedWeights) = &layers[i];
                    layers.push((*k, *m, Arc::clone(plan), packed.clone()));
                }
                continue;
            }
            for (i, (k, m)) in [(d, d), (d, d), (d, d), (d, d), (d, 4 * d), (4 * d, d)]
                .into_iter()
                .enumerate()
            {
                let w = data(k * m, l * 8 + i as u32);
                layers.push((
                    k,
                    m,
                    tract_plan(&w, n, k, m)?,
                    PackedWeights::pack(&w, k, m),
                ));
            }
        }
        let xs: Vec<(Vec<f32>, Tensor)> = [d, 4 * d]
            .iter()
            .map(|&k| {
                let x = data(n * k, 5);
                let t = tensor1(&x).into_shape(&[n, k]).unwrap();
                (x, t)
            })
            .collect();
        let mut y = vec![0f32; n * 4 * d];
        for (label, exec) in [("1", &one), ("2", &two)] {
            let (mut tt, mut to) = (Vec::new(), Vec::new());
            for _ in 0..iters {
                let t = Instant::now();
                multithread_tract_scope(exec.clone(), || -> TractResult<()> {
                    for (k, _, plan, _) in &layers {
                        let xt = if *k == d { &xs[0].1 } else { &xs[1].1 };
                        plan.run(tvec![xt.clone().into()])?;
                    }
                    Ok(())
                })?;
                tt.push(t.elapsed().as_secs_f64() * 1e3);
                let t = Instant::now();
                multithread_tract_scope(exec.clone(), || {
                    for (k, m, _, packed) in &layers {
                        let x = if *k == d { &xs[0].0 } else { &xs[1].0 };
                        packed.matmul(x, n, &mut y[..n * m]);
                    }
                });
                to.push(t.elapsed().as_secs_f64() * 1e3);
            }
            tt.sort_by(f64::total_cmp);
            to.sort_by(f64::total_cmp);
            let (tm, om) = (tt[iters / 2], to[iters / 2]);
            println!(
                "tower n={n:<3} d={d} 72 layers thr {label}: tract {tm:.2} ms, ours {om:.2} ms, {:.2}x, ours {:.1} GB/s (min {:.2}/{:.2})",
                tm / om,
                (12 * 12 * d * d * 4) as f64 / om / 1e6,
                tt[0],
                to[0]
            );
        }
    }
    Ok(())
}
