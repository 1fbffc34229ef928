//! Import step 2 (I/O): one batched `Embedder` call per modality for every input of a request
//! (a whole batch included), each distinct input embedded once (issue 5: "one batched model call
//! per class/target, not one call per object").

use std::collections::HashMap;

use vectorizer::{EmbedError, Embedder, Vector};

use crate::arithmetic::ArithmeticError;

use super::attach;
use super::plan::TargetPlan;

/// Why one target vector of one object could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TargetError {
    /// The vectorizer failed on one of the object's inputs; the text is the client error as
    /// Weaviate's batch reports it (spec §5.7).
    #[error("{0}")]
    Embed(EmbedError),
    /// Weaviate's recovered panic on too few weights (spec §5.4).
    #[error("{0}")]
    Arithmetic(ArithmeticError),
}

/// The vectors of every distinct text and image of a request.
#[derive(Debug, Default)]
pub struct Embedded {
    texts: HashMap<String, Result<Vector, EmbedError>>,
    images: HashMap<String, Result<Vector, EmbedError>>,
}

/// Embeds all inputs of `plans`: one `embed_texts` and one `embed_images` call (run
/// concurrently), none for a modality without inputs.
pub async fn embed<'a>(
    embedder: &dyn Embedder,
    plans: impl IntoIterator<Item = &'a TargetPlan>,
) -> Embedded {
    let mut texts = Vec::new();
    let mut images = Vec::new();
    let mut seen_texts = std::collections::HashSet::new();
    let mut seen_images = std::collections::HashSet::new();
    for plan in plans {
        for t in &plan.texts {
            if seen_texts.insert(t.as_str()) {
                texts.push(t.clone());
            }
        }
        for i in &plan.images {
            if seen_images.insert(i.as_str()) {
                images.push(i.clone());
            }
        }
    }
    let text_call = async {
        if texts.is_empty() {
            Vec::new()
        } else {
            embedder.embed_texts(&texts).await
        }
    };
    let image_call = async {
        if images.is_empty() {
            Vec::new()
        } else {
            embedder.embed_images(&images).await
        }
    };
    let (text_results, image_results) = tokio::join!(text_call, image_call);
    Embedded {
        texts: pair(texts, text_results),
        images: pair(images, image_results),
    }
}

/// Inputs with their results; an input the embedder gave no result for gets an error rather
/// than being dropped.
fn pair(
    inputs: Vec<String>,
    results: Vec<Result<Vector, EmbedError>>,
) -> HashMap<String, Result<Vector, EmbedError>> {
    let sent = inputs.len();
    let got = results.len();
    let mut results = results.into_iter();
    inputs
        .into_iter()
        .map(|input| {
            let result = results
                .next()
                .unwrap_or(Err(EmbedError::RemoteCount { sent, got }));
            (input, result)
        })
        .collect()
}

impl Embedded {
    /// The combined vector of one target; the first failed input (in vector order) fails it.
    pub fn vector(&self, plan: &TargetPlan) -> Result<Vec<f32>, TargetError> {
        let texts = lookup(&self.texts, &plan.texts)?;
        let images = lookup(&self.images, &plan.images)?;
        let texts: Vec<&[f32]> = texts.iter().map(|v| &v[..]).collect();
        let images: Vec<&[f32]> = images.iter().map(|v| &v[..]).collect();
        attach::combine(plan, &texts, &images).map_err(TargetError::Arithmetic)
    }
}

fn lookup(
    map: &HashMap<String, Result<Vector, EmbedError>>,
    inputs: &[String],
) -> Result<Vec<Vector>, TargetError> {
    inputs
        .iter()
        .map(|input| match map.get(input) {
            Some(Ok(v)) => Ok(v.clone()),
            Some(Err(e)) => Err(TargetError::Embed(e.clone())),
            None => Err(TargetError::Embed(EmbedError::Inference(
                "input was not embedded".into(),
            ))),
        })
        .collect()
}
