"""Train the learned keypoint detector on a :class:`FrameSet` and write its model folder.

The folder is a run folder (``robot_irl.runs.RunDir``): ``config.json`` (detector shape, training
settings, the frames it saw), ``detector.pt`` (weights), ``metrics.json`` (final loss, minutes),
``tb/`` (loss curve, frames with the keypoints drawn) and ``plots/keypoints.png``.

Augmentations are what a real camera does to a scene between takes: colour (gain per channel,
brightness, contrast), small shifts and blur. Each pair (source, target) gets one draw, applied to
both frames, so the only difference the decoder has to explain is what moved.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from robot_irl.errors import InputError
from robot_irl.keypoints.learned.frames import FrameSet
from robot_irl.runs import RunDir

WEIGHTS = "detector.pt"
KIND = "learned-keypoints"
MAX_MEMBERS = 8


@dataclass
class TrainConfig:
    """Training settings. ``max_gap``: largest frame distance between source and target (0: any
    two frames of one episode); ``shift``: largest shift in pixels at the input size."""

    steps: int = 1500
    batch: int = 16
    lr: float = 2e-3
    max_gap: int = 0
    seed: int = 0
    color_jitter: float = 0.15
    shift: int = 2
    blur_prob: float = 0.3
    image_every: int = 250
    threads: int = 1   # torch CPU threads (1: on a shared CPU more threads spin against each other; 0: torch default)

    def __post_init__(self) -> None:
        for name in ("steps", "batch"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise InputError(f"{name} = {getattr(self, name)!r}", field=name, expected="an integer >= 1")
        if not self.lr > 0:
            raise InputError(f"lr = {self.lr!r}", field="lr", expected="a number > 0")


def _pairs(frames: FrameSet, n: int, max_gap: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` (source, target) index pairs, both from one sequence, at most ``max_gap`` apart."""
    starts = np.flatnonzero(np.r_[True, frames.sequence[1:] != frames.sequence[:-1]])
    ends = np.r_[starts[1:], len(frames)]
    ok = np.flatnonzero(ends - starts >= 2)
    seq = rng.choice(ok, n)
    lo, hi = starts[seq], ends[seq]
    src = rng.integers(lo, hi)
    gap = np.where(max_gap > 0, max_gap, hi - lo)
    tgt_lo, tgt_hi = np.maximum(lo, src - gap), np.minimum(hi, src + gap + 1)
    tgt = rng.integers(tgt_lo, tgt_hi)
    same = tgt == src
    tgt[same] = np.where(src[same] + 1 < hi[same], src[same] + 1, src[same] - 1)
    return src, tgt


def augment(x: "torch.Tensor", cfg: TrainConfig, gen: "torch.Generator") -> "torch.Tensor":
    """``x [2, B, 3, H, W]`` (source and target stacked): one colour / shift / blur draw per pair."""
    import torch
    from torch.nn import functional as F
    _, B, _, H, W = x.shape
    j = cfg.color_jitter
    gain = 1 + j * (2 * torch.rand(B, 3, 1, 1, generator=gen) - 1)
    bright = j * (2 * torch.rand(B, 1, 1, 1, generator=gen) - 1)
    contrast = 1 + j * (2 * torch.rand(B, 1, 1, 1, generator=gen) - 1)
    mean = x.mean((2, 3, 4), keepdim=True)
    x = ((x - mean) * contrast + mean) * gain + bright
    if cfg.shift > 0:
        d = torch.randint(-cfg.shift, cfg.shift + 1, (B, 2), generator=gen).float()
        theta = torch.zeros(B, 2, 3)
        theta[:, 0, 0] = theta[:, 1, 1] = 1
        theta[:, 0, 2] = 2 * d[:, 0] / W
        theta[:, 1, 2] = 2 * d[:, 1] / H
        grid = F.affine_grid(theta, (B, 3, H, W), align_corners=False)
        x = torch.stack([F.grid_sample(x[i], grid, padding_mode="border", align_corners=False) for i in range(2)])
    if cfg.blur_prob > 0:
        k = torch.tensor([1.0, 2.0, 1.0])
        k = (k[:, None] * k[None, :] / 16).expand(3, 1, 3, 3)
        blurred = torch.stack([F.conv2d(F.pad(x[i], (1, 1, 1, 1), mode="replicate"), k, groups=3) for i in range(2)])
        pick = (torch.rand(B, generator=gen) < cfg.blur_prob).float()[None, :, None, None, None]
        x = pick * blurred + (1 - pick) * x
    return x.clamp(0, 1)


def to_tensor(images: np.ndarray) -> "torch.Tensor":
    import torch
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)


