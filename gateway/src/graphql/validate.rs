//! Weaviate's resolver-level checks for a class field (or `Explore`) that carries `nearText`,
//! `nearImage` or a hybrid search the gateway must vectorize, in Weaviate's order and wording
//! (spec §2.2–§2.6), and the decision what to rewrite.
//!
//! Everything here runs on argument values with variables already substituted, and before any
//! vectorization: a request that Weaviate would refuse never reaches the model. Checks that
//! Weaviate would make identically on the rewritten `nearVector` query (filters, sort, groupBy,
//! certainty on non-cosine indexes) are left to Weaviate, except where one of the gateway's own
//! checks would otherwise answer first.

use super::errors::Root;
use super::literal::Value;
use crate::schema::ClassView;

/// The module arguments, in the order Weaviate names them.
pub const NEAR_TEXT: &str = "nearText";
pub const NEAR_IMAGE: &str = "nearImage";

/// The arguments of one field: name and value (variables substituted), in document order.
pub type Args = [(String, Value)];

fn arg<'a>(args: &'a Args, name: &str) -> Option<&'a Value> {
    args.iter()
        .find(|(k, v)| k == name && !matches!(v, Value::Null))
        .map(|(_, v)| v)
}

fn present(value: &Value, key: &str) -> bool {
    value.field(key).is_some_and(|v| !matches!(v, Value::Null))
}

fn number(value: &Value, key: &str) -> f64 {
    value.field(key).and_then(Value::as_f64).unwrap_or(0.0)
}

