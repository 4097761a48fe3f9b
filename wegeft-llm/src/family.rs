//! Decoder families: what a LLaMA-style decoder varies from one model family to the next, so one
//! decoder serves them all and a family is a row here, not a copy of the model.

use serde::{Deserialize, Serialize};

/// A family of decoder-only transformers, by HF `model_type` (GGUF `general.architecture`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// LLaMA 1–3, SmolLM, TinyLlama: the plain design.
    Llama,
    /// Mistral: LLaMA with a sliding attention window.
    Mistral,
    /// Qwen2 and Qwen2.5: biases on the q, k and v projections.
    Qwen2,
    /// Qwen3: RMSNorm over each query and key head, and a head width of its own.
    Qwen3,
    /// Gemma 3 (text): QK-norm, (1 + w) RMSNorms around attention and MLP too, a √width
    /// embedding scale, GeGLU (tanh), and sliding layers with their own RoPE θ between global ones.
    #[serde(rename = "gemma3_text")]
    Gemma3,
}

/// The MLP's gate activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// SiLU (SwiGLU).
    Silu,
    /// GELU, tanh approximation (GeGLU; HF's `gelu_pytorch_tanh`).
    GeluTanh,
}

impl Family {
    /// HF's class, for `config.json`'s `architectures`.
    pub fn architecture(self) -> &'static str {
        match self {
            Self::Llama => "LlamaForCausalLM",
            Self::Mistral => "MistralForCausalLM",
            Self::Qwen2 => "Qwen2ForCausalLM",
            Self::Qwen3 => "Qwen3ForCausalLM",
            Self::Gemma3 => "Gemma3ForCausalLM",
        }
    }

    /// q, k and v projections carry biases whatever `attention_bias` says (Qwen2 has no such key).
    pub fn qkv_bias(self) -> bool {
        self == Self::Qwen2
    }

    /// Each query and key head is RMS-normed before RoPE (`q_norm`, `k_norm`).
    pub fn qk_norm(self) -> bool {
        matches!(self, Self::Qwen3 | Self::Gemma3)
    }

    /// RMSNorms multiply by `offset + w`: Gemma stores w around 0.
    pub fn norm_offset(self) -> f32 {
        if self == Self::Gemma3 { 1.0 } else { 0.0 }
    }

    /// Token embeddings are multiplied by √width.
    pub fn scales_embeddings(self) -> bool {
        self == Self::Gemma3
    }

    /// Attention and MLP outputs are normed too (`post_attention_layernorm` then norms the
    /// attention's output, and `pre_feedforward_layernorm` / `post_feedforward_layernorm` wrap the MLP).
    pub fn sandwich_norms(self) -> bool {
        self == Self::Gemma3
    }

    /// HF's default for `tie_word_embeddings` when `config.json` lacks it.
    pub fn ties_embeddings_by_default(self) -> bool {
        self == Self::Gemma3
    }
}
