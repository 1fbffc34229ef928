//! Benchmark (not a test): requests/s of a cached `near_text` Search through clipgate's gRPC
//! endpoint vs the equivalent `near_vector` Search straight to the upstream (issue 6, target
//! ≥ 80 %). Everything runs in this process on loopback: the Weaviate double (REST + gRPC, the 10
//! fixture shapes imported), clipgate with the bundled fixture model, and N concurrent tonic
//! clients. The two cases alternate, each measured for the same duration, so machine noise hits
//! both; the ratio is printed.
//!
//! `cargo bench -p gateway --bench grpc_search` (env: BENCH_SECONDS=5 per case, CONC=16, ROUNDS=2,
//! EXTRA_OBJECTS=0: objects with pseudo-random vectors added to the collection, to show how the ratio
//! depends on how much work the upstream's search itself is).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use conformance::double::Double;
use gateway::config::Config;
use gateway::grpc::{self, GrpcState};
use gateway::server::{self, AppState};
use tonic::transport::Channel;
use vectorizer::{CacheOptions, Cached, Embedder};
use weaviate_proto::v1::{
    batch_object, vectors::VectorType, weaviate_client::WeaviateClient, BatchObject,
    BatchObjectsRequest, MetadataRequest, NearTextSearch, NearVector, PropertiesRequest,
    SearchRequest, Vectors,
};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn base_request() -> SearchRequest {
    SearchRequest {
        collection: "Shape".into(),
        limit: 10,
        metadata: Some(MetadataRequest {
            uuid: true,
            distance: true,
            ..Default::default()
        }),
        properties: Some(PropertiesRequest {
            non_ref_properties: vec!["caption".into()],
            ..Default::default()
        }),
        uses_127_api: true,
        ..Default::default()
    }
}

