"""Small networks that turn noise (and optionally a class) into images, and the decoder KegNet pairs them with.

The generator is DCGAN-shaped (seed 000 section 3.3 "small deconvolutional generator"; seed 004 "DCGAN and
ACGAN"): a dense layer to a quarter-size feature map, two stride-2 transposed convolutions, and a sigmoid,
so every image lies in [0, 1] like the datasets (seed 000's bound ``||G(Z)|| <= R``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def label_vector(y: torch.Tensor, num_classes: int, dtype: torch.dtype) -> torch.Tensor:
    """Class indices ``(N,)`` as one-hot rows; a soft label ``(N, K)`` (KegNet's latent walk) passes as it is."""
    return y.to(dtype) if y.is_floating_point() else F.one_hot(y, num_classes).to(dtype)


# The output bias of a generator that starts from a blank canvas: sigmoid(-2) = 0.12, a dark picture.
BLANK_BIAS = -2.0


class Generator(nn.Module):
    """``z`` (and a one-hot class when ``num_classes`` > 0) -> images of ``input_shape`` in [0, 1].

    ``blank``: the first images are near black instead of mid-grey (the last layer's bias starts at
    ``BLANK_BIAS``), the way seed 003 (section 5.2) starts pixel AM from a blank image: a teacher has seen
    dark backgrounds, never grey noise, so its answers there are arbitrary. Online, this moved a Fashion-MNIST
    student from 52 % to 71 % (1,500 steps, bench/logs/engine_log.jsonl).
    """

    def __init__(self, input_shape: tuple[int, int, int], noise_dim: int, num_classes: int = 0, width: int = 64,
                 blank: bool = False):
        super().__init__()
        c, h, w = input_shape
        self.input_shape, self.noise_dim, self.num_classes = (c, h, w), noise_dim, num_classes
        self.h0, self.w0 = -(-h // 4), -(-w // 4)
        self.fc = nn.Sequential(nn.Linear(noise_dim + num_classes, width * self.h0 * self.w0),
                                nn.BatchNorm1d(width * self.h0 * self.w0), nn.ReLU())
        self.body = nn.Sequential(
            nn.ConvTranspose2d(width, width // 2, 4, stride=2, padding=1), nn.BatchNorm2d(width // 2), nn.ReLU(),
            nn.ConvTranspose2d(width // 2, c, 4, stride=2, padding=1),
        )
        self.width = width
        if blank:
            nn.init.constant_(self.body[-1].bias, BLANK_BIAS)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes:
            z = torch.cat([z, label_vector(y, self.num_classes, z.dtype)], dim=1)
        x = self.body(self.fc(z).view(len(z), self.width, self.h0, self.w0))
        c, h, w = self.input_shape
        if x.shape[-2:] != (h, w):
            x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
        return torch.sigmoid(x)


class TableGenerator(nn.Module):
    """KegNet's generator for unstructured data (seed 004; the published code's dense generator): (z, one-hot y)
    -> two dense ELU layers of 120 units with batch norm -> features, batch-normalized without affine weights so
    the rows come out standardized like the tables' features."""

    def __init__(self, n_features: int, noise_dim: int, num_classes: int, width: int = 120):
        super().__init__()
        self.noise_dim, self.num_classes = noise_dim, num_classes
        self.net = nn.Sequential(nn.Linear(noise_dim + num_classes, width), nn.ELU(), nn.BatchNorm1d(width),
                                 nn.Linear(width, width), nn.ELU(), nn.BatchNorm1d(width),
                                 nn.Linear(width, n_features), nn.BatchNorm1d(n_features, affine=False))

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes:  # unconditional (``num_classes=0``) for the engine's online generator
            z = torch.cat([z, label_vector(y, self.num_classes, z.dtype)], dim=1)
        return self.net(z)


class Decoder(nn.Module):
    """KegNet's decoder: an MLP that recovers the noise vector from a generated image or row (seed 004)."""

    def __init__(self, input_shape: tuple[int, ...], noise_dim: int, hidden: int = 128):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), hidden), nn.ELU(),
                                 nn.Linear(hidden, hidden), nn.ELU(), nn.Linear(hidden, noise_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
