"""The production image, checked without Docker: the Dockerfile's shape, then its install and entry
commands reproduced in a fresh venv (the same sources, the same `pip install`, no extras)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
BASE_IMAGE = "python:3.11-slim"
IMAGE_VENV = "/opt/venv"
PIP_TIMEOUT_SECONDS = 900


@dataclass
class Instruction:
    keyword: str
    args: str

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form ENTRYPOINT/CMD/RUN, or None for the shell form."""
        return json.loads(self.args) if self.args.startswith("[") else None


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for instruction in self.all("ENV"):
            for pair in shlex.split(instruction.args):
                key, _, value = pair.partition("=")
                values[key] = value
        return values


def parse_dockerfile(text: str) -> list[Stage]:
    """Enough Dockerfile grammar for this project: comments, `\\` continuations, global ARG defaults."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"

    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "ARG" and not stages:
            name, _, default = args.partition("=")
            global_args[name] = default
        elif keyword == "FROM":
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: global_args.get(m[1], m[0]), args.split()[0])
            as_name = re.search(r"\s+AS\s+(\S+)", args, re.IGNORECASE)
            stages.append(Stage(image, as_name.group(1) if as_name else None))
        else:
            assert stages, f"{keyword} before the first FROM"
            stages[-1].instructions.append(Instruction(keyword, args))
    return stages


def builder_stage(stages: list[Stage]) -> Stage:
    """The stage whose /opt/venv the final stage copies."""
    for instruction in stages[-1].all("COPY"):
        tokens = instruction.args.split()
        source = next((t.split("=", 1)[1] for t in tokens if t.startswith("--from=")), None)
        if source is not None and tokens[-1] == IMAGE_VENV:
            return next(s for s in stages if s.name == source)
    raise AssertionError(f"the final stage does not COPY --from=<builder> {IMAGE_VENV} {IMAGE_VENV}")


def install_command(stage: Stage) -> list[str]:
    """The builder's `pip install` RUN, as argv; checks it installs the project itself with no extras."""
    runs = [r for r in stage.all("RUN") if "pip install" in r.args]
    assert len(runs) == 1, f"expected one `pip install` RUN in the builder stage, found {len(runs)}"
    assert "&&" not in runs[0].args and ";" not in runs[0].args, "keep the install a single command"
    argv = shlex.split(runs[0].args)
    assert argv[:2] == [f"{IMAGE_VENV}/bin/pip", "install"], f"not {IMAGE_VENV}/bin/pip install: {argv}"
    options = [a for a in argv[2:] if a.startswith("-")]
    targets = [a for a in argv[2:] if not a.startswith("-")]
    assert targets == ["."], f"the image must install the project itself, nothing else: {targets}"
    assert not {"-e", "--editable", "-r", "--requirement"} & set(options), f"unexpected options: {options}"
    assert "[" not in runs[0].args, "no extras in the image (no scikit-learn, no full mlflow, no test tools)"
    return argv


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())


def test_dockerfile_is_multi_stage_on_python_slim(stages: list[Stage]) -> None:
    assert len(stages) >= 2
    assert [s.image for s in stages] == [BASE_IMAGE] * len(stages)
    builder = builder_stage(stages)
    assert builder is not stages[-1]
    assert any(shlex.split(r.args) == ["python", "-m", "venv", IMAGE_VENV] for r in builder.all("RUN"))
    install_command(builder)
    # The runtime stage only copies the venv: no Python package is installed there, and from Debian only
    # the chart fonts.
    runs = [r.args for r in stages[-1].all("RUN")]
    assert not [r for r in runs if re.search(r"\bpip\b", r)]
    installs = [r for r in runs if "apt-get install" in r]
    assert len(installs) == len([r for r in runs if "apt-get" in r]) == 1


def test_runtime_stage_has_the_chart_fonts(stages: list[Stage]) -> None:
    """CJK and emoji in run and metric names are drawn with these (bot/charts.py's fallback chain)."""
    [install] = [r.args for r in stages[-1].all("RUN") if "apt-get install" in r.args]
    words = shlex.split(install.replace("&&", " && "))
    packages = {w for w in words[words.index("install") + 1 : words.index("&&", words.index("install"))]}
    assert packages - {"-y", "--no-install-recommends"} == {"fonts-droid-fallback", "fonts-symbola"}
    assert "--no-install-recommends" in packages and "rm -rf /var/lib/apt/lists/*" in install


