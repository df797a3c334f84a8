"""The two CNNs of Hofer et al. (ICML 2020, arXiv 2002.04805), with the latent code exposed.

Every model here has the same three-part interface, so that one forward pass gives both the latent
codes (for the topological loss and the collapse metrics) and the logits:

    z = model.latent(x)          # (B, 128)   last-layer features h_i
    logits = model.classifier(z) # (B, C)     W h + b, with W = model.classifier.weight
    logits = model(x)            # the same, in one call
"""
import torch
from torch import nn

LATENT_DIM = 128  # width of the latent code in both networks


def _conv_bn(c_in, c_out, k=3, padding=1):
    """conv → BatchNorm → LeakyReLU(0.1), the unit both networks are built from."""
    return [nn.Conv2d(c_in, c_out, k, padding=padding), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.1)]


class LatentClassifier(nn.Module):
    """A feature extractor `latent` followed by a linear `classifier`; `forward` is their composition."""

    def __init__(self, latent: nn.Module, num_classes: int):
        super().__init__()
        self.latent = latent
        self.classifier = nn.Linear(LATENT_DIM, num_classes)

    def forward(self, x):
        return self.classifier(self.latent(x))


class SimpleCNN_MNIST(LatentClassifier):
    """Hofer et al.'s MNIST network: four blocks of 3×3 conv → BN → LeakyReLU(0.1) → 2×2 max-pool
    with 8, 32, 64, 128 channels; 28 → 14 → 7 → 3 → 1, so the 128 channels are the latent code.

    Input (B, 1, 28, 28) (or (B, c_in, 28, 28)); latent (B, 128); logits (B, num_classes).
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1):
        layers, c = [], in_channels
        for width in (8, 32, 64, 128):
            layers += _conv_bn(c, width) + [nn.MaxPool2d(2)]
            c = width
        super().__init__(nn.Sequential(*layers, nn.Flatten()), num_classes)


class CNN13(LatentClassifier):
    """The 13-layer CNN of Laine & Aila (ICLR 2017) as used by Hofer et al. for SVHN and CIFAR-10.

    3× conv128 → max-pool → dropout 0.5 → 3× conv256 → max-pool → dropout 0.5 → conv512 (3×3 valid) →
    conv256 (1×1) → conv128 (1×1) → global average pool → 128-d latent → Linear(128, num_classes).
    Input (B, 3, 32, 32): 32 → 16 → 8 → 6 (valid conv) → 1 after pooling.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3):
        layers = (_conv_bn(in_channels, 128) + _conv_bn(128, 128) + _conv_bn(128, 128)
                  + [nn.MaxPool2d(2), nn.Dropout(0.5)]
                  + _conv_bn(128, 256) + _conv_bn(256, 256) + _conv_bn(256, 256)
                  + [nn.MaxPool2d(2), nn.Dropout(0.5)]
                  + _conv_bn(256, 512, padding=0) + _conv_bn(512, 256, k=1, padding=0)
                  + _conv_bn(256, LATENT_DIM, k=1, padding=0)
                  + [GlobalAvgPool()])
        super().__init__(nn.Sequential(*layers), num_classes)


class GlobalAvgPool(nn.Module):
    """(B, C, H, W) → (B, C): the mean over the spatial dims. Written as a mean rather than
    `AdaptiveAvgPool2d(1)` because that one's CUDA backward has no deterministic implementation, so
    `torch.use_deterministic_algorithms(True)` would refuse it."""

    def forward(self, x):
        return x.mean(dim=(2, 3))


MODELS = {"SimpleCNN_MNIST": SimpleCNN_MNIST, "CNN13": CNN13}


def make_model(name: str, num_classes: int, in_channels: int) -> LatentClassifier:
    """Build a model by name; an unknown name is a ValueError listing the known ones."""
    if name not in MODELS:
        raise ValueError(f"unknown MODEL {name!r}; choose one of {sorted(MODELS)}")
    return MODELS[name](num_classes=num_classes, in_channels=in_channels)


def default_device() -> torch.device:
    """CUDA when available, else CPU: the one place that picks a device."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
