//! The in-memory database: classes, tenants and objects with their vectors.
//!
//! Transport-free on purpose: REST, GraphQL (and later gRPC) handlers translate their requests
//! into these calls. Vectors are stored exactly as given (f32). Every write gets a new insertion
//! sequence number, as Weaviate gives an updated object a new doc id; filtered and vector results
//! break ties by that order.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};
use uuid::Uuid;

use super::schema::{self, ClassInfo, SchemaError};

/// Errors of object operations, each with the HTTP status Weaviate answers.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ObjectError {
    /// 422: invalid input (Weaviate's message).
    #[error("{0}")]
    Invalid(String),
    /// 404: no such object / class.
    #[error("not found")]
    NotFound,
    /// 500: a storage-level failure (e.g. vector length mismatch).
    #[error("{0}")]
    Internal(String),
}

/// An object as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredObject {
    pub id: Uuid,
    pub class: String,
    pub tenant: Option<String>,
    pub properties: Map<String, Value>,
    /// The legacy (unnamed) vector; `None` = not indexed.
    pub vector: Option<Vec<f32>>,
    /// Named vectors.
    pub vectors: BTreeMap<String, Vec<f32>>,
    pub creation_time_unix: i64,
    pub last_update_time_unix: i64,
    /// Insertion order (a new value on every write).
    pub seq: u64,
}

impl StoredObject {
    /// The vector of a target (`None` = legacy).
    pub fn vector_for(&self, target: Option<&str>) -> Option<&[f32]> {
        match target {
            None => self.vector.as_deref(),
            Some(t) => self.vectors.get(t).map(Vec::as_slice),
        }
    }
}

/// An object write request, transport-independent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObjectInput {
    pub class: String,
    pub id: Option<Uuid>,
    pub tenant: Option<String>,
    pub properties: Map<String, Value>,
    /// `Some(vec![])` means "explicitly no vector" (§5.5).
    pub vector: Option<Vec<f32>>,
    pub vectors: BTreeMap<String, Vec<f32>>,
}

/// How a write treats an existing object with the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// `POST /v1/objects`: `id '<id>' already exists`.
    Create,
    /// Batch and `PUT`: replace, keeping the creation time.
    Upsert,
}

/// One class with its tenants and objects.
#[derive(Debug, Clone)]
pub struct ClassData {
    pub def: Map<String, Value>,
    pub info: ClassInfo,
    pub tenants: BTreeSet<String>,
    objects: HashMap<(Option<String>, Uuid), StoredObject>,
    /// Vector length per target (`None` = legacy), fixed by the first vector, as an HNSW index is.
    dims: HashMap<Option<String>, usize>,
}

impl ClassData {
    fn new(def: Map<String, Value>) -> Self {
        let info = ClassInfo::from_def(&def);
        Self {
            def,
            info,
            tenants: BTreeSet::new(),
            objects: HashMap::new(),
            dims: HashMap::new(),
        }
    }

    /// All objects of a tenant (`None` for a class without multi-tenancy), unordered.
    pub fn objects_of<'a>(
        &'a self,
        tenant: Option<&'a str>,
    ) -> impl Iterator<Item = &'a StoredObject> + 'a {
        self.objects
            .values()
            .filter(move |o| o.tenant.as_deref() == tenant)
    }

    pub fn object(&self, tenant: Option<&str>, id: Uuid) -> Option<&StoredObject> {
        self.objects.get(&(tenant.map(str::to_owned), id))
    }

    /// Checks the tenant of a request against the class's multi-tenancy settings.
    pub fn check_tenant(&self, tenant: Option<&str>) -> Result<(), ObjectError> {
        let class = &self.info.name;
        match (self.info.multi_tenancy, tenant) {
            (true, None) => Err(ObjectError::Invalid(format!(
                "class {class} has multi-tenancy enabled, but request was without tenant"
            ))),
            (false, Some(_)) => Err(ObjectError::Invalid(format!(
                "class {class} has multi-tenancy disabled, but request was with tenant"
            ))),
            (true, Some(t)) if !self.tenants.contains(t) => {
                Err(ObjectError::Invalid(format!("tenant not found: \"{t}\"")))
            }
            _ => Ok(()),
        }
    }
}

