//! Step 2 (I/O): compute what the plans need, all at once — one batched `embed_texts` call and
//! one `embed_images` call for the whole request (a `/v1/graphql/batch` included), with every
//! input once, and the move objects fetched concurrently with the CALLER's credentials (never
//! the gateway's own: a caller must not obtain a vector it could not read itself).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use http::{HeaderMap, Method, StatusCode};
use vectorizer::{EmbedError, Embedder, Vector};

use super::plan::{FieldPlan, Plan};
use super::validate::{Edit, HybridSource, Near, NearQuery, TextRecipe};
use crate::arithmetic;
use crate::upstream::{percent_encode, Upstream};

/// A move object to look up: `GET /v1/objects/{class}/{id}?include=vector(&tenant=…)`; the class
/// is the queried one (spec §3.2), absent for Explore.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectKey {
    pub class: Option<String>,
    pub id: String,
    pub tenant: Option<String>,
}

/// The vectors stored with an object: the legacy `vector` and the named `vectors`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredVectors {
    pub vector: Option<Vec<f32>>,
    pub vectors: HashMap<String, Vec<f32>>,
}

/// The inputs of a set of plans, each once, in first-use order.
#[derive(Debug, Clone, Default)]
pub struct Needs {
    pub texts: Vec<String>,
    pub images: Vec<String>,
    pub objects: Vec<ObjectKey>,
    seen_texts: HashSet<String>,
    seen_images: HashSet<String>,
    seen_objects: HashSet<ObjectKey>,
}

impl Needs {
    pub fn is_empty(&self) -> bool {
        self.texts.is_empty() && self.images.is_empty() && self.objects.is_empty()
    }

    /// Adds what `plan` needs.
    pub fn add(&mut self, plan: &Plan) {
        for field in &plan.fields {
            let Ok(edits) = &field.outcome else { continue };
            for edit in edits {
                self.add_edit(&edit.edit, field.scope());
            }
        }
    }

    /// Adds what one edit of a search in `scope` needs.
    pub fn add_edit(&mut self, edit: &Edit, scope: Scope<'_>) {
        match edit {
            Edit::Remove => {}
            Edit::Near(near) => match &near.query {
                NearQuery::Text(recipe) => self.add_recipe(recipe, scope),
                NearQuery::Image(image) => {
                    if self.seen_images.insert(image.clone()) {
                        self.images.push(image.clone());
                    }
                }
            },
            Edit::Hybrid(hybrid) => match &hybrid.source {
                HybridSource::Query(query) => self.add_text(query),
                HybridSource::SearchNearText { recipe, .. } => self.add_recipe(recipe, scope),
            },
        }
    }

    fn add_text(&mut self, text: &str) {
        if self.seen_texts.insert(text.to_string()) {
            self.texts.push(text.to_string());
        }
    }

    fn add_recipe(&mut self, recipe: &TextRecipe, scope: Scope<'_>) {
        for concept in &recipe.concepts {
            self.add_text(concept);
        }
        for movement in &recipe.moves {
            for concept in &movement.concepts {
                self.add_text(concept);
            }
            for id in movement.objects.iter().flatten() {
                if let Some(key) = object_key(scope, id) {
                    if self.seen_objects.insert(key.clone()) {
                        self.objects.push(key);
                    }
                }
            }
        }
    }
}

/// The lookup key of a move object of a search in `scope`; `None` for ids that cannot name an object (not a
/// UUID), which are reported as not found without asking Weaviate.
pub fn object_key(scope: Scope<'_>, id: &str) -> Option<ObjectKey> {
    uuid::Uuid::parse_str(id).ok()?;
    Some(ObjectKey {
        class: scope.class.map(str::to_string),
        id: id.to_string(),
        tenant: scope.tenant.map(str::to_string),
    })
}

/// Where a search's move objects are looked up: the queried class (`None` for Explore) and the
/// search's tenant (spec §3.2). Shared by the GraphQL and gRPC paths.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub class: Option<&'a str>,
    pub tenant: Option<&'a str>,
}

impl FieldPlan {
    pub fn scope(&self) -> Scope<'_> {
        Scope {
            class: self.class.as_deref(),
            tenant: self.tenant.as_deref(),
        }
    }
}

