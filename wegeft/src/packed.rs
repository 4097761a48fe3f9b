//! A frozen weight kept as its file stores it, in quantisation blocks (GGUF's Q4_K, Q8_0, …), so
//! a quantised base takes its file's bytes in memory instead of four bytes a value. Its rows are
//! the layer's outputs and run along d_in, as the file lays them out; [`crate::kernels::packed_matmul`]
//! decodes them a tile at a time.

use std::ops::Range;
use std::sync::{Arc, OnceLock};

use crate::error::{PeftError, Result};

/// f32 values one decoded tile of rows holds at most (1 MiB): it stays in cache while used.
pub(crate) const TILE_VALUES: usize = 1 << 18;

/// Decodes one stored row (`row_bytes` bytes) into its `d_in` values.
pub type RowDecoder = Arc<dyn Fn(&[u8], &mut [f32]) + Send + Sync>;

/// A `d_in × d_out` weight stored as `d_out` rows of blocks.
pub struct PackedWeight {
    format: String,
    d_in: usize,
    d_out: usize,
    row_bytes: usize,
    bytes: Vec<u8>,
    decode: RowDecoder,
    /// ‖W_j‖² per output, computed on first use: W is frozen, and DoRA reads them every step.
    squares: OnceLock<Vec<f32>>,
}

impl std::fmt::Debug for PackedWeight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PackedWeight({}, {}×{}, {} bytes)", self.format, self.d_in, self.d_out, self.bytes.len())
    }
}

impl PackedWeight {
    /// `bytes` holding `d_out` rows of `d_in` values in `format` (a name for messages), each
    /// decoded by `decode`; an error unless the bytes split into equal rows.
    pub fn new(format: impl Into<String>, d_in: usize, d_out: usize, bytes: Vec<u8>, decode: RowDecoder) -> Result<Self> {
        let format = format.into();
        if d_in == 0 || d_out == 0 || !bytes.len().is_multiple_of(d_out) {
            return Err(PeftError::InvalidConfig(format!("{} bytes of {format} do not make {d_out} rows of {d_in} values", bytes.len())));
        }
        let row_bytes = bytes.len() / d_out;
        Ok(Self { format, d_in, d_out, row_bytes, bytes, decode, squares: OnceLock::new() })
    }

    /// The storage format's name.
    pub fn format(&self) -> &str {
        &self.format
    }

    /// `[d_in, d_out]`, burn's layout of the weight this stands for.
    pub fn dims(&self) -> [usize; 2] {
        [self.d_in, self.d_out]
    }

    /// Decodes output rows `rows` into `out` (`rows.len() × d_in`, row-major): the transposed
    /// tile `Wᵀ[rows, :]`.
    pub fn decode_rows(&self, rows: Range<usize>, out: &mut [f32]) {
        let bytes = &self.bytes[rows.start * self.row_bytes..rows.end * self.row_bytes];
        #[cfg(any(feature = "flex", feature = "ndarray"))]
        {
            use rayon::prelude::*;
            out.par_chunks_mut(self.d_in).zip(bytes.par_chunks(self.row_bytes)).for_each(|(out, row)| (self.decode)(row, out));
        }
        #[cfg(not(any(feature = "flex", feature = "ndarray")))]
        out.chunks_mut(self.d_in).zip(bytes.chunks(self.row_bytes)).for_each(|(out, row)| (self.decode)(row, out));
    }

    /// ‖W_j‖² for each output j (the sum of squares of each stored row), decoded a tile of rows
    /// at a time on first use and kept.
    pub fn row_sums_of_squares(&self) -> &[f32] {
        self.squares.get_or_init(|| self.decode_row_sums_of_squares())
    }

    fn decode_row_sums_of_squares(&self) -> Vec<f32> {
        let rows = (TILE_VALUES / self.d_in).clamp(1, self.d_out);
        let mut tile = vec![0f32; rows * self.d_in];
        let mut sums = Vec::with_capacity(self.d_out);
        for start in (0..self.d_out).step_by(rows) {
            let count = rows.min(self.d_out - start);
            let tile = &mut tile[..count * self.d_in];
            self.decode_rows(start..start + count, tile);
            sums.extend(tile.chunks(self.d_in).map(|row| row.iter().map(|v| v * v).sum::<f32>()));
        }
        sums
    }

    /// The whole weight in f32, burn's layout `[d_in, d_out]` row-major: for merging and export,
    /// which want it exact, and for backends without the tiled kernel.
    pub fn to_dense(&self) -> Vec<f32> {
        let mut rows = vec![0f32; self.d_in * self.d_out];
        self.decode_rows(0..self.d_out, &mut rows);
        let mut dense = vec![0f32; rows.len()];
        for (j, row) in rows.chunks(self.d_in).enumerate() {
            for (i, &value) in row.iter().enumerate() {
                dense[i * self.d_out + j] = value;
            }
        }
        dense
    }
}
