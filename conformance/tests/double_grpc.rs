//! The double's gRPC edge over loopback with a real tonic client: import (BatchObjects), Search
//! (near_vector / near_object / filters / hybrid / properties / metadata), Aggregate, health,
//! API-key metadata and Weaviate's error texts (spec `weaviate-multi2vec-clip.md` §8).

use std::collections::HashMap;

use conformance::double::{self, ApiKey, Double};
use serde_json::json;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use weaviate_proto::v1::weaviate_client::WeaviateClient;
use weaviate_proto::v1::{
    aggregate_reply, aggregate_request, batch_object, filter_target, filters, list_value, value,
    vectors::VectorType, AggregateRequest, BatchObject, BatchObjectsRequest, FilterTarget, Filters,
    Hybrid, MetadataRequest, NearObject, NearTextSearch, NearVector, NumberArrayProperties,
    PropertiesRequest, SearchReply, SearchRequest, Targets, TextArrayProperties, Vectors,
};

const A: &str = "00000000-0000-0000-0000-00000000000a";
const B: &str = "00000000-0000-0000-0000-00000000000b";
const C: &str = "00000000-0000-0000-0000-00000000000c";
const D: &str = "00000000-0000-0000-0000-00000000000d";

fn le(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn vectors(name: &str, v: &[f32]) -> Vectors {
    Vectors {
        name: name.into(),
        vector_bytes: le(v),
        r#type: VectorType::SingleFp32 as i32,
        ..Vectors::default()
    }
}

fn props(fields: serde_json::Value) -> prost_types::Struct {
    fn conv(v: &serde_json::Value) -> prost_types::Value {
        use prost_types::value::Kind;
        let kind = match v {
            serde_json::Value::String(s) => Kind::StringValue(s.clone()),
            serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap()),
            serde_json::Value::Bool(b) => Kind::BoolValue(*b),
            serde_json::Value::Object(m) => Kind::StructValue(prost_types::Struct {
                fields: m.iter().map(|(k, v)| (k.clone(), conv(v))).collect(),
            }),
            _ => Kind::NullValue(0),
        };
        prost_types::Value { kind: Some(kind) }
    }
    prost_types::Struct {
        fields: fields
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), conv(v)))
            .collect(),
    }
}

struct Harness {
    client: WeaviateClient<Channel>,
    channel: Channel,
}

async fn start(double: Double) -> Harness {
    let (addr, _task) = double::grpc::spawn(double).await.unwrap();
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    Harness {
        client: WeaviateClient::new(channel.clone()),
        channel,
    }
}

fn shape(id: &str, name: &str, size: f64, v: [f32; 3]) -> BatchObject {
    BatchObject {
        uuid: id.into(),
        collection: "Shape".into(),
        properties: Some(batch_object::Properties {
            non_ref_properties: Some(props(
                json!({"name": name, "size": size, "weight": size / 2.0, "round": name.contains("circle"),
                       "meta": {"colour": name.split(' ').next().unwrap()}}),
            )),
            text_array_properties: vec![TextArrayProperties {
                prop_name: "tags".into(),
                values: name.split(' ').map(str::to_owned).collect(),
            }],
            number_array_properties: vec![NumberArrayProperties {
                prop_name: "scores".into(),
                values_bytes: [size, 0.5].iter().flat_map(|x| x.to_le_bytes()).collect(),
                ..NumberArrayProperties::default()
            }],
            ..batch_object::Properties::default()
        }),
        vector_bytes: le(&v),
        ..BatchObject::default()
    }
}

