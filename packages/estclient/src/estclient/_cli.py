"""The ``est`` command (installed with the ``cli`` extra: ``pip install estclient[cli]``)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Run the ``est`` command and return its exit code.

    Args:
        argv: The arguments after the program name; ``sys.argv[1:]`` when ``None``.

    Returns:
        The process exit code.
    """
    try:
        from estclient._cli_app import cli
    except ImportError as exc:  # click or rich missing: the cli extra is not installed
        print(
            f"The est command needs the 'cli' extra ({exc.name} is missing): pip install 'estclient[cli]'",
            file=sys.stderr,
        )
        return 2
    try:
        cli.main(args=argv, prog_name="est", standalone_mode=True)
    except SystemExit as exc:  # click ends every run with SystemExit(code)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
