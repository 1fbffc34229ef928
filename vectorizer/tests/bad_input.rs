//! Hostile and broken inputs give a clear `EmbedError`, never a panic or an unbounded allocation;
//! broken model directories name the file that is wrong.

mod crafted;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use vectorizer::{EmbedError, Embedder, ModelOptions, TractClip};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

fn options() -> ModelOptions {
    ModelOptions {
        model_dir: fixtures().join("model"),
        threads: 1,
        ..ModelOptions::default()
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

async fn one_image(model: &TractClip, s: String) -> Result<vectorizer::Vector, EmbedError> {
    model.embed_images(&[s]).await.remove(0)
}

#[tokio::test]
async fn bad_images_are_clear_errors() {
    let model = TractClip::load(&options()).expect("model");
    let png = std::fs::read(fixtures().join("images/red-circle.png")).expect("png");

    // Base64 the container rejects (spec §4: a data URI prefix corrupts the payload).
    let data_uri = format!("data:image/png;base64,{}", b64(&png));
    // (which error depends on the payload length, exactly as with b64decode)
    let r = one_image(&model, data_uri).await;
    assert!(
        matches!(
            r,
            Err(EmbedError::InvalidBase64(_) | EmbedError::ImageDecode(_))
        ),
        "data URI: {r:?}"
    );
    assert!(matches!(
        one_image(&model, "abcde".into()).await,
        Err(EmbedError::InvalidBase64(_))
    ));
    assert!(matches!(
        one_image(&model, "ünïcode".into()).await,
        Err(EmbedError::InvalidBase64(_))
    ));
    // Valid base64 of bytes that are no image, and of nothing.
    match one_image(&model, b64(b"definitely not an image")).await {
        Err(EmbedError::ImageDecode(m)) => assert!(m.contains("cannot identify image file"), "{m}"),
        other => panic!("garbage: {other:?}"),
    }
    assert!(matches!(
        one_image(&model, String::new()).await,
        Err(EmbedError::ImageDecode(_))
    ));
    // A truncated PNG (header intact, data cut): every cut point errors, none panics.
    for cut in [8usize, 20, 33, 50, png.len() / 2, png.len() - 13] {
        let r = one_image(&model, b64(&png[..cut])).await;
        assert!(
            matches!(r, Err(EmbedError::ImageDecode(_))),
            "cut at {cut}: {r:?}"
        );
    }
    // Whitespace and line breaks inside the base64 are accepted, as b64decode accepts them.
    let wrapped: String = b64(&png)
        .as_bytes()
        .chunks(76)
        .map(|c| format!("{}\n", String::from_utf8_lossy(c)))
        .collect();
    assert!(one_image(&model, wrapped).await.is_ok());
}

#[tokio::test]
async fn huge_dimensions_are_refused_from_the_header() {
    let model = TractClip::load(&options()).expect("model");
    // 100,000 × 100,000 claimed by a ~60-byte file: refused before any pixel buffer exists.
    match one_image(&model, b64(&crafted::png_claiming(100_000, 100_000))).await {
        Err(EmbedError::ImageTooLarge(m)) => assert!(m.contains("100000x100000"), "{m}"),
        other => panic!("huge header: {other:?}"),
    }
    // A real decompression bomb: 8000 × 8000 black pixels compress to a few dozen KB.
    let mut bomb = Vec::new();
    {
        let mut enc = image::codecs::png::PngEncoder::new(&mut bomb);
        let _ = &mut enc;
        let img = image::RgbImage::new(8000, 8000);
        img.write_with_encoder(enc).expect("encode bomb");
    }
    assert!(bomb.len() < 1_000_000, "bomb is {} bytes", bomb.len());
    let small_limit = TractClip::load(&ModelOptions {
        max_image_pixels: 10_000_000,
        ..options()
    })
    .expect("model");
    match one_image(&small_limit, b64(&bomb)).await {
        Err(EmbedError::ImageTooLarge(m)) => assert!(m.contains("64000000 pixels"), "{m}"),
        other => panic!("bomb: {other:?}"),
    }
    // Other inputs of the same request are unaffected by one bad image.
    let good = b64(&std::fs::read(fixtures().join("images/red-circle.png")).expect("png"));
    let res = small_limit.embed_images(&[good, b64(&bomb)]).await;
    assert!(res[0].is_ok() && res[1].is_err());
}

#[tokio::test]
async fn texts_of_any_length_embed() {
    let model = TractClip::load(&options()).expect("model");
    let long = "circle ".repeat(5000);
    let res = model
        .embed_texts(&[String::new(), long, "a red circle".into()])
        .await;
    for r in &res {
        assert!(r.is_ok(), "{r:?}");
    }
    assert_eq!(
        model.tokenize(&"circle ".repeat(5000)).expect("ids").len(),
        77
    );
}

#[tokio::test]
async fn a_full_queue_answers_overloaded_at_once() {
    let model = TractClip::load(&ModelOptions {
        queue_capacity: 1,
        max_batch: 1,
        ..options()
    })
    .expect("model");
    let texts: Vec<Vec<String>> = (0..64).map(|i| vec![format!("text number {i}")]).collect();
    let results = futures::future::join_all(texts.iter().map(|t| model.embed_texts(t))).await;
    let overloaded = results
        .iter()
        .filter(|r| matches!(r[0], Err(EmbedError::Overloaded)))
        .count();
    let ok = results.iter().filter(|r| r[0].is_ok()).count();
    assert!(overloaded > 0, "no request was refused");
    assert!(ok > 0, "no request was served");
    assert_eq!(ok + overloaded, 64);
}

fn copy_model_without(skip: &str) -> PathBuf {
    let src = fixtures().join("model");
    let dst = std::env::temp_dir().join(format!(
        "clipgate-model-{}-{}",
        std::process::id(),
        skip.replace('/', "_")
    ));
    let _ = std::fs::remove_dir_all(&dst);
    std::fs::create_dir_all(dst.join("onnx")).expect("mkdir");
    for rel in [
        "config.json",
        "preprocessor_config.json",
        "tokenizer.json",
        "onnx/text_model.onnx",
        "onnx/vision_model.onnx",
    ] {
        if rel != skip {
            std::fs::copy(src.join(rel), dst.join(rel)).expect("copy");
        }
    }
    dst
}

fn load_err(opts: &ModelOptions) -> String {
    match TractClip::load(opts) {
        Ok(_) => panic!("loading {opts:?} should fail"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn missing_or_broken_model_files_are_named() {
    for missing in [
        "config.json",
        "preprocessor_config.json",
        "tokenizer.json",
        "onnx/text_model.onnx",
        "onnx/vision_model.onnx",
    ] {
        let dir = copy_model_without(missing);
        let msg = load_err(&ModelOptions {
            model_dir: dir.clone(),
            ..options()
        });
        let name = missing.rsplit('/').next().unwrap_or(missing);
        assert!(
            msg.contains(name) && msg.contains("not found"),
            "missing {missing}: {msg}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
    // Inconsistent: an ONNX file that is not the expected tower.
    let dir = copy_model_without("none");
    std::fs::copy(
        dir.join("onnx/vision_model.onnx"),
        dir.join("onnx/text_model.onnx"),
    )
    .expect("copy");
    let msg = load_err(&ModelOptions {
        model_dir: dir.clone(),
        ..options()
    });
    assert!(
        msg.contains("text_model.onnx") && msg.contains("text_embeds"),
        "{msg}"
    );
    // Not JSON.
    std::fs::File::create(dir.join("config.json"))
        .and_then(|mut f| f.write_all(b"{not json"))
        .expect("write");
    let msg = load_err(&ModelOptions {
        model_dir: dir.clone(),
        ..options()
    });
    assert!(
        msg.contains("config.json") && msg.contains("not valid JSON"),
        "{msg}"
    );
    let _ = std::fs::remove_dir_all(dir);
    let msg = load_err(&ModelOptions {
        model_dir: fixtures().join("no-such-model"),
        ..options()
    });
    assert!(msg.contains("no-such-model"), "{msg}");
}

fn fixture_jpegs() -> Vec<(&'static str, Vec<u8>)> {
    [
        "rgb-baseline.jpg",
        "rgb-progressive.jpg",
        "cmyk.jpg",
        "gray-jpeg.jpg",
    ]
    .into_iter()
    .map(|n| {
        let bytes = std::fs::read(fixtures().join("images/formats").join(n)).expect("jpeg");
        (n, bytes)
    })
    .collect()
}

/// Offset of the SOF segment's precision byte (SOF0..SOF2: baseline, extended, progressive).
fn sof_offset(jpeg: &[u8]) -> usize {
    let mut i = 2;
    while i + 4 <= jpeg.len() {
        assert_eq!(jpeg[i], 0xFF, "marker expected at {i}");
        let marker = jpeg[i + 1];
        if (0xC0..=0xC2).contains(&marker) {
            return i + 4;
        }
        i += 2 + usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
    }
    panic!("no SOF marker");
}

/// Pillow raises "image file is truncated" for a JPEG cut anywhere (checked with Pillow 13 on
/// these files, down to a missing final byte of EOI); libjpeg would instead pad with grey and
/// warn. Every cut is an error here too, and none aborts the process.
#[test]
fn truncated_jpegs_are_errors_at_every_cut() {
    use vectorizer::image::{decode_rgb, DEFAULT_MAX_IMAGE_PIXELS};
    for (name, jpeg) in fixture_jpegs() {
        assert!(
            decode_rgb(&jpeg, DEFAULT_MAX_IMAGE_PIXELS).is_ok(),
            "{name}"
        );
        let tail = jpeg.len().saturating_sub(24)..jpeg.len();
        for cut in (0..jpeg.len()).step_by(5).chain(tail) {
            match decode_rgb(&jpeg[..cut], DEFAULT_MAX_IMAGE_PIXELS) {
                Err(EmbedError::ImageDecode(m)) => assert!(!m.is_empty()),
                other => panic!("{name} cut at {cut} of {}: {other:?}", jpeg.len()),
            }
        }
        match decode_rgb(&jpeg[..jpeg.len() - 1], DEFAULT_MAX_IMAGE_PIXELS) {
            Err(EmbedError::ImageDecode(m)) => assert!(m.contains("truncated"), "{name}: {m}"),
            other => panic!("{name} without its last byte: {other:?}"),
        }
    }
}

/// Corrupt bytes anywhere (markers, tables, entropy data) give pixels or a clear error: libjpeg's
/// fatal errors come back as values (its default handler would call exit()).
#[test]
fn corrupt_jpegs_never_abort() {
    use vectorizer::image::{decode_rgb, DEFAULT_MAX_IMAGE_PIXELS};
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut ok, mut errors) = (0, 0);
    for (name, jpeg) in fixture_jpegs() {
        for _ in 0..150 {
            let mut bad = jpeg.clone();
            for _ in 0..1 + next() % 4 {
                let at = (next() % bad.len() as u64) as usize;
                bad[at] = next() as u8;
            }
            match decode_rgb(&bad, DEFAULT_MAX_IMAGE_PIXELS) {
                Ok(img) => {
                    assert_eq!(img.data.len(), img.width * img.height * 3, "{name}");
                    ok += 1;
                }
                Err(EmbedError::ImageDecode(_) | EmbedError::ImageTooLarge(_)) => errors += 1,
                Err(other) => panic!("{name}: unexpected error {other:?}"),
            }
        }
    }
    assert!(ok > 0 && errors > 0, "ok {ok}, errors {errors}");
}

#[test]
fn jpeg_headers_are_checked_before_decoding() {
    use vectorizer::image::{decode_rgb, DEFAULT_MAX_IMAGE_PIXELS};
    let jpeg = std::fs::read(fixtures().join("images/formats/rgb-baseline.jpg")).expect("jpeg");
    let sof = sof_offset(&jpeg);
    // 60000 × 60000 claimed by a 2 KB file: refused from the header, no pixel buffer allocated.
    let mut huge = jpeg.clone();
    huge[sof + 1..sof + 5].copy_from_slice(&[0xEA, 0x60, 0xEA, 0x60]);
    match decode_rgb(&huge, DEFAULT_MAX_IMAGE_PIXELS) {
        Err(EmbedError::ImageTooLarge(m)) => assert!(m.contains("60000x60000"), "{m}"),
        other => panic!("huge JPEG header: {other:?}"),
    }
    // The configured limit applies to JPEG as to every format.
    match decode_rgb(&jpeg, 160 * 120 - 1) {
        Err(EmbedError::ImageTooLarge(m)) => assert!(m.contains("160x120"), "{m}"),
        other => panic!("over the limit: {other:?}"),
    }
    assert!(decode_rgb(&jpeg, 160 * 120).is_ok());
    // Pillow's JpegImagePlugin refuses other precisions; an 8-bit libjpeg cannot decode them.
    let mut twelve = jpeg.clone();
    twelve[sof] = 12;
    assert!(
        matches!(
            decode_rgb(&twelve, DEFAULT_MAX_IMAGE_PIXELS),
            Err(EmbedError::ImageDecode(_))
        ),
        "12-bit"
    );
    // A JPEG that says it has no lines.
    let mut empty = jpeg.clone();
    empty[sof + 1..sof + 3].copy_from_slice(&[0, 0]);
    assert!(matches!(
        decode_rgb(&empty, DEFAULT_MAX_IMAGE_PIXELS),
        Err(EmbedError::ImageDecode(_))
    ));
}
