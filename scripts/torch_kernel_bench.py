"""PyTorch's ops at the shapes of `cargo bench -p wegeft --bench kernels`: forward, then backward
from a fixed upstream gradient, median of the timed rounds after two untimed ones.

python scripts/torch_kernel_bench.py [--threads 2] [--rounds 11]
"""
import argparse
import time

import torch
import torch.nn.functional as F


def rotate_half(x):
    first, second = x.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=11)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cos, sin = torch.randn(64, 64), torch.randn(64, 64)
    # The models' norms are frozen: only x's gradient is taken.
    layer_norm = torch.nn.LayerNorm(384, eps=1e-6).requires_grad_(False)
    rms_norm = torch.nn.RMSNorm(576, eps=1e-5).requires_grad_(False)
    cases = [
        ("GELU, [1600, 1536]", [1600, 1536], F.gelu),
        ("attention, 32 × 6 heads × 50 × 64", [3, 32, 50, 6, 64],
         lambda x: F.scaled_dot_product_attention(*(t.transpose(1, 2) for t in x), scale=0.125).transpose(1, 2)),
        ("SiLU, [512, 1536]", [512, 1536], F.silu),
        ("RoPE, [8, 64, 9, 64]", [8, 64, 9, 64],
         lambda x: x * cos[None, :, None, :] + rotate_half(x) * sin[None, :, None, :]),
        ("LayerNorm, [1600, 384]", [1600, 384], layer_norm),
        ("RMSNorm, [512, 576]", [512, 576], rms_norm),
    ]
    print(f"forward + backward, torch {torch.__version__}, {args.threads} threads, median of {args.rounds} rounds\n")
    print("| op | PyTorch |\n|---|---|")
    for name, shape, f in cases:
        # Attention's input stacks separate Q, K and V projections; its output has one's shape.
        x, upstream = torch.randn(shape), torch.randn(shape[-4:])
        times = []
        for round in range(args.rounds + 2):
            start = time.perf_counter()
            leaf = x.clone().requires_grad_()
            (f(leaf) * upstream).sum().backward()
            if round >= 2:
                times.append(time.perf_counter() - start)
        times.sort()
        print(f"| {name} | {times[len(times) // 2] * 1e3:.2f} ms |")


if __name__ == "__main__":
    main()
