"""SegNet exactly as the SegNet-IAL recipe builds it, with a width multiplier for CPU use.

Module and parameter names follow the recipe (``conv1.conv.weight`` ... ``outconv1.conv.bias``)
so that the recipe's bare ``state_dict`` loads with ``strict=True``. Unpooling restores the
size of the feature map before the matching pooling, so any input of at least 32x32 works,
including sizes not divisible by 32.
"""

from __future__ import annotations

import torch
from torch import nn

from models.labels import NUM_CLASSES

BN_MOMENTUM = 0.9
"""The recipe's ``nn.BatchNorm2d(momentum=0.9)`` (PyTorch semantics: weight of the new batch)."""
MIN_INPUT_SIZE = 32
"""Five 2x2 poolings need at least 32 pixels per side."""

ENCODER_STAGES: tuple[tuple[int, ...], ...] = (
    (64, 64),
    (128, 128),
    (256, 256, 256),
    (512, 512, 512),
    (512, 512, 512),
)
"""Output channels of the conv blocks of each encoder stage at width 1.0 (conv1..conv13)."""
DECODER_STAGES: tuple[tuple[int, ...], ...] = (
    (512, 512, 512),
    (512, 512, 256),
    (256, 256, 128),
    (128, 64),
    (64,),
)
"""Output channels of the conv blocks of each decoder stage at width 1.0 (conv14..conv25);
the last stage ends with ``outconv1`` producing the class scores."""


def scaled_channels(channels: int, width: float) -> int:
    """Channels of a layer at a width multiplier (at least 1)."""
    return max(1, round(channels * width))


class ConvBlock(nn.Module):
    """Conv 3x3 (bias) -> BatchNorm -> ReLU, named ``conv``/``bn``/``relu`` as in the recipe."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.bn = nn.BatchNorm2d(out_channels, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class OutConv(nn.Module):
    """The final plain 3x3 conv (no BN, no ReLU), wrapped so its keys are ``outconv1.conv.*``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class SegNet(nn.Module):
    """SegNet encoder-decoder with pooling-index unpooling; outputs logits (N, classes, H, W)."""

    def __init__(
        self, num_classes: int = NUM_CLASSES, width: float = 1.0, in_channels: int = 3
    ) -> None:
        super().__init__()
        if width <= 0:
            raise ValueError(f"width multiplier must be positive, got {width}")
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}")
        self.num_classes = num_classes
        self.width = width
        index = 1
        channels = in_channels
        for stage, outs in enumerate(ENCODER_STAGES, start=1):
            for out in outs:
                setattr(self, f"conv{index}", ConvBlock(channels, scaled_channels(out, width)))
                channels = scaled_channels(out, width)
                index += 1
            setattr(self, f"down{stage}", nn.MaxPool2d(2, 2, return_indices=True))
        for stage, outs in enumerate(DECODER_STAGES, start=1):
            setattr(self, f"up{stage}", nn.MaxUnpool2d(2, 2))
            for out in outs:
                setattr(self, f"conv{index}", ConvBlock(channels, scaled_channels(out, width)))
                channels = scaled_channels(out, width)
                index += 1
        self.outconv1 = OutConv(channels, num_classes)
        self._stage_sizes = (
            [len(s) for s in ENCODER_STAGES],
            [len(s) for s in DECODER_STAGES],
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The recipe's init: Kaiming normal (ReLU) conv weights, zero biases."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        if height < MIN_INPUT_SIZE or width < MIN_INPUT_SIZE:
            raise ValueError(
                f"SegNet needs inputs of at least {MIN_INPUT_SIZE}x{MIN_INPUT_SIZE}, "
                f"got {height}x{width}"
            )
        encoder_counts, decoder_counts = self._stage_sizes
        index = 1
        pooled: list[tuple[torch.Tensor, torch.Size]] = []
        for stage, count in enumerate(encoder_counts, start=1):
            for _ in range(count):
                x = getattr(self, f"conv{index}")(x)
                index += 1
            size = x.shape
            x, indices = getattr(self, f"down{stage}")(x)
            pooled.append((indices, size))
        for stage, count in enumerate(decoder_counts, start=1):
            indices, size = pooled.pop()
            x = getattr(self, f"up{stage}")(x, indices, output_size=size[-2:])
            for _ in range(count):
                x = getattr(self, f"conv{index}")(x)
                index += 1
        return self.outconv1(x)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (the figure the recipe quotes)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
