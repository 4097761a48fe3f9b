//! Exports a `train-llm` run: the adapter merged into the base as an HF checkpoint (`merged/`)
//! and the adapter as one HF PEFT loads (`peft/`): WeGeFT as an exact LoRA adapter, LoRA, DoRA
//! and VeRA as themselves.

use std::path::PathBuf;
use std::process::ExitCode;

use burn::backend::Flex;
use clap::Parser;
use wegeft_llm::train::LlmTrainConfig;
use wegeft_llm::{load, Result};

#[derive(Parser)]
#[command(about = "Merge a trained adapter into its base model and export it")]
struct Args {
    /// The run directory (config.json, adapter/).
    run: PathBuf,
    /// Output directory [default: <run>/export].
    #[arg(long)]
    out: Option<PathBuf>,
}

fn export(args: Args) -> Result<()> {
    let config: LlmTrainConfig = wegeft::io::read_json(&args.run.join(wegeft::train::CONFIG_FILE))?;
    let device = Default::default();
    let mut pretrained = load::<Flex>(&config.model, config.injector()?, &device)?;
    let bank = std::mem::take(&mut pretrained.model.adapters);
    pretrained.model.adapters = wegeft::load_adapter(bank, args.run.join("adapter"))?;
    let out = args.out.unwrap_or_else(|| args.run.join("export"));
    pretrained.model.export_hf(&pretrained.config, &pretrained.tokenizer, &out.join("merged"))?;
    let kind = wegeft::export_peft(&pretrained.model, out.join("peft"))?;
    println!("wrote {} (merged HF checkpoint) and {} ({kind})", out.join("merged").display(), out.join("peft").display());
    Ok(())
}

fn main() -> ExitCode {
    wegeft_backend::install_stderr_logger();
    // No backend choice here: the job's own result is the whole outcome.
    wegeft_backend::exit_code("export-llm", Ok(export(Args::parse())))
}
