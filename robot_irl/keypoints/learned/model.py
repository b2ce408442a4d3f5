"""A Transporter-style keypoint detector (Kulkarni et al. 2019), small enough for a CPU.

Three small conv nets on a frame: ``features`` (appearance, Φ), ``keypointer`` (K heat maps, Ψ) and
a ``decoder``. Each heat map goes through a spatial softmax; its centre of mass is a keypoint, its
mass near that centre (peak) and its standard deviation (spread) say how sure it is. Training
"transports" appearance: the target frame's features are pasted into the source frame's feature
map at the target's keypoints (and erased at both frames' keypoints), and the decoder must rebuild
the target frame from that. The only way to do so is for the keypoints to sit on what moved
between the two frames, so they land on the arm and the object without any label.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class DetectorConfig:
    """Shape of the detector. ``width`` / ``height``: input size in pixels (the height follows the
    training frames' aspect); ``channels``: base width of the conv nets; ``sigma``: std of the
    Gaussian drawn at each keypoint, as a fraction of the feature map's width (the window of features a
    keypoint pastes: wide windows can tile a part that turns in place without following it, so a
    turning part wants small ones, 0.03 on the real clip); ``context``: dilated
    blocks (dilation 2, 4, ...) added to the keypointer, each widening what one heat-map cell sees
    (19 input pixels with none, 35 / 67 / 131 / 259 with 1 / 2 / 3 / 4). A part that is told from its
    look-alikes only by its surroundings (a mark beside one of three like holes) needs the wider view.
    ``members``: detectors of this shape trained apart (seeds ``seed``, ``seed + 1``, ...), their
    ``k`` keypoints each side by side (:class:`KeypointEnsemble`, ``k * members`` in all). On a part
    with look-alikes each detector settles its keypoints on its own pieces of it; a linear read-out
    of two such sets is finer than of one set twice as large (the real clip: K 24 alone 9.7-12.3 px
    over five seeds, two of them 5.9-7.1 px over all ten pairs; one K 32 detector: 13.1 px)."""

    k: int = 8
    width: int = 64
    height: int = 48
    channels: int = 16
    sigma: float = 0.06
    context: int = 0
    members: int = 1

    @property
    def total_k(self) -> int:
        """Keypoints the detector puts out: ``k`` per member."""
        return self.k * self.members

    def to_dict(self) -> dict:
        return asdict(self)


def _block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def _dilated(c: int, dilation: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c, c, 3, 1, dilation, dilation=dilation), nn.BatchNorm2d(c), nn.ReLU(inplace=True))


def _encoder(c: int, cout: int, context: int = 0) -> nn.Sequential:
    """Frame → maps at a quarter of its size (strided first: a CPU trains it in minutes), with
    ``context`` dilated blocks before the last layer."""
    return nn.Sequential(_block(3, c, 2), _block(c, 2 * c, 1), _block(2 * c, 2 * c, 2), _block(2 * c, 2 * c, 1),
                         *(_dilated(2 * c, 2 ** (i + 1)) for i in range(context)), nn.Conv2d(2 * c, cout, 1))


class KeypointNet(nn.Module):
    def __init__(self, cfg: DetectorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c = cfg.channels
        self.features = _encoder(c, 2 * c)
        self.keypointer = _encoder(c, cfg.k, cfg.context)
        self.decoder = nn.Sequential(_block(2 * c, 2 * c, 1), nn.Upsample(scale_factor=2), _block(2 * c, c, 1),
                                     nn.Upsample(scale_factor=2), nn.Conv2d(c, 3, 3, 1, 1))

    def keypoints(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x [B, 3, H, W]`` in 0..1 → ``mu [B, K, 2]`` (x, y) in -1..1, ``peak [B, K]`` (softmax
        mass within one Gaussian radius of the centre) and ``spread [B, K]`` (std, same units)."""
        logits = self.keypointer(_normalise(x))
        B, K, h, w = logits.shape
        prob = F.softmax(logits.reshape(B, K, -1), dim=-1).reshape(B, K, h, w)
        gx, gy = _grid(h, w, x.device)
        mx = (prob.sum(2) * gx).sum(-1)
        my = (prob.sum(3) * gy).sum(-1)
        d2 = (gx[None, None, None, :] - mx[..., None, None]) ** 2 + (gy[None, None, :, None] - my[..., None, None]) ** 2
        spread = (prob * d2).sum((2, 3)).clamp_min(1e-12).sqrt()
        radius = 2.0 * self.cfg.sigma * 2.0   # sigma is a fraction of the width; the grid spans 2
        peak = (prob * (d2 <= radius ** 2)).sum((2, 3))
        return torch.stack([mx, my], -1), peak, spread

    def heatmaps(self, mu: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """Gaussian maps ``[B, K, h, w]`` centred on ``mu``."""
        gx, gy = _grid(h, w, mu.device)
        s = 2.0 * self.cfg.sigma
        dx = (gx[None, None, None, :] - mu[..., 0, None, None]) ** 2
        dy = (gy[None, None, :, None] - mu[..., 1, None, None]) ** 2
        return torch.exp(-(dx + dy) / (2 * s * s))

    def forward(self, source: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rebuild ``target`` from ``source`` with the target's keypoints; returns the
        reconstruction and the target keypoints."""
        both = torch.cat([source, target])
        feats = self.features(_normalise(both))
        mu, _, _ = self.keypoints(both)
        B = source.shape[0]
        h, w = feats.shape[-2:]
        maps = self.heatmaps(mu, h, w)
        ms, mt = maps[:B], maps[B:]
        fs, ft = feats[:B], feats[B:]
        keep = (1 - ms.amax(1, keepdim=True)) * (1 - mt.amax(1, keepdim=True))
        transported = fs * keep + ft * mt.amax(1, keepdim=True)
        return torch.sigmoid(self.decoder(transported)), mu[B:]


class KeypointEnsemble(nn.Module):
    """``cfg.members`` :class:`KeypointNet` s, each trained on its own (:func:`.train.train_detector`),
    read as one detector: member ``m``'s keypoints are numbers ``m * k .. (m + 1) * k - 1``."""

    def __init__(self, cfg: DetectorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.members = nn.ModuleList(KeypointNet(cfg) for _ in range(cfg.members))

    def keypoints(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """As :meth:`KeypointNet.keypoints`, the members' keypoints concatenated: ``mu [B, k * members, 2]``."""
        out = [m.keypoints(x) for m in self.members]
        return tuple(torch.cat(parts, 1) for parts in zip(*out))


def _grid(h: int, w: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Cell centres in -1..1 along x (``w``) and y (``h``)."""
    return (torch.linspace(-1 + 1 / w, 1 - 1 / w, w, device=device),
            torch.linspace(-1 + 1 / h, 1 - 1 / h, h, device=device))


def _normalise(x: torch.Tensor) -> torch.Tensor:
    return (x - 0.5) / 0.25
