"""``python -m assay``: the same as the ``assay`` command."""

from __future__ import annotations

from assay.cli.app import main

main()
