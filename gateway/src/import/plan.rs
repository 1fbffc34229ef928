//! Import step 1 (pure): for one object of a clip-managed class, what must be embedded for each
//! clip target vector, in the order Weaviate's multi2vec-clip module embeds it (spec §5.3, §5.5).

use serde_json::{Map, Value};

use crate::schema::{ClassView, ClipSettings, SchemaView};

/// What one clip target vector of one object needs.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetPlan {
    /// `None` for the legacy (class-level) vector, else the named vector.
    pub target: Option<String>,
    /// Texts in property-name order (spec §5.3 step 1); vectors come texts first, then images.
    pub texts: Vec<String>,
    /// Base64 images, verbatim, in property-name order.
    pub images: Vec<String>,
    /// `weights.textFields ++ weights.imageFields` in config order, not normalized; `None` when
    /// no weights are configured (spec §5.3 step 4).
    pub weights: Option<Vec<f32>>,
}

/// Why an object is refused before any inference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// Weaviate's property validation of a `blob` (spec §5.3), which runs before vectorization.
    #[error(
        "invalid blob property '{property}' on class '{class}': not a valid blob base64 string"
    )]
    InvalidBlob { property: String, class: String },
}

/// The targets of `object` that the gateway must vectorize, each with its inputs. A target is
/// left out when the client sent its vector (legacy: `vector` present and not null, even `[]`;
/// named: `vectors.<t>` non-empty, spec §5.5) or when no configured field has a value (the object
/// is then stored without that vector, spec §5.3 step 2).
pub fn plan_object(
    class: &ClassView,
    view: &SchemaView,
    object: &Value,
) -> Result<Vec<TargetPlan>, PlanError> {
    let empty = Map::new();
    let properties = object
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let props = normalized_properties(properties);
    validate_blobs(class, view, &props)?;
    let mut plans = Vec::new();
    for target in &class.clip_targets {
        if client_sent_vector(object, target.name.as_deref()) {
            continue;
        }
        let (texts, images) = inputs(&target.settings, class, view, &props);
        if texts.is_empty() && images.is_empty() {
            continue;
        }
        plans.push(TargetPlan {
            target: target.name.clone(),
            texts,
            images,
            weights: weights(&target.settings),
        });
    }
    Ok(plans)
}

/// Property names as Weaviate's validation leaves them (first letter lower-cased), sorted
/// byte-wise (`sort.Strings`).
fn normalized_properties(properties: &Map<String, Value>) -> Vec<(String, &Value)> {
    let mut props: Vec<(String, &Value)> = properties
        .iter()
        .map(|(k, v)| (lowercase_first(k), v))
        .collect();
    props.sort_by(|a, b| a.0.cmp(&b.0));
    props
}

fn lowercase_first(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Whether the client supplied the vector of `target` itself (spec §5.5).
pub fn client_sent_vector(object: &Value, target: Option<&str>) -> bool {
    match target {
        None => object.get("vector").is_some_and(|v| !v.is_null()),
        Some(name) => object
            .get("vectors")
            .and_then(|v| v.get(name))
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty()),
    }
}

/// Every `blob` property must be Weaviate base64; checked for all blob properties, as
/// Weaviate's validation does, before anything is embedded.
fn validate_blobs(
    class: &ClassView,
    view: &SchemaView,
    props: &[(String, &Value)],
) -> Result<(), PlanError> {
    for (name, value) in props {
        if view.property_type(&class.name, name) != Some("blob") {
            continue;
        }
        if let Some(s) = value.as_str() {
            if !is_weaviate_base64(s) {
                return Err(PlanError::InvalidBlob {
                    property: name.clone(),
                    class: class.name.clone(),
                });
            }
        }
    }
    Ok(())
}

/// Weaviate's blob check, the regex
/// `^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})$`:
/// non-empty, a multiple of 4 long, padding only at the very end (no data-URI prefix, no
/// whitespace).
pub fn is_weaviate_base64(s: &str) -> bool {
    let bytes = s.as_bytes();
    if bytes.is_empty() || bytes.len() & 3 != 0 {
        return false;
    }
    let alphabet = |b: &u8| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/';
    let padding = bytes.iter().rev().take_while(|b| **b == b'=').count();
    padding <= 2 && bytes[..bytes.len() - padding].iter().all(alphabet)
}

/// How Weaviate's validation converts a property value before the module sees it (spec §5.3):
/// text-like values become strings, text arrays string lists; dates and uuids (typed by the
/// schema) and everything else are not strings and are ignored.
enum Converted<'a> {
    Text(&'a str),
    Texts(Vec<&'a str>),
    Other,
}

fn convert<'a>(value: &'a Value, declared: Option<&str>) -> Converted<'a> {
    match value {
        Value::String(s) => match declared {
            None | Some("text" | "string" | "blob" | "blobHash") => Converted::Text(s),
            Some(_) => Converted::Other,
        },
        Value::Array(items) => match declared {
            None | Some("text[]" | "string[]") => items
                .iter()
                .map(Value::as_str)
                .collect::<Option<Vec<_>>>()
                .map_or(Converted::Other, Converted::Texts),
            Some(_) => Converted::Other,
        },
        _ => Converted::Other,
    }
}