/// A double with class `Shape` (legacy vector) holding four objects imported over gRPC.
async fn shapes() -> (Double, Harness) {
    let d = Double::new();
    d.store()
        .create_class(json!({"class": "Shape", "properties": [
            {"name": "name", "dataType": ["text"]}, {"name": "size", "dataType": ["int"]},
            {"name": "weight", "dataType": ["number"]}, {"name": "round", "dataType": ["boolean"]},
            {"name": "tags", "dataType": ["text[]"]}, {"name": "scores", "dataType": ["number[]"]},
            {"name": "meta", "dataType": ["object"], "nestedProperties": [{"name": "colour", "dataType": ["text"]}]}]}))
        .unwrap();
    let mut h = start(d.clone()).await;
    let reply = h
        .client
        .batch_objects(BatchObjectsRequest {
            objects: vec![
                shape(A, "red circle", 3.0, [1.0, 0.0, 0.0]),
                shape(B, "blue circle", 5.0, [0.9, 0.1, 0.0]),
                shape(C, "red square", 2.0, [0.0, 1.0, 0.0]),
                shape(D, "green triangle", 7.0, [-1.0, 0.0, 0.0]),
            ],
            consistency_level: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(reply.errors.is_empty(), "{:?}", reply.errors);
    (d, h)
}

fn ids(reply: &SearchReply) -> Vec<String> {
    reply
        .results
        .iter()
        .map(|r| r.metadata.as_ref().unwrap().id.clone())
        .collect()
}

fn near(v: &[f32]) -> NearVector {
    NearVector {
        vectors: vec![vectors("", v)],
        ..NearVector::default()
    }
}

fn all_meta() -> MetadataRequest {
    MetadataRequest {
        uuid: true,
        distance: true,
        certainty: true,
        vector: true,
        creation_time_unix: true,
        last_update_time_unix: true,
        ..MetadataRequest::default()
    }
}

#[tokio::test]
async fn health_is_serving() {
    let h = start(Double::new()).await;
    let mut health = HealthClient::new(h.channel.clone());
    // Any service name: the TypeScript v3 client asks for "/grpc.health.v1.Health/Check".
    for service in ["", "weaviate.v1.Weaviate", "/grpc.health.v1.Health/Check"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }
}

#[tokio::test]
async fn near_vector_orders_by_distance_with_metadata_and_typed_properties() {
    let (_d, mut h) = shapes().await;
    let reply = h
        .client
        .search(SearchRequest {
            collection: "Shape".into(),
            limit: 3,
            near_vector: Some(near(&[1.0, 0.0, 0.0])),
            metadata: Some(all_meta()),
            properties: Some(PropertiesRequest {
                return_all_nonref_properties: true,
                ..PropertiesRequest::default()
            }),
            ..SearchRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(&reply), [A, B, C]);
    let first = &reply.results[0];
    let m = first.metadata.as_ref().unwrap();
    assert_eq!(m.id_as_bytes, uuid::Uuid::parse_str(A).unwrap().as_bytes());
    assert!(m.distance_present && m.certainty_present);
    assert_eq!((m.distance, m.certainty), (0.0, 1.0));
    assert_eq!(m.vector_bytes, le(&[1.0, 0.0, 0.0]));
    assert!(m.creation_time_unix_present && m.creation_time_unix > 0);
    let second = reply.results[1].metadata.as_ref().unwrap();
    let expected = 1.0 - 0.9 / (0.81f32 + 0.01).sqrt();
    assert!((second.distance - expected).abs() < 1e-6);

    let fields: &HashMap<String, weaviate_proto::v1::Value> = &first
        .properties
        .as_ref()
        .unwrap()
        .non_ref_props
        .as_ref()
        .unwrap()
        .fields;
    let kind = |k: &str| fields[k].kind.clone().unwrap();
    assert_eq!(kind("name"), value::Kind::TextValue("red circle".into()));
    assert_eq!(kind("size"), value::Kind::IntValue(3));
    assert_eq!(kind("weight"), value::Kind::NumberValue(1.5));
    assert_eq!(kind("round"), value::Kind::BoolValue(true));
    let value::Kind::ListValue(tags) = kind("tags") else {
        panic!("tags: {:?}", kind("tags"))
    };
    assert!(
        matches!(tags.kind, Some(list_value::Kind::TextValues(t)) if t.values == ["red", "circle"])
    );
    let value::Kind::ListValue(scores) = kind("scores") else {
        panic!()
    };
    let Some(list_value::Kind::NumberValues(n)) = scores.kind else {
        panic!()
    };
    assert_eq!(
        n.values,
        [3.0f64, 0.5]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect::<Vec<_>>()
    );
    let value::Kind::ObjectValue(meta) = kind("meta") else {
        panic!()
    };
    assert_eq!(
        meta.fields["colour"].kind,
        Some(value::Kind::TextValue("red".into()))
    );
}

#[tokio::test]
async fn listed_properties_filters_offset_and_thresholds() {
    let (_d, mut h) = shapes().await;
    let red = Filters {
        operator: filters::Operator::Equal as i32,
        target: Some(FilterTarget {
            target: Some(filter_target::Target::Property("name".into())),
        }),
        test_value: Some(filters::TestValue::ValueText("red".into())),
        ..Filters::default()
    };
    let reply = h
        .client
        .search(SearchRequest {
            collection: "Shape".into(),
            filters: Some(red.clone()),
            properties: Some(PropertiesRequest {
                non_ref_properties: vec!["name".into()],
                ..PropertiesRequest::default()
            }),
            ..SearchRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(&reply), [A, C]);
    let fields = &reply.results[0]
        .properties
        .as_ref()
        .unwrap()
        .non_ref_props
        .as_ref()
        .unwrap()
        .fields;
    assert_eq!(fields.keys().collect::<Vec<_>>(), ["name"]);

    // AND of a deprecated `on` path and an int comparison, vector-ordered, with offset.
    let big = Filters {
        operator: filters::Operator::GreaterThanEqual as i32,
        on: vec!["size".into()],
        test_value: Some(filters::TestValue::ValueInt(3)),
        ..Filters::default()
    };
    let reply = h
        .client
        .search(SearchRequest {
            collection: "Shape".into(),
            near_vector: Some(near(&[-1.0, 0.0, 0.0])),
            filters: Some(Filters {
                operator: filters::Operator::And as i32,
                filters: vec![big],
                ..Filters::default()
            }),
            offset: 1,
            ..SearchRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(&reply), [B, A]);

    // distance threshold without a limit returns everything within it.
    let reply = h
        .client
        .search(SearchRequest {
            collection: "Shape".into(),
            near_vector: Some(NearVector {
                distance: Some(0.01),
                ..near(&[1.0, 0.0, 0.0])
            }),
            ..SearchRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(&reply), [A, B]);
}

#[tokio::test]
async fn near_object_and_named_targets() {
    let (_d, mut h) = shapes().await;
    let reply = h
        .client
        .search(SearchRequest {
            collection: "Shape".into(),
            near_object: Some(NearObject {
                id: C.into(),
                ..NearObject::default()
            }),
            limit: 2,
            ..SearchRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(&reply), [C, B]);

    let d = Double::new();
    d.store()
        .create_class(json!({"class": "Multi", "vectorConfig": {
            "img": {"vectorizer": {"none": {}}, "vectorIndexType": "hnsw"},
            "txt": {"vectorizer": {"none": {}}, "vectorIndexType": "hnsw"}}}))
        .unwrap();
    let mut h = start(d).await;
    let obj = |id: &str, img: [f32; 2], txt: [f32; 2]| BatchObject {
        uuid: id.into(),
        collection: "Multi".into(),
        vectors: vec![vectors("img", &img), vectors("txt", &txt)],
        ..BatchObject::default()
    };
    let reply = h
        .client
        .batch_objects(BatchObjectsRequest {
            objects: vec![
                obj(A, [1.0, 0.0], [0.0, 1.0]),
                obj(B, [0.0, 1.0], [1.0, 0.0]),
            ],
            consistency_level: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(reply.errors.is_empty(), "{:?}", reply.errors);
    let search = |target: &str| SearchRequest {
        collection: "Multi".into(),
        near_vector: Some(NearVector {
            targets: Some(Targets {
                target_vectors: vec![target.into()],
                ..Targets::default()
            }),
            ..near(&[1.0, 0.0])
        }),
        metadata: Some(MetadataRequest {
            vectors: vec!["txt".into()],
            ..MetadataRequest::default()
        }),
        ..SearchRequest::default()
    };
    let img = h.client.search(search("img")).await.unwrap().into_inner();
    assert_eq!(ids(&img), [A, B]);
    let txt = h.client.search(search("txt")).await.unwrap().into_inner();
    assert_eq!(ids(&txt), [B, A]);
    let m = txt.results[0].metadata.as_ref().unwrap();
    assert_eq!(m.vectors, [vectors("txt", &[1.0, 0.0])]);
    let err = h
        .client
        .search(SearchRequest {
            collection: "Multi".into(),
            near_vector: Some(near(&[1.0, 0.0])),
            ..SearchRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unknown);
    assert!(
        err.message()
            .contains("multiple vectorizers configuration found"),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn hybrid_with_a_vector_ranks_the_fused_score() {
    let (_d, mut h) = shapes().await;
    let reply = h
        .client
        .search(SearchRequest {
            collection: "Shape".into(),
            hybrid_search: Some(Hybrid {
                query: "triangle".into(),
                vectors: vec![vectors("", &[1.0, 0.0, 0.0])],
                alpha_param: Some(1.0),
                use_alpha_param: true,
                ..Hybrid::default()
            }),
            metadata: Some(MetadataRequest {
                score: true,
                ..MetadataRequest::default()
            }),
            limit: 2,
            ..SearchRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(&reply), [A, B]);
    assert!(reply.results[0].metadata.as_ref().unwrap().score_present);
    // alpha 0 (the deprecated field, unset = 0): keyword only.
    let reply = h
        .client
        .search(SearchRequest {
            collection: "Shape".into(),
            hybrid_search: Some(Hybrid {
                query: "triangle".into(),
                ..Hybrid::default()
            }),
            ..SearchRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(&reply), [D]);
}

#[tokio::test]
async fn error_texts_and_codes() {
    let (_d, mut h) = shapes().await;
    let cases = [
        (
            NearVector {
                certainty: Some(0.5),
                distance: Some(0.5),
                ..near(&[1.0, 0.0, 0.0])
            },
            "near_vector: cannot provide distance and certainty",
        ),
        (NearVector::default(), "near_vector: vector is required"),
        (
            NearVector {
                vectors: vec![vectors("", &[1.0]), vectors("", &[1.0])],
                ..NearVector::default()
            },
            "near_vector: only 1 vector supported, found 2 vectors",
        ),
    ];
    for (nv, want) in cases {
        let err = h
            .client
            .search(SearchRequest {
                collection: "Shape".into(),
                near_vector: Some(nv),
                ..SearchRequest::default()
            })
            .await
            .unwrap_err();
        assert_eq!((err.code(), err.message()), (Code::Unknown, want));
    }
    let err = h
        .client
        .search(SearchRequest {
            collection: "Shape".into(),
            near_text: Some(NearTextSearch {
                query: vec!["a red circle".into()],
                ..NearTextSearch::default()
            }),
            ..SearchRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.message(), "explorer: get class: vectorize params: could not vectorize input for collection Shape with search-type nearText. Make sure a vectorizer module is configured for this collection");
    let err = h
        .client
        .search(SearchRequest {
            collection: "Shape".into(),
            hybrid_search: Some(Hybrid {
                query: "red".into(),
                use_alpha_param: true,
                ..Hybrid::default()
            }),
            ..SearchRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        "VectorFromInput was called without vectorizer on class Shape for input red"
    );
}

#[tokio::test]
async fn batch_reports_per_object_errors() {
    let (d, mut h) = shapes().await;
    let reply = h
        .client
        .batch_objects(BatchObjectsRequest {
            objects: vec![
                BatchObject {
                    collection: "Nope".into(),
                    uuid: A.into(),
                    ..BatchObject::default()
                },
                shape(A, "red circle", 4.0, [1.0, 0.0, 0.0]),
                BatchObject {
                    vector_bytes: le(&[1.0, 0.0]),
                    ..shape(C, "red square", 2.0, [0.0; 3])
                },
            ],
            consistency_level: None,
        })
        .await
        .unwrap()
        .into_inner();
    let errors: Vec<(i32, &str)> = reply
        .errors
        .iter()
        .map(|e| (e.index, e.error.as_str()))
        .collect();
    assert_eq!(errors[0], (0, "could not find class Nope in schema"));
    assert_eq!(errors[1].0, 2);
    assert!(
        errors[1].1.contains("new node has a vector with length 2"),
        "{errors:?}"
    );
    assert_eq!(errors.len(), 2);
    let stored = d
        .store()
        .get_object(Some("Shape"), uuid::Uuid::parse_str(A).unwrap(), None)
        .unwrap();
    assert_eq!(stored.properties["size"], json!(4.0));
}

#[tokio::test]
async fn aggregate_counts_with_vector_search_and_filters() {
    let (_d, mut h) = shapes().await;
    let count = |r: weaviate_proto::v1::AggregateReply| match r.result {
        Some(aggregate_reply::Result::SingleResult(s)) => s,
        other => panic!("{other:?}"),
    };
    let all = h
        .client
        .aggregate(AggregateRequest {
            collection: "Shape".into(),
            objects_count: true,
            aggregations: vec![aggregate_request::Aggregation {
                property: "size".into(),
                aggregation: Some(aggregate_request::aggregation::Aggregation::Int(
                    aggregate_request::aggregation::Integer {
                        sum: true,
                        maximum: true,
                        ..Default::default()
                    },
                )),
            }],
            ..AggregateRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    let single = count(all);
    assert_eq!(single.objects_count, Some(4));
    let agg = &single.aggregations.unwrap().aggregations[0];
    let Some(aggregate_reply::aggregations::aggregation::Aggregation::Int(i)) = &agg.aggregation
    else {
        panic!("{agg:?}")
    };
    assert_eq!((i.sum, i.maximum, i.mean), (Some(17), Some(7), None));

    let near_limit = h
        .client
        .aggregate(AggregateRequest {
            collection: "Shape".into(),
            objects_count: true,
            object_limit: Some(3),
            search: Some(aggregate_request::Search::NearVector(near(&[
                1.0, 0.0, 0.0,
            ]))),
            ..AggregateRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(count(near_limit).objects_count, Some(3));
    let near_certainty = h
        .client
        .aggregate(AggregateRequest {
            collection: "Shape".into(),
            objects_count: true,
            search: Some(aggregate_request::Search::NearVector(NearVector {
                certainty: Some(0.9),
                ..near(&[1.0, 0.0, 0.0])
            })),
            ..AggregateRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(count(near_certainty).objects_count, Some(2));
    let err = h
        .client
        .aggregate(AggregateRequest {
            collection: "Shape".into(),
            objects_count: true,
            search: Some(aggregate_request::Search::NearVector(near(&[
                1.0, 0.0, 0.0,
            ]))),
            ..AggregateRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        "must provide certainty or objectLimit with vector search"
    );
}

#[tokio::test]
async fn api_keys_in_metadata() {
    let d = Double::new().with_api_keys([
        ApiKey::new("admin-key", "admin"),
        ApiKey::new("other-key", "other").only_classes(["Other"]),
    ]);
    d.store().create_class(json!({"class": "Shape"})).unwrap();
    let mut h = start(d).await;
    let req = |key: Option<&str>| {
        let mut r = Request::new(SearchRequest {
            collection: "Shape".into(),
            ..SearchRequest::default()
        });
        if let Some(k) = key {
            r.metadata_mut().insert(
                "authorization",
                MetadataValue::try_from(format!("Bearer {k}")).unwrap(),
            );
        }
        r
    };
    let err = h.client.search(req(None)).await.unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (
            Code::Unauthenticated,
            "anonymous access not enabled, please provide an auth scheme such as OIDC"
        )
    );
    let err = h.client.search(req(Some("wrong"))).await.unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (Code::Unauthenticated, "unauthorized: invalid api key")
    );
    let err = h.client.search(req(Some("other-key"))).await.unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (
            Code::PermissionDenied,
            "forbidden: user 'other' has insufficient permissions to access class Shape"
        )
    );
    assert!(h.client.search(req(Some("admin-key"))).await.is_ok());
    // Health stays reachable without a key (clients check it at connect).
    let mut health = HealthClient::new(h.channel.clone());
    assert!(health
        .check(HealthCheckRequest {
            service: String::new()
        })
        .await
        .is_ok());
}

#[tokio::test]
async fn certainty_needs_a_cosine_index() {
    let d = Double::new();
    d.store()
        .create_class(json!({"class": "Dotty", "vectorIndexConfig": {"distance": "dot"}}))
        .unwrap();
    let mut h = start(d).await;
    let search = |certainty: bool| SearchRequest {
        collection: "Dotty".into(),
        near_vector: Some(near(&[1.0, 0.0])),
        metadata: Some(MetadataRequest {
            certainty,
            distance: true,
            ..MetadataRequest::default()
        }),
        ..SearchRequest::default()
    };
    let err = h.client.search(search(true)).await.unwrap_err();
    assert_eq!(
        err.message(),
        "can't compute and return certainty when vector index is configured with dot distance"
    );
    assert!(h.client.search(search(false)).await.is_ok());
}

#[tokio::test]
async fn aggregate_text_and_boolean_metrics() {
    use aggregate_reply::aggregations::aggregation::Aggregation as Rep;
    use aggregate_request::aggregation::{Aggregation as Req, Boolean, Text};
    let (_d, mut h) = shapes().await;
    let reply = h
        .client
        .aggregate(AggregateRequest {
            collection: "Shape".into(),
            aggregations: vec![
                aggregate_request::Aggregation {
                    property: "tags".into(),
                    aggregation: Some(Req::Text(Text {
                        count: true,
                        top_occurences: true,
                        top_occurences_limit: Some(2),
                        ..Default::default()
                    })),
                },
                aggregate_request::Aggregation {
                    property: "round".into(),
                    aggregation: Some(Req::Boolean(Boolean {
                        total_true: true,
                        percentage_true: true,
                        ..Default::default()
                    })),
                },
            ],
            ..AggregateRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    let Some(aggregate_reply::Result::SingleResult(single)) = reply.result else {
        panic!()
    };
    assert_eq!(single.objects_count, None);
    let aggs = single.aggregations.unwrap().aggregations;
    let Some(Rep::Text(text)) = &aggs[0].aggregation else {
        panic!("{aggs:?}")
    };
    assert_eq!(text.count, Some(8));
    let top: Vec<(&str, i64)> = text
        .top_occurences
        .as_ref()
        .unwrap()
        .items
        .iter()
        .map(|i| (i.value.as_str(), i.occurs))
        .collect();
    assert_eq!(top, [("circle", 2), ("red", 2)]);
    let Some(Rep::Boolean(b)) = &aggs[1].aggregation else {
        panic!("{aggs:?}")
    };
    assert_eq!(
        (b.total_true, b.percentage_true, b.total_false),
        (Some(2), Some(0.5), None)
    );
}
