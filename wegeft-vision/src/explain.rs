//! What WeGeFT learned, made visible. For an adapted `attn.proj` with weight W (PyTorch's
//! d_out×d_in) and generator φ, the matrix C = W·φ (d_out×r) acts as an r-way token-clustering
//! head: Cᵀ·Xᵀ, with X the layer's output tokens, gives r maps over the patch grid (the official
//! `vis_utils.py`). In burn's layout C is (Φ·W)ᵀ, the generated matrix of [`wegeft::WegeftPair`].

use burn::tensor::backend::Backend;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::Tensor;
use wegeft::Adapter;

use crate::error::{Result, VisionError};
use crate::model::VisionTransformer;

/// The r token-cluster maps of one adapted block.
#[derive(Clone, Debug)]
pub struct ClusterMaps<B: Backend> {
    /// The block's index.
    pub layer: usize,
    /// Cᵀ·Xᵀ per image over the patch grid, `[B, r, rows, columns]`, unnormalised.
    pub maps: Tensor<B, 4>,
}

/// The cluster maps of blocks `layers` for normalised `images` `[B, 3, H, W]` (run it on an
/// inference backend: drop_path is then off). Each block's `attn.proj` must carry a WeGeFT pair,
/// shared or its own; LoRA and unadapted layers have no such head and are errors.
pub fn cluster_maps<B: Backend>(model: &VisionTransformer<B>, images: Tensor<B, 4>, layers: &[usize]) -> Result<Vec<ClusterMaps<B>>> {
    let heads = layers.iter().map(|&layer| Ok((layer, clustering_head(model, layer)?))).collect::<Result<Vec<_>>>()?;
    let (mut x, (rows, columns)) = model.embed(images);
    let mut found = Vec::new();
    for (index, block) in model.blocks.iter().enumerate().take(layers.iter().max().map_or(0, |last| last + 1)) {
        let (next, attended) = block.forward_with_attention(x, &model.adapters);
        x = next;
        for (_, head) in heads.iter().filter(|(layer, _)| *layer == index) {
            let [batch, tokens, dim] = attended.dims();
            let patches = attended.clone().slice([0..batch, 1..tokens, 0..dim]);
            let rank = head.dims()[0];
            let maps = patches.matmul(head.clone().transpose().unsqueeze::<3>()).swap_dims(1, 2);
            found.push(ClusterMaps { layer: index, maps: maps.reshape([batch, rank, rows, columns]) });
        }
    }
    Ok(found)
}

/// The maps upsampled bilinearly to `height`×`width` (half-pixel centres) and min-max
/// normalised to [0, 1] per image and cluster; thresholded at 0.5 they are the cluster masks.
pub fn normalised<B: Backend>(maps: Tensor<B, 4>, height: usize, width: usize) -> Tensor<B, 4> {
    let options = InterpolateOptions::new(InterpolateMode::Bilinear).with_align_corners(false);
    let upsampled = interpolate(maps, [height, width], options);
    let [batch, rank, _, _] = upsampled.dims();
    let flat = upsampled.reshape([batch, rank, height * width]);
    let low = flat.clone().min_dim(2);
    let span = flat.clone().max_dim(2) - low.clone();
    ((flat - low) / span.clamp_min(1e-12)).reshape([batch, rank, height, width])
}

/// Φ·W of block `layer`'s `attn.proj`: Cᵀ, `[r, d_out]`.
fn clustering_head<B: Backend>(model: &VisionTransformer<B>, layer: usize) -> Result<Tensor<B, 2>> {
    let name = format!("blocks.{layer}.attn.proj");
    let block = model.blocks.get(layer).ok_or_else(|| explain(format!("the model has {} blocks, not {}", model.blocks.len(), layer + 1)))?;
    let plan = model.adapters.plan().ok_or_else(|| explain("the model has no adapter".into()))?;
    let (_, planned) = plan.layer(&name).ok_or_else(|| explain(format!("`{name}` is not adapted")))?;
    match &model.adapters.adapters[planned.group] {
        Adapter::Wegeft(pair) => Ok(pair.phi.val().matmul(block.attn.proj.base.weight.val())),
        Adapter::Lora(_) => Err(explain(format!("`{name}` has a LoRA update, which generates nothing from W: there is no clustering head"))),
    }
}

fn explain(reason: String) -> VisionError {
    VisionError::Explain(reason)
}
