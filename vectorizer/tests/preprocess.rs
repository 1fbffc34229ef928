//! Bit-exact image preprocessing against the committed PIL output.
//!
//! fixtures/reference/preprocessed/<file>.png holds, for every fixture image, the 8-bit RGB
//! image that transformers' PIL CLIPImageProcessor has after `convert("RGB")`, the bicubic resize
//! and the centre crop (written by fixtures/scripts/make_references.py). Decoding + resize + crop
//! here must reproduce it pixel for pixel: one unit of difference moves embeddings by ~1e-3.

use std::path::{Path, PathBuf};

use vectorizer::image::{decode_rgb, resize_and_crop, ImageConfig, DEFAULT_MAX_IMAGE_PIXELS};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

fn image_config() -> ImageConfig {
    let text = std::fs::read_to_string(fixtures().join("model/preprocessor_config.json"))
        .expect("fixture preprocessor_config.json");
    ImageConfig::from_json(&serde_json::from_str(&text).expect("json")).expect("config")
}

fn fixture_images() -> Vec<String> {
    let mut out = Vec::new();
    for sub in ["images", "images/formats"] {
        let mut names: Vec<String> = std::fs::read_dir(fixtures().join(sub))
            .expect("fixture images")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| {
                [".png", ".jpg", ".gif", ".webp", ".bmp"]
                    .iter()
                    .any(|x| n.ends_with(x))
            })
            .collect();
        names.sort();
        out.extend(names.into_iter().map(|n| format!("{sub}/{n}")));
    }
    out
}

#[test]
fn resize_and_crop_match_pil_exactly() {
    let cfg = image_config();
    let mut failures = Vec::new();
    let mut checked = 0;
    for rel in fixture_images() {
        let bytes = std::fs::read(fixtures().join(&rel)).expect("image");
        let reference_name = format!(
            "{}.png",
            rel.replace('/', "__")
                .rsplit_once('.')
                .map_or(rel.as_str(), |x| x.0)
        );
        let reference_path = fixtures()
            .join("reference/preprocessed")
            .join(reference_name);
        let Ok(reference) = std::fs::read(&reference_path) else {
            failures.push(format!("{rel}: no reference {}", reference_path.display()));
            continue;
        };
        let reference = decode_rgb(&reference, DEFAULT_MAX_IMAGE_PIXELS).expect("reference png");
        let decoded = match decode_rgb(&bytes, DEFAULT_MAX_IMAGE_PIXELS) {
            Ok(d) => d,
            Err(e) => {
                failures.push(format!("{rel}: {e}"));
                continue;
            }
        };
        let ours = resize_and_crop(&decoded, &cfg);
        checked += 1;
        if (ours.width, ours.height) != (reference.width, reference.height) {
            failures.push(format!(
                "{rel}: size {}x{} vs reference {}x{}",
                ours.width, ours.height, reference.width, reference.height
            ));
            continue;
        }
        let diffs: Vec<i32> = ours
            .data
            .iter()
            .zip(&reference.data)
            .map(|(a, b)| (i32::from(*a) - i32::from(*b)).abs())
            .collect();
        let max = diffs.iter().copied().max().unwrap_or(0);
        let count = diffs.iter().filter(|d| **d > 0).count();
        if max > 0 {
            failures.push(format!(
                "{rel}: {count} of {} values differ, max {max}",
                diffs.len()
            ));
        }
    }
    assert!(checked >= 20, "only {checked} images checked");
    assert!(
        failures.is_empty(),
        "preprocessing differs from PIL:\n{}",
        failures.join("\n")
    );
}
