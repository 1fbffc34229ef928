//! A dense-layer product for the CLIP towers: `Y[n×m] = X[n×k] · W[k×m]` with `W` constant,
//! packed once at plan-build time, computed with an AVX-512 micro-kernel.
//!
//! Why not tract's own matmul: with CLIP's shapes (7–77 tokens, 50 patches) tract's kernels
//! reach ~8 GB/s of weight streaming on a single text query where the machine does 14.5 GB/s per
//! core and 29 GB/s on two, and its two-thread split gains nothing there (perf-baseline.md,
//! `examples/gemm_probe.rs`). This kernel streams each 32-column weight panel once per block of
//! rows, keeps an 8×32 tile of accumulators in registers, and splits the panels over the tract
//! executor's threads, so a short query is bound by memory bandwidth on both cores and a long
//! one by the FMA units.
//!
//! Only used when the CPU has AVX-512F (checked at run time by [`available`]); elsewhere the
//! graph keeps tract's matmul.

use std::sync::Arc;

use tract_linalg::multithread::{current_tract_executor, Executor};

use super::spin_pool::SpinPool;

/// 16-lane vectors per weight panel row.
const VECS: usize = 2;
/// Columns of a weight panel.
const PANEL: usize = 16 * VECS;
/// Rows of `X` per micro-kernel call.
const ROWS: usize = 8;

thread_local! {
    /// Threads for dense products run on this thread, when set (see [`with_threads`]).
    static DENSE_THREADS: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// Runs `f` with dense products on `threads` threads (the caller and the spinning helpers of
/// [`SpinPool`]), whatever tract's executor is. The inference runner runs tract's own ops on a
/// single-threaded executor and only the dense products on both cores: the attention products
/// are too small to pay for waking rayon's workers.
pub fn with_threads<R>(threads: usize, f: impl FnOnce() -> R) -> R {
    let before = DENSE_THREADS.replace(Some(threads));
    let r = f();
    DENSE_THREADS.set(before);
    r
}

/// Threads for a dense product on this thread: [`with_threads`]'s, else tract's executor's.
fn dense_threads() -> usize {
    DENSE_THREADS
        .get()
        .unwrap_or_else(|| match current_tract_executor() {
            Executor::MultiThread(pool) => pool.current_num_threads(),
            _ => 1,
        })
}

/// Runs `f(0..parts)` on [`dense_threads`] threads (the caller and [`SpinPool`]'s helpers), or
/// in order on the caller when that is one thread.
pub fn run_parts(parts: usize, f: &(dyn Fn(usize) + Sync)) {
    let threads = dense_threads();
    if threads > 1 && parts > 1 {
        SpinPool::global(threads).run(parts, f);
    } else {
        (0..parts).for_each(f);
    }
}

/// Whether this CPU can run the kernel.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// 64-byte aligned storage, so panel loads never straddle cache lines.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([f32; 16]);

#[derive(Clone)]
struct Aligned {
    lines: Vec<Line>,
}

impl Aligned {
    fn zeroed(floats: usize) -> Aligned {
        Aligned {
            lines: vec![Line([0.0; 16]); floats.div_ceil(16)],
        }
    }
    fn as_ptr(&self) -> *const f32 {
        self.lines.as_ptr() as *const f32
    }
    fn as_mut_slice(&mut self) -> &mut [f32] {
        let len = self.lines.len() * 16;
        // SAFETY: `Line` is `repr(C)` over `[f32; 16]`, so the lines are `len` contiguous f32s.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr() as *mut f32, len) }
    }
}

/// A constant `k×m` weight matrix in panel layout: panel `p` holds columns `32p..32p+32`,
/// row by row (`k` rows of 32 floats), zero-padded past `m`.
#[derive(Clone)]
pub struct PackedWeights {
    k: usize,
    m: usize,
    panels: usize,
    data: Arc<Aligned>,
    /// Added to every output row (a fused `+ bias`), length `m`.
    bias: Option<Arc<[f32]>>,
    /// `y ↦ y · sigmoid(α·y)` after the bias (CLIP's quick GELU, α = 1.702), when set.
    quick_gelu: Option<f32>,
}

impl std::fmt::Debug for PackedWeights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PackedWeights(k={}, m={}, bias={}, quick_gelu={:?})",
            self.k,
            self.m,
            self.bias.is_some(),
            self.quick_gelu
        )
    }
}

