//! CLIP image preprocessing: base64 → bytes → RGB → resize → crop → rescale → normalize.
//!
//! Reproduces the container's HF backend (spec §7.2): `base64.b64decode`, `PIL.Image.open`,
//! `convert("RGB")`, then transformers' PIL `CLIPImageProcessor` configured by
//! preprocessor_config.json (resize of the shortest edge with PIL bicubic, center crop, rescale by
//! 1/255 in f64 then cast to f32, normalize in f32).

pub mod base64;
pub mod decode;
mod jpeg;
pub mod resize;

use serde_json::Value;

use crate::EmbedError;
pub use decode::{decode_rgb, Rgb8};
pub use resize::{resize_rgb8, Filter};

/// Default pixel limit: 50 megapixels (issue 2: "default 50 megapixels").
pub const DEFAULT_MAX_IMAGE_PIXELS: u64 = 50_000_000;

/// How images are resized before the center crop.
#[derive(Debug, Clone, PartialEq)]
pub enum ResizeTo {
    /// `size: {"shortest_edge": n}` (or a bare integer): shortest edge to `n`, aspect kept.
    ShortestEdge(usize),
    /// `size: {"height": h, "width": w}`: exact size.
    Exact { height: usize, width: usize },
}

/// The settings of preprocessor_config.json that change pixel values.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageConfig {
    pub do_resize: bool,
    pub size: ResizeTo,
    pub resample: Filter,
    pub do_center_crop: bool,
    pub crop_height: usize,
    pub crop_width: usize,
    pub do_rescale: bool,
    pub rescale_factor: f64,
    pub do_normalize: bool,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Default for ImageConfig {
    /// transformers' `CLIPImageProcessor` class defaults (OpenAI CLIP mean/std, 224).
    fn default() -> Self {
        ImageConfig {
            do_resize: true,
            size: ResizeTo::ShortestEdge(224),
            resample: Filter::Bicubic,
            do_center_crop: true,
            crop_height: 224,
            crop_width: 224,
            do_rescale: true,
            rescale_factor: 1.0 / 255.0,
            do_normalize: true,
            mean: [0.481_454_66, 0.457_827_5, 0.408_210_73],
            std: [0.268_629_55, 0.261_302_6, 0.275_777_1],
        }
    }
}

fn as_usize(v: &Value) -> Option<usize> {
    v.as_u64().and_then(|n| usize::try_from(n).ok())
}

impl ImageConfig {
    /// Parses preprocessor_config.json; missing keys take the CLIPImageProcessor defaults.
    pub fn from_json(v: &Value) -> Result<ImageConfig, String> {
        let mut c = ImageConfig::default();
        let obj = v.as_object().ok_or("not a JSON object")?;
        let flag = |k: &str, d: bool| obj.get(k).and_then(Value::as_bool).unwrap_or(d);
        c.do_resize = flag("do_resize", c.do_resize);
        c.do_center_crop = flag("do_center_crop", c.do_center_crop);
        c.do_rescale = flag("do_rescale", c.do_rescale);
        c.do_normalize = flag("do_normalize", c.do_normalize);
        if let Some(s) = obj.get("size") {
            c.size = if let Some(n) = as_usize(s) {
                ResizeTo::ShortestEdge(n)
            } else if let Some(n) = s.get("shortest_edge").and_then(as_usize) {
                ResizeTo::ShortestEdge(n)
            } else if let (Some(h), Some(w)) = (
                s.get("height").and_then(as_usize),
                s.get("width").and_then(as_usize),
            ) {
                ResizeTo::Exact {
                    height: h,
                    width: w,
                }
            } else {
                return Err(format!("unsupported \"size\": {s}"));
            };
        }
        if let Some(r) = obj.get("resample") {
            let code = r
                .as_i64()
                .ok_or_else(|| format!("\"resample\" is not an integer: {r}"))?;
            c.resample = Filter::from_pil(code)
                .ok_or_else(|| format!("unsupported \"resample\": {code}"))?;
        }
        if let Some(s) = obj.get("crop_size") {
            if let Some(n) = as_usize(s) {
                c.crop_height = n;
                c.crop_width = n;
            } else if let (Some(h), Some(w)) = (
                s.get("height").and_then(as_usize),
                s.get("width").and_then(as_usize),
            ) {
                c.crop_height = h;
                c.crop_width = w;
            } else {
                return Err(format!("unsupported \"crop_size\": {s}"));
            }
        }
        if let Some(f) = obj.get("rescale_factor") {
            c.rescale_factor = f
                .as_f64()
                .ok_or_else(|| format!("\"rescale_factor\" is not a number: {f}"))?;
        }
        let triple = |k: &str, d: [f32; 3]| -> Result<[f32; 3], String> {
            match obj.get(k) {
                None => Ok(d),
                Some(Value::Number(n)) => {
                    let x = n.as_f64().unwrap_or(0.0) as f32;
                    Ok([x, x, x])
                }
                Some(Value::Array(a)) if a.len() == 3 => {
                    let mut out = [0f32; 3];
                    for (o, x) in out.iter_mut().zip(a) {
                        *o = x
                            .as_f64()
                            .ok_or_else(|| format!("\"{k}\" is not numeric"))?
                            as f32;
                    }
                    Ok(out)
                }
                Some(other) => Err(format!("\"{k}\" must be 3 numbers: {other}")),
            }
        };
        c.mean = triple("image_mean", c.mean)?;
        c.std = triple("image_std", c.std)?;
        Ok(c)
    }

