"""Every template and static file of the dashboard is named by setup.cfg's package data, so a
non-editable install (a wheel) ships the page with the package."""

from __future__ import annotations

import configparser
from pathlib import Path

import footfall.analytics_api

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = Path(footfall.analytics_api.__file__).parent


def test_package_data_names_every_dashboard_file() -> None:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    patterns = [line.strip() for line in config["options.package_data"]["footfall.analytics_api"].splitlines()
                if line.strip()]
    files = [p.relative_to(PACKAGE) for folder in ("templates", "static") for p in (PACKAGE / folder).rglob("*")
             if p.is_file()]
    assert any(f.name == "chart.umd.js" for f in files) and any(f.suffix == ".html" for f in files)
    # a pattern names files at its own depth, as setuptools globs them
    unshipped = [str(f) for f in files
                 if not any(len(f.parts) == len(Path(p).parts) and f.match(p) for p in patterns)]
    assert unshipped == []
