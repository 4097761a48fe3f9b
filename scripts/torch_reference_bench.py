"""PyTorch side of `cargo xtask bench --reference`: times one training step of one configuration
per process (so the peak RSS is that configuration's), as `wegeft-vision/benches/vit_step.rs` and
`wegeft-llm/benches/llm_step.rs` time ours, and prints one JSON line last on stdout.

    vit-step  timm `vit_small_patch16_224` (random init, no dropout or stochastic depth) at
              `--size`, random images and labels; frozen (head only), HF PEFT LoRA r 8 (alpha 8)
              on attn.proj, WeGeFT r 16 on attn.proj (one pair shared by the 12 blocks, or one per
              block), or full fine-tuning. AdamW lr 1e-3, weight decay 1e-4 on matrices only (as
              `SelectiveDecayAdamW`).
    llm-step  SmolLM2-135M-Instruct dequantised to f32 from a local GGUF (or, with `--random
              smollm2-135m`, a randomly initialised Llama of its exact shapes, so no file is needed),
              random token ids, next-token cross-entropy on every position; HF PEFT LoRA r 16
              (alpha 32, dropout 0.05 on x) or WeGeFT r 64 (alpha 128, dropout 0.1 on W; one pair
              per module type or per layer) on q,k,v,up,down_proj. AdamW lr 1e-3, no weight decay
              (`train-llm`'s defaults).

A step is forward, loss, backward, optimizer step and zero_grad; `--warmup` untimed steps come
first, then `--steps` are timed with `time.perf_counter` and the median is reported.

Both benches take `--device cpu|cuda` (default cpu): on cuda the model, inputs and labels live on the
GPU, every step ends with `torch.cuda.synchronize()` before its timer stops, and the JSON adds the
allocator's peaks after the model is built (`peak_gpu_mb`, `peak_gpu_reserved_mb`). fp32 matmuls and
convolutions are full IEEE fp32 unless `--tf32` (cuda only). `--amp bf16|f16` runs forward and loss
under `torch.autocast` (f16 with a `GradScaler`) over the fp32 weights, standard mixed precision.
The JSON records `device`, `matmul_precision` (tf32|fp32) and `precision` (bf16|f16|fp32).

WeGeFT is computed exactly as the Rust `WegeftPair::delta_forward`, on the activation path and
without ever forming the d_in x d_out update. burn stores W as d_in x d_out and computes
`y = xW + b + s·(xψᵀ)(φᵀW)`; PyTorch stores W as d_out x d_in, and with Φ = φᵀ (`phi.weight`,
r x d_in) and Ψ = ψ (`psi.weight`, r x d_in), the layout of the official code and of our adapter
files, the same numbers are `y = xWᵀ + b + s·(xΨᵀ)(ΦWᵀ)`: the generated r x d_out matrix
s·ΦWᵀ (from dropout(W) while training) is the same, and so is the batch-dependent part.

    python scripts/torch_reference_bench.py vit-step --size 112 --method wegeft --threads 2
    python scripts/torch_reference_bench.py llm-step --method lora --threads 2
    python scripts/torch_reference_bench.py vit-step --size 224 --batch 128 --method wegeft --device cuda --amp bf16
    python scripts/torch_reference_bench.py llm-step --random smollm2-135m --device cuda --tf32

Needs torch, timm, peft, transformers and (unless `--random`) gguf.
"""
import argparse
import contextlib
import json
import os
import re
import resource
import sys
import time

