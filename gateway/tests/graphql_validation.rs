//! Every error message of spec §1.4, §1.5 and §2 that can reach the gateway, with its exact text,
//! prefix and envelope; plus the error texts of vectorization failures (§3.2, §4).

mod graphql_support;

use gateway::graphql::errors::{merge_field_errors, validation_response};
use graphql_support::*;
use serde_json::json;

const GET_NEAR: &str = "explorer: get class: vectorize params: ";
const GET_VEC: &str = "explorer: get class: concurrentTargetVectorSearch): explorer: get class: vectorize search vector: vectorize params: vectorize params: ";
const NT: &str = r#"nearText: {concepts: ["red"]}"#;

fn get(args: &str) -> String {
    format!("{{ Get {{ Item({args}) {{ name }} }} }}")
}

fn get_in(class: &str, args: &str) -> String {
    format!("{{ Get {{ {class}({args}) {{ name }} }} }}")
}

fn aggregate(args: &str) -> String {
    format!("{{ Aggregate {{ Item({args}) {{ meta {{ count }} }} }} }}")
}

fn explore(args: &str) -> String {
    format!("{{ Explore({args}) {{ beacon }} }}")
}

#[test]
fn spec_messages_exact_text() {
    let both = "parameters which are conflicting, choose one instead";
    let cases: Vec<(String, String)> = vec![
        // §1.4 unknown arguments on classes that are not clip-managed.
        (
            get_in("Plain", NT),
            r#"Unknown argument "nearText" on field "Plain" of type "GetObjectsObj". Did you mean "nearVector" or "nearObject"?"#.into(),
        ),
        (
            get_in("Plain", r#"nearImage: {image: "x"}"#),
            r#"Unknown argument "nearImage" on field "Plain" of type "GetObjectsObj"."#.into(),
        ),
        (
            format!("{{ Aggregate {{ Plain({NT}) {{ meta {{ count }} }} }} }}"),
            r#"Unknown argument "nearText" on field "Plain" of type "AggregateObjectsObj". Did you mean "nearVector" or "nearObject"?"#.into(),
        ),
        // §1.5 literal type errors.
        (
            get("nearText: {}"),
            "Argument \"nearText\" has invalid value {}.\nIn field \"concepts\": Expected \"[String]!\", found null.".into(),
        ),
        (
            get(r#"nearText: {concepts: ["a"], moveTo: {concepts: ["b"]}}"#),
            "Argument \"nearText\" has invalid value {concepts: [\"a\"], moveTo: {concepts: [\"b\"]}}.\nIn field \"moveTo\": In field \"force\": Expected \"Float!\", found null.".into(),
        ),
        (
            aggregate(r#"nearText: {concepts: ["a"], targets: {targetVectors: ["a"]}}, objectLimit: 1"#),
            "Argument \"nearText\" has invalid value {concepts: [\"a\"], targets: {targetVectors: [\"a\"]}}.\nIn field \"targets\": Unknown field.".into(),
        ),
        (
            get(r#"nearImage: {image: 5}"#),
            "Argument \"nearImage\" has invalid value {image: 5}.\nIn field \"image\": Expected type \"String\", found 5.".into(),
        ),
        // §2.3 validateNearParams, Get prefix.
        (
            get(&format!("{NT}, nearVector: {{vector: [1, 2, 3]}}")),
            format!("{GET_NEAR}found both 'nearText' and 'nearVector' {both}"),
        ),
        (
            get(&format!(r#"{NT}, nearObject: {{id: "{OBJ1}"}}"#)),
            format!("{GET_NEAR}found both 'nearText' and 'nearObject' {both}"),
        ),
        (
            get(&format!(r#"{NT}, nearVector: {{vector: [1]}}, nearObject: {{id: "{OBJ1}"}}"#)),
            format!("{GET_NEAR}found 'nearText' and 'nearVector' and 'nearObject' {both}"),
        ),
        (
            get(r#"nearImage: {image: "aGk="}, nearVector: {vector: [1]}"#),
            format!("{GET_NEAR}found both 'nearText' and 'nearVector' {both}"),
        ),
        (
            get(&format!(r#"{NT}, nearImage: {{image: "aGk="}}"#)),
            format!("{GET_NEAR}found more than one module params: 'nearText', 'nearImage' which are conflicting choose one instead"),
        ),
        (
            get(r#"nearText: {concepts: ["red"], certainty: 0.7, distance: 0.3}"#),
            format!("{GET_NEAR}nearText cannot provide both distance and certainty"),
        ),
        (
            get(r#"nearText: {concepts: ["red"], moveTo: {force: 0.5}}"#),
            format!("{GET_NEAR}'nearText.moveTo' parameter needs to have defined either 'concepts' or 'objects' fields"),
        ),
        (
            get(r#"nearText: {concepts: ["red"], moveAwayFrom: {force: 0.5}}"#),
            format!("{GET_NEAR}'nearText.moveAwayFrom' parameter needs to have defined either 'concepts' or 'objects' fields"),
        ),
        (
            get(r#"nearImage: {image: ""}"#),
            format!("{GET_NEAR}'nearImage.image' needs to be defined"),
        ),
        (
            get(r#"nearImage: {image: "aGk=", certainty: 0.5, distance: 0.2}"#),
            format!("{GET_NEAR}nearImage cannot provide both distance and certainty"),
        ),
        (
            get_in("Multi", r#"nearImage: {image: "aGk=", targetVectors: ["a", "b"]}"#),
            format!("{GET_NEAR}nearImage.targetVectors cannot provide more than 1 target vector value"),
        ),
        // §2.2 step 2: extraction errors of the other near arguments come first.
        (
            get(&format!("{NT}, nearVector: {{vector: [1], certainty: 0.5, distance: 0.2}}")),
            "failed to extract nearVector params: cannot provide distance and certainty".into(),
        ),
        (
            get(&format!(r#"{NT}, nearObject: {{id: "{OBJ1}", certainty: 0.5, distance: 0.2}}"#)),
            "failed to extract nearObject params: cannot provide distance and certainty".into(),
        ),
        (
            get(&format!(r#"{NT}, bm25: {{query: "x"}}, sort: [{{path: ["name"]}}]"#)),
            "bm25 search is not compatible with sort".into(),
        ),
        (
            get(&format!(r#"{NT}, hybrid: {{query: "x"}}, sort: [{{path: ["name"]}}]"#)),
            "hybrid search is not compatible with sort".into(),
        ),
        // §2.2 steps 4 and 5.
        (
            get(&format!(r#"{NT}, after: "{OBJ1}", limit: 1"#)),
            "cursor api: invalid 'after' parameter: other params cannot be set with after and limit parameters".into(),
        ),
        (
            get(&format!(r#"{NT}, bm25: {{query: "x"}}"#)),
            "conflict: both near<Media> and keyword-based (bm25) arguments present, choose one".into(),
        ),
        // §2.2 step 6b: target vector resolution.
        (
            get_in("Multi", NT),
            format!("{GET_NEAR}vectorize params: multiple vectorizers configuration found, please specify target vector name"),
        ),
        (
            get_in("Multi", r#"nearText: {concepts: ["red"], targetVectors: ["c"]}"#),
            format!("{GET_VEC}could not vectorize input for collection Multi with search-type nearText. Make sure a vectorizer module is configured for this collection"),
        ),
        // §2.4 hybrid.
        (
            get(r#"hybrid: {query: "x", searches: [{nearText: {concepts: ["a"]}, nearVector: {vector: [1]}}]}"#),
            "failed to extract hybrid params: hybrid search cannot have both nearText and nearVector parameters".into(),
        ),
        (
            get(r#"hybrid: {query: "x", vector: [1, 2, 3], searches: [{nearText: {concepts: ["a"]}}]}"#),
            "failed to extract hybrid params: cannot have both vector and nearTextParams".into(),
        ),
        (
            get(r#"hybrid: {query: "x", searches: []}"#),
            "failed to extract hybrid params: searches must contain at least one search".into(),
        ),
        (
            get(r#"hybrid: {query: "x", alpha: 1.5}"#),
            "failed to extract hybrid params: alpha should be between 0.0 and 1.0".into(),
        ),
        // §2.6 Aggregate: raw messages.
        (
            aggregate(r#"nearText: {concepts: ["red"]}"#),
            "must provide certainty or objectLimit with vector search".into(),
        ),
        (
            aggregate(r#"nearText: {concepts: ["red"]}, objectLimit: 0"#),
            "objectLimit must be a positive integer".into(),
        ),
        (
            aggregate(r#"nearText: {concepts: ["red"], distance: 2.0}"#),
            "must provide certainty or objectLimit with vector search".into(),
        ),
        (
            aggregate(r#"nearText: {concepts: ["red"], certainty: 0.5}, nearVector: {vector: [1]}"#),
            format!("found both 'nearText' and 'nearVector' {both}"),
        ),
        (
            aggregate(r#"nearText: {concepts: ["red"], moveTo: {force: 1}}, objectLimit: 2"#),
            "'nearText.moveTo' parameter needs to have defined either 'concepts' or 'objects' fields".into(),
        ),
        // Explore: `vectorize params: ` prefix.
        (
            explore(r#"nearText: {concepts: ["red"]}, nearVector: {vector: [1]}"#),
            format!("vectorize params: found both 'nearText' and 'nearVector' {both}"),
        ),
        (
            explore(r#"nearImage: {image: ""}"#),
            "vectorize params: 'nearImage.image' needs to be defined".into(),
        ),
    ];
    for (query, expected) in cases {
        assert_eq!(messages(&query), vec![expected], "query: {query}");
    }
}

#[test]
fn explore_without_clip_classes_has_no_module_arguments() {
    assert_eq!(
        messages_in(&explore(NT), &plain_view()),
        vec![
            r#"Unknown argument "nearText" on field "Explore" of type "WeaviateObj". Did you mean "nearVector" or "nearObject"?"#
        ]
    );
}

#[test]
fn vectorization_errors_in_weaviates_wording() {
    let cases: Vec<(String, String)> = vec![
        (
            get(r#"nearText: {concepts: ["red", "fail"]}"#),
            format!("{GET_VEC}vectorize keywords: remote client vectorize: fail with status 500: boom"),
        ),
        (
            get(r#"nearText: {concepts: ["red"], moveTo: {force: 0.5, concepts: ["fail"]}}"#),
            format!("{GET_VEC}vectorize move to: vectorize move to: remote client vectorize: fail with status 500: boom"),
        ),
        (
            get(r#"nearText: {concepts: ["red"], moveAwayFrom: {force: 0.5, concepts: ["fail"]}}"#),
            format!("{GET_VEC}vectorize move away from: vectorize move to: remote client vectorize: fail with status 500: boom"),
        ),
        (
            get(r#"nearImage: {image: "bad"}"#),
            format!("{GET_VEC}vectorize image: invalid base64 image: Incorrect padding"),
        ),
        (
            aggregate(r#"nearImage: {image: "bad", certainty: 0.5}"#),
            "vectorize params: vectorize params: vectorize image: invalid base64 image: Incorrect padding".into(),
        ),
        (
            get(r#"nearText: {concepts: ["red"], moveTo: {force: 1.5, concepts: ["blue"]}}"#),
            format!("{GET_VEC}movement: force must be between 0 and 1: got 1.500000"),
        ),
        (
            get(&format!(r#"nearText: {{concepts: ["red"], moveTo: {{force: 0.5, objects: [{{id: "{MISSING}"}}]}}}}"#)),
            format!("{GET_VEC}vectorize move to: vector not found"),
        ),
        (
            get(&format!(r#"nearText: {{concepts: ["red"], moveAwayFrom: {{force: 0.5, objects: [{{id: "{OBJ2}"}}]}}}}"#)),
            format!("{GET_VEC}vectorize move away from: nearObject search-object with id {OBJ2} has no vector"),
        ),
        (
            get_in("Multi", &format!(r#"nearText: {{concepts: ["red"], targetVectors: ["a"], moveTo: {{force: 0.5, objects: [{{id: "{OBJ2}"}}]}}}}"#)),
            format!("{GET_VEC}vectorize move to: vector not found for target: a"),
        ),
        (
            get(r#"nearText: {concepts: ["red"], moveTo: {force: 0.5, objects: [{beacon: "weaviate://localhost/Item/nope"}]}}"#),
            format!("{GET_VEC}vectorize move to: invalid cref URI: nope is not a valid uuid"),
        ),
        (
            get(r#"nearText: {concepts: ["red"], moveTo: {force: 0.5, objects: [{id: "not-a-uuid"}]}}"#),
            format!("{GET_VEC}vectorize move to: vector not found"),
        ),
        (
            get(r#"hybrid: {query: "fail"}"#),
            "explorer: get class: vectorize search vector: remote client vectorize: fail with status 500: boom".into(),
        ),
    ];
    for (query, expected) in cases {
        assert_eq!(messages(&query), vec![expected], "query: {query}");
    }
}

#[test]
fn accepted_edge_cases() {
    // certainty 0 counts as absent (spec §2.3); an explicit empty move list counts as present.
    for query in [
        get(r#"nearText: {concepts: ["red"], certainty: 0, distance: 0.3}"#),
        get(r#"nearText: {concepts: ["red"], moveTo: {force: 0.5, concepts: []}}"#),
        get(r#"nearText: {concepts: ["red"], moveTo: {force: -1}}"#),
        get(r#"nearText: {concepts: ["red"]}, hybrid: {query: "ignored", alpha: 0.5}"#),
        aggregate(r#"nearText: {concepts: ["red"]}, objectLimit: 3"#),
    ] {
        assert!(messages(&query).is_empty(), "query: {query}");
    }
}

#[test]
fn documents_without_module_work_are_forwarded() {
    for query in [
        "{ Get { Item(nearVector: {vector: [1, 2]}) { name } } }",
        "{ Get { Plain(hybrid: {query: \"x\"}) { name } } }",
        "{ Get { Item(hybrid: {query: \"x\", alpha: 0}) { name } } }",
        "{ Get { Item(hybrid: {query: \"x\", vector: [1.0]}) { name } } }",
        "{ Get { Unknown(nearText: {concepts: [\"x\"]}) { name } } }",
        "{ Get { Item(nearText: {concepts: [\"x\"]}) { name } ",
        "query A { Get { Item { name } } } query B { Get { Item { name } } }",
        "mutation { Get { Item(nearText: {concepts: [\"x\"]}) { name } } }",
    ] {
        assert!(matches!(run(query), Outcome::Forward), "query: {query}");
    }
}

#[test]
fn validation_envelope_points_at_the_argument_name() {
    let query = "{\n  Get {\n    Plain(limit: 1, nearImage: {image: \"x\"}) { name }\n  }\n}";
    let Outcome::Invalid(errors) = run(query) else {
        panic!("expected a validation error")
    };
    assert_eq!(
        validation_response(&errors),
        json!({"errors":[{"locations":[{"column":21,"line":3}],
            "message":"Unknown argument \"nearImage\" on field \"Plain\" of type \"GetObjectsObj\".",
            "path":null}]})
    );
}

#[test]
fn literal_errors_point_at_the_value_and_every_definition_is_checked() {
    // The unused fragment is validated too (graphql-go validates the whole document).
    let query = "query Q { Get { Item { name } } }\nfragment F on GetObjectsObj { Plain(nearText: {concepts: [\"a\"]}) { name } Item(nearText: {certainty: 1}) { name } }";
    let Outcome::Invalid(errors) = run(query) else {
        panic!("expected validation errors")
    };
    let got: Vec<(usize, usize)> = errors
        .iter()
        .map(|e| (e.location.line, e.location.column))
        .collect();
    assert_eq!(got, vec![(2, 37), (2, 90)]);
    assert!(errors[1]
        .message
        .starts_with("Argument \"nearText\" has invalid value {certainty: 1}."));
}

#[test]
fn field_errors_null_the_field_and_keep_the_others() {
    let query = "{ Get { ok: Item(nearText: {concepts: [\"red\"]}) { name } bad: Item(nearImage: {image: \"bad\"}) { name } } }";
    let Outcome::Rewritten(r) = run(query) else {
        panic!("expected a rewrite")
    };
    assert!(r.query.contains("bad: __typename"), "{}", r.query);
    assert!(
        r.query.contains("ok: Item(nearVector: {vector: "),
        "{}",
        r.query
    );
    let mut answer = json!({"data":{"Get":{"ok":[{"name":"x"}],"bad":"GetObjectsObj"}}});
    merge_field_errors(&mut answer, &r.errors);
    assert_eq!(
        answer,
        json!({"data":{"Get":{"ok":[{"name":"x"}],"bad":null}},
            "errors":[{"locations":[{"column":58,"line":1}],
                "message": format!("{GET_VEC}vectorize image: invalid base64 image: Incorrect padding"),
                "path":["Get","bad"]}]})
    );
}

#[test]
fn variables_are_type_checked_once_substituted() {
    let query =
        "query Q($nt: GetObjectsItemNearTextInpObj) { Get { Item(nearText: $nt) { name } } }";
    let outcome = run_request(&request(query, json!({"nt": {"certainty": 0.5}})), &view());
    let Outcome::Invalid(errors) = outcome else {
        panic!("expected a validation error")
    };
    assert_eq!(
        errors[0].message,
        "Argument \"nearText\" has invalid value {certainty: 0.5}.\nIn field \"concepts\": Expected \"[String]!\", found null."
    );
}

#[test]
fn hostile_documents_do_not_panic() {
    let deep = format!(
        "{{ Get {{ Item(nearText: {{concepts: {}\"a\"{}}}) {{ name }} }} }}",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    for query in [
        r#"{ Get { Item(nearText: {concepts: ["\uZZZZ"]}) { name } } }"#.to_string(),
        r#"{ Get { Item(nearText: {concepts: ["\u{110000}", "\uD800"]}) { name } } }"#.to_string(),
        r#"{ Get { Item(nearText: {concepts: ["\q"]}) { name } } }"#.to_string(),
        r#"{ Get { Item(nearText: {concepts: ["""block "" string"""]}) { name } } }"#.to_string(),
        "query Q($a: String) { ...F } fragment F on WeaviateObj { ...F Get { Item(nearText: {concepts: [$a]}) { name } } }".to_string(),
        deep,
    ] {
        let _ = run(&query);
    }
}
