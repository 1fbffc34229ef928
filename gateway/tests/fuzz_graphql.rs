//! Fuzzing the GraphQL path (issue 7, "Hostile input"): document limits → plan (parse, Weaviate's
//! validation) → per-search limits → embed needs → rewrite → error merging, with the pure test
//! driver's fake vectors. Inputs are real queries (`fixtures/fuzz/graphql/*.graphql`) mutated at
//! the character level with GraphQL-flavoured fragments, and random token soups.
//!
//! Properties: nothing panics (or overflows the stack: the test threads have 2 MiB, like tokio
//! workers); a refused or invalid document comes with errors that point into the document; a
//! rewritten document is valid GraphQL again, has no module argument left for the gateway to
//! rewrite, and every failed field has an error with its response path.
//!
//! Case count: `PROPTEST_CASES` (default 64 per target here, so `cargo test` stays fast;
//! `mutated_seeds` checks up to 10 documents per case); `scripts/fuzz.sh` runs many more.

mod graphql_support;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use apollo_parser::Parser;
use gateway::graphql::embed::Needs;
use gateway::graphql::errors::{merge_field_errors, GqlError, Location};
use gateway::graphql::limits::{self, Limits};
use gateway::graphql::plan::{self, Planned};
use gateway::graphql::rewrite::rewrite;
use graphql_support::{inputs, request, view};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use serde_json::{json, Map, Value};

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A seed: the document and its variables (`# variables: {…}` on the first line).
fn corpus() -> Vec<(String, Map<String, Value>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/fuzz/graphql");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures/fuzz/graphql")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "graphql"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 30, "{} seeds", paths.len());
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).expect("seed");
            let variables = text
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("# variables: "))
                .map(|v| serde_json::from_str::<Map<String, Value>>(v).expect("seed variables"))
                .unwrap_or_default();
            (text, variables)
        })
        .collect()
}

thread_local! {
    static CORPUS: Vec<(String, Map<String, Value>)> = corpus();
}

/// GraphQL-flavoured fragments to splice in: the module's vocabulary, punctuation, literals.
const VOCABULARY: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ":",
    ",",
    "...",
    "$q",
    "$f",
    "$nt",
    "$img",
    "=",
    "@include(if: true)",
    "nearText",
    "nearImage",
    "nearVector",
    "nearObject",
    "hybrid",
    "bm25",
    "concepts",
    "moveTo",
    "moveAwayFrom",
    "objects",
    "id",
    "beacon",
    "force",
    "certainty",
    "distance",
    "targets",
    "targetVectors",
    "combinationMethod",
    "weights",
    "searches",
    "query",
    "alpha",
    "vector",
    "image",
    "tenant",
    "limit",
    "after",
    "sort",
    "where",
    "objectLimit",
    "Get",
    "Aggregate",
    "Explore",
    "Item",
    "Multi",
    "Single",
    "Plain",
    "Unknown",
    "__typename",
    "fragment",
    "on",
    "GetObjectsObj",
    "WeaviateObj",
    "query Q",
    "mutation",
    "subscription",
    "\"red\"",
    "\"\"",
    "\"fail\"",
    "\"bad\"",
    "\"\"\"x\"\"\"",
    "\"00000000-0000-0000-0000-000000000001\"",
    "\"00000000-0000-0000-0000-000000000002\"",
    "0.5",
    "-1",
    "0",
    "1e400",
    "-0.0",
    "12345678901234567890",
    "null",
    "true",
    "false",
    "minimum",
    "manualWeights",
    "#",
    "\n",
    " ",
    "\"",
    "\\",
    "\\u00e9",
    "é",
    "\u{0}",
    "{a: {a: {a: 1}}}",
    "[[[1]]]",
];

fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(VOCABULARY).prop_map(str::to_string),
        1 => "\\PC{0,6}",
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    Insert(prop::sample::Index, String),
    Delete(prop::sample::Index, usize),
    Replace(prop::sample::Index, usize, String),
    /// Repeat a slice in place (nesting and long lists).
    Duplicate(prop::sample::Index, usize, usize),
    /// Replace the word (name, number or string literal) at or after a position by another of
    /// the same kind: keeps the document's syntax, changes what it asks for.
    Word(prop::sample::Index, prop::sample::Index),
}