    /// Height and width of the tensor this configuration produces.
    pub fn output_size(&self) -> Option<(usize, usize)> {
        if self.do_center_crop {
            Some((self.crop_height, self.crop_width))
        } else if let (true, ResizeTo::Exact { height, width }) = (self.do_resize, &self.size) {
            Some((*height, *width))
        } else {
            None
        }
    }
}

/// transformers' `get_resize_output_image_size(default_to_square=False)`: the short side becomes
/// `size`, the long side `int(size * long / short)` (float division, then truncation).
pub fn shortest_edge_size(width: usize, height: usize, size: usize) -> (usize, usize) {
    let (short, long) = if width <= height {
        (width, height)
    } else {
        (height, width)
    };
    let new_long = (size as f64 * long as f64 / short as f64) as usize;
    if width <= height {
        (size, new_long)
    } else {
        (new_long, size)
    }
}

/// transformers' numpy `center_crop`, including its zero padding of images smaller than the
/// crop (offsets `(orig - crop) // 2` with Python floor division, padding `ceil(diff / 2)`).
pub fn center_crop(img: &Rgb8, crop_h: usize, crop_w: usize) -> Rgb8 {
    let (h, w) = (img.height as i64, img.width as i64);
    let (ch, cw) = (crop_h as i64, crop_w as i64);
    let top = (h - ch).div_euclid(2);
    let left = (w - cw).div_euclid(2);
    let mut data = vec![0u8; crop_h * crop_w * 3];
    for y in 0..ch {
        let sy = top + y;
        if sy < 0 || sy >= h {
            continue;
        }
        for x in 0..cw {
            let sx = left + x;
            if sx < 0 || sx >= w {
                continue;
            }
            let s = ((sy * w + sx) * 3) as usize;
            let d = ((y * cw + x) * 3) as usize;
            data[d..d + 3].copy_from_slice(&img.data[s..s + 3]);
        }
    }
    Rgb8 {
        width: crop_w,
        height: crop_h,
        data,
    }
}

/// Resize + center crop of a decoded RGB image, still 8-bit: what transformers' processor holds
/// before `rescale` (fixtures/reference/preprocessed/ stores exactly this for the fixtures).
pub fn resize_and_crop<'a>(img: &'a Rgb8, cfg: &ImageConfig) -> std::borrow::Cow<'a, Rgb8> {
    let mut img = std::borrow::Cow::Borrowed(img);
    if cfg.do_resize {
        let (w, h) = match cfg.size {
            ResizeTo::ShortestEdge(s) => shortest_edge_size(img.width, img.height, s),
            ResizeTo::Exact { height, width } => (width, height),
        };
        if (w, h) != (img.width, img.height) {
            let data = resize_rgb8(&img.data, img.width, img.height, w, h, cfg.resample);
            img = std::borrow::Cow::Owned(Rgb8 {
                width: w,
                height: h,
                data,
            });
        }
    }
    if cfg.do_center_crop && (img.height, img.width) != (cfg.crop_height, cfg.crop_width) {
        img = std::borrow::Cow::Owned(center_crop(&img, cfg.crop_height, cfg.crop_width));
    }
    img
}

/// Resize + crop + rescale + normalize of a decoded RGB image into a CHW f32 tensor.
pub fn to_pixel_values(img: &Rgb8, cfg: &ImageConfig) -> Vec<f32> {
    let img = resize_and_crop(img, cfg);
    let plane = img.width * img.height;
    let mut out = vec![0f32; plane * 3];
    for c in 0..3 {
        let (mean, std) = (cfg.mean[c], cfg.std[c]);
        let channel = img.data.iter().skip(c).step_by(3);
        for (o, p) in out[c * plane..(c + 1) * plane].iter_mut().zip(channel) {
            // transformers: `image.astype(np.float64) * scale` then `.astype(np.float32)`,
            // then `(image - mean) / std` with float32 mean/std.
            let mut v = if cfg.do_rescale {
                (f64::from(*p) * cfg.rescale_factor) as f32
            } else {
                f32::from(*p)
            };
            if cfg.do_normalize {
                v = (v - mean) / std;
            }
            *o = v;
        }
    }
    out
}

/// The whole path for one request image: base64 string → CHW tensor.
pub fn preprocess_base64(
    b64: &str,
    cfg: &ImageConfig,
    max_pixels: u64,
) -> Result<Vec<f32>, EmbedError> {
    let bytes = base64::decode_python(b64)?;
    let img = decode_rgb(&bytes, max_pixels)?;
    Ok(to_pixel_values(&img, cfg))
}
