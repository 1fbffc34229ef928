//! The deployment files (`docker-compose.yml`, `Dockerfile`, `dashboards/clipgate-grafana.json`)
//! checked against the code: no Docker engine runs here, so these tests are what keeps the files
//! from drifting away from clipgate's real options and metric names.
//!
//! Options are read from the gateway's sources (`env = "…"` in its clap definitions) and metric
//! names from the `"clipgate_…"` literals the gateway and vectorizer emit; no gateway code is
//! linked, so the conformance crate stays independent of it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the conformance crate lives in the workspace")
        .to_owned()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

fn rust_sources(dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(std::fs::read_to_string(&path).expect("read source"));
        }
    }
}

/// Every quoted string in `text` that directly follows `marker` (e.g. `env = "`).
fn quoted_after(text: &str, marker: &str) -> Vec<String> {
    text.match_indices(marker)
        .filter_map(|(i, _)| {
            let rest = &text[i + marker.len()..];
            rest.find('"').map(|end| rest[..end].to_owned())
        })
        .collect()
}

/// The environment variables clipgate's command line understands.
fn gateway_env_vars() -> BTreeSet<String> {
    let mut sources = Vec::new();
    rust_sources(&root().join("gateway/src"), &mut sources);
    let mut vars: BTreeSet<String> = sources
        .iter()
        .flat_map(|s| quoted_after(s, "env = \""))
        .collect();
    // Read by tracing-subscriber's EnvFilter (README: logging).
    vars.insert("RUST_LOG".to_owned());
    vars
}

/// The metric names emitted by the gateway and the vectorizer.
fn exported_metrics() -> BTreeSet<String> {
    let mut sources = Vec::new();
    rust_sources(&root().join("gateway/src"), &mut sources);
    rust_sources(&root().join("vectorizer/src"), &mut sources);
    sources
        .iter()
        .flat_map(|s| quoted_after(s, "\"clipgate_"))
        .map(|rest| format!("clipgate_{rest}"))
        .filter(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .collect()
}

fn compose() -> Value {
    serde_yaml_ng::from_str(&read("docker-compose.yml")).expect("docker-compose.yml is valid YAML")
}

fn service<'a>(c: &'a Value, name: &str) -> &'a Value {
    c["services"]
        .get(name)
        .unwrap_or_else(|| panic!("docker-compose.yml has no service {name:?}"))
}

fn env_of(svc: &Value) -> serde_json::Map<String, Value> {
    svc["environment"].as_object().cloned().unwrap_or_default()
}

