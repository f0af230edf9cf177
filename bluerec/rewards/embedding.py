"""Bidirectional InfoNCE reward: a profile is good when, embedded as a query, it retrieves the user's next item.

The math lives in small pure functions (:func:`masked_log_softmax`, :func:`info_nce_log_prob`,
:func:`profile_to_item_log_probs`, :func:`item_to_profile_log_probs`, the negative samplers); :class:`InfoNCEReward`
only does the plumbing from TRL's keyword columns to those functions.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from bluerec.config import StrictModel
from bluerec.rewards.protocols import TextEncoder
from bluerec.rewards.text import completion_texts, is_degenerate

# ---------------------------------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------------------------------


class InfoNCERewardConfig(StrictModel):
    """Configuration of :class:`InfoNCEReward`.

    Parameters that control the contrastive score:
        temperature: τ; scores are ``cos / τ``. Default ``0.05``.
        weight_profile_to_item: weight of the profile→item log-probability in the combined reward. Default ``1.0``.
        weight_item_to_profile: weight of the item→profile log-probability in the combined reward. Default ``1.0``.

    Parameters that control the negatives (profile→item direction):
        num_negatives: K, the number of negative items per completion when they are sampled. Default ``32``.
        negatives: sampler used when the dataset gives no ``negatives`` column: ``"uniform"`` over the catalogue,
            ``"popularity"`` (probability ∝ ``popularity ** popularity_alpha``), or ``"hard"`` (the K items closest to
            the profile). ``"hard"`` negatives depend on the profile, so they are always computed and a ``negatives``
            column is ignored. Default ``"uniform"``.
        popularity_alpha: exponent applied to the popularity counts for ``"popularity"`` negatives (``0.75`` is the
            word2vec choice). Default ``1.0``.
        exclude_history: never use an item of the ``history_items`` column as a sampled or hard negative.
            Default ``True``.
        history_negatives: add this many of the user's own history items (the ``history_items`` column: the user's
            whole history before the target, newest last — not only the items the prompt shows) to each row's
            negatives, besides the ``num_negatives`` sampled ones. Only with sampled negatives: ``"hard"`` is refused,
            and a ``negatives`` column (``data.negatives: fixed``, refused by the training config) is used as given.
            The profile must then be nearer the next item than what the user already has: a profile that restates
            older purchases scores below one that points past them. Default ``0`` (none).
        history_negatives_skip_newest: leave the user's newest ``n`` distinct history items out of
            ``history_negatives`` (the newest item's neighbours are the strongest evidence of the next one; a profile
            should not be paid for avoiding it). Default ``0``.
        seed: base seed; the sampled negatives of a row are seeded by ``(seed, step, user, target)``, so all
            completions of one prompt share their negatives. Default ``0``.

    Parameters that control degenerate profiles:
        floor: reward given to empty, whitespace-only or degenerate profiles (see
            :func:`bluerec.rewards.text.is_degenerate`). ``"chance"`` is the log-probability of a uniform guess:
            ``log 1/(K+1)`` for profile→item and ``log 1/m`` for item→profile (``m`` candidate profiles), combined with
            the weights. A float is used as is for the combined reward and for each component. Note that a floor at
            chance still beats a *worse than chance* profile; pick a float below the typical reward to rule that out.
            Default ``"chance"``.
    """

    temperature: float = Field(0.05, gt=0)
    weight_profile_to_item: float = Field(1.0, ge=0)
    weight_item_to_profile: float = Field(1.0, ge=0)
    num_negatives: int = Field(32, ge=1)
    negatives: Literal["uniform", "popularity", "hard"] = "uniform"
    popularity_alpha: float = Field(1.0, ge=0)
    exclude_history: bool = True
    history_negatives: int = Field(0, ge=0)
    history_negatives_skip_newest: int = Field(0, ge=0)
    seed: int = Field(0, ge=0)
    floor: float | Literal["chance"] = "chance"

    @model_validator(mode="after")
    def _history_negatives_need_sampling(self) -> InfoNCERewardConfig:
        if self.history_negatives and self.negatives == "hard":
            raise ValueError("history_negatives needs sampled negatives (uniform or popularity), not 'hard'")
        return self


# ---------------------------------------------------------------------------------------------------------------------
# Pure math
# ---------------------------------------------------------------------------------------------------------------------


def masked_log_softmax(logits: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Row-wise, numerically stable log-softmax over the entries where ``mask`` is ``True``.

    Masked-out entries get ``-inf``. Every row must keep at least one entry.

    Example:
    ```python
    >>> import numpy as np
    >>> masked_log_softmax(np.array([[0.0, 0.0, 5.0]]), np.array([[True, True, False]])).round(4)
    array([[-0.6931, -0.6931,    -inf]])
    ```
    """
    logits = np.asarray(logits, dtype=np.float64)
    if mask is None:
        mask = np.ones(logits.shape, dtype=bool)
    if not mask.any(axis=-1).all():
        raise ValueError("masked_log_softmax: every row needs at least one unmasked entry")
    masked = np.where(mask, logits, -np.inf)
    row_max = masked.max(axis=-1, keepdims=True)
    shifted = masked - row_max
    log_z = np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return np.where(mask, shifted - log_z, -np.inf)


