//! The server defaults Weaviate 1.39 writes into a class on creation, so that `GET /v1/schema`
//! answers with the full class a real Weaviate returns.
//!
//! Why: the clients' `collection.config.get()` (Python weaviate-client 4.x
//! `_collection_config_from_json`, TS weaviate-client 3.x `classToCollection`) index these
//! fields directly and fail (`KeyError: 'invertedIndexConfig'`, `WeaviateDeserializationError`)
//! when one is missing. Spec §6 covers what the double validates; the values below are Weaviate's:
//! - `usecases/schema/class.go` `setClassDefaults`/`setNewClassDefaults`/`setInvertedConfigDefaults`
//!   (BM25 k1 1.2 / b 0.75, cleanup 60 s, stopwords preset `en`, `usingBlockMaxWAND: true`,
//!   replication factor 1 with `deletionStrategy: TimeBasedResolution`), `setPropertyDefaults` and
//!   `setNestedPropertiesDefaults` (tokenization, index flags);
//! - `usecases/sharding/config` `ParseConfig` (128 virtual shards per physical, `_id`, `hash`,
//!   `murmur3`; an all-zero config for multi-tenant classes);
//! - `entities/vectorindex/hnsw/config.go` (+ `pq_config.go`, `sq_config.go`, `rq_config.go`,
//!   `multivector_config.go`), `entities/vectorindex/flat/config.go`,
//!   `entities/vectorindex/dynamic/config.go` `SetDefaults`.
//!
//! The exact shape was checked against a `GET /v1/schema/{class}` answer of Weaviate 1.38.0 for a
//! class created with only `{"class", "vectorizer": "none"}`. A module vectorizer would also add
//! per-property `moduleConfig`, but the double has no modules and Weaviate adds nothing for `none`
//! (`usecases/modules/module_config_init_and_validate.go` `setSinglePropertyDefaults`).
//!
//! User-given values always win: [`overlay`] lays the user's JSON over the defaults key by key
//! (nested objects too), the way Weaviate's parsers start from `SetDefaults()` and then read each
//! key the user sent.

use serde_json::{json, Map, Value};

/// `vectorCacheMaxObjects` default (`entities/vectorindex/common` `DefaultVectorCacheMaxObjects`).
const VECTOR_CACHE_MAX_OBJECTS: i64 = 1_000_000_000_000;
/// Virtual shards per physical shard (`usecases/sharding/config` `DefaultVirtualPerPhysical`).
const VIRTUAL_PER_PHYSICAL: i64 = 128;

/// `invertedIndexConfig` of a new class. `indexTimestamps`, `indexNullState` and
/// `indexPropertyLength` are `omitempty` in Weaviate's model and so absent while false.
pub fn inverted_index() -> Value {
    json!({
        "bm25": {"b": 0.75, "k1": 1.2},
        "cleanupIntervalSeconds": 60,
        "stopwords": {"additions": null, "preset": "en", "removals": null},
        "usingBlockMaxWAND": true
    })
}

/// `replicationConfig` of a new class on a single node.
pub fn replication() -> Value {
    json!({"asyncEnabled": false, "deletionStrategy": "TimeBasedResolution", "factor": 1})
}

/// `shardingConfig` after `sharding.ParseConfig` on one node: the user may set
/// `virtualPerPhysical` and `desiredCount`; actual counts follow the desired ones. A
/// multi-tenant class gets the zero config (tenants create their shards).
pub fn sharding(user: Option<&Value>, multi_tenant: bool) -> Value {
    if multi_tenant {
        return json!({
            "actualCount": 0, "actualVirtualCount": 0, "desiredCount": 0,
            "desiredVirtualCount": 0, "function": "", "key": "", "strategy": "",
            "virtualPerPhysical": 0
        });
    }
    let int = |key: &str, default: i64| {
        user.and_then(|u| u.get(key))
            .and_then(Value::as_f64)
            .filter(|v| *v > 0.0)
            .map_or(default, |v| v as i64)
    };
    let per_physical = int("virtualPerPhysical", VIRTUAL_PER_PHYSICAL);
    let desired = int("desiredCount", 1);
    let base = json!({
        "actualCount": desired,
        "actualVirtualCount": desired.saturating_mul(per_physical),
        "desiredCount": desired,
        "desiredVirtualCount": desired.saturating_mul(per_physical),
        "function": "murmur3",
        "key": "_id",
        "strategy": "hash",
        "virtualPerPhysical": per_physical
    });
    // Other keys the user sent (`key`, `strategy`, `function`) are kept as given.
    match user {
        Some(u @ Value::Object(_)) => {
            let mut out = overlay(base.clone(), u.clone());
            if let (Value::Object(out), Value::Object(base)) = (&mut out, &base) {
                for key in [
                    "actualCount",
                    "actualVirtualCount",
                    "desiredCount",
                    "desiredVirtualCount",
                    "virtualPerPhysical",
                ] {
                    if let Some(v) = base.get(key) {
                        out.insert(key.into(), v.clone());
                    }
                }
            }
            out
        }
        _ => base,
    }
}