/// The whole database as seen under one lock.
#[derive(Debug, Default)]
pub struct Db {
    classes: Vec<ClassData>,
    next_seq: u64,
}

impl Db {
    pub fn class(&self, name: &str) -> Option<&ClassData> {
        let name = schema::class_name(name);
        self.classes.iter().find(|c| c.info.name == name)
    }

    fn class_mut(&mut self, name: &str) -> Option<&mut ClassData> {
        let name = schema::class_name(name);
        self.classes.iter_mut().find(|c| c.info.name == name)
    }

    /// Classes in creation order.
    pub fn classes(&self) -> impl Iterator<Item = &ClassData> {
        self.classes.iter()
    }

    /// Finds an object by id, in `class` when given, else in any class.
    pub fn find_object(
        &self,
        class: Option<&str>,
        id: Uuid,
        tenant: Option<&str>,
    ) -> Option<&StoredObject> {
        match class {
            Some(c) => self.class(c)?.object(tenant, id),
            None => self.classes.iter().find_map(|c| c.object(tenant, id)),
        }
    }
}

/// Shared, lock-protected database. Locks are never held across an `.await`.
#[derive(Debug, Default)]
pub struct Store {
    db: RwLock<Db>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Weaviate's blob check (§5.3): `^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})$`.
pub fn is_blob_base64(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || !b.len().is_multiple_of(4) {
        return false;
    }
    let alpha = |c: &u8| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/';
    let (body, last) = b.split_at(b.len() - 4);
    body.iter().all(alpha)
        && match last {
            [a, b2, b'=', b'='] => alpha(a) && alpha(b2),
            [a, b2, c, b'='] => alpha(a) && alpha(b2) && alpha(c),
            quad => quad.iter().all(alpha),
        }
}

/// Auto-schema type inference for a property value Weaviate has not seen yet.
fn infer_data_type(value: &Value) -> Option<&'static str> {
    match value {
        Value::String(_) => Some("text"),
        Value::Number(_) => Some("number"),
        Value::Bool(_) => Some("boolean"),
        Value::Object(_) => Some("object"),
        Value::Array(items) => match items.first()? {
            Value::String(_) => Some("text[]"),
            Value::Number(_) => Some("number[]"),
            Value::Bool(_) => Some("boolean[]"),
            _ => None,
        },
        Value::Null => None,
    }
}

