//! Value resolution and matching for conformance cases.
//!
//! The arithmetic here (`$mean`, `$combine`, `$moveTo`, `$moveAwayFrom`) is a deliberately
//! independent, plain re-statement of Weaviate's float32 rules (spec §3.1, §3.2, §5.3, §10.3):
//! the suite must judge any target, including a real Weaviate, so it cannot borrow the
//! gateway's implementation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Map, Value};
use uuid::Uuid;

/// The namespace of the `@name` → UUID v5 mapping (any fixed value works; this one is ours).
const ID_NAMESPACE: Uuid = Uuid::from_u128(0x6c69_7067_6174_6500_0000_0000_636f_6e66);

#[derive(Debug, thiserror::Error)]
pub enum ExprError {
    #[error("unknown variable {0:?} (not captured by an earlier step)")]
    UnknownVar(String),
    #[error("cannot read image {}: {source}", path.display())]
    Image {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("bad template {0:?}")]
    Template(String),
    #[error("{op}: {msg}")]
    Operand { op: &'static str, msg: String },
}

/// The UUID a case means by `@name` (or `name` in `{{id:name}}`).
pub fn named_id(name: &str) -> String {
    Uuid::new_v5(&ID_NAMESPACE, name.as_bytes()).to_string()
}

/// Turns a result id back into the `@name` a case used, for readable failure messages.
pub fn display_id(id: &str, names: &BTreeMap<String, String>) -> String {
    names
        .get(id)
        .map(|n| format!("@{n}"))
        .unwrap_or_else(|| id.to_owned())
}

/// Everything a value may refer to: captured values, the directories to find images in, and the
/// names seen so far (to print ids readably).
#[derive(Debug, Default)]
pub struct Context {
    pub vars: BTreeMap<String, Value>,
    pub roots: Vec<PathBuf>,
    /// UUID → name, filled as `@name` values are resolved.
    pub names: BTreeMap<String, String>,
}

fn is_name_ref(s: &str) -> bool {
    s.len() > 1
        && s.starts_with('@')
        && s[1..]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl Context {
    pub fn new(roots: Vec<PathBuf>) -> Self {
        Self {
            roots,
            ..Self::default()
        }
    }

    fn id_of(&mut self, name: &str) -> String {
        let id = named_id(name);
        self.names.insert(id.clone(), name.to_owned());
        id
    }

    /// Resolves `@name` strings (also bare names in id lists are left to the caller).
    pub fn resolve_id(&mut self, s: &str) -> String {
        match s.strip_prefix('@') {
            Some(name) if is_name_ref(s) => self.id_of(name),
            _ => s.to_owned(),
        }
    }

    fn image_b64(&self, path: &str) -> Result<String, ExprError> {
        let candidates: Vec<PathBuf> = std::iter::once(PathBuf::from(path))
            .chain(self.roots.iter().map(|r| r.join(path)))
            .collect();
        let found = candidates
            .iter()
            .find(|p| p.is_file())
            .unwrap_or(&candidates[0]);
        let bytes = std::fs::read(found).map_err(|source| ExprError::Image {
            path: found.clone(),
            source,
        })?;
        Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    /// Replaces `{{image:path}}`, `{{id:name}}` and `{{var:name}}` in a string.
    pub fn render(&mut self, s: &str) -> Result<String, ExprError> {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| ExprError::Template(rest[start..].chars().take(40).collect()))?;
            let inner = &after[..end];
            let (kind, arg) = inner
                .split_once(':')
                .ok_or_else(|| ExprError::Template(inner.to_owned()))?;
            match kind.trim() {
                "image" => out.push_str(&self.image_b64(arg.trim())?),
                "id" => out.push_str(&self.id_of(arg.trim().trim_start_matches('@'))),
                "var" => {
                    let v = self
                        .vars
                        .get(arg.trim())
                        .ok_or_else(|| ExprError::UnknownVar(arg.trim().to_owned()))?;
                    match v {
                        Value::String(s) => out.push_str(s),
                        other => out.push_str(&other.to_string()),
                    }
                }
                _ => return Err(ExprError::Template(inner.to_owned())),
            }
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Resolves a case value: templates in strings, `@name` ids and `$` expressions. Matchers
    /// (`$any`, `$anyOf`, `$startsWith`) are kept for [`matches`], with their operands resolved.
    pub fn resolve(&mut self, v: &Value) -> Result<Value, ExprError> {
        match v {
            Value::String(s) if is_name_ref(s) => Ok(Value::String(self.resolve_id(s))),
            Value::String(s) => Ok(Value::String(self.render(s)?)),
            Value::Array(items) => items
                .iter()
                .map(|i| self.resolve(i))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Value::Object(map) => {
                if map.len() == 1 {
                    if let Some((key, arg)) = map.iter().next() {
                        if key.starts_with('$') {
                            return self.eval(key, arg);
                        }
                    }
                }
                let mut out = Map::new();
                for (k, val) in map {
                    out.insert(k.clone(), self.resolve(val)?);
                }
                Ok(Value::Object(out))
            }
            other => Ok(other.clone()),
        }
    }

    fn vectors(&mut self, op: &'static str, arg: &Value) -> Result<Vec<Vec<f32>>, ExprError> {
        let Value::Array(items) = arg else {
            return Err(operand(op, "expects a list of vectors"));
        };
        items
            .iter()
            .map(|i| {
                let v = self.resolve(i)?;
                to_f32s(op, &v)
            })
            .collect()
    }

    fn vector_field(
        &mut self,
        op: &'static str,
        arg: &Value,
        field: &str,
    ) -> Result<Vec<f32>, ExprError> {
        let v = arg
            .get(field)
            .ok_or_else(|| operand(op, &format!("needs \"{field}\"")))?;
        let v = self.resolve(v)?;
        to_f32s(op, &v)
    }

    fn eval(&mut self, key: &str, arg: &Value) -> Result<Value, ExprError> {
        match key {
            "$var" => {
                let name = arg
                    .as_str()
                    .ok_or_else(|| operand("$var", "expects a name"))?;
                self.vars
                    .get(name)
                    .cloned()
                    .ok_or_else(|| ExprError::UnknownVar(name.to_owned()))
            }
            "$image" => {
                let path = arg
                    .as_str()
                    .ok_or_else(|| operand("$image", "expects a path"))?;
                Ok(Value::String(self.image_b64(path)?))
            }
            "$mean" => {
                let vs = self.vectors("$mean", arg)?;
                Ok(vector_value(&combine("$mean", &vs, None)?))
            }
            "$combine" => {
                let vs = self.vectors(
                    "$combine",
                    arg.get("vectors").unwrap_or(&Value::Array(vec![])),
                )?;
                let weights = match arg.get("weights") {
                    Some(w) => {
                        let w = self.resolve(w)?;
                        Some(to_f32s("$combine", &w)?)
                    }
                    None => None,
                };
                Ok(vector_value(&combine("$combine", &vs, weights.as_deref())?))
            }
            "$moveTo" | "$moveAwayFrom" => {
                let op: &'static str = if key == "$moveTo" {
                    "$moveTo"
                } else {
                    "$moveAwayFrom"
                };
                let from = self.vector_field(op, arg, "from")?;
                let to = self.vector_field(op, arg, "to")?;
                let force = arg
                    .get("force")
                    .and_then(Value::as_f64)
                    .ok_or_else(|| operand(op, "needs a numeric \"force\""))?
                    as f32;
                if from.len() != to.len() {
                    return Err(operand(op, "vector lengths differ"));
                }
                let out = if op == "$moveTo" {
                    move_to(&from, &to, force)
                } else {
                    move_away_from(&from, &to, force)
                };
                Ok(vector_value(&out))
            }
            "$cosineDistance" | "$certainty" => {
                let op: &'static str = if key == "$certainty" {
                    "$certainty"
                } else {
                    "$cosineDistance"
                };
                let vs = self.vectors(op, arg)?;
                let [a, b] = vs.as_slice() else {
                    return Err(operand(op, "expects two vectors"));
                };
                let d = cosine_distance(a, b);
                let out = if op == "$certainty" { 1.0 - d / 2.0 } else { d };
                Ok(number(out as f64))
            }
            "$any" => Ok(any_matcher()),
            "$anyOf" | "$startsWith" => {
                let mut m = Map::new();
                m.insert(key.to_owned(), self.resolve(arg)?);
                Ok(Value::Object(m))
            }
            other => Err(ExprError::Operand {
                op: "expression",
                msg: format!("unknown operator {other}"),
            }),
        }
    }
}

fn any_matcher() -> Value {
    let mut m = Map::new();
    m.insert("$any".to_owned(), Value::Bool(true));
    Value::Object(m)
}

fn operand(op: &'static str, msg: &str) -> ExprError {
    ExprError::Operand {
        op,
        msg: msg.to_owned(),
    }
}

fn number(x: f64) -> Value {
    serde_json::Number::from_f64(x)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

fn vector_value(v: &[f32]) -> Value {
    Value::Array(v.iter().map(|x| number(f64::from(*x))).collect())
}

fn to_f32s(op: &'static str, v: &Value) -> Result<Vec<f32>, ExprError> {
    let Value::Array(items) = v else {
        return Err(operand(op, &format!("expected a vector, got {v}")));
    };
    items
        .iter()
        .map(|x| {
            x.as_f64()
                .map(|f| f as f32)
                .ok_or_else(|| operand(op, "vector elements must be numbers"))
        })
        .collect()
}

/// Weaviate's `CombineVectorsWithWeights` (spec §3.1, §5.3): weights normalised by `1/Σw`,
/// per-dimension sum in vector order, then divided by the number of vectors. f32 throughout,
/// with separate multiply and add as on amd64 (§10.3).
fn combine(
    op: &'static str,
    vs: &[Vec<f32>],
    weights: Option<&[f32]>,
) -> Result<Vec<f32>, ExprError> {
    let dim = vs.first().map_or(0, Vec::len);
    if vs.iter().any(|v| v.len() != dim) {
        return Err(operand(op, "vector lengths differ"));
    }
    let weights = match weights {
        Some(w) if !w.is_empty() => {
            if w.len() < vs.len() {
                return Err(operand(op, "fewer weights than vectors"));
            }
            let mut sum = 0f32;
            for x in w {
                sum += *x;
            }
            let normalizer = 1f32 / sum;
            Some(w.iter().map(|x| x * normalizer).collect::<Vec<f32>>())
        }
        _ => None,
    };
    let mut out = vec![0f32; dim];
    for (k, v) in vs.iter().enumerate() {
        for (o, x) in out.iter_mut().zip(v) {
            let term = match &weights {
                Some(w) => x * w[k],
                None => *x,
            };
            *o += term;
        }
    }
    let count = vs.len() as f32;
    for o in &mut out {
        *o /= count;
    }
    Ok(out)
}

/// Spec §3.2 moveTo: `out = s*(1 - w*0.5) + t*(w*0.5)`.
fn move_to(s: &[f32], t: &[f32], force: f32) -> Vec<f32> {
    let keep = 1f32 - force * 0.5;
    let take = force * 0.5;
    s.iter().zip(t).map(|(a, b)| a * keep + b * take).collect()
}

/// Spec §3.2 moveAwayFrom: `out = s + w*0.5*(s - t)`.
fn move_away_from(s: &[f32], t: &[f32], force: f32) -> Vec<f32> {
    let w = force * 0.5;
    s.iter().zip(t).map(|(a, b)| a + w * (a - b)).collect()
}

/// Cosine distance `1 - cos(a, b)`, computed in f64 (the tolerance of a check absorbs the
/// difference to Weaviate's f32 kernels).
fn cosine_distance(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        return 1.0;
    }
    (1.0 - dot / (na.sqrt() * nb.sqrt())) as f32
}

/// Follows a dotted path (`data.Get.C.0._additional.id`) into a JSON value. On a list, a segment
/// `key=value` selects the first element whose string field `key` is `value`
/// (`classes.class=CfSchema.vectorizer`).
pub fn at_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    if path.is_empty() {
        return Some(v);
    }
    path.split('.').try_fold(v, |cur, seg| match cur {
        Value::Array(items) => match seg.split_once('=') {
            Some((key, want)) => items
                .iter()
                .find(|i| i.get(key).and_then(Value::as_str) == Some(want)),
            None => seg.parse::<usize>().ok().and_then(|i| items.get(i)),
        },
        Value::Object(map) => map.get(seg),
        _ => None,
    })
}

