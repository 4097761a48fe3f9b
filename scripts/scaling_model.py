#!/usr/bin/env python3
"""Expected step time of data-parallel training over p MPI ranks (SCALING.md's table).

Inputs are measured by the commands in SCALING.md (one rank = one core of the 2-core AVX-512
machine, Flex, 1 thread): the compute time per item of one rank, and the bytes of one gradient
all-reduce, which the runs print on rank 0. Communication follows the ring all-reduce,
2(p-1)·alpha + 2(p-1)/p · M/B, plus one check-in message per step (alpha).
"""

RUNS = {
    # name: (seconds per item on one core, bytes per all-reduce, default global batch); SmolLM2's
    # item is one example of the arithmetic set, 354 / 8 tokens on average.
    "ViT-S/14 WeGeFT, cats_dogs 84 px": (1 / 21.0, 52_248, 32),
    "SmolLM2-135M WeGeFT r64": (1 / 77.2 * 354 / 8, 1_966_120, 8),
}
LINKS = {"10 Gbit/s Ethernet (TCP, alpha 30 us)": (1.25e9, 30e-6), "100 Gbit/s InfiniBand/RoCE (alpha 3 us)": (12.5e9, 3e-6)}


def ring(p, size, bandwidth, alpha):
    return 2 * (p - 1) * alpha + 2 * (p - 1) / p * size / bandwidth + alpha


for name, (per_item, size, batch) in RUNS.items():
    print(f"\n{name}: {per_item * 1e3:.1f} ms per item on one core, {size:,} bytes per all-reduce, global batch {batch}")
    for link, (bandwidth, alpha) in LINKS.items():
        print(f"  {link}")
        for p in (2, 8, 64, 512):
            comm = ring(p, size, bandwidth, alpha)
            strong = f"{batch // p} items/rank: compute {batch / p * per_item * 1e3:8.1f} ms + comm {comm * 1e3:6.2f} ms ({comm / (batch / p * per_item + comm):5.1%})" if batch % p == 0 else "batch does not split"
            weak_items = 4 if batch >= 32 else 1
            weak = f"{weak_items} items/rank: compute {weak_items * per_item * 1e3:7.1f} ms + comm {comm * 1e3:6.2f} ms ({comm / (weak_items * per_item + comm):5.1%})"
            print(f"    p={p:3}: default batch: {strong:70} | fixed per rank: {weak}")
