//! Class definitions: validation, defaults and the derived view the search code reads.
//!
//! Reproduces an UNMODIFIED Weaviate without vectorizer modules (spec §6): only `none` is a known
//! vectorizer, `moduleConfig` of a legacy `none` class is kept verbatim, a named-vector class may not
//! carry class-level module config, and only generative/reranker module configs may change later.
//! A new class gets Weaviate's server defaults (`schema/defaults.rs`: inverted index, replication,
//! sharding, the full vector index config, property index flags) under the user's values, so
//! `GET /v1/schema` answers what the clients' `config.get()` parses.

mod defaults;

use serde_json::{json, Map, Value};

use super::json::{go_numbers, go_v};
use super::vector::Metric;

/// A schema request Weaviate refuses; the text is Weaviate's message (HTTP 422).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct SchemaError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, SchemaError> {
    Err(SchemaError(msg.into()))
}

/// What the search and validation code needs to know about a class, parsed once from its JSON.
#[derive(Debug, Clone)]
pub struct ClassInfo {
    pub name: String,
    pub properties: Vec<PropInfo>,
    pub multi_tenancy: bool,
    pub auto_tenant_creation: bool,
    /// Metric of the unnamed (legacy) index; `None` for a class with named vectors only.
    pub legacy_metric: Option<Metric>,
    /// Named vectors in definition order.
    pub named: Vec<(String, Metric)>,
    pub replication_factor: i64,
}

/// One property: name, first `dataType` entry and tokenization.
#[derive(Debug, Clone)]
pub struct PropInfo {
    pub name: String,
    pub data_type: String,
    pub tokenization: String,
}

impl ClassInfo {
    /// Derives the view from a stored (already validated) class definition.
    pub fn from_def(def: &Map<String, Value>) -> Self {
        let name = def
            .get("class")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let properties = def
            .get("properties")
            .and_then(Value::as_array)
            .map(|props| props.iter().filter_map(PropInfo::from_json).collect())
            .unwrap_or_default();
        let mt = def.get("multiTenancyConfig");
        let flag = |key: &str| {
            mt.and_then(|m| m.get(key))
                .and_then(Value::as_bool)
                .unwrap_or(false)
        };
        let named: Vec<(String, Metric)> = def
            .get("vectorConfig")
            .and_then(Value::as_object)
            .map(|vc| {
                vc.iter()
                    .map(|(n, cfg)| (n.clone(), metric_of(cfg.get("vectorIndexConfig"))))
                    .collect()
            })
            .unwrap_or_default();
        let legacy_metric = (named.is_empty() || def.contains_key("vectorIndexConfig"))
            .then(|| metric_of(def.get("vectorIndexConfig")));
        let replication_factor = def
            .get("replicationConfig")
            .and_then(|r| r.get("factor"))
            .and_then(Value::as_i64)
            .unwrap_or(1);
        Self {
            name,
            properties,
            multi_tenancy: flag("enabled"),
            auto_tenant_creation: flag("autoTenantCreation"),
            legacy_metric,
            named,
            replication_factor,
        }
    }

    pub fn property(&self, name: &str) -> Option<&PropInfo> {
        self.properties.iter().find(|p| p.name == name)
    }

    /// The metric of a target vector (`None` = the legacy index).
    pub fn metric(&self, target: Option<&str>) -> Option<Metric> {
        match target {
            None => self.legacy_metric,
            Some(t) => self.named.iter().find(|(n, _)| n == t).map(|(_, m)| *m),
        }
    }
}

impl PropInfo {
    fn from_json(p: &Value) -> Option<Self> {
        Some(Self {
            name: p.get("name")?.as_str()?.to_owned(),
            data_type: p.get("dataType")?.get(0)?.as_str()?.to_owned(),
            tokenization: p
                .get("tokenization")
                .and_then(Value::as_str)
                .unwrap_or("word")
                .to_owned(),
        })
    }
}

fn metric_of(index_config: Option<&Value>) -> Metric {
    index_config
        .and_then(|c| c.get("distance"))
        .and_then(Value::as_str)
        .and_then(Metric::parse)
        .unwrap_or(Metric::Cosine)
}

