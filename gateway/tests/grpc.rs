//! The gRPC endpoint over real sockets: a tonic client (as the Python v4 / TypeScript v3 clients
//! speak it) → clipgate's gRPC listener → the Weaviate double's gRPC API, which shares its store
//! with the double's REST API. Expected results come from the same searches over GraphQL
//! (`nearVector` with vectors computed by the fixture model directly) and from the stored data.

mod common;
mod import_support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use conformance::double::Double;
use gateway::config::Config;
use gateway::grpc::wire;
use gateway::grpc::{self, GrpcState};
use import_support::{create_class, id, image_b64, post, texts, SHAPES};
use prost::Message;
use serde_json::{json, Value};
use tonic::transport::Channel;
use weaviate_proto::v1::{
    batch_object, near_text_search, vectors::VectorType, weaviate_client::WeaviateClient,
    AggregateRequest, BatchObject, BatchObjectsRequest, Hybrid, MetadataRequest, NearImageSearch,
    NearTextSearch, NearVector, PropertiesRequest, SearchRequest, Targets, Vectors,
};

use common::TestEnv;

struct GrpcEnv {
    env: TestEnv,
    client: WeaviateClient<Channel>,
}

/// The double (REST + gRPC, one store), a gateway with its REST and gRPC listeners.
async fn start() -> GrpcEnv {
    let double = Double::new();
    let (grpc_addr, _task) = conformance::double::grpc::spawn(double.clone())
        .await
        .expect("double gRPC starts");
    let config = Config {
        weaviate_grpc_url: Some(format!("http://{grpc_addr}")),
        ..Config::default()
    };
    let env = common::start_double_with(double, config).await;
    let client = connect(&env).await;
    GrpcEnv { env, client }
}

async fn connect(env: &TestEnv) -> WeaviateClient<Channel> {
    WeaviateClient::new(channel(env).await)
}

/// A channel to a new gRPC listener of the gateway of `env`.
async fn channel(env: &TestEnv) -> Channel {
    let state = GrpcState::new(env.state.clone()).expect("gRPC state");
    let (addr, _task) = grpc::spawn_with(state).await.expect("gRPC listener");
    Channel::from_shared(format!("http://{addr}"))
        .expect("url")
        .connect()
        .await
        .expect("connects")
}

fn clip_class(name: &str) -> Value {
    json!({
        "class": name,
        "vectorizer": "multi2vec-clip",
        "moduleConfig": {"multi2vec-clip": {"imageFields": ["image"], "textFields": ["caption"]}},
        "properties": [
            {"name": "caption", "dataType": ["text"]},
            {"name": "image", "dataType": ["blob"]}
        ]
    })
}

fn caption(shape: &str) -> String {
    format!("a picture of a {}", shape.replace('-', " "))
}

