"""HF PEFT loads the adapters wegeft exports and reproduces wegeft's logits.

With `WEGEFT_PEFT_CHECK_DIR` set, two Rust tests write each exported adapter and our logits there:
`every_method_exports_a_merged_checkpoint_and_a_peft_adapter_that_reproduce_it`
(wegeft-llm/tests/training.rs: WeGeFT, DoRA and VeRA trained on the tiny LLaMA) and
`adapters_on_every_family_export_to_peft_and_reload_to_the_same_logits` (tests/families.rs: WeGeFT
and DoRA on tiny Qwen2, Qwen3, Mistral and Gemma 3 models and on a Q4_K_M GGUF, whose `base.txt`
names the base; transformers dequantises the GGUF itself):

    WEGEFT_PEFT_CHECK_DIR=/tmp/peft-check cargo test -p wegeft-llm --test training --test families export
    python -m pip install "torch==2.*" "transformers==5.*" "peft==0.21.2" gguf safetensors
    python scripts/peft_loads_ours.py /tmp/peft-check

Exits non-zero if any method's logits differ from ours by more than 1e-5 (relative to the largest).
"""

import os
import sys

import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
BASE = os.path.join(HERE, "..", "wegeft-llm", "tests", "fixtures", "tiny_llama_untied")
IDS = [[5, 17, 3, 90, 42, 8]]


def main(check_dir):
    failed = False
    for method in sorted(os.listdir(check_dir)):
        named = os.path.join(check_dir, method, "base.txt")
        path = open(named).read() if os.path.exists(named) else BASE
        if path.endswith(".gguf"):
            base = AutoModelForCausalLM.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path), dtype=torch.float32)
        else:
            base = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        model = PeftModel.from_pretrained(base, os.path.join(check_dir, method, "adapter")).eval()
        with torch.no_grad():
            logits = model(torch.tensor(IDS)).logits[0]
        ours = load_file(os.path.join(check_dir, method, "logits.safetensors"))["logits"]
        error = ((logits - ours).abs().max() / ours.abs().max()).item()
        kind = type(model.base_model).__name__
        print(f"{method}: PEFT ({kind}) vs wegeft logits, relative error {error:.2e}")
        failed |= not error <= 1e-5
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main(sys.argv[1])
