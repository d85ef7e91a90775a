"""deploy/edge: the systemd unit runs commands the CLI accepts; the install script is valid bash."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

from edge_agent.cli import main

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "edge"


def unit_commands() -> list[list[str]]:
    lines = (DEPLOY / "edge-agent.service").read_text().splitlines()
    return [
        shlex.split(line.split("=", 1)[1])
        for line in lines
        if line.startswith(("ExecStart=", "ExecStartPre="))
    ]


def test_systemd_unit_commands_are_valid_cli_invocations():
    commands = unit_commands()
    assert len(commands) == 2
    for argv in commands:
        assert argv[0] == "/opt/edgesight/venv/bin/edge-agent"
        args = argv[1:]
        config = args.index("--config") + 1
        assert args[config] == "/etc/edgesight/agent.yaml"
        args[config] = str(DEPLOY / "example.yaml")
        if "--validate-config" not in args:
            args.append("--validate-config")
        assert main(args) == 0


def test_install_script_is_valid_bash_and_uses_the_unit_and_example():
    subprocess.run(["bash", "-n", str(DEPLOY / "install.sh")], check=True)
    text = (DEPLOY / "install.sh").read_text()
    assert "deploy/edge/edge-agent.service" in text and "deploy/edge/example.yaml" in text
