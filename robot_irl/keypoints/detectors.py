"""Per-frame keypoint detectors behind one small interface.

A detector covers some keypoints of a :class:`~robot_irl.core.spec.KeypointSpec` and, given a
frame, returns what it found for each of them. Which detector serves which keypoint comes from the
spec's feature (a :class:`Marker` → :class:`ArucoDetector`, a :class:`Blob` → :class:`BlobDetector`),
so extracted keypoints carry the spec's names. Lucas–Kanade bridging lives in ``flow.py``.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from robot_irl.core.spec import Blob, KeypointDef, Marker
from robot_irl.errors import InputError, UnknownNameError
from robot_irl.keypoints.track import SRC_ARUCO, SRC_BLOB


class Frame:
    """One BGR image with its grey and HSV versions computed once, on first use."""

    __slots__ = ("bgr", "_gray", "_hsv")

    def __init__(self, bgr: np.ndarray, gray: np.ndarray | None = None) -> None:
        if bgr.ndim == 2:
            gray = bgr if gray is None else gray
            bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
        self.bgr = bgr
        self._gray: np.ndarray | None = gray
        self._hsv: np.ndarray | None = None

    @property
    def gray(self) -> np.ndarray:
        if self._gray is None:
            self._gray = cv2.cvtColor(self.bgr, cv2.COLOR_BGR2GRAY)
        return self._gray

    @property
    def hsv(self) -> np.ndarray:
        if self._hsv is None:
            self._hsv = cv2.cvtColor(self.bgr, cv2.COLOR_BGR2HSV)
        return self._hsv


@dataclass
class Detection:
    """What a detector saw of one keypoint in one frame. ``corners`` (ArUco order, pixels) for
    markers; ``radius`` (pixels) for blobs, used by flow to size its window."""

    uv: np.ndarray
    confidence: float
    source: int
    corners: np.ndarray | None = None
    radius: float | None = None


class Detector(Protocol):
    name: str
    keypoints: tuple[str, ...]

    def detect(self, frame: Frame) -> dict[str, Detection]:
        """Detections for the keypoints it covers that it found in this frame."""
        ...


def quad_centre(c: np.ndarray) -> np.ndarray:
    """Where a square's centre projects: the diagonals' intersection (not the corners' mean,
    which perspective pulls towards the near side)."""
    p, r = c[0], c[2] - c[0]
    q, s = c[1], c[3] - c[1]
    den = r[0] * s[1] - r[1] * s[0]
    if abs(den) < 1e-12:
        return c.mean(axis=0)
    t = ((q[0] - p[0]) * s[1] - (q[1] - p[1]) * s[0]) / den
    return p + t * r


REFINE = {"subpix": cv2.aruco.CORNER_REFINE_SUBPIX, "apriltag": cv2.aruco.CORNER_REFINE_APRILTAG,
          "contour": cv2.aruco.CORNER_REFINE_CONTOUR, "none": cv2.aruco.CORNER_REFINE_NONE}


def refine_edges(gray: np.ndarray, corners: np.ndarray, cells: int, iterations: int = 2) -> np.ndarray:
    """Corners as intersections of the four border lines, each a gradient-weighted line fit.

    OpenCV's corner refinements look at a window around each corner; at 15–30 px markers that
    window spans the inner bits and the corner of a blurred or aliased L-junction is biased
    inwards. Every pixel along an edge (the middle 70 % of each side) instead votes for the edge
    line with the gradient across it, only where the image gets darker going inside (the
    printed square's outer border), so inner bits and the plate's rim do not pull.
    """
    c = np.asarray(corners, np.float64).reshape(4, 2)
    h_img, w_img = gray.shape[:2]
    x0, y0 = np.maximum(np.floor(c.min(0)).astype(int) - 4, 0)
    x1, y1 = np.minimum(np.ceil(c.max(0)).astype(int) + 5, [w_img, h_img])
    if x1 - x0 < 4 or y1 - y0 < 4:
        return c
    roi = gray[y0:y1, x0:x1].astype(np.float32)
    gx = cv2.Sobel(roi, cv2.CV_32F, 1, 0, ksize=3).ravel()
    gy = cv2.Sobel(roi, cv2.CV_32F, 0, 1, ksize=3).ravel()
    ys, xs = np.mgrid[y0:y1, x0:x1]
    P = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)
    for _ in range(iterations):
        centre = c.mean(0)
        lines = []
        for i in range(4):
            a, b = c[i], c[(i + 1) % 4]
            L = float(np.linalg.norm(b - a))
            d = (b - a) / max(L, 1e-9)
            n = np.array([d[1], -d[0]])
            if n @ (a - centre) < 0:
                n = -n
            half_band = float(np.clip(0.5 * L / cells, 1.0, 3.0))
            rel = P - a
            s, t = rel @ d, rel @ n
            band = (s > 0.15 * L) & (s < 0.85 * L) & (np.abs(t) < half_band)
            w = np.clip(gx[band] * n[0] + gy[band] * n[1], 0.0, None)
            if w.sum() <= 0 or band.sum() < 3:
                return np.asarray(corners, np.float64).reshape(4, 2)
            p = P[band]
            m = (w[:, None] * p).sum(0) / w.sum()
            q = p - m
            cov = (w[:, None, None] * q[:, :, None] * q[:, None, :]).sum(0)
            lines.append((m, np.linalg.eigh(cov)[1][:, 1]))
        new = np.empty_like(c)
        for i in range(4):
            (m1, d1), (m2, d2) = lines[i - 1], lines[i]
            A = np.stack([d1, -d2], axis=1)
            if abs(np.linalg.det(A)) < 1e-9:
                return np.asarray(corners, np.float64).reshape(4, 2)
            k = np.linalg.solve(A, m2 - m1)
            new[i] = m1 + k[0] * d1
        if np.abs(new - c).max() > 3.0:  # the fit ran off: keep OpenCV's corners
            return np.asarray(corners, np.float64).reshape(4, 2)
        c = new
    return c


class MarkerTemplate:
    """A marker's printed pattern (with its one-cell quiet zone) for whole-marker alignment."""

    def __init__(self, marker: Marker, cell_px: int = 4) -> None:
        d = aruco_dictionary(marker.dictionary)
        cells = d.markerSize + 2
        img = cv2.aruco.generateImageMarker(d, marker.id, cells * cell_px, borderBits=1)
        q = cell_px
        self.image = cv2.copyMakeBorder(img, q, q, q, q, cv2.BORDER_CONSTANT, value=255).astype(np.float32)
        a, b = q - 0.5, q + cells * cell_px - 0.5
        self.corners = np.float32([[a, a], [b, a], [b, b], [a, b]])


_ECC_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 1e-3)


