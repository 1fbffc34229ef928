//! Image bytes → 8-bit RGB pixels, as the container's `PIL.Image.open(...).convert("RGB")`.
//!
//! The container (spec §7.2, HF backend `_parse_image`) opens whatever PIL recognises and converts
//! every mode to RGB with `convert("RGB")`, which never composites transparency: alpha is dropped,
//! palette entries are looked up (a transparent index keeps its palette colour), grey is
//! replicated, 16-bit RGB keeps the most significant byte and 16-bit grey (`I;16`) is clipped at
//! 255. EXIF orientation is not applied (PIL does not without `exif_transpose`).
//!
//! JPEG goes to libjpeg-turbo (jpeg.rs), the decoder Pillow itself uses; the other formats to
//! the `image` crate, whose PNG/GIF/WebP/BMP pixels are already PIL's.
//!
//! The pixel limit is checked on the dimensions read from the header, before any pixel buffer
//! is allocated, and the decoder itself runs under an allocation limit: a small file that claims
//! to be 100,000 × 100,000 is refused without decoding (decompression bombs).

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, Limits};

use super::jpeg::decode_jpeg_rgb;
use crate::EmbedError;

/// An 8-bit RGB image, rows top to bottom, pixels interleaved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rgb8 {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

/// PIL's message for bytes it does not recognise. The container's text continues with the
/// repr of a BytesIO object, whose address is meaningless; only the stable part is kept.
const CANNOT_IDENTIFY: &str = "cannot identify image file";

fn decode_err(e: impl std::fmt::Display) -> EmbedError {
    EmbedError::ImageDecode(e.to_string())
}

/// Decodes `bytes` and converts to RGB, refusing images of more than `max_pixels` pixels.
pub fn decode_rgb(bytes: &[u8], max_pixels: u64) -> Result<Rgb8, EmbedError> {
    let format = image::guess_format(bytes)
        .map_err(|_| EmbedError::ImageDecode(CANNOT_IDENTIFY.to_string()))?;
    match format {
        // Pillow's own decoder (libjpeg-turbo), not the `image` crate's: see jpeg.rs.
        ImageFormat::Jpeg => return decode_jpeg_rgb(bytes, max_pixels),
        ImageFormat::Png | ImageFormat::Gif | ImageFormat::WebP | ImageFormat::Bmp => {}
        other => {
            return Err(EmbedError::ImageDecode(format!(
                "{CANNOT_IDENTIFY} (unsupported format {other:?})"
            )))
        }
    }
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), format);
    // Bound every allocation of the decoder: the output buffer plus generous working space.
    let mut limits = Limits::default();
    limits.max_alloc = Some(max_pixels.saturating_mul(8).saturating_add(64 << 20));
    reader.limits(limits.clone());
    let mut decoder = reader.into_decoder().map_err(decode_err)?;
    let (w, h) = decoder.dimensions();
    let pixels = u64::from(w) * u64::from(h);
    if pixels > max_pixels {
        return Err(EmbedError::ImageTooLarge(format!(
            "{w}x{h} = {pixels} pixels exceeds the limit of {max_pixels} pixels"
        )));
    }
    if w == 0 || h == 0 {
        return Err(EmbedError::ImageDecode(format!(
            "image has no pixels ({w}x{h})"
        )));
    }
    decoder.set_limits(limits).map_err(|e| match e {
        image::ImageError::Limits(l) => EmbedError::ImageTooLarge(l.to_string()),
        other => decode_err(other),
    })?;
    let img = DynamicImage::from_decoder(decoder).map_err(|e| match e {
        image::ImageError::Limits(l) => EmbedError::ImageTooLarge(l.to_string()),
        other => decode_err(other),
    })?;
    Ok(to_rgb_like_pil(img))
}

/// `convert("RGB")` of the mode PIL would have opened the file in.
fn to_rgb_like_pil(img: DynamicImage) -> Rgb8 {
    let width = img.width() as usize;
    let height = img.height() as usize;
    let n = width * height;
    let mut data = Vec::with_capacity(n * 3);
    match img {
        DynamicImage::ImageRgb8(b) => {
            return Rgb8 {
                width,
                height,
                data: b.into_raw(),
            }
        }
        DynamicImage::ImageRgba8(b) => {
            for p in b.as_raw().chunks_exact(4) {
                data.extend_from_slice(&p[..3]);
            }
        }
        DynamicImage::ImageLuma8(b) => {
            for &v in b.as_raw() {
                data.extend_from_slice(&[v, v, v]);
            }
        }
        DynamicImage::ImageLumaA8(b) => {
            for p in b.as_raw().chunks_exact(2) {
                data.extend_from_slice(&[p[0], p[0], p[0]]);
            }
        }
        // 16-bit grey opens as PIL "I;16", whose conversion to 8 bits clips (I16_L).
        DynamicImage::ImageLuma16(b) => {
            for &v in b.as_raw() {
                let v = v.min(255) as u8;
                data.extend_from_slice(&[v, v, v]);
            }
        }
        // 16-bit grey+alpha opens as RGBA via the "LA;16B" unpacker: most significant byte.
        DynamicImage::ImageLumaA16(b) => {
            for p in b.as_raw().chunks_exact(2) {
                let v = (p[0] >> 8) as u8;
                data.extend_from_slice(&[v, v, v]);
            }
        }
        // 16-bit RGB(A) opens as 8-bit RGB(A) via "RGB;16B": most significant byte.
        DynamicImage::ImageRgb16(b) => {
            data.extend(b.as_raw().iter().map(|&v| (v >> 8) as u8));
        }
        DynamicImage::ImageRgba16(b) => {
            for p in b.as_raw().chunks_exact(4) {
                data.extend(p[..3].iter().map(|&v| (v >> 8) as u8));
            }
        }
        other => {
            // Float images do not come out of the decoders enabled here; keep a sane fallback.
            return Rgb8 {
                width,
                height,
                data: other.to_rgb8().into_raw(),
            };
        }
    }
    Rgb8 {
        width,
        height,
        data,
    }
}
