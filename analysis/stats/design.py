"""The sample's dependence structure and covariates, built once per token sample (no activations here).

    >>> from analysis.stats.design import Design
    >>> d = Design.build(token_id, length, log_freq, seq, next_token_id, n_permutations=500, seed=(0, 0))
    >>> d.n, d.n_types, d.n_seq           # tokens, token types, sequences
    >>> d.perms.shape                     # [P, n_types]: type-level permutations within frequency strata
    >>> d.perms_free.shape                # [P, n_types]: the same among all types

Why a design object: token length and log frequency are properties of the token *type*, and the next
token's length is a property of the next token's type. Every linear statistic of an activation vector `a`
is therefore a function of a few sums of `a` (per type, per sequence, per (sequence, type) cell, by next
type), and every null that respects the dependence of tokens permutes type attributes among types. The
design holds everything that does not depend on the activations: type indices, sequence indices, the
within-sequence (sequence fixed effects) covariate vectors, their Gram matrices, the sparse aggregation
matrices, the frequency strata and the seeded permutations. It is shared by all blocks of a model (the same
permutation is applied to every neuron of every block, so block-level summaries keep their dependence).

Working order: inside the statistics, tokens are reordered by (median-split group, type, sequence), so
that each type, each (sequence, type) cell and each split group is a contiguous slice; sums over types and
cells are `np.add.reduceat` calls. No result depends on this order; `order` maps it back to row order.

Inner products are taken within sequences (sequence means removed: sequence fixed effects); the covariate
columns and their within-sequence Gram matrix are in `spaces["all"]`. The next token's length is defined
for the tokens that have a next (non-special) token in the same sequence (nexttoken.py).

Frequency strata (`strata_of`): types are binned by their count in the sample (powers of two), bins merged
from the most frequent down until each holds at least `strata_min_types` types. A type's activation sum
scales with its count, so types are most exchangeable among types of similar count; but a permutation within
strata holds the association *between* strata fixed, and frequent types are also short (Zipf's law of
abbreviation): a null for a raw length (or frequency) effect must move values across strata, a null for
length *given* frequency should not. Each statistic says which it uses (linear.Partial.stratified).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

SHORT, EQUAL, LONG = 0, 1, 2


class DesignError(ValueError):
    """A covariate that makes a statistic undefined (constant length, constant frequency, ...)."""


def strata_of(counts: np.ndarray, min_types: int) -> np.ndarray:
    """Stratum label per type: power-of-two bins of the in-sample count, merged from the most frequent
    bin downward until each stratum holds at least `min_types` types (the last, rarest, absorbs a rest)."""
    counts = np.asarray(counts)
    b = np.floor(np.log2(np.maximum(counts, 1))).astype(int)
    out = np.zeros(len(counts), dtype=np.int32)
    groups, cur = [], []
    for level in np.unique(b)[::-1]:  # most frequent first
        cur.append(level)
        if np.isin(b, cur).sum() >= min_types:
            groups.append(cur)
            cur = []
    if cur:
        if groups:
            groups[-1] = groups[-1] + cur
        else:
            groups.append(cur)
    for k, g in enumerate(groups):
        out[np.isin(b, g)] = k
    return out


def stratified_permutations(strata: np.ndarray, n_perm: int, rng: np.random.Generator) -> np.ndarray:
    """[n_perm, T] index arrays: perm[p, t] is the type whose attributes type t receives in permutation p;
    each permutation shuffles types only within their stratum."""
    T = len(strata)
    out = np.empty((n_perm, T), dtype=np.int32)
    members = [np.flatnonzero(strata == s) for s in np.unique(strata)]
    for p in range(n_perm):
        row = out[p]
        for idx in members:
            row[idx] = idx[rng.permutation(len(idx))]
    return out


def natural_spline_basis(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """Natural cubic spline basis (truncated-power form, Hastie et al. ESL 5.2.1) without the intercept:
    columns x, d_1 - d_{K-1}, ..., d_{K-2} - d_{K-1}; linear beyond the boundary knots."""
    x = np.asarray(x, dtype=np.float64)
    k = np.asarray(knots, dtype=np.float64)
    K = len(k)

    def d(j):
        return (np.maximum(x - k[j], 0) ** 3 - np.maximum(x - k[-1], 0) ** 3) / (k[-1] - k[j])

    cols = [x] + [d(j) - d(K - 2) for j in range(K - 2)]
    return np.column_stack(cols)


def _onehot(rows: np.ndarray, cols: np.ndarray, n_cols: int, values=None) -> sparse.csr_array:
    """Sparse [len(rows) x n_cols] with values[i] at (i, cols[i]) (rows where cols < 0 are empty)."""
    ok = cols >= 0
    v = np.ones(ok.sum()) if values is None else np.asarray(values, dtype=np.float64)[ok]
    return sparse.csr_array((v, (rows[ok], cols[ok])), shape=(len(cols), n_cols))


@dataclass
class Space:
    """Tokens of a space (all non-special tokens) in working order, with their within-sequence covariates.

    X: [n_space, q] covariate columns (names in `names`), raw; Xw: the same within sequences (sequence means
    removed); gram: Xw' Xw; seq_sizes: tokens per sequence; seq_sums: [G, q] per-sequence sums of X."""

    rows: np.ndarray            # working-order positions of the space's tokens
    names: list[str]
    X: np.ndarray
    Xw: np.ndarray
    gram: np.ndarray
    seq_sizes: np.ndarray
    seq_sums: np.ndarray
    seq_of: np.ndarray          # sequence index of each token of the space

    def col(self, name: str) -> int:
        return self.names.index(name)


