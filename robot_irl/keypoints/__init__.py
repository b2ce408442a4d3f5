"""Keypoints from video with OpenCV: detect, track, calibrate, lift to 3D, clean.

Entry points: :func:`extract_video` (video → :class:`KeypointTrack`), :func:`clean` (offline),
:class:`KalmanCV` (online), :func:`calibrate_charuco` (intrinsics), :func:`camera_to_base` /
:func:`hand_eye_episodes` (extrinsics from a marker on the end effector), :func:`extract_two_cameras`
(triangulation from two views). notes/keypoints.md has the API and figures.
"""
from robot_irl.keypoints.calibrate import BoardSpec, Calibration, calibrate_charuco
from robot_irl.keypoints.detectors import ArucoDetector, BlobDetector, Detection, Detector, Frame, refine_edges
from robot_irl.keypoints.filtering import KalmanCV, clean
from robot_irl.keypoints.flow import FlowBridge
from robot_irl.keypoints.geometry import (SquarePoseSolver, camera_to_base, marker_corners_link, ray_plane,
                                          triangulate, undistort_points)
from robot_irl.keypoints.handeye import HandEyeResult, hand_eye_episodes
from robot_irl.keypoints.multiview import extract_two_cameras, fuse_tracks
from robot_irl.keypoints.pipeline import ExtractConfig, NoDetectionsError, extract_video, table_heights
from robot_irl.keypoints.track import SOURCES, STATUS, KeypointTrack

__all__ = ["ArucoDetector", "BlobDetector", "BoardSpec", "Calibration", "Detection", "Detector", "ExtractConfig",
           "FlowBridge", "Frame", "HandEyeResult", "KalmanCV", "KeypointTrack", "NoDetectionsError", "SOURCES",
           "STATUS", "SquarePoseSolver", "calibrate_charuco", "camera_to_base", "clean", "extract_two_cameras",
           "extract_video", "fuse_tracks", "hand_eye_episodes", "marker_corners_link", "ray_plane", "refine_edges",
           "table_heights", "triangulate", "undistort_points"]
