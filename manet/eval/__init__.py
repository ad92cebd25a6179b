"""Evaluation the way the field measures interactive video segmentation (DAVIS interactive).

* :mod:`manet.simulate` - the simulated user (correction scribbles, next frame), shared with training.
* :mod:`manet.eval.dataset` - DAVIS-layout sequences in memory (read by :mod:`manet.io.davis`).
* :mod:`manet.eval.metrics` - J, F and the AUC / J@60s summary.
* :mod:`manet.eval.evaluate` - drives a :class:`manet.Session` over a DAVIS-layout folder.
* :mod:`manet.eval.report` - JSON report, plot and text table of a run.
* :mod:`manet.eval.cli` - the ``manet eval`` command.

Scripted rounds against ground truth, as ``manet eval`` plays them::

    from manet.eval.evaluate import EvalSettings, run_rounds
    session = manet.Session(model, frames)
    rounds = run_rounds(session, gt_masks, object_ids=[1, 2], first=None,
                        settings=EvalSettings(rounds=8), rng=np.random.default_rng(0))

This package imports only the light modules (metrics and the simulated user); the evaluator and
report modules load the session and matplotlib when imported themselves. Evaluation needs the
``eval`` extra: ``pip install "manet-jupyter[eval]"``.
"""

from manet.eval.metrics import InteractiveSummary, boundary_f, interactive_summary, jaccard
from manet.simulate.next_frame import least_confident_frame, worst_frame
from manet.simulate.robot import (
    RobotConfig,
    annotation_to_davis,
    first_round_annotation,
    robot_annotation,
    robot_scribbles,
)

__all__ = [
    "InteractiveSummary",
    "RobotConfig",
    "annotation_to_davis",
    "boundary_f",
    "first_round_annotation",
    "interactive_summary",
    "jaccard",
    "least_confident_frame",
    "robot_annotation",
    "robot_scribbles",
    "worst_frame",
]
