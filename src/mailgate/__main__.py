"""``python -m mailgate``: the ``mailgate`` command."""

from mailgate.cli import app

app()
