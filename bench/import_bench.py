#!/usr/bin/env python3
"""Batch-import load for bench/import.sh (issue 5). Standard library only (CI-free, no venv).

Against a running clipgate (embedded double) at --url: creates a text class and an image class
(multi2vec-clip), then times `POST /v1/batch/objects` of N unique text objects (batches of
--text-batch) and M image objects (batches of --image-batch; each image is a fixture PNG with a few
random pixels changed and re-encoded, so the embedding cache never hits). Every object's
`result.status` must be SUCCESS (else exit 1). Prints one tab-separated line per kind:
kind, objects, seconds, objects/s.
"""

from __future__ import annotations

import argparse
import base64
import glob
import json
import os
import random
import struct
import sys
import threading
import time
import urllib.request
import uuid
import zlib

TEXT_CLASS = {
    "class": "BenchText",
    "vectorizer": "multi2vec-clip",
    "moduleConfig": {"multi2vec-clip": {"textFields": ["title"]}},
    "properties": [{"name": "title", "dataType": ["text"]}],
}
IMAGE_CLASS = {
    "class": "BenchImage",
    "vectorizer": "multi2vec-clip",
    "moduleConfig": {"multi2vec-clip": {"imageFields": ["image"]}},
    "properties": [{"name": "name", "dataType": ["text"]}, {"name": "image", "dataType": ["blob"]}],
}
WORDS = ("red green blue yellow purple orange pink brown black white small large bright dark "
         "circle square triangle star heart cross hexagon diamond photo drawing sketch of a the "
         "on with near above below shape picture").split()


def post(url: str, body: object, timeout: float = 600.0) -> tuple[int, object]:
    data = json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


# ---- PNG: decode (8-bit RGB/RGBA, non-interlaced) and re-encode with filter 0 ----
def png_decode(data: bytes) -> tuple[int, int, int, bytearray]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, w = 8, b"", 0
    h = ch = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        chunk = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
            assert depth == 8 and ctype in (2, 6) and interlace == 0, "unsupported PNG"
            ch = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
    raw = zlib.decompress(idat)
    stride = w * ch
    out = bytearray(h * stride)
    prev = bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - ch] if i >= ch else 0
            b = prev[i]
            c = prev[i - ch] if i >= ch else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + ((a + b) >> 1)) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 255
        out[y * stride:(y + 1) * stride] = line
        prev = line
    return w, h, ch, out


def png_encode(w: int, h: int, ch: int, pixels: bytes) -> bytes:
    stride = w * ch
    raw = b"".join(b"\x00" + pixels[y * stride:(y + 1) * stride] for y in range(h))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    ctype = 2 if ch == 3 else 6
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, ctype, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def varied_images(fixtures: str, count: int, rng: random.Random) -> list[str]:
    bases = [png_decode(open(p, "rb").read()) for p in sorted(glob.glob(os.path.join(fixtures, "*.png")))]
    if not bases:
        sys.exit(f"no PNGs under {fixtures}")
    out, seen = [], set()
    while len(out) < count:
        w, h, ch, px = bases[len(out) % len(bases)]
        px = bytearray(px)
        for _ in range(8):  # a few random pixels
            i = (rng.randrange(h) * w + rng.randrange(w)) * ch
            px[i:i + 3] = bytes(rng.randrange(256) for _ in range(3))
        png = png_encode(w, h, ch, bytes(px))
        if png in seen:
            continue
        seen.add(png)
        out.append(base64.b64encode(png).decode())
    return out


def run_batches(url: str, batches: list[list[dict]], workers: int) -> tuple[float, list[str]]:
    """Sends the batches with `workers` concurrent connections; returns (seconds, failures)."""
    failures: list[str] = []
    lock = threading.Lock()
    queue = list(reversed(batches))

    def worker() -> None:
        while True:
            with lock:
                if not queue:
                    return
                batch = queue.pop()
            status, body = post(f"{url}/v1/batch/objects", {"objects": batch})
            problems = []
            if status != 200 or not isinstance(body, list) or len(body) != len(batch):
                problems.append(f"HTTP {status}: {str(body)[:300]}")
            else:
                for item in body:
                    result = item.get("result") or {}
                    if result.get("status") != "SUCCESS" or result.get("errors"):
                        problems.append(json.dumps(result)[:300])
            if problems:
                with lock:
                    failures.extend(problems)

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, failures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--url", required=True)
    ap.add_argument("--fixtures", default="fixtures/images")
    ap.add_argument("--texts", type=int, default=1000)
    ap.add_argument("--text-batch", type=int, default=100)
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--image-batch", type=int, default=20)
    ap.add_argument("--workers", type=int, default=2, help="concurrent batch requests")
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    rng = random.Random(args.seed if args.seed is not None else time.time_ns())

    for cls in (TEXT_CLASS, IMAGE_CLASS):
        status, body = post(f"{args.url}/v1/schema", cls)
        if status != 200:
            sys.exit(f"creating {cls['class']}: HTTP {status}: {body}")

    tag = uuid.uuid4().hex[:8]  # unique per run: no cache hits even against a warm clipgate
    texts = [f"{' '.join(rng.choice(WORDS) for _ in range(6))} {tag} {i}" for i in range(args.texts)]
    text_objs = [{"class": "BenchText", "id": str(uuid.uuid4()), "properties": {"title": t}} for t in texts]
    images = varied_images(args.fixtures, args.images, rng)
    image_objs = [{"class": "BenchImage", "id": str(uuid.uuid4()),
                   "properties": {"name": f"img-{i}", "image": img}} for i, img in enumerate(images)]

    ok = True
    for kind, objs, size in (("text", text_objs, args.text_batch), ("image", image_objs, args.image_batch)):
        batches = [objs[i:i + size] for i in range(0, len(objs), size)]
        seconds, failures = run_batches(args.url, batches, args.workers)
        if failures:
            ok = False
            print(f"{kind}: {len(failures)} failures, first: {failures[0]}", file=sys.stderr)
        print(f"{kind}\t{len(objs)}\t{seconds:.2f}\t{len(objs) / seconds:.1f}\t{'ok' if not failures else 'FAILED'}",
              flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
