//! CI runs the kernel tests a second and third time under `WEGEFT_CPU_CAPABILITY=avx2` and
//! `baseline`, so the copies an AVX2-only or older CPU runs are checked on an AVX-512 machine;
//! this test fails when the variable does not reach the kernels, so those runs cannot pass
//! without testing what they claim to.

use wegeft::kernels::{cpu_capability, CpuCapability, CPU_CAPABILITY_VAR};

#[test]
fn the_capability_in_the_environment_is_the_one_the_kernels_run() {
    let detected = CpuCapability::detected();
    let expected = match std::env::var(CPU_CAPABILITY_VAR) {
        Ok(value) => CpuCapability::parse(&value).unwrap_or_else(|| panic!("{CPU_CAPABILITY_VAR}={value:?} names no level")).min(detected),
        Err(_) => detected,
    };
    assert_eq!(cpu_capability(), expected);
}