/// Checks `actual` against a resolved pattern. Numbers compare within `tol`; objects must have
/// exactly the same keys (a `$any` value still requires the key to exist).
pub fn matches(pattern: &Value, actual: &Value, tol: f64) -> Result<(), String> {
    matches_at(pattern, actual, tol, "")
}

fn matches_at(pattern: &Value, actual: &Value, tol: f64, here: &str) -> Result<(), String> {
    let loc = if here.is_empty() { "<root>" } else { here };
    if let Value::Object(p) = pattern {
        if p.len() == 1 {
            if let Some((k, arg)) = p.iter().next() {
                match k.as_str() {
                    "$any" => return Ok(()),
                    "$anyOf" => {
                        let alts = arg.as_array().cloned().unwrap_or_default();
                        return if alts
                            .iter()
                            .any(|a| matches_at(a, actual, tol, here).is_ok())
                        {
                            Ok(())
                        } else {
                            Err(format!(
                                "at {loc}: {} matches none of {}",
                                short(actual),
                                short(arg)
                            ))
                        };
                    }
                    "$startsWith" => {
                        let prefix = arg.as_str().unwrap_or_default();
                        return match actual.as_str() {
                            Some(s) if s.starts_with(prefix) => Ok(()),
                            _ => Err(format!(
                                "at {loc}: expected a string starting with {prefix:?}, got {}",
                                short(actual)
                            )),
                        };
                    }
                    _ => {}
                }
            }
        }
    }
    match (pattern, actual) {
        (Value::Number(p), Value::Number(a)) => {
            let (p, a) = (
                p.as_f64().unwrap_or(f64::NAN),
                a.as_f64().unwrap_or(f64::NAN),
            );
            if (p - a).abs() <= tol || p == a {
                Ok(())
            } else {
                Err(format!("at {loc}: expected {p} (±{tol}), got {a}"))
            }
        }
        (Value::Array(p), Value::Array(a)) => {
            if p.len() != a.len() {
                return Err(format!(
                    "at {loc}: expected {} items, got {}",
                    p.len(),
                    a.len()
                ));
            }
            for (i, (pi, ai)) in p.iter().zip(a).enumerate() {
                matches_at(pi, ai, tol, &join(here, &i.to_string()))?;
            }
            Ok(())
        }
        (Value::Object(p), Value::Object(a)) => {
            for k in p.keys() {
                if !a.contains_key(k) {
                    return Err(format!("at {loc}: missing key {k:?}"));
                }
            }
            for k in a.keys() {
                if !p.contains_key(k) {
                    return Err(format!("at {loc}: unexpected key {k:?}"));
                }
            }
            for (k, pv) in p {
                if let Some(av) = a.get(k) {
                    matches_at(pv, av, tol, &join(here, k))?;
                }
            }
            Ok(())
        }
        (p, a) if p == a => Ok(()),
        (p, a) => Err(format!("at {loc}: expected {}, got {}", short(p), short(a))),
    }
}

