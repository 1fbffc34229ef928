//! Text → token ids with the model's own `tokenizer.json`.
//!
//! Issue 2 item 2: truncate to the model's maximum number of positions (77 for CLIP) instead of
//! failing, so that a long query still gets a vector; the empty string is valid input (it encodes
//! to the special tokens only). No padding here: the runner pads to its shape buckets.

use std::path::Path;

use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::EmbedError;

/// A loaded tokenizer with truncation set to the model's position limit.
pub struct TextTokenizer {
    inner: Tokenizer,
    max_len: usize,
    pad_id: i64,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("max_len", &self.max_len)
            .finish()
    }
}

impl TextTokenizer {
    /// Loads `tokenizer.json` and truncates every encoding to `max_len` tokens (special tokens
    /// included), as `tokenizer(text, truncation=True, max_length=max_len)` does.
    pub fn from_file(path: &Path, max_len: usize) -> Result<TextTokenizer, EmbedError> {
        let mut inner = Tokenizer::from_file(path).map_err(|e| {
            EmbedError::Model(format!(
                "{}: not a valid tokenizers JSON file: {e}",
                path.display()
            ))
        })?;
        inner.with_padding(None);
        inner
            .with_truncation(Some(TruncationParams {
                max_length: max_len,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| EmbedError::Model(format!("{}: {e}", path.display())))?;
        // The padding id only fills positions the model never reads (see tract::runner), but use
        // the tokenizer's own choice where it has one, as HF padding would.
        let pad_id = ["<|endoftext|>", "[PAD]", "<pad>"]
            .iter()
            .find_map(|t| inner.token_to_id(t))
            .map_or(0, i64::from);
        Ok(TextTokenizer {
            inner,
            max_len,
            pad_id,
        })
    }

    /// Token ids of `text` (special tokens added), at most `max_len` of them.
    pub fn encode(&self, text: &str) -> Result<Vec<i64>, EmbedError> {
        let enc = self
            .inner
            .encode(text, true)
            .map_err(|e| EmbedError::InvalidText(format!("tokenization failed: {e}")))?;
        let ids: Vec<i64> = enc.get_ids().iter().map(|&i| i64::from(i)).collect();
        if ids.is_empty() {
            return Err(EmbedError::InvalidText(
                "text encodes to no tokens".to_string(),
            ));
        }
        Ok(ids)
    }

    /// The maximum number of tokens per text.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// The id used to fill padded positions.
    pub fn pad_id(&self) -> i64 {
        self.pad_id
    }
}
