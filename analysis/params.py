"""Reading params.yaml: the only place parameters come from.

    >>> from analysis.params import load_params, active_config
    >>> p = load_params()
    >>> cfg = active_config(p)            # the configuration selected by the `config:` switch
    >>> spec = model_spec(p, "smollm2-135m")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
PARAMS_FILE = ROOT / "params.yaml"


class ParamsError(ValueError):
    """params.yaml is missing something a stage needs."""


def load_params(path: str | Path | None = None) -> dict[str, Any]:
    path = Path(path) if path else PARAMS_FILE
    if not path.exists():
        raise ParamsError(f"{path} not found: run from the project root (where dvc.yaml is)")
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def active_config(params: dict[str, Any]) -> dict[str, Any]:
    """The configuration the `config:` switch selects (a dict with name, corpus, models)."""
    cfg = params.get("config")
    if not isinstance(cfg, dict) or "models" not in cfg:
        raise ParamsError("params.yaml: `config:` must be `*paper` or `*offline` (a configuration block)")
    return cfg


def model_spec(params: dict[str, Any], name: str) -> dict[str, Any]:
    """The spec of model `name` in the active configuration, with its name added."""
    models = active_config(params)["models"]
    if name not in models:
        known = ", ".join(sorted(models))
        raise ParamsError(
            f"model {name!r} is not in the active configuration {active_config(params).get('name')!r} "
            f"(it has: {known}); add it under `configs:` in params.yaml or switch `config:`"
        )
    return {"name": name, **models[name]}


def corpus_spec(params: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    name = name or active_config(params)["corpus"]
    corpora = params.get("corpora", {})
    if name not in corpora:
        raise ParamsError(f"corpus {name!r} is not defined under `corpora:` in params.yaml (known: {sorted(corpora)})")
    return {"name": name, **corpora[name]}
