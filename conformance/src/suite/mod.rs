//! The conformance suite runner (`clipgate-conformance run --target URL [--cases DIR]`).
//!
//! Runs the scenario files of `fixtures/conformance/` against any Weaviate-compatible URL —
//! clipgate in front of the double, clipgate in front of a real Weaviate, or a real Weaviate
//! with the real `multi2vec-clip` module — using nothing but HTTP, as a client would. Each step
//! of a scenario is one case; the run prints a table and ends with `N passed, M failed`.

pub mod case;
pub mod expr;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

use case::{Expect, LoadedScenario, Step};
use expr::{at_path, display_id, matches, short, Context};

/// Default tolerance for numeric `values` checks: distances and certainties are float32 in
/// Weaviate, and an independent computation differs in the last bits.
const DEFAULT_TOLERANCE: f64 = 1e-5;

/// What to run and against what.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Base URL of the target, e.g. `http://127.0.0.1:8080`.
    pub target: String,
    /// Directory of `*.json` scenarios.
    pub cases: PathBuf,
    /// Only scenarios whose file name contains this string.
    pub filter: Option<String>,
    /// Per-request timeout.
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error(transparent)]
    Load(#[from] case::LoadError),
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// The result of one case (one step).
#[derive(Debug, Clone)]
pub struct Outcome {
    pub scenario: String,
    pub step: String,
    pub failure: Option<String>,
}

/// All outcomes of a run.
#[derive(Debug, Default)]
pub struct Summary {
    pub outcomes: Vec<Outcome>,
}

impl Summary {
    pub fn passed(&self) -> usize {
        self.outcomes.iter().filter(|o| o.failure.is_none()).count()
    }
    pub fn failed(&self) -> usize {
        self.outcomes.len() - self.passed()
    }
    /// The closing line CI and humans read.
    pub fn line(&self) -> String {
        format!("{} passed, {} failed", self.passed(), self.failed())
    }
}

/// Loads the scenarios and runs them in file-name order, printing each case as it finishes.
pub async fn run(opts: &RunOptions) -> Result<Summary, SuiteError> {
    let mut scenarios = case::load_dir(&opts.cases)?;
    if let Some(f) = &opts.filter {
        scenarios.retain(|s| s.file.to_string_lossy().contains(f.as_str()));
    }
    let client = reqwest::Client::builder().timeout(opts.timeout).build()?;
    let target = Target {
        base: opts.target.trim_end_matches('/').to_owned(),
        client,
    };
    let roots = expr::default_roots(&opts.cases);
    let mut summary = Summary::default();
    println!("{:<6} {:<28} CASE", "RESULT", "SCENARIO");
    for s in &scenarios {
        for outcome in run_scenario(&target, s, roots.clone()).await {
            print_outcome(&outcome);
            summary.outcomes.push(outcome);
        }
    }
    Ok(summary)
}

fn print_outcome(o: &Outcome) {
    match &o.failure {
        None => println!("{:<6} {:<28} {}", "ok", o.scenario, o.step),
        Some(why) => {
            println!("{:<6} {:<28} {}", "FAIL", o.scenario, o.step);
            for line in why.lines() {
                println!("{:<6} {:<28}   └ {line}", "", "");
            }
        }
    }
}

struct Target {
    base: String,
    client: reqwest::Client,
}

/// An HTTP answer: status and body as JSON (a non-JSON body becomes a JSON string; empty → null).
struct Answer {
    status: u16,
    body: Value,
}

impl Target {
    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(String, String)],
    ) -> Result<Answer, String> {
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| format!("bad method {method:?}: {e}"))?;
        let url = format!("{}{}", self.base, path);
        let mut req = self.client.request(method.clone(), &url);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let status = resp.status().as_u16();
        let text = resp
            .text()
            .await
            .map_err(|e| format!("{method} {path}: reading body: {e}"))?;
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok(Answer { status, body })
    }
}

