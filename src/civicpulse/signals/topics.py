"""Hot issues: the posts and requests of a time window grouped into issues (the same complaint
or event said many ways), each labelled by its distinctive terms, matched to the issues of the
previous window so that it keeps its identity, and ranked by heat.

Plain Python, no Django; documents arrive as token lists (``civicpulse.text.tokenize.tokens``).

    groups = cluster([tokens(t) for t in texts])          # [Cluster(members, terms, label, ...)]
    ids = match(groups, {7: old_terms, 9: other_terms})  # {0: 7, 1: None, ...}
    rank([Figures(size=40, previous=5, reach=900, negative=0.6), ...])

How the window is clustered, and why:

- Identical token sets are folded into one row carrying its multiplicity first, so a repost
  storm costs one row, and IDF is computed over every post (reposts included).
- Posts are TF-IDF vectors (sublinear term counts, L2 norm) of their words and of the pairs
  of adjacent characters inside their Chinese words, since jieba cuts one name several ways
  (丽发 / 区丽发 / 市丽发 in messages about the same estate); two posts are alike when their
  cosine reaches ``threshold``. Labels use the words only.
- Groups are *stars*: the post with the most alike neighbours is a centre and takes every
  unassigned neighbour, and so on. Every member is alike to its centre, so a chain of
  pairwise-alike chatter (A~B~C~...) never makes a giant cluster, which connected components
  would. Stars whose centroids are alike (at ``CENTROID_SHARE`` of the threshold) are merged
  by the same star rule over centroids, and every post goes to the nearest merged centroid it
  reaches at that share — a step of spherical k-means with a floor, which also drops the
  members that drifted off. A post far from every centroid is chatter and in no issue.
- Comparing every pair is quadratic in the size of the hot issues themselves (3,000 reposts of
  one hashtag are 4.5 million pairs), so large windows are *peeled*: stars are found in a
  sample of ``peel_sample`` posts, where an issue holding a fair share of the window shows
  up many times, its centroid collects its members from the whole window, and they leave. When
  a round finds little more, the remaining posts (no hot issue left among them) are compared
  pair by pair, with candidates drawn only from terms that are not generic in the remainder
  (a pair that shares only "视频 全文 武汉" is not an issue); their exact cosine still counts
  every term. Above ``max_docs`` remaining posts, a sample of that many is compared and the
  others join the found issues by centroid.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

# Two posts whose TF-IDF cosine reaches this are alike (a star's members and its centre).
THRESHOLD = 0.5
# A post joins an issue's centroid, and two issues' centroids merge, at this share of the
# threshold: a centroid averages many wordings of one issue, so a member written in its own
# words sits further from it than two reposts from each other (TipDM: members of the issue
# "魅力之城 油烟" at 0.36-0.55 from their centroid, pairs at a median 0.14).
CENTROID_SHARE = 0.8
# Posts compared pair by pair in one peeling round (a 4,000 x 4,000 product is cheap).
PEEL_SAMPLE = 4_000
# After peeling, a term held by more than this share of the remaining posts (and by at least
# GENERIC_FLOOR of them) does not by itself make two posts candidates.
GENERIC_SHARE = 0.01
GENERIC_FLOOR = 50
# Peeling stops when a round moves fewer than this share of the remaining posts into issues.
PEEL_MIN_GAIN = 0.05
PEEL_MAX_ROUNDS = 8
# A centroid's lightest terms, up to this joint norm, are left out when posts are assigned.
CENTROID_SLACK = 0.05
# Terms held by more than this share of the centroids (and this many) are multiplied densely
# when posts are assigned.
DENSE_SHARE = 0.1
DENSE_SPREAD = 16
# Two term lists continue one issue from one window to the next at this overlap or more
# (:func:`same_issue`; measured on Weibo issues held by one hashtag, docs/hot-issues.md).
MIN_OVERLAP = 0.4
# Label: this many terms; terms shorter than two characters or placeholders never label.
LABEL_TERMS = 4
# Weight of the character pairs' IDF beside the words' (0 leaves them out).
CHAR_PAIRS = 1.0
_ROWS_PER_BLOCK = 2_000
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]{2,}")


@dataclass
class Cluster:
    """One issue of a window. ``members`` index the input documents (sorted); ``terms`` are
    its distinctive terms with weights, best first (the term's mean sublinear count over the
    members x log(window posts / posts holding it): a class-based TF-IDF, so a term frequent in
    the issue and rare in the window wins); ``label`` joins the first few; ``center`` is the
    member nearest the centroid (its text is the best one-line summary); ``cohesion`` is the
    members' mean cosine to the centroid."""

    members: list[int]
    terms: list[tuple[str, float]]
    label: str
    center: int
    cohesion: float

    @property
    def size(self) -> int:
        return len(self.members)


