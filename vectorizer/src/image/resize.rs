//! Pillow's `Image.resize` for 8-bit RGB images, reproduced operation for operation.
//!
//! The container preprocesses with transformers' PIL image processor, which calls
//! `PIL.Image.resize(size, resample=BICUBIC, reducing_gap=None)`. Pillow (src/libImaging/Resample.c)
//! resamples in two separable passes — horizontal first into an 8-bit intermediate, then vertical —
//! with filter support scaled by the downscale factor (that is the "antialias"), coefficients
//! normalised in f64 and then rounded to 22-bit fixed point, accumulators started at one half and
//! results shifted and clipped to 0..=255. Each of these steps moves pixel values by one unit when
//! done differently, and one unit moves CLIP image embeddings by ~1e-3 (issue 2 acceptance), so
//! they are all reproduced here exactly.

/// Pillow's resampling filters (`Image.Resampling` values as stored in preprocessor_config.json).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// `BILINEAR` (2): triangle filter, support 1.
    Bilinear,
    /// `BICUBIC` (3): Keys cubic with a = -0.5, support 2.
    Bicubic,
    /// `LANCZOS` (1): Lanczos-3, support 3.
    Lanczos,
    /// `BOX` (4): support 0.5.
    Box,
    /// `HAMMING` (5): support 1.
    Hamming,
}

impl Filter {
    /// Maps the integer `resample` of preprocessor_config.json (PIL's enum values).
    pub fn from_pil(code: i64) -> Option<Filter> {
        match code {
            1 => Some(Filter::Lanczos),
            2 => Some(Filter::Bilinear),
            3 => Some(Filter::Bicubic),
            4 => Some(Filter::Box),
            5 => Some(Filter::Hamming),
            _ => None,
        }
    }

    fn support(self) -> f64 {
        match self {
            Filter::Box => 0.5,
            Filter::Bilinear | Filter::Hamming => 1.0,
            Filter::Bicubic => 2.0,
            Filter::Lanczos => 3.0,
        }
    }

