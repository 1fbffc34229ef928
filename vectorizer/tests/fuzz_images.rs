//! Fuzzing image decoding and preprocessing (issue 7, "Hostile input"): mutated bytes of the
//! fixture images (`fixtures/fuzz/images/corpus.txt`) through the whole request path
//! (`preprocess_base64`: base64 → decode → RGB → resize/crop → tensor) never panic, answer a
//! tensor of the model's shape or a typed error, and never make one allocation larger than the
//! decoder's budget. Plus decompression bombs: tiny PNG/GIF/BMP files that declare
//! 60,000 × 60,000 pixels are refused from their headers with no large allocation.
//!
//! Case count: `PROPTEST_CASES` (default 48 here, so `cargo test` stays fast);
//! `scripts/fuzz.sh` runs many more.

mod crafted;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use vectorizer::image::{decode_rgb, preprocess_base64, ImageConfig};
use vectorizer::EmbedError;

// ---- the largest single allocation made by the current thread -------------------------------

struct PeakAlloc;

thread_local! {
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = PEAK.try_with(|p| {
        if size > p.get() {
            p.set(size);
        }
    });
}

// SAFETY: forwards every call to the system allocator unchanged; only records sizes.
unsafe impl GlobalAlloc for PeakAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: PeakAlloc = PeakAlloc;

/// Runs `f` and returns its result and the largest single allocation it made on this thread.
fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    PEAK.with(|p| p.set(0));
    let out = f();
    (out, PEAK.with(|p| p.get()))
}

// ---- corpus -----------------------------------------------------------------------------------

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

fn corpus() -> Vec<Vec<u8>> {
    let list = std::fs::read_to_string(fixtures().join("fuzz/images/corpus.txt")).expect("corpus");
    let files: Vec<Vec<u8>> = list
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| std::fs::read(fixtures().join("images").join(l)).expect("corpus image"))
        .collect();
    assert!(files.len() >= 10, "{} corpus files", files.len());
    files
}

fn image_config() -> ImageConfig {
    let text = std::fs::read_to_string(fixtures().join("model/preprocessor_config.json"))
        .expect("preprocessor_config.json");
    ImageConfig::from_json(&serde_json::from_str(&text).expect("json")).expect("image config")
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Small, so that mutated dimensions stay cheap to decode; the limit path is what is tested.
const MAX_PIXELS: u64 = 2_000_000;

/// The decoder's allocation budget for `MAX_PIXELS` (`decode_rgb`: 8 bytes a pixel + 64 MiB).
fn budget(max_pixels: u64) -> usize {
    (max_pixels * 8 + (64 << 20)) as usize
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Overwrite one byte.
    Byte(prop::sample::Index, u8),
    /// Write an "interesting" 16- or 32-bit value (little or big endian) somewhere, e.g. over a
    /// width or height field.
    Interesting(prop::sample::Index, u32, bool, bool),
    Truncate(prop::sample::Index),
    Insert(prop::sample::Index, Vec<u8>),
    /// Copy a slice of the file over another place.
    Copy(prop::sample::Index, prop::sample::Index, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let index = any::<prop::sample::Index>;
    let interesting = prop::sample::select(vec![
        0u32,
        1,
        2,
        0x7F,
        0xFF,
        0x100,
        0x7FFF,
        0xFFFF,
        60_000,
        0x10000,
        0x7FFF_FFFF,
        0xFFFF_FFFF,
    ]);
    prop_oneof![
        4 => (index(), any::<u8>()).prop_map(|(i, b)| Mutation::Byte(i, b)),
        3 => (index(), interesting, any::<bool>(), any::<bool>())
            .prop_map(|(i, v, wide, le)| Mutation::Interesting(i, v, wide, le)),
        1 => index().prop_map(Mutation::Truncate),
        1 => (index(), prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => (index(), index(), 1u8..64).prop_map(|(a, b, n)| Mutation::Copy(a, b, n)),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    match m {
        Mutation::Byte(i, b) => {
            let at = i.index(bytes.len());
            bytes[at] = *b;
        }
        Mutation::Interesting(i, v, wide, le) => {
            let raw: Vec<u8> = match (wide, le) {
                (true, true) => v.to_le_bytes().to_vec(),
                (true, false) => v.to_be_bytes().to_vec(),
                (false, true) => (*v as u16).to_le_bytes().to_vec(),
                (false, false) => (*v as u16).to_be_bytes().to_vec(),
            };
            let at = i.index(bytes.len());
            for (k, b) in raw.into_iter().enumerate() {
                if let Some(slot) = bytes.get_mut(at + k) {
                    *slot = b;
                }
            }
        }
        Mutation::Truncate(i) => {
            let at = i.index(bytes.len());
            bytes.truncate(at);
        }
        Mutation::Insert(i, extra) => {
            let at = i.index(bytes.len() + 1);
            bytes.splice(at..at, extra.iter().copied());
        }
        Mutation::Copy(from, to, n) => {
            let from = from.index(bytes.len());
            let to = to.index(bytes.len());
            let n = (*n as usize).min(bytes.len() - from).min(bytes.len() - to);
            let chunk = bytes[from..from + n].to_vec();
            bytes[to..to + n].copy_from_slice(&chunk);
        }
    }
}

static CASES: AtomicUsize = AtomicUsize::new(0);
static DECODED: AtomicUsize = AtomicUsize::new(0);
static LARGEST: AtomicUsize = AtomicUsize::new(0);

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(48), failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proptest-regressions/fuzz_images.txt"
        )))),
        ..ProptestConfig::default() })]

    #[test]
    fn mutated_images_decode_or_fail_cleanly(
        seed in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        thread_local! {
            static CORPUS: Vec<Vec<u8>> = corpus();
            static CONFIG: ImageConfig = image_config();
        }
        CASES.fetch_add(1, Ordering::Relaxed);
        let mut bytes = CORPUS.with(|c| c[seed.index(c.len())].clone());
        for m in &mutations {
            apply(&mut bytes, m);
        }
        let encoded = b64(&bytes);
        let (result, peak) = peak_of(|| CONFIG.with(|cfg| preprocess_base64(&encoded, cfg, MAX_PIXELS)));
        LARGEST.fetch_max(peak, Ordering::Relaxed);
        prop_assert!(peak <= budget(MAX_PIXELS), "one allocation of {peak} bytes");
        match result {
            Ok(tensor) => {
                DECODED.fetch_add(1, Ordering::Relaxed);
                if let Some((h, w)) = CONFIG.with(ImageConfig::output_size) {
                    prop_assert_eq!(tensor.len(), 3 * h * w);
                }
                prop_assert!(tensor.iter().all(|x| x.is_finite()));
            }
            Err(EmbedError::ImageDecode(m) | EmbedError::ImageTooLarge(m)) => prop_assert!(!m.is_empty()),
            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
        }
    }
}