fn batch_object(class: &str, i: usize, shape: &str) -> BatchObject {
    let mut fields = BTreeMap::new();
    for (k, v) in [("caption", caption(shape)), ("image", image_b64(shape))] {
        fields.insert(
            k.to_string(),
            prost_types::Value {
                kind: Some(prost_types::value::Kind::StringValue(v)),
            },
        );
    }
    BatchObject {
        uuid: id(i),
        collection: class.to_string(),
        properties: Some(batch_object::Properties {
            non_ref_properties: Some(prost_types::Struct { fields }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Imports the ten fixture shapes over gRPC; asserts no object failed.
async fn import_shapes(g: &mut GrpcEnv, class: &str) {
    create_class(&g.env, &clip_class(class)).await;
    let objects = SHAPES
        .iter()
        .enumerate()
        .map(|(i, s)| batch_object(class, i, s))
        .collect();
    let reply = g
        .client
        .batch_objects(BatchObjectsRequest {
            objects,
            consistency_level: None,
        })
        .await
        .expect("batch succeeds")
        .into_inner();
    assert!(reply.errors.is_empty(), "errors: {:?}", reply.errors);
}

fn le_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// `(id, distance)` of a GraphQL Get with the given search argument, through the gateway.
async fn graphql_hits(env: &TestEnv, class: &str, search: &str) -> Vec<(String, f32)> {
    let query = format!("{{Get{{{class}({search}){{_additional{{id distance}}}}}}}}");
    let (status, body) = post(env, "/v1/graphql", &json!({"query": query})).await;
    assert_eq!(status, 200, "{body}");
    let hits = body["data"]["Get"][class]
        .as_array()
        .unwrap_or_else(|| panic!("no results: {body}"));
    hits.iter()
        .map(|h| {
            (
                h["_additional"]["id"].as_str().expect("id").to_string(),
                h["_additional"]["distance"].as_f64().expect("distance") as f32,
            )
        })
        .collect()
}

fn vector_literal(v: &[f32]) -> String {
    let parts: Vec<String> = v.iter().map(|x| format!("{x:?}")).collect();
    format!("[{}]", parts.join(","))
}

fn search(class: &str) -> SearchRequest {
    SearchRequest {
        collection: class.to_string(),
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

async fn grpc_hits(g: &mut GrpcEnv, request: SearchRequest) -> Vec<(String, f32)> {
    let reply = g
        .client
        .search(request)
        .await
        .expect("search succeeds")
        .into_inner();
    reply
        .results
        .iter()
        .map(|r| {
            let m = r.metadata.as_ref().expect("metadata");
            assert!(m.distance_present);
            (m.id.clone(), m.distance)
        })
        .collect()
}

#[tokio::test]
async fn batch_import_stores_the_module_vectors() {
    let mut g = start().await;
    import_shapes(&mut g, "Shape").await;
    // Each object's vector: mean of its caption's and image's vectors (spec §5.3), as the REST
    // import computes it.
    for (i, shape) in SHAPES.iter().enumerate() {
        let stored = import_support::stored(&g.env, "Shape", &id(i)).await;
        let text = texts(&g.env, &[&caption(shape)]).await;
        let image = import_support::images(&g.env, &[&image_b64(shape)]).await;
        let expected = import_support::expected(&[text[0].clone(), image[0].clone()], None);
        import_support::assert_bits(
            &import_support::legacy_vector(&stored).expect("vector stored"),
            &expected,
        );
    }
}

#[tokio::test]
async fn near_text_with_moves_matches_graphql() {
    let mut g = start().await;
    import_shapes(&mut g, "Shape").await;
    let request = SearchRequest {
        near_text: Some(NearTextSearch {
            query: vec!["a red shape".into()],
            move_to: Some(near_text_search::Move {
                force: 0.5,
                concepts: vec!["circle".into()],
                uuids: vec![id(0)],
            }),
            move_away: Some(near_text_search::Move {
                force: 0.25,
                concepts: vec!["square".into()],
                uuids: vec![],
            }),
            ..Default::default()
        }),
        ..search("Shape")
    };
    let via_grpc = grpc_hits(&mut g, request).await;
    let via_graphql = graphql_hits(
        &g.env,
        "Shape",
        &format!(
            r#"limit: 10, nearText: {{concepts: ["a red shape"], moveTo: {{force: 0.5, concepts: ["circle"], objects: [{{id: "{}"}}]}}, moveAwayFrom: {{force: 0.25, concepts: ["square"]}}}}"#,
            id(0)
        ),
    )
    .await;
    assert_eq!(via_grpc.len(), 10);
    assert_eq!(via_grpc, via_graphql);
}

#[tokio::test]
async fn near_text_and_near_image_rank_like_near_vector() {
    let mut g = start().await;
    import_shapes(&mut g, "Shape").await;
    let text = texts(&g.env, &["a red circle"]).await.remove(0);
    let via_grpc = grpc_hits(
        &mut g,
        SearchRequest {
            near_text: Some(NearTextSearch {
                query: vec!["a red circle".into()],
                ..Default::default()
            }),
            ..search("Shape")
        },
    )
    .await;
    let expected = graphql_hits(
        &g.env,
        "Shape",
        &format!(
            "limit: 10, nearVector: {{vector: {}}}",
            vector_literal(&text)
        ),
    )
    .await;
    assert_eq!(via_grpc, expected);
    assert_eq!(via_grpc[0].0, id(7), "red-circle first");

    let image = image_b64("blue-square");
    let image_vector = import_support::images(&g.env, &[&image]).await.remove(0);
    let via_grpc = grpc_hits(
        &mut g,
        SearchRequest {
            near_image: Some(NearImageSearch {
                image,
                distance: Some(1.5),
                ..Default::default()
            }),
            ..search("Shape")
        },
    )
    .await;
    let expected = graphql_hits(
        &g.env,
        "Shape",
        &format!(
            "limit: 10, nearVector: {{vector: {}, distance: 1.5}}",
            vector_literal(&image_vector)
        ),
    )
    .await;
    assert_eq!(via_grpc, expected);
    assert_eq!(via_grpc[0].0, id(1), "blue-square first");
}

#[tokio::test]
async fn aggregate_over_near_text_counts_the_objects_within_the_limit() {
    let mut g = start().await;
    import_shapes(&mut g, "Shape").await;
    use weaviate_proto::v1::aggregate_reply::Result as AggResult;
    use weaviate_proto::v1::aggregate_request::Search;
    let reply = g
        .client
        .aggregate(AggregateRequest {
            collection: "Shape".into(),
            objects_count: true,
            object_limit: Some(3),
            search: Some(Search::NearText(NearTextSearch {
                query: vec!["a star".into()],
                ..Default::default()
            })),
            ..Default::default()
        })
        .await
        .expect("aggregate succeeds")
        .into_inner();
    match reply.result {
        Some(AggResult::SingleResult(single)) => assert_eq!(single.objects_count, Some(3)),
        other => panic!("unexpected reply {other:?}"),
    }
    // Without certainty or objectLimit Weaviate refuses a vector search (spec §10.9).
    let status = g
        .client
        .aggregate(AggregateRequest {
            collection: "Shape".into(),
            objects_count: true,
            search: Some(Search::NearText(NearTextSearch {
                query: vec!["a star".into()],
                ..Default::default()
            })),
            ..Default::default()
        })
        .await
        .expect_err("refused");
    assert_eq!(status.code(), tonic::Code::Unknown);
    assert_eq!(
        status.message(),
        "must provide certainty or objectLimit with vector search"
    );
}

#[tokio::test]
async fn refusals_carry_weaviates_texts() {
    let mut g = start().await;
    import_shapes(&mut g, "Shape").await;
    let both = SearchRequest {
        near_image: Some(NearImageSearch {
            image: image_b64("red-circle"),
            certainty: Some(0.5),
            distance: Some(0.5),
            ..Default::default()
        }),
        ..search("Shape")
    };
    let status = g.client.search(both).await.expect_err("refused");
    assert_eq!(status.code(), tonic::Code::Unknown);
    assert_eq!(
        status.message(),
        "near_image: cannot provide distance and certainty"
    );
    let bad_uuid = SearchRequest {
        near_text: Some(NearTextSearch {
            query: vec!["x".into()],
            move_to: Some(near_text_search::Move {
                force: 0.5,
                concepts: vec![],
                uuids: vec!["nope".into()],
            }),
            ..Default::default()
        }),
        ..search("Shape")
    };
    let status = g.client.search(bad_uuid).await.expect_err("refused");
    assert_eq!(status.message(), "invalid UUID length: 4");
    let hybrid_conflict = SearchRequest {
        hybrid_search: Some(Hybrid {
            near_text: Some(NearTextSearch {
                query: vec!["x".into()],
                ..Default::default()
            }),
            near_vector: Some(NearVector::default()),
            ..Default::default()
        }),
        ..search("Shape")
    };
    let status = g.client.search(hybrid_conflict).await.expect_err("refused");
    assert_eq!(
        status.message(),
        "cannot combine nearText and nearVector in hybrid search"
    );
    // Bad base64 reaches the model and fails the way the module reports it, never a panic.
    let bad_image = SearchRequest {
        near_image: Some(NearImageSearch {
            image: "not base64!".into(),
            ..Default::default()
        }),
        ..search("Shape")
    };
    let status = g.client.search(bad_image).await.expect_err("refused");
    assert!(
        status.message().contains("vectorize image"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn a_class_without_the_module_is_forwarded_unchanged() {
    let mut g = start().await;
    let (status, body) = post(
        &g.env,
        "/v1/schema",
        &json!({"class": "Plain", "vectorizer": "none", "properties": [{"name": "caption", "dataType": ["text"]}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mut direct =
        WeaviateClient::connect(g.env.state.config.upstream_grpc_url().expect("grpc url"))
            .await
            .expect("double gRPC");
    let request = SearchRequest {
        near_text: Some(NearTextSearch {
            query: vec!["x".into()],
            ..Default::default()
        }),
        ..search("Plain")
    };
    let through = g.client.search(request.clone()).await;
    let straight = direct.search(request).await;
    match (through, straight) {
        (Err(a), Err(b)) => {
            assert_eq!(a.code(), b.code());
            assert_eq!(a.message(), b.message());
        }
        (Ok(a), Ok(b)) => assert_eq!(a.into_inner().results, b.into_inner().results),
        (a, b) => panic!("gateway {a:?} vs upstream {b:?}"),
    }
}

#[tokio::test]
async fn batch_reports_failed_objects_at_their_index_and_stores_the_rest() {
    let mut g = start().await;
    create_class(&g.env, &clip_class("Shape")).await;
    let mut bad = batch_object("Shape", 1, "red-circle");
    if let Some(p) = bad
        .properties
        .as_mut()
        .and_then(|p| p.non_ref_properties.as_mut())
    {
        p.fields.insert(
            "image".into(),
            prost_types::Value {
                kind: Some(prost_types::value::Kind::StringValue(
                    "bm90IGFuIGltYWdl".into(),
                )),
            },
        );
    }
    let objects = vec![
        batch_object("Shape", 0, "blue-circle"),
        bad,
        batch_object("Missing", 2, "red-square"),
        batch_object("Shape", 3, "yellow-star"),
    ];
    let reply = g
        .client
        .batch_objects(BatchObjectsRequest {
            objects,
            consistency_level: None,
        })
        .await
        .expect("batch answers")
        .into_inner();
    let indexes: Vec<i32> = reply.errors.iter().map(|e| e.index).collect();
    assert_eq!(indexes, vec![1, 2], "{:?}", reply.errors);
    for i in [0, 3] {
        import_support::stored(&g.env, "Shape", &id(i)).await;
    }
    let missing = g
        .env
        .client
        .get(g.env.weaviate_url(&format!("/v1/objects/Shape/{}", id(1))))
        .send()
        .await
        .expect("double answers");
    assert_eq!(missing.status(), 404);
}

/// An upstream gRPC server that records the request bodies it receives and answers an empty
/// SearchReply.
async fn recording_upstream() -> (String, Arc<Mutex<Vec<Bytes>>>) {
    let seen: Arc<Mutex<Vec<Bytes>>> = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().fallback(move |body: Bytes| {
        let record = record.clone();
        async move {
            record.lock().expect("lock").push(body);
            let reply = weaviate_proto::v1::SearchReply::default().encode_to_vec();
            let mut framed = vec![0u8];
            framed.extend_from_slice(&(reply.len() as u32).to_be_bytes());
            framed.extend_from_slice(&reply);
            let mut trailers = http::HeaderMap::new();
            trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
            let frames = vec![
                Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(Bytes::from(framed))),
                Ok(hyper::body::Frame::trailers(trailers)),
            ];
            let mut response = axum::response::Response::new(axum::body::Body::new(
                http_body_util::StreamBody::new(futures::stream::iter(frames)),
            ));
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/grpc"),
            );
            response
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), seen)
}

#[tokio::test]
async fn unknown_fields_reach_the_upstream_byte_identical() {
    // REST (schema, move objects) from the double; gRPC to a recorder.
    let double = Double::new();
    let (upstream, seen) = recording_upstream().await;
    let config = Config {
        weaviate_grpc_url: Some(upstream),
        ..Config::default()
    };
    let env = common::start_double_with(double, config).await;
    create_class(&env, &clip_class("Shape")).await;
    let known = SearchRequest {
        near_text: Some(NearTextSearch {
            query: vec!["a red circle".into()],
            certainty: Some(0.25),
            targets: Some(Targets {
                target_vectors: vec![],
                combination: 0,
                weights_for_targets: vec![],
            }),
            ..Default::default()
        }),
        ..search("Shape")
    }
    .encode_to_vec();
    // Fields clipgate's protos do not declare: generative (60, with a nested unknown field),
    // near_audio (47), a future field 999 (varint), a fixed32 and a fixed64 field.
    let mut unknown = Vec::new();
    wire::put_len_field(
        &mut unknown,
        60,
        &[0x0a, 0x03, b'a', b'b', b'c', 0xf8, 0x3e, 0x01],
    );
    wire::put_len_field(&mut unknown, 47, b"\x0a\x04abcd");
    unknown.extend_from_slice(&[0xb8, 0x3e, 0x2a]); // field 999 varint 42
    unknown.extend_from_slice(&[0xc5, 0x3e, 1, 2, 3, 4]); // field 1000 fixed32
    unknown.extend_from_slice(&[0xc9, 0x3e, 1, 2, 3, 4, 5, 6, 7, 8]); // field 1001 fixed64
    let mut sent = known.clone();
    sent.extend_from_slice(&unknown);

    // A raw unary call: the generated client would drop the unknown fields before sending.
    let mut grpc = tonic::client::Grpc::new(channel(&env).await);
    grpc.ready().await.expect("ready");
    let path = http::uri::PathAndQuery::from_static("/weaviate.v1.Weaviate/Search");
    let _ = grpc
        .unary(tonic::Request::new(sent.clone()), path, RawCodec)
        .await
        .expect("call answered");

    let received = seen
        .lock()
        .expect("lock")
        .pop()
        .expect("upstream got the call");
    let message = &received[5..];
    let original = wire::fields(&sent).expect("valid");
    let fields = wire::fields(message).expect("valid");
    // Every field but near_text (45) is there with identical bytes, in the original order.
    let kept: Vec<&[u8]> = original
        .iter()
        .filter(|f| f.number != 45)
        .map(|f| &sent[f.whole.clone()])
        .collect();
    let got: Vec<&[u8]> = fields
        .iter()
        .filter(|f| f.number != 43)
        .map(|f| &message[f.whole.clone()])
        .collect();
    assert_eq!(got, kept);
    // near_vector (43): the vector as LE f32 bytes with certainty and targets carried over.
    let nv = NearVector::decode(wire::last(message, &fields, 43).expect("near_vector"))
        .expect("decodes");
    let vector = texts(&env, &["a red circle"]).await.remove(0);
    assert_eq!(
        nv.vectors,
        vec![Vectors {
            name: String::new(),
            index: 0,
            vector_bytes: le_bytes(&vector),
            r#type: VectorType::SingleFp32 as i32,
        }]
    );
    assert_eq!(nv.certainty, Some(0.25));
    assert_eq!(nv.distance, None);
    assert!(nv.targets.is_some());
}

/// A codec that sends and receives raw message bytes.
#[derive(Clone, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), Self::Error> {
        use bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, Self::Error> {
        use bytes::Buf;
        let mut out = vec![0; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

#[tokio::test]
async fn search_limits_apply_to_grpc_too() {
    let mut g = start().await;
    import_shapes(&mut g, "Shape").await;
    let many = SearchRequest {
        near_text: Some(NearTextSearch {
            query: (0..101).map(|i| format!("concept {i}")).collect(),
            ..Default::default()
        }),
        ..search("Shape")
    };
    let status = g.client.search(many).await.expect_err("refused");
    assert_eq!(
        status.message(),
        "nearText asks to vectorize 101 texts (concepts and move concepts), over clipgate's limit of 100 (--max-concepts)"
    );
}

#[tokio::test]
async fn rewritten_messages_are_reused_except_with_move_objects() {
    let mut g = start().await;
    import_shapes(&mut g, "Shape").await;
    let plain = SearchRequest {
        near_text: Some(NearTextSearch {
            query: vec!["a blue square".into()],
            ..Default::default()
        }),
        ..search("Shape")
    };
    let first = grpc_hits(&mut g, plain.clone()).await;
    let key = grpc::memo_key("/weaviate.v1.Weaviate/Search", &plain.encode_to_vec());
    assert!(g.env.state.grpc_memo.get(&key).await.is_some());
    let second = grpc_hits(&mut g, plain).await;
    assert_eq!(first, second);
    assert_eq!(second[0].0, id(1), "blue-square first");

    let moved = SearchRequest {
        near_text: Some(NearTextSearch {
            query: vec!["a blue square".into()],
            move_to: Some(near_text_search::Move {
                force: 0.5,
                concepts: vec![],
                uuids: vec![id(0)],
            }),
            ..Default::default()
        }),
        ..search("Shape")
    };
    grpc_hits(&mut g, moved.clone()).await;
    let key = grpc::memo_key("/weaviate.v1.Weaviate/Search", &moved.encode_to_vec());
    assert!(g.env.state.grpc_memo.get(&key).await.is_none());
}