impl PackedWeights {
    /// Packs a row-major `k×m` matrix.
    pub fn pack(w: &[f32], k: usize, m: usize) -> PackedWeights {
        assert_eq!(w.len(), k * m, "weight matrix is not k×m");
        let panels = m.div_ceil(PANEL);
        let mut data = Aligned::zeroed(panels * k * PANEL);
        let out = data.as_mut_slice();
        for p in 0..panels {
            let c0 = p * PANEL;
            let width = PANEL.min(m - c0);
            for kk in 0..k {
                let dst = (p * k + kk) * PANEL;
                out[dst..dst + width].copy_from_slice(&w[kk * m + c0..kk * m + c0 + width]);
            }
        }
        PackedWeights {
            k,
            m,
            panels,
            data: Arc::new(data),
            bias: None,
            quick_gelu: None,
        }
    }

    /// The same weights with `bias` (length `m`) added to every output row.
    pub fn with_bias(mut self, bias: &[f32]) -> PackedWeights {
        assert_eq!(bias.len(), self.m, "bias is not of length m");
        self.bias = Some(bias.into());
        self
    }

    /// The same weights followed by `y · sigmoid(alpha · y)`.
    pub fn with_quick_gelu(mut self, alpha: f32) -> PackedWeights {
        self.quick_gelu = Some(alpha);
        self
    }

    pub fn k(&self) -> usize {
        self.k
    }

    pub fn m(&self) -> usize {
        self.m
    }

    pub fn has_bias(&self) -> bool {
        self.bias.is_some()
    }

    /// Whether both are the same packed matrix (not merely equal values).
    pub fn same_as(&self, other: &PackedWeights) -> bool {
        Arc::ptr_eq(&self.data, &other.data)
            && match (&self.bias, &other.bias) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            }
            && self.quick_gelu.map(f32::to_bits) == other.quick_gelu.map(f32::to_bits)
    }

    /// `y = x · W (+ bias)` for `n` rows: `x` is `n×k`, `y` is `n×m`, both row-major.
    pub fn matmul(&self, x: &[f32], n: usize, y: &mut [f32]) {
        self.matmul_add(x, n, None, y)
    }

    /// `y = x · W (+ bias) (+ residual)`, `residual` being `n×m` like `y` (a transformer's skip
    /// connection, added in the same store instead of another pass over memory). Runs on
    /// [`dense_threads`] threads.
    pub fn matmul_add(&self, x: &[f32], n: usize, residual: Option<&[f32]>, y: &mut [f32]) {
        assert_eq!(x.len(), n * self.k, "x is not n×k");
        assert_eq!(y.len(), n * self.m, "y is not n×m");
        if let Some(r) = residual {
            assert_eq!(r.len(), y.len(), "residual is not n×m");
        }
        let res = InPtr(residual.map_or(std::ptr::null(), |r| r.as_ptr()));
        if n == 0 {
            return;
        }
        let xs = InPtr(x.as_ptr());
        let out = OutPtr(y.as_mut_ptr());
        let run = |p0: usize, p1: usize| {
            // SAFETY: tasks cover disjoint panel ranges, so they write disjoint columns of `y`;
            // `x` holds `n·k` floats (the kernel reads rows below `n` only) and the panels
            // `panels·k·PANEL`.
            unsafe { self.run_panels(xs, n, p0, p1, out, res) }
        };
        // A few parts per thread, claimed one at a time: a descheduled vCPU delays only the part
        // it holds.
        let parts = (dense_threads() * 4).min(self.panels);
        let per = self.panels.div_ceil(parts.max(1));
        run_parts(parts, &|i| {
            let p0 = i * per;
            let p1 = ((i + 1) * per).min(self.panels);
            if p0 < p1 {
                run(p0, p1);
            }
        });
    }

    /// Panels `p0..p1` for all rows, in row chunks small enough that a chunk of `x` stays in
    /// L2 while every panel of the range passes over it. Each chunk streams the
    /// panels again, so chunks are as large as L2 allows ([`ROW_CHUNK_BYTES`]).
    unsafe fn run_panels(&self, x: InPtr, n: usize, p0: usize, p1: usize, y: OutPtr, res: InPtr) {
        let k = self.k;
        let blocks = n.div_ceil(ROWS);
        let chunk_blocks = (ROW_CHUNK_BYTES / (k * ROWS * 4)).max(1);
        let mut b0 = 0;
        while b0 < blocks {
            let b1 = (b0 + chunk_blocks).min(blocks);
            // While the blocks after the first work on a panel (from L2), the next panel is
            // prefetched a share per block, so its first pass does not wait on memory.
            let nb = b1 - b0;
            let panel_lines = k * PANEL / 16;
            let share = if nb > 1 {
                panel_lines.div_ceil(nb - 1)
            } else {
                0
            };
            for p in p0..p1 {
                let panel = unsafe { self.data.as_ptr().add(p * k * PANEL) };
                let c0 = p * PANEL;
                let width = PANEL.min(self.m - c0);
                let bias = self.bias.as_ref().map(|b| &b[c0..c0 + width]);
                for b in b0..b1 {
                    let rows = ROWS.min(n - b * ROWS);
                    let xb = unsafe { x.0.add(b * ROWS * k) };
                    let dst = unsafe { y.0.add(b * ROWS * self.m + c0) };
                    let add = if res.0.is_null() {
                        res.0
                    } else {
                        unsafe { res.0.add(b * ROWS * self.m + c0) }
                    };
                    let bi = b - b0;
                    let pf = if p + 1 < p1 && bi > 0 {
                        let first = (bi - 1) * share;
                        let lines = share.min(panel_lines.saturating_sub(first));
                        // The next panel starts right after this one.
                        (unsafe { panel.add(k * PANEL + first * 16) }, lines)
                    } else {
                        (panel, 0)
                    };
                    let store = Store {
                        dst,
                        add,
                        ld: self.m,
                        rows,
                        width,
                        bias,
                        quick_gelu: self.quick_gelu,
                    };
                    unsafe { tile(k, xb, panel, &store, pf) };
                }
            }
            b0 = b1;
        }
    }
}

