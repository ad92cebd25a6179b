"""Dependencies outside the core install, imported where they are first used.

The simulated user (evaluation and training) needs scipy and scikit-image, evaluation plots need
matplotlib; annotating in the widget needs none of them. They come with the ``eval`` extra, and
:func:`require` turns their absence into an error that says how to install it.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

from manet.errors import ManetError

EVAL_INSTALL = 'pip install "manet-jupyter[eval]"'
# Import name -> distribution name, for the message.
_DISTRIBUTIONS = {"scipy": "scipy", "skimage": "scikit-image", "matplotlib": "matplotlib"}


class MissingDependencyError(ManetError, ImportError):
    """A feature needs a package of an optional extra that is not installed."""


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` (e.g. ``"skimage.morphology"``) for ``purpose``.

    Raises:
        MissingDependencyError: the package is not installed; the message names the command
            that installs the ``eval`` extra.
    """
    try:
        return import_module(module)
    except ImportError as error:
        top = module.split(".", 1)[0]
        raise MissingDependencyError(
            f"{purpose} needs {_DISTRIBUTIONS.get(top, top)}, which is not installed ({error}): "
            f"install the evaluation extra with {EVAL_INSTALL}"
        ) from error
