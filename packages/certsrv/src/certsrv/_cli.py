"""The ``certsrv`` command (installed with the ``cli`` extra: ``pip install adcs-certsrv[cli]``)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Run the ``certsrv`` command and return its exit code.

    Args:
        argv: The arguments after the program name; ``sys.argv[1:]`` when ``None``.

    Returns:
        The process exit code.
    """
    try:
        from certsrv._cli_app import cli
    except ImportError as exc:  # click or rich missing: the cli extra is not installed
        print(
            f"The certsrv command needs the 'cli' extra ({exc.name} is missing): pip install 'adcs-certsrv[cli]'",
            file=sys.stderr,
        )
        return 2
    try:
        cli.main(args=argv, prog_name="certsrv", standalone_mode=True)
    except SystemExit as exc:  # click ends every run with SystemExit(code)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