/// Bytes of packed `x` rows per chunk of [`PackedWeights::run_panels`]: half of the 2 MiB L2 of
/// the machine's cores, leaving room for the panel being streamed (at most k × 32 floats, 384 KiB
/// for CLIP's k = 3072). Measured against 256 KiB, interleaved in one process, one thread:
/// 400 × 3072 × 768 (a vision MLP down-projection for 8 images) 17.0 → 15.1 ms and 18.5 → 17.6 ms
/// in two runs (256 KiB took 16-row chunks, each streaming the 9 MiB of weights again); the
/// other CLIP shapes within ±3 %.
const ROW_CHUNK_BYTES: usize = 1024 * 1024;

#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: shared between tasks that write disjoint column ranges (see `matmul`).
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

/// The residual, read by every task (null when there is none).
#[derive(Clone, Copy)]
struct InPtr(*const f32);
// SAFETY: read-only while the product runs.
unsafe impl Send for InPtr {}
unsafe impl Sync for InPtr {}

/// Where and how a tile's 8×32 accumulators are stored: `rows × width` of them, at `dst` with
/// row stride `ld`, plus `bias`, through the activation, plus `add` (a residual, same layout as
/// `dst`; null for none).
#[derive(Clone, Copy)]
struct Store<'a> {
    dst: *mut f32,
    add: *const f32,
    ld: usize,
    rows: usize,
    width: usize,
    bias: Option<&'a [f32]>,
    quick_gelu: Option<f32>,
}

/// One tile of up to 8×32: `dst[r][c] = Σ_kk xb[r·k + kk]·panel[kk][c] (+ bias[c])` for
/// `r < rows`, `c < width`; `ld` is the row stride of `dst`.
///
/// `xb` is the block's first row of `x` as the caller holds it (row-major, stride `k`), not a
/// packed copy: packing `x` into 8-row interleaved blocks cost one single-threaded pass over it
/// per product (plus zeroing the copy) while the other thread waited, 12 % of the wall time for
/// 16 images. The kernel broadcasts from `R` row streams instead of one, at the same speed.
/// Measured with `examples/op_profile`, three alternating runs against the packing binary:
/// 16 images 34.3 / 34.5 / 34.7 → 32.5 / 31.3 / 30.2 ms per image, a single image
/// 38.2 / 39.4 / 38.5 → 35.5 / 36.4 / 36.5 ms, texts of 7 and 77 tokens unchanged.
///
/// The kernel is instantiated per row count so that a short last block (the 2 rows left of a
/// single image's 50 tokens) does only its own rows' FMAs instead of a full 8-row tile's (a
/// seventh of a single image's dense work was padding). Measured with `examples/gemm_probe`,
/// one thread, minimum of 40, three alternating runs against the 8-row-only kernel: the vision
/// tower's 72 dense layers at 50 rows 73.2 / 74.5 / 75.3 → 69.3 / 70.1 / 72.3 ms, 50×768×3072
/// 1.59 → 1.49 ms.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile(
    k: usize,
    xb: *const f32,
    panel: *const f32,
    store: &Store,
    pf: (*const f32, usize),
) {
    unsafe {
        match store.rows {
            8 => tile_rows::<8>(k, xb, panel, store, pf),
            7 => tile_rows::<7>(k, xb, panel, store, pf),
            6 => tile_rows::<6>(k, xb, panel, store, pf),
            5 => tile_rows::<5>(k, xb, panel, store, pf),
            4 => tile_rows::<4>(k, xb, panel, store, pf),
            3 => tile_rows::<3>(k, xb, panel, store, pf),
            2 => tile_rows::<2>(k, xb, panel, store, pf),
            _ => tile_rows::<1>(k, xb, panel, store, pf),
        }
    }
}

