//! Which vector instructions the kernels' copies may use: the CPU's widest, or fewer when
//! `WEGEFT_CPU_CAPABILITY` says so.
//!
//! The cap is PyTorch's `ATEN_CPU_CAPABILITY` for our kernels: on an AVX-512 machine it runs (and
//! lets the tests check, and `cargo xtask bench --cpu-capability` time) the copies an AVX2-only
//! CPU would run. gemm, inside burn-flex, picks its own kernels and does not see the cap.

use std::fmt;
use std::sync::OnceLock;

/// The environment variable that caps [`cpu_capability`]: `avx512`, `avx2` or `baseline`.
pub const CPU_CAPABILITY_VAR: &str = "WEGEFT_CPU_CAPABILITY";

/// A level of vector instructions, ordered from narrowest to widest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CpuCapability {
    /// What every CPU of the target runs (SSE2 on x86-64, NEON on aarch64).
    Baseline,
    /// AVX2 with FMA: most x86-64 CPUs since 2013.
    Avx2,
    /// AVX-512 as x86-64-v4 has it (F, BW, CD, DQ, VL: every AVX-512 CPU since Skylake-SP);
    /// DQ's 64-bit products are what the dropout masks' hash needs.
    Avx512,
}

impl CpuCapability {
    /// The widest level this CPU has.
    pub fn detected() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            let v4 = std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512cd")
                && std::arch::is_x86_feature_detected!("avx512dq")
                && std::arch::is_x86_feature_detected!("avx512vl");
            if v4 {
                return Self::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                return Self::Avx2;
            }
        }
        Self::Baseline
    }

    /// The level a value of [`CPU_CAPABILITY_VAR`] names, as PyTorch's variable spells them.
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "avx512" | "avx-512" => Some(Self::Avx512),
            "avx2" => Some(Self::Avx2),
            "baseline" | "default" => Some(Self::Baseline),
            _ => None,
        }
    }
}

impl fmt::Display for CpuCapability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Avx512 => "AVX-512",
            Self::Avx2 => "AVX2",
            Self::Baseline if cfg!(target_arch = "aarch64") => "NEON",
            Self::Baseline => "baseline",
        })
    }
}

/// The level the kernels run at: [`CpuCapability::detected`], lowered to the cap in
/// [`CPU_CAPABILITY_VAR`] if one is set (a cap above the CPU's level changes nothing). Read once
/// per process; a value that names no level is reported on stderr and ignored.
pub fn cpu_capability() -> CpuCapability {
    static LEVEL: OnceLock<CpuCapability> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let detected = CpuCapability::detected();
        let Ok(value) = std::env::var(CPU_CAPABILITY_VAR) else { return detected };
        match CpuCapability::parse(&value) {
            Some(cap) => detected.min(cap),
            None => {
                eprintln!("wegeft: ignoring {CPU_CAPABILITY_VAR}={value:?} (expected avx512, avx2 or baseline)");
                detected
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_as_pytorch_spells_them_and_order_by_width() {
        assert_eq!(CpuCapability::parse("AVX2"), Some(CpuCapability::Avx2));
        assert_eq!(CpuCapability::parse(" avx512 "), Some(CpuCapability::Avx512));
        assert_eq!(CpuCapability::parse("default"), Some(CpuCapability::Baseline));
        assert_eq!(CpuCapability::parse("sse9"), None);
        assert!(CpuCapability::Baseline < CpuCapability::Avx2 && CpuCapability::Avx2 < CpuCapability::Avx512);
    }

    #[test]
    fn the_level_run_never_exceeds_the_cpus() {
        assert!(cpu_capability() <= CpuCapability::detected());
    }
}
