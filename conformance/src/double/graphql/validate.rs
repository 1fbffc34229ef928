//! GraphQL validation as graphql-go runs it before any resolver (spec §1.4, §2.3):
//! known fields (`Cannot query field …`), known arguments (`Unknown argument …` with
//! `Did you mean …?` suggestions) and unique arguments. An unmodified Weaviate has no
//! `nearText` / `nearImage` / `ask`, so those are unknown arguments here.

use std::collections::HashMap;

use graphql_parser::query::SelectionSet;

use super::doc::{Ctx, GField};
use super::GqlError;
use crate::double::schema::ClassInfo;

/// Core `Get` arguments (§1.2). Order matters only for tie-breaking suggestions.
fn get_arguments(class: &ClassInfo) -> Vec<&'static str> {
    let mut args = vec![
        "nearVector",
        "nearObject",
        "where",
        "limit",
        "offset",
        "after",
        "autocut",
        "sort",
        "group",
        "groupBy",
        "bm25",
        "hybrid",
    ];
    if class.multi_tenancy {
        args.push("tenant");
    }
    if class.replication_factor > 1 {
        args.push("consistencyLevel");
    }
    args
}

fn aggregate_arguments(class: &ClassInfo) -> Vec<&'static str> {
    let mut args = vec![
        "nearVector",
        "nearObject",
        "where",
        "limit",
        "objectLimit",
        "groupBy",
        "hybrid",
    ];
    if class.multi_tenancy {
        args.push("tenant");
    }
    args
}

const EXPLORE_ARGUMENTS: [&str; 4] = ["nearVector", "nearObject", "limit", "offset"];
const EXPLORE_FIELDS: [&str; 5] = ["beacon", "className", "certainty", "distance", "__typename"];

/// `_additional` fields of a Weaviate without modules (§10.1).
pub const ADDITIONAL_FIELDS: [&str; 13] = [
    "id",
    "distance",
    "certainty",
    "vector",
    "vectors",
    "creationTimeUnix",
    "lastUpdateTimeUnix",
    "score",
    "explainScore",
    "isConsistent",
    "classification",
    "group",
    "__typename",
];

/// graphql-go's `lexicalDistance`: plain Levenshtein on bytes (its transposition branch never runs).
fn lexical_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for k in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[k - 1]);
            cur[k] = (prev[k] + 1).min(cur[k - 1] + 1).min(prev[k - 1] + cost);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// graphql-go's `suggestionList`: options within max(len(input)/2, len(option)/2, 1), by distance.
fn suggestions<'a>(input: &str, options: &[&'a str]) -> Vec<&'a str> {
    let mut found: Vec<(usize, &str)> = options
        .iter()
        .filter_map(|opt| {
            let d = lexical_distance(input, opt);
            let threshold = (input.len() / 2).max(opt.len() / 2).max(1);
            (d <= threshold).then_some((d, *opt))
        })
        .collect();
    found.sort_by_key(|(d, _)| *d);
    found.into_iter().map(|(_, o)| o).collect()
}

/// `"a"`, `"a" or "b"`, `"a", "b", or "c"` (at most 5).
fn quoted_or_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().take(5).map(|i| format!("\"{i}\"")).collect();
    match quoted.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [a, b] => format!("{a} or {b}"),
        [init @ .., last] => format!("{}, or {last}", init.join(", ")),
    }
}

fn did_you_mean(input: &str, options: &[&str]) -> String {
    let s = suggestions(input, options);
    if s.is_empty() {
        String::new()
    } else {
        format!(" Did you mean {}?", quoted_or_list(&s))
    }
}

struct Validator<'c, 'q> {
    ctx: &'c Ctx<'q>,
    classes: &'c [ClassInfo],
    errors: Vec<GqlError>,
}

/// Validates the selected operation; an empty result means "execute".
pub fn validate<'q>(
    ctx: &Ctx<'q>,
    root: &'q SelectionSet<'q, String>,
    classes: &[ClassInfo],
) -> Vec<GqlError> {
    let mut v = Validator {
        ctx,
        classes,
        errors: Vec::new(),
    };
    let mut root_fields: Vec<&str> = vec!["__typename"];
    if !classes.is_empty() {
        root_fields.extend(["Get", "Aggregate", "Explore"]);
    }
    for field in ctx.fields(root) {
        match field.name.as_str() {
            "__typename" => {}
            "Get" if !classes.is_empty() => {
                v.arguments(field, "Get", "WeaviateObj", &[]);
                v.class_fields(field, "GetObjectsObj", false);
            }
            "Aggregate" if !classes.is_empty() => {
                v.arguments(field, "Aggregate", "WeaviateObj", &[]);
                v.class_fields(field, "AggregateObjectsObj", true);
            }
            "Explore" if !classes.is_empty() => {
                v.arguments(field, "Explore", "WeaviateObj", &EXPLORE_ARGUMENTS);
                v.leaf_fields(field, "ExploreObj", &EXPLORE_FIELDS);
            }
            other => v.unknown_field(field, other, "WeaviateObj", &root_fields),
        }
    }
    let mut seen = Vec::new();
    v.errors.retain(|e| {
        let key = (e.message.clone(), e.locations.clone());
        let fresh = !seen.contains(&key);
        seen.push(key);
        fresh
    });
    v.errors
}

