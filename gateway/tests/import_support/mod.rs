//! Shared pieces of the schema and import tests: requests through the gateway, reads straight
//! from the Weaviate double, fixture images, and the multi2vec-clip arithmetic written out
//! independently of `gateway::arithmetic` (spec §5.3: f32, weights normalized with one
//! reciprocal, weighted sum in vector order, divided by the number of vectors).

#![allow(dead_code)]

use serde_json::Value;

use crate::common::TestEnv;

/// Sends `body` with `method` to `path` on the gateway; returns status and JSON body (`Null`
/// when empty).
pub async fn call(
    env: &TestEnv,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut request = env.client.request(method, env.url(path));
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.expect("gateway answers");
    let status = response.status().as_u16();
    let bytes = response.bytes().await.expect("body");
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    (status, json)
}

pub async fn post(env: &TestEnv, path: &str, body: &Value) -> (u16, Value) {
    call(env, reqwest::Method::POST, path, Some(body)).await
}

/// Creates a class through the gateway and insists on success.
pub async fn create_class(env: &TestEnv, class: &Value) {
    let (status, body) = post(env, "/v1/schema", class).await;
    assert_eq!(status, 200, "class create failed: {body}");
}

/// The object as the double stored it, with its vectors (bypassing the gateway).
pub async fn stored(env: &TestEnv, class: &str, id: &str) -> Value {
    let response = env
        .client
        .get(env.weaviate_url(&format!("/v1/objects/{class}/{id}?include=vector")))
        .send()
        .await
        .expect("double answers");
    assert_eq!(response.status(), 200, "object {class}/{id} not stored");
    response.json().await.expect("json")
}

/// A JSON number array read as f32 from its decimal text (no f64 → f32 double rounding).
pub fn f32s(value: &Value) -> Vec<f32> {
    value
        .as_array()
        .expect("a vector")
        .iter()
        .map(|x| x.to_string().parse::<f32>().expect("a number"))
        .collect()
}

/// The stored legacy vector, `None` when there is none (or it is empty).
pub fn legacy_vector(object: &Value) -> Option<Vec<f32>> {
    object.get("vector").map(f32s).filter(|v| !v.is_empty())
}

pub fn named_vector(object: &Value, name: &str) -> Option<Vec<f32>> {
    object
        .get("vectors")
        .and_then(|v| v.get(name))
        .map(f32s)
        .filter(|v| !v.is_empty())
}

/// Bit-for-bit equality with a readable failure.
pub fn assert_bits(actual: &[f32], expected: &[f32]) {
    assert_eq!(actual.len(), expected.len(), "dimension");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert_eq!(
            a.to_bits(),
            e.to_bits(),
            "dimension {i}: got {a:e}, expected {e:e}"
        );
    }
}

/// Text vectors from the fixture model, one call.
pub async fn texts(env: &TestEnv, texts: &[&str]) -> Vec<Vec<f32>> {
    let inputs: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
    env.embedder()
        .embed_texts(&inputs)
        .await
        .into_iter()
        .map(|r| r.expect("text embeds").to_vec())
        .collect()
}

/// Image vectors from the fixture model.
pub async fn images(env: &TestEnv, images: &[&str]) -> Vec<Vec<f32>> {
    let inputs: Vec<String> = images.iter().map(|t| t.to_string()).collect();
    env.embedder()
        .embed_images(&inputs)
        .await
        .into_iter()
        .map(|r| r.expect("image embeds").to_vec())
        .collect()
}

/// The module's combination written out by hand: no weights → plain mean; weights →
/// `w_k * (1/Σw)` matched by POSITION, `Σ v_k[i]*w_k`, divided by the number of vectors.
pub fn expected(vectors: &[Vec<f32>], weights: Option<&[f32]>) -> Vec<f32> {
    let dims = vectors[0].len();
    let n = vectors.len() as f32;
    let normalized: Option<Vec<f32>> = weights.map(|w| {
        let mut sum = 0.0f32;
        for x in w {
            sum += *x;
        }
        let reciprocal = 1.0f32 / sum;
        w.iter().map(|x| *x * reciprocal).collect()
    });
    let mut out = vec![0.0f32; dims];
    for (k, v) in vectors.iter().enumerate() {
        for i in 0..dims {
            let term = match &normalized {
                Some(w) => v[i] * w[k],
                None => v[i],
            };
            out[i] += term;
        }
    }
    for x in &mut out {
        *x /= n;
    }
    out
}

/// A fixture image (`fixtures/images/<name>.png`) as standard base64.
pub fn image_b64(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/images")
        .join(format!("{name}.png"));
    base64(&std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// Names of the fixture shape images.
pub const SHAPES: [&str; 10] = [
    "blue-circle",
    "blue-square",
    "brown-hexagon",
    "green-triangle",
    "orange-diamond",
    "pink-heart",
    "purple-cross",
    "red-circle",
    "red-square",
    "yellow-star",
];

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (j, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if j <= chunk.len() {
                out.push(ALPHABET[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A deterministic object id for index `i`.
pub fn id(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}