/// Names, numbers and string literals for [`Mutation::Word`].
const NAMES: &[&str] = &[
    "nearText",
    "nearImage",
    "nearVector",
    "nearObject",
    "hybrid",
    "bm25",
    "concepts",
    "moveTo",
    "moveAwayFrom",
    "objects",
    "id",
    "beacon",
    "force",
    "certainty",
    "distance",
    "targets",
    "targetVectors",
    "combinationMethod",
    "weights",
    "searches",
    "query",
    "alpha",
    "vector",
    "image",
    "tenant",
    "limit",
    "after",
    "sort",
    "where",
    "objectLimit",
    "Get",
    "Aggregate",
    "Explore",
    "Item",
    "Multi",
    "Single",
    "Plain",
    "Unknown",
    "a",
    "b",
    "c",
    "name",
    "minimum",
    "sum",
    "average",
    "manualWeights",
    "relativeScore",
    "null",
    "true",
    "false",
];
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "-1",
    "0.5",
    "2",
    "-0.0",
    "1e400",
    "1.5e-7",
    "99999999999",
];
const STRINGS: &[&str] = &[
    "\"red\"",
    "\"\"",
    "\"fail\"",
    "\"bad\"",
    "\"a\"",
    "\"00000000-0000-0000-0000-000000000001\"",
    "\"00000000-0000-0000-0000-000000000002\"",
    "\"weaviate://localhost/Item/00000000-0000-0000-0000-000000000001\"",
    "\"x\\\"y\"",
    "\"\"\"block\"\"\"",
];

/// The char range of the word at or after `from`, and its kind (0 name, 1 number, 2 string).
fn word_at(chars: &[char], from: usize) -> Option<(usize, usize, usize)> {
    let start = (from..chars.len()).find(|&i| {
        let c = chars[i];
        (c.is_ascii_alphanumeric() || c == '_' || c == '"' || c == '-')
            && (i == 0 || !(chars[i - 1].is_ascii_alphanumeric() || chars[i - 1] == '_'))
    })?;
    if chars[start] == '"' {
        let mut end = start + 1;
        while end < chars.len() && chars[end] != '"' {
            end += if chars[end] == '\\' { 2 } else { 1 };
        }
        return Some((start, (end + 1).min(chars.len()), 2));
    }
    let end = (start + 1..chars.len())
        .find(|&i| !(chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '.'))
        .unwrap_or(chars.len());
    let numeric = chars[start] == '-' || chars[start].is_ascii_digit();
    Some((start, end, usize::from(numeric)))
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let index = any::<prop::sample::Index>;
    prop_oneof![
        3 => (index(), fragment()).prop_map(|(i, f)| Mutation::Insert(i, f)),
        2 => (index(), 1usize..8).prop_map(|(i, n)| Mutation::Delete(i, n)),
        3 => (index(), 1usize..6, fragment()).prop_map(|(i, n, f)| Mutation::Replace(i, n, f)),
        1 => (index(), 1usize..40, 1usize..6).prop_map(|(i, n, k)| Mutation::Duplicate(i, n, k)),
        6 => (index(), index()).prop_map(|(i, w)| Mutation::Word(i, w)),
    ]
}