fn env_str(svc: &Value, key: &str) -> Option<String> {
    env_of(svc).get(key).and_then(|v| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

fn is_clipgate(svc: &Value) -> bool {
    svc["build"].is_string()
        || svc["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("clipgate"))
}

#[test]
fn compose_services_ports_and_environment_match_clipgate_options() {
    let c = compose();
    let known = gateway_env_vars();
    for required in [
        "CLIPGATE_LISTEN",
        "WEAVIATE_URL",
        "CLIP_MODEL_DIR",
        "CLIP_INFERENCE_API",
    ] {
        assert!(
            known.contains(required),
            "gateway has no option {required}: {known:?}"
        );
    }

    // The default stack: stock Weaviate without modules, clipgate in front on 8080.
    let weaviate = service(&c, "weaviate");
    assert_eq!(env_str(weaviate, "ENABLE_MODULES").as_deref(), Some(""));
    assert_eq!(
        env_str(weaviate, "DEFAULT_VECTORIZER_MODULE").as_deref(),
        Some("none")
    );
    let gw = service(&c, "clipgate");
    assert!(gw["profiles"].is_null(), "clipgate runs by default");
    assert!(
        gw["ports"]
            .as_array()
            .is_some_and(|p| p.iter().any(|x| x == "8080:8080")),
        "clipgate publishes 8080: {}",
        gw["ports"]
    );
    assert_eq!(
        env_str(gw, "CLIPGATE_LISTEN").as_deref(),
        Some("0.0.0.0:8080")
    );
    assert_eq!(
        env_str(gw, "WEAVIATE_URL").as_deref(),
        Some("http://weaviate:8080")
    );

    // Every clipgate container only sets variables clipgate understands, and runs a real subcommand.
    let services = c["services"].as_object().expect("services map");
    let mut clipgates = 0;
    for (name, svc) in services {
        if !is_clipgate(svc) {
            continue;
        }
        clipgates += 1;
        for key in env_of(svc).keys() {
            assert!(
                known.contains(key),
                "service {name}: {key} is not an option of clipgate (known: {known:?})"
            );
        }
        if let Some(cmd) = svc["command"].as_array() {
            let sub = cmd.first().and_then(Value::as_str).unwrap_or_default();
            assert!(
                ["serve", "inference", "embed"].contains(&sub),
                "service {name}: unknown subcommand {sub:?}"
            );
        }
        // A published port must reach a port clipgate listens on (HTTP, or gRPC).
        if let (Some(ports), Some(listen)) =
            (svc["ports"].as_array(), env_str(svc, "CLIPGATE_LISTEN"))
        {
            let mut inner = vec![listen.rsplit(':').next().unwrap_or_default().to_owned()];
            if let Some(grpc) = env_str(svc, "CLIPGATE_GRPC_LISTEN") {
                inner.push(grpc.rsplit(':').next().unwrap_or_default().to_owned());
            }
            for p in ports {
                let p = p.as_str().unwrap_or_default();
                assert!(
                    inner.iter().any(|i| p.ends_with(&format!(":{i}"))),
                    "service {name}: port {p} does not reach {listen} (or the gRPC listener)"
                );
            }
        }
    }
    assert!(clipgates >= 3, "clipgate, clipgate-gpu, clip-inference");

    // Profile gpu: the inference container as clipgate's backend.
    let gpu = service(&c, "multi2vec-clip");
    assert_eq!(gpu["profiles"][0], "gpu");
    assert_eq!(env_str(gpu, "ENABLE_CUDA").as_deref(), Some("1"));
    let gw_gpu = service(&c, "clipgate-gpu");
    assert_eq!(
        env_str(gw_gpu, "CLIP_INFERENCE_API").as_deref(),
        Some("http://multi2vec-clip:8080")
    );

    // Profile reference: a real Weaviate with the real module, using clipgate as its container.
    let real = service(&c, "weaviate-clip");
    assert_eq!(
        env_str(real, "ENABLE_MODULES").as_deref(),
        Some("multi2vec-clip")
    );
    assert_eq!(
        env_str(real, "CLIP_INFERENCE_API").as_deref(),
        Some("http://clip-inference:8080")
    );
    let inference = service(&c, "clip-inference");
    assert_eq!(inference["command"][0], "inference");
}

#[test]
fn dockerfile_is_multi_stage_and_ships_the_fixture_model_where_compose_expects_it() {
    let d = read("Dockerfile");
    let froms: Vec<&str> = d.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert!(froms.len() >= 2, "multi-stage build: {froms:?}");
    assert!(
        froms[0].contains(" AS build"),
        "first stage builds: {froms:?}"
    );
    assert!(d.contains("--bin clipgate"));
    assert!(d.contains("COPY fixtures/model /opt/clipgate/fixtures/model"));
    assert!(d.contains("CLIP_MODEL_DIR=/opt/clipgate/fixtures/model"));
    assert!(d.contains("CLIPGATE_LISTEN=0.0.0.0:8080"));
    assert!(d.contains("EXPOSE 8080"));
    let c = compose();
    assert_eq!(
        env_str(service(&c, "clipgate"), "CLIP_MODEL_DIR").as_deref(),
        Some("/opt/clipgate/fixtures/model")
    );
    assert!(root().join("fixtures/model/config.json").is_file());
}

/// Metric names in a PromQL expression: identifiers starting with `clipgate_`.
fn metric_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(pos) = expr[i..].find("clipgate_") {
        let start = i + pos;
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        out.push(expr[start..end].to_owned());
        i = end;
    }
    out
}

#[test]
fn every_metric_the_dashboard_queries_is_exported() {
    let dash: Value =
        serde_json::from_str(&read("dashboards/clipgate-grafana.json")).expect("dashboard JSON");
    let exported = exported_metrics();
    let panels = dash["panels"].as_array().expect("panels");
    assert!(
        panels.len() >= 8,
        "cache, inference, batches, rewrites, upstream panels"
    );
    let mut queried = BTreeSet::new();
    for p in panels {
        for t in p["targets"].as_array().expect("targets") {
            let expr = t["expr"].as_str().expect("expr");
            for name in metric_names(expr) {
                // Histograms are scraped as <name>_bucket / _sum / _count.
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s).filter(|b| exported.contains(*b)))
                    .map(str::to_owned)
                    .unwrap_or(name.clone());
                assert!(
                    exported.contains(&base),
                    "panel {:?} queries {name}, which clipgate does not export ({exported:?})",
                    p["title"]
                );
                if name.ends_with("_bucket") {
                    // Only the *_duration_seconds histograms are rendered with buckets.
                    assert!(base.ends_with("_duration_seconds"), "{name} has no buckets");
                }
                queried.insert(base);
            }
        }
    }
    for needed in [
        "clipgate_cache_hits_total",
        "clipgate_cache_misses_total",
        "clipgate_cache_entries",
        "clipgate_cache_bytes",
        "clipgate_inference_duration_seconds",
        "clipgate_inference_batch_size",
        "clipgate_graphql_requests_total",
        "clipgate_upstream_errors_total",
    ] {
        assert!(queried.contains(needed), "the dashboard shows {needed}");
    }
}
