//! Limits on hostile GraphQL input (issue 7, "Hostile input"): document size, nesting depth and
//! token count, checked before anything else reads the document, and per `nearText` the number
//! of texts, the size of each text and the number of move objects, checked before anything is
//! vectorized or looked up.
//!
//! Why here and not in Weaviate: the gateway parses every document that may need the module
//! with a recursive-descent parser and walks it recursively; an unbounded document would
//! overflow a worker thread's stack (a crash of the whole process, not an error) or let one
//! request ask for thousands of inferences and object lookups. Weaviate has no such limits, so
//! the defaults are far above anything a client sends; each is a `Config` option.
//!
//! How refusals look, one rule for all of them:
//! - a body over `--max-body-bytes` is refused at the transport level, on every route, with 413
//!   and Weaviate's REST envelope (`GatewayError::BodyTooLarge`), before it is read;
//! - a document over the document limits is answered like every other GraphQL-level error
//!   Weaviate gives (spec §2.1): HTTP 200 and `{"errors":[{"message":…}]}`, no `data`; in a
//!   `/v1/graphql/batch` only that element;
//! - a `nearText` over the per-search limits fails its class field only, as a resolver error
//!   (the field is `null`, the error carries its path), like any other vectorization failure.

use apollo_parser::Parser;
use serde_json::{json, Value};

use super::plan::Plan;
use super::validate::{Edit, HybridSource, NearQuery, TextRecipe};
use crate::config::Config;

/// The highest `--max-graphql-depth` accepted. The parser and the plan's walks recurse once per
/// level; 256 levels stay well inside a tokio worker's 2 MiB stack even in debug builds, and the
/// plan itself forwards anything deeper untouched (`plan::RECURSION_LIMIT`).
pub const MAX_DEPTH_CEILING: usize = 256;

/// Parses `--max-graphql-depth`: 1 to [`MAX_DEPTH_CEILING`].
pub fn parse_depth(text: &str) -> Result<usize, String> {
    let depth: usize = text
        .trim()
        .parse()
        .map_err(|e| format!("invalid depth {text:?}: {e}"))?;
    if depth == 0 || depth > MAX_DEPTH_CEILING {
        return Err(format!(
            "the GraphQL depth limit must be between 1 and {MAX_DEPTH_CEILING}, got {depth}"
        ));
    }
    Ok(depth)
}

/// The GraphQL limits of one gateway, taken from its [`Config`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_document_bytes: usize,
    pub max_depth: usize,
    pub max_tokens: usize,
    pub max_concepts: usize,
    pub max_concept_bytes: usize,
    pub max_move_objects: usize,
}

impl Limits {
    pub fn from_config(config: &Config) -> Self {
        Self {
            max_document_bytes: config.max_graphql_bytes,
            // A depth over the ceiling cannot come from the flag; clamp one set in code.
            max_depth: config.max_graphql_depth.clamp(1, MAX_DEPTH_CEILING),
            max_tokens: config.max_graphql_tokens,
            max_concepts: config.max_concepts,
            max_concept_bytes: config.max_concept_bytes,
            max_move_objects: config.max_move_objects,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::from_config(&Config::default())
    }
}

/// Why a document or a search is refused. The messages name the option that raises the limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("the GraphQL document is {size} bytes, over clipgate's limit of {limit} bytes (--max-graphql-bytes)")]
    DocumentTooLarge { size: usize, limit: usize },
    #[error("the GraphQL document is nested more than {limit} levels deep (selections and argument values), over clipgate's limit (--max-graphql-depth)")]
    TooDeep { limit: usize },
    #[error("the GraphQL document has more than {limit} tokens, over clipgate's limit (--max-graphql-tokens)")]
    TooManyTokens { limit: usize },
    #[error("nearText asks to vectorize {count} texts (concepts and move concepts), over clipgate's limit of {limit} (--max-concepts)")]
    TooManyConcepts { count: usize, limit: usize },
    #[error("a search text is {size} bytes, over clipgate's limit of {limit} bytes (--max-concept-bytes)")]
    TextTooLong { size: usize, limit: usize },
    #[error("nearText moves name {count} objects, over clipgate's limit of {limit} (--max-move-objects)")]
    TooManyMoveObjects { count: usize, limit: usize },
}

/// Checks a document's size, then parses it once under the depth and token limits. Cheap enough
/// for every document: the size check needs no parse, and the parse stops at either limit.
pub fn check_document(query: &str, limits: &Limits) -> Result<(), LimitError> {
    if query.len() > limits.max_document_bytes {
        return Err(LimitError::DocumentTooLarge {
            size: query.len(),
            limit: limits.max_document_bytes,
        });
    }
    let tree = Parser::new(query)
        .recursion_limit(limits.max_depth.clamp(1, MAX_DEPTH_CEILING))
        .token_limit(limits.max_tokens)
        .parse();
    let tokens = tree.token_limit();
    if tokens.high > tokens.limit {
        return Err(LimitError::TooManyTokens {
            limit: limits.max_tokens,
        });
    }
    let depth = tree.recursion_limit();
    if depth.high > depth.limit {
        return Err(LimitError::TooDeep {
            limit: limits.max_depth,
        });
    }
    Ok(())
}

/// The answer to a refused document: Weaviate's GraphQL error envelope, no `data`.
pub fn refusal(error: &LimitError) -> Value {
    json!({ "errors": [ { "message": error.to_string() } ] })
}

