"""Two deterministic baseline profiles that need no model.

- :func:`raw_history_text`: the last ``n`` item titles joined by `` | `` (oldest first).
- :func:`template_profile`: a hand-written summary — top keywords, brands and categories by
  recency-weighted counts, then the most recent items::

      Interests: lipstick, foundation, matte. Favourite brands: Maybelline, L'Oreal.
      Categories: Beauty > Makeup > Lips. Recently: Matte Lipstick Red; Fit Me Foundation; ...

Both are pure functions; ties are broken by recency and then alphabetically, so equal inputs always
give equal text.
"""

from __future__ import annotations

import html
import re
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bluerec.profiler.prompts import clip

if TYPE_CHECKING:
    from bluerec.data.dataset import Example, PreparedDataset

_WS = re.compile(r"\s+")
_TOKEN = re.compile(r"[^\W\d_](?:[\w'\-]*[^\W\d_])?")

STOP_WORDS = frozenset(
    """
    a about above after again against all also am an and any are as at be because been before being below
    between both but by can could did do does doing down during each either few for from further had has have
    having he her here hers herself him himself his how i if in into is it its itself just me more most my
    myself neither no nor not now of off on once only or other our ours ourselves out over own same she should
    so some such than that the their theirs them themselves then there these they this those through to too
    under until up very was we were what when where which while who whom why will with would you your yours
    yourself yourselves new one two three four five six ten set pack packs piece pieces pcs pc count ct size
    sizes oz fl ml mg kg lb lbs g gram grams ounce ounces inch inches cm mm ft x w l h vol value item items
    product products use used using great best good better free plus pro extra ultra super mini large small
    medium long short made make includes include including per each color colors colour colours style
    design type kit total edition version multi assorted assortment variety gift gifts women men womens mens
    unisex adult adults kids kid girls boys all-in-one professional premium quality perfect
    """.split()
)


@dataclass(frozen=True)
class TemplateItem:
    """What the template profile needs to know about one item in a user's history."""

    title: str
    categories: tuple[str, ...] | list[str] = field(default_factory=tuple)
    store: str | None = None
    rating: float | None = None


def _clean(text: str | None) -> str:
    # The data stage already unescapes HTML entities; do it again defensively (``&amp;amp;`` and the like).
    text = text or ""
    for _ in range(2):
        unescaped = html.unescape(text)
        if unescaped == text:
            break
        text = unescaped
    return _WS.sub(" ", text).strip()


def raw_history_text(titles: Sequence[str], n: int = 20, sep: str = " | ") -> str:
    """The last ``n`` non-empty titles, oldest first, HTML-unescaped and joined by ``sep``."""
    cleaned = [t for t in (_clean(t) for t in titles) if t]
    return sep.join(cleaned[-n:]) if n > 0 else ""


def tokenize_keywords(text: str) -> list[str]:
    """Lower-cased word tokens of ``text`` without stop-words, numbers and one/two-letter words, in order."""
    return [t for t in _TOKEN.findall(_clean(text).lower()) if len(t) >= 3 and t not in STOP_WORDS]


def _recency_weights(n: int, decay: float) -> list[float]:
    return [decay ** (n - 1 - i) for i in range(n)]


def _top(weights: dict[str, float], last_seen: dict[str, int], k: int) -> list[str]:
    ranked = sorted(weights, key=lambda key: (-round(weights[key], 9), -last_seen[key], key))
    return ranked[:k]


@dataclass(frozen=True)
class TemplateSummary:
    """The parts of a template profile, each best first."""

    keywords: list[str]
    brands: list[str]
    categories: list[str]
    recent: list[str]  # newest first


