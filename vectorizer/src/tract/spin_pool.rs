//! A small pool of helper threads that spin between jobs, for the dense-layer kernel.
//!
//! Why not rayon (tract's executor): a CLIP forward pass runs 73 dense products of 0.1–1 ms
//! each. Through `pool.install` + `scope` every product woke two sleeping workers and put the
//! calling thread to sleep; on the 2-vCPU VM each wake-up costs tens of microseconds, and a
//! single 7-token text took longer on two threads than on one (`examples/clip_stages.rs`).
//! Here the calling thread takes part in its own job, and the helpers keep spinning for a short
//! while after each job, so the next product of the same forward pass starts at once; after
//! the idle spin time ([`set_idle_spin`], default [`DEFAULT_IDLE_SPIN`]) without work they doze in
//! short sleeps for [`IDLE_DOZE`], then park on a condition variable and cost nothing.
//!
//! A job is `parts` calls of `f(i)`, claimed one at a time, so a helper that the VM descheduled
//! only delays the part it holds.

use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a helper spins without work, by default: long enough to bridge the gaps between the
/// dense products of one forward pass (and of a few requests in a row).
pub const DEFAULT_IDLE_SPIN: Duration = Duration::from_millis(3);

/// After spinning, how long a helper dozes — sleeps [`DOZE_STEP`] at a time, checking for work
/// between sleeps — before it parks on the condition variable. Why: waking a helper parked for a
/// while was what an isolated request paid on the 2-vCPU VM (a 7-token text after 250 ms idle:
/// 13.2 ms, against 9.9 ms with the helper still spinning, `examples/clip_stages.rs`; waking it
/// as soon as the request arrived did not help). A dozing helper takes a new job within one
/// step, and the same text took 9.1 ms (`cargo bench --bench clip`, onnxruntime 12.3 ms in the
/// same run). The price: about 2,000 short wake-ups per second, for at most this long after the
/// last work (about 1 % of a core).
pub const IDLE_DOZE: Duration = Duration::from_secs(1);
/// One sleep of a dozing helper.
const DOZE_STEP: Duration = Duration::from_micros(500);

/// The idle spin time in microseconds (process-wide, like the pool).
static IDLE_SPIN_US: AtomicU64 = AtomicU64::new(3_000);

/// Sets how long helpers spin without work before they doze (`--idle-spin-ms`). Longer spins
/// start the first product of a request a little sooner, at the price of a busy core for that
/// long after every request.
pub fn set_idle_spin(spin: Duration) {
    let micros = u64::try_from(spin.as_micros()).unwrap_or(u64::MAX);
    IDLE_SPIN_US.store(micros, Ordering::Relaxed);
}

fn idle_spin() -> Duration {
    Duration::from_micros(IDLE_SPIN_US.load(Ordering::Relaxed))
}

/// What a job is: `f(i)` for each part `i`. Lives on the caller's stack while the job runs.
struct Job<'a> {
    f: &'a (dyn Fn(usize) + Sync),
}

/// Most parts in one job (the state word holds part counts in 16 bits).
const MAX_PARTS: usize = 0xffff;

/// The state word: `epoch << 32 | parts << 16 | next unclaimed part`. Everything a claim
/// checks is in this one word, so a claim can never mix two jobs.
fn pack(epoch: u64, parts: u64, next: u64) -> u64 {
    (epoch << 32) | (parts << 16) | next
}

fn unpack(s: u64) -> (u64, u64, u64) {
    (s >> 32, (s >> 16) & 0xffff, s & 0xffff)
}

struct Shared {
    state: AtomicU64,
    /// The current job (a `*const Job`): read only after claiming one of its parts.
    job: AtomicPtr<()>,
    /// Parts of the current job finished.
    done: AtomicUsize,
    /// Helpers parked (or about to), and what they park on.
    parked: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
    /// How long helpers doze before parking ([`IDLE_DOZE`] for the global pool).
    doze: Duration,
}

pub struct SpinPool {
    shared: Arc<Shared>,
    helpers: usize,
    /// One job at a time; a second caller runs its job alone instead of waiting.
    busy: Mutex<()>,
}

