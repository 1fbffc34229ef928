//! Step 1 (pure): read a GraphQL request, validate it as Weaviate with the multi2vec-clip module
//! would, and list the edits the rewrite must make and the inputs the embed step must compute.
//!
//! Two passes over the document:
//! 1. graphql-go's validation of the module arguments over EVERY definition (spec §1.4, §1.5):
//!    `Unknown argument "nearText" …` for classes that are not clip-managed, literal type errors
//!    for those that are. Any error ends here: the document is not executed.
//! 2. The executed operation (by `operationName`), with its fragments followed and its variables
//!    substituted: for each `Get`/`Aggregate` class field and `Explore` that needs the module,
//!    Weaviate's resolver checks (see `validate`) and the edits.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use apollo_parser::cst::{self, CstNode};
use apollo_parser::Parser;

use super::errors::{GqlError, Location, Root};
use super::input_types;
use super::literal::{Value, Variables};
use super::validate::{self, Edit, NEAR_IMAGE, NEAR_TEXT};
use crate::schema::SchemaView;

/// Deeper documents are forwarded untouched (Weaviate answers them); bounds the recursion of
/// the parser and of every walk below.
const RECURSION_LIMIT: usize = 256;

/// A GraphQL request body (`{"query","operationName","variables"}`).
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub query: String,
    pub operation_name: Option<String>,
    pub variables: serde_json::Map<String, serde_json::Value>,
}

/// What to do with a request.
#[derive(Debug, Clone)]
pub enum Planned {
    /// Nothing for the module to do: forward the original bytes.
    Forward,
    /// The document fails validation: answer these errors, execute nothing.
    Invalid(Vec<GqlError>),
    /// Vectorize and rewrite.
    Rewrite(Plan),
}

/// Where a field's result appears: its response path and the field's position.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    pub path: Vec<String>,
    pub location: Location,
}

/// One field (class field of Get/Aggregate, or Explore) the gateway handles.
#[derive(Debug, Clone)]
pub struct FieldPlan {
    pub root: Root,
    /// `None` for Explore.
    pub class: Option<String>,
    /// The field's `tenant` argument, used for move-object lookups.
    pub tenant: Option<String>,
    /// Byte range of the whole field in the source.
    pub range: Range<usize>,
    /// The field's response key (alias or name).
    pub key: String,
    /// Every place the field executes (a fragment may be spread more than once).
    pub sites: Vec<Site>,
    /// The edits, or the field's resolver error.
    pub outcome: Result<Vec<ArgEdit>, String>,
}

/// An edit of one argument, by its byte range.
#[derive(Debug, Clone)]
pub struct ArgEdit {
    pub range: Range<usize>,
    pub edit: Edit,
}

/// Everything the rewrite needs besides the computed vectors.
#[derive(Debug, Clone)]
pub struct Plan {
    pub source: String,
    pub fields: Vec<FieldPlan>,
    /// Definitions that are not executed (other operations, unused fragments): dropped from the
    /// forwarded document, which would otherwise still carry their module arguments.
    pub removals: Vec<Range<usize>>,
    /// Variable references in the executed parts, by name.
    pub variable_refs: Vec<(String, Range<usize>)>,
    /// The executed operation's variable definitions, and the range of their parentheses.
    pub variable_defs: Vec<(String, Range<usize>)>,
    pub variable_defs_range: Option<Range<usize>>,
}

fn range(node: &apollo_parser::SyntaxNode) -> Range<usize> {
    let r = node.text_range();
    usize::from(r.start())..usize::from(r.end())
}

fn name_of(name: Option<cst::Name>) -> String {
    name.map(|n| n.text().to_string()).unwrap_or_default()
}

fn field_name(field: &cst::Field) -> String {
    name_of(field.name())
}

fn response_key(field: &cst::Field) -> String {
    field
        .alias()
        .and_then(|a| a.name())
        .map(|n| n.text().to_string())
        .unwrap_or_else(|| field_name(field))
}

/// Whether a document can need the module at all; others skip the schema lookup.
pub fn mentions_module_arguments(query: &str) -> bool {
    query.contains(NEAR_TEXT) || query.contains(NEAR_IMAGE) || query.contains("hybrid")
}

