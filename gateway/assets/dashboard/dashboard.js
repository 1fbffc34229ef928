// clipgate dashboard: polls `metrics` (Prometheus text) once a second, parses it, shows the
// current numbers and draws live <canvas> line charts. No libraries, no build step.
//
// Every number shown is in an element with a stable id; its unrounded value is in `data-value`
// (tests/dashboard/ reads them and compares with /metrics).
"use strict";

const POLL_MS = 1000;
const HISTORY = 120; // points kept per chart: two minutes
const LATENCY_WINDOW = 10; // scrapes: the latency charts use the buckets of the last 10 seconds

const COLORS = ["#4fc3f7", "#ffb74d", "#e57373", "#81c784"];

// ---- Prometheus text format ------------------------------------------------------------------

function parseValue(text) {
  if (text === "+Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  return Number(text);
}

function unescapeLabel(value) {
  return value.replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
}

/** Samples of the text exposition format: [{name, labels, value}]. */
function parseMetrics(text) {
  const samples = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[2]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
      let l;
      while ((l = re.exec(m[2])) !== null) labels[l[1]] = unescapeLabel(l[2]);
    }
    samples.push({ name: m[1], labels, value: parseValue(m[3]) });
  }
  return samples;
}

function sum(samples, name, keep) {
  let total = 0;
  for (const s of samples) {
    if (s.name === name && (!keep || keep(s.labels))) total += s.value;
  }
  return total;
}

/** Cumulative bucket counts of a histogram summed over all its label sets: [[le, count]]. */
function buckets(samples, name) {
  const byLe = new Map();
  for (const s of samples) {
    if (s.name !== name + "_bucket" || s.labels.le === undefined) continue;
    const le = parseValue(s.labels.le);
    byLe.set(le, (byLe.get(le) || 0) + s.value);
  }
  return [...byLe.entries()].sort((a, b) => a[0] - b[0]);
}

/**
 * The q-quantile of cumulative buckets, as PromQL's histogram_quantile: linear interpolation
 * inside the bucket holding the rank, 0 as the lower bound of the first bucket, the highest
 * finite bound when the rank falls in the +Inf bucket. null without observations.
 */