def refine_template(gray: np.ndarray, corners: np.ndarray, template: MarkerTemplate) -> np.ndarray:
    """Corners from aligning the marker's known pattern to the image (ECC, homography).

    Edge and corner fits see only the outer border; on an aliased render of an upright marker
    every border edge falls on a pixel boundary and carries ±0.5 px of quantisation. The bit
    pattern's inner edges sit at other sub-pixel phases, so matching the whole pattern averages
    that out (sim renders: median corner error 0.43 → 0.22 px). On anti-aliased or blurred
    images (real lenses) it carries a ~0.5 % scale bias (≈ 2–4 mm depth at 0.7 m) that the edge
    fit does not have; there prefer ``refine_edges`` (``corner_fit="edges"``). Falls back to the
    input corners if ECC does not converge or moves a corner by more than 3 px.
    """
    c = np.asarray(corners, np.float64).reshape(4, 2)
    found = _ecc_align(gray, c, template, margin=8, max_move=3.0, blur=1)
    return c if found is None else found[1]


def _ecc_align(gray: np.ndarray, c: np.ndarray, template: MarkerTemplate, *, margin: int, max_move: float,
               blur: int) -> tuple[float, np.ndarray] | None:
    """ECC homography of ``template`` onto ``gray`` around corners ``c [4, 2]`` (a ``margin`` px
    window): (correlation, corners), or None when ECC fails or moves a corner more than ``max_move``."""
    h_img, w_img = gray.shape[:2]
    x0, y0 = np.maximum(np.floor(c.min(0)).astype(int) - margin, 0)
    x1, y1 = np.minimum(np.ceil(c.max(0)).astype(int) + margin + 1, [w_img, h_img])
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    roi = gray[y0:y1, x0:x1].astype(np.float32)
    H = cv2.getPerspectiveTransform(template.corners, (c - [x0, y0]).astype(np.float32))
    try:
        cc, H = cv2.findTransformECC(template.image, roi, H.astype(np.float32), cv2.MOTION_HOMOGRAPHY,
                                     _ECC_CRITERIA, None, blur)
    except cv2.error:
        return None
    out = cv2.perspectiveTransform(template.corners.reshape(-1, 1, 2), H).reshape(4, 2).astype(np.float64) + [x0, y0]
    if not np.isfinite(out).all() or np.abs(out - c).max() > max_move:
        return None
    return float(cc), out


