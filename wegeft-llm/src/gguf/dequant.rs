//! ggml storage types and their dequantisation: x = d·q (Q8_0), d·(q − 8) (Q4_0), d·q + m (Q4_1),
//! over blocks of 32 values.

use half::{bf16, f16};

/// The ggml tensor types this crate reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    /// 8-bit, blocks of 32 with an f16 scale: d·q.
    Q8_0,
}

const BLOCK: usize = 32;

impl GgmlType {
    /// The type for a GGUF type id.
    pub fn from_id(id: u32) -> Option<Self> {
        Some(match id {
            0 => Self::F32,
            1 => Self::F16,
            2 => Self::Q4_0,
            3 => Self::Q4_1,
            8 => Self::Q8_0,
            30 => Self::BF16,
            _ => return None,
        })
    }

    /// Bytes that `count` values take, if `count` fills whole blocks.
    pub fn byte_size(self, count: usize) -> Option<usize> {
        let per_block = |bytes: usize| count.is_multiple_of(BLOCK).then(|| (count / BLOCK).checked_mul(bytes)).flatten();
        match self {
            Self::F32 => count.checked_mul(4),
            Self::F16 | Self::BF16 => count.checked_mul(2),
            Self::Q4_0 => per_block(2 + BLOCK / 2),
            Self::Q4_1 => per_block(4 + BLOCK / 2),
            Self::Q8_0 => per_block(2 + BLOCK),
        }
    }
}

fn half_at(bytes: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([bytes[at], bytes[at + 1]]).to_f32()
}

/// `count` values of type `kind` from `bytes` (exactly `kind.byte_size(count)` long).
pub fn dequantize(kind: GgmlType, bytes: &[u8], count: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(count);
    match kind {
        GgmlType::F32 => out.extend(bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))),
        GgmlType::F16 => out.extend(bytes.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())),
        GgmlType::BF16 => out.extend(bytes.chunks_exact(2).map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())),
        GgmlType::Q8_0 => {
            for block in bytes.chunks_exact(2 + BLOCK) {
                let d = half_at(block, 0);
                out.extend(block[2..].iter().map(|&q| d * (q as i8) as f32));
            }
        }
        GgmlType::Q4_0 | GgmlType::Q4_1 => {
            let header = if kind == GgmlType::Q4_0 { 2 } else { 4 };
            for block in bytes.chunks_exact(header + BLOCK / 2) {
                let d = half_at(block, 0);
                let (offset, min) = if kind == GgmlType::Q4_0 { (8.0, 0.0) } else { (0.0, half_at(block, 2)) };
                let quants = &block[header..];
                // Low nibbles hold values 0..16 of the block, high nibbles 16..32.
                out.extend(quants.iter().map(|&q| d * ((q & 0x0f) as f32 - offset) + min));
                out.extend(quants.iter().map(|&q| d * ((q >> 4) as f32 - offset) + min));
            }
        }
    }
    out
}
