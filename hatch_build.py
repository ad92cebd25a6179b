"""Build hook: every wheel, sdist and editable install carries a widget bundle built from the current js/.

The build logic lives in ``scripts/widget_bundle.py`` (standard library only, also run by
``scripts/setup.sh``); this hook calls it and fails the build when the bundle cannot be made fresh.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class WidgetBundleHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        spec = importlib.util.spec_from_file_location("widget_bundle", root / "scripts" / "widget_bundle.py")
        assert spec is not None and spec.loader is not None
        bundle = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(bundle)
        try:
            if bundle.ensure_bundle(root):
                self.app.display_info("built the widget bundle from js/")
        except bundle.BundleError as error:
            raise RuntimeError(str(error)) from error