fn join(here: &str, seg: &str) -> String {
    if here.is_empty() {
        seg.to_owned()
    } else {
        format!("{here}.{seg}")
    }
}

/// A value printed for a failure message, cut to a readable length.
pub fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 300 {
        let cut: String = s.chars().take(300).collect();
        format!("{cut}…")
    } else {
        s
    }
}

/// Directories where `{"$image": path}` is looked up: the working directory, then the repository
/// root guessed from the cases directory (`<root>/fixtures/conformance`), then the cases directory.
pub fn default_roots(cases_dir: &Path) -> Vec<PathBuf> {
    let mut roots = Vec::new();
    if let Some(root) = cases_dir.parent().and_then(Path::parent) {
        roots.push(root.to_owned());
    }
    roots.push(cases_dir.to_owned());
    roots
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_become_stable_uuids() {
        let mut cx = Context::default();
        let a = cx.resolve(&json!("@red-circle")).unwrap();
        assert_eq!(a, json!(named_id("red-circle")));
        assert_eq!(
            cx.render("x {{id:red-circle}} y").unwrap(),
            format!("x {} y", named_id("red-circle"))
        );
        assert_eq!(
            display_id(&named_id("red-circle"), &cx.names),
            "@red-circle"
        );
        // Not a name reference: kept verbatim.
        assert_eq!(cx.resolve(&json!("@ no")).unwrap(), json!("@ no"));
    }

    #[test]
    fn combine_follows_weaviate_weights_and_count() {
        // text·0.4 + image·0.6, then / 2 (spec §5.3, vectorizer_test.go).
        let out = combine("t", &[vec![1.0, 0.0], vec![0.0, 1.0]], Some(&[2.0, 3.0])).unwrap();
        assert_eq!(out, vec![0.4f32 / 2.0, 0.6f32 / 2.0]);
        let mean = combine("t", &[vec![1.0, 3.0], vec![3.0, 5.0]], None).unwrap();
        assert_eq!(mean, vec![2.0, 4.0]);
    }

    #[test]
    fn moves_follow_spec_formulas() {
        assert_eq!(move_to(&[1.0, 0.0], &[0.0, 1.0], 1.0), vec![0.5, 0.5]);
        assert_eq!(
            move_away_from(&[1.0, 0.0], &[0.0, 1.0], 1.0),
            vec![1.5, -0.5]
        );
    }

    #[test]
    fn matchers() {
        let mut cx = Context::default();
        let p = cx
            .resolve(&json!({"a": {"$any": true}, "b": {"$anyOf": ["x", "y"]}, "c": {"$startsWith": "ab"}, "d": 1.0}))
            .unwrap();
        assert!(matches(
            &p,
            &json!({"a": [1], "b": "y", "c": "abc", "d": 1.0000001}),
            1e-5
        )
        .is_ok());
        assert!(matches(&p, &json!({"a": [1], "b": "z", "c": "abc", "d": 1.0}), 0.0).is_err());
        assert!(matches(&p, &json!({"b": "x", "c": "abc", "d": 1.0}), 0.0).is_err());
        assert!(matches(
            &p,
            &json!({"a": 1, "b": "x", "c": "abc", "d": 1.0, "e": 2}),
            0.0
        )
        .is_err());
    }

    #[test]
    fn paths() {
        let v = json!({"data": {"Get": {"C": [{"_additional": {"id": "x"}}]}}});
        assert_eq!(
            at_path(&v, "data.Get.C.0._additional.id"),
            Some(&json!("x"))
        );
        assert_eq!(at_path(&v, "data.Get.C.1"), None);
        let s = json!({"classes": [{"class": "A", "v": 1}, {"class": "B", "v": 2}]});
        assert_eq!(at_path(&s, "classes.class=B.v"), Some(&json!(2)));
    }

    #[test]
    fn expressions_over_captured_vectors() {
        let mut cx = Context::default();
        cx.vars.insert("a".into(), json!([1.0, 0.0]));
        cx.vars.insert("b".into(), json!([0.0, 1.0]));
        let d = cx
            .resolve(&json!({"$cosineDistance": [{"$var": "a"}, {"$mean": [{"$var": "a"}, {"$var": "b"}]}]}))
            .unwrap();
        let d = d.as_f64().unwrap();
        assert!((d - (1.0 - std::f64::consts::FRAC_1_SQRT_2)).abs() < 1e-6);
        assert_eq!(cx.render("{{var:a}}").unwrap(), "[1.0,0.0]");
    }
}