/// `texts` and `images` of one target: properties in sorted order; a string goes to images if
/// the property is an image field and to texts if it is a text field (both when in both); a
/// string array contributes all its elements to texts when it is a text field.
fn inputs(
    settings: &ClipSettings,
    class: &ClassView,
    view: &SchemaView,
    props: &[(String, &Value)],
) -> (Vec<String>, Vec<String>) {
    let mut texts = Vec::new();
    let mut images = Vec::new();
    for (name, value) in props {
        let is_text = settings.text_fields.iter().any(|f| f == name);
        let is_image = settings.image_fields.iter().any(|f| f == name);
        if !is_text && !is_image {
            continue;
        }
        match convert(value, view.property_type(&class.name, name)) {
            Converted::Text(s) => {
                if is_image {
                    images.push(s.to_string());
                }
                if is_text {
                    texts.push(s.to_string());
                }
            }
            Converted::Texts(list) if is_text => {
                texts.extend(list.into_iter().map(str::to_string));
            }
            Converted::Texts(_) | Converted::Other => {}
        }
    }
    (texts, images)
}

fn weights(settings: &ClipSettings) -> Option<Vec<f32>> {
    let all: Vec<f32> = settings
        .text_weights
        .iter()
        .chain(&settings.image_weights)
        .copied()
        .collect();
    (!all.is_empty()).then_some(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema(class: Value) -> (ClassView, SchemaView) {
        let view = SchemaView::from_upstream(&json!({ "classes": [class] }));
        let class = view.classes().next().cloned().expect("one class");
        (class, view)
    }

    fn legacy(cfg: Value) -> (ClassView, SchemaView) {
        schema(
            json!({"class": "C", "vectorizer": "none", "moduleConfig": {"multi2vec-clip": cfg},
            "properties": [
                {"name": "title", "dataType": ["text"]},
                {"name": "description", "dataType": ["text"]},
                {"name": "tags", "dataType": ["text[]"]},
                {"name": "image", "dataType": ["blob"]},
                {"name": "when", "dataType": ["date"]}
            ]}),
        )
    }

    #[test]
    fn sorted_properties_texts_then_images_and_text_arrays() {
        let (class, view) = legacy(
            json!({"textFields": ["title", "tags", "description", "when"],
            "imageFields": ["image"], "weights": {"textFields": [1, 2, 3, 4], "imageFields": [5]}}),
        );
        let object = json!({"class": "C", "properties": {
            "title": "T", "Tags": ["a", "b"], "description": "D", "image": "AAAA",
            "when": "2020-01-01T00:00:00Z", "other": "x"}});
        let plans = plan_object(&class, &view, &object).unwrap();
        assert_eq!(
            plans,
            vec![TargetPlan {
                target: None,
                texts: vec!["D".into(), "a".into(), "b".into(), "T".into()],
                images: vec!["AAAA".into()],
                weights: Some(vec![1.0, 2.0, 3.0, 4.0, 5.0]),
            }]
        );
    }

    #[test]
    fn skipped_when_the_client_sent_a_vector_or_nothing_to_embed() {
        let (class, view) = legacy(json!({"textFields": ["title"]}));
        for object in [
            json!({"properties": {"title": "x"}, "vector": []}),
            json!({"properties": {"title": "x"}, "vector": [1.0]}),
            json!({"properties": {"description": "x"}}),
            json!({}),
        ] {
            assert_eq!(
                plan_object(&class, &view, &object).unwrap(),
                vec![],
                "{object}"
            );
        }
        let object = json!({"properties": {"title": "x"}, "vector": null});
        assert_eq!(plan_object(&class, &view, &object).unwrap().len(), 1);
    }

    #[test]
    fn named_targets_are_independent() {
        let (class, view) = schema(json!({"class": "N", "vectorConfig": {
            "a": {"vectorizer": {"none": {"multi2vec-clip": {"textFields": ["t"]}}}},
            "b": {"vectorizer": {"none": {"multi2vec-clip": {"imageFields": ["i"]}}}},
            "c": {"vectorizer": {"none": {}}}
        }}));
        let object =
            json!({"properties": {"t": "x", "i": "QUJD"}, "vectors": {"a": [], "b": [0.5]}});
        let plans = plan_object(&class, &view, &object).unwrap();
        assert_eq!(plans.len(), 1);
        assert_eq!(plans[0].target.as_deref(), Some("a"));
        assert_eq!(plans[0].texts, vec!["x".to_string()]);
        assert_eq!(plans[0].weights, None);
    }

    #[test]
    fn invalid_blob_is_refused_before_inference() {
        let (class, view) = legacy(json!({"imageFields": ["image"]}));
        let object = json!({"properties": {"image": "data:image/png;base64,AAAA"}});
        assert_eq!(
            plan_object(&class, &view, &object).unwrap_err().to_string(),
            "invalid blob property 'image' on class 'C': not a valid blob base64 string"
        );
    }

    #[test]
    fn weaviate_base64() {
        for ok in ["AAAA", "AA==", "AAA=", "ab+/cd12", "iVBORw0KGgo="] {
            assert!(is_weaviate_base64(ok), "{ok}");
        }
        for bad in [
            "", "A", "AAA", "A===", "AA=A", "AA AA", "AAAA\n", "=AAA", "AA-_",
        ] {
            assert!(!is_weaviate_base64(bad), "{bad}");
        }
    }
}
