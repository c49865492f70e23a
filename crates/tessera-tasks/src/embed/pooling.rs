//! Padding a batch for an encoder and pooling its hidden states back into one vector per sequence:
//! shared by every embedding engine.
//!
//! The pooling functions take the last hidden state `[batch, padded_len, dim]` in row-major order;
//! sequence `i` has `lengths[i]` real tokens at the front, the rest is padding and is ignored. A
//! sequence with no tokens pools to zeros.

use std::fmt;
use std::str::FromStr;

use tessera_core::Encoding;

/// How a sequence's token vectors become one vector, as a model was trained to be used
/// (sentence-transformers' `1_Pooling/config.json`, the catalog's `pooling` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Pooling {
    /// The mean over the real tokens ([`mean_pool`]); most sentence-transformers models.
    #[default]
    Mean,
    /// The first token's vector, `[CLS]` ([`cls_pool`]); BGE and many retrieval models.
    Cls,
    /// The element-wise maximum over the real tokens ([`max_pool`]).
    Max,
}

impl Pooling {
    /// Every pooling, in declaration order.
    pub const ALL: &'static [Pooling] = &[Pooling::Mean, Pooling::Cls, Pooling::Max];

    /// The lowercase name used in the catalog (`mean`, `cls`, `max`).
    pub fn as_str(self) -> &'static str {
        match self {
            Pooling::Mean => "mean",
            Pooling::Cls => "cls",
            Pooling::Max => "max",
        }
    }

    /// Pools `hidden` (`[lengths.len(), padded_len, dim]`) into one vector per sequence.
    pub fn pool(
        self,
        hidden: &[f32],
        padded_len: usize,
        dim: usize,
        lengths: &[usize],
    ) -> Vec<Vec<f32>> {
        match self {
            Pooling::Mean => mean_pool(hidden, padded_len, dim, lengths),
            Pooling::Cls => cls_pool(hidden, padded_len, dim, lengths),
            Pooling::Max => max_pool(hidden, padded_len, dim, lengths),
        }
    }
}