fn scenario_name(s: &LoadedScenario) -> String {
    s.file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

async fn run_scenario(target: &Target, s: &LoadedScenario, roots: Vec<PathBuf>) -> Vec<Outcome> {
    let name = scenario_name(s);
    let mut cx = Context::new(roots);
    let classes = s.scenario.class_names();
    cleanup(target, &classes).await;
    let setup = setup(target, s, &mut cx).await;
    let mut outcomes = Vec::with_capacity(s.scenario.steps.len());
    for step in &s.scenario.steps {
        let failure = match &setup {
            Err(e) => Some(format!("set-up failed: {e}")),
            Ok(()) => run_step(target, step, &mut cx).await.err(),
        };
        outcomes.push(Outcome {
            scenario: name.clone(),
            step: step.name.clone(),
            failure,
        });
    }
    cleanup(target, &classes).await;
    outcomes
}

/// Deletes the scenario's classes; errors (e.g. 404 for a class that is not there) are expected.
async fn cleanup(target: &Target, classes: &[String]) {
    for c in classes {
        let _ = target
            .send("DELETE", &format!("/v1/schema/{c}"), None, &[])
            .await;
    }
}

async fn setup(target: &Target, s: &LoadedScenario, cx: &mut Context) -> Result<(), String> {
    for class in &s.scenario.classes {
        let body = cx.resolve(class).map_err(|e| e.to_string())?;
        let a = target.send("POST", "/v1/schema", Some(&body), &[]).await?;
        if a.status != 200 {
            return Err(format!(
                "creating class {}: HTTP {}: {}",
                class.get("class").map(short).unwrap_or_default(),
                a.status,
                short(&a.body)
            ));
        }
    }
    if s.scenario.objects.is_empty() {
        return Ok(());
    }
    let objects = cx
        .resolve(&Value::Array(s.scenario.objects.clone()))
        .map_err(|e| e.to_string())?;
    let a = target
        .send(
            "POST",
            "/v1/batch/objects",
            Some(&json!({ "objects": objects })),
            &[],
        )
        .await?;
    if a.status != 200 {
        return Err(format!(
            "batch import: HTTP {}: {}",
            a.status,
            short(&a.body)
        ));
    }
    let results = a.body.as_array().cloned().unwrap_or_default();
    if results.len() != s.scenario.objects.len() {
        return Err(format!(
            "batch import: {} results for {} objects",
            results.len(),
            s.scenario.objects.len()
        ));
    }
    for (i, r) in results.iter().enumerate() {
        if at_path(r, "result.status").and_then(Value::as_str) == Some("FAILED") {
            return Err(format!(
                "batch import: object #{i} failed: {}",
                short(at_path(r, "result.errors").unwrap_or(&Value::Null))
            ));
        }
    }
    Ok(())
}

async fn run_step(target: &Target, step: &Step, cx: &mut Context) -> Result<(), String> {
    let is_graphql = step.graphql.is_some();
    let answer = if let Some(q) = &step.graphql {
        let mut body = json!({ "query": cx.render(q).map_err(|e| e.to_string())? });
        if let Some(v) = &step.variables {
            body["variables"] = cx.resolve(v).map_err(|e| e.to_string())?;
        }
        if let Some(op) = &step.operation_name {
            body["operationName"] = Value::String(op.clone());
        }
        target.send("POST", "/v1/graphql", Some(&body), &[]).await?
    } else if let Some(r) = &step.request {
        let path = cx.render(&r.path).map_err(|e| e.to_string())?;
        let body = match &r.body {
            Some(b) => Some(cx.resolve(b).map_err(|e| e.to_string())?),
            None => None,
        };
        let headers: Vec<(String, String)> = r
            .headers
            .iter()
            .map(|(k, v)| Ok((k.clone(), cx.render(v)?)))
            .collect::<Result<_, expr::ExprError>>()
            .map_err(|e| e.to_string())?;
        target
            .send(&r.method, &path, body.as_ref(), &headers)
            .await?
    } else {
        return Err("step has neither graphql nor request".to_owned());
    };
    check(&step.expect, is_graphql, &answer, cx)?;
    for (name, path) in &step.capture {
        let v = at_path(&answer.body, path)
            .ok_or_else(|| format!("capture {name}: nothing at {path}"))?;
        cx.vars.insert(name.clone(), v.clone());
    }
    Ok(())
}

fn check(expect: &Expect, is_graphql: bool, a: &Answer, cx: &mut Context) -> Result<(), String> {
    let mut problems = Vec::new();
    let want_status = expect.status.unwrap_or(200);
    if a.status != want_status {
        return Err(format!(
            "expected HTTP {want_status}, got {}: {}",
            a.status,
            short(&a.body)
        ));
    }
    let errors = a.body.get("errors").filter(|e| !e.is_null());
    let first_error = errors.and_then(|e| e.get(0));
    if let Some(pattern) = &expect.error {
        let pattern = cx.resolve(pattern).map_err(|e| e.to_string())?;
        match first_error.and_then(|e| e.get("message")) {
            None => problems.push(format!(
                "expected GraphQL error {}, got none: {}",
                short(&pattern),
                short(&a.body)
            )),
            Some(msg) => {
                if let Err(e) = matches(&pattern, msg, 0.0) {
                    problems.push(format!(
                        "error message differs:\n  expected {}\n  got      {}\n  ({e})",
                        short(&pattern),
                        short(msg)
                    ));
                }
            }
        }
    } else if is_graphql
        && expect.body.is_none()
        && expect.no_errors != Some(false)
        && errors.is_some_and(|e| e.as_array().is_none_or(|l| !l.is_empty()))
    {
        problems.push(format!(
            "unexpected GraphQL errors: {}",
            short(&a.body["errors"])
        ));
    }
    if let Some(p) = &expect.error_path {
        let p = cx.resolve(p).map_err(|e| e.to_string())?;
        let got = first_error
            .and_then(|e| e.get("path"))
            .unwrap_or(&Value::Null);
        if let Err(e) = matches(&p, got, 0.0) {
            problems.push(format!("error path: {e}"));
        }
    }
    if let Some(p) = &expect.body {
        let p = cx.resolve(p).map_err(|e| e.to_string())?;
        if let Err(e) = matches(&p, &a.body, 0.0) {
            problems.push(format!("body differs {e}; body: {}", short(&a.body)));
        }
    }
    if expect.ids.is_some() || expect.ids_start_with.is_some() {
        if let Err(e) = check_ids(expect, &a.body, cx) {
            problems.push(e);
        }
    }
    for v in &expect.values {
        let got = at_path(&a.body, &v.at);
        if v.absent == Some(true) {
            if let Some(g) = got {
                problems.push(format!("{}: expected absent, got {}", v.at, short(g)));
            }
            continue;
        }
        let Some(got) = got else {
            problems.push(format!("{}: nothing there; body: {}", v.at, short(&a.body)));
            continue;
        };
        if let Some(n) = v.length {
            let len = got.as_array().map(Vec::len);
            if len != Some(n) {
                problems.push(format!("{}: expected {n} items, got {}", v.at, short(got)));
            }
        }
        let tol = v.tolerance.unwrap_or(DEFAULT_TOLERANCE);
        if let Some(eq) = &v.equals {
            let p = cx.resolve(eq).map_err(|e| e.to_string())?;
            if let Err(e) = matches(&p, got, tol) {
                problems.push(format!("{}: {e}", v.at));
            }
        }
        for (bound, less) in [(&v.less_than, true), (&v.greater_than, false)] {
            if let Some(b) = bound {
                let b = cx.resolve(b).map_err(|e| e.to_string())?;
                match (b.as_f64(), got.as_f64()) {
                    (Some(b), Some(g)) if (less && g < b) || (!less && g > b) => {}
                    _ => problems.push(format!(
                        "{}: expected {} {}, got {}",
                        v.at,
                        if less { "<" } else { ">" },
                        short(&b),
                        short(got)
                    )),
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// The result list of a GraphQL answer: `data.Get.<only class>`, `data.Explore`, or `idsAt`.
fn result_list<'a>(expect: &Expect, body: &'a Value) -> Option<&'a Value> {
    if let Some(p) = &expect.ids_at {
        return at_path(body, p);
    }
    if let Some(e) = at_path(body, "data.Explore").filter(|v| v.is_array()) {
        return Some(e);
    }
    match at_path(body, "data.Get") {
        Some(Value::Object(m)) if m.len() == 1 => m.values().next(),
        _ => None,
    }
}

fn item_id(item: &Value) -> Option<String> {
    if let Some(id) = at_path(item, "_additional.id").and_then(Value::as_str) {
        return Some(id.to_owned());
    }
    if let Some(b) = item.get("beacon").and_then(Value::as_str) {
        return b.rsplit('/').next().map(str::to_owned);
    }
    item.get("id").and_then(Value::as_str).map(str::to_owned)
}

fn check_ids(expect: &Expect, body: &Value, cx: &mut Context) -> Result<(), String> {
    let list = result_list(expect, body)
        .and_then(Value::as_array)
        .ok_or_else(|| format!("no result list in {}", short(body)))?;
    let got: Vec<String> = list
        .iter()
        .map(|i| item_id(i).unwrap_or_else(|| "<no id>".to_owned()))
        .collect();
    let (want, prefix) = match (&expect.ids, &expect.ids_start_with) {
        (Some(w), _) => (w, false),
        (None, Some(w)) => (w, true),
        (None, None) => return Ok(()),
    };
    let want: Vec<String> = want.iter().map(|w| cx.resolve_id(w)).collect();
    let ok = if prefix {
        got.len() >= want.len() && got[..want.len()] == want[..]
    } else {
        got == want
    };
    if ok {
        return Ok(());
    }
    let show = |ids: &[String]| {
        let mut s = String::from("[");
        for (i, id) in ids.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            let _ = write!(s, "{}", display_id(id, &cx.names));
        }
        s.push(']');
        s
    };
    Err(format!(
        "ids{}: expected {}\n  got {}",
        if prefix { " (first)" } else { "" },
        show(want.as_slice()),
        show(got.as_slice())
    ))
}
