"""The engine never imports the UI: a fresh interpreter loads every core module without Textual."""

import pkgutil
import subprocess
import sys

import workbench.core


def test_core_does_not_import_textual() -> None:
    modules = [m.name for m in pkgutil.walk_packages(workbench.core.__path__, "workbench.core.")]
    assert len(modules) > 40
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith(('textual.', 'workbench.ui', 'workbench.cli', 'workbench.faces')))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"workbench.core pulled in: {out.stdout}"


def test_headless_face_does_not_import_textual() -> None:
    code = "import sys, workbench.faces.headless, workbench.cli; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
