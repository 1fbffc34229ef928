//! The inference thread: owns the tract plans, takes jobs from a bounded channel, packs
//! concurrent jobs into batches and answers each through a oneshot channel.
//!
//! As in text-embeddings-inference, model execution never runs on the async runtime: one
//! dedicated OS thread runs the plans, and tract's matrix products fan out over its own rayon
//! pool of `threads` workers (tract-linalg `multithread-mm`, perf-baseline.md finding 1). The
//! channel is bounded: when it is full the caller gets [`EmbedError::Overloaded`] at once instead
//! of an ever-growing queue (issue 7 back-pressure).

use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use tokio::sync::oneshot;
use tract_linalg::multithread::{multithread_tract_scope, Executor};

use super::plans::{TextTower, VisionTower};
use crate::EmbedError;

/// The result of one job: one vector per input item, or one error for the whole job.
pub type JobResult = Result<Vec<Vec<f32>>, EmbedError>;

/// Work for the model.
pub enum Work {
    /// Token id sequences (already truncated to the model's limit).
    Texts(Vec<Vec<i64>>),
    /// Preprocessed CHW image tensors.
    Images(Vec<Vec<f32>>),
}

/// One request's worth of work and where to send the answer.
pub struct Job {
    pub work: Work,
    pub reply: oneshot::Sender<JobResult>,
}

/// Settings of the runner thread.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Threads for tract's matrix products (1 = single-threaded executor).
    pub threads: usize,
    /// Maximum number of items (texts or images) taken from the queue at once, and of texts in
    /// one model call.
    pub max_batch: usize,
    /// Maximum number of images in one model call.
    pub max_image_batch: usize,
    /// How long to wait for more concurrent jobs before running a batch (0: take only what is
    /// already queued). A job that arrives alone waits only `LONE_GRACE`.
    pub batch_wait: Duration,
    /// Sequence-length buckets, ascending; the last is the model's maximum.
    pub text_buckets: Vec<usize>,
    pub pad_id: i64,
    pub normalize_text: bool,
    pub normalize_image: bool,
}

/// How long a job that arrives alone waits for a second one (see [`run`]).
const LONE_GRACE: Duration = Duration::from_micros(200);

/// Sequence-length buckets up to `max_len`: short texts (typical queries) get tight buckets.
pub fn default_buckets(max_len: usize) -> Vec<usize> {
    let mut b: Vec<usize> = [8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512]
        .into_iter()
        .filter(|&n| n < max_len)
        .collect();
    b.push(max_len);
    b
}

fn bucket_for(buckets: &[usize], len: usize) -> usize {
    buckets.iter().copied().find(|&b| b >= len).unwrap_or(len)
}

fn l2_normalize(v: &mut [f32]) {
    // torch.nn.functional.normalize: v / max(||v||, eps).
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    for x in v {
        *x /= norm;
    }
}

fn items(job: &Job) -> usize {
    match &job.work {
        Work::Texts(t) => t.len(),
        Work::Images(i) => i.len(),
    }
}

/// Runs until every sender is dropped.
pub fn run(rx: Receiver<Job>, mut text: Option<TextTower>, vision: VisionTower, cfg: RunnerConfig) {
    // With clipgate's dense kernel (AVX-512), the dense products use both cores through its
    // spinning pool and tract's remaining ops (attention products, norms) run on this thread:
    // they are too small to pay for waking rayon's workers (a 77-token text: 35–38 ms against
    // 37–46 with tract's multithreaded executor, `examples/clip_stages.rs`). Without it, tract's
    // own products need its multithreaded executor.
    let dense = super::gemm::available();
    let executor = if cfg.threads > 1 && !dense {
        Executor::multithread_with_name(cfg.threads, "clipgate-tract")
    } else {
        Executor::SingleThread
    };
    super::gemm::with_threads(cfg.threads, || {
        multithread_tract_scope(executor, || {
            let mut last_receipt: Option<Instant> = None;
            while let Ok(first) = rx.recv() {
                let now = Instant::now();
                // Wait for companions only when requests are evidently arriving concurrently
                // (others already queued, or the previous one came in less than `batch_wait`
                // ago); otherwise allow only a short grace period, so that a lone query is not
                // delayed by the whole `batch_wait` (issue 2 speed: it is a ~2 ms tax on every
                // single-query latency) while a burst still forms one batch.
                let concurrent =
                    !rx.is_empty() || last_receipt.is_some_and(|t| now - t < cfg.batch_wait);
                last_receipt = Some(now);
                let mut deadline = now
                    + if concurrent {
                        cfg.batch_wait
                    } else {
                        cfg.batch_wait.min(LONE_GRACE)
                    };
                let mut jobs = vec![first];
                let mut n = items(&jobs[0]);
                while n < cfg.max_batch {
                    let next = if cfg.batch_wait.is_zero() {
                        rx.try_recv().ok()
                    } else {
                        rx.recv_deadline(deadline).ok()
                    };
                    let Some(j) = next else { break };
                    if !concurrent {
                        // A second job within the grace period: a burst after all.
                        deadline = now + cfg.batch_wait;
                    }
                    last_receipt = Some(Instant::now());
                    n += items(&j);
                    jobs.push(j);
                }
                ::metrics::gauge!("clipgate_tract_queue_depth").set(rx.len() as f64);
                let (texts, images): (Vec<Job>, Vec<Job>) = jobs
                    .into_iter()
                    .partition(|j| matches!(j.work, Work::Texts(_)));
                if !texts.is_empty() {
                    run_texts(texts, text.as_mut(), &cfg);
                }
                if !images.is_empty() {
                    run_images(images, &vision, &cfg);
                }
            }
        })
    })
}

