//! Parity of the in-process model with the PyTorch/transformers reference vectors, the semantic
//! check, and the sentence-transformers text model (issue 2 acceptance).
//!
//! References: fixtures/reference/clip.json and text-model.json, written by
//! fixtures/scripts/make_references.py from the committed fixture models with transformers and
//! the slow PIL CLIPImageProcessor, after the container's own decoding (`b64decode`, PIL open,
//! `convert("RGB")`). Compared after L2 normalization: ≤ 1e-5 per component for texts,
//! ≤ 5e-4 for images.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::Value;
use vectorizer::{Embedder, ModelOptions, TractClip};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

fn load(opts: ModelOptions) -> TractClip {
    match TractClip::load(&opts) {
        Ok(m) => m,
        Err(e) => panic!("loading {opts:?}: {e}"),
    }
}

fn clip_options() -> ModelOptions {
    ModelOptions {
        model_dir: fixtures().join("model"),
        threads: 2,
        ..ModelOptions::default()
    }
}

fn reference(name: &str) -> Value {
    let path = fixtures().join("reference").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("reference json")
}

fn l2(v: &[f32]) -> Vec<f64> {
    let n = v
        .iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt();
    v.iter().map(|x| f64::from(*x) / n).collect()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .expect("vector array")
        .iter()
        .map(|x| x.as_f64().expect("number") as f32)
        .collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "dimension");
    l2(a)
        .iter()
        .zip(l2(b))
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

