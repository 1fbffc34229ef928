#!/usr/bin/env python3
"""Real-client scenario: the Python `weaviate-client` 4.x API against clipgate.

The v4 API queries (near_text, near_image, hybrid, aggregate) and imports (`insert_many`) over
gRPC `weaviate.v1.Weaviate`, checks gRPC health at connect, and creates collections over REST
(`../../../shared/spec/clients.md`). Everything below is what a user of that client writes; clipgate
must make it behave as a Weaviate with the multi2vec-clip module would.

Usage:
  CLIPGATE_URL=http://127.0.0.1:8080 CLIPGATE_GRPC=127.0.0.1:50051 python scenario_v4.py
  python scenario_v4.py --url http://127.0.0.1:8080 --grpc 127.0.0.1:50051 [--client-vectors]
Exit 0 = all checks passed; the last line is `python-v4 scenario: N passed, M failed`.

`--client-vectors` runs the same checks against a plain Weaviate (or the Weaviate double) without
the module: the collection is self-provided and every text/image query is sent as the vector the
module would compute (near_vector, hybrid with a vector), so the gRPC path can be debugged without
clipgate.

Expected orders are computed here, independently of clipgate, from the reference vectors in
`fixtures/reference/clip.json` (PyTorch/transformers outputs of the fixture model, L2-normalized as
the inference container returns them): object vector = mean(caption vector, image vector)
(spec §5.3), near_text = the concept vector with Weaviate's move arithmetic (§3.2), ranking by
cosine distance.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import sys
import urllib.request
import uuid
import warnings

warnings.filterwarnings("ignore")

import weaviate  # noqa: E402

from checks import SHAPES, Checks  # noqa: E402
import weaviate.classes as wvc  # noqa: E402
from weaviate.classes.config import (  # noqa: E402
    Configure,
    DataType,
    Property,
    Reconfigure,
    VectorDistances,
    Vectorizers,
)
from weaviate.collections.classes.config import _VectorIndexConfigHNSW  # noqa: E402
from weaviate.classes.query import MetadataQuery, Move  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
IMAGES = os.path.join(ROOT, "fixtures", "images")
REFERENCE = os.path.join(ROOT, "fixtures", "reference", "clip.json")
COLLECTION = "ClientPyV4Shapes"

CHECKS = Checks("python-v4")
record = CHECKS.record


def shape_id(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"clipgate-client-v4/{name}"))


NAME_OF = {shape_id(s): s for s in SHAPES}


def caption(name: str) -> str:
    colour, shape = name.split("-")
    article = "an" if colour[0] in "aeiou" else "a"
    return f"{article} {colour} {shape}"


def b64(name: str) -> str:
    with open(os.path.join(IMAGES, f"{name}.png"), "rb") as f:
        return base64.b64encode(f.read()).decode("ascii")


# ---------------------------------------------------------------- independent expectations

with open(REFERENCE, encoding="utf-8") as f:
    _REF = json.load(f)
TEXT_VEC = {t["text"]: t["vector"] for t in _REF["texts"]}
IMAGE_VEC = {os.path.basename(i["file"])[: -len(".png")]: i["vector"] for i in _REF["images"] if i["file"].startswith("images/") and "/formats/" not in i["file"]}


def mean(vectors: list[list[float]]) -> list[float]:
    return [sum(xs) / len(vectors) for xs in zip(*vectors)]


def move_to(s: list[float], t: list[float], force: float) -> list[float]:
    return [a * (1 - force * 0.5) + b * (force * 0.5) for a, b in zip(s, t)]


def move_away(s: list[float], t: list[float], force: float) -> list[float]:
    return [a + force * 0.5 * (a - b) for a, b in zip(s, t)]


def cosine_distance(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return 1.0 - dot / (na * nb)


OBJECT_VEC = {s: mean([TEXT_VEC[caption(s)], IMAGE_VEC[s]]) for s in SHAPES}


def ranking(query: list[float]) -> list[str]:
    return sorted(SHAPES, key=lambda s: cosine_distance(query, OBJECT_VEC[s]))


def distances(query: list[float]) -> list[float]:
    return sorted(cosine_distance(query, OBJECT_VEC[s]) for s in SHAPES)


# ---------------------------------------------------------------- checks


def names(response) -> list[str]:
    return [NAME_OF.get(str(o.uuid), str(o.uuid)) for o in response.objects]


def check_order(label: str, got: list[str], want: list[str], n: int = 3) -> None:
    ok = got[:n] == want[:n]
    record(label, ok, got[: n + 1], f"expected {want[:n]} first, got {got}")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default=os.environ.get("CLIPGATE_URL", "http://127.0.0.1:8080"))
    p.add_argument("--grpc", default=os.environ.get("CLIPGATE_GRPC", "127.0.0.1:50051"))
    p.add_argument(
        "--client-vectors",
        action="store_true",
        default=os.environ.get("SCENARIO_CLIENT_VECTORS") == "1",
        help="target has no multi2vec-clip: send the vectors the module would compute",
    )
    return p.parse_args()


def connect(url: str, grpc: str):
    http = url.split("://", 1)[-1].rstrip("/")
    http_host, _, http_port = http.rpartition(":")
    grpc_host, _, grpc_port = grpc.rpartition(":")
    return weaviate.connect_to_custom(
        http_host=http_host,
        http_port=int(http_port),
        http_secure=url.startswith("https://"),
        grpc_host=grpc_host,
        grpc_port=int(grpc_port),
        grpc_secure=False,
        skip_init_checks=False,  # REST meta + gRPC health, as users run it
    )


def main() -> int:
    args = parse_args()
    client_vectors = args.client_vectors
    client = connect(args.url, args.grpc)
    try:
        record("connect (init checks on)", client.is_ready(), True, "not ready")
        if client.collections.exists(COLLECTION):
            client.collections.delete(COLLECTION)
        properties = [
            Property(name="text", data_type=DataType.TEXT),
            Property(name="image", data_type=DataType.BLOB),
        ]
        if client_vectors:
            vector_config = Configure.Vectors.self_provided()
        else:
            vector_config = Configure.Vectors.multi2vec_clip(
                image_fields=["image"], text_fields=["text"]
            )
        shapes = client.collections.create(
            COLLECTION, properties=properties, vector_config=vector_config
        )
        try:
            run(args.url.rstrip("/"), client, shapes, client_vectors)
        finally:
            client.collections.delete(COLLECTION)
    finally:
        client.close()

    return CHECKS.summary()


def check_config(client, shapes, client_vectors: bool) -> None:
    """`collection.config.get()` parses the full class (every server default Weaviate fills in:
    invertedIndexConfig, replicationConfig, shardingConfig, the hnsw config) and reports the
    vectorizer as multi2vec-clip with its fields; `list_all(simple=False)` parses `GET /v1/schema`;
    `config.update()` round-trips the class through PUT."""
    want_vectorizer = Vectorizers.NONE if client_vectors else Vectorizers.MULTI2VEC_CLIP
    try:
        cfg = shapes.config.get()
    except Exception as e:  # noqa: BLE001 - a parse failure is the finding
        record("config.get()", False, repr(e), f"raised {e!r}")
        return
    named = (cfg.vector_config or {}).get("default")
    vectorizer = named.vectorizer.vectorizer if named else None
    record(
        "config.get() vectorizer",
        vectorizer == want_vectorizer,
        str(vectorizer),
        f"expected {want_vectorizer}",
    )
    if not client_vectors:
        model = dict(named.vectorizer.model) if named else {}
        fields = {"imageFields": model.get("imageFields"), "textFields": model.get("textFields")}
        want_fields = {"imageFields": ["image"], "textFields": ["text"]}
        record("config.get() clip fields", fields == want_fields, fields, f"expected {want_fields}")
    index = named.vector_index_config if named else None
    shown_index = (type(index).__name__, getattr(index, "distance_metric", None))
    record(
        "config.get() vector index",
        isinstance(index, _VectorIndexConfigHNSW)
        and index.distance_metric == VectorDistances.COSINE,
        shown_index,
        "expected an hnsw index with cosine distance",
    )
    props = [(p.name, p.data_type) for p in cfg.properties]
    want_props = [("text", DataType.TEXT), ("image", DataType.BLOB)]
    record("config.get() properties", props == want_props, props, f"expected {want_props}")
    shown_defaults = (
        cfg.inverted_index_config.bm25.b,
        cfg.inverted_index_config.bm25.k1,
        cfg.replication_config.factor,
        cfg.sharding_config.virtual_per_physical if cfg.sharding_config else None,
    )
    record(
        "config.get() server defaults",
        shown_defaults == (0.75, 1.2, 1, 128),
        shown_defaults,
        "expected bm25 b 0.75 k1 1.2, replication factor 1, 128 virtual shards",
    )
    try:
        listed = client.collections.list_all(simple=False).get(COLLECTION)
        got = (listed.vector_config or {})["default"].vectorizer.vectorizer if listed else None
    except Exception as e:  # noqa: BLE001
        got = repr(e)
    record("list_all(simple=False) vectorizer", got == want_vectorizer, str(got), f"expected {want_vectorizer}")
    try:
        shapes.config.update(inverted_index_config=Reconfigure.inverted_index(bm25_b=0.7))
        after = shapes.config.get()
        named_after = (after.vector_config or {}).get("default")
        got_update = (after.inverted_index_config.bm25.b, named_after.vectorizer.vectorizer)
    except Exception as e:  # noqa: BLE001
        got_update = repr(e)
    record(
        "config.update() bm25 b, vectorizer kept",
        got_update == (0.7, want_vectorizer),
        got_update,
        f"expected (0.7, {want_vectorizer})",
    )


def run(url: str, client, shapes, client_vectors: bool) -> None:
    # The schema as stored (plain REST).
    with urllib.request.urlopen(f"{url}/v1/schema/{COLLECTION}", timeout=30) as r:
        stored = json.load(r)
    shown = {
        name: list((cfg.get("vectorizer") or {}).keys())
        for name, cfg in (stored.get("vectorConfig") or {}).items()
    }
    want = {"default": ["none" if client_vectors else "multi2vec-clip"]}
    record("schema reads back the vectorizer", shown == want, shown, f"expected {want}")
    check_config(client, shapes, client_vectors)

    # Import every fixture image with its caption (gRPC BatchObjects).
    objects = [
        wvc.data.DataObject(
            properties={"text": caption(s), "image": b64(s)},
            uuid=shape_id(s),
            vector={"default": OBJECT_VEC[s]} if client_vectors else None,
        )
        for s in SHAPES
    ]
    res = shapes.data.insert_many(objects)
    record("insert_many", not res.has_errors, len(res.uuids), f"errors: {res.errors}")
    total = shapes.aggregate.over_all(total_count=True).total_count
    record("aggregate over_all total_count", total == len(SHAPES), total, f"expected {len(SHAPES)}")

    meta = MetadataQuery(distance=True)

    def near_text(concepts, move_to_=None, move_away_=None, query_vector=None):
        if client_vectors:
            return shapes.query.near_vector(query_vector, limit=10, return_metadata=meta)
        return shapes.query.near_text(
            concepts, move_to=move_to_, move_away=move_away_, limit=10, return_metadata=meta
        )

    for text in ["a red circle", "a yellow star", "a blue square"]:
        q = TEXT_VEC[text]
        check_order(f"near_text {text!r}", names(near_text(text, query_vector=q)), ranking(q))

    # moveTo concepts, moveTo an object (uuids), moveTo + moveAway (spec §3.2 arithmetic).
    q = move_to(TEXT_VEC["a pink heart"], TEXT_VEC["a purple cross"], 1.0)
    got = names(
        near_text("a pink heart", Move(force=1.0, concepts="a purple cross"), query_vector=q)
    )
    check_order("near_text move_to concepts", got, ranking(q))
    q = move_to(TEXT_VEC["a yellow star"], OBJECT_VEC["blue-circle"], 1.0)
    got = names(
        near_text(
            "a yellow star", Move(force=1.0, objects=shape_id("blue-circle")), query_vector=q
        )
    )
    check_order("near_text move_to an object", got, ranking(q))
    q = move_away(
        move_to(TEXT_VEC["a pink heart"], TEXT_VEC["a purple cross"], 1.0),
        TEXT_VEC["a pink heart"],
        1.0,
    )
    got = names(
        near_text(
            "a pink heart",
            Move(force=1.0, concepts="a purple cross"),
            Move(force=1.0, concepts="a pink heart"),
            query_vector=q,
        )
    )
    check_order("near_text move_to + move_away", got, ranking(q))

    # near_image: the image's own object comes first.
    for s in ["red-circle", "green-triangle"]:
        q = IMAGE_VEC[s]
        if client_vectors:
            r = shapes.query.near_vector(q, limit=10, return_metadata=meta)
        else:
            r = shapes.query.near_image(b64(s), limit=10, return_metadata=meta)
        check_order(f"near_image {s}.png", names(r), ranking(q))
        d = r.objects[0].metadata.distance if r.objects else None
        want_d = distances(q)[0]
        record(
            f"near_image {s}.png distance",
            d is not None and abs(d - want_d) < 1e-4,
            d,
            f"expected {want_d:.6f}",
        )

    # hybrid: alpha 1 is the vector part alone (same order as near_text); alpha 0.75 with the
    # caption words as keywords keeps the matching object first.
    for text, alpha, n in [("a green triangle", 1.0, 3), ("a yellow star", 0.75, 1)]:
        q = TEXT_VEC[text]
        r = shapes.query.hybrid(
            text, alpha=alpha, vector=q if client_vectors else None, limit=10
        )
        check_order(f"hybrid {text!r} alpha {alpha}", names(r), ranking(q), n)

    # aggregate over near_text: the threshold sits half-way between the 3rd and 4th distance.
    q = TEXT_VEC["a red circle"]
    ds = distances(q)
    threshold = (ds[2] + ds[3]) / 2
    if client_vectors:
        agg = shapes.aggregate.near_vector(q, distance=threshold, total_count=True)
    else:
        agg = shapes.aggregate.near_text("a red circle", distance=threshold, total_count=True)
    record(
        f"aggregate near_text distance {threshold:.4f}",
        agg.total_count == 3,
        agg.total_count,
        "expected 3",
    )
    if client_vectors:
        agg = shapes.aggregate.near_vector(q, object_limit=4, total_count=True)
    else:
        agg = shapes.aggregate.near_text("a red circle", object_limit=4, total_count=True)
    record("aggregate near_text object_limit 4", agg.total_count == 4, agg.total_count, "expected 4")

    # Properties come back typed; the blob is not returned unless asked for.
    r = shapes.query.fetch_object_by_id(shape_id("red-circle"))
    props = r.properties if r else None
    record(
        "fetch_object_by_id properties",
        props == {"text": "a red circle"},
        props,
        "expected only the caption (blobs are not returned by default)",
    )


if __name__ == "__main__":
    sys.exit(main())
