//! The data layer: split lists and their errors, ImageFolder, decoding, batching, shuffling.

mod common;

use std::sync::Arc;

use burn::backend::NdArray;
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::DataLoader;
use burn::data::dataset::Dataset;
use common::{write_task, Scratch};
use image::{GrayImage, Luma};
use wegeft::train::EpochLoader;
use wegeft_vision::data::{image_folder, load_image, read_split, ImageBatch, ImageBatcher, ImageDataset, ImageItem, Split, TaskInfo};
use wegeft_vision::{Normalization, VisionError};

type B = NdArray;

#[test]
fn split_lists_parse_with_labels_and_paths() {
    let scratch = Scratch::new("split-ok");
    let task = write_task(&scratch.0, 2);
    let info = TaskInfo::of_dir(&task).unwrap();
    assert_eq!((info.name.as_str(), info.classes), ("colours", 3));
    let items = read_split(&task, Split::Train800Val200, info.classes).unwrap();
    assert_eq!(items.len(), 12);
    assert_eq!(items[4].1, 1);
    assert!(items[4].0.ends_with("images/train800/000004.png"));
}

#[test]
fn bad_split_lines_name_the_file_and_line() {
    let scratch = Scratch::new("split-bad");
    let task = write_task(&scratch.0, 1);
    let cases = [
        ("images/test/000000.png 0\nimages/test/000001.png 7\n", "line 2", "out of range"),
        ("images/test/000000.png 0\nimages/test/000001.png\n", "line 2", "expected `<image path> <label>`"),
        ("images/test/000000.png x\n", "line 1", "not a non-negative integer"),
        ("images/test/000000.png 0\n\nimages/test/missing.png 1\n", "line 3", "does not exist"),
    ];
    for (list, line, reason) in cases {
        std::fs::write(task.join("test.txt"), list).unwrap();
        let error = read_split(&task, Split::Test, 3).unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, VisionError::Data { .. }), "{message}");
        assert!(message.contains("test.txt") && message.contains(line) && message.contains(reason), "{message}");
    }
}

#[test]
fn unknown_task_without_task_json_is_an_error() {
    let scratch = Scratch::new("unknown-task");
    let error = TaskInfo::of_dir(&scratch.0).unwrap_err().to_string();
    assert!(error.contains("not a VTAB-1k task name"), "{error}");
    let cifar = scratch.0.join("cifar");
    std::fs::create_dir_all(&cifar).unwrap();
    assert_eq!(TaskInfo::of_dir(&cifar).unwrap().classes, 100);
}

#[test]
fn unreadable_images_name_the_file() {
    let scratch = Scratch::new("bad-image");
    let path = scratch.0.join("broken.png");
    std::fs::write(&path, b"not a png").unwrap();
    let error = load_image(&path, 8).unwrap_err().to_string();
    assert!(error.contains("broken.png") && error.contains("cannot read image"), "{error}");
}

#[test]
fn image_folder_numbers_classes_in_name_order() {
    let scratch = Scratch::new("folder");
    for (class, count) in [("b_dog", 2), ("a_cat", 1)] {
        std::fs::create_dir_all(scratch.0.join(class)).unwrap();
        for i in 0..count {
            common::class_image(0, i).save(scratch.0.join(class).join(format!("{i}.png"))).unwrap();
        }
    }
    std::fs::write(scratch.0.join("b_dog/notes.txt"), "not an image").unwrap();
    let (items, classes) = image_folder(&scratch.0).unwrap();
    assert_eq!(classes, ["a_cat", "b_dog"]);
    assert_eq!(items.iter().map(|(_, l)| *l).collect::<Vec<_>>(), [0, 1, 1]);
}

#[test]
fn grey_images_become_three_equal_channels_at_the_model_size() {
    let scratch = Scratch::new("grey");
    let path = scratch.0.join("grey.png");
    GrayImage::from_fn(10, 6, |x, _| Luma([(x * 20) as u8])).save(&path).unwrap();
    let pixels = load_image(&path, 8).unwrap();
    assert_eq!(pixels.len(), 8 * 8 * 3);
    assert!(pixels.chunks(3).all(|p| p[0] == p[1] && p[1] == p[2]));
    // Bicubic keeps the left-to-right ramp increasing.
    assert!(pixels[3 * 7] > pixels[0]);
}

#[test]
fn batches_are_normalised_channels_first() {
    let normalization = Normalization::new([0.5, 0.25, 0.0], [0.5, 0.25, 1.0]);
    let batcher = ImageBatcher::new(normalization, 2);
    // Pixel (row 0, col 1) of the second image is (255, 0, 51).
    let mut pixels = vec![0u8; 12];
    pixels[3..6].copy_from_slice(&[255, 0, 51]);
    let items = vec![ImageItem { pixels: vec![0; 12], label: 2 }, ImageItem { pixels, label: 1 }];
    let batch = Batcher::<B, _, _>::batch(&batcher, items, &Default::default());
    assert_eq!(batch.images.dims(), [2, 3, 2, 2]);
    let values = batch.images.into_data().to_vec::<f32>().unwrap();
    let at = |n: usize, c: usize, y: usize, x: usize| values[((n * 3 + c) * 2 + y) * 2 + x];
    assert!((at(1, 0, 0, 1) - 1.0).abs() < 1e-6);
    assert!((at(1, 1, 0, 1) + 1.0).abs() < 1e-6);
    assert!((at(1, 2, 0, 1) - 0.2).abs() < 1e-6);
    assert!((at(0, 0, 0, 0) + 1.0).abs() < 1e-6);
    assert_eq!(batch.targets.into_data().to_vec::<i64>().unwrap(), [2, 1]);
}

#[test]
fn shuffles_depend_on_seed_and_epoch_only() {
    let items = (0..10).map(|label| ImageItem { pixels: vec![0; 3], label }).collect();
    let data = Arc::new(ImageDataset::from_items(items, 1));
    assert_eq!(data.len(), 10);
    let batcher = ImageBatcher::new(Normalization::imagenet(), 1);
    let order = |loader: &EpochLoader<B, ImageItem, ImageBatch<B>>| -> Vec<i64> {
        loader.iter().flat_map(|b| b.targets.into_data().to_vec::<i64>().unwrap()).collect()
    };
    let fresh = EpochLoader::<B, _, _>::sequential(data.clone(), batcher.clone(), 4, Default::default()).shuffled(7, 0);
    let (epoch0, epoch1) = (order(&fresh), order(&fresh));
    assert_ne!(epoch0, epoch1);
    let mut sorted = epoch1.clone();
    sorted.sort();
    assert_eq!(sorted, (0..10).collect::<Vec<_>>());
    let resumed = EpochLoader::<B, _, _>::sequential(data.clone(), batcher.clone(), 4, Default::default()).shuffled(7, 1);
    assert_eq!(order(&resumed), epoch1);
    let sequential = EpochLoader::<B, _, _>::sequential(data, batcher, 4, Default::default());
    assert_eq!(order(&sequential), (0..10).collect::<Vec<_>>());
    assert_eq!(sequential.iter().count(), 3);
}
