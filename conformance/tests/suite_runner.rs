//! The suite runner against the Weaviate double, over real loopback HTTP: the runner's own
//! mechanics (set-up, ids, values, captures, expressions, errors, clean-up) and the committed cases.

use std::path::Path;
use std::time::Duration;

use conformance::suite::{self, case, RunOptions};

#[tokio::test]
async fn runner_passes_and_fails_the_right_cases_against_the_double() {
    let (addr, _server) = conformance::double::spawn().await.expect("double starts");
    let opts = RunOptions {
        target: format!("http://{addr}"),
        cases: Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/suite_cases"),
        filter: None,
        timeout: Duration::from_secs(30),
    };
    let summary = suite::run(&opts).await.expect("suite runs");
    let failed: Vec<&str> = summary
        .outcomes
        .iter()
        .filter(|o| o.failure.is_some())
        .map(|o| o.step.as_str())
        .collect();
    assert_eq!(
        failed,
        vec!["a deliberately wrong expectation (must fail)"],
        "{summary:?}"
    );
    assert_eq!(summary.line(), "5 passed, 1 failed");

    // Clean-up after the scenario: the class is gone.
    let status = reqwest::get(format!("http://{addr}/v1/schema/SuiteSelfTest"))
        .await
        .expect("schema get")
        .status();
    assert_eq!(status, 404);
}

#[test]
fn committed_cases_load_and_cover_enough() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let all = case::load_dir(&root.join("fixtures/conformance")).expect("cases load");
    let steps: usize = all.iter().map(|s| s.scenario.steps.len()).sum();
    assert!(steps >= 60, "{steps} cases");
    // Unique class names per file, so files never step on each other.
    let mut seen = std::collections::BTreeSet::new();
    for s in &all {
        for c in s.scenario.class_names() {
            assert!(
                seen.insert(c.clone()),
                "class {c} used twice ({})",
                s.file.display()
            );
        }
    }
    // Every referenced image exists.
    for s in &all {
        let text = std::fs::read_to_string(&s.file).expect("read case");
        for (i, _) in text.match_indices("fixtures/images/") {
            let rest = &text[i..];
            let end = rest.find(['"', '}']).unwrap_or(rest.len());
            let path = root.join(&rest[..end]);
            assert!(
                path.is_file(),
                "{} references missing {}",
                s.file.display(),
                path.display()
            );
        }
    }
}