/// Weaviate upper-cases the first letter of class names.
pub fn class_name(raw: &str) -> String {
    let mut chars = raw.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Weaviate lower-cases the first letter of property names.
pub fn property_name(raw: &str) -> String {
    let mut chars = raw.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn valid_name(name: &str, first_upper_only: bool) -> bool {
    let mut chars = name.chars();
    let first_ok = match chars.next() {
        Some(c) if first_upper_only => c.is_ascii_uppercase(),
        Some(c) => c.is_ascii_alphabetic() || c == '_',
        None => false,
    };
    first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Validates a `POST /v1/schema` body and applies Weaviate's defaults (§6 order: defaults, name,
/// properties, vector settings, module config, then parsing of module config).
pub fn prepare_new_class(body: Value) -> Result<Map<String, Value>, SchemaError> {
    let Value::Object(mut def) = go_numbers(body) else {
        return err("class must be a JSON object");
    };
    let raw_name = def.get("class").and_then(Value::as_str).unwrap_or_default();
    let name = class_name(raw_name);
    if !valid_name(&name, true) {
        return err(format!("'{name}' is not a valid class name"));
    }
    def.insert("class".into(), Value::String(name.clone()));

    let props = match def.remove("properties") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(props)) => props,
        Some(_) => return err("properties must be an array"),
    };
    let mut prepared: Vec<Value> = Vec::with_capacity(props.len());
    for p in props {
        let p = prepare_property(&name, p)?;
        let pname = p.get("name").and_then(Value::as_str).unwrap_or_default();
        if prepared
            .iter()
            .any(|q| q.get("name").and_then(Value::as_str) == Some(pname))
        {
            return err(format!(
                "class \"{name}\": conflict for property \"{pname}\": already in use or provided multiple times"
            ));
        }
        prepared.push(Value::Object(p));
    }
    def.insert("properties".into(), Value::Array(prepared));

    let named = match def.get_mut("vectorConfig") {
        Some(Value::Object(vc)) if !vc.is_empty() => {
            for (vname, cfg) in vc.iter_mut() {
                prepare_named_vector(vname, cfg)?;
            }
            true
        }
        _ => false,
    };
    if named {
        if let Some(v) = def.get("vectorizer").and_then(Value::as_str) {
            if v != "none" {
                return err(format!("vectorizer: no module with name \"{v}\" present"));
            }
        }
    } else {
        def.remove("vectorConfig");
        let vectorizer = match def.get("vectorizer").and_then(Value::as_str) {
            None | Some("") => "none".to_owned(),
            Some(v) => v.to_owned(),
        };
        if vectorizer != "none" {
            return err(format!(
                "vectorizer: no module with name \"{vectorizer}\" present"
            ));
        }
        def.insert("vectorizer".into(), Value::String(vectorizer));
    }
    if !named || def.contains_key("vectorIndexConfig") {
        prepare_index(&mut def)?;
    }

    if let Some(Value::Object(mc)) = def.get("moduleConfig") {
        if named {
            if let Some(module) = mc.keys().next() {
                return err(format!("module with name {module} doesn't exist"));
            }
        }
        for (module, cfg) in mc {
            if !(cfg.is_object() || cfg.is_null()) {
                return err(format!(
                    "module config for {module} is not a map, got {}",
                    go_v(cfg)
                ));
            }
        }
    }

    let mt = def
        .entry("multiTenancyConfig")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(mt) = mt {
        for key in ["autoTenantActivation", "autoTenantCreation", "enabled"] {
            mt.entry(key).or_insert(Value::Bool(false));
        }
    }
    apply_class_defaults(&mut def)?;
    Ok(sorted_top_level(def))
}

/// Weaviate's class-level server defaults (`defaults.rs`): inverted index, replication and
/// sharding, each laid under what the user sent.
fn apply_class_defaults(def: &mut Map<String, Value>) -> Result<(), SchemaError> {
    let multi_tenant = def
        .get("multiTenancyConfig")
        .and_then(|m| m.get("enabled"))
        .and_then(Value::as_bool)
        .unwrap_or(false);

    let inverted = object_or_null(def, "invertedIndexConfig")?;
    def.insert(
        "invertedIndexConfig".into(),
        defaults::overlay(defaults::inverted_index(), inverted),
    );

    let mut replication = defaults::overlay(
        defaults::replication(),
        object_or_null(def, "replicationConfig")?,
    );
    if let Value::Object(r) = &mut replication {
        if r.get("factor").and_then(Value::as_f64).unwrap_or(0.0) < 1.0 {
            r.insert("factor".into(), json!(1));
        }
        if r.get("deletionStrategy").and_then(Value::as_str) == Some("") {
            r.insert("deletionStrategy".into(), json!("TimeBasedResolution"));
        }
    }
    def.insert("replicationConfig".into(), replication);

    let sharding = object_or_null(def, "shardingConfig")?;
    def.insert(
        "shardingConfig".into(),
        defaults::sharding(Some(&sharding).filter(|s| s.is_object()), multi_tenant),
    );
    Ok(())
}

/// Takes `key` out of the class: an object or `null` (absent); anything else is refused as
/// Weaviate's body validation refuses it.
fn object_or_null(def: &mut Map<String, Value>, key: &str) -> Result<Value, SchemaError> {
    match def.remove(key) {
        None | Some(Value::Null) => Ok(Value::Null),
        Some(v @ Value::Object(_)) => Ok(v),
        Some(_) => err(format!("{key} must be an object")),
    }
}

/// The class's top-level keys in Weaviate's (alphabetical) model order; nested maps keep the
/// order they were built in (named vectors stay in definition order).
fn sorted_top_level(def: Map<String, Value>) -> Map<String, Value> {
    let mut entries: Vec<(String, Value)> = def.into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.into_iter().collect()
}

/// Index defaults: `vectorIndexType: "hnsw"` and the index type's full `vectorIndexConfig`
/// (`defaults.rs`; distance `cosine`), the user's values laid over them.
fn prepare_index(target: &mut Map<String, Value>) -> Result<(), SchemaError> {
    let index_type = target
        .entry("vectorIndexType")
        .or_insert_with(|| Value::String("hnsw".into()))
        .as_str()
        .unwrap_or("hnsw")
        .to_owned();
    let given = match target.remove("vectorIndexConfig") {
        None | Some(Value::Null) => Value::Null,
        Some(v @ Value::Object(_)) => v,
        Some(_) => return err("vectorIndexConfig must be an object"),
    };
    let base = defaults::vector_index(&index_type).unwrap_or_else(|| json!({"distance": "cosine"}));
    let cfg = defaults::overlay(base, given);
    let distance = cfg.get("distance").cloned().unwrap_or(Value::Null);
    target.insert("vectorIndexConfig".into(), cfg);
    match distance.as_str() {
        Some(d) if Metric::parse(d).is_some() => Ok(()),
        _ => err(format!(
            "invalid vectorIndexConfig: unrecognized or unsupported distance metric \"{}\"",
            go_v(&distance)
        )),
    }
}

fn prepare_named_vector(vname: &str, cfg: &mut Value) -> Result<(), SchemaError> {
    let Value::Object(cfg) = cfg else {
        return err(format!(
            "target vector \"{vname}\": vector config must be an object"
        ));
    };
    let module = match cfg.get("vectorizer") {
        Some(Value::Object(v)) if v.len() == 1 => v.keys().next().cloned().unwrap_or_default(),
        Some(Value::Object(v)) => {
            return err(format!(
                "class.VectorConfig.Vectorizer must consist only 1 configuration, got: {}",
                v.len()
            ))
        }
        _ => {
            return err(format!(
                "target vector \"{vname}\": vectorizer config must be an object"
            ))
        }
    };
    if module != "none" {
        return err(format!(
            "target vector \"{vname}\": vectorizer: no module with name \"{module}\" present"
        ));
    }
    prepare_index(cfg)
}

/// Validates one property and applies defaults (names lower-cased first letter, text tokenization
/// `word`, index flags).
pub fn prepare_property(class: &str, p: Value) -> Result<Map<String, Value>, SchemaError> {
    let Value::Object(mut p) = go_numbers(p) else {
        return err("property must be a JSON object");
    };
    let name = property_name(p.get("name").and_then(Value::as_str).unwrap_or_default());
    if !valid_name(&name, false) {
        return err(format!(
            "'{name}' is not a valid property name. Property names in Weaviate are restricted to valid GraphQL names, which must be “/[_A-Za-z][_0-9A-Za-z]{{0,230}}/”."
        ));
    }
    p.insert("name".into(), Value::String(name.clone()));
    let data_type = match p.get("dataType") {
        Some(Value::Array(dt)) if !dt.is_empty() && dt.iter().all(Value::is_string) => {
            dt[0].as_str().unwrap_or_default().to_owned()
        }
        _ => {
            return err(format!(
                "property '{name}' on class '{class}': invalid dataType: dataType cannot be an empty list"
            ))
        }
    };
    let is_text = matches!(
        data_type.as_str(),
        "text" | "text[]" | "string" | "string[]"
    );
    if is_text {
        p.entry("tokenization")
            .or_insert_with(|| Value::String("word".into()));
    }
    p.entry("indexFilterable").or_insert(Value::Bool(true));
    p.entry("indexRangeFilters").or_insert(Value::Bool(false));
    p.entry("indexSearchable").or_insert(Value::Bool(is_text));
    if let Some(Value::Array(nested)) = p.get_mut("nestedProperties") {
        nested_defaults(nested);
    }
    Ok(p)
}

/// Weaviate's `setNestedPropertiesDefaults`: text tokenization `word`, filterable unless a blob,
/// searchable only for text, no range index; recursively (the clients read these flags on every
/// nested property).
fn nested_defaults(props: &mut [Value]) {
    for prop in props {
        let Value::Object(p) = prop else { continue };
        let data_type = p
            .get("dataType")
            .and_then(|d| d.get(0))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let is_nested = matches!(data_type.as_str(), "object" | "object[]");
        let is_text = matches!(data_type.as_str(), "text" | "text[]");
        if is_text {
            p.entry("tokenization")
                .or_insert_with(|| Value::String("word".into()));
        }
        let is_blob = matches!(data_type.as_str(), "blob" | "blobHash");
        p.entry("indexFilterable").or_insert(Value::Bool(!is_blob));
        p.entry("indexSearchable").or_insert(Value::Bool(is_text));
        p.entry("indexRangeFilters").or_insert(Value::Bool(false));
        if is_nested {
            if let Some(Value::Array(inner)) = p.get_mut("nestedProperties") {
                nested_defaults(inner);
            }
        }
    }
}

/// Validates `PUT /v1/schema/{class}` against the stored class (§6): module configs other than
/// generative/reranker and named vectorizers are immutable. Properties are kept from the stored
/// class (they change through `POST …/properties`).
pub fn prepare_update(
    old: &Map<String, Value>,
    body: Value,
) -> Result<Map<String, Value>, SchemaError> {
    let Value::Object(mut new) = go_numbers(body) else {
        return err("class must be a JSON object");
    };
    let name = old
        .get("class")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let new_name = class_name(new.get("class").and_then(Value::as_str).unwrap_or(&name));
    if new_name != name {
        return err(format!(
            "class name is immutable: attempted change from \"{name}\" to \"{new_name}\""
        ));
    }
    new.insert("class".into(), Value::String(name.clone()));

    let empty = Map::new();
    let old_mc = old
        .get("moduleConfig")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let new_mc = new
        .get("moduleConfig")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut modules: Vec<&String> = old_mc.keys().chain(new_mc.keys()).collect();
    modules.sort();
    modules.dedup();
    for m in modules {
        if old_mc.get(m) != new_mc.get(m)
            && !(m.starts_with("generative-") || m.starts_with("reranker-"))
        {
            return err(format!(
                "can only update generative and reranker module configs. Got: {m} for class: {name}"
            ));
        }
    }

    let vectorizer_of = |cfg: &Value| -> String {
        cfg.get("vectorizer")
            .and_then(Value::as_object)
            .and_then(|v| v.keys().next().cloned())
            .unwrap_or_default()
    };
    if let Some(Value::Object(old_vc)) = old.get("vectorConfig") {
        let new_vc = new
            .get("vectorConfig")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for (vname, cfg) in old_vc {
            let a = vectorizer_of(cfg);
            let b = new_vc.get(vname).map(vectorizer_of).unwrap_or_default();
            if new_vc.contains_key(vname) && a != b {
                return err(format!(
                    "vectorizer of vector \"{vname}\" is immutable: attempted change from \"{a}\" to \"{b}\""
                ));
            }
        }
        let mut merged = old_vc.clone();
        for (vname, cfg) in new_vc {
            let mut cfg = cfg;
            match merged.get(&vname) {
                // An existing vector keeps its stored settings where the update leaves them
                // out; its vectorizer config is replaced as a whole (checked immutable above).
                Some(old_cfg) => {
                    let vectorizer = cfg.get("vectorizer").cloned();
                    cfg = defaults::overlay(old_cfg.clone(), cfg);
                    if let (Some(v), Value::Object(c)) = (vectorizer, &mut cfg) {
                        c.insert("vectorizer".into(), v);
                    }
                }
                None => prepare_named_vector(&vname, &mut cfg)?,
            }
            merged.insert(vname, cfg);
        }
        new.insert("vectorConfig".into(), Value::Object(merged));
    }
    if let Some(old_v) = old.get("vectorizer").and_then(Value::as_str) {
        let new_v = new
            .get("vectorizer")
            .and_then(Value::as_str)
            .unwrap_or(old_v)
            .to_owned();
        if new_v != old_v {
            return err(format!(
                "vectorizer is immutable: attempted change from \"{old_v}\" to \"{new_v}\""
            ));
        }
        new.insert("vectorizer".into(), Value::String(new_v));
    }
    // Settings the update leaves out keep their stored values (which already hold Weaviate's
    // defaults); given objects are laid over the stored ones key by key.
    for key in [
        "vectorIndexType",
        "vectorIndexConfig",
        "multiTenancyConfig",
        "invertedIndexConfig",
        "replicationConfig",
        "shardingConfig",
    ] {
        match (old.get(key), new.remove(key)) {
            (Some(o), None | Some(Value::Null)) => {
                new.insert(key.into(), o.clone());
            }
            (Some(o @ Value::Object(_)), Some(n @ Value::Object(_))) => {
                new.insert(key.into(), defaults::overlay(o.clone(), n));
            }
            (_, Some(n)) => {
                new.insert(key.into(), n);
            }
            (None, None) => {}
        }
    }
    new.insert(
        "properties".into(),
        old.get("properties")
            .cloned()
            .unwrap_or(Value::Array(vec![])),
    );
    Ok(sorted_top_level(new))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_and_rejections() {
        let c = prepare_new_class(
            json!({"class": "article", "properties": [{"name": "Title", "dataType": ["text"]}]}),
        )
        .unwrap();
        assert_eq!(c["class"], "Article");
        assert_eq!(c["vectorizer"], "none");
        assert_eq!(c["vectorIndexConfig"]["distance"], "cosine");
        assert_eq!(c["properties"][0]["name"], "title");
        assert_eq!(c["properties"][0]["tokenization"], "word");

        let e =
            prepare_new_class(json!({"class": "A", "vectorizer": "multi2vec-clip"})).unwrap_err();
        assert_eq!(
            e.0,
            "vectorizer: no module with name \"multi2vec-clip\" present"
        );
        let e = prepare_new_class(json!({"class": "A", "moduleConfig": {"m": "x"}})).unwrap_err();
        assert_eq!(e.0, "module config for m is not a map, got x");
        let e = prepare_new_class(json!({"class": "A",
            "vectorConfig": {"v": {"vectorizer": {"none": {}}}}, "moduleConfig": {"multi2vec-clip": {}}}))
        .unwrap_err();
        assert_eq!(e.0, "module with name multi2vec-clip doesn't exist");
    }
}
