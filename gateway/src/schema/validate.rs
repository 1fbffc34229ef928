//! Validation of a multi2vec-clip class before it is stored upstream: what Weaviate's module runs
//! on class create (`ValidateMultiModal(["textFields","imageFields"])`, spec §5.2), with its exact
//! messages, plus the gateway's own SSRF rule for a per-class `inferenceUrl` (issue 7).
//!
//! An unmodified Weaviate skips all of this for the `none` vectorizer the class is stored with
//! (spec §6), so the gateway has to do it before forwarding.

use serde_json::Value;

use super::MODULE;

/// Why a clip class is refused. Rendered as Weaviate renders module validation errors on
/// `POST /v1/schema`: 422, `module 'multi2vec-clip': <message>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClassConfigError {
    /// The module's own validation failed (spec §5.2); several messages are joined with `, `.
    #[error("module 'multi2vec-clip': {0}")]
    Module(String),
    /// A `blobHash` media field combined with other fields (spec §5.2). This check belongs to
    /// Weaviate's module provider, not the module, so it carries no `module '…'` prefix.
    #[error("targetVector '{target}': blobHash property cannot be combined with other vectorizable fields in a multi-modal vectorizer configuration: after storage the original blob data is replaced by its hash and can no longer be used for re-vectorization when other fields change. Use a separate named vector for the blobHash property")]
    BlobHash { target: String },
    /// A per-class `inferenceUrl` the operator did not allow (no server-side fetching of
    /// arbitrary URLs, issue 7).
    #[error("module 'multi2vec-clip': inferenceUrl {url:?} is not allowed by this gateway: only the URLs given with --allowed-inference-url (CLIPGATE_ALLOWED_INFERENCE_URLS) may be used")]
    InferenceUrlNotAllowed { url: String },
}

