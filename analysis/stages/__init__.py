"""One module per DVC stage: read inputs -> pure functions -> atomic writes.

Per-model stages share their command line through `model_stage_main`:

    $ python -m analysis.stages.extract --model smollm2-135m
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable


def model_stage_main(run: Callable[[str, dict[str, Any]], Any], description: str,
                     argv: list[str] | None = None) -> int:
    """Parse `--model`, call `run(model, params)`; a known failure prints one clear line, exit status 1."""
    from analysis.params import load_params

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", required=True, help="a model name of the active configuration (params.yaml)")
    args = parser.parse_args(argv)
    try:
        run(args.model, load_params())
    except (ValueError, RuntimeError, OSError) as exc:  # ParamsError, CorpusError, HubUnavailableError, ...
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