fn b64_file(rel: &str) -> String {
    let bytes = std::fs::read(fixtures().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Every JPEG decodes to exactly the RGB pixels of the container's
/// `PIL.Image.open(...).convert("RGB")` (Pillow 13, libjpeg-turbo 3.2): the fixture JPEGs and
/// the extra encoder settings in tests/data/pil-jpeg (subsamplings, partial MCUs, progressive,
/// restart markers, CMYK, grey). References written by tests/data/pil-jpeg/make.py with Pillow.
#[test]
fn jpeg_pixels_match_pil() {
    use vectorizer::image::{decode_rgb, DEFAULT_MAX_IMAGE_PIXELS};
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/pil-jpeg");
    let mut cases: Vec<(PathBuf, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(&data).expect("tests/data/pil-jpeg") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|x| x == "jpg") {
            cases.push((path.clone(), path.with_extension("png")));
        }
    }
    for sub in ["images", "images/formats"] {
        for entry in std::fs::read_dir(fixtures().join(sub)).expect("fixture images") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|x| x == "jpg") {
                let stem = path.file_stem().expect("stem").to_string_lossy();
                let name = format!("{}__{stem}.png", sub.replace('/', "__"));
                cases.push((path.clone(), data.join(name)));
            }
        }
    }
    cases.sort();
    assert!(cases.len() >= 19, "{} JPEG cases", cases.len());
    let mut failures = Vec::new();
    for (jpeg, png) in &cases {
        let read = |p: &Path| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let want = decode_rgb(&read(png), DEFAULT_MAX_IMAGE_PIXELS).expect("reference png");
        let got = match decode_rgb(&read(jpeg), DEFAULT_MAX_IMAGE_PIXELS) {
            Ok(g) => g,
            Err(e) => {
                failures.push(format!("{}: {e}", jpeg.display()));
                continue;
            }
        };
        if (got.width, got.height) != (want.width, want.height) {
            failures.push(format!(
                "{}: {}x{} vs PIL {}x{}",
                jpeg.display(),
                got.width,
                got.height,
                want.width,
                want.height
            ));
            continue;
        }
        let differ = got.data.iter().zip(&want.data).filter(|(a, b)| a != b);
        let count = differ.clone().count();
        let max = differ
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap_or_default();
        if count > 0 {
            failures.push(format!(
                "{}: {count} of {} values differ from PIL, max {max}",
                jpeg.display(),
                got.data.len()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    l2(a).iter().zip(l2(b)).map(|(x, y)| x * y).sum()
}

/// Embeds the reference texts all at once (batched, mixed lengths) and one by one (single, own
/// bucket) and compares both with the reference vectors: the texts over 1e-5, and the worst diff.
async fn text_parity(model: &TractClip, cases: &[Value]) -> (Vec<String>, f64) {
    let texts: Vec<String> = cases
        .iter()
        .map(|c| c["text"].as_str().expect("text").to_string())
        .collect();
    let batched = model.embed_texts(&texts).await;
    let mut report = Vec::new();
    let mut worst = 0f64;
    for (i, case) in cases.iter().enumerate() {
        let want = floats(&case["vector"]);
        let single = model
            .embed_texts(&texts[i..=i])
            .await
            .remove(0)
            .expect("single text");
        let got = batched[i].as_ref().expect("batched text");
        let d = max_abs_diff(got, &want).max(max_abs_diff(&single, &want));
        worst = worst.max(d);
        if d > 1e-5 {
            report.push(format!("{:?}: max abs diff {d:e}", texts[i]));
        }
    }
    (report, worst)
}

#[tokio::test]
async fn clip_texts_match_reference() {
    let model = load(clip_options());
    let r = reference("clip.json");
    let cases = r["texts"].as_array().expect("texts");
    assert!(cases.len() >= 10);
    let (report, worst) = text_parity(&model, cases).await;
    println!("texts: worst max abs diff {worst:e}");
    assert!(report.is_empty(), "texts over 1e-5:\n{}", report.join("\n"));
}

#[tokio::test]
async fn clip_images_match_reference_for_every_format_and_size() {
    let model = load(clip_options());
    let r = reference("clip.json");
    let cases = r["images"].as_array().expect("images");
    assert!(
        cases.len() >= 20,
        "expected every fixture image in the reference"
    );
    let images: Vec<String> = cases
        .iter()
        .map(|c| b64_file(c["file"].as_str().expect("file")))
        .collect();
    let batched = model.embed_images(&images).await;
    let mut report = Vec::new();
    let mut worst = 0f64;
    for (i, case) in cases.iter().enumerate() {
        let file = case["file"].as_str().expect("file");
        let want = floats(&case["vector"]);
        let got = match &batched[i] {
            Ok(v) => v.clone(),
            Err(e) => {
                report.push(format!("{file}: {e}"));
                continue;
            }
        };
        let single = model
            .embed_images(&images[i..=i])
            .await
            .remove(0)
            .expect("single image");
        let d = max_abs_diff(&got, &want).max(max_abs_diff(&single, &want));
        worst = worst.max(d);
        println!("{file}: {d:e}");
        if d > 5e-4 {
            report.push(format!("{file}: max abs diff {d:e} > 5e-4"));
        }
    }
    println!("images: worst max abs diff {worst:e}");
    assert!(
        report.is_empty(),
        "images over 5e-4:\n{}",
        report.join("\n")
    );
}

#[tokio::test]
async fn vectors_are_l2_normalized_by_default_for_the_hf_layout() {
    let model = load(clip_options());
    let v = model
        .embed_texts(&["a red circle".to_string()])
        .await
        .remove(0)
        .expect("vector");
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
    let raw = load(ModelOptions {
        normalize: Some(false),
        ..clip_options()
    });
    let w = raw
        .embed_texts(&["a red circle".to_string()])
        .await
        .remove(0)
        .expect("vector");
    let norm_raw = w.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!(
        (norm_raw - 1.0).abs() > 1e-3,
        "--normalize false must return the raw projection"
    );
    assert!(cosine(&v, &w) > 0.99999);
    assert_ne!(
        model.fingerprint(),
        raw.fingerprint(),
        "normalization is part of the fingerprint"
    );
}

#[tokio::test]
async fn a_red_circle_is_closest_to_the_red_circle_image() {
    let model = load(clip_options());
    let text = model
        .embed_texts(&["a red circle".to_string()])
        .await
        .remove(0)
        .expect("text");
    let mut names: Vec<String> = std::fs::read_dir(fixtures().join("images"))
        .expect("images")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".png"))
        .collect();
    names.sort();
    assert!(names.len() >= 5 && names.iter().any(|n| n == "red-circle.png"));
    let images: Vec<String> = names
        .iter()
        .map(|n| b64_file(&format!("images/{n}")))
        .collect();
    let vectors = model.embed_images(&images).await;
    let mut scored: Vec<(f64, &str)> = names
        .iter()
        .zip(&vectors)
        .map(|(n, v)| (cosine(&text, v.as_ref().expect("image")), n.as_str()))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    println!("{scored:?}");
    assert_eq!(scored[0].1, "red-circle.png", "ranking: {scored:?}");
    assert!(scored[0].0 > scored[1].0);
}

#[tokio::test]
async fn sentence_transformers_text_model_matches_reference() {
    let dir = fixtures().join("text-model");
    let model = load(ModelOptions {
        text_model_dir: Some(dir),
        ..clip_options()
    });
    let r = reference("text-model.json");
    let cases = r["texts"].as_array().expect("texts");
    let (report, _) = text_parity(&model, cases).await;
    assert!(
        report.is_empty(),
        "text model over 1e-5:\n{}",
        report.join("\n")
    );
    // Images still come from the CLIP vision tower; meta reports both configs (spec §7.2).
    let meta = model.meta().await.expect("meta");
    assert!(
        meta.get("clip_model").is_some() && meta.get("text_model").is_some(),
        "{meta}"
    );
}

#[test]
fn token_ids_match_the_reference_tokenizer() {
    let model = load(clip_options());
    let r = reference("clip.json");
    for case in r["texts"].as_array().expect("texts") {
        let text = case["text"].as_str().expect("text");
        let want: Vec<i64> = case["input_ids"]
            .as_array()
            .expect("ids")
            .iter()
            .map(|x| x.as_i64().expect("id"))
            .collect();
        let got = model.tokenize(text).expect("tokenize");
        assert_eq!(got, want, "{text:?}");
        assert!(got.len() <= 77);
    }
}

/// perf-baseline.md finding 3: texts run padded on the right to a length bucket. With CLIP's
/// causal mask and EOS pooling this must not change the embedding.
#[test]
fn right_padding_to_a_bucket_does_not_change_text_embeddings() {
    use vectorizer::tract::plans::TextTower;
    let model = load(clip_options());
    let mut tower = TextTower::load(
        &fixtures().join("model/onnx/text_model.onnx"),
        "text_embeds",
    )
    .expect("tower");
    for text in [
        "a red circle",
        "",
        "a photo of a small green triangle on a white background",
    ] {
        let ids = model.tokenize(text).expect("ids");
        let exact = tower
            .run(std::slice::from_ref(&ids), ids.len(), 49407)
            .expect("exact")
            .remove(0);
        for len in [ids.len() + 1, 32, 77] {
            let padded = tower
                .run(std::slice::from_ref(&ids), len, 49407)
                .expect("padded")
                .remove(0);
            let d = exact
                .iter()
                .zip(&padded)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(d < 1e-5, "{text:?} padded to {len}: max diff {d}");
        }
    }
}

/// The parity tests above only prove clipgate's kernels right if the plans use them: on a CPU
/// with AVX-512 every dense layer and attention softmax of both fixture towers must have been
/// rewritten (`tract::dense`, `tract::softmax`), for a single query and for batches.
#[test]
fn fixture_plans_run_the_dense_and_softmax_kernels() {
    use vectorizer::tract::plans::{TextTower, VisionTower};
    if !vectorizer::tract::gemm::available() {
        eprintln!("no AVX-512F: tract's own kernels run, nothing to check");
        return;
    }
    let onnx = fixtures().join("model/onnx");
    let count = |plan: &vectorizer::tract::plans::Plan, name: &str| {
        plan.model()
            .nodes()
            .iter()
            .filter(|n| n.op().name() == name)
            .count()
    };
    let mut text = TextTower::load(&onnx.join("text_model.onnx"), "text_embeds").expect("text");
    let vision = VisionTower::load(&onnx.join("vision_model.onnx"), 64, 64).expect("vision");
    for (what, plan) in [
        ("text, 1 × 8", text.plan(8, 1).expect("plan")),
        ("text, N × 16", text.plan(16, 2).expect("plan")),
        ("image, N", vision.plan().clone()),
    ] {
        let dense = count(&plan, "ClipgateDense");
        let softmax = count(&plan, "ClipgateSoftmax");
        assert!(
            dense > 0 && softmax > 0,
            "{what}: {dense} dense, {softmax} softmax"
        );
        for left in ["EinSum", "OptMatMul"] {
            // Every product of the towers runs on clipgate's kernels.
            assert!(
                count(&plan, left) == 0,
                "{what}: {} {left} left for {softmax} attention softmaxes",
                count(&plan, left)
            );
        }
        assert_eq!(count(&plan, "Softmax"), 0, "{what}: tract softmax left");
        if what.starts_with("image") {
            assert_eq!(
                count(&plan, "ClipgatePatchEmbed"),
                1,
                "{what}: patch embedding"
            );
            assert_eq!(count(&plan, "Conv"), 0, "{what}: tract convolution left");
            // The last layer on the pooled row only (`tract::pooled_row`): the query's input
            // and the residual are sliced to the class token, nothing else is.
            assert_eq!(count(&plan, "Slice"), 2, "{what}: pooled-row slices");
        }
        assert!(
            count(&plan, "ClipgateBatchedProduct") >= 2 * softmax,
            "{what}: attention"
        );
        if what == "text, N × 16" {
            // The EOS pooling moved above the last layer's MLP (`tract::pooled_row`).
            let pooled = plan
                .model()
                .nodes()
                .iter()
                .filter(|n| n.name.ends_with(".pooled-rows.gather"))
                .count();
            assert_eq!(pooled, 2, "{what}: attention output and residual gathered");
        }
    }
}

/// The pooled-row rewrite on its own, with tract's own kernels (what a CPU without AVX-512
/// runs): the fixture towers give what tract gives without it, for a batch of three with the
/// texts' EOS tokens at different positions.
#[test]
fn pooled_row_rewrite_alone_keeps_tracts_results() {
    use tract_onnx::prelude::*;
    let onnx = fixtures().join("model/onnx");
    let build = |file: &str, output: &str, facts: &[(DatumType, usize)], rewrite: bool| {
        let mut model = tract_onnx::onnx()
            .model_for_path(onnx.join(file))
            .expect("onnx");
        let n = model.symbols.sym("N").to_dim();
        for (ix, (dt, len)) in facts.iter().enumerate() {
            let mut shape = tvec![n.clone()];
            if *len == 0 {
                shape.extend([3, 64, 64].map(|d: usize| d.to_dim()));
            } else {
                shape.push(len.to_dim());
            }
            model
                .set_input_fact(ix, InferenceFact::dt_shape(*dt, shape))
                .expect("input fact");
        }
        let outs = model.output_outlets().expect("outputs").to_vec();
        let out = outs
            .into_iter()
            .find(|o| model.outlet_label(*o) == Some(output))
            .expect("output");
        model.select_output_outlets(&[out]).expect("select");
        let mut typed = model
            .into_typed()
            .and_then(|m| m.into_decluttered())
            .expect("typed");
        if rewrite {
            let moved = vectorizer::tract::pooled_row::rewrite(&mut typed).expect("rewrite");
            assert!(moved >= 1, "{file}: nothing rewritten");
        }
        typed
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .expect("plan")
    };
    let compare = |file: &str, output: &str, facts: &[(DatumType, usize)], inputs: TVec<Tensor>| {
        let run = |rewrite: bool| {
            build(file, output, facts, rewrite)
                .run(inputs.iter().map(|t| t.clone().into()).collect())
                .expect("run")[0]
                .clone()
                .into_tensor()
        };
        let (want, got) = (run(false), run(true));
        assert_eq!(want.shape(), got.shape(), "{file}");
        let (w, g) = (
            want.to_plain_array_view::<f32>().expect("f32"),
            got.to_plain_array_view::<f32>().expect("f32"),
        );
        let d = w
            .iter()
            .zip(g.iter())
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(d <= 1e-5, "{file}: max abs diff {d}");
    };
    let pixels: Vec<f32> = (0..3 * 3 * 64 * 64)
        .map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0)
        .collect();
    compare(
        "vision_model.onnx",
        "image_embeds",
        &[(f32::datum_type(), 0)],
        tvec![Tensor::from_shape(&[3, 3, 64, 64], &pixels).expect("pixels")],
    );
    // BOS, tokens, EOS at position 7, 3 and 5, then EOS as padding (CLIP's pad token).
    let (bos, eos) = (49406i64, 49407i64);
    let mut ids = vec![eos; 3 * 8];
    for (row, end) in [7usize, 3, 5].into_iter().enumerate() {
        ids[row * 8] = bos;
        for p in 1..end {
            ids[row * 8 + p] = 320 + (row * 11 + p * 37) as i64;
        }
    }
    let mask: Vec<i64> = (0..3 * 8)
        .map(|i| i64::from(i % 8 <= [7, 3, 5][i / 8]))
        .collect();
    compare(
        "text_model.onnx",
        "text_embeds",
        &[(i64::datum_type(), 8), (i64::datum_type(), 8)],
        tvec![
            Tensor::from_shape(&[3, 8], &ids).expect("ids"),
            Tensor::from_shape(&[3, 8], &mask).expect("mask"),
        ],
    );
}