# ------------------------------------------------------------------------------ vectors


class _Window:
    """The window's distinct token sets as L2-normalised TF-IDF rows, with multiplicities."""

    def __init__(self, docs: Sequence[list[str]]):
        keys: dict[frozenset, int] = {}
        self.groups: list[list[int]] = []
        vocab: dict[str, int] = {}
        indices: list[int] = []
        indptr = [0]
        for i, doc in enumerate(docs):
            if isinstance(doc, str) or not isinstance(doc, Sequence):
                raise TypeError(
                    f"docs[{i}] is a {type(doc).__name__}, not a token list: tokenize texts "
                    "with civicpulse.text.tokenize.tokens first"
                )
            if not doc:
                continue
            try:
                key = frozenset(doc)
            except TypeError:
                raise TypeError(f"docs[{i}] holds a token that is not a str") from None
            row = keys.get(key)
            if row is not None:
                self.groups[row].append(i)
                continue
            keys[key] = len(self.groups)
            self.groups.append([i])
            indices.extend([vocab.setdefault(t, len(vocab)) for t in doc])
            indptr.append(len(indices))
        odd = next((t for t in vocab if not isinstance(t, str)), None)
        if odd is not None:
            raise TypeError(f"tokens must be str, got {odd!r} ({type(odd).__name__})")
        self.terms = np.array(list(vocab), dtype=object)
        self.mass = np.array([len(g) for g in self.groups], dtype=np.float64)
        self.total = float(self.mass.sum())
        shape = (len(self.groups), len(vocab))
        counts = sp.csr_matrix(
            (
                np.ones(len(indices), dtype=np.float32),
                np.asarray(indices, dtype=np.int32),
                np.asarray(indptr),
            ),
            shape,
        )
        counts.sum_duplicates()  # repeated tokens of a document add up
        # sublinear term counts; ``present`` marks which documents hold which terms
        self.tf = counts.copy()
        self.tf.data = 1.0 + np.log(self.tf.data)
        self.present = counts.copy()
        self.present.data[:] = 1.0
        # document frequency over every post, reposts included
        self.df = np.asarray(self.present.T @ self.mass).ravel()
        # what the cosine compares: the words, and the character pairs inside Chinese words
        # (jieba cuts one name three ways: 丽发 / 区丽发 / 市丽发 all hold 丽发)
        features = counts
        if CHAR_PAIRS:
            pairs = _char_pairs(self.terms)
            features = sp.hstack([counts, counts @ pairs]).tocsr()
        self.features = features.copy()
        self.features.data[:] = 1.0
        df = np.asarray(self.features.T @ self.mass).ravel()
        idf = (np.log((1.0 + self.total) / (1.0 + df)) + 1.0).astype(np.float32)
        if CHAR_PAIRS:
            idf[len(self.terms) :] *= CHAR_PAIRS
        tf = features.copy()
        tf.data = 1.0 + np.log(tf.data)
        self.x = _normalize_rows(tf @ sp.diags(idf))

    def __len__(self) -> int:
        return len(self.groups)


def _char_pairs(terms: np.ndarray) -> sp.csr_matrix:
    """terms x character pairs: how often each pair of adjacent Chinese characters occurs in
    each term."""
    vocab: dict[str, int] = {}
    rows, cols = [], []
    for t, term in enumerate(terms):
        run = _CJK_RUN.findall(term)
        for chars in run:
            for k in range(len(chars) - 1):
                rows.append(t)
                cols.append(vocab.setdefault(chars[k : k + 2], len(vocab)))
    data = np.ones(len(rows), dtype=np.float32)
    out = sp.csr_matrix((data, (rows, cols)), shape=(len(terms), len(vocab)))
    out.sum_duplicates()
    return out