@dataclass
class Design:
    n: int
    n_types: int
    n_seq: int
    order: np.ndarray           # working position -> row of the non-special token table
    type_of: np.ndarray         # [n] type index, working order
    seq_of: np.ndarray          # [n] sequence index, working order
    next_type_of: np.ndarray    # [n] type index of the next token, -1 where there is none
    group: np.ndarray           # [n] SHORT / EQUAL / LONG, working order
    type_ids: np.ndarray        # [T] token id of each type
    counts: np.ndarray          # [T] occurrences in the sample
    length_t: np.ndarray        # [T]
    logfreq_t: np.ndarray       # [T]
    median: float
    group_sizes: tuple[int, int, int]
    cell_starts: np.ndarray     # working positions where a (type, sequence) cell starts
    cell_type: np.ndarray       # [n_cells]
    cell_seq: np.ndarray        # [n_cells]
    cell_sizes: np.ndarray
    type_cell_starts: np.ndarray  # cell positions where a type starts
    cell_to_seq: sparse.csr_array   # [n_cells, G]
    by_next_type: sparse.csr_array  # [n, T]: 1 at (i, next type of i)
    no_next: np.ndarray         # working positions of tokens without a next token
    strata: np.ndarray          # [T]
    perms: np.ndarray           # [P, T] within frequency strata
    perms_free: np.ndarray      # [P, T] among all types
    spaces: dict[str, Space] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    # ---------------------------------------------------------------------------------------------------
    @classmethod
    def build(cls, token_id, length, log_freq, seq, next_token_id, *, n_permutations: int = 500,
              seed=(0,), strata_min_types: int = 50, spline_knots: int = 5) -> "Design":
        """All arrays in row order of the non-special tokens; next_token_id is -1 where the token has no
        next (non-special) token in its sequence."""
        token_id = np.asarray(token_id, dtype=np.int64)
        y = np.asarray(length, dtype=np.float64)
        f = np.asarray(log_freq, dtype=np.float64)
        seq = np.asarray(seq)
        nxt = np.asarray(next_token_id, dtype=np.int64)
        n = len(token_id)
        if n < 4:
            raise DesignError(f"only {n} tokens: the statistics need at least 4")
        for name, v in (("length", y), ("log_freq", f)):
            if not np.isfinite(v).all():
                raise DesignError(f"tokens.parquet column `{name}` has {int((~np.isfinite(v)).sum())} non-finite "
                                  "values among the analysed tokens: re-run `dvc repro tokens@<model>`")
        if np.ptp(y) == 0:
            raise DesignError(f"token length is constant ({y[0]:g}) over the sample: no correlation with "
                              "length is defined (check tokens.count_leading_space and the corpus)")
        if np.ptp(f) == 0:
            raise DesignError("log frequency is constant over the sample: the frequency control is undefined "
                              "(is the reference corpus empty? tokens.reference_max_tokens)")
        type_ids, type_row = np.unique(token_id, return_inverse=True)
        T = len(type_ids)
        seq_labels, seq_row = np.unique(seq, return_inverse=True)
        G = len(seq_labels)
        next_row = np.searchsorted(type_ids, nxt)
        has_next = nxt >= 0
        if np.any(has_next & ((next_row >= T) | (type_ids[np.minimum(next_row, T - 1)] != nxt))):
            raise DesignError("a next token id is not among the sample's tokens")
        next_row = np.where(has_next, next_row, -1)
        length_t = np.zeros(T)
        logfreq_t = np.zeros(T)
        length_t[type_row] = y
        logfreq_t[type_row] = f
        if not (np.allclose(length_t[type_row], y) and np.allclose(logfreq_t[type_row], f)):
            raise DesignError("length / log_freq differ between tokens of the same id")
        counts = np.bincount(type_row, minlength=T)
        median = float(np.median(y))
        group_row = np.where(y < median, SHORT, np.where(y > median, LONG, EQUAL)).astype(np.int8)

        order = np.lexsort((seq_row, type_row, group_row))  # by group, then type, then sequence
        t_w, g_w, grp_w = type_row[order], seq_row[order], group_row[order]
        nt_w = next_row[order]
        key = t_w * G + g_w
        cell_starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        cell_type, cell_seq = t_w[cell_starts], g_w[cell_starts]
        cell_sizes = np.diff(np.r_[cell_starts, n])
        type_cell_starts = np.flatnonzero(np.r_[True, cell_type[1:] != cell_type[:-1]])
        # reduceat over cells then types yields sums in order of first appearance; make that 0..T-1
        type_order = cell_type[type_cell_starts]
        if not np.array_equal(np.sort(type_order), np.arange(T)):
            raise DesignError("internal: types are not contiguous in the working order")
        nc = len(cell_starts)
        d = cls(
            n=n, n_types=T, n_seq=G, order=order, type_of=t_w, seq_of=g_w, next_type_of=nt_w, group=grp_w,
            type_ids=type_ids, counts=counts, length_t=length_t, logfreq_t=logfreq_t, median=median,
            group_sizes=tuple(int((group_row == g).sum()) for g in (SHORT, EQUAL, LONG)),
            cell_starts=cell_starts, cell_type=cell_type, cell_seq=cell_seq, cell_sizes=cell_sizes,
            type_cell_starts=type_cell_starts,
            cell_to_seq=_onehot(np.arange(nc), cell_seq, G),
            by_next_type=_onehot(np.arange(n), nt_w, T),
            no_next=np.flatnonzero(nt_w < 0),
            strata=np.zeros(T, dtype=np.int32), perms=np.zeros((0, T), dtype=np.int32),
            perms_free=np.zeros((0, T), dtype=np.int32),
        )
        d.extra["type_order"] = type_order  # reduceat position -> type index
        d.extra["type_order_inv"] = np.argsort(type_order)
        cell_of = np.repeat(np.arange(nc), cell_sizes)
        d.extra["token_to_cell"] = sparse.csr_array((np.ones(n), (cell_of, np.arange(n))), shape=(nc, n))
        d.extra["cell_to_type"] = sparse.csr_array((np.ones(nc), (cell_type, np.arange(nc))), shape=(T, nc))
        d.extra["next_type_of_token"] = d.by_next_type.T.tocsr()   # [T, n]
        d._build_covariates(spline_knots)
        d.strata = strata_of(counts, strata_min_types)
        rng = np.random.default_rng(list(np.atleast_1d(seed)))
        if n_permutations:
            d.perms = stratified_permutations(d.strata, int(n_permutations), rng)
            d.perms_free = stratified_permutations(np.zeros(T, dtype=np.int32), int(n_permutations), rng)
        d.extra["jitter_seed"] = list(np.atleast_1d(seed)) + [7]
        return d

    # ---------------------------------------------------------------------------------------------------
    def _build_covariates(self, spline_knots: int) -> None:
        t, G = self.type_of, self.n_seq
        w = self.counts.astype(np.float64)
        y_t, f_t = self.length_t, self.logfreq_t
        # type-level residuals (token-weighted least squares with intercept): what the partial tests permute
        ey_t = _wresid(y_t, f_t, w)
        ef_t = _wresid(f_t, y_t, w)
        self.extra.update(ey_t=ey_t, ef_t=ef_t)
        # spline in log frequency (robustness of the frequency control): knots at type-weighted quantiles
        f_tok = f_t[t]
        knots = np.quantile(f_tok, np.linspace(0.05, 0.95, max(spline_knots, 3)))
        knots = np.unique(knots)
        B_t = natural_spline_basis(f_t, knots) if len(knots) >= 3 else f_t[:, None]
        self.extra["spline_t"] = B_t
        names = ["length", "logfreq", "ey", "ef"] + [f"spline{j}" for j in range(B_t.shape[1])]
        cov_t = np.column_stack([y_t, f_t, ey_t, ef_t, B_t])
        self.extra["cov_t"] = cov_t
        self.spaces["all"] = _space(np.arange(self.n), self.seq_of, cov_t[t], names, G)
        # per-sequence token counts of each type (for the within-sequence terms of permuted covariates)
        self.extra["seq_type_counts"] = sparse.csr_array(
            (self.cell_sizes.astype(np.float64), (self.cell_seq, self.cell_type)), shape=(G, self.n_types))

    # ---------------------------------------------------------------------------------------------------
    @property
    def n_perm(self) -> int:
        return int(self.perms.shape[0])

    def length_centred_t(self) -> np.ndarray:
        """[T] each type's length minus the mean length over the sample's tokens (the pooled statistics'
        centring: the pooled r, the two-way test, and the sums that test is computed from)."""
        return self.length_t - (self.counts @ self.length_t) / self.n

    def row_positions(self) -> np.ndarray:
        """[n] working position of each row of the non-special token table (the inverse of `order`)."""
        if "row_positions" not in self.extra:
            inv = np.empty(self.n, dtype=np.int64)
            inv[self.order] = np.arange(self.n)
            self.extra["row_positions"] = inv
        return self.extra["row_positions"]

    def token_covariates(self) -> dict[str, np.ndarray]:
        """Covariates in the row order of the non-special tokens (for tests and references)."""
        inv = self.row_positions()
        t = self.type_of[inv]
        nt = self.next_type_of[inv]
        return {"length": self.length_t[t], "log_freq": self.logfreq_t[t], "seq": self.seq_of[inv],
                "type": t, "next_length": np.where(nt >= 0, self.length_t[np.maximum(nt, 0)], np.nan)}

    def describe(self) -> dict:
        c = self.counts
        return {"n_tokens": int(self.n), "n_types": int(self.n_types), "n_sequences": int(self.n_seq),
                "n_cells": int(len(self.cell_starts)), "n_strata": int(self.strata.max() + 1),
                "n_permutations": self.n_perm,
                "effective_types": float(c.sum() ** 2 / np.sum(c.astype(float) ** 2)),
                "max_type_share": float(c.max() / c.sum())}


def _wresid(y: np.ndarray, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Residual of y on [1, x], weighted least squares with weights w (type counts)."""
    W = w.sum()
    my, mx = (w @ y) / W, (w @ x) / W
    sxx = w @ (x - mx) ** 2
    b = (w @ ((x - mx) * (y - my))) / sxx if sxx > 0 else 0.0
    return y - my - b * (x - mx)


def _space(rows, seq_of, X, names, G) -> Space:
    sizes = np.bincount(seq_of, minlength=G).astype(np.float64)
    sums = np.zeros((G, X.shape[1]))
    np.add.at(sums, seq_of, X)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(sizes[:, None] > 0, sums / sizes[:, None], 0.0)
    Xw = X - means[seq_of]
    return Space(rows=rows, names=list(names), X=X, Xw=Xw, gram=Xw.T @ Xw, seq_sizes=sizes, seq_sums=sums,
                 seq_of=seq_of)
