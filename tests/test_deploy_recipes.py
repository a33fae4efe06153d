"""The recipes in deploy/: a unit systemd accepts, and container files that name what exists."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from service.edge.cli import EX_CONFIG
from service.settings import load

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


def directives(unit: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in unit.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key, []).append(value)
    return found


def test_the_systemd_unit_runs_serve_and_leaves_a_bad_configuration_stopped():
    unit = directives((DEPLOY / "care-intro.service").read_text())
    assert unit["ExecStart"][0].endswith(" serve --config /etc/care-intro/care-intro.toml")
    assert unit["Restart"] == ["on-failure"]
    assert unit["RestartPreventExitStatus"] == [str(EX_CONFIG)]
    assert unit["User"] == ["care-intro"]
    assert unit["StateDirectory"] == ["care-intro"]
    assert unit["CapabilityBoundingSet"] == [""]
    assert unit["RestrictAddressFamilies"] == ["AF_INET AF_INET6 AF_UNIX"]
    for option in ("NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices"):
        assert unit[option] == ["yes"], option
    assert unit["ProtectSystem"] == ["strict"]


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)
def test_systemd_verifies_the_unit(tmp_path):
    # The unit names where the install steps put the command; verify checks that it exists,
    # so the copy points at this checkout's.
    here = Path(sys.executable).parent / "care-intro"
    assert here.exists(), "install the project (pip install -e .) first"
    text = (DEPLOY / "care-intro.service").read_text()
    unit = tmp_path / "care-intro.service"
    unit.write_text(text.replace("/opt/care-intro/bin/care-intro", str(here)))
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "care-intro.service" not in done.stderr, done.stderr


def copies(dockerfile: Path) -> list[str]:
    """The sources of every COPY, across continued lines."""
    text = dockerfile.read_text().replace("\\\n", " ")
    return [
        source
        for line in text.splitlines()
        if line.startswith("COPY ")
        for source in line.split()[1:-1]
        if not source.startswith("--")
    ]


@pytest.mark.parametrize(
    ("dockerfile", "context"),
    [(DEPLOY / "Dockerfile", ROOT), (DEPLOY / "postfix" / "Dockerfile", DEPLOY / "postfix")],
)
def test_every_file_a_dockerfile_copies_exists(dockerfile, context):
    sources = copies(dockerfile)
    assert sources
    missing = [s for s in sources if not (context / s).exists()]
    assert missing == []


def test_the_image_runs_the_installed_command():
    text = (DEPLOY / "Dockerfile").read_text()
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert 'CMD ["care-intro", "serve"]' in text and "care-intro" in scripts
    assert re.search(r"^USER care-intro$", text, re.M)
    assert re.search(r"^EXPOSE 8025 8080$", text, re.M)


def test_compose_wires_postfix_care_intro_and_postgresql_together():
    yaml = pytest.importorskip("yaml", reason="PyYAML reads the compose file")
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"postfix", "care-intro", "postgres"}
    build = services["care-intro"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
    assert (DEPLOY / services["postfix"]["build"] / "Dockerfile").is_file()
    assert services["care-intro"]["depends_on"]["postgres"]["condition"] == "service_healthy"

    # Every variable names a real setting: a typo would be ignored, or refused at start.
    env = {
        name: value.replace("${POSTGRES_PASSWORD}", "secret")
        for name, value in services["care-intro"]["environment"].items()
    }
    settings = load(str(ROOT / "config" / "care-intro.toml"), env)
    for name, value in env.items():
        section, key = name.removeprefix("CARE_INTRO_").lower().split("_", 1)
        assert str(getattr(getattr(settings, section), key)).strip("()',") == value, name
    assert settings.database.url == "postgresql://care:secret@postgres:5432/care"

    # Postfix hands the domain to care-intro's SMTP port, and takes its mail on the port the
    # compose network alone may relay through.
    transport = (DEPLOY / "postfix" / "transport").read_text()
    assert f"{settings.service.domain}   smtp:[care-intro]:{settings.inbound.port}" in transport
    postfix = (DEPLOY / "postfix" / "Dockerfile").read_text()
    assert f'"{settings.outbound.port}/inet={settings.outbound.port} inet' in postfix
    subnet = compose["networks"]["default"]["ipam"]["config"][0]["subnet"]
    assert f"{settings.outbound.port}/inet/mynetworks={subnet}" in postfix
    # Postfix refuses at RCPT what care-intro would: it asks the policy service there.
    main_cf = (DEPLOY / "postfix" / "main.cf").read_text()
    assert f"check_policy_service inet:care-intro:{settings.policy.port}" in main_cf
    assert settings.policy.host == "0.0.0.0"