SMOLLM2_GGUF = os.path.expanduser("~/.cache/wegeft/assets/SmolLM2-135M-Instruct.Q4_1.gguf")
LLM_TARGETS = ["q_proj", "k_proj", "v_proj", "up_proj", "down_proj"]
# `transformers.LlamaConfig` arguments of the models `llm-step --random` builds without weights.
RANDOM_SHAPES = {
    "smollm2-135m": {"hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
                     "num_attention_heads": 9, "num_key_value_heads": 3, "vocab_size": 49152,
                     "max_position_embeddings": 8192, "rms_norm_eps": 1e-5, "rope_theta": 100000.0,
                     "tie_word_embeddings": True, "hidden_act": "silu"},
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    benches = parser.add_subparsers(dest="bench", required=True)

    def bench(name, summary, batch):
        sub = benches.add_parser(name, help=summary)
        sub.add_argument("--batch", type=int, default=batch)
        sub.add_argument("--steps", type=int, default=3, help="timed steps (the median is reported)")
        sub.add_argument("--warmup", type=int, default=2, help="untimed steps first")
        sub.add_argument("--threads", type=int, default=os.cpu_count(), help="intra-op CPU threads")
        sub.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
        sub.add_argument("--tf32", action="store_true", help="TF32 matmuls and convolutions (cuda only)")
        sub.add_argument("--amp", choices=["bf16", "f16"], help="autocast forward and loss (default fp32)")
        sub.add_argument("--profile", type=int, default=0, metavar="N",
                         help="one more step under torch.profiler; report its N ops of most self time")
        return sub

    vit = bench("vit-step", "ViT-S/16 fine-tuning step", 32)
    vit.add_argument("--size", type=int, default=112, help="square image side, a multiple of 16")
    vit.add_argument("--method", default="wegeft",
                     choices=["frozen", "linear", "lora", "dora", "vera", "wegeft", "wegeft-layer", "full"],
                     help="what trains besides the head (`linear` is the Rust name of `frozen`)")
    vit.add_argument("--classes", type=int, default=10)
    llm = bench("llm-step", "SmolLM2-135M fine-tuning step", 8)
    llm.add_argument("--gguf", default=SMOLLM2_GGUF, help="the model, dequantised to f32 on load")
    llm.add_argument("--method", default="wegeft", choices=["lora", "dora", "vera", "wegeft", "wegeft-layer"])
    llm.add_argument("--seq", type=int, default=64, help="tokens per sequence")
    llm.add_argument("--random", choices=sorted(RANDOM_SHAPES),
                     help="random weights of this model's shapes instead of `--gguf`")
    args = parser.parse_args()
    if args.tf32 and args.device != "cuda":
        parser.error("--tf32 needs --device cuda")
    return args


def matches(name, suffixes):
    """Whether a module name ends with one of `suffixes` at a component boundary (PEFT's rule)."""
    return any(name == suffix or name.endswith("." + suffix) for suffix in suffixes)


def inject_wegeft(model, suffixes, rank, vision_init, scale, dropout, per_layer):
    """Wraps every `nn.Linear` named `*suffix` with WeGeFT: one (φ, ψ) pair per module type (the
    layer name with its numeric components wildcarded), whose gradient sums over its layers, or
    one per layer."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    class WegeftLinear(nn.Module):
        """A frozen linear layer plus `s·(xΨᵀ)(Φ·dropout(W)ᵀ)`."""

        def __init__(self, base, pair):
            super().__init__()
            self.base, self.pair = base, pair

        def forward(self, x):
            weight = F.dropout(self.base.weight, dropout, self.training)
            generated = scale * self.pair["phi"](weight)  # W·Φᵀ: d_out x r
            return self.base(x) + F.linear(self.pair["psi"](x), generated)

    pairs = {}
    targets = [(name, module) for name, module in model.named_modules()
               if isinstance(module, nn.Linear) and matches(name, suffixes)]
    for name, base in targets:
        key = name if per_layer else re.sub(r"(^|\.)\d+(?=\.|$)", r"\1*", name)
        if key not in pairs:
            # nn.Linear's default init is the official U(±1/√d_in); the other generator starts at 0.
            pair = nn.ModuleDict({"phi": nn.Linear(base.in_features, rank, bias=False),
                                  "psi": nn.Linear(base.in_features, rank, bias=False)})
            with torch.no_grad():
                pair["psi" if vision_init else "phi"].weight.zero_()
            pairs[key] = pair
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, WegeftLinear(base, pairs[key]))


def inject_peft(model, method, suffixes, rank, alpha, dropout):
    """HF PEFT's LoRA, DoRA (`use_dora`) or VeRA on every linear layer named `*suffix`; returns the
    marker of the adapter's parameter names."""
    from peft import LoraConfig, VeraConfig, get_peft_model, inject_adapter_in_model

    if method == "vera":
        # VeRA keeps its shared projections on the tuner, so PEFT injects it only through
        # `get_peft_model`; the layers of `model` are replaced in place and hold the projections.
        get_peft_model(model, VeraConfig(r=rank, vera_dropout=dropout, target_modules=suffixes))
        return "vera_lambda"
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=suffixes,
                        use_dora=method == "dora")
    inject_adapter_in_model(config, model)
    return "lora_"