impl Store {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f` under the read lock.
    pub fn read<R>(&self, f: impl FnOnce(&Db) -> R) -> R {
        f(&self.read_guard())
    }

    fn read_guard(&self) -> RwLockReadGuard<'_, Db> {
        self.db
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write_guard(&self) -> RwLockWriteGuard<'_, Db> {
        self.db
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    // ---- schema ----

    /// All class definitions, in creation order.
    pub fn schema(&self) -> Vec<Map<String, Value>> {
        self.read(|db| db.classes.iter().map(|c| c.def.clone()).collect())
    }

    pub fn class_def(&self, name: &str) -> Option<Map<String, Value>> {
        self.read(|db| db.class(name).map(|c| c.def.clone()))
    }

    /// `POST /v1/schema` (§6).
    pub fn create_class(&self, body: Value) -> Result<Map<String, Value>, SchemaError> {
        let def = schema::prepare_new_class(body)?;
        let mut db = self.write_guard();
        let name = def
            .get("class")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if db.class(&name).is_some() {
            return Err(SchemaError(format!("class name \"{name}\" already exists")));
        }
        db.classes.push(ClassData::new(def.clone()));
        Ok(def)
    }

    /// `PUT /v1/schema/{class}`; `Ok(None)` when the class does not exist.
    pub fn update_class(
        &self,
        name: &str,
        body: Value,
    ) -> Result<Option<Map<String, Value>>, SchemaError> {
        let mut db = self.write_guard();
        let Some(class) = db.class_mut(name) else {
            return Ok(None);
        };
        let def = schema::prepare_update(&class.def, body)?;
        class.info = ClassInfo::from_def(&def);
        class.def = def.clone();
        Ok(Some(def))
    }

    /// `DELETE /v1/schema/{class}` (idempotent, like Weaviate).
    pub fn delete_class(&self, name: &str) {
        let name = schema::class_name(name);
        self.write_guard().classes.retain(|c| c.info.name != name);
    }

    /// `POST /v1/schema/{class}/properties`; `Ok(None)` when the class does not exist.
    pub fn add_property(
        &self,
        class: &str,
        body: Value,
    ) -> Result<Option<Map<String, Value>>, SchemaError> {
        let mut db = self.write_guard();
        let Some(c) = db.class_mut(class) else {
            return Ok(None);
        };
        let prop = schema::prepare_property(&c.info.name, body)?;
        let pname = prop
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if c.info.property(&pname).is_some() {
            return Err(SchemaError(format!(
                "class \"{}\": conflict for property \"{pname}\": already in use or provided multiple times",
                c.info.name
            )));
        }
        push_property(c, Value::Object(prop.clone()));
        Ok(Some(prop))
    }

    /// `POST /v1/schema/{class}/tenants`; `Ok(None)` when the class does not exist.
    pub fn add_tenants(&self, class: &str, names: Vec<String>) -> Result<Option<()>, SchemaError> {
        let mut db = self.write_guard();
        let Some(c) = db.class_mut(class) else {
            return Ok(None);
        };
        if !c.info.multi_tenancy {
            return Err(SchemaError(format!(
                "multi-tenancy is not enabled for class \"{}\"",
                c.info.name
            )));
        }
        c.tenants.extend(names);
        Ok(Some(()))
    }

    /// `GET /v1/schema/{class}/tenants`.
    pub fn tenants(&self, class: &str) -> Option<Vec<String>> {
        self.read(|db| db.class(class).map(|c| c.tenants.iter().cloned().collect()))
    }

    // ---- objects ----

    /// The validation of `POST /v1/objects/validate` and of every write, without writing.
    pub fn validate_object(&self, input: &ObjectInput) -> Result<(), ObjectError> {
        self.read(|db| match db.class(&input.class) {
            Some(c) => validate_against(c, input, false),
            None => Ok(()),
        })
    }

    /// Creates or replaces an object; auto-schema creates a missing class or property as
    /// Weaviate does by default (`AUTOSCHEMA_ENABLED=true`).
    pub fn put_object(
        &self,
        input: ObjectInput,
        mode: WriteMode,
    ) -> Result<StoredObject, ObjectError> {
        let mut db = self.write_guard();
        let class_name = schema::class_name(&input.class);
        if class_name.is_empty() {
            return Err(ObjectError::Invalid(
                "invalid object: the given class is empty".into(),
            ));
        }
        if db.class(&class_name).is_none() {
            let def = schema::prepare_new_class(serde_json::json!({"class": class_name}))
                .map_err(|e| ObjectError::Invalid(format!("invalid object: {e}")))?;
            db.classes.push(ClassData::new(def));
        }
        let seq = db.next_seq;
        let Some(class) = db.class_mut(&class_name) else {
            return Err(ObjectError::NotFound);
        };
        validate_against(class, &input, true)?;
        if class.info.multi_tenancy {
            if let Some(t) = &input.tenant {
                class.tenants.insert(t.clone());
            }
        }
        auto_schema(class, &input.properties);

        let id = input.id.unwrap_or_else(Uuid::new_v4);
        let key = (input.tenant.clone(), id);
        let now = now_ms();
        let creation = match (class.objects.get(&key), mode) {
            (Some(_), WriteMode::Create) => {
                return Err(ObjectError::Invalid(format!("id '{id}' already exists")))
            }
            (Some(old), WriteMode::Upsert) => old.creation_time_unix,
            (None, _) => now,
        };
        let vector = input.vector.filter(|v| !v.is_empty());
        let vectors: BTreeMap<String, Vec<f32>> = input
            .vectors
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .collect();
        check_dims(class, vector.as_deref(), &vectors)?;
        let obj = StoredObject {
            id,
            class: class.info.name.clone(),
            tenant: input.tenant,
            properties: input.properties,
            vector,
            vectors,
            creation_time_unix: creation,
            last_update_time_unix: now,
            seq,
        };
        class.objects.insert(key, obj.clone());
        db.next_seq += 1;
        Ok(obj)
    }

    /// Reads one object; `class = None` searches every class (the deprecated id-only route).
    pub fn get_object(
        &self,
        class: Option<&str>,
        id: Uuid,
        tenant: Option<&str>,
    ) -> Result<StoredObject, ObjectError> {
        self.read(|db| {
            if let Some(c) = class {
                let c = db.class(c).ok_or(ObjectError::NotFound)?;
                c.check_tenant(tenant)?;
                return c.object(tenant, id).cloned().ok_or(ObjectError::NotFound);
            }
            db.find_object(None, id, tenant)
                .cloned()
                .ok_or(ObjectError::NotFound)
        })
    }

    /// `PATCH`: merges properties, keeps the old vector(s) unless new ones are given (§9).
    pub fn merge_object(&self, input: ObjectInput) -> Result<StoredObject, ObjectError> {
        let id = input.id.ok_or(ObjectError::NotFound)?;
        let mut db = self.write_guard();
        let seq = db.next_seq;
        let class = db.class_mut(&input.class).ok_or(ObjectError::NotFound)?;
        class.check_tenant(input.tenant.as_deref())?;
        let key = (input.tenant.clone(), id);
        let Some(old) = class.objects.get(&key).cloned() else {
            return Err(ObjectError::NotFound);
        };
        let mut merged = ObjectInput {
            class: class.info.name.clone(),
            id: Some(id),
            tenant: input.tenant.clone(),
            properties: old.properties.clone(),
            vector: old.vector.clone(),
            vectors: old.vectors.clone(),
        };
        merged.properties.extend(input.properties);
        if input.vector.is_some() {
            merged.vector = input.vector;
        }
        merged.vectors.extend(input.vectors);
        validate_against(class, &merged, false)?;
        auto_schema(class, &merged.properties);
        let vector = merged.vector.filter(|v| !v.is_empty());
        let vectors: BTreeMap<String, Vec<f32>> = merged
            .vectors
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .collect();
        check_dims(class, vector.as_deref(), &vectors)?;
        let obj = StoredObject {
            properties: merged.properties,
            vector,
            vectors,
            last_update_time_unix: now_ms(),
            seq,
            ..old
        };
        class.objects.insert(key, obj.clone());
        db.next_seq += 1;
        Ok(obj)
    }

    /// Deletes one object; `NotFound` when absent.
    pub fn delete_object(
        &self,
        class: Option<&str>,
        id: Uuid,
        tenant: Option<&str>,
    ) -> Result<(), ObjectError> {
        let mut db = self.write_guard();
        let class_name = match class {
            Some(c) => c.to_owned(),
            None => db
                .find_object(None, id, tenant)
                .ok_or(ObjectError::NotFound)?
                .class
                .clone(),
        };
        let c = db.class_mut(&class_name).ok_or(ObjectError::NotFound)?;
        c.check_tenant(tenant)?;
        c.objects
            .remove(&(tenant.map(str::to_owned), id))
            .map(|_| ())
            .ok_or(ObjectError::NotFound)
    }

    /// `GET /v1/objects`: one page of the objects of a class (or of all classes), in id order
    /// as Weaviate's object bucket lists them.
    pub fn list_objects(
        &self,
        class: Option<&str>,
        tenant: Option<&str>,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<StoredObject>, ObjectError> {
        self.read(|db| {
            let mut all: Vec<&StoredObject> = Vec::new();
            match class {
                Some(c) => {
                    let c = db.class(c).ok_or(ObjectError::NotFound)?;
                    c.check_tenant(tenant)?;
                    all.extend(c.objects_of(tenant));
                }
                None => {
                    for c in db.classes() {
                        if c.info.multi_tenancy == tenant.is_some() {
                            all.extend(c.objects_of(tenant));
                        }
                    }
                }
            }
            all.sort_by_key(|o| o.id);
            Ok(all.into_iter().skip(offset).take(limit).cloned().collect())
        })
    }
}

fn push_property(class: &mut ClassData, prop: Value) {
    if let Some(Value::Array(props)) = class.def.get_mut("properties") {
        props.push(prop);
    } else {
        class
            .def
            .insert("properties".into(), Value::Array(vec![prop]));
    }
    class.info = ClassInfo::from_def(&class.def);
}

fn auto_schema(class: &mut ClassData, properties: &Map<String, Value>) {
    for (name, value) in properties {
        if class.info.property(name).is_some() {
            continue;
        }
        let Some(dt) = infer_data_type(value) else {
            continue;
        };
        let mut prop = serde_json::json!({"name": name, "dataType": [dt]});
        if dt == "object" {
            prop["nestedProperties"] = Value::Array(vec![]);
        }
        if let Ok(p) = schema::prepare_property(&class.info.name, prop) {
            push_property(class, Value::Object(p));
        }
    }
}

/// Per-object validation: tenant, blob base64 (§5.3), named vector targets.
fn validate_against(
    class: &ClassData,
    input: &ObjectInput,
    allow_new_tenant: bool,
) -> Result<(), ObjectError> {
    let name = &class.info.name;
    match class.check_tenant(input.tenant.as_deref()) {
        Err(ObjectError::Invalid(msg))
            if allow_new_tenant
                && class.info.auto_tenant_creation
                && msg.starts_with("tenant not found") => {}
        other => other?,
    }
    for (prop, value) in &input.properties {
        let Some(info) = class.info.property(prop) else {
            continue;
        };
        if info.data_type == "blob" {
            match value {
                Value::String(s) if is_blob_base64(s) => {}
                Value::Null => {}
                _ => {
                    return Err(ObjectError::Invalid(format!(
                        "invalid object: invalid blob property '{prop}' on class '{name}': not a valid blob base64 string"
                    )))
                }
            }
        }
    }
    for target in input.vectors.keys() {
        if !class.info.named.iter().any(|(n, _)| n == target) {
            return Err(ObjectError::Invalid(format!(
                "invalid object: collection {name} does not have configuration for vector {target}"
            )));
        }
    }
    Ok(())
}

fn check_dims(
    class: &mut ClassData,
    vector: Option<&[f32]>,
    vectors: &BTreeMap<String, Vec<f32>>,
) -> Result<(), ObjectError> {
    let targets = vector
        .map(|v| (None, v.len()))
        .into_iter()
        .chain(vectors.iter().map(|(n, v)| (Some(n.clone()), v.len())));
    let targets: Vec<(Option<String>, usize)> = targets.collect();
    for (target, len) in &targets {
        if let Some(existing) = class.dims.get(target) {
            if existing != len {
                return Err(ObjectError::Internal(format!(
                    "put object: import into index {}: insert to vector index: new node has a vector with length {len}. Existing nodes have vectors with length {existing}",
                    class.info.name.to_lowercase()
                )));
            }
        }
    }
    for (target, len) in targets {
        class.dims.entry(target).or_insert(len);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_regex() {
        assert!(is_blob_base64("aGVsbG8="));
        assert!(is_blob_base64("aGVsbA=="));
        assert!(is_blob_base64("aGVs"));
        assert!(!is_blob_base64(""));
        assert!(!is_blob_base64("data:image/png;base64,aGVs"));
        assert!(!is_blob_base64("aGV"));
        assert!(!is_blob_base64("a==="));
    }
}
