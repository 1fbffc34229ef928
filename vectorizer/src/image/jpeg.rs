//! JPEG → 8-bit RGB exactly as the container's Pillow does it (spec §7.2: `PIL.Image.open`,
//! `convert("RGB")`).
//!
//! Pillow decodes JPEG with libjpeg-turbo at its defaults: the accurate integer IDCT (islow),
//! fancy (triangle) chroma upsampling and libjpeg's fixed-point YCbCr → RGB. Any other decoder
//! differs from it by a unit or two on some pixels, which moves CLIP image vectors by up to
//! ~2e-3 (issue 2 allows 5e-4). So the decoder here is libjpeg-turbo's own (as vendored by
//! `mozjpeg-sys`, built from C source: its decoder is libjpeg-turbo's, and the C and SIMD paths
//! of libjpeg-turbo are bit-exact for these settings), driven by `jpeg_shim.c`, which turns
//! libjpeg's fatal errors into return values (its default `error_exit` calls `exit()`).
//!
//! Modes follow Pillow's `JpegImagePlugin`: 1 component → "L", 3 → "RGB", 4 → "CMYK" read with
//! rawmode "CMYK;I" (Pillow *always* assumes Adobe's inverted CMYK; libjpeg turns YCCK into
//! CMYK first), anything else is refused as Pillow refuses it. EXIF orientation is not applied.

use std::ffi::{c_char, c_int, c_long, CStr};

// The shim calls libjpeg directly; naming the crate makes rustc link its static library even
// though no Rust item of it is used.
extern crate mozjpeg_sys;

use super::decode::Rgb8;
use crate::EmbedError;

#[repr(C)]
struct CgJpeg {
    _opaque: [u8; 0],
}

extern "C" {
    fn cg_jpeg_new() -> *mut CgJpeg;
    fn cg_jpeg_free(h: *mut CgJpeg);
    fn cg_jpeg_message(h: *const CgJpeg) -> *const c_char;
    fn cg_jpeg_read_header(
        h: *mut CgJpeg,
        data: *const u8,
        len: usize,
        width: *mut u32,
        height: *mut u32,
        components: *mut c_int,
        precision: *mut c_int,
    ) -> c_int;
    fn cg_jpeg_decode(
        h: *mut CgJpeg,
        out: *mut u8,
        out_len: usize,
        out_components: c_int,
        max_memory: c_long,
    ) -> c_int;
}

/// One libjpeg decompressor over borrowed bytes; libjpeg's memory is released on drop.
struct Decompressor<'a> {
    handle: *mut CgJpeg,
    _data: std::marker::PhantomData<&'a [u8]>,
}

impl Drop for Decompressor<'_> {
    fn drop(&mut self) {
        // SAFETY: `handle` came from cg_jpeg_new and is freed exactly once, here.
        unsafe { cg_jpeg_free(self.handle) }
    }
}

impl Decompressor<'_> {
    fn error(&self) -> EmbedError {
        // SAFETY: the handle is live; the message is a NUL-terminated buffer inside it.
        let message = unsafe { CStr::from_ptr(cg_jpeg_message(self.handle)) };
        EmbedError::ImageDecode(message.to_string_lossy().into_owned())
    }
}

/// What the JPEG header says.
struct Header {
    width: u32,
    height: u32,
    components: c_int,
    precision: c_int,
}

fn open(bytes: &[u8]) -> Result<(Decompressor<'_>, Header), EmbedError> {
    // SAFETY: plain allocation; null is checked.
    let handle = unsafe { cg_jpeg_new() };
    if handle.is_null() {
        return Err(EmbedError::ImageDecode(
            "out of memory for the JPEG decoder".into(),
        ));
    }
    let d = Decompressor {
        handle,
        _data: std::marker::PhantomData,
    };
    let mut h = Header {
        width: 0,
        height: 0,
        components: 0,
        precision: 0,
    };
    // SAFETY: `bytes` outlives the decompressor (lifetime 'a); the out-pointers are valid.
    let rc = unsafe {
        cg_jpeg_read_header(
            d.handle,
            bytes.as_ptr(),
            bytes.len(),
            &mut h.width,
            &mut h.height,
            &mut h.components,
            &mut h.precision,
        )
    };
    if rc != 0 {
        return Err(d.error());
    }
    Ok((d, h))
}