def info_nce_log_prob(query: np.ndarray, positive_idx: int, candidates: np.ndarray, tau: float) -> float:
    r"""InfoNCE log-probability of one positive among candidates.

    $$\log \frac{\exp(\langle q, c_{+}\rangle / \tau)}{\sum_{c} \exp(\langle q, c\rangle / \tau)}$$

    Args:
        query: ``(d,)`` query embedding.
        positive_idx: row of ``candidates`` that is the positive.
        candidates: ``(m, d)`` candidate embeddings (positive included).
        tau: temperature.

    Example:
    ```python
    >>> import numpy as np, math
    >>> q = np.array([1.0, 0.0]); c = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> round(info_nce_log_prob(q, 0, c, tau=1.0), 6) == round(1 - math.log(math.e + 1), 6)
    True
    ```
    """
    logits = np.asarray(candidates, dtype=np.float64) @ np.asarray(query, dtype=np.float64) / tau
    return float(masked_log_softmax(logits[None, :])[0, positive_idx])


def profile_to_item_log_probs(
    profiles: np.ndarray, item_emb: np.ndarray, target_idx: np.ndarray, negative_idx: np.ndarray, tau: float
) -> tuple[np.ndarray, np.ndarray]:
    """Profile→item InfoNCE for a batch.

    Row ``i`` scores its target item against its own negatives: log-softmax, at the target, of
    ``cos(profile_i, item) / τ`` over ``{target_i} ∪ negatives_i``.

    Args:
        profiles: ``(n, d)`` L2-normalised profile embeddings.
        item_emb: ``(n_items, d)`` L2-normalised item embeddings.
        target_idx: ``(n,)`` item index of each row's target.
        negative_idx: ``(n, K)`` item indices of the negatives; ``-1`` pads rows with fewer negatives.
        tau: temperature.

    Returns:
        ``(log_probs, correct)``: the ``(n,)`` log-probabilities and whether the target scored strictly highest.
    """
    target_idx = np.asarray(target_idx, dtype=np.int64).reshape(-1, 1)
    negative_idx = np.asarray(negative_idx, dtype=np.int64).reshape(target_idx.shape[0], -1)
    cand = np.concatenate([target_idx, negative_idx], axis=1)
    mask = cand >= 0
    cand_emb = np.asarray(item_emb)[np.where(mask, cand, 0)].astype(np.float64)  # (n, K+1, d)
    logits = np.einsum("nkd,nd->nk", cand_emb, np.asarray(profiles, dtype=np.float64)) / tau
    log_probs = masked_log_softmax(logits, mask)[:, 0]
    others = np.where(mask[:, 1:], logits[:, 1:], -np.inf)
    correct = logits[:, 0] > (others.max(axis=1) if others.shape[1] else -np.inf)
    return log_probs, correct


def item_to_profile_mask(groups: Sequence[Any], targets: Sequence[Any], valid: np.ndarray) -> np.ndarray:
    """Which profiles may appear in the item→profile denominator of each row.

    ``mask[j, k]`` is ``True`` when ``k == j``, or when profile ``k`` is valid (not degenerate), belongs to another
    user (``groups[k] != groups[j]``) and has another target item (a profile whose target is the same item would be a
    false negative). Siblings — completions of the same user — are therefore never negatives of each other.
    """
    n = len(groups)
    g = np.array([hash_key(x) for x in groups], dtype=np.uint64)
    t = np.array([hash_key(x) for x in targets], dtype=np.uint64)
    mask = (g[:, None] != g[None, :]) & (t[:, None] != t[None, :]) & np.asarray(valid, dtype=bool)[None, :]
    mask[np.arange(n), np.arange(n)] = True
    return mask