/// Fails every class field of `plan` whose searches are over the per-search limits: its outcome
/// becomes the resolver error, so the embed step neither vectorizes its texts nor looks up its
/// move objects, and the rewrite answers the field `null` with the error.
pub fn check_plan(plan: &mut Plan, limits: &Limits) {
    for field in &mut plan.fields {
        let Ok(edits) = &field.outcome else { continue };
        let problem = edits
            .iter()
            .find_map(|edit| check_edit(&edit.edit, limits).err());
        if let Some(problem) = problem {
            field.outcome = Err(problem.to_string());
        }
    }
}

/// The per-search limits of one edit (also applied to gRPC searches).
pub fn check_edit(edit: &Edit, limits: &Limits) -> Result<(), LimitError> {
    match edit {
        Edit::Remove => Ok(()),
        Edit::Near(near) => match &near.query {
            NearQuery::Text(recipe) => check_recipe(recipe, limits),
            // The image string is bounded by the document size; its pixels by the vectorizer.
            NearQuery::Image(_) => Ok(()),
        },
        Edit::Hybrid(hybrid) => match &hybrid.source {
            HybridSource::Query(query) => check_text(query, limits),
            HybridSource::SearchNearText { recipe, .. } => check_recipe(recipe, limits),
        },
    }
}

fn check_text(text: &str, limits: &Limits) -> Result<(), LimitError> {
    if text.len() > limits.max_concept_bytes {
        return Err(LimitError::TextTooLong {
            size: text.len(),
            limit: limits.max_concept_bytes,
        });
    }
    Ok(())
}

/// The limits of one `nearText`: its texts counted with the move concepts (each is one
/// inference), each text's size, and the move objects (each is one upstream lookup).
pub fn check_recipe(recipe: &TextRecipe, limits: &Limits) -> Result<(), LimitError> {
    let texts = recipe
        .concepts
        .iter()
        .chain(recipe.moves.iter().flat_map(|m| m.concepts.iter()));
    let mut count = 0usize;
    for text in texts {
        check_text(text, limits)?;
        count += 1;
    }
    if count > limits.max_concepts {
        return Err(LimitError::TooManyConcepts {
            count,
            limit: limits.max_concepts,
        });
    }
    let objects: usize = recipe.moves.iter().map(|m| m.objects.len()).sum();
    if objects > limits.max_move_objects {
        return Err(LimitError::TooManyMoveObjects {
            count: objects,
            limit: limits.max_move_objects,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(open: &str, inner: &str, close: &str, depth: usize) -> String {
        format!("{}{inner}{}", open.repeat(depth), close.repeat(depth))
    }

    #[test]
    fn document_limits() {
        let limits = Limits::default();
        assert_eq!(check_document("{ Get { A { x } } }", &limits), Ok(()));
        let deep = nested("{a", "", "}", 10_000);
        assert_eq!(
            check_document(&deep, &limits),
            Err(LimitError::TooDeep { limit: 128 })
        );
        let deep_value = format!(
            "{{ Get {{ A(where: {}) {{ x }} }} }}",
            nested("[", "1", "]", 10_000)
        );
        assert_eq!(
            check_document(&deep_value, &limits),
            Err(LimitError::TooDeep { limit: 128 })
        );
        let deep_object = format!(
            "{{ Get {{ A(where: {}) {{ x }} }} }}",
            nested("{a:", "1", "}", 10_000)
        );
        assert_eq!(
            check_document(&deep_object, &limits),
            Err(LimitError::TooDeep { limit: 128 })
        );
        let small = Limits {
            max_document_bytes: 10,
            ..limits
        };
        assert_eq!(
            check_document("{ Get { A { x } } }", &small),
            Err(LimitError::DocumentTooLarge {
                size: 19,
                limit: 10
            })
        );
        let few_tokens = Limits {
            max_tokens: 5,
            ..limits
        };
        assert_eq!(
            check_document("{ Get { A { x } } }", &few_tokens),
            Err(LimitError::TooManyTokens { limit: 5 })
        );
    }

    #[test]
    fn depth_flag_is_bounded() {
        assert_eq!(parse_depth("64"), Ok(64));
        assert!(parse_depth("0").is_err());
        assert!(parse_depth("257").is_err());
        assert!(parse_depth("deep").is_err());
    }

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
    }

    #[test]
    fn flags_and_defaults() {
        use clap::Parser as _;
        let defaults = Cli::try_parse_from(["clipgate"]).expect("defaults").config;
        assert_eq!(Limits::from_config(&defaults), Limits::default());
        assert_eq!(
            Limits::default(),
            Limits {
                max_document_bytes: 16 * 1024 * 1024,
                max_depth: 128,
                max_tokens: 250_000,
                max_concepts: 100,
                max_concept_bytes: 65_536,
                max_move_objects: 100,
            }
        );
        let config = Cli::try_parse_from([
            "clipgate",
            "--max-graphql-bytes",
            "1000",
            "--max-graphql-depth",
            "256",
            "--max-graphql-tokens",
            "50",
            "--max-concepts",
            "3",
            "--max-concept-bytes",
            "10",
            "--max-move-objects",
            "2",
        ])
        .expect("flags")
        .config;
        assert_eq!(
            Limits::from_config(&config),
            Limits {
                max_document_bytes: 1000,
                max_depth: 256,
                max_tokens: 50,
                max_concepts: 3,
                max_concept_bytes: 10,
                max_move_objects: 2,
            }
        );
        assert!(Cli::try_parse_from(["clipgate", "--max-graphql-depth", "10000"]).is_err());
    }
}
