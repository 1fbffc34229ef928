//! Fuzzing the gRPC wire splicer and rewrite (issue 7, "Hostile input"): `wire::fields` on
//! arbitrary bytes, and `search::plan` → `render` and `batch::merge_reply` on real requests
//! (SearchRequest / AggregateRequest with near_text, near_image, hybrid, moves, targets and
//! unknown fields) mutated at the byte level, against the pure test view and fake vectors.
//!
//! Properties: nothing panics; a message that splits into fields splits into ranges that tile it
//! exactly; a rewritten request is a valid message in which every field the gateway did not
//! rewrite is present byte-identical and in order.
//!
//! Case count: `PROPTEST_CASES` (default 64 per target, so `cargo test` stays fast);
//! `scripts/fuzz.sh` runs many more.

mod graphql_support;

use gateway::graphql::limits::Limits;
use gateway::grpc::batch::{self, Prepared};
use gateway::grpc::search::{self, Kind, Planned};
use gateway::grpc::wire;
use graphql_support::{inputs, view, OBJ1};
use proptest::prelude::*;
use prost::Message;
use weaviate_proto::v1::{
    aggregate_request, near_text_search, AggregateRequest, Hybrid, NearImageSearch, NearTextSearch,
    SearchRequest, Targets,
};

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Real requests on the test view's classes, with unknown fields appended.
fn seeds() -> Vec<(Kind, Vec<u8>)> {
    let near_text = NearTextSearch {
        query: vec!["a red circle".into(), "fail here".into()],
        certainty: Some(0.5),
        move_to: Some(near_text_search::Move {
            force: 0.5,
            concepts: vec!["circle".into()],
            uuids: vec![OBJ1.into()],
        }),
        move_away: Some(near_text_search::Move {
            force: 0.25,
            concepts: vec!["square".into()],
            uuids: vec![],
        }),
        targets: Some(Targets {
            target_vectors: vec!["a".into(), "b".into()],
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut out = Vec::new();
    for class in ["Item", "Multi", "Single", "Plain"] {
        let base = SearchRequest {
            collection: class.into(),
            limit: 3,
            ..Default::default()
        };
        out.push(SearchRequest {
            near_text: Some(near_text.clone()),
            ..base.clone()
        });
        out.push(SearchRequest {
            near_image: Some(NearImageSearch {
                image: "aGVsbG8=".into(),
                distance: Some(0.3),
                ..Default::default()
            }),
            ..base.clone()
        });
        out.push(SearchRequest {
            hybrid_search: Some(Hybrid {
                query: "a red circle".into(),
                use_alpha_param: true,
                alpha_param: Some(0.5),
                ..Default::default()
            }),
            ..base.clone()
        });
        out.push(SearchRequest {
            hybrid_search: Some(Hybrid {
                near_text: Some(near_text.clone()),
                alpha: 0.3,
                ..Default::default()
            }),
            ..base
        });
    }
    let mut seeds: Vec<(Kind, Vec<u8>)> = out
        .into_iter()
        .map(|r| {
            let mut bytes = r.encode_to_vec();
            wire::put_len_field(&mut bytes, 60, b"\x0a\x01x");
            bytes.extend_from_slice(&[0xb8, 0x3e, 0x2a]);
            (Kind::Search, bytes)
        })
        .collect();
    seeds.push((
        Kind::Aggregate,
        AggregateRequest {
            collection: "Item".into(),
            objects_count: true,
            object_limit: Some(3),
            search: Some(aggregate_request::Search::NearText(near_text)),
            ..Default::default()
        }
        .encode_to_vec(),
    ));
    seeds
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<usize>(), 1usize..6).prop_map(|(i, n)| Mutation::Remove(i, n)),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        if bytes.is_empty() {
            break;
        }
        let len = bytes.len();
        match m {
            Mutation::Flip(i, b) => bytes[i % len] ^= b,
            Mutation::Truncate(i) => bytes.truncate(i % len),
            Mutation::Insert(i, b) => {
                let at = i % (len + 1);
                bytes.splice(at..at, b.iter().copied());
            }
            Mutation::Remove(i, n) => {
                let at = i % len;
                let end = (at + n).min(len);
                bytes.drain(at..end);
            }
        }
    }
    bytes
}

/// The rewrite keeps every field it does not rewrite, byte for byte, in order.
fn check_rewrite(kind: Kind, message: &[u8]) {
    let view = view();
    let Ok(Planned::Rewrite(plan)) = search::plan(kind, message, &view, &Limits::default()) else {
        return;
    };
    let Ok(out) = plan.render(&inputs(&plan.needs())) else {
        return;
    };
    let before = wire::fields(message).expect("a planned message splits");
    let after = wire::fields(&out).expect("the rewritten message splits");
    let rewritten: &[u32] = match kind {
        Kind::Search => &[41, 43, 45, 46],
        Kind::Aggregate => &[41, 42, 44, 45],
    };
    let kept = |fields: &[wire::Field], bytes: &[u8]| -> Vec<Vec<u8>> {
        fields
            .iter()
            .filter(|f| !rewritten.contains(&f.number))
            .map(|f| bytes[f.whole.clone()].to_vec())
            .collect()
    };
    assert_eq!(kept(&after, &out), kept(&before, message));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(64), ..ProptestConfig::default() })]

    #[test]
    fn fields_never_panic_and_tile_the_message(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(fields) = wire::fields(&bytes) {
            let mut joined = Vec::new();
            for f in &fields {
                joined.extend_from_slice(&bytes[f.whole.clone()]);
            }
            prop_assert_eq!(joined, bytes);
        }
    }

    #[test]
    fn mutated_requests_never_panic(seed in 0usize..1000, mutations in proptest::collection::vec(mutation(), 0..4)) {
        let seeds = seeds();
        let (kind, bytes) = &seeds[seed % seeds.len()];
        let message = mutate(bytes.clone(), &mutations);
        let _ = search::mentions_module_search(*kind, &message);
        check_rewrite(*kind, &message);
    }

    #[test]
    fn batch_replies_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128), forwarded in proptest::collection::vec(0usize..10, 0..5)) {
        let prepared = Prepared { request: None, forwarded, failures: vec![(7, "x".into())] };
        let _ = batch::merge_reply(Some(&bytes), &prepared);
        let _ = batch::plan(&bytes, &view());
    }
}

#[test]
fn seeds_are_rewritten() {
    let view = view();
    let rewritten = seeds()
        .iter()
        .filter(|(kind, bytes)| {
            matches!(
                search::plan(*kind, bytes, &view, &Limits::default()),
                Ok(Planned::Rewrite(_))
            )
        })
        .count();
    // Every clip class's seed is rewritten (Plain's are forwarded).
    assert!(
        rewritten >= 10,
        "{rewritten} of {} rewritten",
        seeds().len()
    );
    for (kind, bytes) in seeds() {
        check_rewrite(kind, &bytes);
    }
}
