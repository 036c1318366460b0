"""Shared fixtures: synthetic results trees (tests/synthetic.py) and the assets built from them.

    >>> def test_x(assets_offline): ...     # {"root": Path, "gen": Path, "meta": dict, "params": dict}
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml


def _build(root: Path, layout: str) -> dict:
    from analysis.stages.assets import build
    from tests.synthetic import make_tree

    params = make_tree(root, layout=layout)
    gen = root / "report" / "_generated"
    build(params, root / "results", root / "summary", gen, Path(__file__).resolve().parent.parent)
    meta = yaml.safe_load((gen / "metadata.yml").read_text(encoding="utf-8"))
    return {"root": root, "gen": gen, "meta": meta, "params": params}


@pytest.fixture(scope="session")
def assets_offline(tmp_path_factory) -> dict:
    """One trained model + a random-weights control, like `config: *offline`."""
    return _build(tmp_path_factory.mktemp("offline"), "offline")


@pytest.fixture(scope="session")
def assets_paper(tmp_path_factory) -> dict:
    """Two trained models of different depth + the control, like `config: *paper`."""
    return _build(tmp_path_factory.mktemp("paper"), "paper")


@pytest.fixture(scope="session", params=["offline", "paper"])
def assets_any(request, assets_offline, assets_paper) -> dict:
    return {"offline": assets_offline, "paper": assets_paper}[request.param]
