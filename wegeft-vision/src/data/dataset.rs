//! A labelled image set held in memory at the model's input size (VTAB-1k training sets are
//! 1,000 images: decoding once beats decoding every epoch).

use std::path::PathBuf;

use burn::data::dataset::Dataset;

use crate::data::load_image;
use crate::error::Result;

/// One image, `size`×`size` RGB `u8` (HWC), and its label.
#[derive(Clone, Debug)]
pub struct ImageItem {
    /// Interleaved RGB pixels.
    pub pixels: Vec<u8>,
    /// Class index.
    pub label: usize,
}

/// Decoded images of one split.
#[derive(Clone, Debug)]
pub struct ImageDataset {
    items: Vec<ImageItem>,
    size: usize,
}

impl ImageDataset {
    /// Decodes and resizes every listed image (in parallel); fails on the first unreadable one,
    /// naming it.
    pub fn load(files: &[(PathBuf, usize)], size: usize) -> Result<Self> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = files.len().div_ceil(threads).max(1);
        let chunks = std::thread::scope(|scope| {
            let workers: Vec<_> = files
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        part.iter()
                            .map(|(path, label)| Ok(ImageItem { pixels: load_image(path, size)?, label: *label }))
                            .collect::<Result<Vec<_>>>()
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().expect("image decoding panicked")).collect::<Vec<_>>()
        });
        let mut items = Vec::with_capacity(files.len());
        for part in chunks {
            items.extend(part?);
        }
        Ok(Self { items, size })
    }

    /// A dataset from decoded items (all `size`×`size`).
    pub fn from_items(items: Vec<ImageItem>, size: usize) -> Self {
        Self { items, size }
    }

    /// Image side in pixels.
    pub fn size(&self) -> usize {
        self.size
    }
}

impl Dataset<ImageItem> for ImageDataset {
    fn get(&self, index: usize) -> Option<ImageItem> {
        self.items.get(index).cloned()
    }

    fn len(&self) -> usize {
        self.items.len()
    }
}
