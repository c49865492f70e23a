//! Expansion of TFLite sparse tensors (a TACO-style format) to dense ones.
//!
//! TFLite stores a sparse constant as its non-zero values in traversal order plus, per traversal
//! level, either a dense size or CSR segments and indices. Levels past the tensor's rank are
//! inner block dimensions mapped onto original ones by `block_map`. ONNX Runtime has no such
//! format for initializers, so the converter expands these tensors at conversion time.

use crate::tflite::{DimMeta, Sparsity};

/// For each stored value of a sparse tensor, in storage order, its flat (row-major) index in the
/// dense tensor of shape `dense_shape`.
pub(crate) fn dense_positions(sp: &Sparsity, dense_shape: &[usize]) -> Result<Vec<usize>, String> {
    let rank = dense_shape.len();
    let blocks = sp.block_map.len();
    let levels = rank + blocks;
    if rank > 8 {
        return Err(format!("sparse tensor of rank {rank}"));
    }
    if sp.traversal_order.len() != levels || sp.dims.len() != levels {
        return Err(format!(
            "{} traversal entries and {} dimension metadata for rank {rank} with {blocks} blocks",
            sp.traversal_order.len(),
            sp.dims.len()
        ));
    }
    let mut seen = vec![false; levels];
    for (l, &t) in sp.traversal_order.iter().enumerate() {
        let in_range = if l < rank {
            t < rank
        } else {
            (rank..levels).contains(&t)
        };
        if !in_range || seen[t] {
            return Err(format!(
                "traversal order {:?} is not a permutation",
                sp.traversal_order
            ));
        }
        seen[t] = true;
    }
    // Block sizes come from the dense size of the level that traverses each block dimension.
    let mut block_size = vec![1usize; blocks];
    let mut blocked = vec![1usize; rank];
    for (b, &dim) in sp.block_map.iter().enumerate() {
        if dim >= rank || blocked[dim] != 1 {
            return Err(format!("bad block map {:?}", sp.block_map));
        }
        let level = sp
            .traversal_order
            .iter()
            .position(|&t| t == rank + b)
            .unwrap_or(levels);
        match sp.dims.get(level) {
            Some(DimMeta::Dense(s)) if *s > 0 && dense_shape[dim].is_multiple_of(*s) => {
                block_size[b] = *s;
                blocked[dim] = *s;
            }
            _ => {
                return Err(format!(
                    "block {b} has no dense size dividing dimension {dim}"
                ));
            }
        }
    }
    // How many coordinates each level ranges over.
    let level_size: Vec<usize> = sp
        .traversal_order
        .iter()
        .map(|&t| {
            if t < rank {
                dense_shape[t] / blocked[t]
            } else {
                block_size[t - rank]
            }
        })
        .collect();
    for (l, dm) in sp.dims.iter().enumerate() {
        if let DimMeta::Dense(s) = dm
            && *s != level_size[l]
        {
            return Err(format!(
                "level {l} has dense size {s}, expected {}",
                level_size[l]
            ));
        }
    }
    let total = dense_shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or("dense size overflows")?;
    let mut strides = vec![1usize; rank];
    for d in (0..rank.saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * dense_shape[d + 1];
    }
    let mut walk = Walk {
        sp,
        rank,
        block_size,
        level_size,
        strides,
        total,
        idx: vec![0; levels],
        out: Vec::new(),
    };
    walk.visit(0, 0)?;
    Ok(walk.out)
}

struct Walk<'s> {
    sp: &'s Sparsity,
    rank: usize,
    block_size: Vec<usize>,
    level_size: Vec<usize>,
    strides: Vec<usize>,
    total: usize,
    idx: Vec<usize>,
    out: Vec<usize>,
}

impl Walk<'_> {
    /// Visits level `level`; `prev` is the position of the parent element among its level's
    /// elements, which is what CSR segments are indexed by.
    fn visit(&mut self, level: usize, prev: usize) -> Result<(), String> {
        let Some(dm) = self.sp.dims.get(level) else {
            return self.emit();
        };
        match dm {
            DimMeta::Dense(size) => {
                for i in 0..*size {
                    self.idx[level] = i;
                    let pos = prev
                        .checked_mul(*size)
                        .and_then(|p| p.checked_add(i))
                        .ok_or("sparse position overflows")?;
                    self.visit(level + 1, pos)?;
                }
            }
            DimMeta::Sparse { segments, indices } => {
                let (Some(&a), Some(&b)) = (segments.get(prev), segments.get(prev + 1)) else {
                    return Err(format!("level {level} has no segment {prev}"));
                };
                if a > b || b > indices.len() {
                    return Err(format!("level {level} segment {a}..{b} is out of range"));
                }
                for (j, &v) in indices.iter().enumerate().take(b).skip(a) {
                    if v >= self.level_size[level] {
                        return Err(format!("level {level} index {v} out of range"));
                    }
                    self.idx[level] = v;
                    self.visit(level + 1, j)?;
                }
            }
        }
        Ok(())
    }

    fn emit(&mut self) -> Result<(), String> {
        let rank = self.rank;
        let mut orig = [0usize; 8];
        for (l, &t) in self.sp.traversal_order.iter().enumerate().take(rank) {
            orig[t] = self.idx[l];
        }
        for (l, &t) in self.sp.traversal_order.iter().enumerate().skip(rank) {
            let b = t - rank;
            let dim = self.sp.block_map[b];
            orig[dim] = orig[dim] * self.block_size[b] + self.idx[l];
        }
        if self.out.len() >= self.total {
            return Err("more stored values than dense elements".to_string());
        }
        let flat = (0..rank).map(|d| orig[d] * self.strides[d]).sum();
        self.out.push(flat);
        Ok(())
    }
}

