//! What the gateway needs to know of the upstream schema: which classes (and which of their
//! named vectors) are clip-managed, and with which multi2vec-clip settings.
//!
//! How a clip class is stored on an unmodified Weaviate (spec §6):
//! - legacy vector: `vectorizer: "none"` with `moduleConfig["multi2vec-clip"]` kept verbatim;
//! - named vector `<v>`: `vectorConfig.<v>.vectorizer = {"none": {"multi2vec-clip": {…}}}`.
//!   Weaviate accepts any keys inside a `none` vectorizer's config; the gateway rewrites it back
//!   to `{"multi2vec-clip": {…}}` on read.

use std::collections::BTreeMap;

use serde_json::Value;

/// The module name, as it appears in schemas and in `/v1/meta`.
pub const MODULE: &str = "multi2vec-clip";

/// The settings of one clip-managed vector (spec §5.1).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClipSettings {
    pub text_fields: Vec<String>,
    pub image_fields: Vec<String>,
    /// `weights.textFields`, in config order (matched to vectors by position, spec §5.4).
    pub text_weights: Vec<f32>,
    /// `weights.imageFields`, in config order.
    pub image_weights: Vec<f32>,
    /// Per-class container URL; honoured only when the operator allows it.
    pub inference_url: Option<String>,
}

/// One clip-managed vector of a class: the legacy class vector (`name: None`) or a named vector.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipTarget {
    pub name: Option<String>,
    pub settings: ClipSettings,
}

/// One class of the upstream schema.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassView {
    pub name: String,
    /// The clip-managed vectors; empty for a class the gateway does not manage.
    pub clip_targets: Vec<ClipTarget>,
    /// Every named vector of the class, clip-managed or not, in schema order.
    pub named_vectors: Vec<String>,
    /// Distance metric of the legacy vector index (`cosine` when unset).
    pub distance: String,
    pub multi_tenancy: bool,
}

impl ClassView {
    pub fn is_clip_managed(&self) -> bool {
        !self.clip_targets.is_empty()
    }

    /// The clip settings of a target: `None` asks for the legacy vector.
    pub fn clip_target(&self, name: Option<&str>) -> Option<&ClipTarget> {
        self.clip_targets.iter().find(|t| t.name.as_deref() == name)
    }
}

/// The cached view of `GET /v1/schema`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SchemaView {
    classes: BTreeMap<String, ClassView>,
    /// Class → property name → its first `dataType` entry (`text`, `text[]`, `blob`, `date`, …).
    /// Import needs it: Weaviate converts values by type before vectorizing and validates `blob`
    /// base64 first (spec §5.3).
    property_types: BTreeMap<String, BTreeMap<String, String>>,
}

impl SchemaView {
    /// Reads the upstream's `GET /v1/schema` answer (`{"classes":[…]}`), in its stored form.
    pub fn from_upstream(schema: &Value) -> Self {
        let list = schema
            .get("classes")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut view =
            Self::from_classes(list.iter().filter_map(ClassView::from_upstream).collect());
        view.property_types = list.iter().filter_map(property_types).collect();
        view
    }

    pub fn from_classes(classes: Vec<ClassView>) -> Self {
        Self {
            classes: classes.into_iter().map(|c| (c.name.clone(), c)).collect(),
            property_types: BTreeMap::new(),
        }
    }

    /// The first `dataType` entry of a property (e.g. `text[]`, `blob`), when the schema has it.
    pub fn property_type(&self, class: &str, property: &str) -> Option<&str> {
        self.property_types
            .get(class)?
            .get(property)
            .map(String::as_str)
    }

    /// Class by its exact name (GraphQL and REST both use the stored spelling).
    pub fn class(&self, name: &str) -> Option<&ClassView> {
        self.classes.get(name)
    }

    pub fn classes(&self) -> impl Iterator<Item = &ClassView> {
        self.classes.values()
    }

    /// Explore gets `nearText`/`nearImage` when at least one class is clip-managed (spec §1.3).
    pub fn any_clip_managed(&self) -> bool {
        self.classes.values().any(ClassView::is_clip_managed)
    }
}

impl ClassView {
    /// One class object of the upstream schema, in its stored form.
    pub fn from_upstream(class: &Value) -> Option<Self> {
        let name = class.get("class")?.as_str()?.to_string();
        let mut clip_targets = Vec::new();
        let legacy_none = class.get("vectorizer").and_then(Value::as_str) == Some("none");
        if legacy_none {
            if let Some(cfg) = class.get("moduleConfig").and_then(|m| m.get(MODULE)) {
                clip_targets.push(ClipTarget {
                    name: None,
                    settings: ClipSettings::from_json(cfg),
                });
            }
        }
        let mut named_vectors = Vec::new();
        if let Some(vc) = class.get("vectorConfig").and_then(Value::as_object) {
            for (vector, config) in vc {
                named_vectors.push(vector.clone());
                let stored = config
                    .get("vectorizer")
                    .and_then(|v| v.get("none"))
                    .and_then(|none| none.get(MODULE));
                if let Some(cfg) = stored {
                    clip_targets.push(ClipTarget {
                        name: Some(vector.clone()),
                        settings: ClipSettings::from_json(cfg),
                    });
                }
            }
        }
        let distance = class
            .get("vectorIndexConfig")
            .and_then(|c| c.get("distance"))
            .and_then(Value::as_str)
            .unwrap_or("cosine")
            .to_string();
        let multi_tenancy = class
            .get("multiTenancyConfig")
            .and_then(|c| c.get("enabled"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Some(Self {
            name,
            clip_targets,
            named_vectors,
            distance,
            multi_tenancy,
        })
    }
}

/// `(class name, property name → first dataType)` of one class object of the schema.
fn property_types(class: &Value) -> Option<(String, BTreeMap<String, String>)> {
    let name = class.get("class")?.as_str()?.to_string();
    let types = class
        .get("properties")
        .and_then(Value::as_array)
        .map(|props| {
            props
                .iter()
                .filter_map(|p| {
                    let prop = p.get("name")?.as_str()?;
                    let data_type = p.get("dataType")?.as_array()?.first()?.as_str()?;
                    Some((prop.to_string(), data_type.to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    Some((name, types))
}

impl ClipSettings {
    /// Reads a multi2vec-clip moduleConfig leniently: it was validated when the class was created
    /// (spec §5.2), and numbers may be JSON numbers or numeric strings (spec §5.1).
    pub fn from_json(cfg: &Value) -> Self {
        let strings = |key: &str| -> Vec<String> {
            cfg.get(key)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        let weights = |key: &str| -> Vec<f32> {
            cfg.get("weights")
                .and_then(|w| w.get(key))
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(number).collect())
                .unwrap_or_default()
        };
        Self {
            text_fields: strings("textFields"),
            image_fields: strings("imageFields"),
            text_weights: weights("textFields"),
            image_weights: weights("imageFields"),
            inference_url: cfg
                .get("inferenceUrl")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        }
    }
}

/// A weight as Weaviate's `GetNumber` reads it: a JSON number or a numeric string.
pub fn number(v: &Value) -> Option<f32> {
    match v {
        Value::Number(n) => n.as_f64().map(|f| f as f32),
        Value::String(s) => s.trim().parse::<f64>().ok().map(|f| f as f32),
        _ => None,
    }
}
