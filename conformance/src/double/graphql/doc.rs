//! Document helpers: operation selection, variables, fragments, directives and argument values.

use std::collections::{BTreeMap, HashMap};

use graphql_parser::query::{
    Definition, Document, Field, FragmentDefinition, OperationDefinition, Selection, SelectionSet,
    Value as GqlValue,
};
use serde_json::{Map, Value};

use super::locate::Source;

pub type Doc<'a> = Document<'a, String>;
pub type GField<'a> = Field<'a, String>;

/// An argument value with variables substituted.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Null,
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    Enum(String),
    List(Vec<Arg>),
    Object(BTreeMap<String, Arg>),
    /// A value that came from a variable; custom scalars (vectors) cannot use it (§1.6).
    Variable(Box<Arg>),
}

impl Arg {
    fn inner(&self) -> &Arg {
        match self {
            Arg::Variable(v) => v.inner(),
            other => other,
        }
    }

    pub fn is_variable(&self) -> bool {
        matches!(self, Arg::Variable(_))
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self.inner() {
            Arg::Int(i) => Some(*i as f64),
            Arg::Float(f) => Some(*f),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self.inner() {
            Arg::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self.inner() {
            Arg::Str(s) | Arg::Enum(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self.inner() {
            Arg::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&[Arg]> {
        match self.inner() {
            Arg::List(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&BTreeMap<String, Arg>> {
        match self.inner() {
            Arg::Object(m) => Some(m),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.inner(), Arg::Null)
    }

    /// A field of an input object (`None` when absent or null).
    pub fn get(&self, key: &str) -> Option<&Arg> {
        self.as_object()?.get(key).filter(|v| !v.is_null())
    }

    fn from_json(v: &Value) -> Arg {
        match v {
            Value::Null => Arg::Null,
            Value::Bool(b) => Arg::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Arg::Int(i),
                None => Arg::Float(n.as_f64().unwrap_or(0.0)),
            },
            Value::String(s) => Arg::Str(s.clone()),
            Value::Array(items) => Arg::List(items.iter().map(Arg::from_json).collect()),
            Value::Object(m) => Arg::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), Arg::from_json(v)))
                    .collect(),
            ),
        }
    }
}

/// Everything execution needs about the chosen operation.
pub struct Ctx<'q> {
    pub src: Source<'q>,
    fragments: HashMap<&'q str, &'q FragmentDefinition<'q, String>>,
    variables: Map<String, Value>,
}

/// Picks the operation (§2.1 `operationName`), returning its selection set.
pub fn select_operation<'q>(
    doc: &'q Doc<'q>,
    operation_name: Option<&str>,
) -> Result<(&'q SelectionSet<'q, String>, Map<String, Value>), String> {
    let ops: Vec<&OperationDefinition<'q, String>> = doc
        .definitions
        .iter()
        .filter_map(|d| match d {
            Definition::Operation(op) => Some(op),
            Definition::Fragment(_) => None,
        })
        .collect();
    let name_of = |op: &OperationDefinition<'q, String>| -> Option<String> {
        match op {
            OperationDefinition::Query(q) => q.name.clone(),
            OperationDefinition::Mutation(m) => m.name.clone(),
            OperationDefinition::Subscription(s) => s.name.clone(),
            OperationDefinition::SelectionSet(_) => None,
        }
    };
    let op = match operation_name.filter(|n| !n.is_empty()) {
        Some(wanted) => ops
            .iter()
            .find(|op| name_of(op).as_deref() == Some(wanted))
            .ok_or_else(|| format!("Unknown operation named \"{wanted}\"."))?,
        None => match ops.as_slice() {
            [only] => only,
            [] => return Err("Must provide an operation.".into()),
            _ => {
                return Err(
                    "Must provide operation name if query contains multiple operations.".into(),
                )
            }
        },
    };
    match op {
        OperationDefinition::SelectionSet(s) => Ok((s, Map::new())),
        OperationDefinition::Query(q) => {
            let defaults = q
                .variable_definitions
                .iter()
                .filter_map(|v| Some((v.name.clone(), gql_to_json(v.default_value.as_ref()?))))
                .collect();
            Ok((&q.selection_set, defaults))
        }
        OperationDefinition::Mutation(_) => Err("Schema is not configured for mutations".into()),
        OperationDefinition::Subscription(_) => {
            Err("Schema is not configured for subscriptions".into())
        }
    }
}

fn gql_to_json(v: &GqlValue<'_, String>) -> Value {
    match v {
        GqlValue::Null | GqlValue::Variable(_) => Value::Null,
        GqlValue::Int(n) => n.as_i64().map_or(Value::Null, Value::from),
        GqlValue::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        GqlValue::String(s) | GqlValue::Enum(s) => Value::String(s.clone()),
        GqlValue::Boolean(b) => Value::Bool(*b),
        GqlValue::List(items) => Value::Array(items.iter().map(gql_to_json).collect()),
        GqlValue::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), gql_to_json(v))).collect())
        }
    }
}

