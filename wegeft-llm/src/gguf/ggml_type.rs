//! ggml storage types: their GGUF ids, names and block geometry.

/// The ggml tensor types this crate reads.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GgmlType {
    /// 32-bit floats.
    F32,
    /// IEEE half-precision floats.
    F16,
    /// bfloat16.
    BF16,
    /// 4-bit, blocks of 32 with an f16 scale: d·(q − 8).
    Q4_0,
    /// 4-bit, blocks of 32 with an f16 scale and minimum: d·q + m.
    Q4_1,
    /// 5-bit, blocks of 32 with an f16 scale: d·(q − 16).
    Q5_0,
    /// 5-bit, blocks of 32 with an f16 scale and minimum: d·q + m.
    Q5_1,
    /// 8-bit, blocks of 32 with an f16 scale: d·q.
    Q8_0,
    /// 2-bit super-blocks of 256: 16 sub-blocks with 4-bit scales and minimums.
    Q2_K,
    /// 3-bit super-blocks of 256: 16 sub-blocks with signed 6-bit scales.
    Q3_K,
    /// 4-bit super-blocks of 256: 8 sub-blocks with 6-bit scales and minimums (Q4_K_M's bulk).
    Q4_K,
    /// 5-bit super-blocks of 256, laid out as Q4_K plus a high bit.
    Q5_K,
    /// 6-bit super-blocks of 256: 16 sub-blocks with 8-bit scales (Q4_K_M's sensitive tensors).
    Q6_K,
}

/// GGUF type ids with their ggml names, including the ones this crate does not read (so an
/// error can name what a file holds).
const NAMES: [(u32, &str); 40] = [
    (0, "F32"),
    (1, "F16"),
    (2, "Q4_0"),
    (3, "Q4_1"),
    (4, "Q4_2"),
    (5, "Q4_3"),
    (6, "Q5_0"),
    (7, "Q5_1"),
    (8, "Q8_0"),
    (9, "Q8_1"),
    (10, "Q2_K"),
    (11, "Q3_K"),
    (12, "Q4_K"),
    (13, "Q5_K"),
    (14, "Q6_K"),
    (15, "Q8_K"),
    (16, "IQ2_XXS"),
    (17, "IQ2_XS"),
    (18, "IQ3_XXS"),
    (19, "IQ1_S"),
    (20, "IQ4_NL"),
    (21, "IQ3_S"),
    (22, "IQ2_S"),
    (23, "IQ4_XS"),
    (24, "I8"),
    (25, "I16"),
    (26, "I32"),
    (27, "I64"),
    (28, "F64"),
    (29, "IQ1_M"),
    (30, "BF16"),
    (31, "Q4_0_4_4"),
    (32, "Q4_0_4_8"),
    (33, "Q4_0_8_8"),
    (34, "TQ1_0"),
    (35, "TQ2_0"),
    (36, "IQ4_NL_4_4"),
    (37, "IQ4_NL_4_8"),
    (38, "IQ4_NL_8_8"),
    (39, "MXFP4"),
];

/// The ggml name of type id `id` (`type 99` when unknown).
pub fn type_name(id: u32) -> String {
    NAMES.iter().find(|(known, _)| *known == id).map_or_else(|| format!("type {id}"), |(_, name)| name.to_string())
}

impl GgmlType {
    /// Every type this crate reads.
    pub const ALL: [Self; 13] = [
        Self::F32,
        Self::F16,
        Self::BF16,
        Self::Q4_0,
        Self::Q4_1,
        Self::Q5_0,
        Self::Q5_1,
        Self::Q8_0,
        Self::Q2_K,
        Self::Q3_K,
        Self::Q4_K,
        Self::Q5_K,
        Self::Q6_K,
    ];

    /// The GGUF type id.
    pub fn id(self) -> u32 {
        match self {
            Self::F32 => 0,
            Self::F16 => 1,
            Self::Q4_0 => 2,
            Self::Q4_1 => 3,
            Self::Q5_0 => 6,
            Self::Q5_1 => 7,
            Self::Q8_0 => 8,
            Self::Q2_K => 10,
            Self::Q3_K => 11,
            Self::Q4_K => 12,
            Self::Q5_K => 13,
            Self::Q6_K => 14,
            Self::BF16 => 30,
        }
    }

    /// The type for a GGUF type id.
    pub fn from_id(id: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.id() == id)
    }

    /// The ggml name (`Q4_K`).
    pub fn name(self) -> String {
        type_name(self.id())
    }

    /// Values per block: 1 for floats, 32 for the legacy quants, 256 for the K-quants.
    pub fn block_values(self) -> usize {
        match self {
            Self::F32 | Self::F16 | Self::BF16 => 1,
            Self::Q4_0 | Self::Q4_1 | Self::Q5_0 | Self::Q5_1 | Self::Q8_0 => 32,
            Self::Q2_K | Self::Q3_K | Self::Q4_K | Self::Q5_K | Self::Q6_K => 256,
        }
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F16 | Self::BF16 => 2,
            Self::Q4_0 => 2 + 16,
            Self::Q4_1 => 4 + 16,
            Self::Q5_0 => 2 + 4 + 16,
            Self::Q5_1 => 4 + 4 + 16,
            Self::Q8_0 => 2 + 32,
            Self::Q2_K => 16 + 64 + 2 + 2,
            Self::Q3_K => 32 + 64 + 12 + 2,
            Self::Q4_K => 2 + 2 + 12 + 128,
            Self::Q5_K => 2 + 2 + 12 + 32 + 128,
            Self::Q6_K => 128 + 64 + 16 + 2,
        }
    }

    /// Bytes of a tensor with GGUF dimensions `dims` (fastest-varying first): blocks run along
    /// rows, so the row length must be a whole number of blocks.
    pub fn tensor_bytes(self, dims: &[usize]) -> Result<usize, String> {
        let row = dims.first().copied().unwrap_or(1);
        let block = self.block_values();
        if !row.is_multiple_of(block) {
            return Err(format!("rows of {row} values do not fill whole {} blocks of {block}", self.name()));
        }
        let rows = dims.iter().skip(1).try_fold(1usize, |count, &dim| count.checked_mul(dim));
        rows.and_then(|rows| (row / block).checked_mul(self.block_bytes())?.checked_mul(rows))
            .ok_or_else(|| format!("dimensions {dims:?} multiply past the address space"))
    }
}
