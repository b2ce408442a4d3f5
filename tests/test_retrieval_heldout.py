"""CLIP measured on what it has not seen: two held-out episodes per variant, and the non-learned
image baselines (colour histogram, raw pixels) on the same crop (robot_irl.retrieval.library_clip)."""
import numpy as np

from robot_irl.retrieval.captions import CaptionFacts
from robot_irl.retrieval.library_clip import EpisodeFrames, _held_out, pixel_baselines


def _episode(i: int, colour: str, rgb, rng) -> EpisodeFrames:
    px = np.clip(np.array(rgb)[None, None, None] + rng.normal(0, 8, (3, 32, 32, 3)), 0, 255).astype(np.uint8)
    return EpisodeFrames(episode_id=f"ep{i:02d}", facts=CaptionFacts("place", "cube", colour, "left"),
                         keyframes=np.arange(3), keyframe_pixels=px, train_pixels=px, train_phases=[None] * 3,
                         probes=px, probe_middle=1)


def test_two_held_out_per_variant_and_baselines_on_held_out_only():
    rng = np.random.default_rng(0)
    eps = [_episode(i, c, rgb, rng) for c, rgb in (("red", (200, 30, 30)), ("blue", (30, 30, 200)))
           for i in range(4 * (c == "blue"), 4 * (c == "blue") + 4)]
    held = _held_out(None, eps, None, per_variant=2)
    assert held == {"ep02", "ep03", "ep06", "ep07"}                       # the two newest of each variant
    assert _held_out(None, eps[:2], None, per_variant=2) == set()         # a variant needs a training episode
    base = pixel_baselines(eps, held, held_only=True)
    assert base["hist_image_recall1"] == 1.0 and base["pixel_image_recall1"] == 1.0   # colour tells them apart
    # same colour for both variants (different goal): pixels cannot tell them apart -> about chance
    same = [EpisodeFrames(**{**e.__dict__, "facts": CaptionFacts("place", "cube", "red", g)})
            for e, g in zip([_episode(i, "red", (200, 30, 30), rng) for i in range(8)], ["left"] * 4 + ["right"] * 4)]
    low = pixel_baselines(same, _held_out(None, same, None, per_variant=2), held_only=True)
    assert low["hist_image_recall1"] <= 0.75
