"""The simulated user: correction scribbles drawn from ground truth, and which frame to annotate next.

Evaluation (:mod:`manet.eval`) plays it against a session, training (:mod:`manet.train`) draws
its strokes into training samples; both sit above this package, which imports neither.

* :mod:`manet.simulate.robot` - correction scribbles as the DAVIS interactive benchmark's robot draws them.
* :mod:`manet.simulate.next_frame` - which frame to annotate next (with or without ground truth).
* :mod:`manet.simulate.skeleton` - longest paths through a region's skeleton (the strokes' shape).
* :mod:`manet.simulate.region` - region similarity J, the score frames are chosen by.

Drawing needs scipy and scikit-image, which the ``eval`` extra installs
(``pip install "manet-jupyter[eval]"``); importing this package does not.
"""

from manet.simulate.next_frame import least_confident_frame, worst_frame
from manet.simulate.region import jaccard
from manet.simulate.robot import (
    RobotConfig,
    annotation_to_davis,
    first_round_annotation,
    robot_annotation,
    robot_scribbles,
)

__all__ = [
    "RobotConfig",
    "annotation_to_davis",
    "first_round_annotation",
    "jaccard",
    "least_confident_frame",
    "robot_annotation",
    "robot_scribbles",
    "worst_frame",
]