def item_to_profile_log_probs(
    profiles: np.ndarray, target_emb: np.ndarray, candidate_mask: np.ndarray, tau: float
) -> np.ndarray:
    """Item→profile InfoNCE for a batch.

    Row ``j`` embeds its target item and asks which profile it belongs to: log-softmax, at profile ``j``, of
    ``cos(item_j, profile_k) / τ`` over the profiles ``k`` with ``candidate_mask[j, k]`` (see
    :func:`item_to_profile_mask`). A row whose only candidate is itself gets ``log 1 = 0``: with a single user in
    the batch this direction carries no signal.

    Args:
        profiles: ``(n, d)`` L2-normalised profile embeddings.
        target_emb: ``(n, d)`` L2-normalised embeddings of each row's target item.
        candidate_mask: ``(n, n)`` boolean mask, diagonal ``True``.
        tau: temperature.
    """
    logits = np.asarray(target_emb, dtype=np.float64) @ np.asarray(profiles, dtype=np.float64).T / tau
    n = logits.shape[0]
    return masked_log_softmax(logits, candidate_mask)[np.arange(n), np.arange(n)]


def sample_negatives(
    rng: np.random.Generator,
    n_items: int,
    k: int,
    exclude: Collection[int] = (),
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Sample up to ``k`` distinct item indices from ``range(n_items)`` minus ``exclude``.

    With ``weights`` the draw is without replacement with probability ∝ weight (items of weight 0 are used only to
    fill up when fewer than ``k`` items have positive weight). Returns fewer than ``k`` indices only when the
    catalogue minus ``exclude`` is smaller than ``k``.

    Example:
    ```python
    >>> import numpy as np
    >>> neg = sample_negatives(np.random.default_rng(0), n_items=10, k=3, exclude={0, 1})
    >>> len(neg), bool(set(neg.tolist()) & {0, 1})
    (3, False)
    ```
    """
    excluded = np.zeros(n_items, dtype=bool)
    ex = np.fromiter((i for i in exclude if 0 <= i < n_items), dtype=np.int64)
    excluded[ex] = True
    n_allowed = n_items - int(excluded.sum())
    k = min(k, n_allowed)
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    if weights is None:
        draw = rng.choice(n_items, size=min(n_items, k + int(excluded.sum())), replace=False)
        return draw[~excluded[draw]][:k].astype(np.int64)
    w = np.where(excluded, 0.0, np.asarray(weights, dtype=np.float64))
    positive = int((w > 0).sum())
    if positive >= k:
        return rng.choice(n_items, size=k, replace=False, p=w / w.sum()).astype(np.int64)
    chosen = np.flatnonzero(w > 0)
    rest = np.flatnonzero((w <= 0) & ~excluded)
    fill = rng.choice(rest, size=k - positive, replace=False)
    return np.concatenate([rng.permutation(chosen), fill]).astype(np.int64)


def hard_negative_indices(
    profiles: np.ndarray, item_emb: np.ndarray, k: int, exclude: Sequence[Collection[int]]
) -> np.ndarray:
    """The ``k`` highest-scoring items under each profile, skipping the row's excluded items (target, history).

    Returns an ``(n, k)`` array, best first; rows with fewer than ``k`` allowed items are padded with ``-1``.
    """
    scores = np.asarray(profiles, dtype=np.float32) @ np.asarray(item_emb, dtype=np.float32).T
    n, n_items = scores.shape
    out = np.full((n, k), -1, dtype=np.int64)
    for i in range(n):
        row = scores[i].astype(np.float64)
        ex = [j for j in exclude[i] if 0 <= j < n_items]
        row[ex] = -np.inf
        n_allowed = n_items - len(set(ex))
        kk = min(k, n_allowed)
        if kk <= 0:
            continue
        top = np.argpartition(-row, kk - 1)[:kk] if kk < n_items else np.arange(n_items)
        top = top[np.isfinite(row[top])]
        top = top[np.lexsort((top, -row[top]))][:kk]
        out[i, : len(top)] = top
    return out


def hash_key(value: Any) -> int:
    """A stable (not per-process salted) 64-bit hash of ``str(value)``, for seeding and grouping."""
    return int.from_bytes(hashlib.blake2b(str(value).encode("utf-8"), digest_size=8).digest(), "little")


def row_rng(seed: int, step: int, user: Any, target: Any) -> np.random.Generator:
    """The generator for one row's negatives: identical for every completion of the same (user, target) at a step."""
    return np.random.default_rng([seed, max(int(step), 0), hash_key(user), hash_key(target)])


AllGather = Callable[[Any], tuple[list[Any], int]]
"""``gather(obj) -> (objects of every rank in rank order, this rank's index)``."""


def torch_all_gather(obj: Any) -> tuple[list[Any], int]:
    """:data:`AllGather` over ``torch.distributed`` (any backend, gloo included); ``([obj], 0)`` when no process
    group is initialised or the world has one process, so single-process runs never touch torch.distributed."""
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover - torch is a dependency
        return [obj], 0
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() <= 1:
        return [obj], 0
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out, dist.get_rank()


# ---------------------------------------------------------------------------------------------------------------------
# Plumbing
# ---------------------------------------------------------------------------------------------------------------------


class ProfileEmbeddingCache:
    """Wraps a :class:`TextEncoder` so that one batch of profiles is embedded once, however many rewards ask.

    It satisfies :class:`TextEncoder` itself. The last ``max_batches`` batches are kept, keyed by their exact texts;
    duplicate texts within a batch are embedded once. Share one cache between several rewards that use the same
    encoder (e.g. two :class:`InfoNCEReward` with different temperatures).

    Example:
    ```python
    >>> cache = ProfileEmbeddingCache(encoder)
    >>> a = cache.encode_queries(["likes hiking", "likes tea"])
    >>> b = cache.encode_queries(["likes hiking", "likes tea"])   # no second call to the encoder
    ```
    """

    def __init__(self, encoder: TextEncoder, max_batches: int = 1) -> None:
        if not isinstance(encoder, TextEncoder):
            raise TypeError(f"encoder must have encode_queries(texts) -> np.ndarray, got {type(encoder).__name__}")
        self.encoder = encoder
        self.max_batches = max(1, int(max_batches))
        self._entries: dict[tuple[str, ...], np.ndarray] = {}
        self.calls = 0  # number of batches actually sent to the encoder

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        key = tuple(texts)
        hit = self._entries.get(key)
        if hit is not None:
            return hit
        unique = list(dict.fromkeys(texts))
        if unique:
            emb = np.asarray(self.encoder.encode_queries(unique), dtype=np.float32)
            if emb.ndim != 2 or emb.shape[0] != len(unique):
                raise ValueError(
                    f"encode_queries returned shape {emb.shape} for {len(unique)} texts; expected (n_texts, dim)"
                )
            self.calls += 1
            pos = {t: i for i, t in enumerate(unique)}
            out = emb[[pos[t] for t in texts]]
        else:
            out = np.zeros((0, 0), dtype=np.float32)
        self._entries[key] = out
        while len(self._entries) > self.max_batches:
            self._entries.pop(next(iter(self._entries)))
        return out


@dataclass(frozen=True)
class InfoNCEBreakdown:
    """Everything :class:`InfoNCEReward` computed for one batch (one entry per completion)."""

    profile_to_item: np.ndarray
    item_to_profile: np.ndarray
    reward: np.ndarray
    degenerate: np.ndarray
    correct: np.ndarray  # target ranked first among its candidates (profile→item)
    num_negatives: np.ndarray
    num_profile_candidates: np.ndarray
    negative_idx: np.ndarray  # (n, K) item rows used as negatives, -1 padded (none for degenerate "hard" rows)


class InfoNCEReward:
    r"""Bidirectional InfoNCE reward of a profile as a retrieval query (BLUE's embedding reward).

    Each completion is a profile ``p_j``; it is embedded with ``encoder.encode_queries`` and compared with the
    precomputed item matrix by cosine similarity over temperature τ:

    - **profile→item** ``log softmax_{i ∈ {target_j} ∪ N_j} (cos(p_j, e_i)/τ)`` at the target, with ``N_j`` the K
      negatives (from the ``negatives`` column, or sampled: uniform, popularity-weighted, or hard).
    - **item→profile** ``log softmax_{k ∈ {j} ∪ O_j} (cos(e_{target_j}, p_k)/τ)`` at ``j``, with ``O_j`` the profiles
      of *other users* in the batch whose target differs (siblings of the same prompt share the target and are
      excluded). With one user in the batch this term is ``log 1 = 0``.

    The reward is ``weight_profile_to_item * p2i + weight_item_to_profile * i2p``; degenerate profiles get the
    ``floor``. Each component is also available as its own TRL reward function (:meth:`components`), so they are
    logged separately and weighted with ``GRPOConfig.reward_weights``; all views share one computation per batch.

    Args:
        encoder: a :class:`~bluerec.rewards.protocols.TextEncoder` (wrapped in a :class:`ProfileEmbeddingCache`
            unless it already is one).
        item_emb: ``(n_items, d)`` L2-normalised item embeddings, computed once outside.
        item_index: item id → row of ``item_emb``.
        config: an :class:`InfoNCERewardConfig` (defaults if ``None``).
        popularity: ``(n_items,)`` non-negative counts; required for ``negatives="popularity"``.
        all_gather: how the item→profile direction collects the other processes' profiles (:data:`AllGather`);
            default :func:`torch_all_gather`, a no-op outside ``torch.distributed``. Under multi-process training
            (accelerate/DDP) each rank scores its own completions, but the item→profile candidates are the profiles
            of *every* rank, so its negatives do not shrink as processes are added: the result equals a
            single-process run on the concatenated batch.

    Inputs (keyword columns, one entry per completion, as TRL passes them):

    | column          | type                | required | meaning                                                 |
    |-----------------|---------------------|----------|---------------------------------------------------------|
    | `completions`   | str or messages     | yes      | the profiles                                            |
    | `target_item`   | str                 | yes      | id of the true next item                                |
    | `user_id`       | str                 | no       | groups siblings; falls back to the prompt text          |
    | `negatives`     | list[str] or None   | no       | precomputed negative item ids (target/dupes dropped)    |
    | `history_items` | list[str]           | no       | the user's history, never sampled as a negative         |
    | `trainer_state` | TRL state           | no       | ``global_step`` seeds the sampled negatives             |

    Example:
    ```python
    >>> reward = InfoNCEReward(encoder, item_emb, item_index, InfoNCERewardConfig(num_negatives=8))
    >>> p2i, i2p = reward.components()
    >>> trainer = GRPOTrainer(..., reward_funcs=[p2i, i2p],
    ...                       args=GRPOConfig(reward_weights=reward.component_weights(), ...))
    >>> reward(completions=["likes hiking boots"], target_item=["B001"], user_id=["u1"])
    [-0.42]
    ```
    """

    __name__ = "infonce"

    def __init__(
        self,
        encoder: TextEncoder,
        item_emb: np.ndarray,
        item_index: Mapping[str, int],
        config: InfoNCERewardConfig | None = None,
        popularity: np.ndarray | None = None,
        all_gather: AllGather | None = None,
    ) -> None:
        self.config = config or InfoNCERewardConfig()
        self.all_gather: AllGather = all_gather or torch_all_gather
        self.cache = encoder if isinstance(encoder, ProfileEmbeddingCache) else ProfileEmbeddingCache(encoder)
        item_emb = np.ascontiguousarray(np.asarray(item_emb, dtype=np.float32))
        if item_emb.ndim != 2 or item_emb.shape[0] == 0:
            raise ValueError(f"item_emb must be a non-empty (n_items, d) matrix, got shape {item_emb.shape}")
        norms = np.linalg.norm(item_emb, axis=1)
        if not np.all(np.isfinite(item_emb)) or np.abs(norms - 1.0).max() > 1e-2:
            raise ValueError("item_emb rows must be finite and L2-normalised (|norm - 1| <= 1e-2)")
        self.item_emb = item_emb
        self.item_index = dict(item_index)
        bad = [i for i in self.item_index.values() if not 0 <= i < item_emb.shape[0]]
        if bad:
            raise ValueError(f"item_index points outside item_emb (n_items={item_emb.shape[0]}): e.g. {bad[:3]}")
        self._weights: np.ndarray | None = None
        if popularity is not None:
            pop = np.asarray(popularity, dtype=np.float64)
            if pop.shape != (item_emb.shape[0],) or not np.all(np.isfinite(pop)) or (pop < 0).any():
                raise ValueError(f"popularity must be ({item_emb.shape[0]},) finite non-negative, got {pop.shape}")
            self._weights = pop**self.config.popularity_alpha
        if self.config.negatives == "popularity" and (self._weights is None or self._weights.sum() <= 0):
            raise ValueError("negatives='popularity' needs a popularity array with a positive total")
        self.last_components: dict[str, float] = {}
        self._cache_key: tuple[Any, ...] | None = None
        self._cache_value: InfoNCEBreakdown | None = None
        self._views = {
            "profile_to_item": InfoNCEComponentReward(self, "profile_to_item", f"{self.__name__}_profile_to_item"),
            "item_to_profile": InfoNCEComponentReward(self, "item_to_profile", f"{self.__name__}_item_to_profile"),
        }

    # -- public views -------------------------------------------------------------------------------------------------

    @property
    def profile_to_item(self) -> InfoNCEComponentReward:
        """The unweighted profile→item log-probability as a TRL reward function (``__name__`` ``infonce_profile_to_item``)."""
        return self._views["profile_to_item"]

    @property
    def item_to_profile(self) -> InfoNCEComponentReward:
        """The unweighted item→profile log-probability as a TRL reward function (``__name__`` ``infonce_item_to_profile``)."""
        return self._views["item_to_profile"]

    def components(self) -> list[InfoNCEComponentReward]:
        """``[profile_to_item, item_to_profile]``, to pass as ``reward_funcs`` with :meth:`component_weights`."""
        return [self.profile_to_item, self.item_to_profile]

    def component_weights(self) -> list[float]:
        """``[weight_profile_to_item, weight_item_to_profile]``, matching :meth:`components` (``reward_weights``)."""
        return [self.config.weight_profile_to_item, self.config.weight_item_to_profile]

    def __call__(self, completions: Sequence[Any], **columns: Any) -> list[float]:
        return self.compute(completions, **columns).reward.tolist()

    # -- computation --------------------------------------------------------------------------------------------------

    def compute(
        self,
        completions: Sequence[Any],
        target_item: Sequence[str] | None = None,
        user_id: Sequence[Any] | None = None,
        negatives: Sequence[Sequence[str] | None] | None = None,
        history_items: Sequence[Sequence[str] | None] | None = None,
        prompts: Sequence[Any] | None = None,
        trainer_state: Any = None,
        log_metric: Callable[[str, float], None] | None = None,
        **_: Any,
    ) -> InfoNCEBreakdown:
        """Compute (or fetch from the one-batch cache) every component for a batch; see the class docstring."""
        n = len(completions)
        if target_item is None:
            raise ValueError(
                f"{self.__name__} needs a 'target_item' column (item id of the true next item); "
                f"got columns {sorted(k for k in _)}"
            )
        _check_len("target_item", target_item, n)
        texts = completion_texts(completions)
        groups = _group_keys(user_id, prompts, n)
        step = int(getattr(trainer_state, "global_step", 0) or 0)
        key = (
            tuple(texts),
            tuple(map(str, target_item)),
            tuple(map(str, groups)),
            step,
            _freeze(negatives),
            _freeze(history_items),
        )
        if key == self._cache_key and self._cache_value is not None:
            return self._cache_value
        result = self._compute(texts, list(target_item), groups, step, negatives, history_items)
        self._cache_key, self._cache_value = key, result
        self.last_components = _summary(result)
        if log_metric is not None:
            for name in ("degenerate_fraction", "profile_to_item_accuracy"):
                log_metric(f"{self.__name__}/{name}", self.last_components[name])
        return result

    def _compute(
        self,
        texts: list[str],
        targets: list[str],
        groups: list[Any],
        step: int,
        negatives: Sequence[Sequence[str] | None] | None,
        history_items: Sequence[Sequence[str] | None] | None,
    ) -> InfoNCEBreakdown:
        cfg = self.config
        n = len(texts)
        if negatives is not None:
            _check_len("negatives", negatives, n)
        if history_items is not None:
            _check_len("history_items", history_items, n)
        target_idx = np.array([self._lookup(t, "target_item") for t in targets], dtype=np.int64)

        # Embed the non-degenerate profiles once (shared cache), then normalise defensively.
        degenerate = np.array([is_degenerate(t) for t in texts], dtype=bool)
        profiles = np.zeros((n, self.item_emb.shape[1]), dtype=np.float64)
        valid_rows = np.flatnonzero(~degenerate)
        if valid_rows.size:
            emb = self.cache.encode_queries([texts[i] for i in valid_rows])
            if emb.shape != (valid_rows.size, self.item_emb.shape[1]):
                raise ValueError(
                    f"encoder returned shape {emb.shape}; expected ({valid_rows.size}, {self.item_emb.shape[1]})"
                    " — was item_emb made with the same encoder?"
                )
            emb = emb.astype(np.float64)
            norms = np.linalg.norm(emb, axis=1)
            ok = np.isfinite(emb).all(axis=1) & np.isfinite(norms) & (norms > 1e-12)
            profiles[valid_rows[ok]] = emb[ok] / norms[ok, None]
            degenerate[valid_rows[~ok]] = True
        valid = ~degenerate

        # Negatives (profile→item).
        exclude = [self._exclusions(target_idx[i], history_items[i] if history_items is not None else None)
                   for i in range(n)]
        if cfg.negatives == "hard":
            neg = np.full((n, cfg.num_negatives), -1, dtype=np.int64)
            rows = np.flatnonzero(valid)
            if rows.size:
                neg[rows] = hard_negative_indices(profiles[rows], self.item_emb, cfg.num_negatives,
                                                  [exclude[i] for i in rows])
            num_neg = np.where(valid, (neg >= 0).sum(axis=1), min(cfg.num_negatives, self.item_emb.shape[0] - 1))
        else:
            neg_lists = []
            for i in range(n):
                given = negatives[i] if negatives is not None else None
                if given is not None:
                    ids = [self._lookup(x, "negatives") for x in given]
                    neg_lists.append([x for x in dict.fromkeys(ids) if x != target_idx[i]])
                else:
                    rng = row_rng(cfg.seed, step, groups[i], targets[i])
                    weights = self._weights if cfg.negatives == "popularity" else None
                    own = self._history_negatives(history_items[i] if history_items is not None else None,
                                                  target_idx[i])
                    sampled = sample_negatives(rng, self.item_emb.shape[0], cfg.num_negatives, exclude[i] | set(own),
                                               weights).tolist()
                    neg_lists.append(own + sampled)
            width = max((len(x) for x in neg_lists), default=0)
            neg = np.full((n, width), -1, dtype=np.int64)
            for i, row in enumerate(neg_lists):
                neg[i, : len(row)] = row
            num_neg = np.array([len(x) for x in neg_lists], dtype=np.int64)

        p2i = np.zeros(n)
        correct = np.zeros(n, dtype=bool)
        if valid.any():
            p2i[valid], correct[valid] = profile_to_item_log_probs(
                profiles[valid], self.item_emb, target_idx[valid], neg[valid], cfg.temperature
            )

        # Item→profile over the other users' valid profiles, gathered from every process (one collective call per
        # batch: every rank computes the same batches in the same order, so the calls pair up).
        parts, rank = self.all_gather((profiles, [str(g) for g in groups], [str(t) for t in targets], valid))
        offset = sum(len(p[1]) for p in parts[:rank])
        dim = self.item_emb.shape[1]
        all_profiles = np.concatenate([np.asarray(p[0], dtype=np.float64).reshape(len(p[1]), dim) for p in parts])
        all_groups = [g for p in parts for g in p[1]]
        all_targets = [t for p in parts for t in p[2]]
        all_valid = np.concatenate([np.asarray(p[3], dtype=bool) for p in parts])
        all_target_idx = np.array([self._lookup(t, "target_item") for t in all_targets], dtype=np.int64)
        mine = np.arange(offset, offset + n)
        mask = item_to_profile_mask(all_groups, all_targets, all_valid)
        num_cand = mask[mine].sum(axis=1)
        i2p = np.zeros(n)
        if valid.any():
            cols = np.flatnonzero(all_valid)  # this rank's valid rows are among them
            pos = np.searchsorted(cols, mine[valid])
            logp = item_to_profile_log_probs(all_profiles[cols], self.item_emb[all_target_idx[cols]],
                                             mask[np.ix_(cols, cols)], cfg.temperature)
            i2p[valid] = logp[pos]

        w1, w2 = cfg.weight_profile_to_item, cfg.weight_item_to_profile
        if cfg.floor == "chance":
            p2i_floor = -np.log1p(num_neg.astype(np.float64))
            i2p_floor = -np.log(num_cand.astype(np.float64))
            total_floor = w1 * p2i_floor + w2 * i2p_floor
        else:
            p2i_floor = i2p_floor = total_floor = np.full(n, float(cfg.floor))
        p2i = np.where(valid, p2i, p2i_floor)
        i2p = np.where(valid, i2p, i2p_floor)
        total = np.where(valid, w1 * p2i + w2 * i2p, total_floor)
        for name, arr in (("profile_to_item", p2i), ("item_to_profile", i2p), ("reward", total)):
            if not np.all(np.isfinite(arr)):  # pragma: no cover - guarded by construction
                raise FloatingPointError(f"{self.__name__}: non-finite {name} reward")
        return InfoNCEBreakdown(
            profile_to_item=p2i,
            item_to_profile=i2p,
            reward=total,
            degenerate=degenerate,
            correct=correct & valid,
            num_negatives=num_neg,
            num_profile_candidates=num_cand,
            negative_idx=neg,
        )

    def _lookup(self, item_id: Any, column: str) -> int:
        try:
            return self.item_index[str(item_id)]
        except KeyError:
            raise KeyError(
                f"{self.__name__}: item id {item_id!r} from column {column!r} is not in item_index "
                f"({len(self.item_index)} items) — were the item embeddings built from the same dataset?"
            ) from None

    def _history_negatives(self, history: Sequence[str] | None, target: int) -> list[int]:
        """The row's own history items used as negatives (``history_negatives``): distinct items of the history,
        newest first, without the newest ``history_negatives_skip_newest`` distinct items and the target. Ids absent
        from the item index are skipped, as in the exclusions."""
        cfg = self.config
        if not cfg.history_negatives or history is None:
            return []
        newest_first = [self.item_index[h] for h in map(str, reversed(list(history))) if h in self.item_index]
        distinct = list(dict.fromkeys(newest_first))[cfg.history_negatives_skip_newest:]
        return [i for i in distinct if i != target][: cfg.history_negatives]

    def _exclusions(self, target: int, history: Sequence[str] | None) -> set[int]:
        out = {int(target)}
        if self.config.exclude_history and history is not None:
            out.update(self.item_index[h] for h in map(str, history) if h in self.item_index)
        return out


class InfoNCEComponentReward:
    """One component of an :class:`InfoNCEReward` as its own TRL reward function (unweighted).

    TRL names a reward by ``getattr(func, "__name__", type(func).__name__)``, so every view carries an instance
    ``__name__`` (``infonce_profile_to_item``, ``infonce_item_to_profile``). The computation is shared with the parent
    through its one-batch cache, so the profiles are embedded once per batch whichever views are used.
    """

    def __init__(self, parent: InfoNCEReward, field: Literal["profile_to_item", "item_to_profile"], name: str) -> None:
        self.parent = parent
        self.field = field
        self.__name__ = name

    def __call__(self, completions: Sequence[Any], **columns: Any) -> list[float]:
        breakdown = self.parent.compute(completions, **columns)
        values: np.ndarray = getattr(breakdown, self.field)
        return values.tolist()

    def __repr__(self) -> str:
        return f"InfoNCEComponentReward({self.__name__})"


def _group_keys(user_id: Sequence[Any] | None, prompts: Sequence[Any] | None, n: int) -> list[Any]:
    if user_id is not None:
        _check_len("user_id", user_id, n)
        return [str(u) for u in user_id]
    if prompts is not None and len(prompts) == n:
        return [f"prompt:{p!r}" for p in prompts]
    return [f"row:{i}" for i in range(n)]


def _check_len(name: str, column: Sequence[Any], n: int) -> None:
    if len(column) != n:
        raise ValueError(f"column {name!r} has {len(column)} entries for {n} completions")


def _freeze(column: Sequence[Sequence[str] | None] | None) -> Any:
    if column is None:
        return None
    return tuple(None if row is None else tuple(map(str, row)) for row in column)


def _summary(b: InfoNCEBreakdown) -> dict[str, float]:
    valid = ~b.degenerate
    return {
        "profile_to_item": float(b.profile_to_item.mean()) if b.reward.size else math.nan,
        "item_to_profile": float(b.item_to_profile.mean()) if b.reward.size else math.nan,
        "reward": float(b.reward.mean()) if b.reward.size else math.nan,
        "degenerate_fraction": float(b.degenerate.mean()) if b.reward.size else 0.0,
        "profile_to_item_accuracy": float(b.correct[valid].mean()) if valid.any() else 0.0,
    }


# ---------------------------------------------------------------------------------------------------------------------
# Registry entry (bluerec.rewards.registry)
# ---------------------------------------------------------------------------------------------------------------------


def _build(config: InfoNCERewardConfig, ctx: Any) -> list[tuple[InfoNCEComponentReward, float]]:
    reward = InfoNCEReward(ctx.encoder, ctx.item_emb, ctx.dataset.items.index, config,
                           popularity=np.asarray(ctx.dataset.items.popularity, dtype=np.float64))
    return list(zip(reward.components(), reward.component_weights()))


def _registry_entry() -> Any:
    from bluerec.rewards.registry import RewardSpec

    return RewardSpec(
        name="infonce", config=InfoNCERewardConfig, build=_build,
        columns=("target_item", "user_id", "history_items"),
        dataset_options=lambda cfg: {"num_negatives": cfg.num_negatives},
        description="bidirectional InfoNCE of the profile embedding against the next item (two components)",
    )


REWARD = _registry_entry()
