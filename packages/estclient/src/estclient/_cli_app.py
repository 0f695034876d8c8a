"""The click application behind the ``est`` command (needs the ``cli`` extra)."""

from __future__ import annotations

import click

from estclient._version import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="est")
def cli() -> None:
    """The est command."""