/// [`tile`] for exactly `R` rows (`R ≤ ROWS`): `R`×`VECS` accumulators in registers, one weight
/// panel row (`VECS` vectors) and `R` broadcasts per step of `k`; rows past `R` are not read.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile_rows<const R: usize>(
    k: usize,
    xb: *const f32,
    panel: *const f32,
    store: &Store,
    (pf, pf_lines): (*const f32, usize),
) {
    use std::arch::x86_64::*;
    let Store {
        dst,
        add,
        ld,
        width,
        bias,
        quick_gelu,
        ..
    } = *store;
    unsafe {
        let z = _mm512_setzero_ps();
        let mut acc = [[z; VECS]; R];
        let mut w = panel;
        let mut x = xb;
        // The next panel's `pf_lines` prefetches are spread evenly over the `k` steps, not
        // issued in a burst at the start: a burst of hundreds of misses fills the core's miss
        // queues while the FMAs wait on their own loads. Measured with `examples/op_profile`
        // (`PROFILE_TRASH_MB=1024`: 1 GiB of other memory written before each run, as the
        // benchmark's other runtimes do), alternating binaries: a single image 56.4 / 50.6 →
        // 52.8 / 43.4 ms, 8 images 38.3 / 37.2 → 38.1 / 35.3 ms per image, back to back (no
        // trashing) 48.2 / 44.3 → 45.2 / 42.3 ms.
        let per_event = pf_lines.div_ceil(k.max(1)).max(1);
        let events = pf_lines.div_ceil(per_event);
        let stride = k.checked_div(events).map_or(usize::MAX, |s| s.max(1));
        let mut countdown = 0usize;
        let mut line = 0usize;
        for _ in 0..k {
            if countdown == 0 && line < pf_lines {
                for _ in 0..per_event.min(pf_lines - line) {
                    _mm_prefetch::<_MM_HINT_T1>(pf.add(16 * line) as *const i8);
                    line += 1;
                }
                countdown = stride;
            }
            countdown = countdown.wrapping_sub(1);
            let mut wv = [z; VECS];
            for (v, wv) in wv.iter_mut().enumerate() {
                *wv = _mm512_load_ps(w.add(16 * v));
                _mm_prefetch::<_MM_HINT_T0>(w.add(PANEL * 64 + 16 * v) as *const i8);
            }
            for (r, acc) in acc.iter_mut().enumerate() {
                let xr = _mm512_set1_ps(*x.add(r * k));
                for v in 0..VECS {
                    acc[v] = _mm512_fmadd_ps(wv[v], xr, acc[v]);
                }
            }
            w = w.add(PANEL);
            x = x.add(1);
        }
        // Lanes of each vector that are columns of `W` (the last panel may be narrower).
        let mut mask = [0 as __mmask16; VECS];
        let mut bias_v = [z; VECS];
        for v in 0..VECS {
            let lanes = width.saturating_sub(16 * v).min(16);
            mask[v] = ((1u32 << lanes) - 1) as u16;
            if let Some(b) = bias {
                if lanes > 0 {
                    bias_v[v] = _mm512_maskz_loadu_ps(mask[v], b.as_ptr().add(16 * v));
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            let row = dst.add(r * ld);
            for v in 0..VECS {
                if mask[v] == 0 {
                    continue;
                }
                let mut y = _mm512_add_ps(acc[v], bias_v[v]);
                if let Some(alpha) = quick_gelu {
                    y = _mm512_mul_ps(
                        y,
                        super::softmax::sigmoid512(_mm512_mul_ps(y, _mm512_set1_ps(alpha))),
                    );
                }
                if !add.is_null() {
                    y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(mask[v], add.add(r * ld + 16 * v)));
                }
                _mm512_mask_storeu_ps(row.add(16 * v), mask[v], y);
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn tile(
    _k: usize,
    _xb: *const f32,
    _panel: *const f32,
    _store: &Store,
    _pf: (*const f32, usize),
) {
    unreachable!("the dense kernel is only wired in when `available()`")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn naive(x: &[f32], w: &[f32], bias: Option<&[f32]>, n: usize, k: usize, m: usize) -> Vec<f64> {
        let mut y = vec![0f64; n * m];
        for r in 0..n {
            for c in 0..m {
                let mut s = bias.map(|b| b[c] as f64).unwrap_or(0.0);
                for kk in 0..k {
                    s += x[r * k + kk] as f64 * w[kk * m + c] as f64;
                }
                y[r * m + c] = s;
            }
        }
        y
    }

    /// Asserts that `got` (a graph's f32 output through a rewrite) has `want`'s shape (tract's
    /// output without it) and every element within `tol` of it.
    pub(crate) fn assert_close(
        want: &tract_onnx::prelude::Tensor,
        got: &tract_onnx::prelude::Tensor,
        tol: f32,
        what: &str,
    ) {
        assert_eq!(want.shape(), got.shape(), "{what}");
        let (w, g) = (
            want.to_plain_array_view::<f32>().unwrap(),
            got.to_plain_array_view::<f32>().unwrap(),
        );
        for (x, y) in w.iter().zip(g.iter()) {
            assert!((x - y).abs() <= tol, "{what}: {x} vs {y}");
        }
    }

    /// Deterministic test values in [-1, 1] (xorshift).
    pub(crate) fn data(len: usize, seed: u32) -> Vec<f32> {
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

    #[test]
    fn quick_gelu_and_residual_are_applied_in_the_store() {
        if !available() {
            return;
        }
        let (n, k, m) = (9, 40, 37);
        let (x, w, b, r) = (data(n * k, 4), data(k * m, 5), data(m, 6), data(n * m, 7));
        let packed = PackedWeights::pack(&w, k, m)
            .with_bias(&b)
            .with_quick_gelu(1.702);
        let mut y = vec![f32::NAN; n * m];
        packed.matmul_add(&x, n, Some(&r), &mut y);
        let want = naive(&x, &w, Some(&b), n, k, m);
        for i in 0..n * m {
            let v = want[i];
            let expect = v / (1.0 + (-1.702 * v).exp()) + r[i] as f64;
            assert!(
                (y[i] as f64 - expect).abs() <= 1e-5,
                "{i}: {} vs {expect}",
                y[i]
            );
        }
    }

    #[test]
    fn matches_a_float64_reference_on_odd_shapes() {
        if !available() {
            return;
        }
        for &(n, k, m, with_bias) in &[
            (1, 1, 1, false),
            (7, 512, 64, true),
            (9, 33, 47, true),
            (17, 5, 100, false),
            (50, 64, 16, true),
            (3, 70, 31, false),
            // Last blocks of 4 and 5 rows (every row count 1..=8 is a kernel of its own).
            (12, 96, 40, true),
            (13, 20, 33, false),
            // 70 rows of k = 4096 take two row chunks (8 blocks, then 1) of `ROW_CHUNK_BYTES`.
            (70, 4096, 70, true),
        ] {
            let x = data(n * k, 1 + n as u32);
            let w = data(k * m, 2 + m as u32);
            let b = data(m, 3);
            let mut packed = PackedWeights::pack(&w, k, m);
            if with_bias {
                packed = packed.with_bias(&b);
            }
            for exec in [
                Executor::SingleThread,
                Executor::multithread_with_name(2, "gemm-test"),
            ] {
                let mut y = vec![f32::NAN; n * m];
                tract_linalg::multithread::multithread_tract_scope(exec, || {
                    packed.matmul(&x, n, &mut y)
                });
                let want = naive(&x, &w, with_bias.then_some(&b[..]), n, k, m);
                for (i, (got, want)) in y.iter().zip(&want).enumerate() {
                    let tol = 1e-5 * (k as f64).sqrt() + 1e-6;
                    assert!(
                        (*got as f64 - want).abs() <= tol,
                        "n={n} k={k} m={m} at {i}: {got} vs {want}"
                    );
                }
            }
        }
    }
}