/// What the gateway does to one argument of a field.
#[derive(Debug, Clone, PartialEq)]
pub enum Edit {
    /// Remove the argument (nearText with malformed `targets`, spec §2.5).
    Remove,
    /// Replace `nearText` / `nearImage` by `nearVector`.
    Near(Near),
    /// Replace `hybrid` by the same object with a vector (spec §3.5).
    Hybrid(Hybrid),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Near {
    pub query: NearQuery,
    /// One vector per target: `None` is the legacy (unnamed) vector. Several targets are sent as
    /// `vectorPerTarget`.
    pub targets: Vec<Option<String>>,
    /// Fields carried over to `nearVector` unchanged (`certainty`, `distance`, `targetVectors`,
    /// `targets`).
    pub carry: Vec<(String, Value)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NearQuery {
    Text(TextRecipe),
    /// The image string exactly as sent (spec §4: passed verbatim).
    Image(String),
}

/// How a nearText vector is computed (spec §3.1, §3.2).
#[derive(Debug, Clone, PartialEq)]
pub struct TextRecipe {
    pub concepts: Vec<String>,
    /// The moves that apply (force > 0 and something to move to), moveTo first.
    pub moves: Vec<Move>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Move {
    pub away: bool,
    pub force: f32,
    pub concepts: Vec<String>,
    /// The object ids in order, or the error Weaviate reports when it reaches that entry.
    pub objects: Vec<Result<String, String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Hybrid {
    /// The hybrid object's fields, variables substituted.
    pub fields: Vec<(String, Value)>,
    pub source: HybridSource,
}

#[derive(Debug, Clone, PartialEq)]
pub enum HybridSource {
    /// `hybrid{query}` without a vector and alpha > 0: add `vector` = the query's text vector.
    Query(String),
    /// `searches[0].nearText` → `searches[0].nearVector` with these carried fields.
    SearchNearText {
        recipe: TextRecipe,
        carry: Vec<(String, Value)>,
    },
}

/// The edits of one field, by argument name. Empty: nothing to do.
pub type Edits = Vec<(String, Edit)>;

/// Checks a class field of `Get` / `Aggregate` on a clip-managed class and decides its edits.
/// `Err` is the message of the field's resolver error.
pub fn class_field(root: Root, class: &ClassView, args: &Args) -> Result<Edits, String> {
    let mut edits = Edits::new();
    let mut near_text = arg(args, NEAR_TEXT);
    if let Some(nt) = near_text {
        if root == Root::Get && targets_malformed(nt) {
            // Spec §2.5: the extractor's error is swallowed and nearText is dropped.
            edits.push((NEAR_TEXT.to_string(), Edit::Remove));
            near_text = None;
        }
    }
    let near_image = arg(args, NEAR_IMAGE);
    let modules = module_params(args, near_text, near_image);
    let hybrid = arg(args, "hybrid");
    if modules.is_empty() && hybrid.is_none() {
        return Ok(edits);
    }
    let near_vector = arg(args, "nearVector");
    let near_object = arg(args, "nearObject");
    // Spec §2.2 step 2: argument extraction in the resolver.
    for (value, name) in [(near_vector, "nearVector"), (near_object, "nearObject")] {
        if let Some(v) = value {
            if present(v, "certainty") && present(v, "distance") {
                return Err(format!(
                    "failed to extract {name} params: cannot provide distance and certainty"
                ));
            }
        }
    }
    let bm25 = arg(args, "bm25");
    if root == Root::Get && arg(args, "sort").is_some() {
        if bm25.is_some() {
            return Err("bm25 search is not compatible with sort".to_string());
        }
        if hybrid.is_some() {
            return Err("hybrid search is not compatible with sort".to_string());
        }
    }
    if let Some(h) = hybrid {
        if let Some(message) = hybrid_problem(h) {
            return Err(root.hybrid_error(message));
        }
    }
    if root == Root::Aggregate {
        if let Some(limit) = arg(args, "objectLimit") {
            if limit.as_f64().is_some_and(|n| n <= 0.0) {
                return Err("objectLimit must be a positive integer".to_string());
            }
        }
    }
    if modules.is_empty() {
        let searches_vector = root == Root::Get && (near_vector.is_some() || near_object.is_some());
        if searches_vector || bm25.is_some() {
            // Spec §2.2 steps 5–6: the vector (or keyword) search wins, hybrid is ignored.
            return Ok(edits);
        }
        if let Some(edit) = hybrid.map(|h| hybrid_edit(root, h)).transpose()?.flatten() {
            edits.push(("hybrid".to_string(), edit));
        }
        return Ok(edits);
    }
    if root == Root::Get {
        if arg(args, "after").is_some() {
            return Err("cursor api: invalid 'after' parameter: other params cannot be set with after and limit parameters".to_string());
        }
        if bm25.is_some() {
            return Err(
                "conflict: both near<Media> and keyword-based (bm25) arguments present, choose one"
                    .to_string(),
            );
        }
    }
    if root == Root::Aggregate {
        let certainty = [near_vector, near_object, modules.first().map(|(_, v)| *v)]
            .into_iter()
            .flatten()
            .map(certainty_of)
            .find(|c| *c != 0.0)
            .unwrap_or(0.0);
        if certainty == 0.0 && arg(args, "objectLimit").is_none() {
            return Err("must provide certainty or objectLimit with vector search".to_string());
        }
    }
    near_params(&modules, near_vector, near_object).map_err(|m| root.near_params_error(&m))?;
    let (name, value) = modules[0];
    let targets = targets(root, class, name, value)?;
    edits.push((
        name.to_string(),
        Edit::Near(near_edit(name, value, targets)),
    ));
    Ok(edits)
}

/// Checks `Explore` (present only when some class is clip-managed, spec §1.3) and decides its
/// edits. No targets combination and no tenant exist there.
pub fn explore(args: &Args) -> Result<Edits, String> {
    let near_text = arg(args, NEAR_TEXT);
    let near_image = arg(args, NEAR_IMAGE);
    let modules = module_params(args, near_text, near_image);
    if modules.is_empty() {
        return Ok(Edits::new());
    }
    near_params(&modules, arg(args, "nearVector"), arg(args, "nearObject"))
        .map_err(|m| Root::Explore.near_params_error(&m))?;
    let (name, value) = modules[0];
    let target = explicit_targets(value).into_iter().next();
    Ok(vec![(
        name.to_string(),
        Edit::Near(near_edit(name, value, vec![target])),
    )])
}

/// The module arguments present, in document order.
fn module_params<'a>(
    args: &'a Args,
    near_text: Option<&'a Value>,
    near_image: Option<&'a Value>,
) -> Vec<(&'static str, &'a Value)> {
    let mut out: Vec<(&'static str, &'a Value)> = Vec::new();
    for (name, _) in args {
        match name.as_str() {
            NEAR_TEXT if near_text.is_some() && !out.iter().any(|(n, _)| *n == NEAR_TEXT) => {
                out.extend(near_text.map(|v| (NEAR_TEXT, v)));
            }
            NEAR_IMAGE if near_image.is_some() && !out.iter().any(|(n, _)| *n == NEAR_IMAGE) => {
                out.extend(near_image.map(|v| (NEAR_IMAGE, v)));
            }
            _ => {}
        }
    }
    out
}

/// `validateNearParams` and the module's own `ValidateFunction` (spec §2.3), unwrapped.
fn near_params(
    modules: &[(&'static str, &Value)],
    near_vector: Option<&Value>,
    near_object: Option<&Value>,
) -> Result<(), String> {
    let one = modules.len() == 1;
    let (nv, no) = (near_vector.is_some(), near_object.is_some());
    if one && nv && no {
        return Err("found 'nearText' and 'nearVector' and 'nearObject' parameters which are conflicting, choose one instead".to_string());
    }
    if one && nv {
        return Err("found both 'nearText' and 'nearVector' parameters which are conflicting, choose one instead".to_string());
    }
    if one && no {
        return Err("found both 'nearText' and 'nearObject' parameters which are conflicting, choose one instead".to_string());
    }
    if nv && no {
        return Err("found both 'nearVector' and 'nearObject' parameters which are conflicting, choose one instead".to_string());
    }
    if modules.len() > 1 {
        let names: Vec<String> = modules.iter().map(|(n, _)| format!("'{n}'")).collect();
        return Err(format!(
            "found more than one module params: {} which are conflicting choose one instead",
            names.join(", ")
        ));
    }
    let Some((name, value)) = modules.first() else {
        return Ok(());
    };
    if *name == NEAR_TEXT {
        validate_near_text(value)
    } else {
        validate_near_image(value)
    }
}

/// nearText's `ValidateFunction` [arguments/nearText/param.go].
fn validate_near_text(value: &Value) -> Result<(), String> {
    for (key, label) in [("moveTo", "moveTo"), ("moveAwayFrom", "moveAwayFrom")] {
        if let Some(m) = value.field(key) {
            // An explicit empty list counts as defined; `null` does not.
            if number(m, "force") > 0.0 && !present(m, "concepts") && !present(m, "objects") {
                return Err(format!(
                    "'nearText.{label}' parameter needs to have defined either 'concepts' or 'objects' fields"
                ));
            }
        }
    }
    if number(value, "certainty") != 0.0 && present(value, "distance") {
        return Err("nearText cannot provide both distance and certainty".to_string());
    }
    Ok(())
}

/// nearImage's `ValidateFunction` [arguments/nearImage/param.go].
fn validate_near_image(value: &Value) -> Result<(), String> {
    if value
        .field("image")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        return Err("'nearImage.image' needs to be defined".to_string());
    }
    if number(value, "certainty") != 0.0 && present(value, "distance") {
        return Err("nearImage cannot provide both distance and certainty".to_string());
    }
    if value
        .field("targetVectors")
        .and_then(Value::as_strings)
        .is_some_and(|t| t.len() > 1)
    {
        return Err(
            "nearImage.targetVectors cannot provide more than 1 target vector value".to_string(),
        );
    }
    Ok(())
}

/// Certainty as `extractCertaintyFromParams` reads it: the certainty, else 1 − distance/2.
fn certainty_of(value: &Value) -> f64 {
    let certainty = number(value, "certainty");
    if certainty != 0.0 {
        certainty
    } else if present(value, "distance") {
        1.0 - number(value, "distance") / 2.0
    } else {
        0.0
    }
}

/// Spec §2.5: `targets` with `manualWeights`/`relativeScore` must weigh every target; otherwise
/// nearText's extractor fails (`weight for target <t> is not provided`) and the argument is
/// silently dropped.
fn targets_malformed(near_text: &Value) -> bool {
    let Some(targets) = near_text.field("targets") else {
        return false;
    };
    let method = match targets.field("combinationMethod") {
        Some(Value::Enum(m)) | Some(Value::String(m)) => m.as_str(),
        _ => return false,
    };
    if method != "manualWeights" && method != "relativeScore" {
        return false;
    }
    let names = targets
        .field("targetVectors")
        .and_then(Value::as_strings)
        .unwrap_or_default();
    let weights = targets.field("weights");
    names.iter().any(|n| {
        weights
            .and_then(|w| w.field(n))
            .is_none_or(|w| matches!(w, Value::Null))
    })
}

/// Hybrid extraction errors that a rewrite would otherwise change (spec §2.4).
fn hybrid_problem(hybrid: &Value) -> Option<&'static str> {
    if matches!(hybrid.field("searches"), Some(Value::List(items)) if items.is_empty()) {
        // Weaviate indexes `searches[0]` and panics (spec §1.2); say why instead.
        return Some("searches must contain at least one search");
    }
    let first = first_search(hybrid);
    if let Some(s) = first {
        if present(s, NEAR_TEXT) && present(s, "nearVector") {
            return Some("hybrid search cannot have both nearText and nearVector parameters");
        }
    }
    let alpha = hybrid
        .field("alpha")
        .and_then(Value::as_f64)
        .unwrap_or(0.75);
    if !(0.0..=1.0).contains(&alpha) {
        return Some("alpha should be between 0.0 and 1.0");
    }
    if present(hybrid, "vector") {
        if first.is_some_and(|s| present(s, NEAR_TEXT)) {
            return Some("cannot have both vector and nearTextParams");
        }
        if first.is_some_and(|s| present(s, "nearVector")) {
            return Some("cannot have both vector and nearVectorParams");
        }
    }
    None
}

/// `searches[0]`: only the first element is read (spec §1.2).
fn first_search(hybrid: &Value) -> Option<&Value> {
    match hybrid.field("searches")? {
        Value::List(items) => items.first(),
        single @ Value::Object(_) => Some(single),
        _ => None,
    }
}

fn hybrid_edit(root: Root, hybrid: &Value) -> Result<Option<Edit>, String> {
    let Value::Object(fields) = hybrid else {
        return Ok(None);
    };
    if let Some(nt) = first_search(hybrid).and_then(|s| s.field(NEAR_TEXT)) {
        validate_near_text(nt).map_err(|m| root.hybrid_vectorize_error(&m))?;
        // Move objects are dropped in hybrid (spec §2.4: "TODO objects").
        let recipe = text_recipe(nt, false);
        return Ok(Some(Edit::Hybrid(Hybrid {
            fields: fields.clone(),
            source: HybridSource::SearchNearText {
                recipe,
                carry: carried(nt, &["certainty", "distance"]),
            },
        })));
    }
    if first_search(hybrid).is_some_and(|s| present(s, "nearVector")) {
        // The client gave the vector in `searches[0].nearVector`: adding `vector` would make
        // Weaviate refuse the query ("cannot have both vector and nearVectorParams", spec §2.4).
        return Ok(None);
    }
    let alpha = hybrid
        .field("alpha")
        .and_then(Value::as_f64)
        .unwrap_or(0.75);
    match hybrid.field("query").and_then(Value::as_str) {
        Some(query) if alpha > 0.0 && !present(hybrid, "vector") => {
            Ok(Some(Edit::Hybrid(Hybrid {
                fields: fields.clone(),
                source: HybridSource::Query(query.to_string()),
            })))
        }
        _ => Ok(None),
    }
}

/// The targets named by the argument: `targets.targetVectors`, else `targetVectors`.
fn explicit_targets(value: &Value) -> Vec<String> {
    let from_targets = value
        .field("targets")
        .and_then(|t| t.field("targetVectors"))
        .and_then(Value::as_strings)
        .filter(|t| !t.is_empty());
    let mut names = from_targets
        .or_else(|| value.field("targetVectors").and_then(Value::as_strings))
        .unwrap_or_default();
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    names
}

/// The vectors to compute (spec §2.2 step 6b, §3.4): the named targets, else the class's only
/// named vector, else the legacy vector. Aggregate uses the first target only (spec §10.9).
fn targets(
    root: Root,
    class: &ClassView,
    param: &str,
    value: &Value,
) -> Result<Vec<Option<String>>, String> {
    let mut names = explicit_targets(value);
    if names.is_empty() {
        return match class.named_vectors.len() {
            0 => Ok(vec![None]),
            1 => Ok(vec![class.named_vectors.first().cloned()]),
            _ => Err(root.near_params_error(
                "vectorize params: multiple vectorizers configuration found, please specify target vector name",
            )),
        };
    }
    if root == Root::Aggregate {
        names.truncate(1);
    }
    if names.len() > 1 {
        // Several targets go upstream as `vectorPerTarget: {<name>: …}`, whose keys must be
        // GraphQL names; a name that is not one cannot be a named vector of any class (Weaviate
        // validates vector names on class creation), and would make the rewritten document
        // invalid. Found by fuzzing (issue 7). The wording is clipgate's (UNCONFIRMED upstream).
        if let Some(bad) = names.iter().find(|n| !is_graphql_name(n)) {
            return Err(root.near_params_error(&format!(
                "class {} does not have named vector {bad:?} configured",
                class.name
            )));
        }
    }
    for name in &names {
        let exists = class.named_vectors.contains(name);
        if exists && class.clip_target(Some(name)).is_none() {
            return Err(root.vectorize_error(&format!(
                "could not vectorize input for collection {} with search-type {param}. Make sure a vectorizer module is configured for this collection",
                class.name
            )));
        }
    }
    Ok(names.into_iter().map(Some).collect())
}

/// A GraphQL name (`/[_A-Za-z][_0-9A-Za-z]*/`), the only form a `vectorPerTarget` key can take.
fn is_graphql_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// The fields of `value` named in `keep`, in document order; `certainty: 0` is dropped when a
/// distance is present (Weaviate treats it as absent, but `nearVector` would refuse both keys).
fn carried(value: &Value, keep: &[&str]) -> Vec<(String, Value)> {
    let Value::Object(fields) = value else {
        return Vec::new();
    };
    let has_distance = present(value, "distance");
    fields
        .iter()
        .filter(|(k, v)| keep.contains(&k.as_str()) && !matches!(v, Value::Null))
        .filter(|(k, v)| !(k == "certainty" && has_distance && v.as_f64() == Some(0.0)))
        .cloned()
        .collect()
}

fn near_edit(name: &str, value: &Value, targets: Vec<Option<String>>) -> Near {
    let query = if name == NEAR_TEXT {
        NearQuery::Text(text_recipe(value, true))
    } else {
        NearQuery::Image(
            value
                .field("image")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        )
    };
    Near {
        query,
        targets,
        carry: carried(
            value,
            &["certainty", "distance", "targetVectors", "targets"],
        ),
    }
}

/// The concepts and the moves that apply (force > 0 and concepts or objects, spec §3.2).
fn text_recipe(value: &Value, with_objects: bool) -> TextRecipe {
    let concepts = value
        .field("concepts")
        .and_then(Value::as_strings)
        .unwrap_or_default();
    let mut moves = Vec::new();
    for (key, away) in [("moveTo", false), ("moveAwayFrom", true)] {
        let Some(m) = value.field(key) else { continue };
        let force = number(m, "force") as f32;
        let concepts = m
            .field("concepts")
            .and_then(Value::as_strings)
            .unwrap_or_default();
        let objects = if with_objects {
            move_objects(m)
        } else {
            Vec::new()
        };
        if force > 0.0 && (!concepts.is_empty() || !objects.is_empty()) {
            moves.push(Move {
                away,
                force,
                concepts,
                objects,
            });
        }
    }
    TextRecipe { concepts, moves }
}

/// The move objects' ids as the searcher reads them: `beacon` overrides `id`, and an entry with
/// neither reuses the previous entry's id (spec §3.2).
fn move_objects(movement: &Value) -> Vec<Result<String, String>> {
    let entries = match movement.field("objects") {
        Some(Value::List(items)) => items.clone(),
        Some(single @ Value::Object(_)) => vec![single.clone()],
        _ => Vec::new(),
    };
    let mut id = String::new();
    let mut out = Vec::new();
    for entry in &entries {
        if let Some(i) = entry
            .field("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            id = i.to_string();
        }
        if let Some(b) = entry
            .field("beacon")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            match beacon_id(b) {
                Ok(target) => id = target,
                Err(e) => {
                    out.push(Err(e));
                    continue;
                }
            }
        }
        out.push(Ok(id.clone()));
    }
    out
}

/// The UUID of a beacon `weaviate://localhost[/<Class>]/<uuid>` (crossref.Parse); the class part
/// is ignored: the lookup always uses the queried class.
fn beacon_id(beacon: &str) -> Result<String, String> {
    let path = beacon
        .strip_prefix("weaviate://")
        .and_then(|rest| rest.find('/').map(|i| &rest[i..]))
        .filter(|p| !p.is_empty())
        .ok_or_else(|| format!("invalid cref URI: {beacon}"))?;
    let segments: Vec<&str> = path.split('/').collect();
    let id = match segments.as_slice() {
        [_, _, id] | [_, id] => *id,
        _ => {
            return Err(format!(
                "invalid cref URI: path must be of format '<class>/<uuid>', but got '{path}'"
            ))
        }
    };
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(format!("invalid cref URI: {id} is not a valid uuid"));
    }
    Ok(id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beacons() {
        let id = "8b1a2c9e-5f7d-4a3b-9c1e-2d4f6a8b0c1d";
        assert_eq!(
            beacon_id(&format!("weaviate://localhost/Item/{id}")),
            Ok(id.into())
        );
        assert_eq!(
            beacon_id(&format!("weaviate://localhost/{id}")),
            Ok(id.into())
        );
        assert_eq!(
            beacon_id("weaviate://localhost/Item/nope"),
            Err("invalid cref URI: nope is not a valid uuid".into())
        );
        assert!(beacon_id("http://x").is_err());
    }
}
