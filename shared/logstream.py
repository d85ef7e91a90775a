"""A log handler for the stderr of the moment.

``logging.StreamHandler()`` binds the stream that ``sys.stderr`` is when logging is set up. Test runners
(pytest's capsys, click's CliRunner) swap and close that stream per test, and every later log record
then fails with "Logging error". Both the agent and the hub CLIs configure logging with this instead.
"""

from __future__ import annotations

import logging
import sys


class CurrentStderrHandler(logging.StreamHandler):
    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass
