//! Measurement behind the runner's thread policy (`src/tract/runner.rs`, `run_chunks`): a batch
//! run through one tract executor whose matrix products use two threads, vs two threads each
//! running half the batch with a single-threaded executor. Interleaved rounds, one process;
//! prints ms per variant per round.
//!
//! `cargo run --release -p vectorizer --example data_parallel [-- ROUNDS]`; the model directory is
//! `fixtures/bench/vit-b32` (fixtures/scripts/make_bench_model.py) or CLIPGATE_BENCH_MODEL.

use std::path::PathBuf;
use std::time::Instant;

use tract_linalg::multithread::{multithread_tract_scope, Executor};
use vectorizer::tract::plans::{TextTower, VisionTower};
use vectorizer::EmbedError;

type Rows = Result<Vec<Vec<f32>>, EmbedError>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rounds: usize = std::env::args().nth(1).map_or(Ok(3), |r| r.parse())?;
    let dir = std::env::var_os("CLIPGATE_BENCH_MODEL")
        .map_or_else(|| PathBuf::from("fixtures/bench/vit-b32"), PathBuf::from)
        .join("onnx");
    let vision = VisionTower::load(&dir.join("vision_model.onnx"), 224, 224)?;
    let mut text = TextTower::load(&dir.join("text_model.onnx"), "text_embeds")?;
    let plan = text.plan(16, 2)?;
    let image: Vec<f32> = (0..3 * 224 * 224)
        .map(|i| (i % 97) as f32 / 97.0 - 0.5)
        .collect();
    let images: Vec<&[f32]> = (0..16).map(|_| image.as_slice()).collect();
    let texts: Vec<Vec<i64>> = (0..32)
        .map(|i| (0..12).map(|j| 400 + i * 7 + j).collect())
        .collect();
    let run_images = |part: &[&[f32]]| -> Rows {
        let mut rows = Vec::new();
        for chunk in part.chunks(4) {
            rows.extend(vision.run(chunk)?);
        }
        Ok(rows)
    };
    let run_texts = |part: &[Vec<i64>]| -> Rows { text.run_plan(&plan, part, 16, 0) };
    let two_threads = Executor::multithread(2);
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1e3;
    for round in 0..rounds {
        let t = Instant::now();
        multithread_tract_scope(two_threads.clone(), || run_images(&images))?;
        let images_one = ms(t);
        let t = Instant::now();
        halves(&images, &run_images)?;
        let images_two = ms(t);
        let t = Instant::now();
        multithread_tract_scope(two_threads.clone(), || run_texts(&texts))?;
        let texts_one = ms(t);
        let t = Instant::now();
        halves(&texts, &run_texts)?;
        let texts_two = ms(t);
        println!(
            "round {round}: 16 images (runs of 4): one executor, 2 product threads {images_one:.0} ms; \
             two single-threaded executors {images_two:.0} ms | 32 texts (16 tokens): \
             {texts_one:.0} ms; {texts_two:.0} ms"
        );
    }
    Ok(())
}

/// Runs the two halves of `items` at once, each on its own thread with a single-threaded executor.
fn halves<T: Sync>(items: &[T], run: &(dyn Fn(&[T]) -> Rows + Sync)) -> Rows {
    let (a, b) = items.split_at(items.len() / 2);
    std::thread::scope(|scope| {
        let first = scope.spawn(|| multithread_tract_scope(Executor::SingleThread, || run(a)));
        let second = multithread_tract_scope(Executor::SingleThread, || run(b))?;
        let mut rows = first
            .join()
            .map_err(|_| EmbedError::Inference("thread panicked".to_string()))??;
        rows.extend(second);
        Ok(rows)
    })
}