/// Per job: its item vectors as they are filled in, or the first error.
struct Pending {
    reply: oneshot::Sender<JobResult>,
    out: Result<Vec<Option<Vec<f32>>>, EmbedError>,
}

fn finish(pending: Vec<Pending>, normalize: bool) {
    for p in pending {
        let res = p.out.and_then(|v| {
            v.into_iter()
                .map(|o| {
                    o.map(|mut x| {
                        if normalize {
                            l2_normalize(&mut x);
                        }
                        x
                    })
                    .ok_or_else(|| EmbedError::Inference("missing output".to_string()))
                })
                .collect()
        });
        // The requester may have gone away (client disconnected): nothing to do then.
        let _ = p.reply.send(res);
    }
}

fn run_texts(jobs: Vec<Job>, tower: Option<&mut TextTower>, cfg: &RunnerConfig) {
    let mut pending = Vec::with_capacity(jobs.len());
    let mut seqs: Vec<(usize, usize, Vec<i64>)> = Vec::new();
    for (ji, job) in jobs.into_iter().enumerate() {
        if let Work::Texts(t) = job.work {
            pending.push(Pending {
                reply: job.reply,
                out: Ok(vec![None; t.len()]),
            });
            seqs.extend(t.into_iter().enumerate().map(|(ii, s)| (ji, ii, s)));
        }
    }
    let Some(tower) = tower else {
        for p in &mut pending {
            p.out = Err(EmbedError::Model(
                "this model has no text tower".to_string(),
            ));
        }
        return finish(pending, false);
    };
    // Group by length bucket so that padding stays small; each group runs in runs of at most
    // max_batch texts, spread over the threads (`run_chunks`).
    seqs.sort_by_key(|s| s.2.len());
    let mut start = 0;
    while start < seqs.len() {
        let bucket = bucket_for(&cfg.text_buckets, seqs[start].2.len());
        let mut end = start;
        while end < seqs.len() && seqs[end].2.len() <= bucket {
            end += 1;
        }
        let group = &seqs[start..end];
        // A part of one text gets the batch-of-one plan of its bucket (a single short text is
        // bound by streaming the weights, so padding it to the bucket costs little). Larger
        // parts are bound by arithmetic: they are padded only to the longest text of the group,
        // with a plan for exactly that length (a plan costs ~150 ms to build once and shares
        // the packed weights, `tract::dense::PackCache`).
        let longest = group.iter().map(|s| s.2.len()).max().unwrap_or(bucket);
        let plans = tower.plan(bucket, 1).and_then(|single| {
            let batch = if group.len() > 1 {
                Some(tower.plan(longest, 2)?)
            } else {
                None
            };
            Ok((single, batch))
        });
        match plans {
            Err(e) => distribute(&mut pending, group.iter().map(|s| (s.0, s.1)), Err(e)),
            Ok((single, batch)) => {
                let tower = &*tower;
                let run = |part: &[(usize, usize, Vec<i64>)]| {
                    let ids: Vec<Vec<i64>> = part.iter().map(|s| s.2.clone()).collect();
                    let (plan, len) = match (&batch, ids.len()) {
                        (Some(b), n) if n > 1 => (b, longest),
                        _ => (&single, bucket),
                    };
                    let t0 = Instant::now();
                    let res = tower.run_plan(plan, &ids, len, cfg.pad_id);
                    ::metrics::histogram!("clipgate_tract_run_seconds", "modality" => "text")
                        .record(t0.elapsed().as_secs_f64());
                    ::metrics::histogram!("clipgate_tract_batch_size", "modality" => "text")
                        .record(ids.len() as f64);
                    res
                };
                for (range, res) in run_chunks(group, cfg.max_batch, cfg.threads, &run) {
                    distribute(&mut pending, group[range].iter().map(|s| (s.0, s.1)), res);
                }
            }
        }
        start = end;
    }
    finish(pending, cfg.normalize_text);
}