/// Plans one request against the current schema view.
pub fn plan(request: &Request, view: &SchemaView) -> Planned {
    let source = request.query.as_str();
    let tree = Parser::new(source).recursion_limit(RECURSION_LIMIT).parse();
    if tree.errors().len() > 0 {
        // Weaviate reports syntax errors itself.
        return Planned::Forward;
    }
    let document = tree.document();
    let definitions: Vec<cst::Definition> = document.definitions().collect();
    if definitions.iter().any(|d| !d.is_executable_definition()) {
        return Planned::Forward;
    }
    let errors = check_document(source, &definitions, view);
    if !errors.is_empty() {
        return Planned::Invalid(errors);
    }
    let operations: Vec<&cst::OperationDefinition> = definitions
        .iter()
        .filter_map(|d| match d {
            cst::Definition::OperationDefinition(op) => Some(op),
            _ => None,
        })
        .collect();
    let selected = match request.operation_name.as_deref().filter(|n| !n.is_empty()) {
        Some(name) => operations
            .iter()
            .find(|op| op.name().is_some_and(|n| n.text() == name)),
        None if operations.len() == 1 => operations.first(),
        // Weaviate answers "Must provide operation name…" / "Unknown operation named…".
        None => None,
    };
    let Some(operation) = selected.copied() else {
        return Planned::Forward;
    };
    if operation
        .operation_type()
        .is_some_and(|t| t.query_token().is_none())
    {
        return Planned::Forward;
    }
    let fragments: HashMap<String, cst::FragmentDefinition> = definitions
        .iter()
        .filter_map(|d| match d {
            cst::Definition::FragmentDefinition(f) => {
                Some((name_of(f.fragment_name()?.name()), f.clone()))
            }
            _ => None,
        })
        .collect();
    let variables = variables_of(operation, &request.variables);
    let mut walker = Walker {
        source,
        view,
        fragments: &fragments,
        vars: &variables,
        fields: Vec::new(),
        seen: HashMap::new(),
        stack: Vec::new(),
        invalid: Vec::new(),
    };
    if let Some(set) = operation.selection_set() {
        walker.walk_root(&set, 0);
    }
    if !walker.invalid.is_empty() {
        return Planned::Invalid(walker.invalid);
    }
    if walker.fields.is_empty() {
        return Planned::Forward;
    }
    let fields = walker.fields;
    let reachable = reachable_fragments(operation, &fragments);
    let removals = definitions
        .iter()
        .filter(|d| match d {
            cst::Definition::OperationDefinition(op) => op != operation,
            cst::Definition::FragmentDefinition(f) => {
                !reachable.contains(&name_of(f.fragment_name().and_then(|n| n.name())))
            }
            _ => false,
        })
        .map(|d| range(d.syntax()))
        .collect();
    let defs_node = operation.variable_definitions();
    let defs_range = defs_node.as_ref().map(|d| range(d.syntax()));
    let variable_defs = defs_node
        .iter()
        .flat_map(|d| d.variable_definitions())
        .filter_map(|d| {
            let name = name_of(d.variable()?.name());
            Some((name, range(d.syntax())))
        })
        .collect();
    let mut variable_refs = Vec::new();
    let executed = std::iter::once(operation.syntax().clone()).chain(
        fragments
            .iter()
            .filter(|(name, _)| reachable.contains(*name))
            .map(|(_, f)| f.syntax().clone()),
    );
    for node in executed {
        for v in node.descendants().filter_map(cst::Variable::cast) {
            let r = range(v.syntax());
            if defs_range
                .as_ref()
                .is_some_and(|d| d.start <= r.start && r.end <= d.end)
            {
                continue;
            }
            variable_refs.push((name_of(v.name()), r));
        }
    }
    Planned::Rewrite(Plan {
        source: source.to_string(),
        fields,
        removals,
        variable_refs,
        variable_defs,
        variable_defs_range: defs_range,
    })
}

/// The request's variables plus the defaults of the operation's definitions.
fn variables_of(
    operation: &cst::OperationDefinition,
    provided: &serde_json::Map<String, serde_json::Value>,
) -> Variables {
    let defaults = operation
        .variable_definitions()
        .iter()
        .flat_map(|d| d.variable_definitions())
        .filter_map(|d| {
            let name = name_of(d.variable()?.name());
            let value = d.default_value()?.value()?;
            Some((name, Value::from_cst(&value)))
        })
        .collect();
    Variables {
        provided: provided.clone(),
        defaults,
    }
}