fn apply(chars: &mut Vec<char>, m: &Mutation) {
    match m {
        Mutation::Insert(i, f) => {
            let at = i.index(chars.len() + 1);
            chars.splice(at..at, f.chars());
        }
        Mutation::Delete(i, n) => {
            let at = i.index(chars.len() + 1);
            let end = (at + n).min(chars.len());
            chars.drain(at..end);
        }
        Mutation::Replace(i, n, f) => {
            let at = i.index(chars.len() + 1);
            let end = (at + n).min(chars.len());
            chars.splice(at..end, f.chars());
        }
        Mutation::Duplicate(i, n, k) => {
            let at = i.index(chars.len() + 1);
            let end = (at + n).min(chars.len());
            let slice: Vec<char> = chars[at..end].to_vec();
            for _ in 0..*k {
                chars.splice(at..at, slice.iter().copied());
            }
        }
        Mutation::Word(i, w) => {
            let from = i.index(chars.len() + 1);
            if let Some((start, end, kind)) = word_at(chars, from) {
                let words = [NAMES, NUMBERS, STRINGS][kind];
                chars.splice(start..end, words[w.index(words.len())].chars());
            }
        }
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|n| json!(n)),
        (-1e6f64..1e6).prop_map(|f| json!(f)),
        prop::sample::select(vec![
            "red",
            "fail",
            "bad",
            "",
            "00000000-0000-0000-0000-000000000001"
        ])
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop::sample::select(vec![
                        "concepts",
                        "certainty",
                        "moveTo",
                        "force",
                        "objects",
                        "id",
                        "image"
                    ]),
                    inner
                ),
                0..4
            )
            .prop_map(|kv| Value::Object(
                kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
            )),
        ]
    })
}

