//! Post-processing shared by every embedding engine.

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
    lengths
        .iter()
        .enumerate()
        .map(|(row, &len)| {
            let mut sum = vec![0.0f32; dim];
            let start = row * padded_len * dim;
            for token in hidden[start..start + len * dim].chunks_exact(dim) {
                for (acc, value) in sum.iter_mut().zip(token) {
                    *acc += value;
                }
            }
            let count = len.max(1) as f32;
            sum.iter_mut().for_each(|v| *v /= count);
            sum
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_pool_ignores_padding() {
        // Two sequences padded to 3 tokens of dimension 2; the second has one real token.
        let hidden = [
            1.0, 2.0, 3.0, 4.0, 100.0, 100.0, 5.0, 6.0, 100.0, 100.0, 100.0, 100.0,
        ];
        let pooled = mean_pool(&hidden, 3, 2, &[2, 1]);
        assert_eq!(pooled, vec![vec![2.0, 3.0], vec![5.0, 6.0]]);
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
}
