//! A pre-norm transformer block with optional LayerScale and stochastic depth.

use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use wegeft::io::{Init, Scope};
use wegeft::precision::autocast;
use wegeft::{AdapterBank, Injector};

use crate::attention::Attention;
use crate::config::VitConfig;
use crate::drop_path::DropPath;
use crate::error::Result;
use crate::layer_norm::LayerNorm;
use crate::mlp::Mlp;

/// timm's `blocks.N`: `x + ls1(attn(norm1(x)))`, then `x + ls2(mlp(norm2(x)))`.
#[derive(Module, Debug)]
pub struct Block<B: Backend> {
    /// `norm1`.
    pub norm1: LayerNorm<B>,
    /// `attn`.
    pub attn: Attention<B>,
    /// `ls1.gamma` (DINOv2's LayerScale), if the model has LayerScale.
    pub ls1: Option<Param<Tensor<B, 1>>>,
    /// `norm2`.
    pub norm2: LayerNorm<B>,
    /// `mlp`.
    pub mlp: Mlp<B>,
    /// `ls2.gamma`.
    pub ls2: Option<Param<Tensor<B, 1>>>,
    /// Stochastic depth of both branches.
    pub drop_path: DropPath,
}

impl<B: Backend> Block<B> {
    pub(crate) fn load(weights: &mut Scope, injector: &mut Injector, config: &VitConfig, index: usize, device: &B::Device) -> Result<Self> {
        let dim = config.embed_dim;
        let mut scale = |name: &str| -> Result<Option<Param<Tensor<B, 1>>>> {
            config
                .layer_scale
                .map(|init| Ok(weights.param(&format!("{name}.gamma"), [dim], Init::Constant(init), device)?.set_require_grad(false)))
                .transpose()
        };
        let (ls1, ls2) = (scale("ls1")?, scale("ls2")?);
        let drop_rate = if config.depth > 1 {
            config.drop_path * index as f64 / (config.depth - 1) as f64
        } else {
            config.drop_path
        };
        Ok(Self {
            norm1: LayerNorm::load(weights, "norm1", dim, config.norm_eps, device)?,
            attn: Attention::load(&mut weights.sub("attn"), injector, dim, config.num_heads, device)?,
            ls1,
            norm2: LayerNorm::load(weights, "norm2", dim, config.norm_eps, device)?,
            mlp: Mlp::load(&mut weights.sub("mlp"), injector, dim, config.mlp_hidden(), device)?,
            ls2,
            drop_path: DropPath { prob: drop_rate },
        })
    }

    /// `[B, N, D]` → `[B, N, D]`.
    pub fn forward(&self, x: Tensor<B, 3>, adapters: &AdapterBank<B>) -> Tensor<B, 3> {
        self.forward_with_attention(x, adapters).0
    }

    /// [`Self::forward`], and the attention branch's output (that of `attn.proj`) `[B, N, D]`,
    /// the tokens WeGeFT's cluster maps are read from.
    pub fn forward_with_attention(&self, x: Tensor<B, 3>, adapters: &AdapterBank<B>) -> (Tensor<B, 3>, Tensor<B, 3>) {
        let attended = self.attn.forward(self.norm1.forward(x.clone()), adapters);
        let x = x + self.drop_path.forward(scaled(attended.clone(), &self.ls1));
        let mixed = self.mlp.forward(self.norm2.forward(x.clone()), adapters);
        (x + self.drop_path.forward(scaled(mixed, &self.ls2)), attended)
    }
}

fn scaled<B: Backend>(branch: Tensor<B, 3>, gamma: &Option<Param<Tensor<B, 1>>>) -> Tensor<B, 3> {
    match gamma {
        Some(gamma) => {
            let dtype = branch.dtype();
            branch * autocast(gamma.val(), dtype).unsqueeze::<3>()
        }
        None => branch,
    }
}
