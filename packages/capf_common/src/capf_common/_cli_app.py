"""The click application behind the ``capf`` command (needs the ``cli`` extra)."""

from __future__ import annotations

import click

from capf_common._version import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="capf")
def cli() -> None:
    """The capf command."""