impl SpinPool {
    /// The process-wide pool, made on first use with `threads - 1` helpers.
    pub fn global(threads: usize) -> &'static SpinPool {
        static POOL: OnceLock<SpinPool> = OnceLock::new();
        POOL.get_or_init(|| SpinPool::new(threads.saturating_sub(1), IDLE_DOZE))
    }

    fn new(helpers: usize, doze: Duration) -> SpinPool {
        let shared = Arc::new(Shared {
            state: AtomicU64::new(0),
            job: AtomicPtr::new(std::ptr::null_mut()),
            done: AtomicUsize::new(0),
            parked: AtomicUsize::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
            doze,
        });
        let mut started = 0;
        for i in 0..helpers {
            let shared = shared.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("clipgate-dense-{i}"))
                .spawn(move || helper(&shared));
            if spawned.is_ok() {
                started += 1;
            }
        }
        SpinPool {
            shared,
            helpers: started,
            busy: Mutex::new(()),
        }
    }

    /// Threads a job can use: the helpers and the caller.
    pub fn threads(&self) -> usize {
        self.helpers + 1
    }

    /// Runs `f(0..parts)` on the caller and the helpers; returns when every part is done.
    pub fn run(&self, parts: usize, f: &(dyn Fn(usize) + Sync)) {
        let guard = match self.busy.try_lock() {
            Ok(g) if self.helpers > 0 && parts > 1 && parts <= MAX_PARTS => g,
            _ => {
                (0..parts).for_each(f);
                return;
            }
        };
        let sh = &*self.shared;
        let job = Job { f };
        sh.done.store(0, Ordering::Relaxed);
        sh.job
            .store(&job as *const Job as *mut (), Ordering::Relaxed);
        let epoch = (sh.state.load(Ordering::Relaxed) >> 32).wrapping_add(1) & 0xffff_ffff;
        // Publishes `job` and `done = 0` to helpers that claim a part of the new epoch.
        // SeqCst: paired with the helpers' `parked` increment, so a helper going to sleep
        // either sees this job or is woken below.
        sh.state
            .store(pack(epoch, parts as u64, 0), Ordering::SeqCst);
        if sh.parked.load(Ordering::SeqCst) > 0 {
            let _l = sh.lock.lock();
            sh.wake.notify_all();
        }
        while let Some(i) = claim(sh, epoch) {
            (job.f)(i);
            sh.done.fetch_add(1, Ordering::Release);
        }
        // Every part is claimed; wait for the helpers' parts. `job` must outlive them.
        let mut spins = 0u32;
        while sh.done.load(Ordering::Acquire) < parts {
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(1024) {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
        drop(guard);
    }
}

/// Claims the next part of `epoch`'s job, if any is left.
fn claim(sh: &Shared, epoch: u64) -> Option<usize> {
    let mut s = sh.state.load(Ordering::Acquire);
    loop {
        let (e, parts, i) = unpack(s);
        if e != epoch || i >= parts {
            return None;
        }
        match sh
            .state
            .compare_exchange_weak(s, s + 1, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => return Some(i as usize),
            Err(now) => s = now,
        }
    }
}

fn helper(sh: &Shared) {
    let mut idle_since = Instant::now();
    let mut spins = 0u32;
    loop {
        let epoch = sh.state.load(Ordering::Acquire) >> 32;
        let mut worked = false;
        while let Some(i) = claim(sh, epoch) {
            // SAFETY: a part of `epoch` is claimed and not yet done, so the job's caller is
            // still waiting in `run` and its `Job` is alive; a newer job cannot have replaced
            // the pointer, because `run` only starts one after every part of this one is done.
            let job = unsafe { &*(sh.job.load(Ordering::Acquire) as *const Job) };
            (job.f)(i);
            sh.done.fetch_add(1, Ordering::Release);
            worked = true;
        }
        if worked {
            idle_since = Instant::now();
            continue;
        }
        spins = spins.wrapping_add(1);
        if !spins.is_multiple_of(256) {
            std::hint::spin_loop();
            continue;
        }
        let idle = idle_since.elapsed();
        if idle < idle_spin() {
            continue;
        }
        if idle < sh.doze {
            std::thread::sleep(DOZE_STEP);
            continue;
        }
        // Park until a new epoch is published.
        sh.parked.fetch_add(1, Ordering::SeqCst);
        let mut l = sh.lock.lock().unwrap_or_else(|p| p.into_inner());
        while sh.state.load(Ordering::SeqCst) >> 32 == epoch {
            l = sh.wake.wait(l).unwrap_or_else(|p| p.into_inner());
        }
        drop(l);
        sh.parked.fetch_sub(1, Ordering::SeqCst);
        idle_since = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    #[test]
    fn every_part_runs_exactly_once_across_jobs_callers_and_parking() {
        // No dozing here: helpers must park, and wake for the next job.
        let pool = SpinPool::new(2, Duration::ZERO);
        assert_eq!(pool.threads(), 3);
        let check = |pool: &SpinPool, parts: usize| {
            let hits: Vec<AtomicU32> = (0..parts).map(|_| AtomicU32::new(0)).collect();
            pool.run(parts, &|i| {
                hits[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(
                hits.iter().all(|h| h.load(Ordering::Relaxed) == 1),
                "{parts} parts"
            );
        };
        for round in 0..2000 {
            check(&pool, 1 + round % 17);
        }
        // Helpers park after the idle spin time without work and must wake for the next job.
        std::thread::sleep(idle_spin() * 3);
        check(&pool, 9);
        std::thread::sleep(idle_spin() * 3);
        // Several callers at once: one runs on the pool, the others alone.
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for round in 0..300 {
                        check(&pool, 2 + round % 11);
                    }
                });
            }
        });
        check(&pool, MAX_PARTS + 1);
    }

    #[test]
    fn helpers_doze_after_spinning_take_jobs_then_park() {
        let pool = SpinPool::new(1, Duration::from_millis(400));
        let parked = || pool.shared.parked.load(Ordering::SeqCst);
        pool.run(4, &|_| {});
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(parked(), 0, "past the spin but within the doze: not parked");
        // A job while the helper dozes: it takes parts (each part is long enough for a helper
        // that checks every 0.5 ms to claim some).
        let caller = std::thread::current().id();
        let by_helper = AtomicUsize::new(0);
        pool.run(32, &|_| {
            if std::thread::current().id() != caller {
                by_helper.fetch_add(1, Ordering::Relaxed);
            }
            std::thread::sleep(Duration::from_millis(1));
        });
        assert!(
            by_helper.load(Ordering::Relaxed) > 0,
            "the dozing helper took no part"
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while parked() == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(parked(), 1, "parked after the doze");
    }
}
