//! llama.cpp's K-quants: super-blocks of 256 values in sub-blocks of 16 or 32, each with its
//! own quantised scale (and minimum), decoded in the `gguf` package's order of operations.

use super::dequant::half_at;

/// Q2_K: `scales[16]` (low nibble scale, high nibble minimum), `qs[64]` (2 bits), `d`, `dmin`.
/// Value `i = 128h + 32j + l` is bits `2j` of `qs[32h + l]`; its sub-block is `i / 16`.
pub(super) fn q2_k(block: &[u8], out: &mut [f32]) {
    let (scales, qs) = (&block[..16], &block[16..80]);
    let (d, dmin) = (half_at(block, 80), half_at(block, 82));
    for (i, o) in out.iter_mut().enumerate() {
        let (h, j, l) = (i / 128, i % 128 / 32, i % 32);
        let q = (qs[32 * h + l] >> (2 * j)) & 3;
        let scale = scales[i / 16];
        let (dl, ml) = (d * (scale & 0x0f) as f32, dmin * (scale >> 4) as f32);
        *o = dl * q as f32 - ml;
    }
}

/// Q3_K: `hmask[32]` (high bits), `qs[64]` (low 2 bits), `scales[12]` (16 signed 6-bit scales), `d`.
/// The high bit is inverted: a set bit means no −4 offset.
pub(super) fn q3_k(block: &[u8], out: &mut [f32]) {
    let (hmask, qs, packed) = (&block[..32], &block[32..96], &block[96..108]);
    let d = half_at(block, 108);
    let scale = |k: usize| {
        let low = (packed[k % 8] >> (4 * (k / 8))) & 0x0f;
        let high = (packed[8 + k % 4] >> (2 * (k / 4))) & 0x03;
        ((low | high << 4) as i8 - 32) as f32
    };
    for (i, o) in out.iter_mut().enumerate() {
        let (h, j, l) = (i / 128, i % 128 / 32, i % 32);
        let low = ((qs[32 * h + l] >> (2 * j)) & 3) as i8;
        let high = ((hmask[l] >> (i / 32)) & 1) ^ 1;
        *o = (d * scale(i / 16)) * (low - (high << 2) as i8) as f32;
    }
}

/// The 6-bit scale and minimum of sub-block `k` (of 8) packed into Q4_K/Q5_K's 12 bytes.
fn scale_min(packed: &[u8], k: usize) -> (u8, u8) {
    if k < 4 {
        (packed[k] & 0x3f, packed[k + 4] & 0x3f)
    } else {
        let (d, m, both) = (packed[k - 4], packed[k], packed[k + 4]);
        ((both & 0x0f) | ((d >> 2) & 0x30), (both >> 4) | ((m >> 2) & 0x30))
    }
}

/// Q4_K and Q5_K: `d`, `dmin`, `scales[12]`, then (Q5_K) `qh[32]`, then `qs[128]`. Sub-block `s`
/// of 32 takes the low (even `s`) or high (odd `s`) nibbles of `qs[32(s/2)..]`; Q5_K adds bit `s`
/// of `qh[l]` as the fifth bit.
fn q4_or_q5_k(block: &[u8], high: Option<&[u8]>, qs: &[u8], out: &mut [f32]) {
    let (d, dmin) = (half_at(block, 0), half_at(block, 2));
    for (s, values) in out.chunks_exact_mut(32).enumerate() {
        let (scale, min) = scale_min(&block[4..16], s);
        let (ds, ms) = (d * scale as f32, dmin * min as f32);
        for (l, o) in values.iter_mut().enumerate() {
            let low = (qs[32 * (s / 2) + l] >> (4 * (s % 2))) & 0x0f;
            let q = low | high.map_or(0, |qh| ((qh[l] >> s) & 1) << 4);
            *o = ds * q as f32 - ms;
        }
    }
}

pub(super) fn q4_k(block: &[u8], out: &mut [f32]) {
    q4_or_q5_k(block, None, &block[16..144], out);
}

pub(super) fn q5_k(block: &[u8], out: &mut [f32]) {
    q4_or_q5_k(block, Some(&block[16..48]), &block[48..176], out);
}

/// Q6_K: `ql[128]` (low nibbles), `qh[64]` (high 2 bits), `scales[16]` (i8), `d`. Value
/// `i = 128h + 64k + m` takes nibble `k` of `ql[64h + m]`, and (as `i = 128h + 32j + l`) bits
/// `2j` of `qh[32h + l]`; minus 32.
pub(super) fn q6_k(block: &[u8], out: &mut [f32]) {
    let (ql, qh, scales) = (&block[..128], &block[128..192], &block[192..208]);
    let d = half_at(block, 208);
    for (i, o) in out.iter_mut().enumerate() {
        let (h, rest) = (i / 128, i % 128);
        let low = (ql[64 * h + rest % 64] >> (4 * (rest / 64))) & 0x0f;
        let high = (qh[32 * h + rest % 32] >> (2 * (rest / 32))) & 0x03;
        let q = (low | high << 4) as i8 - 32;
        *o = (d * scales[i / 16] as i8 as f32) * q as f32;
    }
}
