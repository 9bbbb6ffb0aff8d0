"""MAGMA (GPT-J 6B + CLIP RN50x16 + adapters): modeling, original-format loading, sampling.

Importing this package imports nothing heavy; the submodules import torch.
"""
