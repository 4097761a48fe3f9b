//! Row-wise passes over `[rows, columns]` f32 matrices: whole rows per rayon task, and column sums
//! added up in a fixed order, so a gradient has the same bits whatever the thread count.

use std::ops::Range;

use rayon::prelude::*;

use super::CHUNK;

/// Rows per task for rows of `columns` values: about [`CHUNK`] values, at least one row.
pub(super) fn per_task(columns: usize) -> usize {
    (CHUNK / columns.max(1)).max(1)
}

/// `Σ` over the rows of each column: `add(rows, sums)` adds the contributions of a block of rows
/// into `sums` (`columns` long); blocks run in parallel and their sums are added in block order.
pub(super) fn column_sums(rows: usize, columns: usize, add: impl Fn(Range<usize>, &mut [f32]) + Sync) -> Vec<f32> {
    let block = per_task(columns);
    let partials: Vec<Vec<f32>> = (0..rows.div_ceil(block))
        .into_par_iter()
        .map(|index| {
            let mut sums = vec![0f32; columns];
            add(index * block..(rows).min((index + 1) * block), &mut sums);
            sums
        })
        .collect();
    partials.into_iter().fold(vec![0f32; columns], |mut total, partial| {
        total.iter_mut().zip(partial).for_each(|(total, partial)| *total += partial);
        total
    })
}

/// `Σ_i f(a[i], b[i])` in 16 interleaved partial sums, so the loop vectorises (one running sum
/// is a chain of dependent adds the compiler may not reorder).
#[inline(always)]
pub(super) fn sum(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    const LANES: usize = 16;
    let mut lanes = [0f32; LANES];
    let (a_whole, a_tail) = a.split_at(a.len() / LANES * LANES);
    let (b_whole, b_tail) = b.split_at(a_whole.len());
    for (a, b) in a_whole.chunks_exact(LANES).zip(b_whole.chunks_exact(LANES)) {
        let (a, b): (&[f32; LANES], &[f32; LANES]) = (a.try_into().expect("a whole chunk"), b.try_into().expect("a whole chunk"));
        for lane in 0..LANES {
            lanes[lane] += f(a[lane], b[lane]);
        }
    }
    lanes.iter().sum::<f32>() + a_tail.iter().zip(b_tail).map(|(a, b)| f(*a, *b)).sum::<f32>()
}
