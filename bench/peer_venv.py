"""The peer's own virtualenv: dj-queue from PyPI cannot share an interpreter with this
repository's dj_queue (same import name), so it gets a virtualenv of its own, made on
demand under bench/results/ (ignored by git) and reused while its requirements hold.

    .venv/bin/python bench/peer_venv.py     # make it now (bench/run.py does it anyway)

The virtualenv holds dj-queue==PEER_VERSION and the same Django, psycopg and mysqlclient
versions as this virtualenv. A ``.pth`` file appends the repository root to its
``sys.path``, after site-packages: ``bench.*`` modules (settings, tasks, the child
script) import, while ``dj_queue`` still resolves to the installed release. Every peer
process runs with ``python -P``, so the working directory never comes first either.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEER_VERSION = "0.14.2"
PEER_NAME = f"dj-queue {PEER_VERSION}"
VENVS = ROOT / "bench" / "results"
MARKER = "bench-requirements.txt"


def requirements() -> list[str]:
    """What the peer virtualenv holds: the release, and our versions of the rest."""
    ours = {name: importlib.metadata.version(name) for name in ("django", "mysqlclient")}
    psycopg = importlib.metadata.version("psycopg")
    return [
        f"dj-queue=={PEER_VERSION}",
        f"Django=={ours['django']}",
        f"psycopg[binary]=={psycopg}",
        f"mysqlclient=={ours['mysqlclient']}",
    ]


def venv_dir() -> Path:
    wanted = "\n".join([sys.version, *requirements()])
    key = hashlib.sha256(wanted.encode()).hexdigest()[:10]
    return VENVS / f".peer-venv-{PEER_VERSION}-{key}"


def ensure_venv(*, quiet: bool = False) -> Path:
    """The peer virtualenv's python, making the virtualenv first if needed."""
    directory = venv_dir()
    python = directory / "bin" / "python"
    wanted = "\n".join(requirements()) + "\n"
    marker = directory / MARKER
    if not (marker.exists() and marker.read_text() == wanted and python.exists()):
        _build(directory, python, quiet=quiet)
        marker.write_text(wanted)
    _write_pth(python)
    return python


def _build(directory: Path, python: Path, *, quiet: bool) -> None:
    if directory.exists():
        shutil.rmtree(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    print(f"making the {PEER_NAME} virtualenv in {directory}", file=sys.stderr, flush=True)
    base = getattr(sys, "_base_executable", sys.executable)
    _run([base, "-m", "venv", str(directory)], quiet)
    pip = [str(python), "-m", "pip", "--disable-pip-version-check"]
    _run([*pip, "install", "--quiet", *requirements()], quiet)


def _run(command: list[str], quiet: bool) -> None:
    output = subprocess.DEVNULL if quiet else None
    subprocess.run(command, check=True, stdout=output)


def _write_pth(python: Path) -> None:
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    pth = Path(purelib) / "dj_queue_bench_root.pth"
    if not pth.exists() or pth.read_text() != f"{ROOT}\n":
        pth.write_text(f"{ROOT}\n")


if __name__ == "__main__":
    print(ensure_venv())