def _normalize_rows(m: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    return (sp.diags(1.0 / np.maximum(norms, 1e-12)) @ m).tocsr().astype(np.float32)


def _centroids(x: sp.csr_matrix, labels: np.ndarray, mass: np.ndarray, k: int) -> sp.csr_matrix:
    """The L2-normalised mass-weighted mean row of each label 0..k-1 (label -1 is ignored)."""
    rows = np.flatnonzero(labels >= 0)
    member = sp.csr_matrix((mass[rows], (labels[rows], rows)), shape=(k, x.shape[0]))
    return _normalize_rows(member @ x)


# ------------------------------------------------------------------------------ pairs


def _alike_pairs(
    x: sp.csr_matrix, threshold: float, generic: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i < j) of rows of ``x`` whose cosine reaches ``threshold``. With ``generic`` (a
    column mask), only pairs sharing a non-generic term are candidates; their cosine is still
    exact (the generic terms' part is added back)."""
    n = x.shape[0]
    if generic is None or not generic.any():
        rare, common = x, None
    else:
        rare = x[:, np.flatnonzero(~generic)].tocsr()
        common = x[:, np.flatnonzero(generic)].tocsr()
        common_norm = np.sqrt(np.asarray(common.multiply(common).sum(axis=1)).ravel())
        common_dense = common.toarray()
    rare_t = rare.T.tocsr()
    out_i, out_j = [], []
    for start in range(0, n, _ROWS_PER_BLOCK):
        block = (rare[start : start + _ROWS_PER_BLOCK] @ rare_t).tocoo()
        i = block.row + start
        keep = block.col > i
        i, j, sim = i[keep], block.col[keep], block.data[keep]
        if common is not None:
            # the generic part is at most the product of the two generic norms
            hope = sim + common_norm[i] * common_norm[j] >= threshold
            i, j, sim = i[hope], j[hope], sim[hope]
            for s in range(0, len(i), 500_000):
                a, b = i[s : s + 500_000], j[s : s + 500_000]
                sim[s : s + 500_000] += np.einsum("ij,ij->i", common_dense[a], common_dense[b])
        ok = sim >= threshold
        out_i.append(i[ok])
        out_j.append(j[ok])
    if not out_i:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(out_i), np.concatenate(out_j)


def _stars(n: int, pi: np.ndarray, pj: np.ndarray, mass: np.ndarray) -> np.ndarray:
    """Star groups of a similarity graph: the heaviest node (its own mass plus its neighbours')
    becomes a centre and takes its unassigned neighbours, then the next. Returns a label per
    node; an isolated node is a star of its own."""
    labels = np.full(n, -1, dtype=np.int64)
    adj = sp.csr_matrix((np.ones(len(pi), dtype=np.float32), (pi, pj)), shape=(n, n))
    adj = (adj + adj.T).tocsr()
    strength = mass + adj @ mass
    order = np.argsort(-strength, kind="stable")
    indptr, indices = adj.indptr, adj.indices
    k = 0
    for node in order:
        if labels[node] >= 0:
            continue
        labels[node] = k
        if indptr[node + 1] > indptr[node]:
            nb = indices[indptr[node] : indptr[node + 1]]
            labels[nb[labels[nb] < 0]] = k
        k += 1
    return labels


def _prune(m: sp.csr_matrix, slack: float = CENTROID_SLACK) -> sp.csr_matrix:
    """``m`` without each row's lightest entries whose joint norm stays within ``slack``: a
    centroid holds every word of every member, and the long tail costs most of the product
    while it moves a cosine by at most ``slack`` (Cauchy-Schwarz), and only downwards."""
    m = m.tocsr()
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    order = np.lexsort((m.data, rows))
    squares = m.data[order].astype(np.float64) ** 2
    running = np.cumsum(squares)
    starts = m.indptr[:-1]
    before = np.where(starts > 0, running[np.maximum(starts - 1, 0)], 0.0)
    within = running - np.repeat(before, np.diff(m.indptr))
    keep = np.ones(len(m.data), dtype=bool)
    keep[order[within <= slack * slack]] = False
    out = sp.csr_matrix((np.where(keep, m.data, 0), m.indices.copy(), m.indptr.copy()), m.shape)
    out.eliminate_zeros()
    return out


def _best_centroid(
    x: sp.csr_matrix, centroids: sp.csr_matrix, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """For each row, the nearest centroid reached at ``threshold`` (-1 if none) and its cosine."""
    n = x.shape[0]
    label = np.full(n, -1, dtype=np.int64)
    best = np.zeros(n, dtype=np.float32)
    if centroids.shape[0] == 0 or n == 0:
        return label, best
    pruned = _prune(centroids).tocsc()
    # terms held by many centroids (<num>, the city's name) go through a dense product, the
    # rest through a sparse one: a sparse product pays for every (post, centroid) pair that
    # shares a term, and common terms are shared by nearly all
    spread = np.diff(pruned.indptr)
    dense = spread > max(DENSE_SPREAD, DENSE_SHARE * centroids.shape[0])
    common, rare = np.flatnonzero(dense), np.flatnonzero(~dense)
    c_common = pruned[:, common].toarray().T
    c_rare = pruned[:, rare].T.tocsr()
    x_common, x_rare = x[:, common].tocsr(), x[:, rare].tocsr()
    for start in range(0, n, _ROWS_PER_BLOCK):
        stop = start + _ROWS_PER_BLOCK
        sims = (x_rare[start:stop] @ c_rare).toarray()
        if len(common):
            sims += x_common[start:stop].toarray() @ c_common
        arg = sims.argmax(axis=1)
        top = sims[np.arange(len(arg)), arg]
        ok = top >= threshold
        label[start : start + len(arg)] = np.where(ok, arg, -1)
        best[start : start + len(arg)] = top
    return label, best


# ------------------------------------------------------------------------------ clustering


def _group(
    x: sp.csr_matrix, mass: np.ndarray, threshold: float, generic: np.ndarray | None
) -> list[np.ndarray]:
    """Stars of the rows of ``x`` merged by centroid; groups of more than one post (by mass)."""
    pi, pj = _alike_pairs(x, threshold, generic)
    labels = _stars(x.shape[0], pi, pj, mass)
    k = int(labels.max()) + 1 if len(labels) else 0
    star_mass = np.bincount(labels, weights=mass, minlength=k)
    keep = star_mass >= 2
    remap = np.full(k, -1)
    remap[keep] = np.arange(int(keep.sum()))
    labels = remap[labels]
    k = int(keep.sum())
    if k == 0:
        return []
    cents = _centroids(x, labels, mass, k)
    ci, cj = _alike_pairs(cents, threshold * CENTROID_SHARE)
    merged = _stars(k, ci, cj, star_mass[keep])
    labels = np.where(labels >= 0, merged[np.maximum(labels, 0)], -1)
    return [np.flatnonzero(labels == g) for g in range(int(merged.max()) + 1)]


def _settle(
    w: _Window, rows: np.ndarray, groups: list[np.ndarray], threshold: float
) -> tuple[list[np.ndarray], np.ndarray]:
    """The centroid of each group (indices into ``rows``) takes every row that reaches it at
    ``threshold`` (the nearest, if several), and drops the members that do not. Returns the
    groups of more than one post (as window rows) and the rows in none."""
    if not groups:
        return [], rows
    x = w.x[rows]
    labels = np.full(len(rows), -1, dtype=np.int64)
    for g, members in enumerate(groups):
        labels[members] = g
    k = len(groups)
    labels, _best = _best_centroid(
        x, _centroids(x, labels, w.mass[rows], k), threshold * CENTROID_SHARE
    )
    mass = np.bincount(labels[labels >= 0], weights=w.mass[rows][labels >= 0], minlength=k)
    labels[labels >= 0] = np.where(mass[labels[labels >= 0]] >= 2, labels[labels >= 0], -1)
    order = np.argsort(labels, kind="stable")
    cuts = np.searchsorted(labels[order], np.arange(k + 1))
    settled = [rows[order[cuts[g] : cuts[g + 1]]] for g in range(k) if mass[g] >= 2]
    return settled, rows[labels < 0]


def _peel(
    w: _Window, threshold: float, max_docs: int, peel_sample: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Issues of the whole window, as arrays of window rows (see the module's docstring)."""
    active = np.arange(len(w))
    found: list[np.ndarray] = []
    for _ in range(PEEL_MAX_ROUNDS):
        if len(active) <= peel_sample:
            break
        p = w.mass[active] / w.mass[active].sum()
        sample = np.sort(rng.choice(active, peel_sample, replace=False, p=p))
        seeds = _group(w.x[sample], w.mass[sample], threshold, None)
        # seed groups as indices into ``active``
        where = np.searchsorted(active, sample)
        groups, rest = _settle(w, active, [where[g] for g in seeds], threshold)
        gained = w.mass[active].sum() - w.mass[rest].sum()
        found += groups
        active = rest
        if gained < PEEL_MIN_GAIN * w.mass[active].sum():
            break
    if len(active) == 0:
        return found
    pool = active
    if len(active) > max_docs:
        pool = np.sort(rng.choice(active, max_docs, replace=False))
    generic = None
    if len(active) > peel_sample:
        df = np.asarray(w.features[pool].T @ w.mass[pool]).ravel()
        generic = df > max(GENERIC_FLOOR, GENERIC_SHARE * w.mass[pool].sum())
    groups = _group(w.x[pool], w.mass[pool], threshold, generic)
    where = np.searchsorted(active, pool)
    groups, _rest = _settle(w, active, [where[g] for g in groups], threshold)
    found += groups
    if len(found) > 1:
        # issues found in different rounds may be one: merge those whose centroids are alike
        labels = np.full(len(w), -1, dtype=np.int64)
        for g, rows in enumerate(found):
            labels[rows] = g
        cents = _centroids(w.x, labels, w.mass, len(found))
        ci, cj = _alike_pairs(cents, threshold * CENTROID_SHARE)
        merged = _stars(len(found), ci, cj, np.array([w.mass[g].sum() for g in found]))
        if merged.max() + 1 < len(found):
            found = [
                np.concatenate([found[g] for g in np.flatnonzero(merged == m)])
                for m in range(int(merged.max()) + 1)
            ]
    return found


def cluster(
    docs: Sequence[list[str]],
    *,
    min_size: int = 3,
    threshold: float = THRESHOLD,
    max_docs: int = 20_000,
    peel_sample: int = PEEL_SAMPLE,
    n_terms: int = 10,
    seed: int = 0,
) -> list[Cluster]:
    """The issues of one window of token lists, largest first; a document in no issue is
    chatter. ``min_size`` counts posts (reposts included); ``threshold`` is the cosine that
    makes two posts alike; a window of more than ``peel_sample`` distinct posts is peeled with
    samples of that many, and ``max_docs`` bounds the posts then compared pair by pair (see
    the module's docstring); ``n_terms`` terms describe each issue; ``seed`` fixes the
    samples."""
    if min_size < 1:
        raise ValueError(f"min_size must be at least 1, got {min_size}")
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be a cosine between 0 and 1, got {threshold}")
    for name, value in (("max_docs", max_docs), ("peel_sample", peel_sample)):
        if value < 2:
            raise ValueError(f"{name} must be at least 2, got {value}")
    if n_terms < 1:
        raise ValueError(f"n_terms must be at least 1, got {n_terms}")
    w = _Window(docs)
    if len(w) == 0:
        return []
    rng = np.random.default_rng(seed)
    groups = _peel(w, threshold, max_docs, peel_sample, rng)
    if min_size == 1:
        covered = np.zeros(len(w), dtype=bool)
        for g in groups:
            covered[g] = True
        groups += [np.array([r]) for r in np.flatnonzero(~covered)]
    groups = [g for g in groups if w.mass[g].sum() >= min_size]
    return _describe(w, groups, n_terms)


def _describe(w: _Window, groups: list[np.ndarray], n_terms: int) -> list[Cluster]:
    """Clusters of window rows: members, distinctive terms, centre and cohesion; largest
    first."""
    if not groups:
        return []
    k = len(groups)
    labels = np.full(len(w), -1, dtype=np.int64)
    for g, rows in enumerate(groups):
        labels[rows] = g
    rows = np.flatnonzero(labels >= 0)
    member = sp.csr_matrix((w.mass[rows], (labels[rows], rows)), shape=(k, len(w)))
    size = np.asarray(member.sum(axis=1)).ravel()
    centroids = _normalize_rows(member @ w.x)
    sims = np.asarray(w.x[rows].multiply(centroids[labels[rows]]).sum(axis=1)).ravel()
    cohesion = np.bincount(labels[rows], weights=sims * w.mass[rows], minlength=k) / size
    # the member nearest its centroid: sort by (label, -sim), take each label's first
    order = np.lexsort((-sims, labels[rows]))
    firsts = order[np.searchsorted(labels[rows][order], np.arange(k))]
    centres = rows[firsts]
    # terms: mean sublinear count in the issue x log(window posts / posts holding the term)
    weight = (sp.diags(1.0 / size) @ (member @ w.tf)).tocsr()
    weight.data *= np.log(w.total / w.df[weight.indices])
    out = []
    for g in range(k):
        lo, hi = weight.indptr[g], weight.indptr[g + 1]
        cols, vals = weight.indices[lo:hi], weight.data[lo:hi]
        terms = []
        for c in np.lexsort((cols, -vals)):
            term = w.terms[cols[c]]
            if term.startswith("<") and term.endswith(">"):
                continue  # <num>, <url>
            terms.append((str(term), round(float(vals[c]), 4)))
            if len(terms) == n_terms:
                break
        members = sorted(i for r in groups[g] for i in w.groups[r])
        out.append(
            Cluster(
                members, terms, label(terms), w.groups[centres[g]][0], round(float(cohesion[g]), 4)
            )
        )
    return sorted(out, key=lambda c: (-c.size, c.members[0]))


def label(terms: Sequence[tuple[str, float]], n: int = LABEL_TERMS) -> str:
    """The first ``n`` terms of at least two characters, skipping a term that is part of (or
    holds) one already taken ("滨河苑" after "伊景园滨河苑"), joined with " · "."""
    taken: list[str] = []
    for term, _weight in terms:
        if len(term) < 2 or any(term in t or t in term for t in taken):
            continue
        taken.append(term)
        if len(taken) == n:
            break
    return " · ".join(taken)


# ------------------------------------------------------------------------------ identity


def _shares(terms: Sequence[tuple[str, float]], top: int) -> dict[str, float]:
    best = sorted(terms, key=lambda tw: -tw[1])[:top]
    total = sum(max(wt, 0.0) for _t, wt in best)
    if total <= 0:
        return {}
    return {t: max(wt, 0.0) / total for t, wt in best}


def signature(terms: Sequence[tuple[str, float]], top: int = 5) -> str:
    """A stable key for an issue: its ``top`` heaviest terms, sorted, joined by "|". Two
    windows' clusters with the same signature are the same issue for certain; a near match
    needs :func:`same_issue`."""
    best = sorted(terms, key=lambda tw: (-tw[1], tw[0]))[:top]
    return "|".join(sorted(t for t, _w in best))


def same_issue(
    terms_a: Sequence[tuple[str, float]], terms_b: Sequence[tuple[str, float]], top: int = 10
) -> float:
    """How much two term lists overlap, 0..1: each list's ``top`` weights are made shares of
    one, and the score is the sum over shared terms of the smaller share (1 = the same terms in
    the same proportions). Weights rather than a plain Jaccard, so that two windows agreeing on
    the issue's main terms match even when their tails differ."""
    a, b = _shares(terms_a, top), _shares(terms_b, top)
    return float(sum(min(v, b[t]) for t, v in a.items() if t in b))


def match(
    clusters: Sequence[Cluster | Sequence[tuple[str, float]]],
    existing: Mapping[int, Sequence[tuple[str, float]]],
    min_overlap: float = MIN_OVERLAP,
) -> dict[int, int | None]:
    """Which existing issue (id -> its terms) each new cluster (or its terms) continues, one to
    one: the best scoring pair (:func:`same_issue`) is matched first, then the best among those
    left, and so on; a cluster left with no pair scoring ``min_overlap`` or more is new (None).
    Greedy rather than an optimal assignment: the strongest continuation is never given up to
    raise the total of weaker ones."""
    if not 0.0 < min_overlap <= 1.0:
        raise ValueError(f"min_overlap must be in (0, 1], got {min_overlap}")
    new_terms = [c.terms if isinstance(c, Cluster) else c for c in clusters]
    postings: dict[str, list[int]] = {}
    for issue, terms in existing.items():
        for t, _w in terms:
            postings.setdefault(t, []).append(issue)
    pairs = []
    for i, terms in enumerate(new_terms):
        candidates = {issue for t, _w in terms for issue in postings.get(t, ())}
        for issue in candidates:
            score = same_issue(terms, existing[issue])
            if score >= min_overlap:
                pairs.append((-score, i, issue))
    pairs.sort(key=lambda p: (p[0], p[1], str(p[2])))
    out: dict[int, int | None] = dict.fromkeys(range(len(new_terms)))
    used: set[int] = set()
    for _score, i, issue in pairs:
        if out[i] is None and issue not in used:
            out[i] = issue
            used.add(issue)
    return out


# ------------------------------------------------------------------------------ heat

# heat = (ln(1 + size) + REACH_WEIGHT * ln(1 + reach))
#        * ((size + GROWTH_SMOOTHING) / (previous + GROWTH_SMOOTHING)) ** GROWTH_POWER
#        * (1 + NEGATIVE_WEIGHT * negative)
REACH_WEIGHT = 0.5
GROWTH_SMOOTHING = 5.0
GROWTH_POWER = 0.5
NEGATIVE_WEIGHT = 1.0


@dataclass(frozen=True)
class Figures:
    """What the caller knows of one issue in the current window: ``size`` posts, ``previous``
    posts of the same issue in the previous window (0 for a new issue), ``reach`` (people
    reached: distinct authors, likes or reposts — the caller's measure, the same for every
    issue it ranks) and ``negative``, the share of its posts that are negative (0..1)."""

    size: float
    previous: float = 0.0
    reach: float = 0.0
    negative: float = 0.0


def heat(figures: Figures) -> float:
    """The heat of one issue::

        (ln(1 + size) + 0.5 ln(1 + reach))          volume, with diminishing returns
        x ((size + 5) / (previous + 5)) ** 0.5       growth on the previous window
        x (1 + negative)                             a wholly negative issue counts double

    Logarithms, because a 2,000-post issue is not 100 times as urgent as a 20-post one; the
    growth ratio is smoothed by 5 posts so that 0 -> 3 posts is no surge, and square-rooted so
    that (well above 5 posts) doubling weighs x1.4 and a tenfold rise x3.2. Rises in size (at
    a fixed previous), reach and negative share never lower the heat; a rise in ``previous``
    never raises it."""
    f = figures
    for name in ("size", "previous", "reach"):
        value = getattr(f, name)
        if not (value >= 0 and math.isfinite(value)):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    if not 0.0 <= f.negative <= 1.0:
        raise ValueError(f"negative must be a share between 0 and 1, got {f.negative!r}")
    volume = math.log1p(f.size) + REACH_WEIGHT * math.log1p(f.reach)
    growth = ((f.size + GROWTH_SMOOTHING) / (f.previous + GROWTH_SMOOTHING)) ** GROWTH_POWER
    return volume * growth * (1.0 + NEGATIVE_WEIGHT * f.negative)


def rank(figures: Sequence[Figures]) -> list[tuple[int, float]]:
    """(index, heat) of each issue, hottest first (ties keep the input order)."""
    scored = [(i, heat(f)) for i, f in enumerate(figures)]
    return sorted(scored, key=lambda p: -p[1])
