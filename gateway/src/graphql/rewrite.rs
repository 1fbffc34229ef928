//! Step 3 (pure): combine the computed inputs with Weaviate's arithmetic and splice the results
//! into the original document text.
//!
//! Only the edited arguments change: `nearText`/`nearImage` become `nearVector` with an inline
//! vector literal (spec §1.6), `hybrid` gains its `vector` or has `searches[0].nearText` replaced.
//! A field whose vector cannot be computed is replaced by `<key>: __typename` — same response key,
//! same position, valid in any selection set — and its value is set to `null` in the upstream's
//! answer, next to the error Weaviate would report (spec §2.1). Definitions that are not executed
//! and variable definitions no longer used are dropped (graphql-go refuses unused variables).

use std::ops::Range;

use super::embed::{concepts_mean, near_vectors, text_vector, Inputs};
use super::errors::{GqlError, Location};
use super::literal::{vector_literal, Value};
use super::plan::{FieldPlan, Plan};
use super::validate::{Edit, Hybrid, HybridSource, Near};

/// The document to forward and the errors of the fields it no longer computes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rewritten {
    pub query: String,
    pub errors: Vec<GqlError>,
    /// Where each spliced span of `query` came from, so that the locations of the errors
    /// Weaviate reports on the rewritten document point at what the client sent.
    pub map: SourceMap,
}

/// One applied splice: its range in the client's document and in the rewritten one.
type Span = (Range<usize>, Range<usize>);

/// The correspondence between the client's document and the rewritten one.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SourceMap {
    original: String,
    rewritten: String,
    /// Every applied splice, in document order.
    spans: Vec<Span>,
}

impl SourceMap {
    /// The location in the client's document of `location` in the rewritten one. A position
    /// inside a spliced span maps to the start of the text it replaced (the argument's name).
    pub fn original_location(&self, location: Location) -> Location {
        let Some(offset) = offset_of(&self.rewritten, location) else {
            return location;
        };
        let mut shift: isize = 0;
        for (original, rewritten) in &self.spans {
            if offset < rewritten.start {
                break;
            }
            if offset < rewritten.end {
                return Location::at(&self.original, original.start);
            }
            shift = original.end as isize - rewritten.end as isize;
        }
        let mapped = (offset as isize + shift).max(0) as usize;
        Location::at(&self.original, mapped.min(self.original.len()))
    }

    /// Rewrites the `locations` of every error in a GraphQL answer from the rewritten document
    /// to the client's. Returns whether anything changed.
    pub fn remap_errors(&self, answer: &mut serde_json::Value) -> bool {
        let Some(errors) = answer.get_mut("errors").and_then(|e| e.as_array_mut()) else {
            return false;
        };
        let mut changed = false;
        for location in errors
            .iter_mut()
            .filter_map(|e| e.get_mut("locations").and_then(|l| l.as_array_mut()))
            .flatten()
        {
            let (Some(line), Some(column)) = (
                location.get("line").and_then(|v| v.as_u64()),
                location.get("column").and_then(|v| v.as_u64()),
            ) else {
                continue;
            };
            let from = Location {
                line: line as usize,
                column: column as usize,
            };
            let to = self.original_location(from);
            if to != from {
                location["line"] = to.line.into();
                location["column"] = to.column.into();
                changed = true;
            }
        }
        changed
    }
}

/// The byte offset of a 1-based line and character column, `None` when it is past the text.
fn offset_of(text: &str, location: Location) -> Option<usize> {
    let line_start = if location.line <= 1 {
        0
    } else {
        text.match_indices('\n').nth(location.line - 2)?.0 + 1
    };
    let line = &text[line_start..];
    let column = location.column.checked_sub(1)?;
    match line.char_indices().nth(column) {
        Some((i, _)) => Some(line_start + i),
        None if line.chars().count() == column => Some(line_start + line.len()),
        None => None,
    }
}

/// Rewrites `plan` with `inputs` (which must hold everything `Needs::add(plan)` listed).
pub fn rewrite(plan: &Plan, inputs: &Inputs) -> Rewritten {
    let mut splices: Vec<(Range<usize>, String)> = Vec::new();
    let mut errors = Vec::new();
    for field in &plan.fields {
        let edited = field.outcome.clone().and_then(|edits| {
            edits
                .iter()
                .map(|e| Ok((e.range.clone(), edit_text(field, &e.edit, inputs)?)))
                .collect::<Result<Vec<_>, String>>()
        });
        match edited {
            Ok(edits) => splices.extend(
                edits
                    .into_iter()
                    .map(|(range, text)| separated(&plan.source, range, text)),
            ),
            Err(message) => {
                let text = format!("{}: __typename", field.key);
                splices.push(separated(&plan.source, field.range.clone(), text));
                errors.extend(field.sites.iter().map(|site| GqlError {
                    message: message.clone(),
                    location: site.location,
                    path: Some(site.path.clone()),
                }));
            }
        }
    }
    splices.extend(plan.removals.iter().map(|r| (r.clone(), String::new())));
    splices.extend(unused_variable_definitions(plan, &splices));
    let (query, spans) = apply(&plan.source, splices);
    Rewritten {
        map: SourceMap {
            original: plan.source.clone(),
            rewritten: query.clone(),
            spans,
        },
        query,
        errors,
    }
}

