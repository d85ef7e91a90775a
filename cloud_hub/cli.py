"""Console entry point ``cloud-hub``: the app's CLI commands, with the app built from the environment."""

from __future__ import annotations

import sys

from flask.cli import FlaskGroup

from cloud_hub import create_app
from cloud_hub.config import ConfigError
from cloud_hub.identity import commands as identity_commands


def main() -> None:
    cli = FlaskGroup(name="cloud-hub", create_app=create_app, add_default_commands=False,
                     load_dotenv=False, set_debug_flag=False,
                     help="edgesight hub: web app, ingest worker, embedded broker, database and users.")
    identity_commands.register(cli)
    try:
        cli.main(prog_name="cloud-hub")
    except ConfigError as exc:  # one line naming the field and its source, not a traceback
        print(f"cloud-hub: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