# The paper's settings, as the Rust `MethodName::config` has them: (rank, alpha, dropout) by domain.
VISION_PEFT = {"lora": (8, 8, 0.0), "dora": (8, 8, 0.0), "vera": (256, None, 0.0)}
LLM_PEFT = {"lora": (16, 32, 0.05), "dora": (16, 32, 0.05), "vera": (1024, None, 0.05)}


def adamw(params, lr, weight_decay):
    """PyTorch AdamW with `weight_decay` on matrices only, as the Rust `SelectiveDecayAdamW`."""
    import torch

    matrix = [p for p in params if sum(d > 1 for d in p.shape) > 1]
    vector = [p for p in params if sum(d > 1 for d in p.shape) <= 1]
    groups = [{"params": matrix, "weight_decay": weight_decay}, {"params": vector, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, eps=1e-8)


def trainable(model):
    return [p for p in model.parameters() if p.requires_grad]


def set_matmul_precision(tf32):
    """TF32 or IEEE fp32 for CUDA matmuls and cuDNN convolutions, explicitly either way (cuDNN
    defaults to TF32). Recent torch has `fp32_precision` and rejects mixing it with `allow_tf32`."""
    import torch

    if hasattr(torch.backends.cuda.matmul, "fp32_precision"):
        torch.backends.cuda.matmul.fp32_precision = torch.backends.cudnn.conv.fp32_precision = (
            "tf32" if tf32 else "ieee")
    else:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32


def time_steps(loss_fn, optimizer, args):
    """Median and every timed step (the upper median, as the Rust `time_steps`)."""
    import torch

    cuda = args.device == "cuda"
    dtype = {"bf16": torch.bfloat16, "f16": torch.float16}.get(args.amp)
    # f16's narrow range needs the loss scaled so that small gradients do not flush to zero.
    scaler = torch.amp.GradScaler(args.device) if args.amp == "f16" else None

    def step():
        with torch.autocast(args.device, dtype=dtype) if dtype else contextlib.nullcontext():
            loss = loss_fn()
        if scaler:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        # CUDA kernels run asynchronously: a step is timed to completion.
        if cuda:
            torch.cuda.synchronize()

    if cuda:
        torch.cuda.reset_peak_memory_stats()
    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(max(args.steps, 1)):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2], times, top_ops(step, args.profile)


