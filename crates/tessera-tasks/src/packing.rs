//! Splitting queued sequences into engine batches: a pure function, tested alone.
//!
//! A padded engine pays for `rows × longest` tokens per batch, plus a fixed cost per run. Sorting
//! by length and cutting where the cost is least (a small dynamic program) keeps short sequences
//! out of batches padded for long ones, while the budget bounds memory.

/// Limits on one engine call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Most padded tokens (`rows × longest`) in one batch.
    pub max_tokens: usize,
    /// Most sequences in one batch.
    pub max_rows: usize,
    /// The fixed cost of one engine call, in padded tokens; larger values favour fewer, fuller batches.
    pub run_cost: usize,
    /// Most input pixels (the graph's input size, summed over the images) in one vision batch.
    pub max_pixels: usize,
}

/// The default pixel budget of one vision batch.
pub const DEFAULT_MAX_BATCH_PIXELS: usize = 4 * 640 * 640;

impl Default for Budget {
    fn default() -> Self {
        Budget {
            max_tokens: 16_384,
            max_rows: 256,
            run_cost: 64,
            // Four 640 × 640 images, or sixteen at 320 × 320.
            max_pixels: DEFAULT_MAX_BATCH_PIXELS,
        }
    }
}

/// Groups sequences of the given lengths into batches, each a list of indices into `lengths`.
///
/// Every index appears exactly once. Within a batch, indices are in increasing length. A sequence
/// longer than the budget allows still gets a batch of its own.
pub fn pack(lengths: &[usize], budget: Budget) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| lengths[i]);
    let n = order.len();
    // best[j]: the least cost of batching the `j` shortest sequences; cut[j]: where its last batch starts.
    let mut best = vec![usize::MAX; n + 1];
    let mut cut = vec![0; n + 1];
    best[0] = 0;
    for end in 1..=n {
        let longest = lengths[order[end - 1]].max(1);
        for start in (0..end).rev() {
            let rows = end - start;
            let fits = rows <= budget.max_rows.max(1) && rows * longest <= budget.max_tokens;
            if !fits && rows > 1 {
                break;
            }
            let cost = best[start].saturating_add(rows * longest + budget.run_cost);
            if cost < best[end] {
                best[end] = cost;
                cut[end] = start;
            }
        }
    }
    let mut batches = Vec::new();
    let mut end = n;
    while end > 0 {
        let start = cut[end];
        batches.push(order[start..end].to_vec());
        end = start;
    }
    batches.reverse();
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    fn padded_tokens(lengths: &[usize], batches: &[Vec<usize>]) -> usize {
        batches
            .iter()
            .map(|b| b.len() * b.iter().map(|&i| lengths[i]).max().unwrap_or(0))
            .sum()
    }

    #[test]
    fn every_sequence_is_packed_once() {
        let lengths: Vec<usize> = (0..100).map(|i| 8 + (i * 37) % 121).collect();
        let batches = pack(&lengths, Budget::default());
        let mut seen: Vec<usize> = batches.concat();
        seen.sort();
        assert_eq!(seen, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn batches_respect_the_budget() {
        let lengths = vec![100; 50];
        let budget = Budget {
            max_tokens: 1000,
            max_rows: 8,
            run_cost: 1,
            ..Budget::default()
        };
        let batches = pack(&lengths, budget);
        for batch in &batches {
            assert!(batch.len() <= 8 && batch.len() * 100 <= 1000, "{batch:?}");
        }
        assert_eq!(batches.len(), 7);
    }

    #[test]
    fn mixed_lengths_waste_less_padding_than_one_batch() {
        let lengths: Vec<usize> = (0..64).map(|i| 8 + (i * 53) % 121).collect();
        let batches = pack(&lengths, Budget::default());
        let one_batch = 64 * lengths.iter().max().unwrap();
        let packed = padded_tokens(&lengths, &batches);
        let real: usize = lengths.iter().sum();
        assert!(
            packed < one_batch * 3 / 4,
            "packed {packed} vs one batch {one_batch}"
        );
        assert!(packed <= real * 5 / 4, "packed {packed} vs real {real}");
    }

    #[test]
    fn equal_lengths_stay_in_one_batch() {
        let batches = pack(&[20; 32], Budget::default());
        assert_eq!(batches.len(), 1);
    }

    #[test]
    fn an_oversized_sequence_gets_its_own_batch_and_empty_input_packs_nothing() {
        let budget = Budget {
            max_tokens: 64,
            max_rows: 4,
            run_cost: 0,
            ..Budget::default()
        };
        let batches = pack(&[10, 500, 10], budget);
        assert!(batches.contains(&vec![1]));
        assert!(pack(&[], budget).is_empty());
    }
}
