"""Video input and mask import/export.

``VideoSource.open(x)`` turns a video file, a folder of frames or a uint8 array into lazily
decoded RGB frames; :mod:`manet.io.export` writes masks (PNG, COCO, npz, overlay video) and
:mod:`manet.io.masks` reads them back.
"""

# _sources is imported for its effect: it registers the array, image-folder and video-file sources with
# VideoSource.open.
from manet.io import _sources  # noqa: F401
from manet.io._cache import DecodeStats
from manet.io.export import (
    FrameSource,
    davis_palette,
    export_coco,
    export_npz,
    export_overlay_video,
    export_png_folder,
    overlay_frame,
)
from manet.io.masks import (
    load_coco,
    load_mask_image,
    load_npz_masks,
    load_npz_names,
    load_png_masks,
)
from manet.io.video import DEFAULT_CACHE_MB, VideoLike, VideoSource, resize_frame

__all__ = [
    "DEFAULT_CACHE_MB",
    "DecodeStats",
    "FrameSource",
    "VideoLike",
    "VideoSource",
    "davis_palette",
    "export_coco",
    "export_npz",
    "export_overlay_video",
    "export_png_folder",
    "load_coco",
    "load_mask_image",
    "load_npz_masks",
    "load_npz_names",
    "load_png_masks",
    "overlay_frame",
    "resize_frame",
]
