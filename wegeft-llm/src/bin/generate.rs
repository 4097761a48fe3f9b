//! Continues a prompt with a decoder (LLaMA, Mistral, Qwen2/3, Gemma 3; GGUF file or HF directory), optionally with a
//! trained adapter: `generate --model M.gguf --prompt "The capital of France is"`.

use std::path::PathBuf;
use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;
use clap::Parser;
use wegeft::Injector;
use wegeft_backend::{BackendArgs, BackendJob};
use wegeft_llm::{generate, load_base, BasePrecision, Message, PromptFormat, PromptStyle, Result, Sampling};

#[derive(Parser, Clone)]
#[command(about = "Generate text with a decoder (LLaMA, Mistral, Qwen2, Qwen3, Gemma 3)")]
struct Args {
    /// A .gguf file, a Hugging Face model directory, or `smollm2` / `gemma3` for the fetched
    /// assets [default: smollm2, SmolLM2-135M-Instruct from `cargo xtask assets llm`].
    #[arg(long, value_parser = wegeft_llm::assets::model_path)]
    model: Option<PathBuf>,
    /// Prompts (repeat the flag for a batch).
    #[arg(long, required = true)]
    prompt: Vec<String>,
    /// Render each prompt as a user turn with the model's chat template (Alpaca's when it has
    /// none).
    #[arg(long)]
    chat: bool,
    #[arg(long, default_value_t = 32, value_parser = wegeft_backend::parse::at_least_one)]
    max_new_tokens: usize,
    /// How the base is held: f16 and bf16 need a backend that has them (CUDA; WGPU: f16);
    /// `stored` keeps a GGUF's quantised projections in their blocks.
    #[arg(long = "base-precision", visible_alias = "precision", value_enum, default_value_t = BasePrecision::F32)]
    precision: BasePrecision,
    /// 0 for greedy decoding.
    #[arg(long, default_value_t = 0.0, value_parser = wegeft_backend::parse::non_negative)]
    temperature: f64,
    /// Sample among the most likely tokens whose probabilities sum to this.
    #[arg(long, default_value_t = 1.0, value_parser = wegeft_backend::parse::share)]
    top_p: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Stop when the generated text contains this string.
    #[arg(long, value_parser = wegeft_backend::parse::non_empty)]
    stop: Vec<String>,
    #[command(flatten)]
    backend: BackendArgs,
}

impl BackendJob for Args {
    type Output = Result<()>;

    fn run<B: AutodiffBackend>(self, device: B::Device, _description: String) -> Result<()> {
        let args = self;
        let path = args.model.clone().unwrap_or_else(wegeft_llm::assets::smollm2_gguf);
        let start = Instant::now();
        let loaded = load_base::<B::InnerBackend>(&path, Injector::none(), args.precision, &device)?;
        println!("loaded {} in {:.1} s", path.display(), start.elapsed().as_secs_f64());
        let format = PromptFormat::new(PromptStyle::Auto, &loaded.tokenizer)?;
        let texts: Vec<String> = args
            .prompt
            .iter()
            .map(|p| if args.chat { format.prompt(&[Message::new("user", p.as_str())]) } else { Ok(p.clone()) })
            .collect::<Result<_>>()?;
        let prompts = texts.iter().map(|t| loaded.tokenizer.encode_prompt(t)).collect::<Result<Vec<_>>>()?;
        let sampling = Sampling {
            temperature: args.temperature,
            top_p: args.top_p,
            seed: args.seed,
        };
        let stop_ids: Vec<u32> = loaded.tokenizer.eos.into_iter().collect();
        let tokenizer = &loaded.tokenizer;
        let stop = |ids: &[u32]| tokenizer.decode(ids).is_ok_and(|text| args.stop.iter().any(|s| text.contains(s.as_str())));
        let start = Instant::now();
        let outputs = generate(&loaded.model, &prompts, args.max_new_tokens, &stop_ids, &sampling, stop, &device)?;
        let seconds = start.elapsed().as_secs_f64();
        let tokens: usize = outputs.iter().map(Vec::len).sum();
        for (prompt, output) in args.prompt.iter().zip(&outputs) {
            let text: Vec<u32> = output.iter().copied().filter(|id| !stop_ids.contains(id)).collect();
            println!("{prompt}|{}", tokenizer.decode(&text)?);
        }
        println!("{tokens} tokens in {seconds:.2} s ({:.1} tokens/s, prompt included)", tokens as f64 / seconds);
        Ok(())
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    args.backend.clone().run("generate", false, args)
}
