//! Dequantisation of ggml blocks to f32, in the order of operations of the `gguf` package (and
//! llama.cpp's reference), so results are bit-exact: x = d·q (Q8_0), d·(q − 8) (Q4_0), d·q + m
//! (Q4_1), d·(q − 16) (Q5_0), d·q + m (Q5_1); the K-quants are in [`super::k_quants`].

use half::{bf16, f16};

use super::k_quants;
use super::GgmlType;

/// The f16 at `at` of `bytes`, widened.
pub(super) fn half_at(bytes: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([bytes[at], bytes[at + 1]]).to_f32()
}

/// Dequantises whole blocks of `kind` from `bytes` into `out` (`out.len()` values; `bytes` holds
/// exactly their blocks). Works on any run of blocks, so a caller can decode a row or a tile.
pub fn dequantize_into(kind: GgmlType, bytes: &[u8], out: &mut [f32]) {
    let (values, size) = (kind.block_values(), kind.block_bytes());
    debug_assert_eq!(bytes.len() / size * values, out.len());
    match kind {
        GgmlType::F32 => out.iter_mut().zip(bytes.chunks_exact(4)).for_each(|(o, b)| *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        GgmlType::F16 => out.iter_mut().zip(bytes.chunks_exact(2)).for_each(|(o, b)| *o = f16::from_le_bytes([b[0], b[1]]).to_f32()),
        GgmlType::BF16 => out.iter_mut().zip(bytes.chunks_exact(2)).for_each(|(o, b)| *o = bf16::from_le_bytes([b[0], b[1]]).to_f32()),
        _ => {
            let decode = block_decoder(kind);
            for (block, out) in bytes.chunks_exact(size).zip(out.chunks_exact_mut(values)) {
                decode(block, out);
            }
        }
    }
}

/// `count` values of type `kind` from `bytes` (exactly their blocks).
pub fn dequantize(kind: GgmlType, bytes: &[u8], count: usize) -> Vec<f32> {
    let mut out = vec![0.0; count];
    dequantize_into(kind, bytes, &mut out);
    out
}

fn block_decoder(kind: GgmlType) -> fn(&[u8], &mut [f32]) {
    match kind {
        GgmlType::Q8_0 => q8_0,
        GgmlType::Q4_0 => q4_0,
        GgmlType::Q4_1 => q4_1,
        GgmlType::Q5_0 => q5_0,
        GgmlType::Q5_1 => q5_1,
        GgmlType::Q2_K => k_quants::q2_k,
        GgmlType::Q3_K => k_quants::q3_k,
        GgmlType::Q4_K => k_quants::q4_k,
        GgmlType::Q5_K => k_quants::q5_k,
        GgmlType::Q6_K => k_quants::q6_k,
        GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => unreachable!("floats are not blocks"),
    }
}

fn q8_0(block: &[u8], out: &mut [f32]) {
    let d = half_at(block, 0);
    out.iter_mut().zip(&block[2..]).for_each(|(o, &q)| *o = d * (q as i8) as f32);
}

/// The 4-bit value `i` of 32 packed in 16 bytes: low nibbles hold values 0..16, high nibbles 16..32.
fn nibble(quants: &[u8], i: usize) -> u8 {
    (quants[i % 16] >> (4 * (i / 16))) & 0x0f
}

fn q4_0(block: &[u8], out: &mut [f32]) {
    let d = half_at(block, 0);
    out.iter_mut().enumerate().for_each(|(i, o)| *o = d * (nibble(&block[2..], i) as f32 - 8.0));
}

fn q4_1(block: &[u8], out: &mut [f32]) {
    let (d, m) = (half_at(block, 0), half_at(block, 2));
    out.iter_mut().enumerate().for_each(|(i, o)| *o = d * nibble(&block[4..], i) as f32 + m);
}

/// The 5-bit value `i`: a nibble plus bit `i` of the 32-bit high mask.
fn five_bits(high: &[u8], quants: &[u8], i: usize) -> u8 {
    let mask = u32::from_le_bytes([high[0], high[1], high[2], high[3]]);
    nibble(quants, i) | (((mask >> i) & 1) as u8) << 4
}

fn q5_0(block: &[u8], out: &mut [f32]) {
    let d = half_at(block, 0);
    out.iter_mut().enumerate().for_each(|(i, o)| *o = d * (five_bits(&block[2..6], &block[6..], i) as f32 - 16.0));
}

fn q5_1(block: &[u8], out: &mut [f32]) {
    let (d, m) = (half_at(block, 0), half_at(block, 2));
    out.iter_mut().enumerate().for_each(|(i, o)| *o = d * five_bits(&block[4..8], &block[8..], i) as f32 + m);
}