def test_runtime_stage_runs_review_bot_as_non_root(stages: list[Stage]) -> None:
    runtime = stages[-1]
    entrypoint, cmd = runtime.last("ENTRYPOINT"), runtime.last("CMD")
    assert entrypoint is not None and entrypoint.exec_form() == ["review-bot"]
    assert cmd is not None and cmd.exec_form() == ["serve"]
    user = runtime.last("USER")
    assert user is not None and user.args.split(":")[0] not in {"root", "0"}
    env = runtime.env()
    assert env["PORT"] == "3000"
    assert env["PYTHONDONTWRITEBYTECODE"] == env["PYTHONUNBUFFERED"] == "1"
    assert env["MPLCONFIGDIR"] == "/tmp/matplotlib"
    assert env["PATH"].startswith(f"{IMAGE_VENV}/bin:")
    assert [e.args for e in runtime.all("EXPOSE")] == ["3000"]
    healthcheck = runtime.last("HEALTHCHECK")
    assert healthcheck is not None and "CMD" in healthcheck.args
    assert "urllib.request" in healthcheck.args and "http://127.0.0.1:${PORT}/healthz" in healthcheck.args


def test_dockerignore_keeps_the_context_small() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".git", ".venv", "demo", "preview", "tests", ".pytest_cache", ".ruff_cache"} <= ignored


# --- the image's install, reproduced -------------------------------------------------------------


@dataclass(frozen=True)
class ImageVenv:
    bin: Path
    workdir: Path

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """A command as the image runs it: the venv first on PATH, no Slack settings, an empty directory."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("SLACK_") and k not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"}
        }
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(self.bin.parent)
        return subprocess.run(
            [str(self.bin / argv[0]), *argv[1:]],
            env=env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=120,
        )


def copy_build_context(stage: Stage, image_root: Path) -> Path:
    """The builder's COPY instructions applied under image_root; returns its WORKDIR there."""
    workdir_instruction = stage.last("WORKDIR")
    assert workdir_instruction is not None, "the builder needs a WORKDIR to build in"
    workdir = image_root / workdir_instruction.args.lstrip("/")
    workdir.mkdir(parents=True)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for instruction in stage.all("COPY"):
        *sources, dest = instruction.args.split()
        assert not any(s.startswith("--") for s in sources), f"unsupported COPY flags: {instruction.args}"
        target = image_root / dest.lstrip("/") if dest.startswith("/") else workdir / dest
        for source in sources:
            path = ROOT / source
            if path.is_dir():
                shutil.copytree(path, target, ignore=skip, dirs_exist_ok=True)
            else:
                into_dir = dest.endswith("/") or dest in {".", "./"} or len(sources) > 1
                destination = target / path.name if into_dir else target
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, destination)
    return workdir


@pytest.fixture(scope="module")
def image_venv(stages: list[Stage], tmp_path_factory: pytest.TempPathFactory) -> ImageVenv:
    """A fresh venv built the way the image's builder stage builds /opt/venv (nothing cached between runs)."""
    root = tmp_path_factory.mktemp("image")
    builder = builder_stage(stages)
    workdir = copy_build_context(builder, root / "fs")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    argv = install_command(builder)
    argv = [str(venv / "bin" / "pip"), "install", "--quiet", *argv[2:]]
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"}}
    result = subprocess.run(
        argv, cwd=workdir, env=env, capture_output=True, text=True, timeout=PIP_TIMEOUT_SECONDS
    )
    assert result.returncode == 0, f"{shlex.join(argv)} failed:\n{result.stdout}\n{result.stderr}"
    empty = root / "app"
    empty.mkdir()
    return ImageVenv(venv / "bin", empty)


@pytest.mark.slow
def test_image_entrypoint_shows_help(image_venv: ImageVenv) -> None:
    result = image_venv.run("review-bot", "--help")
    assert result.returncode == 0, result.stderr
    assert "serve" in result.stdout and "socket" in result.stdout


@pytest.mark.slow
def test_image_serve_without_slack_settings_names_the_variable(image_venv: ImageVenv) -> None:
    result = image_venv.run("review-bot", "serve")
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 2, output
    assert len(output.splitlines()) == 1, output
    assert "SLACK_BOT_TOKEN" in output and "Traceback" not in output


@pytest.mark.slow
@pytest.mark.parametrize(
    ("module", "importable"),
    [
        ("mlflow", True),  # mlflow-skinny: the tracking client
        ("mlflow.server", False),  # the tracking server is the full mlflow's
        ("sklearn", False),  # only the demo and the tests train models
    ],
)
def test_image_is_lean(image_venv: ImageVenv, module: str, importable: bool) -> None:
    result = image_venv.run("python", "-c", f"import {module}")
    if importable:
        assert result.returncode == 0, result.stderr
    else:
        assert result.returncode != 0 and "ModuleNotFoundError" in result.stderr, result.stderr