/// The fragments the operation uses, transitively.
fn reachable_fragments(
    operation: &cst::OperationDefinition,
    fragments: &HashMap<String, cst::FragmentDefinition>,
) -> HashSet<String> {
    let mut reachable = HashSet::new();
    let mut pending: Vec<apollo_parser::SyntaxNode> = vec![operation.syntax().clone()];
    while let Some(node) = pending.pop() {
        for spread in node.descendants().filter_map(cst::FragmentSpread::cast) {
            let name = name_of(spread.fragment_name().and_then(|n| n.name()));
            if reachable.insert(name.clone()) {
                if let Some(f) = fragments.get(&name) {
                    pending.push(f.syntax().clone());
                }
            }
        }
    }
    reachable
}

/// What a selection set selects from.
#[derive(Clone, Copy)]
enum Parent {
    /// `WeaviateObj`: Get, Aggregate, Explore.
    Query,
    /// `GetObjectsObj` / `AggregateObjectsObj`: class fields.
    Classes(Root),
}

fn parent_of_type(name: &str) -> Option<Parent> {
    match name {
        "WeaviateObj" => Some(Parent::Query),
        "GetObjectsObj" => Some(Parent::Classes(Root::Get)),
        "AggregateObjectsObj" => Some(Parent::Classes(Root::Aggregate)),
        _ => None,
    }
}

fn type_condition(condition: Option<cst::TypeCondition>) -> Option<String> {
    Some(name_of(condition?.named_type()?.name()))
}

/// Pass 1: the validation errors of the module arguments, in document order, over every
/// definition as graphql-go's validator visits them (fragments once, as definitions).
fn check_document(
    source: &str,
    definitions: &[cst::Definition],
    view: &SchemaView,
) -> Vec<GqlError> {
    let mut errors = Vec::new();
    for definition in definitions {
        let (set, parent) = match definition {
            cst::Definition::OperationDefinition(op) => (op.selection_set(), Some(Parent::Query)),
            cst::Definition::FragmentDefinition(f) => (
                f.selection_set(),
                type_condition(f.type_condition()).and_then(|t| parent_of_type(&t)),
            ),
            _ => (None, None),
        };
        if let (Some(set), Some(parent)) = (set, parent) {
            check_selections(source, &set, parent, view, &mut errors, 0);
        }
    }
    errors
}

fn check_selections(
    source: &str,
    set: &cst::SelectionSet,
    parent: Parent,
    view: &SchemaView,
    errors: &mut Vec<GqlError>,
    depth: usize,
) {
    if depth > RECURSION_LIMIT {
        return;
    }
    for selection in set.selections() {
        match selection {
            cst::Selection::Field(field) => {
                let name = field_name(&field);
                match (parent, name.as_str()) {
                    (Parent::Query, "Get" | "Aggregate") => {
                        let root = if name == "Get" {
                            Root::Get
                        } else {
                            Root::Aggregate
                        };
                        if let Some(inner) = field.selection_set() {
                            check_selections(
                                source,
                                &inner,
                                Parent::Classes(root),
                                view,
                                errors,
                                depth + 1,
                            );
                        }
                    }
                    (Parent::Query, "Explore") => {
                        check_arguments(source, &field, Root::Explore, None, view, errors)
                    }
                    (Parent::Classes(root), class) => {
                        check_arguments(source, &field, root, Some(class), view, errors)
                    }
                    _ => {}
                }
            }
            cst::Selection::InlineFragment(inline) => {
                let inner_parent = match type_condition(inline.type_condition()) {
                    Some(t) => parent_of_type(&t),
                    None => Some(parent),
                };
                if let (Some(inner), Some(p)) = (inline.selection_set(), inner_parent) {
                    check_selections(source, &inner, p, view, errors, depth + 1);
                }
            }
            cst::Selection::FragmentSpread(_) => {}
        }
    }
}

