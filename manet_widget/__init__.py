"""Jupyter front end of MA-Net: :class:`Annotator`, an anywidget for interactive video segmentation.

``manet_widget`` imports ``manet``; ``manet`` never imports this package.
"""

from manet_widget.controller import AnnotatorController
from manet_widget.widget import Annotator

__all__ = ["Annotator", "AnnotatorController"]