/// The computed inputs; every needed input has an entry.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub texts: HashMap<String, Result<Vector, EmbedError>>,
    pub images: HashMap<String, Result<Vector, EmbedError>>,
    /// `Err` is the message the module's searcher reports for the object.
    pub objects: HashMap<ObjectKey, Result<StoredVectors, String>>,
}

/// Where move objects come from (the upstream Weaviate; a map in tests).
#[async_trait]
pub trait ObjectSource: Send + Sync {
    async fn fetch(&self, key: &ObjectKey) -> Result<StoredVectors, String>;
}

/// Computes everything `needs` lists, concurrently. Embedding is bounded by `timeout`; object
/// lookups by the upstream client's own timeout.
pub async fn compute(
    needs: &Needs,
    embedder: &dyn Embedder,
    objects: &dyn ObjectSource,
    timeout: Duration,
) -> Inputs {
    let texts = async {
        if needs.texts.is_empty() {
            return Vec::new();
        }
        bounded(
            embedder.embed_texts(&needs.texts),
            needs.texts.len(),
            timeout,
        )
        .await
    };
    let images = async {
        if needs.images.is_empty() {
            return Vec::new();
        }
        bounded(
            embedder.embed_images(&needs.images),
            needs.images.len(),
            timeout,
        )
        .await
    };
    let fetched = futures::future::join_all(needs.objects.iter().map(|k| objects.fetch(k)));
    let (texts, images, fetched) = tokio::join!(texts, images, fetched);
    Inputs {
        texts: needs.texts.iter().cloned().zip(texts).collect(),
        images: needs.images.iter().cloned().zip(images).collect(),
        objects: needs.objects.iter().cloned().zip(fetched).collect(),
    }
}

/// One result per input, whatever the embedder answers or however long it takes.
async fn bounded(
    call: impl std::future::Future<Output = Vec<Result<Vector, EmbedError>>>,
    count: usize,
    timeout: Duration,
) -> Vec<Result<Vector, EmbedError>> {
    let mut results = match tokio::time::timeout(timeout, call).await {
        Ok(results) => results,
        Err(_) => {
            let error = EmbedError::Inference(format!(
                "inference did not finish within {}s",
                timeout.as_secs_f64()
            ));
            return vec![Err(error); count];
        }
    };
    if results.len() != count {
        let got = results.len();
        results = vec![Err(EmbedError::RemoteCount { sent: count, got }); count];
    }
    results
}

/// Move objects from the upstream Weaviate, requested with the caller's headers.
pub struct UpstreamObjects<'a> {
    pub upstream: &'a Upstream,
    pub caller: &'a HeaderMap,
}

#[async_trait]
impl ObjectSource for UpstreamObjects<'_> {
    async fn fetch(&self, key: &ObjectKey) -> Result<StoredVectors, String> {
        let mut path = match &key.class {
            Some(class) => format!(
                "/v1/objects/{}/{}?include=vector",
                percent_encode(class),
                key.id
            ),
            None => format!("/v1/objects/{}?include=vector", key.id),
        };
        if let Some(tenant) = &key.tenant {
            path.push_str("&tenant=");
            path.push_str(&percent_encode(tenant));
        }
        let (status, body) = self
            .upstream
            .request_json(Method::GET, &path, self.caller, None)
            .await
            .map_err(|e| e.to_string())?;
        if status == StatusCode::NOT_FOUND {
            return Err("vector not found".to_string());
        }
        let json: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| format!("get object {}: status {status}: {e}", key.id))?;
        if !status.is_success() {
            let message = json
                .pointer("/error/0/message")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("");
            return Err(format!("get object {}: status {status}: {message}", key.id));
        }
        Ok(stored_vectors(&json))
    }
}

/// The `vector` and flat `vectors` of a Weaviate object (multi-vectors are not clip's).
pub fn stored_vectors(object: &serde_json::Value) -> StoredVectors {
    let floats = |v: &serde_json::Value| -> Option<Vec<f32>> {
        v.as_array()?
            .iter()
            .map(|x| x.as_f64().map(|f| f as f32))
            .collect()
    };
    StoredVectors {
        vector: object
            .get("vector")
            .and_then(floats)
            .filter(|v| !v.is_empty()),
        vectors: object
            .get("vectors")
            .and_then(serde_json::Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), floats(v)?)))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// The vector of a `nearText` / `nearImage` for each of its targets, in order (spec §3.4, §4).
