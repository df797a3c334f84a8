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


class ETFClassifier(nn.Module):
    """A fixed simplex equiangular tight frame with one learnable scale: logits = s · (W z + b), b = 0.

    The classifier of Zhu et al. (NeurIPS 2021) and Yang et al. (NeurIPS 2022), with the learned
    scale of Hoffer, Hubara & Soudry (ICLR 2018):

        W = sqrt(C / (C − 1)) · (I_C − 11ᵀ/C) · Uᵀ        (C × p),   W Wᵀ = (C/(C − 1)) (I_C − 11ᵀ/C),

    so every row has unit norm and every two rows have cosine −1/(C − 1). U is a p × C matrix with
    orthonormal columns, from the QR factorisation of a float64 Gaussian matrix drawn by a generator of
    its own (seed `FRAME_SEED`), so building the frame draws nothing from torch's global generator.
    `weight` and `bias` are frozen parameters (they keep `nn.Linear`'s names, so the collapse metrics
    and checkpoints see them as before); only `scale` learns. A densifier shrinks the features, and a
    frame of fixed norm could not follow: cross-entropy would then have to grow the very distances the
    densifier shrinks. `scale` lets the logits' size follow instead.

    Parameters
    ----------
    latent_dim : int
        p, the width of the latent code; p ≥ C (U needs C orthonormal columns).
    num_classes : int
        C ≥ 2.
    """

    FRAME_SEED = 0
    # nn.Linear's default init draws W's entries from U(−1/√p, 1/√p), of variance 1/(3p), so a row has
    # E‖w_c‖² = 1/3; the frame's rows have norm 1, so s = 1/√3 starts the logits at the same expected size
    INITIAL_SCALE = 3 ** -0.5

    def __init__(self, latent_dim: int, num_classes: int):
        super().__init__()
        p, C = latent_dim, num_classes
        if C < 2 or p < C:
            raise ValueError(f"ETF_CLASSIFIER needs a latent dimension p >= C and C >= 2 (a simplex ETF of C vectors "
                             f"built from C orthonormal columns), got p = {p}, C = {C}: use ETF_CLASSIFIER=False "
                             "or a model with a wider latent code")
        self.weight = nn.Parameter(simplex_etf(p, C, self.FRAME_SEED).float(), requires_grad=False)  # (C, p)
        self.bias = nn.Parameter(torch.zeros(C), requires_grad=False)
        self.scale = nn.Parameter(torch.tensor(self.INITIAL_SCALE))

    def forward(self, z):
        return self.scale * nn.functional.linear(z, self.weight, self.bias)          # (B, C)


def simplex_etf(p: int, C: int, seed: int) -> torch.Tensor:
    """W = sqrt(C/(C − 1)) (I − 11ᵀ/C) Uᵀ, a (C, p) float64 simplex ETF; U (p, C) orthonormal, from `seed`."""
    g = torch.Generator().manual_seed(seed)
    U, _ = torch.linalg.qr(torch.randn(p, C, generator=g, dtype=torch.float64))   # (p, C), UᵀU = I
    centre = torch.eye(C, dtype=torch.float64) - 1.0 / C                             # I − 11ᵀ/C
    return (C / (C - 1)) ** 0.5 * centre @ U.T


MODELS = {"SimpleCNN_MNIST": SimpleCNN_MNIST, "CNN13": CNN13}


def make_model(name: str, num_classes: int, in_channels: int, etf_classifier: bool = False,
               device=None) -> LatentClassifier:
    """Build a model by name; an unknown name is a ValueError listing the known ones.

    With `etf_classifier`, the learned linear classifier is replaced by an `ETFClassifier` after it was
    built, so that the backbone's initialisation (and every later draw of the global generator) is that
    of the same model without it. With `device`, the model is moved there in channels_last memory format, as
    every training step uses it: measured 1.9× faster training steps and evaluation of SimpleCNN_MNIST on a
    2-core CPU.
    """
    if name not in MODELS:
        raise ValueError(f"unknown MODEL {name!r}; choose one of {sorted(MODELS)}")
    model = MODELS[name](num_classes=num_classes, in_channels=in_channels)
    if etf_classifier:
        model.classifier = ETFClassifier(model.classifier.in_features, num_classes)
    return model if device is None else model.to(device, memory_format=torch.channels_last)


def make_optimizer(model: nn.Module, lr: float, momentum: float, nesterov: bool, weight_decay: float,
                   fused: bool = False) -> torch.optim.SGD:
    """SGD on every parameter; an `ETFClassifier`'s scale in a group of its own without weight decay (decay would
    pull it toward 0, against the features' scale it has to follow). The frozen frame gets no gradient, so SGD,
    weight decay included, never changes it."""
    kw = dict(lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay, **({"fused": True} if fused else {}))
    scale = getattr(model.classifier, "scale", None) if hasattr(model, "classifier") else None
    if scale is None:
        return torch.optim.SGD(model.parameters(), **kw)
    rest = [p for p in model.parameters() if p is not scale]
    return torch.optim.SGD([{"params": rest}, {"params": [scale], "weight_decay": 0.0}], **kw)


def default_device() -> torch.device:
    """CUDA when available, else CPU: the one place that picks a device."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
