//! Where the time of one CLIP query goes (issue 2 speed): per-stage times of clipgate's path
//! next to a raw tract run of the same ONNX files with concrete shapes, all in one process and
//! interleaved iteration by iteration, so that the shared 2-core machine's noise hits every
//! variant alike. Prints min and median ms per variant.
//!
//! `cargo run --release -p vectorizer --example clip_stages [-- ITERS]`; the model directory
//! is `fixtures/bench/vit-b32` (fixtures/scripts/make_bench_model.py) or CLIPGATE_BENCH_MODEL.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use tract_linalg::multithread::{multithread_tract_scope, Executor};
use tract_onnx::prelude::*;
use vectorizer::tract::plans::{TextTower, VisionTower};
use vectorizer::{Embedder, ModelOptions, TractClip};

type Plan = Arc<TypedRunnableModel>;

fn raw_plan(path: &Path, facts: Vec<InferenceFact>, output: &str) -> TractResult<Plan> {
    let mut model = tract_onnx::onnx().model_for_path(path)?;
    let outs = model.output_outlets()?.to_vec();
    let chosen = outs
        .iter()
        .find(|o| model.outlet_label(**o) == Some(output))
        .copied()
        .unwrap_or(outs[0]);
    model.select_output_outlets(&[chosen])?;
    for (ix, f) in facts.into_iter().enumerate() {
        model.set_input_fact(ix, f)?;
    }
    model.into_optimized()?.into_runnable()
}