fn inside(inner: &Range<usize>, outer: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

/// Variable definitions whose every use was inlined by an edit.
fn unused_variable_definitions(
    plan: &Plan,
    splices: &[(Range<usize>, String)],
) -> Vec<(Range<usize>, String)> {
    let still_used = |name: &str| {
        plan.variable_refs
            .iter()
            .any(|(n, r)| n == name && !splices.iter().any(|(s, _)| inside(r, s)))
    };
    let was_used = |name: &str| plan.variable_refs.iter().any(|(n, _)| n == name);
    let drop: Vec<&(String, Range<usize>)> = plan
        .variable_defs
        .iter()
        .filter(|(name, _)| was_used(name) && !still_used(name))
        .collect();
    if drop.is_empty() {
        return Vec::new();
    }
    match &plan.variable_defs_range {
        // `()` is not valid GraphQL: drop the parentheses with the last definition.
        Some(all) if drop.len() == plan.variable_defs.len() => vec![(all.clone(), String::new())],
        // The separators after a definition go with it: `($a: A, $b: B)` → `($b: B)`.
        _ => drop
            .into_iter()
            .map(|(_, r)| {
                let rest = plan.source.get(r.end..).unwrap_or("");
                let trailing = rest.len()
                    - rest
                        .trim_start_matches(|c: char| c == ',' || c.is_whitespace())
                        .len();
                (r.start..r.end + trailing, String::new())
            })
            .collect(),
    }
}

/// A splice whose text would run into the name or number that follows it in `source` gets a
/// separating space: `{ A(…) { x }ok: B }` must not become `A: __typenameok: B`, nor an emptied
/// `A(…)name` become `Aname` (found by fuzzing, issue 7).
fn separated(source: &str, range: Range<usize>, mut text: String) -> (Range<usize>, String) {
    let is_name_char = |c: char| c == '_' || c.is_ascii_alphanumeric();
    let before = source.get(..range.start).unwrap_or("");
    let ends_in_name = match text.chars().last() {
        Some(c) => is_name_char(c),
        None => before.ends_with(is_name_char),
    };
    if ends_in_name
        && source
            .get(range.end..)
            .is_some_and(|rest| rest.starts_with(is_name_char))
    {
        text.push(' ');
    }
    (range, text)
}

/// Applies non-overlapping splices; a splice inside an earlier, larger one is dropped. Returns
/// the new text and, per applied splice, its range in `source` and in the new text.
fn apply(source: &str, mut splices: Vec<(Range<usize>, String)>) -> (String, Vec<Span>) {
    splices.sort_by(|a, b| a.0.start.cmp(&b.0.start).then(b.0.end.cmp(&a.0.end)));
    let mut out =
        String::with_capacity(source.len() + splices.iter().map(|s| s.1.len()).sum::<usize>());
    let mut spans = Vec::with_capacity(splices.len());
    let mut at = 0;
    for (range, text) in splices {
        if range.start < at || range.end > source.len() {
            continue;
        }
        out.push_str(&source[at..range.start]);
        let start = out.len();
        out.push_str(&text);
        spans.push((range.clone(), start..out.len()));
        at = range.end;
    }
    out.push_str(&source[at..]);
    (out, spans)
}

fn edit_text(field: &FieldPlan, edit: &Edit, inputs: &Inputs) -> Result<String, String> {
    match edit {
        Edit::Remove => Ok(String::new()),
        Edit::Near(near) => near_vector(field, near, inputs),
        Edit::Hybrid(hybrid) => hybrid_text(field, hybrid, inputs),
    }
}

/// `nearVector: {vector: […], <carried fields>}`, or `vectorPerTarget` for several targets
/// (spec §3.4).
fn near_vector(field: &FieldPlan, near: &Near, inputs: &Inputs) -> Result<String, String> {
    let root = field.root;
    let mut vectors = Vec::new();
    for vector in near_vectors(field.scope(), near, inputs).map_err(|m| root.vectorize_error(&m))? {
        vectors.push(vector_literal(&vector).map_err(|e| root.vectorize_error(&e.to_string()))?);
    }
    let mut parts = Vec::new();
    if near.targets.len() > 1 {
        let per_target: Vec<String> = near
            .targets
            .iter()
            .zip(&vectors)
            .map(|(t, v)| format!("{}: {v}", t.as_deref().unwrap_or_default()))
            .collect();
        parts.push(format!("vectorPerTarget: {{{}}}", per_target.join(", ")));
    } else if let Some(v) = vectors.first() {
        parts.push(format!("vector: {v}"));
    }
    parts.extend(
        near.carry
            .iter()
            .map(|(k, v)| format!("{k}: {}", v.render())),
    );
    Ok(format!("nearVector: {{{}}}", parts.join(", ")))
}

/// The hybrid object with its vector (spec §3.5).
fn hybrid_text(field: &FieldPlan, hybrid: &Hybrid, inputs: &Inputs) -> Result<String, String> {
    let root = field.root;
    let mut fields: Vec<String> = Vec::new();
    match &hybrid.source {
        HybridSource::Query(query) => {
            let vector = concepts_mean(std::slice::from_ref(query), inputs).map_err(|e| {
                root.hybrid_vectorize_error(&format!("remote client vectorize: {e}"))
            })?;
            let literal =
                vector_literal(&vector).map_err(|e| root.hybrid_vectorize_error(&e.to_string()))?;
            fields.extend(
                hybrid
                    .fields
                    .iter()
                    .map(|(k, v)| format!("{k}: {}", v.render())),
            );
            fields.push(format!("vector: {literal}"));
        }
        HybridSource::SearchNearText { recipe, carry } => {
            let vector = text_vector(field.scope(), recipe, None, inputs)
                .map_err(|m| root.hybrid_vectorize_error(&m))?;
            let literal =
                vector_literal(&vector).map_err(|e| root.hybrid_vectorize_error(&e.to_string()))?;
            let mut near = vec![format!("vector: {literal}")];
            near.extend(carry.iter().map(|(k, v)| format!("{k}: {}", v.render())));
            let near_vector = format!("nearVector: {{{}}}", near.join(", "));
            for (k, v) in &hybrid.fields {
                if k == "searches" {
                    fields.push(format!("searches: {}", searches_text(v, &near_vector)));
                } else {
                    fields.push(format!("{k}: {}", v.render()));
                }
            }
        }
    }
    Ok(format!("hybrid: {{{}}}", fields.join(", ")))
}

/// `searches` with the first element's `nearText` replaced by `near_vector`.
fn searches_text(searches: &Value, near_vector: &str) -> String {
    let items: Vec<Value> = match searches {
        Value::List(items) => items.clone(),
        single => vec![single.clone()],
    };
    let rendered: Vec<String> = items
        .iter()
        .enumerate()
        .map(|(i, item)| match (i, item) {
            (0, Value::Object(fields)) => {
                let inner: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| {
                        if k == "nearText" {
                            near_vector.to_string()
                        } else {
                            format!("{k}: {}", v.render())
                        }
                    })
                    .collect();
                format!("{{{}}}", inner.join(", "))
            }
            (_, other) => other.render(),
        })
        .collect();
    format!("[{}]", rendered.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splices_skip_nested_ranges() {
        let s = "0123456789";
        let (out, spans) = apply(
            s,
            vec![
                (2..4, "a".into()),
                (1..6, "B".into()),
                (8..9, String::new()),
            ],
        );
        assert_eq!(out, "0B679");
        assert_eq!(spans, vec![(1..6, 1..2), (8..9, 4..4)]);
    }

    #[test]
    fn locations_map_back_to_the_original_document() {
        let original = "{ Get {\n  C(nearText: {concepts: [\"x\"]}, ask: {}) { id } } }";
        let from = original.find("nearText").unwrap();
        let to = original.find(", ask").unwrap();
        let (rewritten, spans) = apply(
            original,
            vec![(
                from..to,
                "nearVector: {vector: [1.0, 2.0, 3.0, 4.0]}".into(),
            )],
        );
        let map = SourceMap {
            original: original.into(),
            rewritten: rewritten.clone(),
            spans,
        };
        let at = |text: &str, needle: &str| Location::at(text, text.find(needle).unwrap());
        // After the splice: shifted back by the length difference.
        assert_eq!(
            map.original_location(at(&rewritten, "ask")),
            at(original, "ask")
        );
        // Inside the splice: the start of the replaced argument.
        assert_eq!(
            map.original_location(at(&rewritten, "2.0")),
            at(original, "nearText")
        );
        // Before it, and on an earlier line: unchanged.
        assert_eq!(
            map.original_location(Location { line: 1, column: 3 }),
            Location { line: 1, column: 3 }
        );
    }
}