/// Validates every multi2vec-clip configuration of a class in the user's form (legacy
/// `vectorizer: "multi2vec-clip"` with `moduleConfig["multi2vec-clip"]`, and named vectors
/// `vectorConfig.<v>.vectorizer = {"multi2vec-clip": {…}}`). Classes without clip pass.
pub fn validate_class(class: &Value, allowed_urls: &[String]) -> Result<(), ClassConfigError> {
    for (target, cfg) in clip_configs(class) {
        // The module reads a config that is not an object as empty settings.
        let empty = serde_json::Map::new();
        let settings = cfg.and_then(Value::as_object).unwrap_or(&empty);
        validate_multimodal(settings).map_err(ClassConfigError::Module)?;
        validate_blob_hash(class, target, settings)?;
        // `GetPropertyAsString`: a non-string inferenceUrl reads as unset.
        if let Some(url) = settings.get("inferenceUrl").and_then(Value::as_str) {
            if !url.is_empty() && !allowed_urls.iter().any(|a| a == url) {
                return Err(ClassConfigError::InferenceUrlNotAllowed {
                    url: url.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// The clip configurations of a class in the user's form: `(target vector name, config)`, the
/// legacy vector having the empty name as in Weaviate's messages. The config is `None` when the
/// class names the module without configuring it (Weaviate accepts that, spec §5.2).
pub fn clip_configs(class: &Value) -> Vec<(&str, Option<&Value>)> {
    let mut out = Vec::new();
    if class.get("vectorizer").and_then(Value::as_str) == Some(MODULE) {
        out.push(("", class.get("moduleConfig").and_then(|m| m.get(MODULE))));
    }
    if let Some(vc) = class.get("vectorConfig").and_then(Value::as_object) {
        for (name, config) in vc {
            if let Some(vectorizer) = config.get("vectorizer").and_then(Value::as_object) {
                if vectorizer.len() == 1 {
                    if let Some(cfg) = vectorizer.get(MODULE) {
                        out.push((name.as_str(), Some(cfg)));
                    }
                }
            }
        }
    }
    out
}

/// `ValidateMultiModal` for text and image fields: every message of every PRESENT key, joined by
/// `, ` (Weaviate joins them in map order; here text before image). The "one of them must be
/// present" check is dead code in Weaviate (spec §5.2) and is not reproduced.
fn validate_multimodal(settings: &serde_json::Map<String, Value>) -> Result<(), String> {
    let mut messages = Vec::new();
    for kind in ["text", "image"] {
        let Some(fields) = settings.get(&format!("{kind}Fields")) else {
            continue;
        };
        let count = match validate_fields(kind, fields) {
            Ok(count) => count,
            Err(message) => {
                messages.push(message);
                0
            }
        };
        if let Err(message) = validate_weights(settings, kind, count) {
            messages.push(message);
        }
    }
    if messages.is_empty() {
        Ok(())
    } else {
        Err(messages.join(", "))
    }
}

fn validate_fields(kind: &str, fields: &Value) -> Result<usize, String> {
    let Some(list) = fields.as_array() else {
        return Err(format!("{kind}Fields must be an array"));
    };
    if list.is_empty() {
        return Err(format!(
            "must contain at least one {kind} field name in {kind}Fields"
        ));
    }
    for value in list {
        match value.as_str() {
            None => return Err(format!("{kind}Field must be a string")),
            Some("") => return Err(format!("{kind}Field values cannot be empty")),
            Some(_) => {}
        }
    }
    Ok(list.len())
}

/// Weights are checked only when `weights.<kind>Fields` is an array (anything else is ignored);
/// after a failed fields check the count is 0, as in Weaviate.
fn validate_weights(
    settings: &serde_json::Map<String, Value>,
    kind: &str,
    count: usize,
) -> Result<(), String> {
    let Some(weights) = settings
        .get("weights")
        .and_then(Value::as_object)
        .and_then(|w| w.get(&format!("{kind}Fields")))
        .and_then(Value::as_array)
    else {
        return Ok(());
    };
    if weights.len() != count {
        return Err(format!(
            "weights.{kind}Fields does not equal number of {kind}Fields"
        ));
    }
    for weight in weights {
        go_number(weight)?;
    }
    Ok(())
}

/// Weaviate's `GetNumber` on a JSON-decoded value: numbers, numeric strings
/// (`strconv.ParseFloat`), else `unrecognized type: %T` with Go's type names.
pub fn go_number(value: &Value) -> Result<f32, String> {
    match value {
        Value::Number(n) => n
            .as_f64()
            .map(|f| f as f32)
            .ok_or_else(|| format!("unrecognized type: {n}")),
        Value::String(s) => go_parse_float(s).map(|f| f as f32),
        Value::Bool(_) => Err("unrecognized type: bool".into()),
        Value::Null => Err("unrecognized type: <nil>".into()),
        Value::Array(_) => Err("unrecognized type: []interface {}".into()),
        Value::Object(_) => Err("unrecognized type: map[string]interface {}".into()),
    }
}

/// `strconv.ParseFloat(s, 64)` with its error texts. Go does not trim spaces and reports
/// overflow as a range error.
fn go_parse_float(s: &str) -> Result<f64, String> {
    let quoted = go_quote(s);
    let syntax = || format!("strconv.ParseFloat: parsing {quoted}: invalid syntax");
    if s.trim() != s {
        return Err(syntax());
    }
    let value: f64 = s.parse().map_err(|_| syntax())?;
    let unsigned = s.trim_start_matches(['+', '-']).to_ascii_lowercase();
    if value.is_infinite() && !unsigned.starts_with("inf") {
        return Err(format!(
            "strconv.ParseFloat: parsing {quoted}: value out of range"
        ));
    }
    Ok(value)
}

/// Go's `%q` of a string (close enough: printable characters verbatim, the usual escapes).
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The blobHash rule of spec §5.2: a `blobHash` property among the media fields must be the only
/// vectorizable field of its vector.
fn validate_blob_hash(
    class: &Value,
    target: &str,
    settings: &serde_json::Map<String, Value>,
) -> Result<(), ClassConfigError> {
    let names = |key: &str| -> Vec<&str> {
        settings
            .get(key)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    };
    let images = names("imageFields");
    let texts = names("textFields");
    let blob_hash = |field: &str| -> bool {
        class
            .get("properties")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|p| {
                p.get("name").and_then(Value::as_str) == Some(field)
                    && p.get("dataType")
                        .and_then(|d| d.get(0))
                        .and_then(Value::as_str)
                        == Some("blobHash")
            })
    };
    if images.iter().any(|f| blob_hash(f)) && images.len() + texts.len() > 1 {
        return Err(ClassConfigError::BlobHash {
            target: target.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn legacy(cfg: Value) -> Value {
        json!({"class": "C", "vectorizer": "multi2vec-clip", "moduleConfig": {"multi2vec-clip": cfg}})
    }

    fn message(class: Value) -> String {
        validate_class(&class, &[]).unwrap_err().to_string()
    }

    #[test]
    fn accepted_configs() {
        for cfg in [
            json!({}),
            json!({"textFields": ["a"], "imageFields": ["b"], "weights": {"textFields": [1], "imageFields": ["0.5"]}}),
            // Weights for an absent kind and non-array weights are not checked.
            json!({"textFields": ["a"], "weights": {"imageFields": [1, 2, 3], "textFields": "x"}}),
            json!("not an object"),
        ] {
            assert_eq!(validate_class(&legacy(cfg), &[]), Ok(()));
        }
        // No moduleConfig at all, and classes of other vectorizers.
        assert_eq!(
            validate_class(&json!({"class": "C", "vectorizer": "multi2vec-clip"}), &[]),
            Ok(())
        );
        assert_eq!(
            validate_class(
                &json!({"class": "C", "vectorizer": "none", "moduleConfig": {"multi2vec-clip": {"textFields": 1}}}),
                &[]
            ),
            Ok(())
        );
    }

    #[test]
    fn exact_messages() {
        let cases = [
            (json!({"textFields": "title"}), "module 'multi2vec-clip': textFields must be an array"),
            (json!({"imageFields": []}), "module 'multi2vec-clip': must contain at least one image field name in imageFields"),
            (json!({"textFields": [1]}), "module 'multi2vec-clip': textField must be a string"),
            (json!({"imageFields": [""]}), "module 'multi2vec-clip': imageField values cannot be empty"),
            (json!({"textFields": ["a", "b"], "weights": {"textFields": [1]}}), "module 'multi2vec-clip': weights.textFields does not equal number of textFields"),
            (json!({"textFields": ["a"], "weights": {"textFields": [true]}}), "module 'multi2vec-clip': unrecognized type: bool"),
            (json!({"textFields": ["a"], "weights": {"textFields": [null]}}), "module 'multi2vec-clip': unrecognized type: <nil>"),
            (json!({"textFields": ["a"], "weights": {"textFields": ["x"]}}), "module 'multi2vec-clip': strconv.ParseFloat: parsing \"x\": invalid syntax"),
            (json!({"textFields": ["a"], "weights": {"textFields": ["1e400"]}}), "module 'multi2vec-clip': strconv.ParseFloat: parsing \"1e400\": value out of range"),
            // A failed fields check counts 0 fields, so present weights also mismatch.
            (json!({"textFields": "a", "weights": {"textFields": [1]}}), "module 'multi2vec-clip': textFields must be an array, weights.textFields does not equal number of textFields"),
            (json!({"textFields": [], "imageFields": [2]}), "module 'multi2vec-clip': must contain at least one text field name in textFields, imageField must be a string"),
        ];
        for (cfg, expected) in cases {
            assert_eq!(message(legacy(cfg.clone())), expected, "{cfg}");
        }
    }

    #[test]
    fn named_vectors_are_validated() {
        let class = json!({"class": "C", "vectorConfig": {
            "a": {"vectorizer": {"none": {}}},
            "b": {"vectorizer": {"multi2vec-clip": {"imageFields": "x"}}}
        }});
        assert_eq!(
            message(class),
            "module 'multi2vec-clip': imageFields must be an array"
        );
    }

    #[test]
    fn inference_url_allow_list() {
        let class = legacy(json!({"imageFields": ["i"], "inferenceUrl": "http://169.254.169.254"}));
        assert_eq!(
            validate_class(&class, &["http://clip:8080".into()]),
            Err(ClassConfigError::InferenceUrlNotAllowed {
                url: "http://169.254.169.254".into()
            })
        );
        let allowed = legacy(json!({"imageFields": ["i"], "inferenceUrl": "http://clip:8080"}));
        assert_eq!(
            validate_class(&allowed, &["http://clip:8080".into()]),
            Ok(())
        );
    }

    #[test]
    fn blob_hash_alone_only() {
        let mut class = legacy(json!({"imageFields": ["h"], "textFields": ["t"]}));
        class["properties"] =
            json!([{"name": "h", "dataType": ["blobHash"]}, {"name": "t", "dataType": ["text"]}]);
        assert!(message(class.clone())
            .starts_with("targetVector '': blobHash property cannot be combined"));
        class["moduleConfig"]["multi2vec-clip"] = json!({"imageFields": ["h"]});
        assert_eq!(validate_class(&class, &[]), Ok(()));
    }
}