fn variables() -> impl Strategy<Value = Option<Map<String, Value>>> {
    prop_oneof![
        3 => Just(None),
        1 => prop::collection::vec((prop::sample::select(vec!["q", "f", "nt", "img", "c"]), json_value()), 0..4)
            .prop_map(|kv| Some(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
    ]
}

static COUNTS: [AtomicUsize; 5] = [const { AtomicUsize::new(0) }; 5];
const REFUSED: usize = 0;
const FORWARDED: usize = 1;
const INVALID: usize = 2;
const REWRITTEN: usize = 3;
const FIELD_ERRORS: usize = 4;

fn assert_located(source: &str, errors: &[GqlError]) {
    let lines = source.split('\n').count();
    for e in errors {
        let Location { line, column } = e.location;
        assert!(
            line >= 1 && line <= lines && column >= 1,
            "{e:?} in {source:?}"
        );
    }
}

/// The whole pure path on one request; panics (a proptest failure) on a broken property.
fn check(query: &str, variables: Map<String, Value>, limits: &Limits) {
    if let Err(e) = limits::check_document(query, limits) {
        assert!(!e.to_string().is_empty());
        COUNTS[REFUSED].fetch_add(1, Ordering::Relaxed);
        return;
    }
    let view = view();
    let request = request(query, Value::Object(variables.clone()));
    let mut plan = match plan::plan(&request, &view) {
        Planned::Forward => {
            COUNTS[FORWARDED].fetch_add(1, Ordering::Relaxed);
            return;
        }
        Planned::Invalid(errors) => {
            COUNTS[INVALID].fetch_add(1, Ordering::Relaxed);
            assert!(!errors.is_empty(), "invalid without errors: {query:?}");
            assert_located(query, &errors);
            return;
        }
        Planned::Rewrite(plan) => plan,
    };
    COUNTS[REWRITTEN].fetch_add(1, Ordering::Relaxed);
    limits::check_plan(&mut plan, limits);
    let mut needs = Needs::default();
    needs.add(&plan);
    let rewritten = rewrite(&plan, &inputs(&needs));
    COUNTS[FIELD_ERRORS].fetch_add(rewritten.errors.len(), Ordering::Relaxed);
    assert_located(query, &rewritten.errors);
    for e in &rewritten.errors {
        assert!(e.path.as_ref().is_some_and(|p| !p.is_empty()), "{e:?}");
    }
    // The forwarded document is valid GraphQL.
    let tree = Parser::new(&rewritten.query).recursion_limit(256).parse();
    let syntax: Vec<String> = tree.errors().map(|e| e.message().to_string()).collect();
    assert!(
        syntax.is_empty(),
        "rewritten document does not parse: {syntax:?}\noriginal: {query:?}\nrewritten: {:?}",
        rewritten.query
    );
    // ... and leaves the gateway nothing more to do.
    let again = request_with(&rewritten.query, &request);
    match plan::plan(&again, &view) {
        Planned::Forward => {}
        Planned::Rewrite(p) => assert!(
            p.fields.is_empty(),
            "rewritten document still needs the module:\noriginal: {query:?}\nrewritten: {:?}\n{:?}",
            rewritten.query,
            p.fields
        ),
        Planned::Invalid(errors) => panic!(
            "rewritten document fails the module's validation: {errors:?}\noriginal: {query:?}\nrewritten: {:?}",
            rewritten.query
        ),
    }
    // Weaviate's answer, with errors anywhere in the rewritten document, maps back.
    let mut answer = json!({
        "data": {"Get": {"Item": "GetObjectsObj"}, "Aggregate": null},
        "errors": [
            {"message": "upstream", "locations": [{"line": 1, "column": 1}, {"line": 99999, "column": 5}]},
            {"message": "upstream", "locations": [{"line": 1, "column": rewritten.query.len() + 10}]},
            {"message": "no locations"}
        ]
    });
    rewritten.map.remap_errors(&mut answer);
    merge_field_errors(&mut answer, &rewritten.errors);
    assert!(answer["errors"].is_array());
}

/// The rewritten document with the original request's operation name and variables.
fn request_with(query: &str, original: &plan::Request) -> plan::Request {
    plan::Request {
        query: query.to_string(),
        ..original.clone()
    }
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(64),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proptest-regressions/fuzz_graphql.txt"
        )))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// Real queries mutated at the character level, up to 10 per case (they are cheap).
    #[test]
    fn mutated_seeds(
        batch in prop::collection::vec(
            (any::<prop::sample::Index>(), prop::collection::vec(mutation(), 0..5), variables()),
            1..=10,
        ),
    ) {
        for (seed, mutations, vars) in batch {
            let (source, seed_vars) = CORPUS.with(|c| c[seed.index(c.len())].clone());
            let mut chars: Vec<char> = source.chars().collect();
            for m in &mutations {
                apply(&mut chars, m);
            }
            let query: String = chars.into_iter().collect();
            check(&query, vars.unwrap_or(seed_vars), &Limits::default());
        }
    }

    /// Token soups from the module's vocabulary, under small limits too.
    #[test]
    fn random_documents(
        tokens in prop::collection::vec(fragment(), 0..80),
        vars in variables(),
        small in any::<bool>(),
    ) {
        let query = tokens.join(" ");
        let limits = if small {
            Limits { max_depth: 8, max_tokens: 60, max_concepts: 1, max_concept_bytes: 4, max_move_objects: 1, ..Limits::default() }
        } else {
            Limits::default()
        };
        check(&query, vars.unwrap_or_default(), &limits);
    }

    /// Seeds nested deeply (selections or values), around the depth limits.
    #[test]
    fn deeply_nested_seeds(
        seed in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        wrapper in prop::sample::select(vec![("{ a ", "}"), ("[", "]"), ("{a: ", "}"), ("... on GetObjectsObj { ", "}")]),
        depth in prop_oneof![9 => 1usize..300, 1 => Just(10_000usize)],
    ) {
        let (source, vars) = CORPUS.with(|c| c[seed.index(c.len())].clone());
        let mut chars: Vec<char> = source.chars().collect();
        let i = at.index(chars.len() + 1);
        let inner: String = chars[i..].iter().take(12).collect();
        let nested = format!("{}{inner}{}", wrapper.0.repeat(depth), wrapper.1.repeat(depth));
        let end = (i + inner.chars().count()).min(chars.len());
        chars.splice(i..end, nested.chars());
        let query: String = chars.into_iter().collect();
        let limits = Limits { max_depth: limits::MAX_DEPTH_CEILING, ..Limits::default() };
        check(&query, vars, &limits);
    }
}

/// Every seed as it is: each must be planned without panicking (and most rewritten).
#[test]
fn seeds_as_they_are() {
    let corpus = corpus();
    for (query, vars) in &corpus {
        check(query, vars.clone(), &Limits::default());
    }
    eprintln!("fuzz_graphql::seeds_as_they_are: {} seeds", corpus.len());
}

