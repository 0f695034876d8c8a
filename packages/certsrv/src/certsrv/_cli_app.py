"""The click application behind the ``certsrv`` command (needs the ``cli`` extra)."""

from __future__ import annotations

import click

from certsrv._version import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="certsrv")
def cli() -> None:
    """The certsrv command."""
