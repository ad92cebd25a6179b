"""Edge-aware upsampling of grid probabilities to the frame: a colour guided filter.

The network's masks live on the stride-4 grid of the working size (one cell is 8 pixels of a 480p
frame at the default working size 240), so plainly resampled to the frame their boundaries are
blocky and thin parts vanish. The guided filter (He, Sun and Tang, "Guided Image Filtering",
TPAMI 2013) fits, in every window, the probabilities as an affine function of the frame's colour,
``q = a . I + b``, so the mask's edges follow the frame's edges; its fast form (He and Sun, "Fast
Guided Filter", 2015) fits ``a`` and ``b`` at a reduced resolution and applies them at full
resolution. Here the fit runs on the grid itself, with the frame area-averaged to it.

Each object is filtered on its own: its probability against the background alone,
``sigmoid(l_c - l_0)``, so one object gives one channel and a pixel takes the object whose
filtered probability is highest if that exceeds one half, else the background. An object's input
does not depend on the other objects, so deleting one changes no other object's pixels.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import cv2
import numpy as np
import torch

from manet.inference.resample import GridResampler


def box_mean(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean over the (2r+1)^2 window around every pixel of (H, W) or (H, W, K) float64, windows
    cut at the borders (each the mean of the pixels it has). The cost does not grow with r."""
    size = (2 * radius + 1, 2 * radius + 1)
    if x.ndim == 3 and x.shape[2] > _MAX_CHANNELS:  # OpenCV takes at most 128 channels at once
        return np.concatenate([box_mean(np.ascontiguousarray(x[..., start:start + _MAX_CHANNELS]), radius)
                               for start in range(0, x.shape[2], _MAX_CHANNELS)], axis=2)
    sums = cv2.boxFilter(x, -1, size, normalize=False, borderType=cv2.BORDER_CONSTANT)
    counts = cv2.boxFilter(np.ones(x.shape[:2], dtype=x.dtype), -1, size, normalize=False,
                           borderType=cv2.BORDER_CONSTANT)
    sums = sums.reshape(x.shape)  # OpenCV drops a single channel's axis
    return sums / (counts if sums.ndim == 2 else counts[..., None])


def guided_coefficients(guide: np.ndarray, inputs: np.ndarray, radius: int,
                        eps: float) -> tuple[np.ndarray, np.ndarray]:
    """The colour guided filter's window-averaged coefficients.

    guide (h, w, 3) in [0, 1], inputs (h, w, C), both float64 (the covariances are differences
    of nearby means) -> (A (h, w, C, 3), B (h, w, C)) with the filtered inputs
    ``(A * guide[..., None, :]).sum(-1) + B``; ``eps`` regularises each window's colour
    covariance (larger: smoother, less edge-following).
    """
    height, width, count = inputs.shape
    mean_guide = box_mean(guide, radius)                                              # (h, w, 3)
    products = box_mean(np.stack([guide[..., i] * guide[..., j] for i, j in _PAIRS], axis=-1), radius)
    rr, rg, rb, gg, gb, bb = (products[..., k] - mean_guide[..., i] * mean_guide[..., j]
                              for k, (i, j) in enumerate(_PAIRS))
    (c_rr, c_rg, c_rb, c_gg, c_gb, c_bb), determinant = _cofactors(rr + eps, rg, rb, gg + eps, gb, bb + eps)
    inverse = np.stack([c_rr, c_rg, c_rb, c_rg, c_gg, c_gb, c_rb, c_gb, c_bb], axis=-1)
    inverse = (inverse / determinant[..., None]).reshape(height, width, 3, 3)
    mean_inputs = box_mean(inputs, radius)                                            # (h, w, C)
    cross = box_mean((guide[..., None, :] * inputs[..., None]).reshape(height, width, 3 * count), radius)
    cross = cross.reshape(height, width, count, 3) - mean_guide[..., None, :] * mean_inputs[..., None]
    slopes = np.einsum("hwij,hwcj->hwci", inverse, cross)                             # (h, w, C, 3)
    offsets = mean_inputs - (slopes * mean_guide[..., None, :]).sum(axis=-1)
    slopes = box_mean(slopes.reshape(height, width, 3 * count), radius).reshape(height, width, count, 3)
    return slopes, box_mean(offsets, radius)