def top_ops(step, count):
    """The `count` ops of most self time in one more step under torch.profiler (after the timed
    ones, which the profiler would slow), with their share of the step's total self time."""
    if count <= 0:
        return {}
    import torch.profiler

    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        step()
    events = sorted(profile.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1
    return {"top_ops": [{"name": e.key, "share": e.self_cpu_time_total / total} for e in events[:count]]}


def peak_memory():
    """Peak resident memory in MB: VmHWM, and `ru_maxrss` (KiB on Linux) for comparison."""
    with open("/proc/self/status") as status:
        kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    return {"peak_rss_mb": kib / 1024, "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def peak_gpu_memory():
    """The CUDA caching allocator's peaks in MB since `time_steps` reset them: tensors, and reserved."""
    import torch

    return {"peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20,
            "peak_gpu_reserved_mb": torch.cuda.max_memory_reserved() / 2**20}


def vit_step(args):
    import timm
    import torch
    from torch.nn import functional as F

    model = timm.create_model("vit_small_patch16_224", pretrained=False, img_size=args.size,
                              num_classes=args.classes, drop_path_rate=0.0)
    marker = None
    if args.method in VISION_PEFT:
        marker = inject_peft(model, args.method, ["attn.proj"], *VISION_PEFT[args.method])
    for name, param in model.named_parameters():
        param.requires_grad = args.method == "full" or name.startswith("head.") or (marker is not None and marker in name)
    if args.method in ("wegeft", "wegeft-layer"):
        inject_wegeft(model, ["attn.proj"], rank=16, vision_init=True, scale=1.0, dropout=0.0,
                      per_layer=args.method == "wegeft-layer")
    model.train().to(args.device)
    params = trainable(model)
    head = sum(p.numel() for p in model.head.parameters())
    total = sum(p.numel() for p in params)
    print(f"vit-step: ViT-S/16 {args.size}px x {args.batch}, {args.method}: {total - head:,} trainable "
          f"besides the head + {head:,} head = {total:,}", file=sys.stderr)

    # Drawn on the CPU, so that both devices see the same numbers.
    images = torch.randn(args.batch, 3, args.size, args.size).to(args.device)
    labels = torch.randint(args.classes, (args.batch,)).to(args.device)
    optimizer = adamw(params, lr=1e-3, weight_decay=1e-4)
    median, times, profile = time_steps(lambda: F.cross_entropy(model(images), labels), optimizer, args)
    return {"size": args.size, "batch": args.batch, "method": args.method, "median_s": median, "steps_s": times,
            "trainable_params": total, **profile}


def llm_step(args):
    import torch
    from torch.nn import functional as F
    from transformers import AutoModelForCausalLM, LlamaConfig

    if args.random:
        model = AutoModelForCausalLM.from_config(LlamaConfig(**RANDOM_SHAPES[args.random]),
                                                 dtype=torch.float32, attn_implementation="sdpa")
    else:
        model = AutoModelForCausalLM.from_pretrained(os.path.dirname(os.path.abspath(args.gguf)),
                                                     gguf_file=os.path.basename(args.gguf), dtype=torch.float32,
                                                     attn_implementation="sdpa")
    model.requires_grad_(False)
    if args.method in LLM_PEFT:
        marker = inject_peft(model, args.method, LLM_TARGETS, *LLM_PEFT[args.method])
        for name, param in model.named_parameters():
            param.requires_grad = marker in name
    else:
        inject_wegeft(model, LLM_TARGETS, rank=64, vision_init=False, scale=128 / 64, dropout=0.1,
                      per_layer=args.method == "wegeft-layer")
    model.train().to(args.device)
    params = trainable(model)
    total = sum(p.numel() for p in params)
    weights = f"random {args.random}" if args.random else os.path.basename(args.gguf)
    print(f"llm-step: {weights} {args.batch} x {args.seq} tokens, {args.method}: {total:,} trainable",
          file=sys.stderr)

    # seq + 1 ids per row: position p predicts p + 1, so every one of the seq positions has a loss.
    vocab = model.config.vocab_size
    ids = torch.randint(vocab, (args.batch, args.seq + 1))
    inputs, targets = ids[:, :-1].to(args.device), ids[:, 1:].to(args.device)

    def loss():
        logits = model(input_ids=inputs, use_cache=False).logits
        return F.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1))

    optimizer = adamw(params, lr=1e-3, weight_decay=0.0)
    median, times, profile = time_steps(loss, optimizer, args)
    return {"method": args.method, "weights": weights, "batch": args.batch, "seq": args.seq, "median_s": median,
            "steps_s": times, "tokens_per_s": args.batch * args.seq / median, "trainable_params": total, **profile}


def main():
    args = parse_args()
    # OpenMP and MKL read these once, when torch loads them. The model comes from a local file, and
    # stderr, the driver's log, gets no progress bars.
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)
    os.environ["HF_HUB_OFFLINE"] = os.environ["TQDM_DISABLE"] = "1"
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cuda = args.device == "cuda"
    if cuda:
        set_matmul_precision(args.tf32)
    report = (vit_step if args.bench == "vit-step" else llm_step)(args)
    device = f"cuda ({torch.cuda.get_device_name()})" if cuda else "cpu"
    print(json.dumps({"bench": args.bench, "framework": "pytorch", "torch": torch.__version__,
                      "threads": args.threads, "device": device,
                      "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                      "matmul_precision": "tf32" if args.tf32 else "fp32", "precision": args.amp or "fp32",
                      **report, **peak_memory(), **(peak_gpu_memory() if cuda else {})}))


if __name__ == "__main__":
    main()
