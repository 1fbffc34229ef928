"""Reference timings for vectorizer/benches/clip.rs: onnxruntime and PyTorch on the same inputs.

Spawned by the Rust bench (never by tests or CI). Usage:
    python reference.py --model DIR --inputs inputs.json --iters N --out result.json
    python reference.py --model DIR --inputs inputs.json --serve
The second form is what the bench uses: after loading it prints "ready", then for each stdin line
"RUNTIME CASE_INDEX" it runs that case once and prints the elapsed ms, so that the bench can
interleave clipgate, onnxruntime and PyTorch iteration by iteration (the machine is shared and
its load drifts: timing the runtimes one after the other would compare different loads).

inputs.json: {"cases": [{"name", "texts": [...], "images": [base64...]}]}. Each case is timed
end to end like the container does it: tokenization (the model's tokenizer.json, padding=True,
truncation to 77) or b64decode + PIL open + convert("RGB") + CLIPImageProcessor (slow PIL
backend), then the model. onnxruntime: CPU provider, default session options. PyTorch: a
CLIPModel built from the model's config.json (random weights: speed does not depend on them).
Writes {"onnxruntime": {case: median_ms}, "pytorch": {case: median_ms}}.
"""
import argparse
import base64
import io
import json
import os
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort
import torch
from PIL import Image
from transformers import CLIPConfig, CLIPModel, PreTrainedTokenizerFast
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil


def find(model_dir, name):
    for p in (os.path.join(model_dir, "onnx", name), os.path.join(model_dir, name)):
        if os.path.exists(p):
            return p
    raise FileNotFoundError(name)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--inputs", required=True)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--out")
    ap.add_argument("--serve", action="store_true")
    args = ap.parse_args()

    cases = json.load(open(args.inputs))["cases"]
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(args.model, "tokenizer.json"))
    tok.pad_token = "<|endoftext|>"
    pre_cfg = json.load(open(os.path.join(args.model, "preprocessor_config.json")))
    kw = {k: v for k, v in pre_cfg.items() if k not in ("image_processor_type", "processor_class")}
    proc = CLIPImageProcessorPil(**kw)
    max_len = 77

    def parse(b64):
        im = Image.open(io.BytesIO(base64.b64decode(b64)))
        return im if im.mode == "RGB" else im.convert("RGB")

    text_sess = ort.InferenceSession(find(args.model, "text_model.onnx"), providers=["CPUExecutionProvider"])
    vis_sess = ort.InferenceSession(find(args.model, "vision_model.onnx"), providers=["CPUExecutionProvider"])

    def ort_case(case):
        out = []
        if case["texts"]:
            t = tok(case["texts"], padding=True, truncation=True, max_length=max_len, return_tensors="np")
            out.append(text_sess.run(["text_embeds"], {"input_ids": t["input_ids"].astype(np.int64),
                                                       "attention_mask": t["attention_mask"].astype(np.int64)})[0])
        if case["images"]:
            px = proc([parse(b) for b in case["images"]], return_tensors="np")["pixel_values"].astype(np.float32)
            out.append(vis_sess.run(["image_embeds"], {"pixel_values": px})[0])
        return out

    cfg = CLIPConfig.from_pretrained(args.model)
    torch.manual_seed(0)
    model = CLIPModel(cfg).eval()

    @torch.inference_mode()
    def torch_case(case):
        out = []
        if case["texts"]:
            t = tok(case["texts"], padding=True, truncation=True, max_length=max_len, return_tensors="pt")
            out.append(model.get_text_features(input_ids=t["input_ids"], attention_mask=t["attention_mask"]))
        if case["images"]:
            px = proc([parse(b) for b in case["images"]], return_tensors="pt")["pixel_values"]
            out.append(model.get_image_features(pixel_values=px))
        return out

    if args.serve:
        fns = {"onnxruntime": ort_case, "pytorch": torch_case}
        print("ready", flush=True)
        for line in sys.stdin:
            runtime, ix = line.split()
            t0 = time.perf_counter()
            fns[runtime](cases[int(ix)])
            print(f"{(time.perf_counter() - t0) * 1000.0:.4f}", flush=True)
        return

    result = {"onnxruntime": {}, "pytorch": {}}
    for runtime, fn in (("onnxruntime", ort_case), ("pytorch", torch_case)):
        for case in cases:
            fn(case)  # warm-up
            times = []
            for _ in range(args.iters):
                t0 = time.perf_counter()
                fn(case)
                times.append((time.perf_counter() - t0) * 1000.0)
            result[runtime][case["name"]] = statistics.median(times)
    json.dump(result, open(args.out, "w"))


if __name__ == "__main__":
    main()
