#!/usr/bin/env python3
"""Headless-Chromium test of clipgate's /dashboard (issue 7, "Observability").

Starts clipgate (embedded Weaviate double, bundled fixture model, free loopback port), loads
/dashboard in headless Chromium driven over the DevTools protocol (a minimal WebSocket client,
Python standard library only), sends traffic while the page is live, then checks that the numbers
the page shows (each element's `data-value`) match /metrics: exactly for the counters and gauges
the traffic moved (nothing moves them once the traffic stops), within the two surrounding scrapes
for the request counter (the page's own polling moves it). Also checks that the charts were drawn
and that the page logged no errors (a CSP violation from an external resource would be one), and
writes a screenshot to artifacts/dashboard.png.

The last line is `dashboard: N passed, M failed` (scripts/test.sh sums such lines); exit code 0
only if everything passed.
"""

import argparse
import base64
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

# ---- a minimal WebSocket client (RFC 6455), enough for the DevTools protocol ------------------


class WebSocket:
    def __init__(self, url, timeout=60):
        parsed = urllib.parse.urlparse(url)
        self.sock = socket.create_connection((parsed.hostname, parsed.port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        path = parsed.path + (("?" + parsed.query) if parsed.query else "")
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {parsed.hostname}:{parsed.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("DevTools closed the connection during the handshake")
            buffer += chunk
        head, self.pending = buffer.split(b"\r\n\r\n", 1)
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status + b" ":
            raise ConnectionError(f"WebSocket handshake refused: {head.decode(errors='replace')}")

    def _exact(self, n):
        while len(self.pending) < n:
            chunk = self.sock.recv(max(65536, n - len(self.pending)))
            if not chunk:
                raise ConnectionError("DevTools closed the connection")
            self.pending += chunk
        out, self.pending = self.pending[:n], self.pending[n:]
        return out

    def _send_frame(self, opcode, payload):
        header = bytearray([0x80 | opcode])
        n = len(payload)
        if n < 126:
            header.append(0x80 | n)
        elif n < 65536:
            header.append(0x80 | 126)
            header += struct.pack(">H", n)
        else:
            header.append(0x80 | 127)
            header += struct.pack(">Q", n)
        mask = os.urandom(4)
        header += mask
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(bytes(header) + masked)

    def send(self, text):
        self._send_frame(0x1, text.encode())

    def recv(self):
        message = b""
        while True:
            b0, b1 = self._exact(2)
            opcode = b0 & 0x0F
            n = b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack(">H", self._exact(2))
            elif n == 127:
                (n,) = struct.unpack(">Q", self._exact(8))
            mask = self._exact(4) if b1 & 0x80 else None
            data = self._exact(n)
            if mask:
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
            if opcode == 0x8:
                raise ConnectionError("DevTools closed the WebSocket")
            if opcode == 0x9:
                self._send_frame(0xA, data)
                continue
            if opcode == 0xA:
                continue
            message += data
            if b0 & 0x80:
                return message.decode()

    def close(self):
        try:
            self._send_frame(0x8, b"")
        except OSError:
            pass
        self.sock.close()


class DevTools:
    """Commands over one page's DevTools WebSocket; events are kept in `self.events`."""

    def __init__(self, url):
        self.ws = WebSocket(url)
        self.next_id = 0
        self.events = []

    def call(self, method, **params):
        self.next_id += 1
        wanted = self.next_id
        self.ws.send(json.dumps({"id": wanted, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == wanted:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def evaluate(self, expression):
        result = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")


# ---- Prometheus text, parsed as the page parses it ------------------------------------------

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_value(text):
    if text == "+Inf":
        return float("inf")
    if text == "-Inf":
        return float("-inf")
    return float(text)


def parse_metrics(text):
    samples = []
    for raw in text.split("\n"):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            continue
        labels = dict(LABEL.findall(m.group(2) or ""))
        samples.append((m.group(1), labels, parse_value(m.group(3))))
    return samples


def total(samples, name, keep=None):
    out = 0.0
    for n, labels, value in samples:
        if n == name and (keep is None or keep(labels)):
            out += value
    return out


def buckets(samples, name):
    by_le = {}
    for n, labels, value in samples:
        if n == name + "_bucket" and "le" in labels:
            le = parse_value(labels["le"])
            by_le[le] = by_le.get(le, 0.0) + value
    return sorted(by_le.items())


def quantile(q, cumulative):
    """PromQL's histogram_quantile, step for step as dashboard.js computes it."""
    if not cumulative:
        return None
    count_all = cumulative[-1][1]
    if not count_all > 0:
        return None
    rank = q * count_all
    prev_le, prev_count = 0.0, 0.0
    for le, count in cumulative:
        if count >= rank:
            if le == float("inf"):
                return prev_le
            if count == prev_count:
                return le
            return prev_le + ((le - prev_le) * (rank - prev_count)) / (count - prev_count)
        prev_le, prev_count = le, count
    return prev_le


def expected(samples):
    hits = total(samples, "clipgate_cache_hits_total")
    misses = total(samples, "clipgate_cache_misses_total")
    latency = buckets(samples, "clipgate_inference_duration_seconds")
    return {
        "hit-ratio": hits / (hits + misses) if hits + misses > 0 else None,
        "cache-hits": hits,
        "cache-misses": misses,
        "rewrite-cache-hits": total(samples, "clipgate_graphql_rewrite_cache_hits_total"),
        "cache-entries": total(samples, "clipgate_cache_entries"),
        "cache-bytes": total(samples, "clipgate_cache_bytes"),
        "cache-evictions": total(samples, "clipgate_cache_evictions_total"),
        "inference-p50": quantile(0.5, latency),
        "inference-p99": quantile(0.99, latency),
        "inference-count": total(samples, "clipgate_inference_duration_seconds_count"),
        "requests-total": total(samples, "clipgate_http_requests_total")
        + total(samples, "clipgate_grpc_requests_total"),
        "errors-5xx": total(
            samples, "clipgate_http_requests_total", lambda l: l.get("status", "").startswith("5")
        ),
        "upstream-errors": total(samples, "clipgate_upstream_errors_total"),
        "inference-errors": total(samples, "clipgate_inference_errors_total"),
    }


# ---- clipgate and traffic -------------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_ready(base, deadline_s=120):
    deadline = time.time() + deadline_s
    while time.time() < deadline:
        try:
            status, _ = http("GET", base + "/v1/.well-known/ready")
            if status < 300:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError("clipgate did not become ready")


def metrics(base):
    status, body = http("GET", base + "/metrics")
    if status != 200:
        raise RuntimeError(f"/metrics answered {status}")
    return parse_metrics(body.decode())


SHAPES = ["red circle", "blue square", "green triangle", "yellow star", "purple cross"]


def setup_class(base):
    status, body = http(
        "POST",
        base + "/v1/schema",
        {
            "class": "DashShape",
            "vectorizer": "multi2vec-clip",
            "moduleConfig": {"multi2vec-clip": {"textFields": ["name"]}},
            "properties": [{"name": "name", "dataType": ["text"]}],
        },
    )
    if status != 200:
        raise RuntimeError(f"class create answered {status}: {body[:300]!r}")
    objects = [{"class": "DashShape", "properties": {"name": name}} for name in SHAPES]
    status, body = http("POST", base + "/v1/batch/objects", {"objects": objects})
    if status != 200:
        raise RuntimeError(f"batch import answered {status}: {body[:300]!r}")


def traffic(base, seconds):
    """Searches (repeated concepts: cache hits; new ones: misses; repeated documents: rewrite
    cache hits), pass-through GETs and a few searches whose inference fails (a nearImage that is
    not an image) for `seconds`."""
    end = time.time() + seconds
    i = 0
    while time.time() < end:
        concept = SHAPES[i % len(SHAPES)] if i % 3 else f"concept number {i}"
        # The limit varies so that repeated concepts also come as new GraphQL documents: those
        # miss clipgate's rewritten-document cache and hit the embedding cache.
        query = '{ Get { DashShape(nearText: {concepts: ["%s"]}, limit: %d) { name } } }' % (
            concept,
            1 + (i // len(SHAPES)) % 4,
        )
        http("POST", base + "/v1/graphql", {"query": query})
        http("GET", base + "/v1/objects?limit=2")
        if i % 10 == 0:
            bad = '{ Get { DashShape(nearImage: {image: "bm90IGFuIGltYWdl"}) { name } } }'
            http("POST", base + "/v1/graphql", {"query": bad})
        i += 1
        time.sleep(0.02)
    return i


# ---- Chromium -----------------------------------------------------------------------------


def find_chromium():
    for name in [os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"]:
        if name and shutil.which(name):
            return shutil.which(name)
    raise RuntimeError("no chromium found (apt-get install -y chromium, or set CHROMIUM)")


def start_chromium(profile):
    args = [
        find_chromium(),
        "--headless",
        "--no-sandbox",  # the CI machine runs as root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        "--hide-scrollbars",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        "--window-size=1400,1000",
        "about:blank",
    ]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    port_file = os.path.join(profile, "DevToolsActivePort")
    deadline = time.time() + 60
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                "chromium exited: " + process.stderr.read().decode(errors="replace")[-2000:]
            )
        try:
            with open(port_file) as f:
                port = int(f.readline().strip())
            break
        except (OSError, ValueError):
            time.sleep(0.1)
    else:
        raise RuntimeError("chromium did not open its DevTools port")
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
                pages = [t for t in json.load(r) if t.get("type") == "page"]
            if pages:
                return process, pages[0]["webSocketDebuggerUrl"]
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("chromium has no page target")


# ---- the test ----------------------------------------------------------------------------------


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, what, detail=""):
        if ok:
            self.passed += 1
            print(f"  ok    {what}")
        else:
            self.failed += 1
            print(f"  FAIL  {what} {detail}")


def close(a, b):
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def page_values(tools):
    return tools.evaluate(
        "Object.fromEntries([...document.querySelectorAll('[data-value]')]"
        ".map(e => [e.id, {value: e.dataset.value, text: e.textContent}]))"
    )


def scrapes(tools):
    # 0 until the page has loaded (Page.navigate returns before that).
    return int(
        tools.evaluate(
            "(() => { const e = document.getElementById('scrapes');"
            " return e ? Number(e.dataset.value || 0) : 0; })()"
        )
    )


def wait_scrapes(tools, at_least, deadline_s=30):
    deadline = time.time() + deadline_s
    while time.time() < deadline:
        n = scrapes(tools)
        if n >= at_least:
            return n
        time.sleep(0.1)
    raise RuntimeError(f"the page did not reach {at_least} scrapes of /metrics")


def run(args):
    checks = Checks()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    os.makedirs(args.artifacts, exist_ok=True)
    log = open(os.path.join(args.artifacts, "dashboard-clipgate.log"), "wb")
    # A free port for clipgate's gRPC endpoint too, so this test never collides with another
    # clipgate (scripts/test.sh runs one) on the default port.
    env = dict(
        os.environ,
        RUST_LOG=os.environ.get("RUST_LOG", "info"),
        CLIPGATE_GRPC_LISTEN=f"127.0.0.1:{free_port()}",
    )
    clipgate = subprocess.Popen(
        [args.bin, "serve", "--listen", f"127.0.0.1:{port}"], stdout=log, stderr=log, env=env
    )
    profile = tempfile.mkdtemp(prefix="clipgate-dashboard-")
    chromium = None
    tools = None
    try:
        wait_ready(base)
        setup_class(base)
        chromium, ws_url = start_chromium(profile)
        tools = DevTools(ws_url)
        tools.call("Runtime.enable")
        tools.call("Log.enable")
        tools.call("Page.enable")
        tools.call(
            "Emulation.setDeviceMetricsOverride",
            width=1400,
            height=700,
            deviceScaleFactor=1,
            mobile=False,
        )
        tools.call("Page.navigate", url=base + "/dashboard")
        wait_scrapes(tools, 2)

        # Traffic while the page is live, so the charts move; then quiet.
        sent = traffic(base, args.traffic_seconds)
        print(f"  sent {sent} rounds of traffic in {args.traffic_seconds} s")
        time.sleep(1.5)

        # /metrics, then a page scrape strictly after it, then /metrics again.
        before = metrics(base)
        n = scrapes(tools)
        wait_scrapes(tools, n + 2)
        shown = page_values(tools)
        after = metrics(base)
        want_before, want_after = expected(before), expected(after)

        checks.check(
            tools.evaluate("document.getElementById('status').dataset.state") == "ok",
            "the page says it is live",
        )
        for key in [
            "hit-ratio",
            "cache-hits",
            "cache-misses",
            "rewrite-cache-hits",
            "cache-entries",
            "cache-bytes",
            "cache-evictions",
            "inference-p50",
            "inference-p99",
            "inference-count",
            "errors-5xx",
            "upstream-errors",
            "inference-errors",
        ]:
            entry = shown.get(key) or {}
            raw = entry.get("value")
            value = None if raw in (None, "") else float(raw)
            stable = close(want_before[key], want_after[key])
            checks.check(
                stable and close(value, want_before[key]),
                f"{key} = {entry.get('text')!r} matches /metrics",
                f"(page {value}, /metrics {want_before[key]} then {want_after[key]})",
            )
        requests = float((shown.get("requests-total") or {}).get("value") or "nan")
        checks.check(
            want_before["requests-total"] <= requests <= want_after["requests-total"],
            f"requests-total = {requests:.0f} lies between the scrapes around it",
            f"({want_before['requests-total']} .. {want_after['requests-total']})",
        )
        rate = (shown.get("requests-rate") or {}).get("value") or ""
        checks.check(rate != "" and float(rate) > 0, f"requests/s shown ({rate})")
        checks.check(
            want_before["cache-hits"] > 0 and want_before["cache-misses"] > 0,
            "the traffic produced cache hits and misses",
        )
        checks.check(want_before["inference-p99"] is not None, "inference latency has data")
        drawn = tools.evaluate(
            """[...document.querySelectorAll('canvas')].map(c => {
                 const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                 let lit = 0;
                 for (let i = 3; i < d.length; i += 4) if (d[i] > 0) lit++;
                 return [c.id, lit];
               })"""
        )
        blank = [cid for cid, lit in drawn if lit < 500]
        checks.check(len(drawn) >= 5 and not blank, f"{len(drawn)} charts drawn", f"blank: {blank}")
        errors = [
            e
            for e in tools.events
            if e["method"] == "Runtime.exceptionThrown"
            or (
                e["method"] == "Log.entryAdded" and e["params"]["entry"].get("level") == "error"
            )
        ]
        checks.check(not errors, "no errors in the page's console", json.dumps(errors)[:1000])
        external = tools.evaluate(
            "performance.getEntriesByType('resource').map(r => r.name)"
            ".filter(u => !u.startsWith(location.origin))"
        )
        checks.check(not external, "nothing fetched from another origin", str(external))

        shot = tools.call("Page.captureScreenshot", format="png")
        path = os.path.join(args.artifacts, "dashboard.png")
        with open(path, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        checks.check(os.path.getsize(path) > 10_000, f"screenshot written to {path}")
        summary = {k: (shown.get(k) or {}).get("text") for k in sorted(shown)}
        print("  shown: " + json.dumps(summary, ensure_ascii=False))
    except Exception as error:  # noqa: BLE001 - any failure is one failed check, with its cause
        checks.check(False, "the dashboard test ran to the end", repr(error))
    finally:
        if tools is not None:
            try:
                tools.call("Browser.close")
            except Exception:  # noqa: BLE001
                pass
            tools.ws.close()
        if chromium is not None:
            try:
                chromium.wait(timeout=10)
            except subprocess.TimeoutExpired:
                chromium.kill()
                chromium.wait()
        clipgate.send_signal(signal.SIGTERM)
        try:
            clipgate.wait(timeout=20)
        except subprocess.TimeoutExpired:
            clipgate.kill()
            clipgate.wait()
        log.close()
        shutil.rmtree(profile, ignore_errors=True)
    print(f"dashboard: {checks.passed} passed, {checks.failed} failed")
    return 0 if checks.failed == 0 else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", default="target/debug/clipgate", help="the clipgate binary")
    parser.add_argument("--artifacts", default="artifacts", help="where the screenshot goes")
    parser.add_argument("--traffic-seconds", type=float, default=6.0)
    sys.exit(run(parser.parse_args()))


if __name__ == "__main__":
    main()