impl fmt::Display for Pooling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A pooling name that is not one of [`Pooling::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown pooling `{given}`; expected one of: mean, cls, max")]
pub struct ParsePoolingError {
    given: String,
}

impl FromStr for Pooling {
    type Err = ParsePoolingError;

    /// `mean`, `cls` or `max`, in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        Pooling::ALL
            .iter()
            .copied()
            .find(|p| p.as_str() == lower)
            .ok_or_else(|| ParsePoolingError {
                given: s.to_string(),
            })
    }
}

/// The real tokens of each sequence: `dim`-long vectors, `len` of them.
fn real_tokens<'a>(
    hidden: &'a [f32],
    padded_len: usize,
    dim: usize,
    lengths: &'a [usize],
) -> impl Iterator<Item = std::slice::ChunksExact<'a, f32>> + 'a {
    lengths.iter().enumerate().map(move |(row, &len)| {
        let start = row * padded_len * dim;
        hidden[start..start + len * dim].chunks_exact(dim)
    })
}

/// Mean of each sequence's hidden states over its real tokens.
///
/// `hidden` is `[batch, padded_len, dim]` in row-major order; sequence `i` has `lengths[i]` real
/// tokens at the front, the rest is padding and is ignored.
pub fn mean_pool(
    hidden: &[f32],
    padded_len: usize,
    dim: usize,
    lengths: &[usize],
) -> Vec<Vec<f32>> {
    real_tokens(hidden, padded_len, dim, lengths)
        .map(|tokens| {
            let count = tokens.len().max(1) as f32;
            let mut sum = vec![0.0f32; dim];
            for token in tokens {
                for (acc, value) in sum.iter_mut().zip(token) {
                    *acc += value;
                }
            }
            sum.iter_mut().for_each(|v| *v /= count);
            sum
        })
        .collect()
}

/// Each sequence's first token (`[CLS]` for BERT-family tokenizers); zeros for an empty sequence.
///
/// Same layout as [`mean_pool`].
pub fn cls_pool(hidden: &[f32], padded_len: usize, dim: usize, lengths: &[usize]) -> Vec<Vec<f32>> {
    real_tokens(hidden, padded_len, dim, lengths)
        .map(|mut tokens| {
            tokens
                .next()
                .map_or_else(|| vec![0.0; dim], <[f32]>::to_vec)
        })
        .collect()
}

/// Element-wise maximum of each sequence's hidden states over its real tokens; zeros for an empty
/// sequence.
///
/// Same layout as [`mean_pool`].
pub fn max_pool(hidden: &[f32], padded_len: usize, dim: usize, lengths: &[usize]) -> Vec<Vec<f32>> {
    real_tokens(hidden, padded_len, dim, lengths)
        .map(|mut tokens| {
            let Some(first) = tokens.next() else {
                return vec![0.0; dim];
            };
            let mut max = first.to_vec();
            for token in tokens {
                for (acc, &value) in max.iter_mut().zip(token) {
                    *acc = acc.max(value);
                }
            }
            max
        })
        .collect()
}

/// Scales `vector` to unit length; a zero vector stays zero.
pub fn l2_normalize(vector: &mut [f32]) {
    let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|v| *v /= norm);
    }
}

/// A batch of sequences padded to the longest: `[rows, padded_len]` token ids, segment ids and
/// attention mask (1 for a real token, 0 for padding), in row-major order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PaddedBatch {
    pub(super) rows: usize,
    pub(super) padded_len: usize,
    pub(super) ids: Vec<u32>,
    pub(super) type_ids: Vec<u32>,
    pub(super) mask: Vec<u32>,
    /// Real tokens per row, for pooling.
    pub(super) lengths: Vec<usize>,
}

impl PaddedBatch {
    /// Pads `batch` with id 0 (segment 0, mask 0) to its longest sequence.
    pub(super) fn new(batch: &[&Encoding]) -> Self {
        let rows = batch.len();
        let padded_len = batch.iter().map(|e| e.len()).max().unwrap_or(0);
        let mut ids = vec![0u32; rows * padded_len];
        let mut type_ids = vec![0u32; rows * padded_len];
        let mut mask = vec![0u32; rows * padded_len];
        for (row, encoding) in batch.iter().enumerate() {
            let start = row * padded_len;
            let end = start + encoding.len();
            ids[start..end].copy_from_slice(&encoding.ids);
            type_ids[start..end].copy_from_slice(&encoding.type_ids);
            mask[start..end].fill(1);
        }
        PaddedBatch {
            rows,
            padded_len,
            ids,
            type_ids,
            mask,
            lengths: batch.iter().map(|e| e.len()).collect(),
        }
    }

    /// Whether there is nothing to run: no rows, or no tokens in any of them.
    pub(super) fn is_empty(&self) -> bool {
        self.rows == 0 || self.padded_len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Two sequences padded to 3 tokens of dimension 2; the second has one real token, and padding
    // holds values that would win a max and skew a mean.
    const HIDDEN: [f32; 12] = [
        1.0, 2.0, 3.0, 0.5, 100.0, 100.0, //
        5.0, 6.0, 100.0, 100.0, 100.0, 100.0,
    ];

    #[test]
    fn mean_pool_ignores_padding() {
        let pooled = mean_pool(&HIDDEN, 3, 2, &[2, 1]);
        assert_eq!(pooled, vec![vec![2.0, 1.25], vec![5.0, 6.0]]);
    }

    #[test]
    fn cls_pool_takes_the_first_token() {
        let pooled = cls_pool(&HIDDEN, 3, 2, &[2, 1]);
        assert_eq!(pooled, vec![vec![1.0, 2.0], vec![5.0, 6.0]]);
    }

    #[test]
    fn max_pool_ignores_padding() {
        let pooled = max_pool(&HIDDEN, 3, 2, &[2, 1]);
        assert_eq!(pooled, vec![vec![3.0, 2.0], vec![5.0, 6.0]]);
        // Negative values: padding (zeros here) must not win either.
        let hidden = [-1.0, -4.0, -3.0, -2.0, 0.0, 0.0];
        assert_eq!(max_pool(&hidden, 3, 2, &[2]), vec![vec![-1.0, -2.0]]);
    }

    #[test]
    fn an_empty_sequence_pools_to_zeros() {
        for pooling in Pooling::ALL {
            let pooled = pooling.pool(&HIDDEN, 3, 2, &[0, 1]);
            assert_eq!(pooled[0], vec![0.0, 0.0], "{pooling}");
            assert_eq!(pooled[1], vec![5.0, 6.0], "{pooling}");
        }
    }

    #[test]
    fn pooling_names_round_trip() {
        for &pooling in Pooling::ALL {
            assert_eq!(pooling.to_string().parse::<Pooling>().unwrap(), pooling);
        }
        assert_eq!("CLS".parse::<Pooling>().unwrap(), Pooling::Cls);
        assert_eq!(Pooling::default(), Pooling::Mean);
        let error = "weighted".parse::<Pooling>().unwrap_err().to_string();
        assert_eq!(
            error,
            "unknown pooling `weighted`; expected one of: mean, cls, max"
        );
    }

    #[test]
    fn normalized_vectors_have_unit_length() {
        let mut v = [3.0, 4.0];
        l2_normalize(&mut v);
        assert_eq!(v, [0.6, 0.8]);
        let mut zero = [0.0, 0.0];
        l2_normalize(&mut zero);
        assert_eq!(zero, [0.0, 0.0]);
    }

    #[test]
    fn a_batch_is_padded_to_its_longest_sequence() {
        let long = Encoding {
            ids: vec![101, 7, 102],
            type_ids: vec![0, 0, 1],
        };
        let short = Encoding {
            ids: vec![101, 102],
            type_ids: vec![0, 0],
        };
        let batch = PaddedBatch::new(&[&long, &short]);
        assert_eq!((batch.rows, batch.padded_len), (2, 3));
        assert_eq!(batch.ids, [101, 7, 102, 101, 102, 0]);
        assert_eq!(batch.type_ids, [0, 0, 1, 0, 0, 0]);
        assert_eq!(batch.mask, [1, 1, 1, 1, 1, 0]);
        assert_eq!(batch.lengths, [3, 2]);
        assert!(!batch.is_empty());
        assert!(PaddedBatch::new(&[]).is_empty());
        assert!(PaddedBatch::new(&[&Encoding::default()]).is_empty());
    }
}
