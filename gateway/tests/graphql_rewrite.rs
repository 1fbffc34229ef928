//! Snapshots of the forwarded document for every rewrite case. The pure rewrite gets tiny fake
//! vectors (see `graphql_support::fake`: `[len/4, first byte/128, ±]`), so each snapshot shows
//! exactly which vector went where and how the arithmetic combined them.

mod graphql_support;

use graphql_support::*;
use insta::assert_snapshot;
use serde_json::json;

#[test]
fn near_text_concepts_mean() {
    // "red" = [0.75, 0.890625, -0.25], "blue" = [1.0, 0.765625, 0.5]: mean of the two.
    assert_snapshot!(rewritten(
        r#"{ Get { Item(nearText: {concepts: ["red", "blue"]}, limit: 2) { name _additional { distance } } } }"#
    ), @r#"{ Get { Item(nearVector: {vector: [0.875, 0.828125, 0.125]}, limit: 2) { name _additional { distance } } } }"#);
}

#[test]
fn near_text_with_moves_of_concepts_and_objects() {
    assert_snapshot!(rewritten(&format!(
        r#"{{ Get {{ Item(nearText: {{concepts: ["red"], moveTo: {{concepts: ["blue"], objects: [{{id: "{OBJ1}"}}], force: 0.5}}, moveAwayFrom: {{concepts: ["green"], force: 0.25}}}}) {{ name }} }} }}"#
    )));
}

#[test]
fn moves_by_beacon_and_skipped_moves() {
    assert_snapshot!(rewritten(&format!(
        r#"{{ Get {{ Item(nearText: {{concepts: ["red"], moveTo: {{objects: [{{beacon: "weaviate://localhost/Other/{OBJ1}"}}], force: 1}}, moveAwayFrom: {{concepts: ["x"], force: 0}}}}) {{ name }} }} }}"#
    )));
}

#[test]
fn near_image() {
    assert_snapshot!(rewritten(
        r#"{ Get { Item(nearImage: {image: "iVBORw0KGgo=", distance: 0.4}) { name } } }"#
    ));
}

#[test]
fn certainty_and_distance_carried_over() {
    assert_snapshot!(rewritten(
        r#"{ Get { a: Item(nearText: {concepts: ["red"], certainty: 0.80}) { name } b: Item(nearText: {concepts: ["red"], certainty: 0, distance: 0.3}) { name } } }"#
    ));
}

#[test]
fn target_vectors_single_and_several() {
    assert_snapshot!(rewritten(&format!(
        r#"{{ Get {{ one: Single(nearText: {{concepts: ["red"]}}) {{ name }} two: Multi(nearText: {{concepts: ["red"], targetVectors: ["a"]}}) {{ name }} both: Multi(nearText: {{concepts: ["red"], moveTo: {{objects: [{{id: "{OBJ1}"}}], force: 0.5}}, targets: {{targetVectors: ["a", "b"], combinationMethod: average}}}}) {{ name }} }} }}"#
    )));
}

#[test]
fn near_text_with_malformed_targets_is_dropped() {
    assert_snapshot!(rewritten(
        r#"{ Get { Multi(nearText: {concepts: ["red"], targets: {targetVectors: ["a"], combinationMethod: manualWeights}}) { name } } }"#
    ), @"{ Get { Multi { name } } }");
}

#[test]
fn hybrid_query_gets_a_vector() {
    assert_snapshot!(rewritten(
        r#"{ Get { Item(hybrid: {query: "red", alpha: 0.5, properties: ["name"], fusionType: rankedFusion}) { name _additional { score } } } }"#
    ));
}

#[test]
fn hybrid_searches_near_text() {
    assert_snapshot!(rewritten(&format!(
        r#"{{ Get {{ Item(hybrid: {{query: "red", searches: [{{nearText: {{concepts: ["red"], certainty: 0.5, moveTo: {{concepts: ["blue"], objects: [{{id: "{OBJ1}"}}], force: 0.5}}}}}}]}}) {{ name }} }} }}"#
    )));
}

#[test]
fn aggregate_near_text_and_hybrid() {
    assert_snapshot!(rewritten(
        r#"{ Aggregate { Item(nearText: {concepts: ["red"], certainty: 0.7}) { meta { count } } h: Item(hybrid: {query: "blue"}, objectLimit: 5) { meta { count } } } }"#
    ));
}

#[test]
fn explore_near_text_and_near_image() {
    assert_snapshot!(rewritten(
        r#"{ Explore(nearText: {concepts: ["red"], moveTo: {concepts: ["blue"], force: 0.5}}, limit: 3) { beacon className certainty distance } e2: Explore(nearImage: {image: "aW1n"}) { beacon } }"#
    ));
}

#[test]
fn fragments_inline_fragments_and_aliases() {
    assert_snapshot!(rewritten(
        r#"query Find {
  ...Root
}
fragment Root on WeaviateObj {
  g: Get { ... on GetObjectsObj { red: Item(nearText: {concepts: ["red"]}) { ...Fields } } ...Classes }
}
fragment Classes on GetObjectsObj { blue: Item(nearText: {concepts: ["blue"]}) { ...Fields } }
fragment Fields on Item { name _additional { id distance } }
# a comment survives
"#
    ));
}

#[test]
fn variables_are_inlined_and_their_definitions_dropped() {
    let query = r#"query Find($nt: GetObjectsItemNearTextInpObj!, $c: String, $img: String!, $limit: Int = 2) {
  Get {
    Item(nearText: $nt, limit: $limit) { name }
    i: Item(nearImage: {image: $img, certainty: 0.5}) { name }
    h: Item(hybrid: {query: $c, alpha: 0.25}) { name }
  }
}"#;
    let vars = json!({"nt": {"concepts": ["red"], "moveTo": {"concepts": ["blue"], "force": 0.5}, "distance": 0.5}, "c": "green", "img": "aW1n"});
    let Outcome::Rewritten(r) = run_request(&request(query, vars), &view()) else {
        panic!("expected a rewrite")
    };
    assert!(r.errors.is_empty());
    assert_snapshot!(r.query);
}

#[test]
fn all_variables_inlined_drops_the_parentheses() {
    let query = "query Q($q: [String]) { Get { Item(nearText: {concepts: $q}) { name } } }";
    let Outcome::Rewritten(r) = run_request(&request(query, json!({"q": ["red"]})), &view()) else {
        panic!("expected a rewrite")
    };
    assert_snapshot!(r.query, @"query Q { Get { Item(nearVector: {vector: [0.75, 0.890625, -0.25]}) { name } } }");
}

#[test]
fn several_classes_and_other_operations_dropped() {
    let query = r#"query A { Get { Item(nearText: {concepts: ["red"]}) { name } Plain(limit: 1) { name } Single(nearImage: {image: "aW1n"}) { name } } }
query B { Get { Item(nearText: {concepts: ["unused"]}) { ...Unused } } }
fragment Unused on Item { name }"#;
    let mut req = request(query, json!({}));
    req.operation_name = Some("A".into());
    let Outcome::Rewritten(r) = run_request(&req, &view()) else {
        panic!("expected a rewrite")
    };
    assert_snapshot!(r.query);
}

#[test]
fn failed_field_becomes_typename() {
    let Outcome::Rewritten(r) = run(
        r#"{ Get { Item(nearText: {concepts: ["fail"]}) { name } ok: Item(nearText: {concepts: ["red"]}) { name } } Explore(nearImage: {image: "bad"}) { beacon } }"#,
    ) else {
        panic!("expected a rewrite")
    };
    assert_snapshot!(r.query);
    assert_eq!(r.errors.len(), 2);
}