def align_template(gray: np.ndarray, corners: np.ndarray, template: MarkerTemplate,
                   max_move: float) -> tuple[float, np.ndarray]:
    """(ECC correlation, corners) of the marker's pattern aligned to the image from a guess (e.g.
    corners flow carried): how much the image there still looks like this marker, and where
    exactly it is. Correlation 0 when ECC fails or moves a corner more than ``max_move`` px."""
    c = np.asarray(corners, np.float64).reshape(4, 2)
    found = _ecc_align(gray, c, template, margin=int(max_move) + 8, max_move=max_move, blur=3)
    return (0.0, c) if found is None else found


def aruco_dictionary(name: str) -> cv2.aruco.Dictionary:
    code = getattr(cv2.aruco, name, None)
    if not name.startswith("DICT_") or not isinstance(code, int):
        raise UnknownNameError("ArUco dictionary", name, [d for d in dir(cv2.aruco) if d.startswith("DICT_")])
    return cv2.aruco.getPredefinedDictionary(code)


def aruco_parameters(refine: str) -> cv2.aruco.DetectorParameters:
    if refine not in REFINE:
        raise UnknownNameError("corner refinement", refine, REFINE)
    p = cv2.aruco.DetectorParameters()
    p.cornerRefinementMethod = REFINE[refine]
    # Small markers (a 4 cm marker is ~17 px at 1 m): a 5 px window would straddle the inner bits.
    p.cornerRefinementWinSize = 4
    p.cornerRefinementMaxIterations = 50
    p.cornerRefinementMinAccuracy = 0.01
    # Read bits from 8×8 px per cell with a 20 % margin: decodes markers down to ~2 px per cell
    # (a 3 cm marker at 1 m), 6 → 19 of 30 far sim frames; costs nothing measurable.
    p.perspectiveRemovePixelPerCell = 8
    p.perspectiveRemoveIgnoredMarginPerCell = 0.2
    return p


