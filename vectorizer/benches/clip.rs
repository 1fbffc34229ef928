//! Benchmark (not a test): clipgate's in-process model vs onnxruntime vs PyTorch, in one run.
//!
//! `cargo bench -p vectorizer --bench clip` (release build). Loads a full-size CLIP ViT-B/32 with
//! random weights from `fixtures/bench/vit-b32` (made by fixtures/scripts/make_bench_model.py, not
//! committed; override with CLIPGATE_BENCH_MODEL), times every case through the `Embedder` trait
//! (tokenization / base64 + decoding + preprocessing included), then spawns
//! `/opt/mlenv/bin/python vectorizer/benches/reference.py --serve` (override with
//! CLIPGATE_BENCH_PYTHON) on the same inputs and prints one table of medians and ratios. The three
//! runtimes are timed interleaved, iteration by iteration (clipgate, onnxruntime, PyTorch, again):
//! the machine is shared and its load drifts over minutes, so timing one runtime after the other
//! compared different loads. CLIPGATE_BENCH_ITERS sets the number of timed iterations (default 10).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use vectorizer::{Embedder, ModelOptions, TractClip};

struct Case {
    name: &'static str,
    texts: Vec<String>,
    images: Vec<String>,
}

fn png_b64(seed: u32) -> String {
    let img = image::RgbImage::from_fn(224, 224, |x, y| {
        let cx = 112 + (seed * 37 % 60) as i32 - 30;
        let cy = 112 + (seed * 53 % 60) as i32 - 30;
        let (dx, dy) = (x as i32 - cx, y as i32 - cy);
        if dx * dx + dy * dy < 60 * 60 {
            image::Rgb([(200 + seed * 7 % 55) as u8, (seed * 29 % 255) as u8, 40])
        } else {
            image::Rgb([
                (x * 255 / 224) as u8,
                (y * 255 / 224) as u8,
                (seed * 61 % 255) as u8,
            ])
        }
    });
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .expect("encode png");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn cases() -> Vec<Case> {
    let colours = [
        "red", "green", "blue", "yellow", "purple", "orange", "pink", "brown",
    ];
    let shapes = ["circle", "square", "triangle", "star"];
    let texts32: Vec<String> = (0..32)
        .map(|i| {
            format!(
                "a photo of a small {} {} on a plain white background, number {i}",
                colours[i % 8],
                shapes[i % 4]
            )
        })
        .collect();
    vec![
        Case {
            name: "text 1 x 7 tokens",
            texts: vec!["a photo of a cat".into()],
            images: vec![],
        },
        Case {
            name: "text 1 x 77 tokens",
            texts: vec!["circle ".repeat(75).trim_end().to_string()],
            images: vec![],
        },
        Case {
            name: "image 1 x 224x224",
            texts: vec![],
            images: vec![png_b64(1)],
        },
        Case {
            name: "texts 32 x ~16 tokens",
            texts: texts32,
            images: vec![],
        },
        Case {
            name: "images 16 x 224x224",
            texts: vec![],
            images: (0..16).map(png_b64).collect(),
        },
    ]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

async fn run_case(model: &TractClip, case: &Case) {
    if !case.texts.is_empty() {
        for r in model.embed_texts(&case.texts).await {
            r.expect("text vector");
        }
    }
    if !case.images.is_empty() {
        for r in model.embed_images(&case.images).await {
            r.expect("image vector");
        }
    }
}

async fn time_clipgate(model: &TractClip, cases: &[Case], iters: usize) -> Vec<f64> {
    let mut out = Vec::new();
    for case in cases {
        run_case(model, case).await; // warm-up: builds the length-bucket plan
        let mut times = Vec::new();
        for _ in 0..iters {
            times.push(time_one(model, case).await);
        }
        out.push(median(times));
    }
    out
}

async fn time_one(model: &TractClip, case: &Case) -> f64 {
    let t0 = Instant::now();
    run_case(model, case).await;
    t0.elapsed().as_secs_f64() * 1000.0
}

/// `reference.py --serve`: onnxruntime and PyTorch loaded once, one timed case per request.
struct Reference {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Reference {
    fn start(python: &str, script: &Path, model: &Path, inputs: &Path) -> std::io::Result<Self> {
        let mut child = Command::new(python)
            .arg(script)
            .arg("--model")
            .arg(model)
            .arg("--inputs")
            .arg(inputs)
            .arg("--serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(std::io::Error::other("no pipes"));
        };
        let mut r = Reference {
            child,
            stdin,
            stdout: BufReader::new(stdout),
        };
        let ready = r.line()?;
        if ready.trim() != "ready" {
            return Err(std::io::Error::other(format!("unexpected {ready:?}")));
        }
        Ok(r)
    }

    fn line(&mut self) -> std::io::Result<String> {
        let mut l = String::new();
        if self.stdout.read_line(&mut l)? == 0 {
            return Err(std::io::Error::other("reference.py exited"));
        }
        Ok(l)
    }

    /// Runs case `ix` once on `runtime` and returns its ms.
    fn time(&mut self, runtime: &str, ix: usize) -> std::io::Result<f64> {
        writeln!(self.stdin, "{runtime} {ix}")?;
        self.stdin.flush()?;
        self.line()?
            .trim()
            .parse()
            .map_err(|e| std::io::Error::other(format!("{e}")))
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const RUNTIMES: [&str; 2] = ["onnxruntime", "pytorch"];

/// Medians of clipgate and, when `reference` is there, onnxruntime and PyTorch per case, timed
/// interleaved. A pause between runtimes lets the previous one's worker threads go idle: OpenMP
/// (PyTorch) and onnxruntime worker threads spin-wait after a run and would otherwise take a core
/// from the next runtime measured (`BENCH_PAUSE_MS`, default 250).
async fn time_interleaved(
    model: &TractClip,
    cases: &[Case],
    iters: usize,
    mut reference: Option<&mut Reference>,
) -> Vec<(f64, Option<[f64; 2]>)> {
    let pause_ms: u64 = std::env::var("BENCH_PAUSE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(250);
    let pause = || std::thread::sleep(Duration::from_millis(pause_ms));
    let mut out = Vec::new();
    for (ix, case) in cases.iter().enumerate() {
        run_case(model, case).await; // warm-up: builds the length-bucket plan
        if let Some(r) = reference.as_deref_mut() {
            for rt in RUNTIMES {
                r.time(rt, ix).expect("reference warm-up");
            }
        }
        let mut ours = Vec::new();
        let mut theirs = [Vec::new(), Vec::new()];
        for _ in 0..iters {
            pause();
            ours.push(time_one(model, case).await);
            if let Some(r) = reference.as_deref_mut() {
                for (rt, t) in RUNTIMES.iter().zip(theirs.iter_mut()) {
                    pause();
                    t.push(r.time(rt, ix).expect("reference run"));
                }
            }
        }
        let refs = reference.is_some().then(|| theirs.map(median));
        out.push((median(ours), refs));
    }
    out
}

/// 32 single-text requests issued concurrently: what dynamic batching is for.
async fn time_concurrent(model: &TractClip, texts: &[String], iters: usize) -> f64 {
    let one: Vec<Vec<String>> = texts.iter().map(|t| vec![t.clone()]).collect();
    let go = || futures::future::join_all(one.iter().map(|t| model.embed_texts(t)));
    go().await;
    let mut times = Vec::new();
    for _ in 0..iters {
        let t0 = Instant::now();
        for r in go().await {
            r[0].as_ref().expect("vector");
        }
        times.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    median(times)
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let model_dir = std::env::var_os("CLIPGATE_BENCH_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("fixtures/bench/vit-b32"));
    let python =
        std::env::var("CLIPGATE_BENCH_PYTHON").unwrap_or_else(|_| "/opt/mlenv/bin/python".into());
    let iters: usize = std::env::var("CLIPGATE_BENCH_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let cases = cases();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    // CLIPGATE_IDLE_SPIN_MS: the helper threads' idle spin, as `clipgate --idle-spin-ms`.
    let idle_spin = std::env::var("CLIPGATE_IDLE_SPIN_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(ModelOptions::default().idle_spin, Duration::from_millis);
    let opts = ModelOptions {
        model_dir: model_dir.clone(),
        idle_spin,
        ..ModelOptions::default()
    };
    let t0 = Instant::now();
    let model = TractClip::load(&opts).unwrap_or_else(|e| panic!("{}: {e}", model_dir.display()));
    eprintln!(
        "clipgate: model loaded in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    for c in &cases {
        if let Some(t) = c.texts.first() {
            eprintln!(
                "{}: {} tokens",
                c.name,
                model.tokenize(t).map(|v| v.len()).unwrap_or(0)
            );
        }
    }
    // Reference runtimes on the same inputs, in a process that stays up.
    let dir = std::env::temp_dir().join(format!("clipgate-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let inputs = serde_json::json!({
        "cases": cases.iter().map(|c| serde_json::json!({"name": c.name, "texts": c.texts, "images": c.images})).collect::<Vec<_>>()
    });
    std::fs::write(dir.join("inputs.json"), inputs.to_string()).expect("write inputs");
    let script = root.join("vectorizer/benches/reference.py");
    let mut reference =
        match Reference::start(&python, &script, &model_dir, &dir.join("inputs.json")) {
            Ok(r) => Some(r),
            Err(e) => {
                eprintln!(
                    "reference runtimes not measured ({python} {}: {e})",
                    script.display()
                );
                None
            }
        };
    let table = rt.block_on(time_interleaved(&model, &cases, iters, reference.as_mut()));
    drop(reference);
    let _ = std::fs::remove_dir_all(&dir);
    let ours: Vec<f64> = table.iter().map(|t| t.0).collect();
    let texts32 = &cases[3].texts;
    let concurrent = rt.block_on(time_concurrent(&model, texts32, iters));
    drop(model);
    let waiting = TractClip::load(&ModelOptions {
        batch_wait: Duration::from_millis(2),
        ..opts.clone()
    })
    .expect("model");
    let concurrent_wait = rt.block_on(time_concurrent(&waiting, texts32, iters));
    drop(waiting);
    let unbatched = TractClip::load(&ModelOptions {
        max_batch: 1,
        ..opts.clone()
    })
    .expect("model");
    let concurrent_unbatched = rt.block_on(time_concurrent(&unbatched, texts32, iters));
    drop(unbatched);
    let no_wait = TractClip::load(&ModelOptions {
        batch_wait: Duration::ZERO,
        ..opts.clone()
    })
    .expect("model");
    let concurrent_nowait = rt.block_on(time_concurrent(&no_wait, texts32, iters));
    drop(no_wait);
    let mut image_batches = Vec::new();
    for b in [1usize, 4] {
        let m = TractClip::load(&ModelOptions {
            max_image_batch: b,
            ..opts.clone()
        })
        .expect("model");
        image_batches.push((b, rt.block_on(time_clipgate(&m, &cases[4..5], iters))[0]));
    }

    println!("\nmedian ms over {iters} interleaved runs (tokenization / preprocessing included); ratio = clipgate / other");
    println!("| case | clipgate | onnxruntime | PyTorch | clipgate/ort | clipgate/torch |");
    println!("|---|---|---|---|---|---|");
    for (case, (ms, refs)) in cases.iter().zip(&table) {
        let o = refs.map(|r| r[0]);
        let p = refs.map(|r| r[1]);
        let f = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.1}"));
        let r = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{:.2}", ms / v));
        println!(
            "| {} | {ms:.1} | {} | {} | {} | {} |",
            case.name,
            f(o),
            f(p),
            r(o),
            r(p)
        );
    }
    println!("\nclipgate, 32 concurrent single-text requests (dynamic batching), median ms:");
    println!("| default options | max_batch 32, 2 ms wait | max_batch 32, no wait | max_batch 1 (no batching) |");
    println!("|---|---|---|---|");
    println!("| {concurrent:.1} | {concurrent_wait:.1} | {concurrent_nowait:.1} | {concurrent_unbatched:.1} |");
    println!(
        "\nclipgate, 16 images in one request by images per vision call (default {}: {:.1} ms):",
        ModelOptions::default().max_image_batch,
        ours[4]
    );
    for (b, ms) in image_batches {
        println!("| max_image_batch {b} | {ms:.1} ms |");
    }
}
