//! Image-classification data: VTAB-1k task directories and ImageFolder trees, decoded once into
//! memory at the model's input size, batched and normalised for the model.

mod batcher;
mod dataset;
mod image_folder;
mod mask;
mod preprocess;
mod split;
mod task;

pub use batcher::{ImageBatch, ImageBatcher};
pub use dataset::{ImageDataset, ImageItem};
pub use image_folder::image_folder;
pub use mask::{load_object_mask, mask_path};
pub use preprocess::load_image;
pub use split::{read_split, LabelledFiles, Split};
pub use task::{TaskGroup, TaskInfo, VTAB_TASKS};