class ArucoDetector:
    """ArUco / AprilTag markers via ``cv2.aruco.ArucoDetector``, one per dictionary in use.

    ``refine="subpix"`` suits live use; ``"apriltag"`` is slower and meant for offline runs. The
    AprilTag refinement reports corners +0.5 px in x and y against OpenCV's pixel-centre
    convention; that shift is removed here so both methods agree with ``projectPoints``.
    Confidence grows with the marker's size in pixels (corner precision does too).
    """

    name = "aruco"
    APRILTAG_SHIFT = 0.5

    ROI_MARGIN = 16.0  # px around a predicted marker; ≥ half the largest adaptive-threshold window (23)

    def __init__(self, keypoints: list[KeypointDef], refine: str = "subpix", *, roi: bool = True) -> None:
        self.refine, self.roi = refine, roi
        self._last: dict[str, np.ndarray] = {}
        self._prev: dict[str, np.ndarray] = {}
        self.keypoints = tuple(k.name for k in keypoints)
        params = aruco_parameters(refine)
        self._by_dict: dict[str, dict[int, str]] = {}
        for k in keypoints:
            if not isinstance(k.feature, Marker):
                raise InputError(f"keypoint '{k.name}' has no marker", field=f"{k.name}.feature", expected="a marker")
            self._by_dict.setdefault(k.feature.dictionary, {})[k.feature.id] = k.name
        self._detectors = {d: cv2.aruco.ArucoDetector(aruco_dictionary(d), params) for d in self._by_dict}
        self._dict_of = {n: d for d, ids in self._by_dict.items() for n in ids.values()}
        self._cells = {n: aruco_dictionary(d).markerSize + 2 for n, d in self._dict_of.items()}
        self._min_perimeter_rate = params.minMarkerPerimeterRate
        self._win_params = aruco_parameters(refine)
        self._win_detectors = {d: cv2.aruco.ArucoDetector(aruco_dictionary(d), self._win_params) for d in self._by_dict}

    def _detect_windows(self, gray: np.ndarray) -> dict[str, np.ndarray] | None:
        """Each marker searched in a window around its constant-velocity prediction (the margin
        covers the adaptive threshold's window, so the marker's border is thresholded as in the
        full frame); None when some marker was not seen last frame or is not found in its window."""
        if len(self._last) < len(self.keypoints):
            return None
        h, w = gray.shape[:2]
        out: dict[str, np.ndarray] = {}
        for name, c in self._last.items():
            prev = self._prev.get(name)
            shift = c.mean(0) - prev.mean(0) if prev is not None else np.zeros(2)
            pred = c + shift
            lo, hi = pred.min(0), pred.max(0)
            side = float((hi - lo).max())
            m = 0.5 * side + float(np.abs(shift).max()) + self.ROI_MARGIN
            x0, y0 = max(int(lo[0] - m), 0), max(int(lo[1] - m), 0)
            x1, y1 = min(int(hi[0] + m) + 2, w), min(int(hi[1] + m) + 2, h)
            if x1 - x0 < 8 or y1 - y0 < 8:
                return None
            # OpenCV's minimum perimeter is relative to the image: in a small window it would let
            # every inner bit through as a candidate (2× the cost). Ask for ≥ half the prediction.
            crop = gray[y0:y1, x0:x1]
            dname = self._dict_of[name]
            self._win_params.minMarkerPerimeterRate = max(
                self._min_perimeter_rate * max(w, h), 2.0 * side) / max(crop.shape)
            # The full-frame search thresholds at three window sizes to suit any marker size; here
            # the size is known, so one window about 1.5 cells wide (half the cost again).
            win = int(np.clip(2 * round(0.75 * side / self._cells[name]) + 1, 3, 23))
            self._win_params.adaptiveThreshWinSizeMin = self._win_params.adaptiveThreshWinSizeMax = win
            self._win_detectors[dname].setDetectorParameters(self._win_params)
            got = self._detect_with(self._win_detectors[dname], dname, crop, {}, {}).get(name)
            if got is None:
                return None
            out[name] = got + [x0, y0]
        return out

    def detect_corners(self, gray: np.ndarray, only: str | None = None) -> dict[str, np.ndarray]:
        """Corners ``[4, 2]`` of each covered marker (or just ``only``) found in a grey image."""
        out: dict[str, np.ndarray] = {}
        sizes: dict[str, float] = {}
        for dname, det in self._detectors.items():
            if only is None or only in self._by_dict[dname].values():
                self._detect_with(det, dname, gray, out, sizes)
        return out

    def _detect_with(self, det: cv2.aruco.ArucoDetector, dname: str, gray: np.ndarray, out: dict[str, np.ndarray],
                     sizes: dict[str, float]) -> dict[str, np.ndarray]:
        corners, ids, _ = det.detectMarkers(gray)
        if ids is None:
            return out
        wanted = self._by_dict[dname]
        for c, i in zip(corners, ids.ravel()):
            name = wanted.get(int(i))
            if name is None:
                continue
            c = c.reshape(4, 2).astype(np.float64)
            if self.refine == "apriltag":
                c -= self.APRILTAG_SHIFT
            perim = float(np.linalg.norm(np.roll(c, -1, axis=0) - c, axis=1).sum())
            if perim > sizes.get(name, 0.0):  # the same id twice: keep the larger view
                out[name], sizes[name] = c, perim
        return out

    def redetect(self, gray: np.ndarray, name: str, guess: np.ndarray, scale: float = 2.0) -> np.ndarray | None:
        """Corners of marker ``name`` searched again where it is predicted (``guess``: [4, 2]
        corners, e.g. carried by flow), in a window three sides wide, upscaled by ``scale``: a
        small or blurred marker the full-frame search missed often decodes there. None if not."""
        h, w = gray.shape[:2]
        lo, hi = guess.min(0), guess.max(0)
        m = float((hi - lo).max()) + self.ROI_MARGIN
        x0, y0 = max(int(lo[0] - m), 0), max(int(lo[1] - m), 0)
        x1, y1 = min(int(hi[0] + m) + 2, w), min(int(hi[1] + m) + 2, h)
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        crop = cv2.resize(gray[y0:y1, x0:x1], None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        dname = self._dict_of[name]
        found = self._detect_with(self._detectors[dname], dname, crop, {}, {}).get(name)
        if found is None:
            return None
        return (found + 0.5) / scale - 0.5 + [x0, y0]   # pixel centres of the crop back to the frame

    def detect(self, frame: Frame) -> dict[str, Detection]:
        """Detections in this frame. While every covered marker was found in the previous frame,
        OpenCV only searches small windows around where they are predicted (its cost grows with
        the pixels it thresholds: on the sim clips 0.3–0.5 ms for two windows against 1.1 ms for
        a 640×480 frame); if any marker is not found there, the whole frame is searched, so this
        never loses a detection that a full-frame search would make. Corners may start the fit
        from slightly other contour points (one threshold window instead of three)."""
        found = self._detect_windows(frame.gray) if self.roi else None
        if found is None:
            found = self.detect_corners(frame.gray)
        self._prev, self._last = self._last, found
        res = {}
        for name, c in found.items():
            side = float(np.linalg.norm(np.roll(c, -1, axis=0) - c, axis=1).mean())
            res[name] = Detection(quad_centre(c), float(1.0 - np.exp(-side / 10.0)), SRC_ARUCO, corners=c)
        return res


def hsv_range(rgb: tuple[float, float, float], hue_tol: int = 12, s_min: int = 90, v_min: int = 50
              ) -> list[tuple[np.ndarray, np.ndarray]]:
    """OpenCV HSV bounds (one or two, red wraps) around a colour's hue."""
    bgr = np.uint8([[[round(rgb[2] * 255), round(rgb[1] * 255), round(rgb[0] * 255)]]])
    h = int(cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV)[0, 0, 0])
    lo, hi = h - hue_tol, h + hue_tol
    ranges = [(max(lo, 0), min(hi, 179))]
    if lo < 0:
        ranges.append((180 + lo, 179))
    if hi > 179:
        ranges.append((0, hi - 180))
    return [(np.array([a, s_min, v_min], np.uint8), np.array([b, 255, 255], np.uint8)) for a, b in ranges]