/// `Unknown argument …` (spec §1.4) or the literal check (spec §1.5) of each module argument.
fn check_arguments(
    source: &str,
    field: &cst::Field,
    root: Root,
    class: Option<&str>,
    view: &SchemaView,
    errors: &mut Vec<GqlError>,
) {
    let Some(arguments) = field.arguments() else {
        return;
    };
    // First occurrence of each module argument, for graphql-go's `UniqueArgumentNamesRule`.
    let mut first_at: HashMap<String, usize> = HashMap::new();
    for argument in arguments.arguments() {
        let name = name_of(argument.name());
        if name != NEAR_TEXT && name != NEAR_IMAGE {
            continue;
        }
        let allowed = match class {
            None => view.any_clip_managed(),
            Some(c) => match view.class(c) {
                Some(cv) => cv.is_clip_managed(),
                // An unknown class is reported by Weaviate ("Cannot query field"); graphql-go does
                // not check the arguments of an unknown field.
                None => continue,
            },
        };
        let at = argument
            .name()
            .map(|n| range(n.syntax()).start)
            .unwrap_or_else(|| range(argument.syntax()).start);
        if !allowed {
            errors.push(GqlError {
                message: unknown_argument(&name, &field_name(field), root),
                location: Location::at(source, at),
                path: None,
            });
        } else if let Some(value_node) = argument.value() {
            let value = Value::from_cst(&value_node);
            let ty = argument_type(&name, root, class.unwrap_or(""));
            if let Some(message) = input_types::argument_error(&name, &ty, &value) {
                errors.push(GqlError {
                    message,
                    location: Location::at(source, range(value_node.syntax()).start),
                    path: None,
                });
            }
        }
        match first_at.get(&name) {
            // Only the first would be rewritten; the others would reach Weaviate as unknown
            // arguments (found by fuzzing, issue 7). graphql-go reports the locations of both
            // occurrences; `GqlError` carries one, the first.
            Some(&first) => errors.push(GqlError {
                message: format!("There can be only one argument named \"{name}\"."),
                location: Location::at(source, first),
                path: None,
            }),
            None => {
                first_at.insert(name, at);
            }
        }
    }
}

fn argument_type(name: &str, root: Root, class: &str) -> input_types::Ty {
    if name == NEAR_TEXT {
        input_types::near_text(root, class)
    } else {
        input_types::near_image(root, class)
    }
}

/// graphql-go's `KnownArgumentNamesRule` message. For `nearText` the suggestions are
/// `nearVector` and `nearObject` (Levenshtein distance 4 ≤ threshold 5); `nearImage` is too far
/// from every argument (spec §1.4). Weaviate's order of the two is not deterministic.
fn unknown_argument(argument: &str, field: &str, root: Root) -> String {
    let suggestion = if argument == NEAR_TEXT {
        " Did you mean \"nearVector\" or \"nearObject\"?"
    } else {
        ""
    };
    format!(
        "Unknown argument \"{argument}\" on field \"{field}\" of type \"{}\".{suggestion}",
        root.parent_type()
    )
}

/// Pass 2 over the executed operation.
struct Walker<'a> {
    source: &'a str,
    view: &'a SchemaView,
    fragments: &'a HashMap<String, cst::FragmentDefinition>,
    vars: &'a Variables,
    fields: Vec<FieldPlan>,
    /// Field start → index in `fields`.
    seen: HashMap<usize, usize>,
    /// Fragments being expanded (cycles are a validation error Weaviate reports).
    stack: Vec<String>,
    /// Type errors found once variables are substituted.
    invalid: Vec<GqlError>,
}

/// One argument of a field: name, value with variables substituted, byte range, and whether
/// variables were involved.
struct Arg {
    name: String,
    value: Value,
    range: Range<usize>,
    value_start: usize,
    raw: Value,
}

fn contains_variable(value: &Value) -> bool {
    match value {
        Value::Variable(_) => true,
        Value::List(items) => items.iter().any(contains_variable),
        Value::Object(fields) => fields.iter().any(|(_, v)| contains_variable(v)),
        _ => false,
    }
}

