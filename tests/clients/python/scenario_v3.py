#!/usr/bin/env python3
"""Real-client scenario: the Python `weaviate-client` v3 API (3.x from PyPI) against clipgate.

The v3 API sends nearText / nearImage / hybrid as GraphQL and imports over REST
(`../../../shared/spec/clients.md`). Everything below is what a user of that client writes;
clipgate must make it behave as a Weaviate with the multi2vec-clip module would.

Usage: CLIPGATE_URL=http://127.0.0.1:8080 python scenario_v3.py   (exit 0 = all checks passed)

Expected rankings come from the bundled fixture model (shapes x colours) and were checked with
an independent ONNX Runtime computation; each assertion keeps a clear margin.
"""

from __future__ import annotations

import base64
import os
import sys
import uuid
import warnings

warnings.filterwarnings("ignore")  # the v3 API prints a deprecation banner

import weaviate  # noqa: E402

from checks import SHAPES, Checks  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
IMAGES = os.path.join(ROOT, "fixtures", "images")
CLASS = "ClientPyV3Shapes"

CHECKS = Checks("python-v3")
record = CHECKS.record


def shape_id(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"clipgate-client/{name}"))


NAME_OF = {shape_id(s): s for s in SHAPES}


def b64(name: str) -> str:
    with open(os.path.join(IMAGES, f"{name}.png"), "rb") as f:
        return base64.b64encode(f.read()).decode("ascii")


def names(result: dict) -> list[str]:
    if result.get("errors"):
        raise AssertionError(f"GraphQL errors: {result['errors']}")
    items = result["data"]["Get"][CLASS]
    return [NAME_OF.get(i["_additional"]["id"], i["_additional"]["id"]) for i in items]


def check(label: str, got: list[str], want_prefix: list[str]) -> None:
    ok = got[: len(want_prefix)] == want_prefix
    record(label, ok, got[: len(want_prefix) + 1], f"expected {want_prefix} first, got {got}")


def main() -> int:
    url = os.environ.get("CLIPGATE_URL", "http://127.0.0.1:8080")
    client = weaviate.Client(url, timeout_config=(5, 120))
    if not client.is_ready():
        print(f"clipgate at {url} is not ready", file=sys.stderr)
        return 1

    # Schema: created with the module's own vectorizer name, read back the same way.
    if client.schema.exists(CLASS):
        client.schema.delete_class(CLASS)
    client.schema.create_class(
        {
            "class": CLASS,
            "vectorizer": "multi2vec-clip",
            "moduleConfig": {"multi2vec-clip": {"imageFields": ["image"]}},
            "properties": [
                {"name": "label", "dataType": ["text"]},
                {"name": "image", "dataType": ["blob"]},
            ],
        }
    )
    try:
        stored = client.schema.get(CLASS)
        shown = stored.get("vectorizer")
        record("schema get shows the vectorizer", shown == "multi2vec-clip", shown, f"got {shown!r}")

        # Batch import of every fixture image (the client sends REST /v1/batch/objects).
        batch_errors: list[str] = []

        def on_result(results):
            for r in results or []:
                errs = (r.get("result") or {}).get("errors")
                if errs:
                    batch_errors.append(str(errs))

        client.batch.configure(batch_size=4, callback=on_result)
        with client.batch as batch:
            for s in SHAPES:
                batch.add_data_object(
                    data_object={"label": s.replace("-", " "), "image": b64(s)},
                    class_name=CLASS,
                    uuid=shape_id(s),
                )
        record("batch import", not batch_errors, len(SHAPES), f"errors: {batch_errors}")
        count = client.query.aggregate(CLASS).with_meta_count().do()
        n = count["data"]["Aggregate"][CLASS][0]["meta"]["count"]
        record("aggregate meta count", n == len(SHAPES), n, f"expected {len(SHAPES)}")

        def get():
            return client.query.get(CLASS, ["label"]).with_additional(["id", "distance"]).with_limit(10)

        check(
            "with_near_text 'a red circle'",
            names(get().with_near_text({"concepts": ["a red circle"]}).do()),
            ["red-circle", "blue-circle"],
        )
        check(
            "with_near_text 'a yellow star'",
            names(get().with_near_text({"concepts": ["a yellow star"]}).do()),
            ["yellow-star"],
        )
        res = get().with_near_image({"image": b64("red-circle")}, encode=False).do()
        check("with_near_image red-circle.png", names(res), ["red-circle", "blue-circle"])
        dist = res["data"]["Get"][CLASS][0]["_additional"]["distance"]
        record("same image has distance ~0", abs(dist) < 1e-4, dist, "expected ~0")
        check(
            "with_near_image green-triangle.png",
            names(get().with_near_image({"image": b64("green-triangle")}, encode=False).do()),
            ["green-triangle"],
        )
        check(
            "moveTo concepts (force 1) pulls 'a pink heart' to the purple cross",
            names(
                get()
                .with_near_text(
                    {"concepts": ["a pink heart"], "moveTo": {"concepts": ["a purple cross"], "force": 1.0}}
                )
                .do()
            ),
            ["purple-cross", "pink-heart"],
        )
        check(
            "moveTo an object (force 1) pulls 'a yellow star' to the blue circle",
            names(
                get()
                .with_near_text(
                    {
                        "concepts": ["a yellow star"],
                        "moveTo": {"objects": [{"id": shape_id("blue-circle")}], "force": 1.0},
                    }
                )
                .do()
            ),
            ["blue-circle", "pink-heart"],
        )
        check(
            "moveTo + moveAwayFrom",
            names(
                get()
                .with_near_text(
                    {
                        "concepts": ["a pink heart"],
                        "moveTo": {"concepts": ["a purple cross"], "force": 1.0},
                        "moveAwayFrom": {"concepts": ["a pink heart"], "force": 1.0},
                    }
                )
                .do()
            ),
            ["purple-cross", "red-square"],
        )
        check(
            "with_hybrid 'a yellow star' (alpha 0.75)",
            names(get().with_hybrid(query="a yellow star", alpha=0.75).do()),
            ["yellow-star"],
        )
        check(
            "with_hybrid 'a green triangle' (alpha 1)",
            names(get().with_hybrid(query="a green triangle", alpha=1.0).do()),
            ["green-triangle"],
        )
        # An error a Weaviate with the module gives, through the client. The v3 query builder
        # refuses certainty + distance itself, so the document goes through `query.raw`.
        res = client.query.raw(
            "{ Get { %s(nearText: {concepts: [\"a red circle\"], certainty: 0.5, distance: 0.5})"
            " { label } } }" % CLASS
        )
        msg = (res.get("errors") or [{}])[0].get("message")
        want = "explorer: get class: vectorize params: nearText cannot provide both distance and certainty"
        record("certainty+distance error", msg == want, repr(msg), f"expected {want!r}")
    finally:
        client.schema.delete_class(CLASS)

    return CHECKS.summary()


if __name__ == "__main__":
    sys.exit(main())
