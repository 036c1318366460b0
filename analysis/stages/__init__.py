"""One module per DVC stage: read inputs -> pure functions -> atomic writes.

Per-model stages share their command line through `model_stage_main`:

    $ python -m analysis.stages.extract --model smollm2-135m

Every stage error is one line on stderr and exit status 1, whatever its Python type; set
TOKENLEN_DEBUG=1 to see the traceback as well.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from typing import Any, Callable

EXPECTED = (ValueError, RuntimeError, OSError, KeyError, FloatingPointError)


def report_error(exc: BaseException) -> int:
    """Print one line for a stage failure (the message, or the type and message of an unexpected error)."""
    if os.environ.get("TOKENLEN_DEBUG"):
        traceback.print_exception(exc)
    msg = str(exc).strip() or type(exc).__name__
    if not isinstance(exc, EXPECTED):
        msg = (f"internal error ({type(exc).__name__}: {msg}); please report it with the output of "
               "TOKENLEN_DEBUG=1 and the command")
    first, *rest = msg.splitlines()
    print(f"error: {first}" + (" " + " ".join(line.strip() for line in rest if line.strip()) if rest else ""),
          file=sys.stderr)
    return 1


def model_stage_main(run: Callable[[str, dict[str, Any]], Any], description: str,
                     argv: list[str] | None = None) -> int:
    """Parse `--model`, validate params.yaml, call `run(model, params)`; a failure prints one line, exit 1."""
    from analysis.params import load_params

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", required=True, help="a model name of the active configuration (params.yaml)")
    args = parser.parse_args(argv)
    try:
        run(args.model, load_params())
    except KeyboardInterrupt:
        print("error: interrupted; nothing was written (outputs are replaced only when complete)", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - one clear line, whatever the type
        return report_error(exc)
    return 0