impl Walker<'_> {
    fn fragment(&mut self, spread: &cst::FragmentSpread) -> Option<cst::SelectionSet> {
        let name = name_of(spread.fragment_name()?.name());
        if self.stack.contains(&name) || self.stack.len() > RECURSION_LIMIT {
            return None;
        }
        let set = self.fragments.get(&name)?.selection_set()?;
        self.stack.push(name);
        Some(set)
    }

    fn walk_root(&mut self, set: &cst::SelectionSet, depth: usize) {
        if depth > RECURSION_LIMIT {
            return;
        }
        for selection in set.selections() {
            match selection {
                cst::Selection::Field(field) => {
                    let key = response_key(&field);
                    match field_name(&field).as_str() {
                        "Get" => self.walk_classes(&field, Root::Get, &key, depth),
                        "Aggregate" => self.walk_classes(&field, Root::Aggregate, &key, depth),
                        "Explore" => self.plan_field(&field, Root::Explore, vec![key]),
                        _ => {}
                    }
                }
                cst::Selection::InlineFragment(inline) => {
                    if let Some(inner) = inline.selection_set() {
                        self.walk_root(&inner, depth + 1);
                    }
                }
                cst::Selection::FragmentSpread(spread) => {
                    if let Some(inner) = self.fragment(&spread) {
                        self.walk_root(&inner, depth + 1);
                        self.stack.pop();
                    }
                }
            }
        }
    }

    fn walk_classes(&mut self, field: &cst::Field, root: Root, root_key: &str, depth: usize) {
        if let Some(set) = field.selection_set() {
            self.walk_class_set(&set, root, root_key, depth + 1);
        }
    }

    fn walk_class_set(
        &mut self,
        set: &cst::SelectionSet,
        root: Root,
        root_key: &str,
        depth: usize,
    ) {
        if depth > RECURSION_LIMIT {
            return;
        }
        for selection in set.selections() {
            match selection {
                cst::Selection::Field(field) => {
                    let path = vec![root_key.to_string(), response_key(&field)];
                    self.plan_field(&field, root, path);
                }
                cst::Selection::InlineFragment(inline) => {
                    if let Some(inner) = inline.selection_set() {
                        self.walk_class_set(&inner, root, root_key, depth + 1);
                    }
                }
                cst::Selection::FragmentSpread(spread) => {
                    if let Some(inner) = self.fragment(&spread) {
                        self.walk_class_set(&inner, root, root_key, depth + 1);
                        self.stack.pop();
                    }
                }
            }
        }
    }

    fn arguments(&self, field: &cst::Field) -> Vec<Arg> {
        let Some(arguments) = field.arguments() else {
            return Vec::new();
        };
        arguments
            .arguments()
            .filter_map(|a| {
                let value_node = a.value()?;
                let raw = Value::from_cst(&value_node);
                Some(Arg {
                    name: name_of(a.name()),
                    value: raw.resolve(self.vars),
                    range: range(a.syntax()),
                    value_start: range(value_node.syntax()).start,
                    raw,
                })
            })
            .collect()
    }

    fn plan_field(&mut self, field: &cst::Field, root: Root, path: Vec<String>) {
        let field_range = range(field.syntax());
        let site = Site {
            path,
            location: Location::at(self.source, field_range.start),
        };
        if let Some(&index) = self.seen.get(&field_range.start) {
            if let Some(known) = self.fields.get_mut(index) {
                known.sites.push(site);
            }
            return;
        }
        let class = match root {
            Root::Explore => None,
            _ => Some(field_name(field)),
        };
        let class_view = match &class {
            Some(name) => match self.view.class(name) {
                Some(cv) if cv.is_clip_managed() => Some(cv),
                _ => return,
            },
            None => None,
        };
        let args = self.arguments(field);
        let arguments_range = field.arguments().map(|a| range(a.syntax()));
        for arg in &args {
            if (arg.name == NEAR_TEXT || arg.name == NEAR_IMAGE) && contains_variable(&arg.raw) {
                let ty = argument_type(&arg.name, root, class.as_deref().unwrap_or(""));
                if let Some(message) = input_types::argument_error(&arg.name, &ty, &arg.value) {
                    self.invalid.push(GqlError {
                        message,
                        location: Location::at(self.source, arg.value_start),
                        path: None,
                    });
                    return;
                }
            }
        }
        let resolved: Vec<(String, Value)> = args
            .iter()
            .map(|a| (a.name.clone(), a.value.clone()))
            .collect();
        let outcome = match class_view {
            Some(cv) => validate::class_field(root, cv, &resolved),
            None => validate::explore(&resolved),
        };
        let outcome = outcome.map(|edits| {
            edits
                .into_iter()
                .filter_map(|(name, edit)| {
                    let arg = args.iter().find(|a| a.name == name)?;
                    // Removing the only argument must remove its parentheses: `C()` is invalid.
                    let range = match (&edit, &arguments_range) {
                        (Edit::Remove, Some(all)) if args.len() == 1 => all.clone(),
                        _ => arg.range.clone(),
                    };
                    Some(ArgEdit { range, edit })
                })
                .collect::<Vec<_>>()
        });
        if matches!(&outcome, Ok(edits) if edits.is_empty()) {
            return;
        }
        let tenant = resolved
            .iter()
            .find(|(k, _)| k == "tenant")
            .and_then(|(_, v)| v.as_str().map(str::to_string));
        self.seen.insert(field_range.start, self.fields.len());
        self.fields.push(FieldPlan {
            root,
            class,
            tenant,
            range: field_range,
            key: response_key(field),
            sites: vec![site],
            outcome,
        });
    }
}