function quantile(q, cumulative) {
  if (cumulative.length === 0) return null;
  const total = cumulative[cumulative.length - 1][1];
  if (!(total > 0)) return null;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, count] of cumulative) {
    if (count >= rank) {
      if (le === Infinity) return prevLe;
      if (count === prevCount) return le;
      return prevLe + ((le - prevLe) * (rank - prevCount)) / (count - prevCount);
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}

/** The numbers the dashboard shows, from one scrape. */
function snapshot(samples) {
  const hits = sum(samples, "clipgate_cache_hits_total");
  const misses = sum(samples, "clipgate_cache_misses_total");
  const latency = buckets(samples, "clipgate_inference_duration_seconds");
  return {
    hits,
    misses,
    hitRatio: hits + misses > 0 ? hits / (hits + misses) : null,
    // Repeated GraphQL documents answered without touching the embedding cache at all.
    rewriteHits: sum(samples, "clipgate_graphql_rewrite_cache_hits_total"),
    entries: sum(samples, "clipgate_cache_entries"),
    bytes: sum(samples, "clipgate_cache_bytes"),
    evictions: sum(samples, "clipgate_cache_evictions_total"),
    latency,
    p50: quantile(0.5, latency),
    p99: quantile(0.99, latency),
    inferences: sum(samples, "clipgate_inference_duration_seconds_count"),
    // HTTP requests and gRPC calls (current clients search and import over gRPC).
    requests:
      sum(samples, "clipgate_http_requests_total") + sum(samples, "clipgate_grpc_requests_total"),
    errors5xx: sum(samples, "clipgate_http_requests_total", (l) => /^5/.test(l.status || "")),
    upstreamErrors: sum(samples, "clipgate_upstream_errors_total"),
    inferenceErrors: sum(samples, "clipgate_inference_errors_total"),
  };
}

/** Bucket counts of `now` minus those of `then` (same bounds; missing bounds count as 0). */
function bucketDelta(now, then) {
  const before = new Map(then);
  return now.map(([le, count]) => [le, count - (before.get(le) || 0)]);
}

// ---- formatting ------------------------------------------------------------------------------

function fmtCount(v) {
  return v === null ? "–" : Math.round(v).toLocaleString("en-US");
}

function fmtBytes(v) {
  if (v === null) return "–";
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return (i === 0 ? v.toFixed(0) : v.toFixed(1)) + " " + units[i];
}

function fmtPercent(v) {
  return v === null ? "–" : (v * 100).toFixed(1) + " %";
}

function fmtSeconds(v) {
  if (v === null) return "–";
  if (v < 1) return (v * 1000).toFixed(v < 0.01 ? 2 : 1) + " ms";
  return v.toFixed(2) + " s";
}

function fmtRate(v) {
  return v === null ? "–" : v.toFixed(1) + " /s";
}

function show(id, value, format) {
  const el = document.getElementById(id);
  if (!el) return;
  el.dataset.value = value === null ? "" : String(value);
  el.textContent = format(value);
}

// ---- charts ----------------------------------------------------------------------------------

/** Draws series [{label, points: [number|null]}] on a canvas, y from 0, auto-scaled. */
function drawChart(canvas, series, format) {
  if (!canvas) return;
  const dpr = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 400;
  const height = canvas.clientHeight || 180;
  if (canvas.width !== Math.round(width * dpr)) canvas.width = Math.round(width * dpr);
  if (canvas.height !== Math.round(height * dpr)) canvas.height = Math.round(height * dpr);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, width, height);

  const left = 64;
  const right = 8;
  const top = 20;
  const bottom = 18;
  const plotW = width - left - right;
  const plotH = height - top - bottom;

  let max = 0;
  for (const s of series) for (const p of s.points) if (p !== null && p > max) max = p;
  if (!(max > 0)) max = 1;
  max *= 1.1;

  ctx.font = "11px system-ui, sans-serif";
  ctx.strokeStyle = "#2a3440";
  ctx.fillStyle = "#8a96a3";
  ctx.lineWidth = 1;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    const y = top + plotH - (plotH * i) / 4;
    ctx.beginPath();
    ctx.moveTo(left, y);
    ctx.lineTo(left + plotW, y);
    ctx.stroke();
    ctx.fillText(format(v), left - 6, y);
  }
  ctx.textAlign = "left";
  ctx.textBaseline = "alphabetic";
  ctx.fillText("-" + HISTORY + " s", left, height - 4);
  ctx.textAlign = "right";
  ctx.fillText("now", left + plotW, height - 4);

  series.forEach((s, index) => {
    const color = COLORS[index % COLORS.length];
    ctx.strokeStyle = color;
    ctx.fillStyle = color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    let pen = false;
    const offset = HISTORY - s.points.length;
    const dots = []; // points with no neighbour to draw a line to
    const usable = (p) => p !== null && p !== undefined && Number.isFinite(p);
    s.points.forEach((p, i) => {
      if (!usable(p)) {
        pen = false;
        return;
      }
      const x = left + (plotW * (offset + i)) / (HISTORY - 1);
      const y = top + plotH - (plotH * p) / max;
      if (pen) ctx.lineTo(x, y);
      else ctx.moveTo(x, y);
      if (!pen && !usable(s.points[i + 1])) dots.push([x, y]);
      pen = true;
    });
    ctx.stroke();
    for (const [x, y] of dots) {
      ctx.beginPath();
      ctx.arc(x, y, 2, 0, 2 * Math.PI);
      ctx.fill();
    }
    ctx.fillStyle = color;
    ctx.textAlign = "left";
    ctx.fillText(s.label, left + 8 + index * 110, 12);
  });
}

// ---- polling ---------------------------------------------------------------------------------

const history = []; // [{time, snap}] of the last HISTORY + LATENCY_WINDOW scrapes
const series = {
  ratioInterval: [],
  ratioTotal: [],
  entries: [],
  bytes: [],
  p50: [],
  p99: [],
  requests: [],
  errors5xx: [],
  upstreamErrors: [],
  inferenceErrors: [],
};
let scrapes = 0;

function push(name, value) {
  const list = series[name];
  list.push(value);
  if (list.length > HISTORY) list.shift();
}

/** Per-second rate of a counter between two scrapes; null across a restart (counter reset). */
function rate(now, then, key) {
  if (!then) return null;
  const dt = (now.time - then.time) / 1000;
  const delta = now.snap[key] - then.snap[key];
  if (!(dt > 0) || delta < 0) return null;
  return delta / dt;
}

