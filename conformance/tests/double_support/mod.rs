//! Shared helpers for the Weaviate double's tests: a real server on 127.0.0.1 and a small client.
#![allow(dead_code)]

use conformance::double::{spawn_double, Double};
use reqwest::Method;
use serde_json::{json, Value};

pub struct Client {
    pub base: String,
    http: reqwest::Client,
    token: Option<String>,
}

impl Client {
    /// Starts an anonymous double.
    pub async fn start() -> Self {
        Self::start_with(Double::new()).await
    }

    pub async fn start_with(double: Double) -> Self {
        let (addr, _handle) = spawn_double(double).await.expect("bind 127.0.0.1:0");
        Self {
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            token: None,
        }
    }

    /// The same server with a bearer token.
    pub fn with_token(&self, token: &str) -> Self {
        Self {
            base: self.base.clone(),
            http: self.http.clone(),
            token: Some(token.to_owned()),
        }
    }

    pub async fn raw(&self, method: Method, path: &str, body: Option<Value>) -> (u16, String) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        (status, resp.text().await.expect("body"))
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let (status, text) = self.raw(method, path, body).await;
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).expect("json body")
        };
        (status, value)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn gql(&self, query: &str) -> Value {
        let (status, body) = self.post("/v1/graphql", json!({"query": query})).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Creates a class and asserts success.
    pub async fn class(&self, def: Value) {
        let (status, body) = self.post("/v1/schema", def).await;
        assert_eq!(status, 200, "{body}");
    }

    /// Creates an object and asserts success.
    pub async fn object(&self, obj: Value) -> Value {
        let (status, body) = self.post("/v1/objects", obj).await;
        assert_eq!(status, 200, "{body}");
        body
    }
}

/// Cosine distance computed independently in f64.
pub fn cosine_distance(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    1.0 - dot / (na * nb)
}

pub fn ids(result: &Value) -> Vec<String> {
    result
        .as_array()
        .expect("result list")
        .iter()
        .map(|o| o["_additional"]["id"].as_str().expect("id").to_owned())
        .collect()
}
