"""Hugging Face hub access with a pinned revision, cache first, and an error that says what to do offline.

    >>> model = hub_call(AutoModel.from_pretrained, "EleutherAI/gpt-neo-125m", revision="<sha>", what="model")
"""

from __future__ import annotations

import os
from typing import Any, Callable

OFFLINE_HINT = (
    "the Hugging Face hub cannot be reached and the files are not in the local cache "
    "(HF_HOME={home}). Either connect to the network once so they are cached, or run the offline "
    "configuration: `make demo` (params.yaml: `config: *offline`)."
)


class HubUnavailableError(RuntimeError):
    pass


def _offline_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [OSError]
    try:
        from huggingface_hub import errors as hf_errors

        for name in ("LocalEntryNotFoundError", "OfflineModeIsEnabled", "HfHubHTTPError"):
            if hasattr(hf_errors, name):
                errors.append(getattr(hf_errors, name))
    except ImportError:  # pragma: no cover
        pass
    return tuple(errors)


def _not_found_on_hub(exc: BaseException | None) -> bool:
    """True when the hub answered but the repo / revision / file does not exist (not a network problem)."""
    try:
        from huggingface_hub import errors as hf_errors
    except ImportError:  # pragma: no cover
        return False
    kinds = tuple(getattr(hf_errors, n) for n in ("RepositoryNotFoundError", "RevisionNotFoundError",
                                                  "RemoteEntryNotFoundError", "GatedRepoError") if hasattr(hf_errors, n))
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, kinds):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def hub_call(fn: Callable[..., Any], repo_id: str, *, revision: str | None, what: str, **kwargs: Any) -> Any:
    """Call `fn(repo_id, revision=..., **kwargs)`: the local cache first, then the network."""
    try:
        return fn(repo_id, revision=revision, local_files_only=True, **kwargs)
    except _offline_errors() as exc:
        # kept: a cache that holds the files but cannot load them (a broken download, an unsupported
        # config) must say so, not only that the hub is unreachable
        cached = f"\n  local cache: {type(exc).__name__}: {_first_line(exc)}"
    except Exception as exc:  # the files are there but do not load (a broken download): say so, and where
        raise HubUnavailableError(
            f"{what} ({repo_id}@{revision}): the local cache holds the files but loading them failed "
            f"({type(exc).__name__}: {_first_line(exc)}); delete models--{repo_id.replace('/', '--')} under "
            f"{os.environ.get('HF_HOME', '~/.cache/huggingface')}/hub and download again") from exc
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        home = os.environ.get("HF_HOME", "~/.cache/huggingface")
        raise HubUnavailableError(f"{what} ({repo_id}@{revision}): HF_HUB_OFFLINE=1 and "
                                  + OFFLINE_HINT.format(home=home) + cached)
    try:
        return fn(repo_id, revision=revision, **kwargs)
    except _offline_errors() as exc:
        if _not_found_on_hub(exc):
            raise HubUnavailableError(
                f"{what}: the hub has no {repo_id}@{revision} (or the file asked for): check repo_id, revision "
                f"and file names in params.yaml\n  cause: {type(exc).__name__}: {_first_line(exc)}{cached}") from exc
        home = os.environ.get("HF_HOME", "~/.cache/huggingface")
        raise HubUnavailableError(f"{what} ({repo_id}@{revision}): " + OFFLINE_HINT.format(home=home)
                                  + f"\n  cause: {type(exc).__name__}: {_first_line(exc)}{cached}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""