impl<'q> Validator<'_, 'q> {
    fn unknown_field(&mut self, field: &GField<'q>, name: &str, type_name: &str, options: &[&str]) {
        self.errors.push(GqlError::validation(
            format!(
                "Cannot query field \"{name}\" on type \"{type_name}\".{}",
                did_you_mean(name, options)
            ),
            vec![self.ctx.field_location(field)],
        ));
    }

    fn arguments(&mut self, field: &GField<'q>, field_name: &str, type_name: &str, known: &[&str]) {
        let offset = self.ctx.src.offset_of(field.position);
        let spans = self.ctx.src.arguments(offset);
        let mut first_seen: HashMap<&str, usize> = HashMap::new();
        for (i, (name, _)) in field.arguments.iter().enumerate() {
            let span_offset = spans
                .iter()
                .filter(|s| s.name == *name)
                .nth(
                    field.arguments[..i]
                        .iter()
                        .filter(|(n, _)| n == name)
                        .count(),
                )
                .map_or(offset, |s| s.name_offset);
            let loc = self.ctx.src.location(span_offset);
            if !known.contains(&name.as_str()) {
                self.errors.push(GqlError::validation(
                    format!(
                        "Unknown argument \"{name}\" on field \"{field_name}\" of type \"{type_name}\".{}",
                        did_you_mean(name, known)
                    ),
                    vec![loc],
                ));
                continue;
            }
            match first_seen.get(name.as_str()) {
                Some(first) => {
                    let first_loc = self.ctx.src.location(*first);
                    self.errors.push(GqlError::validation(
                        format!("There can be only one argument named \"{name}\"."),
                        vec![first_loc, loc],
                    ));
                }
                None => {
                    first_seen.insert(name.as_str(), span_offset);
                }
            }
        }
    }

    fn class_fields(&mut self, parent: &'q GField<'q>, type_name: &str, aggregate: bool) {
        let names: Vec<&str> = self.classes.iter().map(|c| c.name.as_str()).collect();
        for field in self.ctx.fields(&parent.selection_set) {
            if field.name == "__typename" {
                continue;
            }
            let Some(class) = self.classes.iter().find(|c| c.name == field.name) else {
                self.unknown_field(field, &field.name, type_name, &names);
                continue;
            };
            if aggregate {
                let known = aggregate_arguments(class);
                self.arguments(field, &class.name, type_name, &known);
                let mut fields: Vec<&str> = vec!["meta", "groupedBy", "__typename"];
                fields.extend(class.properties.iter().map(|p| p.name.as_str()));
                let sub_type = format!("Aggregate{}", class.name);
                for sub in self.ctx.fields(&field.selection_set) {
                    if !fields.contains(&sub.name.as_str()) {
                        self.unknown_field(sub, &sub.name, &sub_type, &fields);
                    } else if sub.name == "meta" {
                        self.leaf_fields(
                            sub,
                            &format!("Aggregate{}MetaObject", class.name),
                            &["count", "__typename"],
                        );
                    }
                }
            } else {
                let known = get_arguments(class);
                self.arguments(field, &class.name, type_name, &known);
                let mut fields: Vec<&str> = vec!["_additional", "__typename"];
                fields.extend(class.properties.iter().map(|p| p.name.as_str()));
                for sub in self.ctx.fields(&field.selection_set) {
                    if !fields.contains(&sub.name.as_str()) {
                        self.unknown_field(sub, &sub.name, &class.name, &fields);
                    } else if sub.name == "_additional" {
                        let additional_type = format!("{}AdditionalFields", class.name);
                        self.leaf_fields(sub, &additional_type, &ADDITIONAL_FIELDS);
                    }
                }
            }
        }
    }

    fn leaf_fields(&mut self, parent: &'q GField<'q>, type_name: &str, known: &[&str]) {
        for sub in self.ctx.fields(&parent.selection_set) {
            if !known.contains(&sub.name.as_str()) {
                self.unknown_field(sub, &sub.name, type_name, known);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_match_spec() {
        let get = [
            "nearVector",
            "nearObject",
            "where",
            "limit",
            "offset",
            "after",
            "autocut",
            "sort",
            "group",
            "groupBy",
            "bm25",
            "hybrid",
            "tenant",
            "consistencyLevel",
        ];
        assert_eq!(
            did_you_mean("nearText", &get),
            " Did you mean \"nearVector\" or \"nearObject\"?"
        );
        assert_eq!(did_you_mean("nearImage", &get), "");
        assert_eq!(did_you_mean("ask", &get), "");
        assert_eq!(
            did_you_mean("nearText", &EXPLORE_ARGUMENTS),
            " Did you mean \"nearVector\" or \"nearObject\"?"
        );
        assert_eq!(quoted_or_list(&["a", "b", "c"]), "\"a\", \"b\", or \"c\"");
    }
}
