"""The wheel a user installs with pip: ``python -m build`` (sdist, then the wheel from the sdist) carries the
default weights and a widget bundle built from the current js/; installed into a fresh environment it opens
the annotator's model with no source tree on the path. Also: the bundle stamp that makes a stale bundle
impossible to ship."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]
STATIC = "manet_widget/static"


def _bundle_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("widget_bundle", REPO / "scripts" / "widget_bundle.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


widget_bundle = _bundle_module()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(REPO)],
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, f"python -m build failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    [built] = out.glob("manet_jupyter-*.whl")
    return built


def test_wheel_ships_weights_and_a_bundle_built_from_current_sources(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert {"manet/weights/manet_lite.safetensors", f"{STATIC}/widget.js", f"{STATIC}/widget.css",
                "manet/__init__.py", "manet_widget/__init__.py"} <= names
        assert not any(name.startswith(("tests/", "runs/", "js/")) for name in names)
        stamp = archive.read(f"{STATIC}/SOURCES.sha256").decode().strip()
        shipped_script = archive.read(f"{STATIC}/widget.js")
    assert stamp == widget_bundle.sources_digest(REPO), "the wheel's bundle was not built from the current js/"
    # The build refreshed the working tree's bundle too: the wheel carries exactly that file.
    assert shipped_script == (REPO / STATIC / "widget.js").read_bytes()


def test_installed_wheel_opens_the_model_without_the_source_tree(wheel: Path, tmp_path: Path) -> None:
    """The wheel goes into a fresh venv whose other packages (torch, ...) come from this environment through a
    .pth file; that environment's own .pth files (an editable install of this repository) are not read."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", str(site),
                    str(wheel)], check=True, timeout=300)
    here = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "zz_borrowed_packages.pth").write_text("\n".join(sorted(here)) + "\n")
    check = f"""
import importlib.resources, sys
from pathlib import Path
import manet, manet_widget
from manet_widget.widget import Annotator
site = Path({str(site)!r})
assert Path(manet.__file__).is_relative_to(site) and Path(manet_widget.__file__).is_relative_to(site)
assert not any(Path(entry).resolve() == Path({str(REPO)!r}) for entry in sys.path if entry), sys.path
model = manet.load_model()
static = importlib.resources.files("manet_widget") / "static"
assert str(Annotator._esm) == (static / "widget.js").read_text() and len(str(Annotator._esm)) > 10_000
assert (static / "widget.css").read_text()
print("opened", type(model).__name__, sum(p.numel() for p in model.parameters()))
"""
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run([str(python), "-I", "-c", check], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300, env=environment, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("opened MANet ")


def _project(root: Path) -> Path:
    (root / "js" / "tests").mkdir(parents=True)
    (root / "js" / "widget.ts").write_text("export default {};\n")
    (root / "js" / "tests" / "widget.test.ts").write_text("// tests\n")
    (root / "package.json").write_text("{}\n")
    static = root / STATIC
    static.mkdir(parents=True)
    for name in widget_bundle.BUNDLE_FILES:
        (static / name).write_text("built\n")
    (static / widget_bundle.STAMP_NAME).write_text(widget_bundle.sources_digest(root) + "\n")
    return root


def test_bundle_stamp_follows_every_source_but_not_the_js_tests(tmp_path: Path) -> None:
    root = _project(tmp_path)
    assert widget_bundle.is_fresh(root)
    (root / "js" / "tests" / "widget.test.ts").write_text("// more tests\n")
    assert widget_bundle.is_fresh(root)  # tests are not bundled
    (root / "js" / "widget.ts").write_text("export default { render() {} };\n")
    assert not widget_bundle.is_fresh(root)
    (root / "js" / "widget.ts").write_text("export default {};\n")
    assert widget_bundle.is_fresh(root)
    (root / "package.json").write_text('{"dependencies": {"fflate": "^1"}}\n')
    assert not widget_bundle.is_fresh(root)


def test_stale_bundle_is_rebuilt_and_a_missing_npm_is_a_clear_error(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    root = _project(tmp_path)
    (root / "js" / "view.ts").write_text("export const x = 1;\n")
    monkeypatch.setenv("PATH", str(tmp_path / "no-npm-here"))
    with pytest.raises(widget_bundle.BundleError, match="npm is required"):
        widget_bundle.ensure_bundle(root)
    (root / STATIC / "widget.js").unlink()
    (root / "js" / "view.ts").unlink()
    assert not widget_bundle.is_fresh(root)  # a missing bundle file is never fresh, whatever the stamp says


def test_working_tree_bundle_is_fresh() -> None:
    """scripts/setup.sh (and every build) rebuilds the bundle; a stale one here means js/ changed since."""
    assert widget_bundle.is_fresh(REPO), "manet_widget/static is older than js/: run python scripts/widget_bundle.py"