/// Runs `conc` clients sending `request` for `duration`; returns (requests/s, p50 µs, p99 µs, errors).
async fn load(
    channel: Channel,
    request: SearchRequest,
    conc: usize,
    duration: Duration,
) -> (f64, f64, f64, usize) {
    let deadline = Instant::now() + duration;
    let request = Arc::new(request);
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let mut client = WeaviateClient::new(channel.clone());
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            while Instant::now() < deadline {
                let started = Instant::now();
                match client.search((*request).clone()).await {
                    Ok(_) => latencies.push(started.elapsed().as_secs_f64() * 1e6),
                    Err(_) => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let started = Instant::now();
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        if let Ok((l, e)) = t.await {
            all.extend(l);
            errors += e;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        all.get(((all.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    (all.len() as f64 / elapsed, pct(0.5), pct(0.99), errors)
}

async fn connect(url: String) -> Channel {
    Channel::from_shared(url)
        .expect("url")
        .connect()
        .await
        .expect("connects")
}

#[tokio::main]
async fn main() {
    let seconds: u64 = env_or("BENCH_SECONDS", 5);
    let conc: usize = env_or("CONC", 16);
    let rounds: usize = env_or("ROUNDS", 2);
    let extra: usize = env_or("EXTRA_OBJECTS", 0);
    let duration = Duration::from_secs(seconds);

    let double = Double::new();
    let (rest_addr, _rest) = conformance::double::spawn_double(double.clone())
        .await
        .expect("double REST");
    let (grpc_addr, _grpc) = conformance::double::grpc::spawn(double)
        .await
        .expect("double gRPC");
    let config = Config {
        weaviate_url: Some(format!("http://{rest_addr}")),
        weaviate_grpc_url: Some(format!("http://{grpc_addr}")),
        ..Config::default()
    };
    let model = server::load_model(server::model_options(&config))
        .await
        .expect("fixture model");
    let embedder: Arc<dyn Embedder> =
        Arc::new(Cached::new(model, CacheOptions::from_mb(64, "tract")));
    let state = AppState::new(config, embedder.clone()).expect("state");
    let (gw_rest, _gw) = server::spawn_with(state.clone()).await.expect("gateway");
    let (gw_grpc, _gg) = grpc::spawn_with(GrpcState::new(state).expect("grpc state"))
        .await
        .expect("gateway gRPC");

    // A clip class with the 10 fixture shapes, imported through clipgate's gRPC BatchObjects.
    let http = reqwest::Client::new();
    let class = serde_json::json!({
        "class": "Shape", "vectorizer": "multi2vec-clip",
        "moduleConfig": {"multi2vec-clip": {"imageFields": ["image"], "textFields": ["caption"]}},
        "properties": [{"name": "caption", "dataType": ["text"]}, {"name": "image", "dataType": ["blob"]}]
    });
    let created = http
        .post(format!("http://{gw_rest}/v1/schema"))
        .json(&class)
        .send()
        .await
        .expect("schema");
    assert!(created.status().is_success());
    let images = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/images");
    let mut objects = Vec::new();
    for (i, name) in [
        "red-circle",
        "blue-square",
        "green-triangle",
        "yellow-star",
        "pink-heart",
    ]
    .iter()
    .enumerate()
    {
        use base64::Engine;
        let bytes = std::fs::read(images.join(format!("{name}.png"))).expect("fixture image");
        let mut fields = BTreeMap::new();
        for (k, v) in [
            ("caption", name.replace('-', " ")),
            (
                "image",
                base64::engine::general_purpose::STANDARD.encode(bytes),
            ),
        ] {
            fields.insert(
                k.to_string(),
                prost_types::Value {
                    kind: Some(prost_types::value::Kind::StringValue(v)),
                },
            );
        }
        objects.push(BatchObject {
            uuid: format!("00000000-0000-4000-8000-{i:012}"),
            collection: "Shape".into(),
            properties: Some(batch_object::Properties {
                non_ref_properties: Some(prost_types::Struct { fields }),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    let gateway = connect(format!("http://{gw_grpc}")).await;
    let upstream = connect(format!("http://{grpc_addr}")).await;
    let reply = WeaviateClient::new(gateway.clone())
        .batch_objects(BatchObjectsRequest {
            objects,
            consistency_level: None,
        })
        .await
        .expect("import");
    assert!(reply.into_inner().errors.is_empty());

    // Extra objects with client vectors (xorshift, deterministic), straight to the upstream.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let dims = embedder
        .embed_texts(&["dimensions".to_string()])
        .await
        .remove(0)
        .expect("embeds")
        .len();
    for chunk in (0..extra).collect::<Vec<_>>().chunks(500) {
        let objects = chunk
            .iter()
            .map(|i| BatchObject {
                uuid: format!("10000000-0000-4000-8000-{i:012}"),
                collection: "Shape".into(),
                vector_bytes: (0..dims).flat_map(|_| next().to_le_bytes()).collect(),
                ..Default::default()
            })
            .collect();
        let reply = WeaviateClient::new(upstream.clone())
            .batch_objects(BatchObjectsRequest {
                objects,
                consistency_level: None,
            })
            .await
            .expect("extra objects");
        assert!(reply.into_inner().errors.is_empty());
    }

    let text = "a red circle";
    let near_text = SearchRequest {
        near_text: Some(NearTextSearch {
            query: vec![text.into()],
            ..Default::default()
        }),
        ..base_request()
    };
    let vector = embedder
        .embed_texts(&[text.to_string()])
        .await
        .remove(0)
        .expect("embeds");
    let near_vector = SearchRequest {
        near_vector: Some(NearVector {
            vectors: vec![Vectors {
                name: String::new(),
                index: 0,
                vector_bytes: vector.iter().flat_map(|x| x.to_le_bytes()).collect(),
                r#type: VectorType::SingleFp32 as i32,
            }],
            ..Default::default()
        }),
        ..base_request()
    };
    // Warm-up (fills the embedding cache and both connection pools).
    load(
        gateway.clone(),
        near_text.clone(),
        conc,
        Duration::from_millis(500),
    )
    .await;
    load(
        upstream.clone(),
        near_vector.clone(),
        conc,
        Duration::from_millis(500),
    )
    .await;

    println!(
        "gRPC Search, concurrency {conc}, {seconds}s per case, {rounds} rounds (fixture model, {} objects)",
        5 + extra
    );
    println!("| round | case | req/s | p50 µs | p99 µs | errors |");
    println!("|---|---|---|---|---|---|");
    let (mut best_gw, mut best_up) = (0.0f64, 0.0f64);
    for round in 1..=rounds {
        let (rps, p50, p99, err) = load(gateway.clone(), near_text.clone(), conc, duration).await;
        println!("| {round} | near_text via clipgate | {rps:.0} | {p50:.0} | {p99:.0} | {err} |");
        best_gw = best_gw.max(rps);
        let (rps, p50, p99, err) =
            load(upstream.clone(), near_vector.clone(), conc, duration).await;
        println!("| {round} | near_vector straight to upstream | {rps:.0} | {p50:.0} | {p99:.0} | {err} |");
        best_up = best_up.max(rps);
    }
    println!(
        "ratio (best clipgate / best upstream): {:.2}",
        best_gw / best_up
    );
}
