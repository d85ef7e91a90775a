"""The ``cloud-hub`` commands: through Flask's CLI runner and as the installed console script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import inspect

from cloud_hub.web.database import ENGINE_KEY

REPO = Path(__file__).resolve().parents[2]


def test_db_upgrade_is_idempotent(runner, app):
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "database at revision head" in result.output
    tables = set(inspect(app.extensions[ENGINE_KEY]).get_table_names())
    assert {"devices", "events", "telemetry", "dead_letters", "snapshots", "users", "api_tokens"} <= tables


def test_console_script_migrates_a_fresh_sqlite_database(tmp_path):
    env = dict(os.environ, EDGESIGHT_DATABASE_URL=f"sqlite:///{tmp_path / 'fresh.db'}",
               EDGESIGHT_INSTANCE_PATH=str(tmp_path / "instance"))
    cli = [sys.executable, "-m", "cloud_hub"]
    out = subprocess.run([*cli, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=60,
                         cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "fresh.db").exists()
    help_text = subprocess.run([*cli, "--help"], env=env, capture_output=True, text=True, timeout=60,
                               cwd=REPO).stdout
    for command in ("db", "ingest", "serve", "broker"):
        assert command in help_text


def test_users_add_from_stdin_and_token_create(runner, app, client):
    added = runner.invoke(args=["users", "add", "admin", "--role", "admin", "--password-stdin"],
                          input="a long enough password\n")
    assert added.exit_code == 0, added.output
    assert "created admin 'admin'" in added.output
    again = runner.invoke(args=["users", "add", "admin", "--password-stdin"], input="another password!\n")
    assert again.exit_code != 0 and "already exists" in again.output
    short = runner.invoke(args=["users", "add", "bob", "--password-stdin"], input="short\n")
    assert short.exit_code != 0 and "at least 10 characters" in short.output
    assert "admin\tadmin\tactive" in runner.invoke(args=["users", "list"]).output

    token = runner.invoke(args=["tokens", "create", "admin", "--name", "demo"]).output.strip()
    assert token.startswith("esk_")
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert me["username"] == "admin" and me["role"] == "admin"
    assert runner.invoke(args=["tokens", "create", "nobody"]).exit_code != 0


def test_ingest_with_share_needs_a_stable_client_id(runner, app):
    """A client id derived from a container's host name changed on every re-create, and the old session
    kept its share of the stream for ever; with --share the id must now be given."""
    result = runner.invoke(args=["ingest", "--share", "hub"])
    assert result.exit_code == 2
    assert "--share needs a stable --client-id" in result.output
