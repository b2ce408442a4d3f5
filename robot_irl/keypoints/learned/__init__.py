"""Keypoints without markers: a small self-supervised detector (Transporter-style) trained on the
library's own video, applied like the marker detectors (same :class:`KeypointTrack`).

torch is imported only inside the functions that need it, so the CLI checks inputs first.
Entry points: :func:`train_detector`, :class:`LearnedDetector`, :func:`extract_learned`,
:func:`keypoint_report`; notes/keypoints.md ("Learned keypoints") has the figures.
"""
from robot_irl.keypoints.learned.detector import LearnedDetector, extract_learned
from robot_irl.keypoints.learned.frames import FrameSet, library_frames, sequence_frames
from robot_irl.keypoints.learned.probe import keypoint_report, probe_errors
from robot_irl.keypoints.learned.train import TrainConfig, train_detector

__all__ = ["FrameSet", "LearnedDetector", "TrainConfig", "extract_learned", "keypoint_report", "library_frames",
           "probe_errors", "sequence_frames", "train_detector"]
