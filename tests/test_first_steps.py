"""A newcomer's first steps: the demo, the built wheel, and the README followed verbatim.

None of these depend on the test database, so they run in the SQLite pass of
the suite only. The README test builds a wheel of this checkout, installs it in
a brand-new virtualenv (from PyPI: Django, croniter, PyYAML), creates a project
with ``django-admin startproject`` and applies the README's Setup and Quick
start code blocks as they are written.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(
    os.environ.get("DJ_QUEUE_TEST_DB", "sqlite") != "sqlite",
    reason="independent of the database: runs in the SQLite pass",
)

README = ROOT / "README.md"


def _section(heading: str) -> str:
    text = README.read_text()
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _code_blocks(heading: str) -> list[tuple[str, str]]:
    """The (language, code) of every fenced block under a README heading, in order."""
    return re.findall(r"```(\w*)\n(.*?)```", _section(heading), flags=re.DOTALL)


def _clean_environment(venv: Path) -> dict[str, str]:
    """A shell as a new user has it: the new venv first on PATH, no settings of ours."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DJ_QUEUE_", "PYTHON", "VIRTUAL_ENV"))
    }
    environment["PATH"] = f"{venv / 'bin'}{os.pathsep}{environment.get('PATH', '')}"
    return environment


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of this checkout (a build leaves files in its tree)."""
    source = tmp_path_factory.mktemp("source") / "dj_queue"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*.sqlite3*"
        ),
    )
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(source)],
        check=True,
        timeout=300,
    )
    (built,) = out.glob("dj_queue-*.whl")
    return built


@pytest.mark.slow
def test_the_wheel_carries_templates_migrations_and_py_typed(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    package = ROOT / "dj_queue"
    expected = {"dj_queue/py.typed"}
    expected |= {
        path.relative_to(ROOT).as_posix()
        for pattern in ("templates/**/*.html", "migrations/*.py")
        for path in package.glob(pattern)
    }
    assert any(name.startswith("dj_queue/templates/") for name in expected)
    assert "dj_queue/migrations/0001_initial.py" in expected
    assert expected <= names, sorted(expected - names)
    # Only the package: no tests, demo, examples or benchmarks.
    tops = {name.split("/")[0] for name in names}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"dj_queue"}, tops


@pytest.mark.slow
def test_the_readme_setup_and_quick_start_work_verbatim(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    environment = _clean_environment(venv)

    def shell(script: str, cwd: Path, timeout: float = 300) -> str:
        finished = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=cwd,
            env=environment,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert finished.returncode == 0, f"{script}\n{finished.stdout}\n{finished.stderr}"
        return finished.stdout

    shell(f"pip install --quiet --disable-pip-version-check {wheel}", tmp_path)
    shell("django-admin startproject mysite", tmp_path)
    project = tmp_path / "mysite"
    shell("python manage.py startapp myapp", project)

    # Setup: the settings block, its INSTALLED_APPS entries added to the
    # project's own list, everything after that list appended as written.
    setup = _code_blocks("Setup")
    (settings_block,) = [code for language, code in setup if "TASKS" in code]
    apps_part, _, rest = settings_block.partition("\n]\n")
    added = re.findall(r'"([^"]+)"', apps_part)
    assert added == ["dj_queue"]
    settings_path = project / "mysite" / "settings.py"
    settings_text = settings_path.read_text()
    listed = "".join(f"    {name!r},\n" for name in [*added, "myapp"])
    opening = "INSTALLED_APPS = [\n"
    settings_text = settings_text.replace(opening, f"{opening}{listed}", 1)
    settings_path.write_text(f"{settings_text}\n{rest}")
    (migrate_block,) = [code for language, code in setup if language == "bash"]
    shell(migrate_block, project)

    # Quick start: the tasks module, the runtime, the enqueue and the read-back.
    quick_start = _code_blocks("Quick start")
    (tasks_block,) = [code for _, code in quick_start if code.startswith("# myapp/tasks.py")]
    (project / "myapp" / "tasks.py").write_text(tasks_block)
    (runtime_block,) = [code for language, code in quick_start if language == "bash"]
    (enqueue_block,) = [code for _, code in quick_start if ".enqueue(3, 7)" in code]
    (read_block,) = [code for _, code in quick_start if "get_result(result.id)" in code]

    runtime = subprocess.Popen(
        ["bash", "-c", runtime_block],
        cwd=project,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        # The README reads the result "later": here, once the job has finished
        # (or after 60 s, when the read-back below shows what went wrong).
        wait = (
            "import time\n"
            "deadline = time.monotonic() + 60\n"
            "while add.get_backend().get_result(result.id).status.value in ('READY', 'RUNNING')"
            " and time.monotonic() < deadline:\n"
            "    time.sleep(0.2)\n"
        )
        script = f"{enqueue_block}\n{wait}\n{read_block}"
        output = shell(f"python manage.py shell -c {shlex.quote(script)}", project, timeout=120)
    finally:
        os.killpg(runtime.pid, signal.SIGTERM)
        try:
            runtime_output, _ = runtime.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(runtime.pid, signal.SIGKILL)
            runtime_output, _ = runtime.communicate()
    lines = output.strip().splitlines()
    assert any(re.fullmatch(r"[0-9a-f-]{36} READY", line) for line in lines), output
    assert lines[-1].split() == ["SUCCESSFUL", "10"], f"{output}\n--- runtime ---\n{runtime_output}"
    assert runtime.returncode == 0, runtime_output


@pytest.mark.slow
def test_the_demo_runs_the_real_runtime_and_every_job_ends_as_expected():
    finished = subprocess.run(
        [sys.executable, str(ROOT / "demo" / "run_demo.py")],
        cwd=ROOT,
        env={key: value for key, value in os.environ.items() if not key.startswith("DJANGO_")},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert finished.returncode == 0, f"{finished.stdout}\n{finished.stderr}"
    assert "recurring task 'metrics_snapshot' fired and ran" in finished.stdout
    assert "every job ended as expected" in finished.stdout
    assert re.search(r"export_customer\(7, 'reviews'\) .* SUCCESSFUL", finished.stdout)
