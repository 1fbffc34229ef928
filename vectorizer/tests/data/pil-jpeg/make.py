"""Writes the JPEG decoding references for vectorizer/tests/parity.rs (jpeg_pixels_match_pil).

For every JPEG in this folder and in fixtures/images (recursively), <name>.png holds the 8-bit RGB
that the container computes: PIL.Image.open(BytesIO(data)).convert("RGB") (spec §7.2; Pillow
decodes JPEG with libjpeg-turbo). It also (re)creates the extra JPEGs here: encoder settings the
fixture images do not cover (chroma subsamplings, odd sizes that leave partial MCUs, progressive,
restart markers, optimised Huffman tables, grayscale/CMYK progressive, extreme qualities).

Run with the project's Python tooling (torch-free; Pillow + numpy): python make.py
"""

import io
import pathlib

import numpy as np
from PIL import Image, features

HERE = pathlib.Path(__file__).resolve().parent
FIXTURES = HERE.parents[3] / "fixtures" / "images"


def natural(w, h, seed):
    """Smooth colour fields plus noise and hard edges: every IDCT/upsampling rounding shows."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, 3))
    for c in range(3):
        fx, fy, ph = rng.uniform(0.02, 0.3, 2).tolist() + [rng.uniform(0, 6.3)]
        img[..., c] = 128 + 90 * np.sin(fx * x + ph) * np.cos(fy * y)
    img[(x // 7 + y // 5) % 3 == 0] *= 0.4
    img += rng.normal(0, 12, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def extras():
    cases = {
        "q75-420-17x13.jpg": (natural(17, 13, 1), dict(quality=75, subsampling="4:2:0")),
        "q90-422-37x29.jpg": (natural(37, 29, 2), dict(quality=90, subsampling="4:2:2")),
        "q95-444-33x31.jpg": (natural(33, 31, 3), dict(quality=95, subsampling="4:4:4")),
        "q100-420-64x48.jpg": (natural(64, 48, 4), dict(quality=100, subsampling="4:2:0")),
        "q5-420-97x61.jpg": (natural(97, 61, 5), dict(quality=5, subsampling="4:2:0")),
        "progressive-420-101x77.jpg": (
            natural(101, 77, 6),
            dict(quality=85, subsampling="4:2:0", progressive=True),
        ),
        "progressive-422-45x90.jpg": (
            natural(45, 90, 7),
            dict(quality=70, subsampling="4:2:2", progressive=True),
        ),
        "optimized-restart-420-130x40.jpg": (
            natural(130, 40, 8),
            dict(quality=80, subsampling="4:2:0", optimize=True, restart_marker_blocks=3),
        ),
        "gray-progressive-51x23.jpg": (
            natural(51, 23, 9).convert("L"),
            dict(quality=80, progressive=True),
        ),
        "cmyk-progressive-40x30.jpg": (
            natural(40, 30, 10).convert("CMYK"),
            dict(quality=85, progressive=True),
        ),
        "1x1-420.jpg": (natural(1, 1, 11), dict(quality=90, subsampling="4:2:0")),
        "2x500-420.jpg": (natural(2, 500, 12), dict(quality=90, subsampling="4:2:0")),
    }
    for name, (img, opts) in cases.items():
        img.save(HERE / name, "JPEG", **opts)


def reference(jpeg: pathlib.Path, name: str):
    with Image.open(io.BytesIO(jpeg.read_bytes())) as im:
        im.convert("RGB").save(HERE / name, "PNG")


def main():
    print("Pillow libjpeg-turbo", features.version("libjpeg_turbo"))
    extras()
    for jpeg in sorted(HERE.glob("*.jpg")):
        reference(jpeg, jpeg.stem + ".png")
    for jpeg in sorted(FIXTURES.rglob("*.jpg")):
        rel = jpeg.relative_to(FIXTURES.parent).with_suffix("")
        reference(jpeg, "__".join(rel.parts) + ".png")


if __name__ == "__main__":
    main()
