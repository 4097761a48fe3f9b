//! The offline suite that `cargo xtask assets vtab` builds (ignored unless the suite exists:
//! `cargo test -p wegeft-vision --test offline_suite -- --ignored`).

use std::collections::BTreeMap;

use wegeft_backend::asset_dir;
use wegeft_vision::assets::VTAB_SUITE;
use wegeft_vision::data::{load_image, read_split, Split, TaskGroup, TaskInfo};
use wegeft_vision::train::suite_tasks;

#[test]
#[ignore = "needs `cargo xtask assets vtab`"]
fn the_offline_suite_has_every_task_split_and_a_manifest() {
    let suite = asset_dir().join(VTAB_SUITE);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(suite.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["package_sha256"].as_array().unwrap().len(), 3);

    // The manifest's tasks; a suite built before `cats_dogs` keeps its `cifar10` beside them.
    let mut names: Vec<String> = manifest["tasks"].as_array().unwrap().iter().map(|t| t["task"].as_str().unwrap().to_string()).collect();
    names.sort();
    assert_eq!(names, ["cats_dogs", "fashion_mnist", "mnist", "synth_count", "synth_loc", "synth_ori"]);
    let tasks = suite_tasks(&suite, &names).unwrap();
    assert_eq!(tasks.len(), names.len());
    for task in &tasks {
        let info = TaskInfo::of_dir(task).unwrap();
        let entry = manifest["tasks"].as_array().unwrap().iter().find(|t| t["task"] == info.name.as_str()).unwrap();
        assert!(entry["source"].is_string() && entry["licence"].is_string(), "{entry}");
        // cats_dogs holds 2,000 photos: its test split is the 1,000 left after train800val200.
        let test = if info.name == "cats_dogs" { 1000 } else { 2000 };
        let sizes = [(Split::Train800, 800), (Split::Val200, 200), (Split::Train800Val200, 1000), (Split::Test, test)];
        let mut splits = BTreeMap::new();
        for (split, expected) in sizes {
            let items = read_split(task, split, info.classes).unwrap();
            assert_eq!(items.len(), expected, "{} {split}", info.name);
            splits.insert(split.to_string(), items);
        }
        // Every class appears in training, and test images are not training images.
        let mut seen = vec![0usize; info.classes];
        for (_, label) in &splits["train800val200"] {
            seen[*label] += 1;
        }
        assert!(seen.iter().all(|&n| n > 0), "{}: class counts {seen:?}", info.name);
        let first_test = &splits["test"][0].0;
        assert!(!splits["train800val200"].iter().any(|(p, _)| p == first_test));
        assert_eq!(load_image(first_test, 16).unwrap().len(), 16 * 16 * 3);
        let structured = info.name.starts_with("synth");
        assert_eq!(info.group == TaskGroup::Structured, structured);
    }
}