fn run_images(jobs: Vec<Job>, tower: &VisionTower, cfg: &RunnerConfig) {
    let mut pending = Vec::with_capacity(jobs.len());
    let mut imgs: Vec<(usize, usize, Vec<f32>)> = Vec::new();
    for (ji, job) in jobs.into_iter().enumerate() {
        if let Work::Images(v) = job.work {
            pending.push(Pending {
                reply: job.reply,
                out: Ok(vec![None; v.len()]),
            });
            imgs.extend(v.into_iter().enumerate().map(|(ii, x)| (ji, ii, x)));
        }
    }
    let run = |part: &[(usize, usize, Vec<f32>)]| {
        let views: Vec<&[f32]> = part.iter().map(|s| s.2.as_slice()).collect();
        let t0 = Instant::now();
        let res = tower.run(&views);
        ::metrics::histogram!("clipgate_tract_run_seconds", "modality" => "image")
            .record(t0.elapsed().as_secs_f64());
        ::metrics::histogram!("clipgate_tract_batch_size", "modality" => "image")
            .record(views.len() as f64);
        res
    };
    for (range, res) in run_chunks(&imgs, cfg.max_image_batch, cfg.threads, &run) {
        distribute(&mut pending, imgs[range].iter().map(|s| (s.0, s.1)), res);
    }
    finish(pending, cfg.normalize_image);
}

/// `run` over consecutive runs of at most `chunk` items, each run's result with the items it
/// covers, in order. One item runs on the calling thread, whose dense products use `threads`
/// threads (`gemm::with_threads`, set by [`run`]). Several items are instead divided into
/// `threads` parts that run at once, each on its own thread with single-threaded products: two
/// independent runs of 8 images took 723–912 ms against 1,018–1,349 ms for the same runs one
/// after the other with two product threads, and 32 texts 200–277 against 299–380 ms
/// (`examples/data_parallel.rs`, with clipgate's dense kernel). As with any change of batch
/// composition, an item's vector may differ in its last bits from the same item computed in
/// another batch; the parity tests' tolerances hold either way.
fn run_chunks<T: Sync>(
    items: &[T],
    chunk: usize,
    threads: usize,
    run: &(dyn Fn(&[T]) -> JobResult + Sync),
) -> Vec<(std::ops::Range<usize>, JobResult)> {
    let chunk = chunk.max(1);
    let in_order = |offset: usize, part: &[T]| -> Vec<(std::ops::Range<usize>, JobResult)> {
        part.chunks(chunk)
            .enumerate()
            .map(|(i, c)| {
                let start = offset + i * chunk;
                (start..start + c.len(), run(c))
            })
            .collect()
    };
    if threads < 2 || items.len() < 2 {
        return in_order(0, items);
    }
    let per_part = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let parts: Vec<_> = items
            .chunks(per_part)
            .enumerate()
            .map(|(p, part)| {
                let offset = p * per_part;
                let in_order = &in_order;
                let handle = scope.spawn(move || {
                    multithread_tract_scope(Executor::SingleThread, || in_order(offset, part))
                });
                (offset..offset + part.len(), handle)
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|(range, handle)| {
                handle.join().unwrap_or_else(|_| {
                    let error = EmbedError::Inference("an inference thread panicked".to_string());
                    vec![(range, Err(error))]
                })
            })
            .collect()
    })
}

fn distribute(
    pending: &mut [Pending],
    slots: impl Iterator<Item = (usize, usize)>,
    res: Result<Vec<Vec<f32>>, EmbedError>,
) {
    match res {
        Ok(rows) => {
            for ((ji, ii), row) in slots.zip(rows) {
                if let Ok(out) = &mut pending[ji].out {
                    out[ii] = Some(row);
                }
            }
        }
        Err(e) => {
            for (ji, _) in slots {
                pending[ji].out = Err(e.clone());
            }
        }
    }
}
