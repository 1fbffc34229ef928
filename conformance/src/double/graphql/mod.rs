//! `POST /v1/graphql`: parse with `graphql-parser`, validate like graphql-go, execute on the store.

mod args;
mod doc;
pub(crate) mod exec;
mod locate;
mod validate;

use serde_json::{json, Map, Value};

use super::auth::Principal;
use super::json::sorted;
use super::schema::ClassInfo;
use super::store::Store;

/// One GraphQL request (`{"query","operationName","variables"}`).
#[derive(Debug, Clone, Default)]
pub struct GraphqlRequest {
    pub query: String,
    pub operation_name: Option<String>,
    pub variables: Map<String, Value>,
}

/// One entry of `errors` (§1.4 / §2.1 shapes).
#[derive(Debug, Clone, PartialEq)]
pub struct GqlError {
    pub message: String,
    pub locations: Vec<(usize, usize)>,
    /// `None` renders as `"path": null` (validation errors).
    pub path: Option<Vec<String>>,
}

impl GqlError {
    fn validation(message: String, locations: Vec<(usize, usize)>) -> Self {
        Self {
            message,
            locations,
            path: None,
        }
    }

    fn resolver(message: String, location: (usize, usize), path: Vec<String>) -> Self {
        Self {
            message,
            locations: vec![location],
            path: Some(path),
        }
    }

    fn to_json(&self) -> Value {
        let locations: Vec<Value> = self
            .locations
            .iter()
            .map(|(line, column)| json!({"column": column, "line": line}))
            .collect();
        json!({"locations": locations, "message": self.message, "path": self.path})
    }
}

fn errors_only(errors: &[GqlError]) -> Value {
    json!({"errors": errors.iter().map(GqlError::to_json).collect::<Vec<_>>()})
}

/// graphql-go style syntax error from graphql-parser's `Parse error at L:C\n…` text.
fn syntax_error(message: &str) -> GqlError {
    let text = message.trim_start_matches("query parse error: ");
    let mut lines = text.lines();
    let head = lines.next().unwrap_or_default();
    let (line, column) = head
        .rsplit(' ')
        .next()
        .and_then(|lc| lc.split_once(':'))
        .and_then(|(l, c)| Some((l.parse().ok()?, c.parse().ok()?)))
        .unwrap_or((1, 1));
    let detail: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
    GqlError::validation(
        format!(
            "Syntax Error GraphQL request ({line}:{column}) {}",
            detail.join("; ")
        ),
        vec![(line, column)],
    )
}

/// Executes one request; always returns the response body (HTTP 200).
pub fn execute(store: &Store, principal: &Principal, req: &GraphqlRequest) -> Value {
    let document = match graphql_parser::parse_query::<String>(&req.query) {
        Ok(d) => d,
        Err(e) => return errors_only(&[syntax_error(&e.to_string())]),
    };
    let (root, defaults) = match doc::select_operation(&document, req.operation_name.as_deref()) {
        Ok(op) => op,
        Err(message) => return errors_only(&[GqlError::validation(message, vec![])]),
    };
    let ctx = doc::Ctx::new(&req.query, &document, defaults, &req.variables);
    store.read(|db| {
        let classes: Vec<ClassInfo> = db.classes().map(|c| c.info.clone()).collect();
        let errors = validate::validate(&ctx, root, &classes);
        if !errors.is_empty() {
            return errors_only(&errors);
        }
        let fields = ctx.fields(root);
        let (data, errors) = exec::run(db, principal, &ctx, &fields);
        let mut out = Map::new();
        out.insert("data".into(), sorted(Value::Object(data)));
        if !errors.is_empty() {
            out.insert(
                "errors".into(),
                Value::Array(errors.iter().map(GqlError::to_json).collect()),
            );
        }
        Value::Object(out)
    })
}