/// Decodes a JPEG, refusing more than `max_pixels` pixels from the header alone (before any
/// pixel buffer exists), and converts it to RGB as Pillow's `convert("RGB")` does.
pub fn decode_jpeg_rgb(bytes: &[u8], max_pixels: u64) -> Result<Rgb8, EmbedError> {
    let (d, h) = open(bytes)?;
    let (w, ht) = (h.width, h.height);
    let pixels = u64::from(w) * u64::from(ht);
    if pixels > max_pixels {
        return Err(EmbedError::ImageTooLarge(format!(
            "{w}x{ht} = {pixels} pixels exceeds the limit of {max_pixels} pixels"
        )));
    }
    if w == 0 || ht == 0 {
        return Err(EmbedError::ImageDecode(format!(
            "image has no pixels ({w}x{ht})"
        )));
    }
    // JpegImagePlugin's SOF handler: the same refusals, the same texts.
    if h.precision != 8 {
        return Err(EmbedError::ImageDecode(format!(
            "cannot handle {}-bit layers",
            h.precision
        )));
    }
    let out_components: usize = match h.components {
        1 => 1,
        3 => 3,
        4 => 4,
        n => {
            return Err(EmbedError::ImageDecode(format!(
                "cannot handle {n}-layer images"
            )))
        }
    };
    let too_large = || EmbedError::ImageTooLarge(format!("{w}x{ht} does not fit in memory"));
    let len = usize::try_from(pixels)
        .ok()
        .and_then(|p| p.checked_mul(out_components))
        .ok_or_else(too_large)?;
    let mut out = Vec::new();
    out.try_reserve_exact(len).map_err(|_| too_large())?;
    out.resize(len, 0);
    // libjpeg's own working memory (a progressive image keeps every coefficient: 2 bytes per
    // sample) gets the same generous bound as the other decoders.
    let max_memory = c_long::try_from(max_pixels.saturating_mul(8).saturating_add(64 << 20))
        .unwrap_or(c_long::MAX);
    // SAFETY: `out` has exactly `len` writable bytes; the C side checks the decoder's output
    // size against `len` before writing a row.
    let rc = unsafe {
        cg_jpeg_decode(
            d.handle,
            out.as_mut_ptr(),
            len,
            out_components as c_int,
            max_memory,
        )
    };
    if rc != 0 {
        return Err(d.error());
    }
    drop(d);
    let data = match out_components {
        3 => out,
        1 => out.iter().flat_map(|&v| [v, v, v]).collect(),
        _ => out
            .chunks_exact(4)
            .flat_map(|p| inverted_cmyk_to_rgb([p[0], p[1], p[2], p[3]]))
            .collect(),
    };
    Ok(Rgb8 {
        width: w as usize,
        height: ht as usize,
        data,
    })
}

/// Pillow's `(a * b) / 255` rounded, as its `MULDIV255` macro computes it.
fn muldiv255(a: u8, b: u8) -> u8 {
    let t = u32::from(a) * u32::from(b) + 128;
    (((t >> 8) + t) >> 8) as u8
}

/// One pixel of libjpeg's CMYK output read with Pillow's "CMYK;I" unpacker (every byte
/// inverted) and converted by Pillow's `cmyk2rgb`: `255 - k' - c'·(255 - k')/255` per channel
/// (clipped), where c', k' are the inverted samples.
fn inverted_cmyk_to_rgb(p: [u8; 4]) -> [u8; 3] {
    let nk = p[3]; // 255 - (255 - k)
    let channel = |v: u8| nk.saturating_sub(muldiv255(255 - v, nk));
    [channel(p[0]), channel(p[1]), channel(p[2])]
}