fn png_b64() -> String {
    let img = image::RgbImage::from_fn(224, 224, |x, y| {
        image::Rgb([(x * 255 / 224) as u8, (y * 255 / 224) as u8, 90])
    });
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .expect("png");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

struct Stats {
    name: String,
    ms: Vec<f64>,
}

fn report(stats: &mut [Stats]) {
    for s in stats {
        s.ms.sort_by(f64::total_cmp);
        let med = s.ms[s.ms.len() / 2];
        let q1 = s.ms[s.ms.len() / 4];
        println!(
            "{:<48} min {:>8.2}  p25 {:>8.2}  median {:>8.2}",
            s.name, s.ms[0], q1, med
        );
    }
}

fn main() -> TractResult<()> {
    let iters: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = std::env::var_os("CLIPGATE_BENCH_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("fixtures/bench/vit-b32"));
    let text_onnx = dir.join("onnx/text_model.onnx");
    let vision_onnx = dir.join("onnx/vision_model.onnx");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;

    let t0 = Instant::now();
    let opts = ModelOptions {
        model_dir: dir.clone(),
        ..ModelOptions::default()
    };
    let model = TractClip::load(&opts)?;
    let nowait = TractClip::load(&ModelOptions {
        batch_wait: Duration::ZERO,
        ..opts.clone()
    })?;
    eprintln!(
        "clipgate models loaded in {:.1} s",
        t0.elapsed().as_secs_f64()
    );

    // STAGES_TEXT: another query text (e.g. a long one for the 77-token case).
    let text = std::env::var("STAGES_TEXT").unwrap_or_else(|_| "a photo of a cat".to_string());
    let ids = model.tokenize(&text)?;
    let len = ids.len();
    eprintln!("{len} tokens");
    let b64 = png_b64();

    let t0 = Instant::now();
    let mut tower = TextTower::load(&text_onnx, "text_embeds")?;
    let bucket = vectorizer::tract::runner::default_buckets(77)
        .into_iter()
        .find(|b| *b >= len)
        .unwrap_or(77);
    tower.plan(bucket, 1)?;
    let mut tower1 = TextTower::load(&text_onnx, "text_embeds")?;
    tower1.plan(bucket, 1)?;
    tower.plan(len, 1)?;
    let vtower = VisionTower::load(&vision_onnx, 224, 224)?;
    let i64f = |l: usize| InferenceFact::dt_shape(i64::datum_type(), tvec![1, l]);
    let raw_text = raw_plan(&text_onnx, vec![i64f(len), i64f(len)], "text_embeds")?;
    let raw_text8 = raw_plan(&text_onnx, vec![i64f(8), i64f(8)], "text_embeds")?;
    let raw_vision = raw_plan(
        &vision_onnx,
        vec![InferenceFact::dt_shape(
            f32::datum_type(),
            tvec![1, 3, 224, 224],
        )],
        "image_embeds",
    )?;
    eprintln!("raw plans built in {:.1} s", t0.elapsed().as_secs_f64());

    let ids_t = Tensor::from_shape(&[1, len], &ids)?;
    let mask_t = Tensor::from_shape(&[1, len], &vec![1i64; len])?;
    let mut ids8 = ids.clone();
    ids8.resize(8, 0);
    let ids8_t = Tensor::from_shape(&[1, 8], &ids8)?;
    let mut m8 = vec![1i64; len];
    m8.resize(8, 0);
    let mask8_t = Tensor::from_shape(&[1, 8], &m8)?;
    let pixels = model.preprocess_image(&b64)?;
    let pix_t = Tensor::from_shape(&[1, 3, 224, 224], &pixels)?;

    let exec = Executor::multithread_with_name(2, "stages");
    let texts = vec![text.clone()];
    let images = vec![b64.clone()];
    let detect = |m: TypedModel| -> TractResult<TypedModel> {
        let mut m = m;
        if let Some(t) =
            tract_onnx::tract_core::transform::get_transform("transformers_detect_all")?
        {
            t.transform(&mut m)?;
        }
        Ok(m)
    };
    let fused_text = {
        let mut model = tract_onnx::onnx().model_for_path(&text_onnx)?;
        model.set_input_fact(0, i64f(len))?;
        model.set_input_fact(1, i64f(len))?;
        let outs = model.output_outlets()?.to_vec();
        model.select_output_outlets(&outs[..1])?;
        let mut m = model.into_typed()?.into_decluttered()?;
        m = detect(m)?;
        m.into_optimized()?.into_runnable()?
    };

    type Variant<'a> = (&'static str, Box<dyn FnMut() -> TractResult<()> + 'a>);
    let scoped = |e: &Executor, f: &mut dyn FnMut() -> TractResult<()>| {
        multithread_tract_scope(e.clone(), f)
    };
    let single = Executor::SingleThread;
    let th0 = |f: &mut dyn FnMut() -> TractResult<()>| {
        let old = tract_linalg::multithread::current_threading_panel_threshold();
        let oldm = tract_linalg::multithread::current_threading_mac_threshold();
        tract_linalg::multithread::set_threading_panel_threshold(0);
        tract_linalg::multithread::set_threading_mac_threshold(0);
        let r = f();
        tract_linalg::multithread::set_threading_panel_threshold(old);
        tract_linalg::multithread::set_threading_mac_threshold(oldm);
        r
    };
    let text_ins = || tvec![ids_t.clone().into(), mask_t.clone().into()];
    let mut variants: Vec<Variant> = vec![
        (
            "text: tokenize",
            Box::new(|| {
                model.tokenize(&text)?;
                Ok(())
            }),
        ),
        (
            "text: TractClip.embed_texts (2 ms wait)",
            Box::new(|| {
                for r in rt.block_on(model.embed_texts(&texts)) {
                    r?;
                }
                Ok(())
            }),
        ),
        (
            "text: TractClip.embed_texts (no wait)",
            Box::new(|| {
                for r in rt.block_on(nowait.embed_texts(&texts)) {
                    r?;
                }
                Ok(())
            }),
        ),
        (
            "text: TextTower.run, batch 1",
            Box::new(|| {
                scoped(&exec, &mut || {
                    tower.run(std::slice::from_ref(&ids), bucket, 0)?;
                    Ok(())
                })
            }),
        ),
        (
            "text: TextTower.run, batch 1, tract 1 thr, dense 2",
            Box::new(|| {
                scoped(&single, &mut || {
                    vectorizer::tract::gemm::with_threads(2, || {
                        tower1.run(std::slice::from_ref(&ids), bucket, 0)
                    })?;
                    Ok(())
                })
            }),
        ),
        (
            "text: raw concrete [1,len] 2 thr",
            Box::new(|| {
                scoped(&exec, &mut || {
                    raw_text.run(text_ins())?;
                    Ok(())
                })
            }),
        ),
        (
            "text: raw concrete [1,8] padded 2 thr",
            Box::new(|| {
                scoped(&exec, &mut || {
                    raw_text8.run(tvec![ids8_t.clone().into(), mask8_t.clone().into()])?;
                    Ok(())
                })
            }),
        ),
        (
            "text: raw concrete [1,len] 1 thr",
            Box::new(|| {
                scoped(&single, &mut || {
                    raw_text.run(text_ins())?;
                    Ok(())
                })
            }),
        ),
        (
            "text: raw concrete [1,len] 2 thr, thresh 0",
            Box::new(|| {
                scoped(&exec, &mut || {
                    th0(&mut || {
                        raw_text.run(text_ins())?;
                        Ok(())
                    })
                })
            }),
        ),
        (
            "text: raw concrete + transformers_detect_all",
            Box::new(|| {
                scoped(&exec, &mut || {
                    fused_text.run(text_ins())?;
                    Ok(())
                })
            }),
        ),
        (
            "image: preprocess (base64+PNG+resize)",
            Box::new(|| {
                model.preprocess_image(&b64)?;
                Ok(())
            }),
        ),
        (
            "image: TractClip.embed_images (2 ms wait)",
            Box::new(|| {
                for r in rt.block_on(model.embed_images(&images)) {
                    r?;
                }
                Ok(())
            }),
        ),
        (
            "image: TractClip.embed_images (no wait)",
            Box::new(|| {
                for r in rt.block_on(nowait.embed_images(&images)) {
                    r?;
                }
                Ok(())
            }),
        ),
        (
            "image: VisionTower.run, batch 1",
            Box::new(|| {
                scoped(&exec, &mut || {
                    vtower.run(&[pixels.as_slice()])?;
                    Ok(())
                })
            }),
        ),
        (
            "image: raw concrete 2 thr",
            Box::new(|| {
                scoped(&exec, &mut || {
                    raw_vision.run(tvec![pix_t.clone().into()])?;
                    Ok(())
                })
            }),
        ),
        (
            "image: raw concrete 1 thr",
            Box::new(|| {
                scoped(&single, &mut || {
                    raw_vision.run(tvec![pix_t.clone().into()])?;
                    Ok(())
                })
            }),
        ),
        (
            "image: raw concrete 2 thr, thresh 0",
            Box::new(|| {
                scoped(&exec, &mut || {
                    th0(&mut || {
                        raw_vision.run(tvec![pix_t.clone().into()])?;
                        Ok(())
                    })
                })
            }),
        ),
    ];
    let only = std::env::var("STAGES_ONLY").unwrap_or_default();
    // A pause before each timed call (ms): what a lone query after idle time sees.
    let pause: u64 = std::env::var("STAGES_PAUSE_MS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    variants.retain(|v| v.0.starts_with(only.as_str()));
    let mut stats: Vec<Stats> = variants
        .iter()
        .map(|v| Stats {
            name: v.0.to_string(),
            ms: Vec::new(),
        })
        .collect();
    for it in 0..iters + 1 {
        for (v, s) in variants.iter_mut().zip(stats.iter_mut()) {
            if pause > 0 {
                std::thread::sleep(Duration::from_millis(pause));
            }
            let t = Instant::now();
            (v.1)()?;
            if it > 0 {
                s.ms.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }
    }
    println!("{iters} interleaved iterations, ms:");
    report(&mut stats);
    Ok(())
}