/// Found by the "nothing left to rewrite" property: with `searches[0].nearVector` the gateway
/// added `hybrid.vector` for the query text, which Weaviate refuses ("cannot have both vector and
/// nearVectorParams", spec §2.4) although the client sent no vector.
#[test]
fn hybrid_with_a_search_vector_gets_no_query_vector() {
    let query = r#"{ Get { Item(hybrid: {query: "star", searches: [{nearVector: {vector: [0.1, 0.2, 0.3]}}]}) { name } } }"#;
    let planned = plan::plan(&request(query, json!({})), &view());
    assert!(matches!(planned, Planned::Forward), "{planned:?}");
}

/// Found by the "rewritten document is valid GraphQL" property: several targets are sent as
/// `vectorPerTarget: {<name>: …}`, and a target name that is no GraphQL name (`""`, `my-vec`)
/// made the forwarded document a syntax error. Such a name is now the field's error.
#[test]
fn target_names_that_are_no_graphql_names_fail_the_field() {
    for names in [r#"["a", ""]"#, r#"["a", "my-vec"]"#, r#"["1a", "b"]"#] {
        let query = format!(
            "{{ Get {{ Multi(nearText: {{concepts: [\"red\"], targetVectors: {names}}}) {{ name }} }} }}"
        );
        check(&query, Map::new(), &Limits::default());
        let planned = plan::plan(&request(&query, json!({})), &view());
        let Planned::Rewrite(plan) = planned else {
            panic!("{names}: {planned:?}")
        };
        let message = plan.fields[0].outcome.as_ref().expect_err("field error");
        assert!(message.contains("does not have named vector"), "{message}");
    }
    // A single target is sent as `vector` with `targetVectors` carried: Weaviate answers it.
    let query =
        r#"{ Get { Multi(nearText: {concepts: ["red"], targetVectors: ["my-vec"]}) { name } } }"#;
    check(query, Map::new(), &Limits::default());
}

/// Found by the "rewritten document is valid GraphQL" property: a failed field becomes
/// `<key>: __typename`, which ran into a following field written without a separator
/// (`{ x }ok: …` → `__typenameok: …`).
#[test]
fn a_failed_field_does_not_run_into_the_next_one() {
    let query = r#"{ Get { Item(nearText: {concepts: ["fail please"]}) { name }ok: Item(nearText: {concepts: ["ok"]}) { name } } }"#;
    check(query, Map::new(), &Limits::default());
    let query = r#"{ Get { Item(nearText: {concepts: ["fail"]}) { name }ok: Plain { name } } }"#;
    check(query, Map::new(), &Limits::default());
}

/// Found by the "nothing left to rewrite" property: a repeated `nearText` was rewritten once and
/// the repetitions reached Weaviate as unknown arguments; graphql-go refuses the document.
#[test]
fn a_repeated_module_argument_is_a_validation_error() {
    let query = r#"{ Get { Item(nearText: {concepts: ["a"]}, limit: 1, nearText: {concepts: ["b"]}) { name } } }"#;
    let planned = plan::plan(&request(query, json!({})), &view());
    let Planned::Invalid(errors) = planned else {
        panic!("{planned:?}")
    };
    assert_eq!(
        errors[0].message,
        "There can be only one argument named \"nearText\"."
    );
    assert_eq!(
        errors[0].location,
        Location {
            line: 1,
            column: 14
        }
    );
}

/// Runs last in a `--test-threads=1` run; prints the case counts (`scripts/fuzz.sh`).
#[test]
fn zz_report_counts() {
    let [refused, forwarded, invalid, rewritten, field_errors] =
        COUNTS.each_ref().map(|c| c.load(Ordering::Relaxed));
    eprintln!(
        "fuzz_graphql: {} documents: {refused} refused by limits, {forwarded} forwarded, {invalid} invalid, {rewritten} rewritten ({field_errors} field errors)",
        refused + forwarded + invalid + rewritten
    );
}
