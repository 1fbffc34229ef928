//! The conformance case format: one JSON file per scenario under `fixtures/conformance/`.
//!
//! A scenario is data, not code, so that anyone can read what "behaves like Weaviate with
//! multi2vec-clip" means and run the same file against clipgate, a real Weaviate behind clipgate,
//! or a real Weaviate with the real module.
//!
//! ```json
//! {
//!   "description": "what this scenario shows",
//!   "classes": [ { "class": "CfNearText", "vectorizer": "multi2vec-clip", "moduleConfig": {…} } ],
//!   "objects": [ { "class": "CfNearText", "id": "@red-circle",
//!                  "properties": { "image": {"$image": "fixtures/images/red-circle.png"} } } ],
//!   "steps": [
//!     { "name": "a red circle finds the red circle first",
//!       "graphql": "{ Get { CfNearText(nearText: {concepts: [\"a red circle\"]}) { _additional { id } } } }",
//!       "expect": { "idsStartWith": ["@red-circle"] } }
//!   ]
//! }
//! ```
//!
//! Value conventions (resolved by [`super::expr`]):
//! * a string `"@name"` is the deterministic UUID of `name` (UUID v5), so cases read as names;
//! * `{"$image": "path"}` is the base64 of a file; in strings `{{image:path}}`, `{{id:name}}`
//!   and `{{var:name}}` (a captured value printed as JSON, e.g. a vector literal) are replaced;
//! * expectations may use `$var`, `$mean`, `$combine`, `$moveTo`, `$moveAwayFrom`,
//!   `$cosineDistance`, `$certainty` (Weaviate's arithmetic, spec §3 and §5.3, computed here
//!   independently of the gateway) and the matchers `$any`, `$anyOf`, `$startsWith`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

/// One scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// What the scenario shows and which spec sections it covers.
    #[serde(default)]
    pub description: String,
    /// Classes created through the target with `POST /v1/schema` before the steps.
    #[serde(default)]
    pub classes: Vec<Value>,
    /// Objects imported through the target with `POST /v1/batch/objects` before the steps.
    #[serde(default)]
    pub objects: Vec<Value>,
    /// Classes that steps may create; deleted before and after the scenario like `classes`.
    #[serde(default, rename = "extraClasses")]
    pub extra_classes: Vec<String>,
    /// The checks, in order.
    pub steps: Vec<Step>,
}

/// One request and its expectations: one "case" in the summary line.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub name: String,
    /// A GraphQL document sent as `POST /v1/graphql`.
    #[serde(default)]
    pub graphql: Option<String>,
    #[serde(default)]
    pub variables: Option<Value>,
    #[serde(default, rename = "operationName")]
    pub operation_name: Option<String>,
    /// Any other HTTP request.
    #[serde(default)]
    pub request: Option<Request>,
    /// Values to remember from the response body: name → dotted path.
    #[serde(default)]
    pub capture: BTreeMap<String, String>,
    #[serde(default)]
    pub expect: Expect,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    #[serde(default = "default_method")]
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub body: Option<Value>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

fn default_method() -> String {
    "GET".to_owned()
}

/// What the response must look like. Every field is optional; an empty `expect` checks only
/// that the status is 200.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// HTTP status (default 200).
    #[serde(default)]
    pub status: Option<u16>,
    /// Result ids, exactly and in order (names like `@red-circle` or UUIDs).
    #[serde(default)]
    pub ids: Option<Vec<String>>,
    /// The first result ids, in order.
    #[serde(default, rename = "idsStartWith")]
    pub ids_start_with: Option<Vec<String>>,
    /// Where the result list is; default: the only class under `data.Get`/`data.Aggregate`,
    /// or `data.Explore`.
    #[serde(default, rename = "idsAt")]
    pub ids_at: Option<String>,
    /// `errors[0].message` of a GraphQL answer, exactly (a string) or any pattern.
    #[serde(default)]
    pub error: Option<Value>,
    /// `errors[0].path` of a GraphQL answer.
    #[serde(default, rename = "errorPath")]
    pub error_path: Option<Value>,
    /// The whole response body (a pattern: `$any` and friends allowed).
    #[serde(default)]
    pub body: Option<Value>,
    /// Values at paths.
    #[serde(default)]
    pub values: Vec<ValueCheck>,
    /// GraphQL answers must have no `errors` (default true when no error is expected).
    #[serde(default, rename = "noErrors")]
    pub no_errors: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueCheck {
    pub at: String,
    #[serde(default)]
    pub equals: Option<Value>,
    #[serde(default)]
    pub tolerance: Option<f64>,
    #[serde(default)]
    pub absent: Option<bool>,
    #[serde(default)]
    pub length: Option<usize>,
    #[serde(default, rename = "lessThan")]
    pub less_than: Option<Value>,
    #[serde(default, rename = "greaterThan")]
    pub greater_than: Option<Value>,
}

/// A scenario with the file it came from.
#[derive(Debug, Clone)]
pub struct LoadedScenario {
    pub file: PathBuf,
    pub scenario: Scenario,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read cases directory {}: {source}", dir.display())]
    Dir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {}: {source}", file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a valid scenario: {source}", file.display())]
    Parse {
        file: PathBuf,
        source: serde_json::Error,
    },
    #[error("{}: step {step:?} needs exactly one of \"graphql\" or \"request\"", file.display())]
    StepKind { file: PathBuf, step: String },
    #[error("no *.json cases in {}", .0.display())]
    Empty(PathBuf),
}

/// Loads every `*.json` file of `dir`, sorted by file name so runs are reproducible.
pub fn load_dir(dir: &Path) -> Result<Vec<LoadedScenario>, LoadError> {
    let entries = std::fs::read_dir(dir).map_err(|source| LoadError::Dir {
        dir: dir.to_owned(),
        source,
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| LoadError::Dir {
            dir: dir.to_owned(),
            source,
        })?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "json") {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(LoadError::Empty(dir.to_owned()));
    }
    files.iter().map(|f| load_file(f)).collect()
}

/// Loads and checks one scenario file.
pub fn load_file(file: &Path) -> Result<LoadedScenario, LoadError> {
    let text = std::fs::read_to_string(file).map_err(|source| LoadError::Read {
        file: file.to_owned(),
        source,
    })?;
    let scenario: Scenario = serde_json::from_str(&text).map_err(|source| LoadError::Parse {
        file: file.to_owned(),
        source,
    })?;
    for step in &scenario.steps {
        if step.graphql.is_some() == step.request.is_some() {
            return Err(LoadError::StepKind {
                file: file.to_owned(),
                step: step.name.clone(),
            });
        }
    }
    Ok(LoadedScenario {
        file: file.to_owned(),
        scenario,
    })
}

impl Scenario {
    /// Every class the scenario may leave behind, for clean-up before and after.
    pub fn class_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .classes
            .iter()
            .filter_map(|c| c.get("class").and_then(Value::as_str).map(str::to_owned))
            .collect();
        names.extend(self.extra_classes.iter().cloned());
        names
    }
}
