"""``netral asyncapi``: write (or check) docs/asyncapi.yaml from the catalogue and schemas."""

from __future__ import annotations

from pathlib import Path

import typer
import yaml

from ..asyncapi import build_asyncapi

DEFAULT = Path("docs/asyncapi.yaml")


def render() -> str:
    return yaml.safe_dump(build_asyncapi(), sort_keys=False, allow_unicode=True, width=100)


def asyncapi(
    output: Path = typer.Option(DEFAULT, help="Where to write the document."),
    check: bool = typer.Option(False, help="Only check that the file is current (exit 1 if not)."),
) -> None:
    """Write the AsyncAPI 3.0 document that agency integrators read first."""
    text = render()
    if check:
        if not output.exists() or output.read_text(encoding="utf-8") != text:
            typer.echo(f"{output} is out of date: run `netral asyncapi`", err=True)
            raise typer.Exit(1)
        typer.echo(f"{output} is current")
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {output}")