class BlobDetector:
    """Coloured spheres: HSV threshold, largest component, centroid from image moments.

    Partial occlusion biases a centroid towards the visible part, so a component must pass an
    area gate: it must fill ≥ ``fill_min`` of its enclosing circle (a sphere's image is a disc;
    a half-hidden one fills about half) and hold ≥ ``area_min_ratio`` of the median area of its
    recent accepted views. A rejected frame is a miss, which flow may bridge.
    """

    name = "blob"

    def __init__(self, keypoints: list[KeypointDef], *, hue_tol: int = 12, s_min: int = 90, v_min: int = 50,
                 min_area: float = 8.0, fill_min: float = 0.72, area_min_ratio: float = 0.6,
                 history: int = 15) -> None:
        self.keypoints = tuple(k.name for k in keypoints)
        self._ranges = {}
        for k in keypoints:
            if not isinstance(k.feature, Blob):
                raise InputError(f"keypoint '{k.name}' has no blob", field=f"{k.name}.feature", expected="a blob")
            self._ranges[k.name] = hsv_range(k.feature.rgb, hue_tol, s_min, v_min)
        self.min_area, self.fill_min, self.area_min_ratio, self.history = min_area, fill_min, area_min_ratio, history
        self._areas: dict[str, list[float]] = {k: [] for k in self.keypoints}
        self.rejected: dict[str, int] = {k: 0 for k in self.keypoints}
        self._last: dict[str, tuple[np.ndarray, float]] = {}

    def mask(self, hsv: np.ndarray, name: str) -> np.ndarray:
        ranges = self._ranges[name]
        m = cv2.inRange(hsv, *ranges[0])
        for lo, hi in ranges[1:]:
            m |= cv2.inRange(hsv, lo, hi)
        return m

    def detect(self, frame: Frame) -> dict[str, Detection]:
        out = {}
        for name in self.keypoints:
            d = None
            last = self._last.get(name)
            if last is not None:  # look near the last sighting first: HSV of a small window only
                (u, v), r = last
                h, w = frame.bgr.shape[:2]
                m = int(3 * r + 24)
                x0, y0 = max(int(u) - m, 0), max(int(v) - m, 0)
                x1, y1 = min(int(u) + m + 1, w), min(int(v) + m + 1, h)
                hsv = cv2.cvtColor(frame.bgr[y0:y1, x0:x1], cv2.COLOR_BGR2HSV)
                d = self._detect_one(self.mask(hsv, name), name, (x0, y0))
            if d is None:
                d = self._detect_one(self.mask(frame.hsv, name), name, (0, 0))
            if d is None:
                self._last.pop(name, None)
            else:
                self._last[name] = (d.uv, d.radius)
                out[name] = d
        return out

    def _detect_one(self, mask: np.ndarray, name: str, origin: tuple[int, int]) -> Detection | None:
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        if not contours:
            return None
        areas = [cv2.contourArea(c) for c in contours]
        c = contours[int(np.argmax(areas))]
        x, y, w, h = cv2.boundingRect(c)
        # Fill the outer contour so a specular highlight (low saturation) is no hole.
        blob = np.zeros((h, w), np.uint8)
        cv2.drawContours(blob, [c], -1, 255, thickness=cv2.FILLED, offset=(-x, -y))
        m = cv2.moments(blob, binaryImage=True)
        area = m["m00"]
        if area < self.min_area:
            return None
        (_, _), r = cv2.minEnclosingCircle(c)
        fill = area / (np.pi * (r + 0.5) ** 2)
        hist = self._areas[name]
        ref = statistics.median(hist) if hist else area
        if fill < self.fill_min or area < self.area_min_ratio * ref:
            self.rejected[name] += 1
            return None
        hist.append(area)
        del hist[:-self.history]
        uv = np.array([origin[0] + x + m["m10"] / area, origin[1] + y + m["m01"] / area])
        conf = float(np.clip((fill - 0.5) / 0.4, 0.0, 1.0) * (1.0 - np.exp(-area / 40.0)))
        return Detection(uv, conf, SRC_BLOB, radius=float(np.sqrt(area / np.pi)))
