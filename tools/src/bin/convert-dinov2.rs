//! `convert-dinov2 <vit_s_focus.onnx> <out.safetensors>`: the DINOv2 ViT-S/14 backbone of an
//! ONNX export, as a timm-layout safetensors checkpoint (see `wegeft_tools::onnx`).

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [onnx, out] = args.as_slice() else {
        eprintln!("usage: convert-dinov2 <model.onnx> <out.safetensors>");
        return ExitCode::FAILURE;
    };
    let converted = wegeft_tools::onnx::dinov2_from_onnx(onnx)
        .map_err(|error| error.to_string())
        .and_then(|tensors| {
            let count: usize = tensors.values().map(|t| t.values.len()).sum();
            wegeft::io::write_safetensors(out, &tensors).map_err(|error| error.to_string())?;
            Ok((tensors.len(), count))
        });
    match converted {
        Ok((tensors, params)) => {
            println!("{} → {}: {tensors} tensors, {params} parameters", onnx.display(), out.display());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
