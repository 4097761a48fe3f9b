"""Reference linear probe of the converted DINOv2 ViT-S/14 in timm (PyTorch), for comparison with
`train-vit --methods linear`: class-token features of a VTAB-style task at several image sizes,
then multinomial logistic regression (L-BFGS, full batch) on train800val200, top-1 on test.

    python scripts/linear_probe_reference.py ~/.cache/wegeft/assets/dinov2_vits14.safetensors \
        ~/.cache/wegeft/assets/vtab/cats_dogs --sizes 56 84 224 --test 500

Needs torch, timm, safetensors, pillow (the fixtures venv of `cargo xtask fixtures` plus pillow).
"""
import argparse
import pathlib

import numpy as np
import timm
import torch
from PIL import Image
from safetensors.torch import load_file


def load_split(task, split, size, limit=None):
    lines = (task / f"{split}.txt").read_text().split("\n")
    items = [l.rsplit(" ", 1) for l in lines if l.strip()][:limit]
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    images = []
    for path, _ in items:
        image = Image.open(task / path).convert("RGB").resize((size, size), Image.BICUBIC)
        images.append(((np.asarray(image, dtype=np.float32) / 255.0 - mean) / std).transpose(2, 0, 1))
    labels = torch.tensor([int(label) for _, label in items])
    return torch.tensor(np.stack(images), dtype=torch.float32), labels


def features(model, images):
    with torch.no_grad():
        return torch.cat([model.forward_features(images[i:i + 64])[:, 0] for i in range(0, len(images), 64)])


def probe(train_x, train_y, test_x, test_y, classes):
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    head = torch.nn.Linear(train_x.shape[1], classes)
    optim = torch.optim.LBFGS(head.parameters(), max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        optim.zero_grad()
        loss = torch.nn.functional.cross_entropy(head(train_x), train_y) + 1e-3 * head.weight.square().sum()
        loss.backward()
        return loss

    optim.step(closure)
    return 100.0 * (head(test_x).argmax(1) == test_y).float().mean().item()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint")
    parser.add_argument("task", type=pathlib.Path)
    parser.add_argument("--sizes", type=int, nargs="+", default=[56, 224])
    parser.add_argument("--test", type=int, default=None, help="test images used (default: all)")
    args = parser.parse_args()
    classes = 1 + max(int(l.rsplit(" ", 1)[1]) for l in (args.task / "train800val200.txt").read_text().split("\n") if l.strip())
    torch.manual_seed(0)
    for size in args.sizes:
        model = timm.create_model("vit_small_patch14_dinov2", pretrained=False, img_size=size, num_classes=0,
                                  dynamic_img_size=True)
        state = load_file(args.checkpoint)
        # Our checkpoint keeps DINOv2's 37x37 grid; timm resamples it the same way at load time.
        state["pos_embed"] = timm.layers.resample_abs_pos_embed(state["pos_embed"], (size // 14, size // 14),
                                                                num_prefix_tokens=1)
        model.load_state_dict(state)
        model.eval()
        train_x, train_y = load_split(args.task, "train800val200", size)
        test_x, test_y = load_split(args.task, "test", size, args.test)
        accuracy = probe(features(model, train_x), train_y, features(model, test_x), test_y, classes)
        print(f"{args.task.name} {size}px: linear probe test top-1 {accuracy:.2f}% ({len(test_y)} test images)")


if __name__ == "__main__":
    main()