def draw_keypoints(images: np.ndarray, uv: np.ndarray, scale: int = 3) -> np.ndarray:
    """Frames ``[N, H, W, 3]`` upscaled, a coloured numbered dot at each keypoint ``uv [N, K, 2]``
    (input pixels): the picture TensorBoard and the report show."""
    import cv2
    import matplotlib
    colours = (np.asarray(matplotlib.colormaps["tab10"].colors) * 255).astype(int)
    out = []
    for img, pts in zip(images, uv):
        big = cv2.resize(img, (img.shape[1] * scale, img.shape[0] * scale), interpolation=cv2.INTER_NEAREST)
        for k, (u, v) in enumerate(pts):
            if np.all(np.isfinite((u, v))):
                c = tuple(int(x) for x in colours[k % len(colours)])
                centre = (int(round((u + 0.5) * scale - 0.5)), int(round((v + 0.5) * scale - 0.5)))
                cv2.circle(big, centre, 3, c, -1)
                cv2.putText(big, str(k), (centre[0] + 4, centre[1] - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.35, c, 1)
        out.append(big)
    return np.stack(out)


def train_detector(frames: FrameSet, out: str | Path, *, k: int = 8, channels: int = 16, sigma: float = 0.06,
                   context: int = 0, members: int = 1, config: TrainConfig | None = None,
                   provenance: dict | None = None, progress: bool = True, force: bool = False) -> RunDir:
    """Train a detector with ``k`` keypoints (per member: ``members`` detectors trained one after
    the other, seeds ``config.seed``, ``+ 1``, ...) on ``frames`` and write the model folder ``out``."""
    import torch

    from robot_irl.keypoints.learned.model import DetectorConfig
    cfg = config or TrainConfig()
    if not isinstance(k, int) or k < 1:
        raise InputError(f"k = {k!r}", field="--k", expected="an integer >= 1")
    if not isinstance(context, int) or not 0 <= context <= 4:
        raise InputError(f"context = {context!r}", field="--context", expected="an integer from 0 to 4")
    if not 0.005 <= sigma <= 0.25:
        raise InputError(f"sigma = {sigma!r}", field="--sigma",
                         expected="a fraction of the input width from 0.005 to 0.25 (default 0.06)")
    if not isinstance(members, int) or not 1 <= members <= MAX_MEMBERS:
        raise InputError(f"members = {members!r}", field="--members", expected=f"an integer from 1 to {MAX_MEMBERS}")
    frames.check_trainable((provenance or {}).get("demos", "frames"))
    run = RunDir.claim(out, force=force)
    H, W = frames.images.shape[1:3]
    det = DetectorConfig(k=k, width=W, height=H, channels=channels, sigma=sigma, context=context, members=members)
    run.begin(what="keypoint detector training", resume="robot-irl keypoints train ... --force (start again)",
              clear=force)
    RunDir.create(run.path, {"detector": det.to_dict(), "train": asdict(cfg), "source_size": list(frames.source_size),
                             "crop": None if frames.crop is None else frames.crop.to_list(),
                             "frames": len(frames), "sequences": frames.ids, **(provenance or {})}, kind=KIND)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    from torch.utils.tensorboard import SummaryWriter
    writer = SummaryWriter(str(run.tb_dir))
    images = to_tensor(frames.images)
    t0, states, curves = time.perf_counter(), [], []
    for m in range(members):
        tag = "" if members == 1 else f"member{m}/"
        net, losses = _train_member(frames, images, det, cfg, cfg.seed + m, writer, tag, progress)
        states.append(net.state_dict())
        curves.append(losses)
    writer.close()
    minutes = (time.perf_counter() - t0) / 60.0
    torch.save({"config": det.to_dict(), "states": states}, run.path / ".detector.pt.tmp")
    (run.path / ".detector.pt.tmp").replace(run.path / WEIGHTS)
    _plot_loss(curves, run.plots_dir / "loss.png")
    run.update_metrics(loss_final=float(np.mean([c[-50:] for c in curves])),
                       loss_first=float(np.mean([c[:50] for c in curves])),
                       train_minutes=minutes, steps=cfg.steps, members=members, frames=len(frames))
    run.finish()
    return run


def _train_member(frames: FrameSet, images: "torch.Tensor", det, cfg: TrainConfig, seed: int, writer, tag: str,
                  progress: bool) -> tuple["torch.nn.Module", list[float]]:
    """One Transporter training from ``seed`` (init, pairs, augmentations): the whole loop of a
    one-member detector, so a member trained from seed s equals a lone detector trained with seed s.
    ``images``: ``frames`` as a tensor."""
    import torch
    from tqdm import tqdm

    from robot_irl.keypoints.learned.model import KeypointNet
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    net = KeypointNet(det)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.1)
    show = images[np.linspace(0, len(images) - 1, 6).round().astype(int)]
    losses: list[float] = []
    bar = tqdm(range(cfg.steps), desc=f"keypoints train {tag}".rstrip("/ "), disable=not progress, unit="step")
    net.train()
    for step in bar:
        src, tgt = _pairs(frames, cfg.batch, cfg.max_gap, rng)
        pair = augment(torch.stack([images[src], images[tgt]]), cfg, gen)
        recon, _ = net(pair[0], pair[1])
        loss = torch.nn.functional.mse_loss(recon, pair[1])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        writer.add_scalar(f"{tag}loss/reconstruction", losses[-1], step)
        if progress and step % 20 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
        if (step + 1) % cfg.image_every == 0 or step + 1 == cfg.steps:
            _log_images(net, show, writer, step, tag)
            net.train()
    net.eval()
    return net, losses


def _log_images(net, show, writer, step: int, tag: str = "") -> None:
    import torch
    net.eval()
    with torch.no_grad():
        mu, _, _ = net.keypoints(show)
    H, W = show.shape[-2:]
    uv = to_pixels(mu.numpy(), (W, H))
    imgs = (show.permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)
    grid = np.concatenate(list(draw_keypoints(imgs, uv)), axis=1)
    writer.add_image(f"{tag}keypoints", grid, step, dataformats="HWC")


def to_pixels(mu: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Normalised centres (-1..1) → pixels of an image of ``size`` (W, H), OpenCV pixel centres."""
    w, h = size
    return np.stack([(mu[..., 0] + 1) / 2 * w - 0.5, (mu[..., 1] + 1) / 2 * h - 0.5], -1)


def _plot_loss(curves: list[list[float]], path: Path) -> None:
    """One reconstruction curve per member."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3))
    for m, losses in enumerate(curves):
        ax.plot(losses, lw=0.6, label=f"member {m}")
    if len(curves) > 1:
        ax.legend()
    ax.set_xlabel("step")
    ax.set_ylabel("reconstruction MSE")
    ax.set_yscale("log")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
