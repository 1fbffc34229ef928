//! The double fills in Weaviate's server defaults on class creation, so `GET /v1/schema` answers
//! with what the clients' `collection.config.get()` reads (`conformance/src/double/schema/defaults.rs`;
//! shape checked against a Weaviate 1.38.0 `GET /v1/schema/{class}` answer).

mod double_support;

use double_support::Client;
use reqwest::Method;
use serde_json::{json, Value};

fn hnsw() -> Value {
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
        "multivector": {"aggregation": "maxSim", "enabled": false,
            "muvera": {"dprojections": 16, "enabled": false, "ksim": 4, "repetitions": 10}},
        "pq": {"bitCompression": false, "centroids": 256, "enabled": false,
            "encoder": {"distribution": "log-normal", "type": "kmeans"}, "segments": 0,
            "trainingLimit": 100000},
        "rq": {"bits": 8, "enabled": false, "rescoreLimit": 20},
        "skip": false,
        "skipDefaultQuantization": false,
        "sq": {"enabled": false, "rescoreLimit": 20, "trainingLimit": 100000},
        "trackDefaultQuantization": false,
        "vectorCacheMaxObjects": 1_000_000_000_000_i64
    })
}

fn inverted() -> Value {
    json!({"bm25": {"b": 0.75, "k1": 1.2}, "cleanupIntervalSeconds": 60,
        "stopwords": {"additions": null, "preset": "en", "removals": null}, "usingBlockMaxWAND": true})
}

fn sharding() -> Value {
    json!({"actualCount": 1, "actualVirtualCount": 128, "desiredCount": 1,
        "desiredVirtualCount": 128, "function": "murmur3", "key": "_id", "strategy": "hash",
        "virtualPerPhysical": 128})
}

