//! Everything that defines a training run; saved as the run's `config.json`, which is how
//! `--resume` and `eval-vit` rebuild the same model.

use std::path::PathBuf;

use burn::config::Config;
use wegeft::Precision;

use crate::config::VitConfig;
use crate::data::Split;
use crate::train::Method;

/// The largest image side a run takes (ViTs are trained at 224 to 518).
pub const MAX_IMAGE_SIZE: usize = 2048;

/// A fine-tuning run on one task (defaults: the VTAB-1k recipe of NOAH/FacT and the paper).
#[derive(Config, Debug)]
pub struct TrainConfig {
    /// The task directory (VTAB-1k layout).
    pub task_dir: PathBuf,
    /// The backbone; its `num_classes` is replaced by the task's.
    pub vit: VitConfig,
    /// The backbone's timm-layout safetensors; `None` trains from random weights (tests).
    pub checkpoint: Option<PathBuf>,
    /// What trains besides the head.
    #[config(default = "Method::Adapter(wegeft::MethodName::Wegeft)")]
    pub method: Method,
    /// Adapter rank; `None` takes the method's default (WeGeFT 16, LoRA and DoRA 8, VeRA 256).
    #[config(default = "None")]
    pub rank: Option<usize>,
    /// Layer-name suffixes that get an adapter.
    #[config(default = "vec![\"attn.proj\".to_string()]")]
    pub targets: Vec<String>,
    /// Training epochs.
    #[config(default = 100)]
    pub epochs: usize,
    /// Linear-warmup epochs (then cosine decay).
    #[config(default = 10)]
    pub warmup_epochs: usize,
    /// Peak learning rate.
    #[config(default = 1e-3)]
    pub lr: f64,
    /// AdamW weight decay (not applied to vector-like parameters).
    #[config(default = 1e-4)]
    pub weight_decay: f64,
    /// Square input side; a multiple of the patch size.
    #[config(default = 224)]
    pub image_size: usize,
    /// Images per step (the paper's loaders use 32).
    #[config(default = 32)]
    pub batch_size: usize,
    /// Stochastic depth of the last block.
    #[config(default = 0.1)]
    pub drop_path: f64,
    /// Seed of the init, the shuffles and drop_path.
    #[config(default = 42)]
    pub seed: u64,
    /// The split trained on.
    #[config(default = "Split::Train800Val200")]
    pub train_split: Split,
    /// The split monitored each epoch (val200 lies inside train800val200: it tracks fitting,
    /// it selects nothing).
    #[config(default = "Split::Val200")]
    pub valid_split: Split,
    /// The split reported once, after the last epoch.
    #[config(default = "Split::Test")]
    pub eval_split: Split,
    /// Precision of the frozen backbone's linear layers; `None` is f32 (and what runs written
    /// before mixed precision hold). The adapter, the head and the optimizer stay f32.
    #[config(default = "None")]
    pub precision: Option<Precision>,
}

/// A starting point for a run's hyper-parameters; explicit settings override it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// The paper's recipe: the [`TrainConfig`] defaults (100 epochs, 10 warmup, 224 px).
    Paper,
    /// Minutes on a CPU: 4 epochs, 1 warmup, 84 px (DINOv2's patch 14 × 6).
    Demo,
}

impl TrainConfig {
    /// `config` under `preset`.
    pub fn with_preset(self, preset: Preset) -> Self {
        match preset {
            Preset::Paper => self,
            Preset::Demo => self.with_epochs(4).with_warmup_epochs(1).with_image_size(84),
        }
    }

    /// Fails on settings no run can use, naming the setting (the ViT's sizes are
    /// [`VitConfig::validate`]'s).
    pub fn validate(&self) -> crate::Result<()> {
        let problem = if self.batch_size == 0 {
            Some("batch_size must be at least 1".to_string())
        } else if self.image_size == 0 || self.image_size > MAX_IMAGE_SIZE {
            // Every image is decoded once and kept at this size: 1,000 at 2048 px are 50 GB.
            Some(format!("image_size must be 1 to {MAX_IMAGE_SIZE} pixels, got {}", self.image_size))
        } else if self.epochs == 0 {
            Some("epochs must be at least 1".to_string())
        } else if self.rank == Some(0) {
            Some("rank must be at least 1".to_string())
        } else if self.base_precision() != Precision::F32 && self.method.trains_backbone() {
            Some(format!("{} keeps the frozen backbone in half precision, and {} trains the backbone: use f32", self.base_precision(), self.method))
        } else {
            None
        };
        problem.map_or(Ok(()), |problem| Err(crate::VisionError::InvalidConfig(problem)))?;
        Ok(wegeft::train::check_optimizer(self.lr, self.weight_decay)?)
    }

    /// The precision of the frozen backbone (f32 unless set).
    pub fn base_precision(&self) -> Precision {
        self.precision.unwrap_or_default()
    }

    /// The adapter rank in use; `None` for the linear probe and full fine-tuning.
    pub fn rank(&self) -> Option<usize> {
        self.method.default_rank().map(|default| self.rank.unwrap_or(default))
    }

    /// The ViT for a task with `classes` classes.
    pub fn vit_for(&self, classes: usize) -> VitConfig {
        VitConfig {
            num_classes: classes,
            drop_path: self.drop_path,
            ..self.vit.clone()
        }
    }
}