/// The full `vectorIndexConfig` of an `hnsw` index (keys as `GET` prints them: sorted).
pub fn hnsw() -> Value {
    json!({
        "bq": {"enabled": false},
        "cleanupIntervalSeconds": 300,
        "distance": "cosine",
        "dynamicEfFactor": 8,
        "dynamicEfMax": 500,
        "dynamicEfMin": 100,
        "ef": -1,
        "efConstruction": 128,
        "filterStrategy": "acorn",
        "flatSearchCutoff": 40000,
        "maxConnections": 32,
        "multivector": {
            "aggregation": "maxSim",
            "enabled": false,
            "muvera": {"dprojections": 16, "enabled": false, "ksim": 4, "repetitions": 10}
        },
        "pq": {
            "bitCompression": false,
            "centroids": 256,
            "enabled": false,
            "encoder": {"distribution": "log-normal", "type": "kmeans"},
            "segments": 0,
            "trainingLimit": 100000
        },
        "rq": {"bits": 8, "enabled": false, "rescoreLimit": 20},
        "skip": false,
        "skipDefaultQuantization": false,
        "sq": {"enabled": false, "rescoreLimit": 20, "trainingLimit": 100000},
        "trackDefaultQuantization": false,
        "vectorCacheMaxObjects": VECTOR_CACHE_MAX_OBJECTS
    })
}

/// The full `vectorIndexConfig` of a `flat` index.
pub fn flat() -> Value {
    let off = json!({"cache": false, "enabled": false, "rescoreLimit": -1});
    json!({
        "bq": off,
        "distance": "cosine",
        "pq": off,
        "rq": {"bits": 8, "cache": false, "enabled": false, "rescoreLimit": -1},
        "skipDefaultQuantization": false,
        "sq": off,
        "trackDefaultQuantization": false,
        "vectorCacheMaxObjects": VECTOR_CACHE_MAX_OBJECTS
    })
}

/// The full `vectorIndexConfig` of a `dynamic` index (flat until `threshold` objects, then hnsw).
pub fn dynamic() -> Value {
    json!({"distance": "cosine", "flat": flat(), "hnsw": hnsw(), "threshold": 10000})
}

/// The defaults of an index type; `None` for a type the double does not know (left as given).
pub fn vector_index(index_type: &str) -> Option<Value> {
    match index_type {
        "hnsw" => Some(hnsw()),
        "flat" => Some(flat()),
        "dynamic" => Some(dynamic()),
        _ => None,
    }
}

/// Lays `user` over `base`: objects merge key by key (recursively, base keys first, then keys
/// only the user has), a user `null` keeps the default (Weaviate reads `"distance": null` as
/// unset), any other user value replaces the default.
pub fn overlay(base: Value, user: Value) -> Value {
    match (base, user) {
        (base, Value::Null) => base,
        (Value::Object(base), Value::Object(mut user)) => {
            let mut out = Map::with_capacity(base.len() + user.len());
            for (key, default) in base {
                let merged = match user.remove(&key) {
                    Some(given) => overlay(default, given),
                    None => default,
                };
                out.insert(key, merged);
            }
            out.extend(user);
            Value::Object(out)
        }
        (_, user) => user,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_keeps_user_values_and_fills_the_rest() {
        let merged = overlay(
            hnsw(),
            json!({"efConstruction": 64, "distance": null, "pq": {"enabled": true}, "x": 1}),
        );
        assert_eq!(merged["efConstruction"], 64);
        assert_eq!(merged["distance"], "cosine");
        assert_eq!(merged["pq"]["enabled"], true);
        assert_eq!(merged["pq"]["centroids"], 256);
        assert_eq!(merged["maxConnections"], 32);
        assert_eq!(merged["x"], 1);
    }

    #[test]
    fn sharding_follows_desired_count() {
        let s = sharding(Some(&json!({"desiredCount": 2, "actualCount": 9})), false);
        assert_eq!(s["desiredCount"], 2);
        assert_eq!(s["actualCount"], 2);
        assert_eq!(s["desiredVirtualCount"], 256);
        assert_eq!(s["key"], "_id");
        assert_eq!(sharding(None, true)["virtualPerPhysical"], 0);
    }
}