    fn eval(self, x: f64) -> f64 {
        match self {
            Filter::Box => {
                if x > -0.5 && x <= 0.5 {
                    1.0
                } else {
                    0.0
                }
            }
            Filter::Bilinear => {
                let x = x.abs();
                if x < 1.0 {
                    1.0 - x
                } else {
                    0.0
                }
            }
            Filter::Hamming => {
                let x = x.abs();
                if x == 0.0 {
                    1.0
                } else if x >= 1.0 {
                    0.0
                } else {
                    let x = x * std::f64::consts::PI;
                    // Pillow writes 0.54f and 0.46f: single-precision constants.
                    x.sin() / x * (f64::from(0.54f32) + f64::from(0.46f32) * x.cos())
                }
            }
            Filter::Bicubic => {
                const A: f64 = -0.5;
                let x = x.abs();
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
            Filter::Lanczos => {
                fn sinc(x: f64) -> f64 {
                    if x == 0.0 {
                        1.0
                    } else {
                        let x = x * std::f64::consts::PI;
                        x.sin() / x
                    }
                }
                if (-3.0..3.0).contains(&x) {
                    sinc(x) * sinc(x / 3.0)
                } else {
                    0.0
                }
            }
        }
    }
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Fixed-point coefficients of one axis: for output index `i`, input pixels
/// `bounds[i].0 .. bounds[i].0 + bounds[i].1` weighted by `kk[i * ksize ..]`.
struct Coeffs {
    ksize: usize,
    bounds: Vec<(usize, usize)>,
    kk: Vec<i32>,
}

/// `precompute_coeffs` + `normalize_coeffs_8bpc` of Resample.c for the box `[0, in_size)`.
fn precompute(in_size: usize, out_size: usize, filter: Filter) -> Coeffs {
    let in0 = 0.0f64;
    let in1 = in_size as f64;
    let scale = (in1 - in0) / out_size as f64;
    let filterscale = if scale < 1.0 { 1.0 } else { scale };
    let support = filter.support() * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size);
    let mut kk = vec![0i32; out_size * ksize];
    let mut k = vec![0f64; ksize];
    for xx in 0..out_size {
        let center = in0 + (xx as f64 + 0.5) * scale;
        let ss = 1.0 / filterscale;
        // C casts with (int), truncating toward zero; values here are > -1 so this matches.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let n = xmax.saturating_sub(xmin);
        let mut ww = 0.0f64;
        for (x, kx) in k.iter_mut().enumerate().take(n) {
            let w = filter.eval((x as f64 + xmin as f64 - center + 0.5) * ss);
            *kx = w;
            ww += w;
        }
        for (x, kx) in k.iter().enumerate().take(n) {
            let v = if ww != 0.0 { kx / ww } else { *kx };
            let fixed = v * f64::from(1u32 << PRECISION_BITS);
            kk[xx * ksize + x] = if v < 0.0 {
                (-0.5 + fixed) as i32
            } else {
                (0.5 + fixed) as i32
            };
        }
        bounds.push((xmin, n));
    }
    Coeffs { ksize, bounds, kk }
}

#[inline]
fn clip8(ss: i32) -> u8 {
    (ss >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resizes an interleaved RGB8 image (`src.len() == w * h * 3`) to `out_w × out_h` as
/// `PIL.Image.resize((out_w, out_h), filter)` does for an "RGB" image.
pub fn resize_rgb8(
    src: &[u8],
    w: usize,
    h: usize,
    out_w: usize,
    out_h: usize,
    filter: Filter,
) -> Vec<u8> {
    if w == out_w && h == out_h {
        return src.to_vec();
    }
    let need_h = out_w != w;
    let need_v = out_h != h;
    // Pillow 13 runs the vertical pass first for some sizes. For the aspect-preserving resizes
    // of CLIP preprocessing its choice is: vertical first iff the image is more than twice as
    // tall as wide and the vertical pass shrinks (found by experiment against Pillow 13.0.0,
    // fixtures/scripts/pil_resample_reference.py; Pillow <= 11 always goes horizontal first).
    // For arbitrary target sizes Pillow 13's rule is not modelled.
    if need_h && need_v && h > 2 * w && out_h < h {
        let vert = precompute(h, out_h, filter);
        let tmp = vertical_pass(src, w, out_h, &vert, 0);
        let horiz = precompute(w, out_w, filter);
        return horizontal_pass(&tmp, w, out_w, out_h, 0, &horiz);
    }
    let horiz = precompute(w, out_w, filter);
    let vert = precompute(h, out_h, filter);

    // Rows of the source that the vertical pass reads (Resample.c `ybox_first`/`ybox_last`).
    let (ybox_first, ybox_last) = if need_v {
        let first = vert.bounds.first().map_or(0, |b| b.0);
        let last = vert.bounds.last().map_or(h, |b| b.0 + b.1);
        (first, last)
    } else {
        (0, h)
    };

    let (tmp, tmp_w, row_offset) = if need_h {
        let rows = ybox_last - ybox_first;
        (
            horizontal_pass(src, w, out_w, rows, ybox_first, &horiz),
            out_w,
            ybox_first,
        )
    } else {
        (src.to_vec(), w, 0)
    };
    if !need_v {
        return tmp;
    }
    vertical_pass(&tmp, tmp_w, out_h, &vert, row_offset)
}

/// Resample.c `ImagingResampleHorizontal_8bpc`: `rows` rows starting at source row `first_row`.
fn horizontal_pass(
    src: &[u8],
    w: usize,
    out_w: usize,
    rows: usize,
    first_row: usize,
    c: &Coeffs,
) -> Vec<u8> {
    let mut tmp = vec![0u8; out_w * rows * 3];
    for yy in 0..rows {
        let in_row = &src[(yy + first_row) * w * 3..(yy + first_row + 1) * w * 3];
        let out_row = &mut tmp[yy * out_w * 3..(yy + 1) * out_w * 3];
        for xx in 0..out_w {
            let (xmin, n) = c.bounds[xx];
            let k = &c.kk[xx * c.ksize..xx * c.ksize + n];
            let mut s0 = 1i32 << (PRECISION_BITS - 1);
            let mut s1 = s0;
            let mut s2 = s0;
            for (x, &kx) in k.iter().enumerate() {
                let p = &in_row[(x + xmin) * 3..(x + xmin) * 3 + 3];
                s0 += i32::from(p[0]) * kx;
                s1 += i32::from(p[1]) * kx;
                s2 += i32::from(p[2]) * kx;
            }
            out_row[xx * 3] = clip8(s0);
            out_row[xx * 3 + 1] = clip8(s1);
            out_row[xx * 3 + 2] = clip8(s2);
        }
    }
    tmp
}

/// Resample.c `ImagingResampleVertical_8bpc`, with source rows shifted by `row_offset`.
fn vertical_pass(src: &[u8], w: usize, out_h: usize, c: &Coeffs, row_offset: usize) -> Vec<u8> {
    let mut out = vec![0u8; w * out_h * 3];
    let mut acc = vec![0i32; w * 3];
    for yy in 0..out_h {
        let (ymin, n) = c.bounds[yy];
        let ymin = ymin - row_offset;
        let k = &c.kk[yy * c.ksize..yy * c.ksize + n];
        acc.fill(1i32 << (PRECISION_BITS - 1));
        for (y, &ky) in k.iter().enumerate() {
            let row = &src[(y + ymin) * w * 3..(y + ymin + 1) * w * 3];
            for (a, &p) in acc.iter_mut().zip(row) {
                *a += i32::from(p) * ky;
            }
        }
        for (o, &a) in out[yy * w * 3..(yy + 1) * w * 3].iter_mut().zip(&acc) {
            *o = clip8(a);
        }
    }
    out
}