def _cofactors(rr: np.ndarray, rg: np.ndarray, rb: np.ndarray, gg: np.ndarray, gb: np.ndarray,
               bb: np.ndarray) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """The symmetric 3x3 colour covariance's cofactors (rr, rg, rb, gg, gb, bb) and determinant,
    per pixel: its inverse is cofactors / determinant (positive definite: eps > 0 on the diagonal)."""
    cofactors = (gg * bb - gb * gb, gb * rb - rg * bb, rg * gb - gg * rb,
                 rr * bb - rb * rb, rg * rb - rr * gb, rr * gg - rg * rg)
    return cofactors, rr * cofactors[0] + rg * cofactors[1] + rb * cofactors[2]


_MAX_CHANNELS = 128
VANISHED_SHARE = 0.1
# Frames area-averaged to the fit's grid, kept across rounds (19 kB a frame at working size 240:
# 1700 frames; recomputing one costs ~1 ms at 480p, most of what a later round spends per frame
# outside the network).
GUIDE_CACHE_BYTES = 32 * 2**20
_PAIRS = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))
# SessionConfig.edge_radius is in pixels of a frame this many pixels high (short side).
EDGE_REFERENCE_SIZE = 480


class GuidedUpsampler:
    """(C, h, w) grid logits + the (H, W, 3) frame -> (H, W) channel indices, edges from the frame.

    The filter's coefficients are fitted on the grid (the frame area-averaged to it; a finer fit
    measured no better on the dev videos) and applied to the frame at its own size. ``radius`` is
    the fit's window radius in grid cells, ``eps`` its regulariser for colours in [0, 1];
    ``plain`` the grid-to-frame resampler of the plain path, when the caller has one.
    """

    def __init__(self, grid: tuple[int, int], working_size: tuple[int, int], frame_size: tuple[int, int],
                 radius: float, eps: float, plain: GridResampler | None = None) -> None:
        if not radius > 0:
            raise ValueError(f"radius must be > 0 grid cells, got {radius}")
        self.frame_size = frame_size
        self.fit_size = (min(frame_size[0], grid[0]), min(frame_size[1], grid[1]))
        self.radius = max(1, round(radius * self.fit_size[0] / grid[0]))
        self.eps = float(eps)
        # grid cells and frame pixels do not tile exactly (the grid rounds the working size up):
        # the probabilities are resampled to the fit's pixels, which tile the frame
        self._to_fit = GridResampler(grid, working_size, self.fit_size)
        # the plain resampling to the frame, for objects the filter erased (built when first needed)
        self._plain = plain
        self._working_size = working_size
        self._guides: OrderedDict[int, np.ndarray] = OrderedDict()
        self._guides_lock = threading.Lock()

    def channels(self, logits: torch.Tensor, frame: np.ndarray, key: int | None = None) -> np.ndarray:
        """(C, h, w) logits, (H, W, 3) uint8 RGB frame -> (H, W) integer argmax channel.

        ``key``: the frame's index in its video, when the caller has one: the frame
        area-averaged to the fit's grid is then kept for the next call with that key (the same
        video's same frame: a later round), within :data:`GUIDE_CACHE_BYTES`.
        """
        height, width = self.frame_size
        if frame.shape != (height, width, 3) or frame.dtype != np.uint8:
            raise ValueError(f"expected a ({height}, {width}, 3) uint8 frame, got {frame.shape} {frame.dtype}")
        logits = logits.float().cpu()
        fitted = self._to_fit.to_frame(logits).double()
        count = fitted.shape[0] - 1
        if count == 0:
            return np.zeros(self.frame_size, dtype=np.uint8)
        # each object against the background alone, centred at its decision threshold: deleting an
        # object (its channel) changes no other object's input, so no other pixel's id
        inputs = (torch.sigmoid(fitted[1:] - fitted[:1]) - 0.5).numpy()
        frame = np.ascontiguousarray(frame)
        inputs = np.ascontiguousarray(inputs.transpose(1, 2, 0))                        # (h, w, C-1)
        small = self._guide(frame, key)
        slopes, offsets = guided_coefficients(small.astype(np.float64) / 255.0, inputs, self.radius, self.eps)
        slopes = (slopes / 255.0).astype(np.float32)   # per unit of 8-bit colour
        offsets = offsets.astype(np.float32)
        # q = A . I + B at the frame's size, one colour plane at a time
        planes = [plane.astype(np.float32) for plane in cv2.split(frame)]
        scores = []
        for channel in range(count):
            score = _resize(offsets[..., channel], (width, height))
            for colour, plane in enumerate(planes):
                cv2.accumulateProduct(_resize(slopes[..., channel, colour], (width, height)), plane, score)
            scores.append(score)
        if count == 1:
            channels = (scores[0] > 0).view(np.uint8)
        else:
            channels = np.stack([np.zeros((height, width), dtype=np.float32), *scores]).argmax(axis=0)
        return self._keep_objects(channels, scores, inputs, logits)

    def _guide(self, frame: np.ndarray, key: int | None) -> np.ndarray:
        """(h, w, 3) uint8: ``frame`` area-averaged to the fit's grid, from the cache when kept."""
        if key is not None:
            with self._guides_lock:
                kept = self._guides.get(key)
                if kept is not None:
                    self._guides.move_to_end(key)
                    return kept
        small = cv2.resize(frame, self.fit_size[::-1], interpolation=cv2.INTER_AREA)
        if key is not None:
            with self._guides_lock:
                self._guides[key] = small
                while len(self._guides) > max(1, GUIDE_CACHE_BYTES // small.nbytes):
                    self._guides.popitem(last=False)
        return small

    def _keep_objects(self, channels: np.ndarray, scores: list[np.ndarray], inputs: np.ndarray,
                      logits: torch.Tensor) -> np.ndarray:
        """Objects the filter all but erased come back as the plain resampling has them.

        Where colour does not separate a small object from its surroundings (low contrast,
        texture), window means smooth it away. An object whose filtered area (against the
        background alone) is below ``VANISHED_SHARE`` of its area on the grid gets the
        background pixels where the plainly resampled logits prefer it to the background. Each
        object is judged and restored on its own inputs, so deleting another changes nothing here.
        """
        fit_cells = inputs.shape[0] * inputs.shape[1]
        scale = channels.size / fit_cells
        vanished = [channel for channel in range(1, len(scores) + 1)
                    if (grid_area := np.count_nonzero(inputs[..., channel - 1] > 0) * scale) > 0
                    and np.count_nonzero(scores[channel - 1] > 0) < VANISHED_SHARE * grid_area]
        if not vanished:
            return channels
        if self._plain is None:
            self._plain = GridResampler(self._to_fit.grid, self._working_size, self.frame_size)
        plain = self._plain.to_frame(logits)
        for channel in vanished:
            restore = ((plain[channel] > plain[0]).numpy()) & (channels == 0)
            channels = np.where(restore, channel, channels).astype(channels.dtype)
        return channels


def _resize(plane: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear, pixel centres aligned (OpenCV's convention is PyTorch's align_corners=False)."""
    return cv2.resize(np.ascontiguousarray(plane), size, interpolation=cv2.INTER_LINEAR)


class EdgeSnapper:
    """Moves a mask's edges onto the frame's edges within a few pixels, at the frame's resolution.

    The grid-level filter above fits its windows on the grid (8 pixels of a 480p frame a cell),
    so edges land within a cell of where the frame has them. This second, finer pass filters each
    object's indicator (its pixels 1, others 0) with the frame as guide again, now in windows of
    ``radius`` frame pixels: a fast guided filter (the coefficients fitted on the frame
    area-averaged by ``subsample``, applied at full resolution), and a pixel takes the channel
    whose filtered indicator is highest (the background's is one minus the objects'). Only pixels
    within ``2 * radius`` of an edge can change; the work is confined to the box around the
    edges. An object the pass would all but erase (below ``VANISHED_SHARE`` of its area) keeps
    its pixels.
    """

    def __init__(self, radius: int, eps: float, subsample: int = 2) -> None:
        if radius < 1:
            raise ValueError(f"radius must be >= 1 pixel, got {radius}")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        if subsample < 1:
            raise ValueError(f"subsample must be >= 1, got {subsample}")
        self.radius, self.eps, self.subsample = int(radius), float(eps), int(subsample)
        self._kernel = np.ones((3, 3), dtype=np.uint8)

    def __call__(self, labels: np.ndarray, frame: np.ndarray, count: int) -> np.ndarray:
        """(H, W) uint8 channel indices in [0, count), (H, W, 3) uint8 RGB frame -> snapped indices."""
        if labels.dtype != np.uint8 or frame.shape != (*labels.shape, 3) or frame.dtype != np.uint8:
            raise ValueError(f"expected (H, W) uint8 labels and their (H, W, 3) uint8 frame, got "
                             f"{labels.shape} {labels.dtype} and {frame.shape} {frame.dtype}")
        if count < 2:
            return labels
        x, y, width, height = cv2.boundingRect(cv2.morphologyEx(labels, cv2.MORPH_GRADIENT, self._kernel))
        if width == 0:
            return labels
        # Pixels farther than 2r from every edge keep their channel (their windows are constant);
        # a margin of 4r leaves the box's own border (where windows are cut) among them.
        pad = 4 * self.radius
        rows, cols = labels.shape
        top, bottom = max(0, y - pad), min(rows, y + height + pad)
        left, right = max(0, x - pad), min(cols, x + width + pad)
        box = labels[top:bottom, left:right]
        scores = self._scores(box, np.ascontiguousarray(frame[top:bottom, left:right]), count)
        if count == 2:
            snapped = (scores[0] > 0.5).view(np.uint8)
        else:
            stacked = np.stack(scores)
            snapped = np.concatenate([1.0 - stacked.sum(axis=0, keepdims=True), stacked]).argmax(axis=0)
            snapped = snapped.astype(np.uint8)
        for channel in range(1, count):
            before = np.count_nonzero(box == channel)
            if before and np.count_nonzero(snapped == channel) < VANISHED_SHARE * before:
                snapped = np.where(box == channel, np.uint8(channel), snapped)
        out = labels.copy()
        out[top:bottom, left:right] = snapped
        return out

    def _scores(self, labels: np.ndarray, frame: np.ndarray, count: int) -> list[np.ndarray]:
        """Each object's filtered indicator, (h, w) float32, over the box."""
        height, width = labels.shape
        small = (max(1, round(width / self.subsample)), max(1, round(height / self.subsample)))
        radius = max(1, round(self.radius / self.subsample))
        size = (2 * radius + 1, 2 * radius + 1)

        def mean(x: np.ndarray) -> np.ndarray:
            return cv2.blur(x, size, borderType=cv2.BORDER_REFLECT)

        def enlarge(x: np.ndarray) -> np.ndarray:
            return cv2.resize(x, (width, height), interpolation=cv2.INTER_LINEAR)

        full = [plane.astype(np.float32) * np.float32(1 / 255) for plane in cv2.split(frame)]
        guide = [cv2.resize(plane, small, interpolation=cv2.INTER_AREA) for plane in full]
        means = [mean(plane) for plane in guide]
        eps = np.float32(self.eps)
        rr, rg, rb, gg, gb, bb = (mean(guide[i] * guide[j]) - means[i] * means[j] for i, j in _PAIRS)
        (c_rr, c_rg, c_rb, c_gg, c_gb, c_bb), determinant = _cofactors(rr + eps, rg, rb, gg + eps, gb, bb + eps)
        inverse_determinant = 1.0 / determinant
        scores = []
        for channel in range(1, count):
            indicator = cv2.resize((labels == channel).view(np.uint8).astype(np.float32), small,
                                   interpolation=cv2.INTER_AREA)
            mean_indicator = mean(indicator)
            cr, cg, cb = (mean(guide[i] * indicator) - means[i] * mean_indicator for i in range(3))
            ar = (c_rr * cr + c_rg * cg + c_rb * cb) * inverse_determinant
            ag = (c_rg * cr + c_gg * cg + c_gb * cb) * inverse_determinant
            ab = (c_rb * cr + c_gb * cg + c_bb * cb) * inverse_determinant
            offset = mean_indicator - ar * means[0] - ag * means[1] - ab * means[2]
            scores.append(enlarge(mean(ar)) * full[0] + enlarge(mean(ag)) * full[1]
                          + enlarge(mean(ab)) * full[2] + enlarge(mean(offset)))
        return scores