/// `Err` is the module's message, which each caller wraps as its root reports it.
pub fn near_vectors(
    scope: Scope<'_>,
    near: &Near,
    inputs: &Inputs,
) -> Result<Vec<Vec<f32>>, String> {
    near.targets
        .iter()
        .map(|target| match &near.query {
            NearQuery::Text(recipe) => text_vector(scope, recipe, target.as_deref(), inputs),
            NearQuery::Image(image) => match inputs.images.get(image) {
                Some(Ok(v)) => Ok(v.to_vec()),
                Some(Err(e)) => Err(format!("vectorize image: {e}")),
                None => Err("vectorize image: empty vector".to_string()),
            },
        })
        .collect()
}

/// The mean of the concepts' text vectors (spec §3.1); the first failing concept's error.
pub fn concepts_mean(concepts: &[String], inputs: &Inputs) -> Result<Vec<f32>, String> {
    let mut vectors = Vec::with_capacity(concepts.len());
    for concept in concepts {
        match inputs.texts.get(concept) {
            Some(Ok(v)) => vectors.push(v.clone()),
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("inputs are not equal to vectors returned".to_string()),
        }
    }
    let slices: Vec<&[f32]> = vectors.iter().map(|v| &v[..]).collect();
    Ok(arithmetic::mean(&slices))
}

/// A nearText vector for one target: concepts mean, then moveTo, then moveAwayFrom, with the
/// searcher's error wrapping (spec §3.2). Errors are the module's message, unwrapped by root.
pub fn text_vector(
    scope: Scope<'_>,
    recipe: &TextRecipe,
    target: Option<&str>,
    inputs: &Inputs,
) -> Result<Vec<f32>, String> {
    let mut vector = concepts_mean(&recipe.concepts, inputs)
        .map_err(|e| format!("vectorize keywords: remote client vectorize: {e}"))?;
    for movement in &recipe.moves {
        let label = if movement.away {
            "vectorize move away from"
        } else {
            "vectorize move to"
        };
        let mut parts: Vec<Vec<f32>> = Vec::new();
        if !movement.concepts.is_empty() {
            parts.push(concepts_mean(&movement.concepts, inputs).map_err(|e| {
                format!("{label}: vectorize move to: remote client vectorize: {e}")
            })?);
        }
        for object in &movement.objects {
            let id = object.as_ref().map_err(|e| format!("{label}: {e}"))?;
            parts.push(
                object_vector(scope, id, target, inputs).map_err(|e| format!("{label}: {e}"))?,
            );
        }
        let slices: Vec<&[f32]> = parts.iter().map(|v| &v[..]).collect();
        let towards = arithmetic::mean(&slices);
        vector = if movement.away {
            arithmetic::move_away_from(&vector, &towards, movement.force)
        } else {
            arithmetic::move_to(&vector, &towards, movement.force)
        }
        .map_err(|e| e.to_string())?;
    }
    Ok(vector)
}

/// A move object's vector for `target` (`classFindVector`, spec §3.2).
fn object_vector(
    scope: Scope<'_>,
    id: &str,
    target: Option<&str>,
    inputs: &Inputs,
) -> Result<Vec<f32>, String> {
    let stored = object_key(scope, id)
        .and_then(|key| inputs.objects.get(&key))
        .ok_or_else(|| "vector not found".to_string())?
        .as_ref()
        .map_err(Clone::clone)?;
    match target {
        None => stored
            .vector
            .clone()
            .ok_or_else(|| format!("nearObject search-object with id {id} has no vector")),
        Some(t) => stored
            .vectors
            .get(t)
            .cloned()
            .ok_or_else(|| format!("vector not found for target: {t}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_vectors_of_an_object() {
        let v = stored_vectors(
            &serde_json::json!({"vector":[1.5, 2], "vectors":{"a":[0.25], "m":[[1.0]]}}),
        );
        assert_eq!(v.vector, Some(vec![1.5, 2.0]));
        assert_eq!(v.vectors.get("a"), Some(&vec![0.25]));
        assert!(!v.vectors.contains_key("m"));
    }
}