function record(snap) {
  const now = { time: performance.now(), snap };
  const prev = history.length > 0 ? history[history.length - 1] : null;
  history.push(now);
  if (history.length > HISTORY + LATENCY_WINDOW) history.shift();

  let ratio = null;
  if (prev) {
    const hits = snap.hits - prev.snap.hits;
    const lookups = hits + snap.misses - prev.snap.misses;
    if (lookups > 0 && hits >= 0) ratio = hits / lookups;
  }
  push("ratioInterval", ratio);
  push("ratioTotal", snap.hitRatio);
  push("entries", snap.entries);
  push("bytes", snap.bytes);

  const then = history[Math.max(0, history.length - 1 - LATENCY_WINDOW)];
  // The first scrape has no window: its buckets hold everything since clipgate started.
  const recent = then === now ? [] : bucketDelta(snap.latency, then.snap.latency);
  push("p50", quantile(0.5, recent));
  push("p99", quantile(0.99, recent));

  const requestsRate = rate(now, prev, "requests");
  push("requests", requestsRate);
  push("errors5xx", rate(now, prev, "errors5xx"));
  push("upstreamErrors", rate(now, prev, "upstreamErrors"));
  push("inferenceErrors", rate(now, prev, "inferenceErrors"));
  return requestsRate;
}

function render(snap, requestsRate) {
  show("hit-ratio", snap.hitRatio, fmtPercent);
  show("cache-hits", snap.hits, fmtCount);
  show("cache-misses", snap.misses, fmtCount);
  show("rewrite-cache-hits", snap.rewriteHits, fmtCount);
  show("cache-entries", snap.entries, fmtCount);
  show("cache-bytes", snap.bytes, fmtBytes);
  show("cache-evictions", snap.evictions, fmtCount);
  show("inference-p50", snap.p50, fmtSeconds);
  show("inference-p99", snap.p99, fmtSeconds);
  show("inference-count", snap.inferences, fmtCount);
  show("requests-total", snap.requests, fmtCount);
  show("requests-rate", requestsRate, fmtRate);
  show("errors-5xx", snap.errors5xx, fmtCount);
  show("upstream-errors", snap.upstreamErrors, fmtCount);
  show("inference-errors", snap.inferenceErrors, fmtCount);

  const byId = (id) => document.getElementById(id);
  const percent = (v) => (v * 100).toFixed(0) + "%";
  drawChart(
    byId("chart-hit-ratio"),
    [
      { label: "per second", points: series.ratioInterval },
      { label: "since start", points: series.ratioTotal },
    ],
    percent,
  );
  drawChart(byId("chart-cache-entries"), [{ label: "entries", points: series.entries }], fmtCount);
  drawChart(
    byId("chart-cache-bytes"),
    [{ label: "bytes", points: series.bytes }],
    fmtBytes,
  );
  drawChart(
    byId("chart-latency"),
    [
      { label: "p50 (10 s)", points: series.p50 },
      { label: "p99 (10 s)", points: series.p99 },
    ],
    fmtSeconds,
  );
  drawChart(byId("chart-requests"), [{ label: "requests/s", points: series.requests }], (v) =>
    v.toFixed(1),
  );
  drawChart(
    byId("chart-errors"),
    [
      { label: "5xx/s", points: series.errors5xx },
      { label: "upstream/s", points: series.upstreamErrors },
      { label: "inference/s", points: series.inferenceErrors },
    ],
    (v) => v.toFixed(2),
  );
}

function setStatus(state, text) {
  const el = document.getElementById("status");
  el.dataset.state = state;
  el.textContent = text;
}

async function poll() {
  try {
    const response = await fetch("metrics", { cache: "no-store" });
    const text = await response.text();
    if (!response.ok) throw new Error("/metrics answered " + response.status + ": " + text.trim());
    const snap = snapshot(parseMetrics(text));
    const requestsRate = record(snap);
    scrapes += 1;
    render(snap, requestsRate);
    show("scrapes", scrapes, String);
    document.getElementById("last-update").textContent = new Date().toLocaleTimeString();
    setStatus("ok", "live");
  } catch (error) {
    setStatus("error", String(error.message || error));
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

poll();