#[tokio::test]
async fn a_bare_class_reads_back_as_weaviate_fills_it_in() {
    let c = Client::start().await;
    let (status, created) = c
        .post(
            "/v1/schema",
            json!({"class": "TestClass", "vectorizer": "none"}),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let want = json!({
        "class": "TestClass",
        "invertedIndexConfig": inverted(),
        "multiTenancyConfig": {"autoTenantActivation": false, "autoTenantCreation": false, "enabled": false},
        "properties": [],
        "replicationConfig": {"asyncEnabled": false, "deletionStrategy": "TimeBasedResolution", "factor": 1},
        "shardingConfig": sharding(),
        "vectorIndexConfig": hnsw(),
        "vectorIndexType": "hnsw",
        "vectorizer": "none"
    });
    assert_eq!(created, want);
    let (status, stored) = c.get("/v1/schema/TestClass").await;
    assert_eq!(status, 200);
    assert_eq!(stored, want);
    let (_, schema) = c.get("/v1/schema").await;
    assert_eq!(schema["classes"][0], want);
    // Top-level keys in Weaviate's model order.
    let (_, text) = c.raw(Method::GET, "/v1/schema/TestClass", None).await;
    assert!(
        text.starts_with(r#"{"class":"TestClass","invertedIndexConfig":{"bm25""#),
        "{text}"
    );
}

#[tokio::test]
async fn user_values_win_over_the_defaults() {
    let c = Client::start().await;
    c.class(json!({
        "class": "Tuned",
        "invertedIndexConfig": {"bm25": {"b": 0.5, "k1": 1.5}, "indexTimestamps": true,
            "stopwords": {"preset": "none", "additions": ["x"]}},
        "vectorIndexConfig": {"efConstruction": 64, "distance": "dot",
            "pq": {"enabled": true, "segments": 8}},
        "replicationConfig": {"asyncEnabled": true},
        "shardingConfig": {"desiredCount": 2}
    }))
    .await;
    let (_, stored) = c.get("/v1/schema/Tuned").await;
    let inv = &stored["invertedIndexConfig"];
    assert_eq!(inv["bm25"], json!({"b": 0.5, "k1": 1.5}));
    assert_eq!(inv["indexTimestamps"], true);
    assert_eq!(inv["cleanupIntervalSeconds"], 60);
    assert_eq!(
        inv["stopwords"],
        json!({"additions": ["x"], "preset": "none", "removals": null})
    );
    let vic = &stored["vectorIndexConfig"];
    assert_eq!(vic["efConstruction"], 64);
    assert_eq!(vic["distance"], "dot");
    assert_eq!(vic["maxConnections"], 32);
    assert_eq!(vic["pq"]["enabled"], true);
    assert_eq!(vic["pq"]["segments"], 8);
    assert_eq!(vic["pq"]["centroids"], 256);
    assert_eq!(vic["pq"]["encoder"]["type"], "kmeans");
    assert_eq!(
        stored["replicationConfig"],
        json!({"asyncEnabled": true, "deletionStrategy": "TimeBasedResolution", "factor": 1})
    );
    assert_eq!(stored["shardingConfig"]["desiredCount"], 2);
    assert_eq!(stored["shardingConfig"]["actualCount"], 2);
    assert_eq!(stored["shardingConfig"]["desiredVirtualCount"], 256);

    // A distance the index does not know is still refused, and so is a non-object config.
    let (status, body) = c
        .post(
            "/v1/schema",
            json!({"class": "Bad", "vectorIndexConfig": {"distance": "nope"}}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = c
        .post(
            "/v1/schema",
            json!({"class": "Bad", "invertedIndexConfig": "x"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
}

#[tokio::test]
async fn named_vectors_get_their_full_index_config() {
    let c = Client::start().await;
    c.class(json!({
        "class": "Named",
        "vectorConfig": {
            "clip": {"vectorizer": {"none": {"multi2vec-clip": {"imageFields": ["image"]}}}},
            "plain": {"vectorizer": {"none": {}}, "vectorIndexType": "flat",
                "vectorIndexConfig": {"distance": "dot"}}
        }
    }))
    .await;
    let (_, stored) = c.get("/v1/schema/Named").await;
    let clip = &stored["vectorConfig"]["clip"];
    assert_eq!(clip["vectorIndexType"], "hnsw");
    assert_eq!(clip["vectorIndexConfig"], hnsw());
    assert_eq!(
        clip["vectorizer"],
        json!({"none": {"multi2vec-clip": {"imageFields": ["image"]}}})
    );
    let plain = &stored["vectorConfig"]["plain"];
    assert_eq!(plain["vectorIndexType"], "flat");
    assert_eq!(plain["vectorIndexConfig"]["distance"], "dot");
    assert_eq!(
        plain["vectorIndexConfig"]["vectorCacheMaxObjects"],
        1_000_000_000_000_i64
    );
    assert_eq!(plain["vectorIndexConfig"]["bq"]["enabled"], false);
    // A named-vector class has no class-level index or vectorizer, but every class default.
    assert!(stored.get("vectorIndexConfig").is_none(), "{stored}");
    assert!(stored.get("vectorizer").is_none(), "{stored}");
    assert_eq!(stored["invertedIndexConfig"], inverted());
    assert_eq!(stored["shardingConfig"], sharding());
}

#[tokio::test]
async fn multi_tenant_classes_get_the_zero_sharding_config() {
    let c = Client::start().await;
    c.class(json!({"class": "Tenanted", "multiTenancyConfig": {"enabled": true}}))
        .await;
    let (_, stored) = c.get("/v1/schema/Tenanted").await;
    assert_eq!(
        stored["shardingConfig"],
        json!({"actualCount": 0, "actualVirtualCount": 0, "desiredCount": 0,
            "desiredVirtualCount": 0, "function": "", "key": "", "strategy": "",
            "virtualPerPhysical": 0})
    );
    assert_eq!(stored["multiTenancyConfig"]["enabled"], true);
    assert_eq!(stored["replicationConfig"]["factor"], 1);
}

#[tokio::test]
async fn properties_get_index_defaults_nested_ones_too() {
    let c = Client::start().await;
    c.class(json!({
        "class": "Props",
        "properties": [
            {"name": "title", "dataType": ["text"]},
            {"name": "count", "dataType": ["int"], "indexRangeFilters": true},
            {"name": "image", "dataType": ["blob"]},
            {"name": "meta", "dataType": ["object"], "nestedProperties": [
                {"name": "label", "dataType": ["text"], "tokenization": "field"},
                {"name": "raw", "dataType": ["blob"]},
                {"name": "inner", "dataType": ["object"], "nestedProperties": [
                    {"name": "n", "dataType": ["number"]}
                ]}
            ]}
        ]
    }))
    .await;
    let (_, stored) = c.get("/v1/schema/Props").await;
    let p = &stored["properties"];
    assert_eq!(
        p[0],
        json!({"dataType": ["text"], "indexFilterable": true, "indexRangeFilters": false,
            "indexSearchable": true, "name": "title", "tokenization": "word"})
    );
    assert_eq!(p[1]["indexRangeFilters"], true);
    assert_eq!(p[1]["indexSearchable"], false);
    assert!(p[1].get("tokenization").is_none());
    assert!(
        p[2].get("moduleConfig").is_none(),
        "no module adds property config"
    );
    let nested = &p[3]["nestedProperties"];
    assert_eq!(
        nested[0],
        json!({"dataType": ["text"], "indexFilterable": true, "indexRangeFilters": false,
            "indexSearchable": true, "name": "label", "tokenization": "field"})
    );
    assert_eq!(nested[1]["indexFilterable"], false);
    assert_eq!(nested[1]["indexSearchable"], false);
    assert_eq!(
        nested[2]["nestedProperties"][0],
        json!({"dataType": ["number"], "indexFilterable": true, "indexRangeFilters": false,
            "indexSearchable": false, "name": "n"})
    );

    // Properties added later and auto-schema classes get the same defaults.
    let (status, added) = c
        .post(
            "/v1/schema/Props/properties",
            json!({"name": "note", "dataType": ["text"]}),
        )
        .await;
    assert_eq!(status, 200, "{added}");
    assert_eq!(added["indexSearchable"], true);
    let (status, body) = c
        .post(
            "/v1/objects",
            json!({"class": "Auto", "properties": {"word": "hi"}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, auto) = c.get("/v1/schema/Auto").await;
    assert_eq!(auto["invertedIndexConfig"], inverted());
    assert_eq!(auto["vectorIndexConfig"], hnsw());
    assert_eq!(auto["properties"][0]["tokenization"], "word");
}

#[tokio::test]
async fn updates_keep_the_defaults_and_apply_changes() {
    let c = Client::start().await;
    c.class(json!({"class": "Upd",
        "vectorConfig": {"v": {"vectorizer": {"none": {"a": 1}}}}}))
        .await;
    let (_, before) = c.get("/v1/schema/Upd").await;
    // What clients send: the class they read, with one setting changed.
    let mut changed = before.clone();
    changed["vectorConfig"]["v"]["vectorIndexConfig"]["ef"] = json!(77);
    changed["invertedIndexConfig"]["bm25"]["b"] = json!(0.6);
    let (status, body) = c.call(Method::PUT, "/v1/schema/Upd", Some(changed)).await;
    assert_eq!(status, 200, "{body}");
    let (_, after) = c.get("/v1/schema/Upd").await;
    assert_eq!(after["vectorConfig"]["v"]["vectorIndexConfig"]["ef"], 77);
    assert_eq!(
        after["vectorConfig"]["v"]["vectorIndexConfig"]["maxConnections"],
        32
    );
    assert_eq!(after["invertedIndexConfig"]["bm25"]["b"], 0.6);
    assert_eq!(after["shardingConfig"], sharding());

    // A minimal update leaves everything stored in place.
    let (status, body) = c
        .call(
            Method::PUT,
            "/v1/schema/Upd",
            Some(
                json!({"class": "Upd", "vectorConfig": {"v": {"vectorizer": {"none": {"a": 1}}}}}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, again) = c.get("/v1/schema/Upd").await;
    assert_eq!(again, after);
}
