//! The input types the multi2vec-clip module adds (spec §1.3) and graphql-go's literal check
//! against them (`ArgumentsOfCorrectTypeRule` / `isValidLiteralValue`, spec §1.5).
//!
//! Upstream Weaviate has no module, so it cannot check these literals: the gateway must, with
//! the same messages, before the argument is rewritten away.

use super::errors::Root;
use super::literal::Value;

/// A GraphQL input type, as far as the module's arguments need it.
#[derive(Debug, Clone)]
pub enum Ty {
    NonNull(Box<Ty>),
    List(Box<Ty>),
    /// `String`, `Float`, `Boolean`.
    Scalar(&'static str),
    Enum(&'static str, &'static [&'static str]),
    Object(InputObject),
    /// A custom scalar that accepts any literal (`Weights`).
    Any(&'static str),
}

#[derive(Debug, Clone)]
pub struct InputObject {
    pub name: String,
    /// In definition order (graphql-go iterates a map; the order of several problems in one
    /// message is therefore not deterministic upstream).
    pub fields: Vec<(&'static str, Ty)>,
}

const COMBINATION_METHODS: &[&str] = &[
    "minimum",
    "average",
    "sum",
    "manualWeights",
    "relativeScore",
];

fn nullable_strings() -> Ty {
    Ty::List(Box::new(Ty::Scalar("String")))
}

fn float() -> Ty {
    Ty::Scalar("Float")
}

fn movement(prefix: &str, kind: &str) -> Ty {
    Ty::Object(InputObject {
        name: format!("{prefix}{kind}"),
        fields: vec![
            ("concepts", nullable_strings()),
            (
                "objects",
                Ty::List(Box::new(Ty::Object(InputObject {
                    name: format!("{prefix}{kind}MovementObjectsInpObj"),
                    fields: vec![
                        ("id", Ty::Scalar("String")),
                        ("beacon", Ty::Scalar("String")),
                    ],
                }))),
            ),
            ("force", Ty::NonNull(Box::new(float()))),
        ],
    })
}

/// `nearText`'s input type for a class field of `root` (`targets` only in Get, spec §1.3; no
/// `autocorrect`, which needs a text-spellcheck module).
pub fn near_text(root: Root, class: &str) -> Ty {
    let prefix = root.type_prefix(class);
    let mut fields = vec![
        ("concepts", Ty::NonNull(Box::new(nullable_strings()))),
        ("certainty", float()),
        ("distance", float()),
        ("moveTo", movement(&prefix, "MoveTo")),
        ("moveAwayFrom", movement(&prefix, "MoveAwayFrom")),
        ("targetVectors", nullable_strings()),
    ];
    if root == Root::Get {
        fields.push((
            "targets",
            Ty::Object(InputObject {
                name: format!("{prefix}nearTextTargetInpObj"),
                fields: vec![
                    ("targetVectors", nullable_strings()),
                    (
                        "combinationMethod",
                        Ty::Enum("targetCombinationEnum", COMBINATION_METHODS),
                    ),
                    ("weights", Ty::Any("Weights")),
                ],
            }),
        ));
    }
    Ty::Object(InputObject {
        name: format!("{prefix}NearTextInpObj"),
        fields,
    })
}

/// `nearImage`'s input type (`Img2VecImage<prefix>NearImageInpObj`, spec §1.3).
pub fn near_image(root: Root, class: &str) -> Ty {
    let prefix = root.type_prefix(class);
    Ty::Object(InputObject {
        name: format!("Img2VecImage{prefix}NearImageInpObj"),
        fields: vec![
            ("image", Ty::NonNull(Box::new(Ty::Scalar("String")))),
            ("certainty", float()),
            ("distance", float()),
            ("targetVectors", nullable_strings()),
        ],
    })
}

impl Ty {
    /// The type as graphql-go names it in messages: `String`, `[String]`, `Float!`.
    pub fn display(&self) -> String {
        match self {
            Ty::NonNull(inner) => format!("{}!", inner.display()),
            Ty::List(inner) => format!("[{}]", inner.display()),
            Ty::Scalar(name) | Ty::Enum(name, _) | Ty::Any(name) => name.to_string(),
            Ty::Object(o) => o.name.clone(),
        }
    }
}

/// The problems of `value` (`None` = absent) against `ty`, one line each, as graphql-go words
/// them. Empty when valid. Variables are valid here (they are checked when coerced).
pub fn problems(ty: &Ty, value: Option<&Value>) -> Vec<String> {
    if let Some(Value::Variable(_)) = value {
        return Vec::new();
    }
    match ty {
        Ty::NonNull(inner) => match value {
            None | Some(Value::Null) => {
                vec![format!("Expected \"{}!\", found null.", inner.display())]
            }
            Some(v) => problems(inner, Some(v)),
        },
        _ => match value {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => problems_of_present(ty, v),
        },
    }
}

fn problems_of_present(ty: &Ty, value: &Value) -> Vec<String> {
    match ty {
        Ty::NonNull(_) => problems(ty, Some(value)),
        Ty::List(item) => match value {
            Value::List(items) => items
                .iter()
                .enumerate()
                .flat_map(|(i, v)| {
                    problems(item, Some(v))
                        .into_iter()
                        .map(move |p| format!("In element #{i}: {p}"))
                })
                .collect(),
            single => problems(item, Some(single)),
        },
        Ty::Scalar(name) => {
            let ok = match *name {
                "String" => matches!(value, Value::String(_)),
                "Float" => {
                    matches!(value, Value::Float(_) | Value::Int(_)) && value.as_f64().is_some()
                }
                "Boolean" => matches!(value, Value::Boolean(_)),
                _ => true,
            };
            if ok {
                Vec::new()
            } else {
                vec![format!(
                    "Expected type \"{name}\", found {}.",
                    value.print_go()
                )]
            }
        }
        Ty::Enum(name, values) => match value {
            Value::Enum(e) if values.contains(&e.as_str()) => Vec::new(),
            other => vec![format!(
                "Expected type \"{name}\", found {}.",
                other.print_go()
            )],
        },
        Ty::Any(_) => Vec::new(),
        Ty::Object(object) => {
            let Value::Object(fields) = value else {
                return vec![format!(
                    "Expected \"{}\", found not an object.",
                    object.name
                )];
            };
            let mut out: Vec<String> = fields
                .iter()
                .filter(|(k, _)| !object.fields.iter().any(|(name, _)| name == k))
                .map(|(k, _)| format!("In field \"{k}\": Unknown field."))
                .collect();
            for (name, field_ty) in &object.fields {
                let field_value = fields.iter().find(|(k, _)| k == name).map(|(_, v)| v);
                out.extend(
                    problems(field_ty, field_value)
                        .into_iter()
                        .map(|p| format!("In field \"{name}\": {p}")),
                );
            }
            out
        }
    }
}

/// graphql-go's `Argument "<arg>" has invalid value <literal>.` message, one `\n`-prefixed line
/// per problem; `None` when the value is valid.
pub fn argument_error(arg: &str, ty: &Ty, value: &Value) -> Option<String> {
    let problems = problems(ty, Some(value));
    if problems.is_empty() {
        return None;
    }
    let mut message = format!("Argument \"{arg}\" has invalid value {}.", value.print_go());
    for p in problems {
        message.push('\n');
        message.push_str(&p);
    }
    Some(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(fields: Vec<(&str, Value)>) -> Value {
        Value::Object(
            fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
    }

    #[test]
    fn literal_messages() {
        let ty = near_text(Root::Get, "Item");
        let cases: Vec<(Value, Option<&str>)> = vec![
            (
                obj(vec![("concepts", Value::List(vec![Value::String("a".into())]))]),
                None,
            ),
            (
                obj(vec![]),
                Some("Argument \"nearText\" has invalid value {}.\nIn field \"concepts\": Expected \"[String]!\", found null."),
            ),
            (
                obj(vec![
                    ("concepts", Value::List(vec![Value::String("a".into())])),
                    ("moveTo", obj(vec![("concepts", Value::List(vec![]))])),
                ]),
                Some("Argument \"nearText\" has invalid value {concepts: [\"a\"], moveTo: {concepts: []}}.\nIn field \"moveTo\": In field \"force\": Expected \"Float!\", found null."),
            ),
            (
                obj(vec![
                    ("concepts", Value::String("a".into())),
                    ("bogus", Value::Int("1".into())),
                ]),
                Some("Argument \"nearText\" has invalid value {concepts: \"a\", bogus: 1}.\nIn field \"bogus\": Unknown field."),
            ),
            (
                obj(vec![
                    ("concepts", Value::List(vec![Value::Int("1".into())])),
                    ("certainty", Value::String("high".into())),
                ]),
                Some("Argument \"nearText\" has invalid value {concepts: [1], certainty: \"high\"}.\nIn field \"concepts\": In element #0: Expected type \"String\", found 1.\nIn field \"certainty\": Expected type \"Float\", found \"high\"."),
            ),
            (
                Value::String("x".into()),
                Some("Argument \"nearText\" has invalid value \"x\".\nExpected \"GetObjectsItemNearTextInpObj\", found not an object."),
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(argument_error("nearText", &ty, &value).as_deref(), expected);
        }
    }

    #[test]
    fn aggregate_has_no_targets_and_images_need_image() {
        let ty = near_text(Root::Aggregate, "Item");
        let v = obj(vec![
            ("concepts", Value::List(vec![])),
            ("targets", obj(vec![])),
        ]);
        assert_eq!(
            argument_error("nearText", &ty, &v).unwrap(),
            "Argument \"nearText\" has invalid value {concepts: [], targets: {}}.\nIn field \"targets\": Unknown field."
        );
        let ty = near_image(Root::Explore, "");
        assert_eq!(
            argument_error("nearImage", &ty, &obj(vec![])).unwrap(),
            "Argument \"nearImage\" has invalid value {}.\nIn field \"image\": Expected \"String!\", found null."
        );
        assert_eq!(ty.display(), "Img2VecImageExploreNearImageInpObj");
    }
}