// ---- decompression bombs ----------------------------------------------------------------------

/// A GIF with a `screen` logical screen and one `frame`-sized image of one pixel's data.
fn gif_claiming(screen: (u16, u16), frame: (u16, u16)) -> Vec<u8> {
    let mut out = b"GIF89a".to_vec();
    out.extend_from_slice(&screen.0.to_le_bytes());
    out.extend_from_slice(&screen.1.to_le_bytes());
    out.extend_from_slice(&[0x80, 0, 0]); // global colour table of 2 entries
    out.extend_from_slice(&[0, 0, 0, 255, 255, 255]);
    out.push(0x2C);
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&frame.0.to_le_bytes());
    out.extend_from_slice(&frame.1.to_le_bytes());
    out.push(0);
    out.extend_from_slice(&[0x02, 0x02, 0x44, 0x01, 0x00]); // LZW data of one pixel
    out.push(0x3B);
    out
}

/// A BMP header claiming `w × h` 24-bit pixels, with no pixel data.
fn bmp_claiming(w: i32, h: i32) -> Vec<u8> {
    let mut out = b"BM".to_vec();
    out.extend_from_slice(&54u32.to_le_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&54u32.to_le_bytes());
    out.extend_from_slice(&40u32.to_le_bytes());
    out.extend_from_slice(&w.to_le_bytes());
    out.extend_from_slice(&h.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&24u16.to_le_bytes());
    out.extend_from_slice(&[0; 24]);
    out
}

#[test]
fn sixty_thousand_squared_bombs_are_refused_without_allocating() {
    let limit = vectorizer::image::DEFAULT_MAX_IMAGE_PIXELS;
    let bombs = [
        ("png", crafted::png_claiming(60_000, 60_000)),
        ("gif screen", gif_claiming((60_000, 60_000), (1, 1))),
        (
            "gif screen and frame",
            gif_claiming((60_000, 60_000), (60_000, 60_000)),
        ),
        ("bmp", bmp_claiming(60_000, 60_000)),
        ("bmp top-down", bmp_claiming(60_000, -60_000)),
    ];
    for (name, bytes) in bombs {
        assert!(bytes.len() < 100, "{name}: {} bytes", bytes.len());
        let (result, peak) = peak_of(|| decode_rgb(&bytes, limit));
        match result {
            Err(EmbedError::ImageTooLarge(m)) => {
                assert!(m.contains("60000x60000 = 3600000000 pixels"), "{name}: {m}")
            }
            other => panic!("{name}: {other:?}"),
        }
        // Nothing near the 10.8 GB of pixels: only the decoder's own small buffers.
        assert!(peak < 1 << 20, "{name}: one allocation of {peak} bytes");
    }
}

#[test]
fn a_frame_larger_than_its_gif_screen_cannot_bypass_the_pixel_limit() {
    // The header's screen is 1 × 1 (under any limit); the frame claims 60,000 × 60,000.
    let bytes = gif_claiming((1, 1), (60_000, 60_000));
    let (result, peak) =
        peak_of(|| decode_rgb(&bytes, vectorizer::image::DEFAULT_MAX_IMAGE_PIXELS));
    assert!(
        matches!(
            result,
            Err(EmbedError::ImageDecode(_) | EmbedError::ImageTooLarge(_))
        ) || matches!(&result, Ok(img) if img.width * img.height <= 1),
        "{result:?}"
    );
    assert!(
        peak < budget(vectorizer::image::DEFAULT_MAX_IMAGE_PIXELS),
        "one allocation of {peak} bytes"
    );
    eprintln!(
        "gif frame larger than screen: {:?}, largest allocation {peak} bytes",
        result.map(|i| (i.width, i.height))
    );
}

/// Runs last in a `--test-threads=1` run; prints the case counts (`scripts/fuzz.sh`).
#[test]
fn zz_report_counts() {
    eprintln!(
        "fuzz_images: mutated_images {} cases ({} decoded to a tensor; largest single allocation {} bytes, budget {})",
        CASES.load(Ordering::Relaxed),
        DECODED.load(Ordering::Relaxed),
        LARGEST.load(Ordering::Relaxed),
        budget(MAX_PIXELS)
    );
}