def summarize(
    items: Sequence[TemplateItem],
    *,
    decay: float = 0.85,
    max_keywords: int = 5,
    max_brands: int = 2,
    max_categories: int = 2,
    recent: int = 3,
    recent_title_chars: int = 60,
) -> TemplateSummary:
    """Recency-weighted top keywords, brands (stores) and category paths of a history (oldest first).

    Item ``i`` of ``n`` weighs ``decay ** (n - 1 - i)`` (newest = 1); an item rated 2/5 or lower counts
    half. Keywords count once per item title; brand names do not repeat as keywords. Ties go to the
    more recently seen value, then alphabetically.
    """
    weights = _recency_weights(len(items), decay)
    kw_w: dict[str, float] = {}
    kw_seen: dict[str, int] = {}
    brand_w: dict[str, float] = {}
    brand_seen: dict[str, int] = {}
    brand_name: dict[str, str] = {}
    cat_w: dict[str, float] = {}
    cat_seen: dict[str, int] = {}
    for pos, (item, w) in enumerate(zip(items, weights)):
        if item.rating is not None and item.rating <= 2:
            w *= 0.5
        for tok in dict.fromkeys(tokenize_keywords(item.title)):
            kw_w[tok] = kw_w.get(tok, 0.0) + w
            kw_seen[tok] = pos
        store = _clean(item.store)
        if store:
            key = store.lower()
            brand_w[key] = brand_w.get(key, 0.0) + w
            brand_seen[key] = pos
            brand_name.setdefault(key, store)
        cats = [c for c in (_clean(c) for c in item.categories or ()) if c]
        if cats:
            path = " > ".join(cats)
            cat_w[path] = cat_w.get(path, 0.0) + w
            cat_seen[path] = pos

    brands = _top(brand_w, brand_seen, max_brands)
    for tok in {t for b in brands for t in tokenize_keywords(b)}:
        kw_w.pop(tok, None)
    recent_titles = [clip(_clean(it.title), recent_title_chars) for it in reversed(items)]
    return TemplateSummary(
        keywords=_top(kw_w, kw_seen, max_keywords),
        brands=[brand_name[b] for b in brands],
        categories=_top(cat_w, cat_seen, max_categories),
        recent=[t for t in recent_titles if t][:recent],
    )


def template_profile(items: Sequence[TemplateItem], **kwargs: Any) -> str:
    """A readable summary of a history (oldest first); ``kwargs`` go to :func:`summarize`. Sections with
    nothing to say are left out; an empty history gives ``"No history yet."``."""
    if not items:
        return "No history yet."
    summary = summarize(items, **kwargs)
    parts = []
    if summary.keywords:
        parts.append(f"Interests: {', '.join(summary.keywords)}.")
    if summary.brands:
        parts.append(f"Favourite brands: {', '.join(summary.brands)}.")
    if summary.categories:
        parts.append(f"Categories: {'; '.join(summary.categories)}.")
    if summary.recent:
        parts.append(f"Recently: {'; '.join(summary.recent)}.")
    return " ".join(parts) if parts else "No history yet."


# --- template items from a prepared dataset ------------------------------------------------------------

_META_CACHE: "weakref.WeakKeyDictionary[Any, dict[str, TemplateItem]]" = weakref.WeakKeyDictionary()


def item_meta(dataset: "PreparedDataset") -> dict[str, TemplateItem]:
    """item_id -> TemplateItem (title, categories or else main_category, store) read once per dataset.
    Columns a dataset lacks are left empty."""
    cached = _META_CACHE.get(dataset)
    if cached is not None:
        return cached
    cols = dataset.read_columns("items", ("item_id", "title", "main_category", "categories", "store"))
    titles, mains, cats, stores = cols["title"], cols["main_category"], cols["categories"], cols["store"]
    meta = {}
    for item_id, title, main, cat, store in zip(cols["item_id"], titles, mains, cats, stores):
        categories = tuple(c for c in (cat or []) if c) or ((main,) if main else ())
        meta[item_id] = TemplateItem(title=title or "", categories=categories, store=store or None)
    _META_CACHE[dataset] = meta
    return meta


def template_items_for(dataset: "PreparedDataset", example: "Example") -> list[TemplateItem]:
    """The example's history (oldest first) as :class:`TemplateItem` s with the user's ratings."""
    from bluerec.profiler.prompts import user_feedback

    meta = item_meta(dataset)
    feedback = user_feedback(dataset)
    out = []
    for item_id in example.history:
        base = meta.get(item_id) or TemplateItem(title=item_id)
        rating = feedback.get((example.user_id, item_id), (None, None))[0]
        out.append(TemplateItem(title=base.title, categories=base.categories, store=base.store, rating=rating))
    return out