/// Scatters `values` (in storage order) into a zero-filled dense vector of `total` elements.
pub(crate) fn scatter<T: Copy + Default>(
    values: &[T],
    positions: &[usize],
    total: usize,
) -> Result<Vec<T>, String> {
    if values.len() != positions.len() {
        return Err(format!(
            "{} stored values for {} sparse positions",
            values.len(),
            positions.len()
        ));
    }
    let mut dense = vec![T::default(); total];
    for (&v, &p) in values.iter().zip(positions) {
        *dense.get_mut(p).ok_or("sparse position out of range")? = v;
    }
    Ok(dense)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp(trav: &[usize], block_map: &[usize], dims: Vec<DimMeta>) -> Sparsity {
        Sparsity {
            traversal_order: trav.to_vec(),
            block_map: block_map.to_vec(),
            dims,
        }
    }

    fn csr(segments: &[usize], indices: &[usize]) -> DimMeta {
        DimMeta::Sparse {
            segments: segments.to_vec(),
            indices: indices.to_vec(),
        }
    }

    #[test]
    fn csr_matrix() {
        // [[a 0 0 b], [0 0 0 0], [0 c 0 0]]
        let s = sp(
            &[0, 1],
            &[],
            vec![DimMeta::Dense(3), csr(&[0, 2, 2, 3], &[0, 3, 1])],
        );
        let pos = dense_positions(&s, &[3, 4]).unwrap();
        assert_eq!(pos, vec![0, 3, 9]);
        let dense = scatter(&[1.0f32, 2.0, 3.0], &pos, 12).unwrap();
        assert_eq!(dense, vec![1., 0., 0., 2., 0., 0., 0., 0., 0., 3., 0., 0.]);
    }

    #[test]
    fn column_major_dense() {
        let s = sp(&[1, 0], &[], vec![DimMeta::Dense(4), DimMeta::Dense(3)]);
        let pos = dense_positions(&s, &[3, 4]).unwrap();
        assert_eq!(pos, vec![0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
    }

    #[test]
    fn block_sparse() {
        // 4x4 with 2x2 blocks: block (0,1) and block (1,0) stored.
        let s = sp(
            &[0, 1, 2, 3],
            &[0, 1],
            vec![
                DimMeta::Dense(2),
                csr(&[0, 1, 2], &[1, 0]),
                DimMeta::Dense(2),
                DimMeta::Dense(2),
            ],
        );
        let pos = dense_positions(&s, &[4, 4]).unwrap();
        assert_eq!(pos, vec![2, 3, 6, 7, 8, 9, 12, 13]);
    }

    #[test]
    fn conv_weight_like_the_detector() {
        // [O=2, 1, 1, I=3], innermost level sparse (as in pose_detection.tflite).
        let s = sp(
            &[0, 1, 2, 3],
            &[],
            vec![
                DimMeta::Dense(2),
                DimMeta::Dense(1),
                DimMeta::Dense(1),
                csr(&[0, 1, 3], &[2, 0, 1]),
            ],
        );
        assert_eq!(dense_positions(&s, &[2, 1, 1, 3]).unwrap(), vec![2, 3, 4]);
    }

    #[test]
    fn malformed_metadata_is_an_error() {
        let bad_index = sp(
            &[0, 1],
            &[],
            vec![DimMeta::Dense(2), csr(&[0, 1, 2], &[0, 9])],
        );
        assert!(dense_positions(&bad_index, &[2, 4]).is_err());
        let bad_segments = sp(&[0, 1], &[], vec![DimMeta::Dense(2), csr(&[0, 5], &[0])]);
        assert!(dense_positions(&bad_segments, &[2, 4]).is_err());
        let bad_order = sp(&[0, 0], &[], vec![DimMeta::Dense(2), DimMeta::Dense(4)]);
        assert!(dense_positions(&bad_order, &[2, 4]).is_err());
        let wrong_size = sp(&[0, 1], &[], vec![DimMeta::Dense(3), DimMeta::Dense(4)]);
        assert!(dense_positions(&wrong_size, &[2, 4]).is_err());
        assert!(scatter(&[1.0f32], &[0, 1], 4).is_err());
        assert!(scatter(&[1.0f32], &[7], 4).is_err());
    }
}
