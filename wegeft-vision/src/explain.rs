//! What WeGeFT learned, made visible. For an adapted `attn.proj` with weight W (PyTorch's
//! d_out×d_in) and generator φ, the matrix C = W·φ (d_out×r) acts as an r-way token-clustering
//! head: Cᵀ·Xᵀ, with X the layer's output tokens, gives r maps over the patch grid (the official
//! `vis_utils.py`). In burn's layout C is (Φ·W)ᵀ, the generated matrix of [`wegeft::WegeftPair`].
//!
//! Whether those maps find objects is measured, not assumed: [`score`] compares thresholded maps
//! with ground-truth masks, and the heads can be swapped for baselines (φ at initialisation via
//! [`clustering_head`] of the untrained model, or W's principal directions, [`principal_head`]).

mod principal;
mod score;

pub use principal::top_eigenvectors;
pub use score::{ClusterScore, IouTally};

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

/// The cluster maps of blocks `layers`, in that order, for normalised `images` `[B, 3, H, W]` (run it on an
/// inference backend: drop_path is then off). Each block's `attn.proj` must carry a WeGeFT pair,
/// shared or its own; LoRA and unadapted layers have no such head and are errors.
pub fn cluster_maps<B: Backend>(model: &VisionTransformer<B>, images: Tensor<B, 4>, layers: &[usize]) -> Result<Vec<ClusterMaps<B>>> {
    let heads = layers.iter().map(|&layer| Ok((layer, clustering_head(model, layer)?))).collect::<Result<Vec<_>>>()?;
    Ok(cluster_maps_with(model, images, &heads))
}

/// The maps Cᵀ·Xᵀ of each `(block, Cᵀ)` in `heads`, Cᵀ `[r, d_out]`, in the same order, over the
/// tokens that block's `attn.proj` puts out: the trained heads, or a baseline's, on the same
/// activations (one forward pass for them all).
pub fn cluster_maps_with<B: Backend>(model: &VisionTransformer<B>, images: Tensor<B, 4>, heads: &[(usize, Tensor<B, 2>)]) -> Vec<ClusterMaps<B>> {
    let (mut x, (rows, columns)) = model.embed(images);
    let mut found: Vec<Option<ClusterMaps<B>>> = vec![None; heads.len()];
    let depth = heads.iter().map(|(layer, _)| layer + 1).max().unwrap_or(0);
    for (index, block) in model.blocks.iter().enumerate().take(depth) {
        let (next, attended) = block.forward_with_attention(x, &model.adapters);
        x = next;
        if !heads.iter().any(|(layer, _)| *layer == index) {
            continue;
        }
        let [batch, tokens, dim] = attended.dims();
        let patches = attended.slice([0..batch, 1..tokens, 0..dim]);
        for (slot, (_, head)) in found.iter_mut().zip(heads).filter(|(_, (layer, _))| *layer == index) {
            let rank = head.dims()[0];
            let maps = patches.clone().matmul(head.clone().transpose().unsqueeze::<3>()).swap_dims(1, 2);
            *slot = Some(ClusterMaps { layer: index, maps: maps.reshape([batch, rank, rows, columns]) });
        }
    }
    found.into_iter().flatten().collect()
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

/// Φ·W of block `layer`'s `attn.proj`: Cᵀ, `[r, d_out]`. On a model fresh from
/// `build_model` (same config and seed) this is the random-φ baseline.
pub fn clustering_head<B: Backend>(model: &VisionTransformer<B>, layer: usize) -> Result<Tensor<B, 2>> {
    let name = format!("blocks.{layer}.attn.proj");
    let block = block(model, layer)?;
    let plan = model.adapters.plan().ok_or_else(|| explain("the model has no adapter".into()))?;
    let (_, planned) = plan.layer(&name).ok_or_else(|| explain(format!("`{name}` is not adapted")))?;
    match &model.adapters.adapters[planned.group] {
        Adapter::Wegeft(pair) => Ok(pair.phi.val().matmul(block.attn.proj.base.weight.val())),
        _ => Err(explain(format!(
            "`{name}` has a {} update, which generates nothing from W: there is no clustering head (only WeGeFT has one)",
            model.adapters.plan().map_or("", |plan| plan.method.name())
        ))),
    }
}

/// The weight-only baseline of block `layer`'s `attn.proj`: in place of Φ·W, W's first `rank`
/// principal directions in its output space (the top eigenvectors of WᵀW, burn's `[d_in, d_out]`
/// layout), as rows, `[rank, d_out]`.
pub fn principal_head<B: Backend>(model: &VisionTransformer<B>, layer: usize, rank: usize) -> Result<Tensor<B, 2>> {
    let block = block(model, layer)?;
    let weight = block.attn.proj.base.weight.val();
    let [_, d_out] = weight.dims();
    let gram = weight.clone().transpose().matmul(weight.clone());
    let values: Vec<f64> = gram.into_data().convert::<f64>().to_vec().map_err(|error| explain(format!("{error:?}")))?;
    let directions = top_eigenvectors(&values, d_out, rank.min(d_out));
    let rows: Vec<f32> = directions.iter().flatten().map(|&v| v as f32).collect();
    Ok(Tensor::from_data(burn::tensor::TensorData::new(rows, [directions.len(), d_out]), &weight.device()))
}

fn block<B: Backend>(model: &VisionTransformer<B>, layer: usize) -> Result<&crate::block::Block<B>> {
    model.blocks.get(layer).ok_or_else(|| explain(format!("there is no block {layer}: the model's blocks are 0 to {}", model.blocks.len().saturating_sub(1))))
}

fn explain(reason: String) -> VisionError {
    VisionError::Explain(reason)
}