impl<'q> Ctx<'q> {
    pub fn new(
        src: &'q str,
        doc: &'q Doc<'q>,
        defaults: Map<String, Value>,
        variables: &Map<String, Value>,
    ) -> Self {
        let fragments = doc
            .definitions
            .iter()
            .filter_map(|d| match d {
                Definition::Fragment(f) => Some((f.name.as_str(), f)),
                Definition::Operation(_) => None,
            })
            .collect();
        let mut vars = defaults;
        vars.extend(variables.clone());
        Self {
            src: Source::new(src),
            fragments,
            variables: vars,
        }
    }

    /// Converts a literal, substituting variables.
    pub fn arg(&self, v: &GqlValue<'_, String>) -> Arg {
        match v {
            GqlValue::Variable(name) => Arg::Variable(Box::new(
                self.variables
                    .get(name.as_str())
                    .map_or(Arg::Null, Arg::from_json),
            )),
            GqlValue::Null => Arg::Null,
            GqlValue::Int(n) => n.as_i64().map_or(Arg::Null, Arg::Int),
            GqlValue::Float(f) => Arg::Float(*f),
            GqlValue::String(s) => Arg::Str(s.clone()),
            GqlValue::Boolean(b) => Arg::Bool(*b),
            GqlValue::Enum(e) => Arg::Enum(e.clone()),
            GqlValue::List(items) => Arg::List(items.iter().map(|i| self.arg(i)).collect()),
            GqlValue::Object(m) => {
                Arg::Object(m.iter().map(|(k, v)| (k.clone(), self.arg(v))).collect())
            }
        }
    }

    /// The arguments of a field by name (first occurrence wins; duplicates are a validation error).
    pub fn args(&self, field: &GField<'q>) -> BTreeMap<String, Arg> {
        let mut out = BTreeMap::new();
        for (name, value) in &field.arguments {
            out.entry(name.clone()).or_insert_with(|| self.arg(value));
        }
        out
    }

    /// `@skip` / `@include`.
    fn included(&self, directives: &[graphql_parser::query::Directive<'q, String>]) -> bool {
        directives.iter().all(|d| {
            let cond = d
                .arguments
                .iter()
                .find(|(n, _)| n == "if")
                .and_then(|(_, v)| self.arg(v).as_bool())
                .unwrap_or(false);
            match d.name.as_str() {
                "skip" => !cond,
                "include" => cond,
                _ => true,
            }
        })
    }

    /// Fields of a selection set with fragments expanded, in document order.
    pub fn fields(&self, set: &'q SelectionSet<'q, String>) -> Vec<&'q GField<'q>> {
        let mut out = Vec::new();
        self.collect(set, &mut out, 0);
        out
    }

    fn collect(
        &self,
        set: &'q SelectionSet<'q, String>,
        out: &mut Vec<&'q GField<'q>>,
        depth: usize,
    ) {
        if depth > 32 {
            return;
        }
        for item in &set.items {
            match item {
                Selection::Field(f) if self.included(&f.directives) => out.push(f),
                Selection::Field(_) => {}
                Selection::InlineFragment(inline) if self.included(&inline.directives) => {
                    self.collect(&inline.selection_set, out, depth + 1)
                }
                Selection::InlineFragment(_) => {}
                Selection::FragmentSpread(spread) if self.included(&spread.directives) => {
                    if let Some(frag) = self.fragments.get(spread.fragment_name.as_str()) {
                        self.collect(&frag.selection_set, out, depth + 1);
                    }
                }
                Selection::FragmentSpread(_) => {}
            }
        }
    }

    /// graphql-go location of a field.
    pub fn field_location(&self, field: &GField<'q>) -> (usize, usize) {
        self.src.location(self.src.offset_of(field.position))
    }
}

/// The response key of a field (alias or name).
pub fn key(field: &GField<'_>) -> String {
    field.alias.clone().unwrap_or_else(|| field.name.clone())
}
