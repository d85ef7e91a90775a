"""Console entry point ``cloud-hub``: the app's CLI commands, with the app built from the environment."""

from __future__ import annotations

from flask.cli import FlaskGroup

from cloud_hub import create_app
from cloud_hub.identity import commands as identity_commands


def main() -> None:
    cli = FlaskGroup(name="cloud-hub", create_app=create_app, add_default_commands=False,
                     load_dotenv=False, set_debug_flag=False,
                     help="edgesight hub: web app, ingest worker, embedded broker, database and users.")
    identity_commands.register(cli)
    cli.main(prog_name="cloud-hub")


if __name__ == "__main__":
    main()
