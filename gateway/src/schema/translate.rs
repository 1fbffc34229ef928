//! Translation of multi2vec-clip classes between the user's form and the form an unmodified
//! Weaviate accepts and stores (spec §6; the stored form is described in `view.rs`).
//!
//! - Legacy vector: `vectorizer: "multi2vec-clip"` ⇄ `vectorizer: "none"` with
//!   `moduleConfig["multi2vec-clip"]` kept verbatim. Weaviate accepts a clip class with no
//!   module config at all; such a class is stored with `moduleConfig["multi2vec-clip"]: null`
//!   (Weaviate's schema parser allows a null module entry) so that it is still recognisably
//!   clip-managed, and the marker is removed again on read.
//! - Named vector `<v>`: `vectorizer: {"multi2vec-clip": X}` ⇄ `vectorizer: {"none": {"multi2vec-clip": X}}`.
//!   Weaviate validates nothing inside a `none` vectorizer's config and its parser keeps the map
//!   as it is (usecases/schema/parser.go `moduleConfig`: only top-level numbers of each module
//!   entry are normalized, and here the only entry is an object).
//!
//! A genuine `none` class (no clip module entry) is never touched.

use serde_json::{Map, Value};

use super::MODULE;

const NONE: &str = "none";

/// The user's class (as sent to `POST /v1/schema` or `PUT /v1/schema/{class}`) in the form to
/// store upstream. Returns whether anything was translated.
pub fn to_upstream(class: &mut Value) -> bool {
    let mut changed = false;
    let Some(obj) = class.as_object_mut() else {
        return false;
    };
    if obj.get("vectorizer").and_then(Value::as_str) == Some(MODULE) {
        obj.insert("vectorizer".into(), Value::String(NONE.into()));
        let module_config = obj
            .entry("moduleConfig")
            .or_insert_with(|| Value::Object(Map::new()));
        if module_config.is_null() {
            *module_config = Value::Object(Map::new());
        }
        if let Some(mc) = module_config.as_object_mut() {
            mc.entry(MODULE).or_insert(Value::Null);
        }
        changed = true;
    }
    if let Some(vc) = obj.get_mut("vectorConfig").and_then(Value::as_object_mut) {
        for config in vc.values_mut() {
            let Some(vectorizer) = config.get_mut("vectorizer") else {
                continue;
            };
            let is_clip = vectorizer
                .as_object()
                .is_some_and(|v| v.len() == 1 && v.contains_key(MODULE));
            if is_clip {
                let inner = std::mem::take(vectorizer);
                let mut none = Map::new();
                none.insert(NONE.into(), inner);
                *vectorizer = Value::Object(none);
                changed = true;
            }
        }
    }
    changed
}

/// A class as the upstream stores it, in the form the user created it. Returns whether
/// anything was translated.
pub fn from_upstream(class: &mut Value) -> bool {
    let mut changed = false;
    let Some(obj) = class.as_object_mut() else {
        return false;
    };
    let legacy_clip = obj.get("vectorizer").and_then(Value::as_str) == Some(NONE)
        && obj
            .get("moduleConfig")
            .and_then(Value::as_object)
            .is_some_and(|mc| mc.contains_key(MODULE));
    if legacy_clip {
        obj.insert("vectorizer".into(), Value::String(MODULE.into()));
        let mut drop_module_config = false;
        if let Some(mc) = obj.get_mut("moduleConfig").and_then(Value::as_object_mut) {
            if mc.get(MODULE).is_some_and(Value::is_null) {
                mc.shift_remove(MODULE);
                drop_module_config = mc.is_empty();
            }
        }
        if drop_module_config {
            obj.shift_remove("moduleConfig");
        }
        changed = true;
    }
    if let Some(vc) = obj.get_mut("vectorConfig").and_then(Value::as_object_mut) {
        for config in vc.values_mut() {
            let Some(vectorizer) = config.get_mut("vectorizer") else {
                continue;
            };
            let stored = vectorizer
                .get_mut(NONE)
                .and_then(Value::as_object_mut)
                .and_then(|none| none.shift_remove_entry(MODULE));
            if let Some((key, cfg)) = stored {
                let mut user = Map::new();
                user.insert(key, cfg);
                *vectorizer = Value::Object(user);
                changed = true;
            }
        }
    }
    changed
}

/// `GET /v1/schema`'s answer (`{"classes":[…], …}`) with every managed class in the user's form.
pub fn schema_from_upstream(schema: &mut Value) -> bool {
    let mut changed = false;
    if let Some(classes) = schema.get_mut("classes").and_then(Value::as_array_mut) {
        for class in classes {
            changed |= from_upstream(class);
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn legacy_round_trip() {
        let user = json!({"class": "A", "vectorizer": "multi2vec-clip", "moduleConfig": {
            "multi2vec-clip": {"textFields": ["t"], "weights": {"textFields": [1]}},
            "generative-openai": {}
        }, "properties": []});
        let mut stored = user.clone();
        assert!(to_upstream(&mut stored));
        assert_eq!(stored["vectorizer"], "none");
        assert_eq!(stored["moduleConfig"], user["moduleConfig"]);
        assert!(from_upstream(&mut stored));
        assert_eq!(stored, user);
        // Key order is kept.
        assert_eq!(
            serde_json::to_string(&stored).unwrap(),
            serde_json::to_string(&user).unwrap()
        );
    }

    #[test]
    fn legacy_without_config_gets_a_null_marker() {
        let user = json!({"class": "A", "vectorizer": "multi2vec-clip"});
        let mut stored = user.clone();
        to_upstream(&mut stored);
        assert_eq!(
            stored,
            json!({"class": "A", "vectorizer": "none", "moduleConfig": {"multi2vec-clip": null}})
        );
        from_upstream(&mut stored);
        assert_eq!(stored, user);

        let user = json!({"class": "A", "vectorizer": "multi2vec-clip", "moduleConfig": {"x": {}}});
        let mut stored = user.clone();
        to_upstream(&mut stored);
        from_upstream(&mut stored);
        assert_eq!(stored, user);
    }

    #[test]
    fn named_round_trip() {
        let user = json!({"class": "A", "vectorConfig": {
            "clip": {"vectorizer": {"multi2vec-clip": {"imageFields": ["i"]}}, "vectorIndexType": "hnsw"},
            "plain": {"vectorizer": {"none": {}}, "vectorIndexType": "hnsw"}
        }});
        let mut stored = user.clone();
        assert!(to_upstream(&mut stored));
        assert_eq!(
            stored["vectorConfig"]["clip"]["vectorizer"],
            json!({"none": {"multi2vec-clip": {"imageFields": ["i"]}}})
        );
        assert_eq!(
            stored["vectorConfig"]["plain"],
            user["vectorConfig"]["plain"]
        );
        assert!(from_upstream(&mut stored));
        assert_eq!(stored, user);
    }

    #[test]
    fn genuine_none_is_untouched() {
        let mut class = json!({"class": "B", "vectorizer": "none", "moduleConfig": {"generative-openai": {}},
            "vectorConfig": {"v": {"vectorizer": {"none": {}}}}});
        let before = class.clone();
        assert!(!from_upstream(&mut class));
        assert!(!to_upstream(&mut class));
        assert_eq!(class, before);
    }
}
