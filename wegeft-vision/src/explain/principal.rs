//! The leading eigenvectors of a symmetric matrix, for the weight-only baseline: subspace
//! iteration, then a Rayleigh–Ritz step (Jacobi on the small projected matrix) to order and
//! separate the directions. Dependency-free, and plenty for the 384×384 Gram matrices of ViT-S.

use wegeft::train::SplitMix64;

/// Rounds of subspace iteration: each shrinks the error by λ_{k+1}/λ_k.
const ITERATIONS: usize = 400;

/// The `k` unit eigenvectors of the symmetric `n`×`n` row-major `matrix` with the largest
/// eigenvalues, largest first. Signs are arbitrary, as in any eigensolver.
pub fn top_eigenvectors(matrix: &[f64], n: usize, k: usize) -> Vec<Vec<f64>> {
    assert_eq!(matrix.len(), n * n, "an n×n matrix");
    let multiply = |v: &[f64]| -> Vec<f64> { matrix.chunks_exact(n).map(|row| dot(row, v)).collect() };
    let mut rng = SplitMix64::new(0x5eed);
    let mut basis: Vec<Vec<f64>> = (0..k).map(|_| (0..n).map(|_| rng.next_f64() - 0.5).collect()).collect();
    orthonormalise(&mut basis);
    for _ in 0..ITERATIONS {
        basis = basis.iter().map(|v| multiply(v)).collect();
        orthonormalise(&mut basis);
    }
    let images: Vec<Vec<f64>> = basis.iter().map(|v| multiply(v)).collect();
    let projected: Vec<Vec<f64>> = basis.iter().map(|u| images.iter().map(|av| dot(u, av)).collect()).collect();
    let (values, rotation) = jacobi(projected);
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    order
        .into_iter()
        .map(|column| (0..n).map(|i| (0..k).map(|j| rotation[j][column] * basis[j][i]).sum()).collect())
        .collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Modified Gram–Schmidt, in place (a vector that vanishes is left at zero).
fn orthonormalise(vectors: &mut [Vec<f64>]) {
    for i in 0..vectors.len() {
        let (done, rest) = vectors.split_at_mut(i);
        let v = &mut rest[0];
        for u in done.iter() {
            let along = dot(u, v);
            v.iter_mut().zip(u).for_each(|(x, y)| *x -= along * y);
        }
        let norm = dot(v, v).sqrt();
        if norm > 0.0 {
            v.iter_mut().for_each(|x| *x /= norm);
        }
    }
}

/// Eigenvalues and eigenvectors (columns) of a small symmetric matrix by cyclic Jacobi rotations.
fn jacobi(mut a: Vec<Vec<f64>>) -> (Vec<f64>, Vec<Vec<f64>>) {
    let k = a.len();
    let mut v: Vec<Vec<f64>> = (0..k).map(|i| (0..k).map(|j| f64::from(u8::from(i == j))).collect()).collect();
    for _sweep in 0..100 {
        let off: f64 = (0..k).flat_map(|i| (0..k).filter(move |&j| j != i).map(move |j| (i, j))).map(|(i, j)| a[i][j] * a[i][j]).sum();
        let scale: f64 = (0..k).map(|i| a[i][i] * a[i][i]).sum();
        if off <= 1e-30 * scale.max(f64::MIN_POSITIVE) {
            break;
        }
        for p in 0..k {
            for q in p + 1..k {
                if a[p][q] == 0.0 {
                    continue;
                }
                let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let (c, s) = (1.0 / (t * t + 1.0).sqrt(), t / (t * t + 1.0).sqrt());
                for row in a.iter_mut() {
                    let (x, y) = (row[p], row[q]);
                    row[p] = c * x - s * y;
                    row[q] = s * x + c * y;
                }
                for column in 0..k {
                    let (x, y) = (a[p][column], a[q][column]);
                    a[p][column] = c * x - s * y;
                    a[q][column] = s * x + c * y;
                }
                for row in v.iter_mut() {
                    let (x, y) = (row[p], row[q]);
                    row[p] = c * x - s * y;
                    row[q] = s * x + c * y;
                }
            }
        }
    }
    ((0..k).map(|i| a[i][i]).collect(), v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 12×12 matrix Q·diag(λ)·Qᵀ with a known spectrum and a random orthogonal Q: the top
    /// four eigenvectors come back in order, each with A·v = λ·v.
    #[test]
    fn finds_the_leading_eigenvectors_of_a_planted_spectrum() {
        let n = 12;
        let spectrum: Vec<f64> = (0..n).map(|i| 10.0 / (1.0 + i as f64)).collect();
        let mut rng = SplitMix64::new(3);
        let mut q: Vec<Vec<f64>> = (0..n).map(|_| (0..n).map(|_| rng.next_f64() - 0.5).collect()).collect();
        orthonormalise(&mut q);
        let matrix: Vec<f64> = (0..n * n).map(|ij| (0..n).map(|m| q[m][ij / n] * spectrum[m] * q[m][ij % n]).sum()).collect();
        let found = top_eigenvectors(&matrix, n, 4);
        for (expected, v) in spectrum.iter().zip(&found) {
            let av: Vec<f64> = matrix.chunks_exact(n).map(|row| dot(row, v)).collect();
            let residual = av.iter().zip(v).map(|(a, x)| (a - expected * x).powi(2)).sum::<f64>().sqrt();
            assert!((dot(v, v) - 1.0).abs() < 1e-9 && residual < 1e-6, "λ = {expected}: residual {residual}");
        }
    }
}
