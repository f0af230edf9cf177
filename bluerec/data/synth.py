"""``bluerec data synth``: synthetic raw data in the exact Amazon Reviews 2023 / Google Local file formats,
with a known latent structure.

Latent model
------------
* A catalogue of *interest clusters*. Amazon (beauty-like): a cluster is a (product type, attribute) pair such as
  "Hydrating Face Moisturizer" or "Vegan Lipstick"; its items differ by brand, target ("for Dry Skin") and size,
  e.g. "Lumora Hydrating Face Moisturizer for Dry Skin, 1.7 fl oz". Google: a cluster is a (business type,
  attribute) pair such as "cozy Coffee shop". Clusters have Zipf popularity; items inside a cluster too.
* Every user has 2–4 interests: ``n_old = k // 2`` *old* interests and ``k - n_old`` *current* ones, each group with
  Dirichlet weights. At relative position ``t = i / (n - 1)`` in the user's history the probability that an
  on-interest interaction comes from the current group is
  ``p_cur(t) = (1 - drift) / 2 + drift * sigmoid((t - switch) / SWITCH_WIDTH)`` with ``switch ~ U(0.5, 0.8)``, so
  early history is dominated by old interests (and the history's majority cluster is usually an old one), while the
  last interactions — and so the leave-last-out targets — come from the current interests.
* With probability ``noise`` an interaction is a popularity-weighted random item instead (lower ratings).
* Ratings follow a realistic skew (on-interest items mostly 4–5 stars); review titles/texts are templated sentences
  mentioning the product type and the attribute, with sentiment matching the rating.

Ground truth goes to ``<out>/truth.json`` (columnar and compact): clusters, item → cluster, and per user the interest
clusters, weights, ``n_old``, ``switch``, ``current_top`` and the number of interactions.

Speed
-----
Everything per row is generated as numpy arrays in chunks of :data:`CHUNK_ROWS` reviews; lines are assembled by
Arrow's vectorised string join from precomputed item/user/template fragments (no per-row Python; item meta too), and
chunks are deflated pigz-style in a thread pool while the next chunk is built — still one standard gzip member.
Output is byte-identical for a given config (gzip mtime 0, fixed header name) and every file is written atomically.
"""

from __future__ import annotations

import json
import math
import struct
import time
import zlib
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, model_validator

from bluerec.config import StrictModel
from bluerec.io import atomic_path, write_text_atomic

if TYPE_CHECKING:
    from bluerec.data.config import SourceConfig

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``; stage is e.g. ``"amazon reviews"``, counts are reviews (or items for meta)."""

CHUNK_ROWS = 100_000  # reviews per generated chunk (part of the deterministic layout: do not vary per call)
META_CHUNK = 25_000  # items per meta chunk (any value gives the same bytes)
SWITCH_RANGE = (0.5, 0.8)  # where (as a fraction of the history) the interests switch from old to current
SWITCH_WIDTH = 0.06  # sigmoid width of the switch
TRUTH_VERSION = 1
MAX_USER_INTERESTS = 4

# ----------------------------------------------------------------------------------------------------------------
# Vocabulary (plain ASCII, no quotes/backslashes: fragments are spliced into JSON lines without escaping)
# ----------------------------------------------------------------------------------------------------------------

# group -> (category path, item form, target detail key, product types, attributes, targets, sizes)
AMAZON_GROUPS: dict[str, dict[str, Any]] = {
    "Skin Care": {
        "path": ["Beauty & Personal Care", "Skin Care", "Face"],
        "detail": "Skin Type",
        "types": ["Face Moisturizer", "Night Cream", "Eye Cream", "Facial Serum", "Face Cleanser", "Toner",
                  "Sheet Mask", "Face Sunscreen", "Exfoliating Scrub", "Clay Mask"],
        "attributes": ["Hydrating", "Anti-Aging", "Brightening", "Fragrance-Free", "Vegan", "Organic", "Oil-Free",
                       "Soothing", "Firming", "Non-Comedogenic"],
        "targets": ["Dry Skin", "Oily Skin", "Sensitive Skin", "Combination Skin", "All Skin Types", "Mature Skin",
                    "Acne-Prone Skin"],
        "sizes": ["1.7 fl oz", "1 fl oz", "3.4 fl oz", "2 oz", "50 ml", "5 Count"],
        "forms": ["Cream", "Lotion", "Gel", "Serum"],
    },
    "Hair Care": {
        "path": ["Beauty & Personal Care", "Hair Care"],
        "detail": "Hair Type",
        "types": ["Shampoo", "Conditioner", "Hair Mask", "Hair Oil", "Leave-In Conditioner", "Dry Shampoo",
                  "Curl Cream", "Heat Protectant Spray"],
        "attributes": ["Sulfate-Free", "Volumizing", "Hydrating", "Color-Safe", "Anti-Frizz", "Vegan", "Organic",
                       "Strengthening", "Lightweight", "Clarifying"],
        "targets": ["Curly Hair", "Fine Hair", "Thick Hair", "Color-Treated Hair", "Damaged Hair", "All Hair Types"],
        "sizes": ["8 fl oz", "12 fl oz", "16.9 fl oz", "4 oz", "33.8 fl oz"],
        "forms": ["Liquid", "Cream", "Spray", "Oil"],
    },
    "Makeup": {
        "path": ["Beauty & Personal Care", "Makeup"],
        "detail": "Recommended Uses For Product",
        "types": ["Foundation", "Concealer", "Mascara", "Eyeliner", "Lipstick", "Lip Gloss", "Eyeshadow Palette",
                  "Blush", "Setting Powder", "Makeup Primer"],
        "attributes": ["Matte", "Long-Lasting", "Waterproof", "Vegan", "Cruelty-Free", "Dewy", "Smudge-Proof",
                       "Shimmer", "Full-Coverage", "Talc-Free"],
        "targets": ["Women", "All Skin Tones", "Everyday Wear", "Sensitive Eyes", "Fair Skin", "Deep Skin Tones"],
        "sizes": ["0.3 oz", "1 fl oz", "0.12 oz", "1 Count", "0.34 fl oz"],
        "forms": ["Liquid", "Powder", "Stick", "Pencil"],
    },
    "Bath & Body": {
        "path": ["Beauty & Personal Care", "Skin Care", "Body"],
        "detail": "Skin Type",
        "types": ["Body Lotion", "Body Wash", "Body Butter", "Hand Cream", "Bath Bomb Set", "Body Scrub",
                  "Deodorant"],
        "attributes": ["Moisturizing", "Unscented", "Aluminum-Free", "Organic", "Exfoliating", "Vegan",
                       "Shea Butter", "Lavender"],
        "targets": ["Dry Skin", "Men", "Women", "Sensitive Skin", "Whole Family"],
        "sizes": ["16 fl oz", "8 oz", "12 Count", "2.6 oz", "3.4 fl oz"],
        "forms": ["Lotion", "Gel", "Bar", "Cream"],
    },
    "Nail Care": {
        "path": ["Beauty & Personal Care", "Foot, Hand & Nail Care", "Nail Art & Polish"],
        "detail": "Recommended Uses For Product",
        "types": ["Nail Polish", "Cuticle Oil", "Gel Top Coat", "Nail Strengthener", "Nail Clipper Set"],
        "attributes": ["Quick-Dry", "Long-Lasting", "Non-Toxic", "Glossy", "Chip-Resistant", "Vegan"],
        "targets": ["Weak Nails", "Home Manicure", "Brittle Nails", "Salon Use"],
        "sizes": ["0.5 fl oz", "0.27 fl oz", "1 Set", "0.4 fl oz"],
        "forms": ["Liquid", "Oil", "Gel"],
    },
    "Fragrance": {
        "path": ["Beauty & Personal Care", "Fragrance"],
        "detail": "Target Audience",
        "types": ["Eau de Parfum", "Body Mist", "Solid Perfume", "Roll-On Perfume Oil"],
        "attributes": ["Floral", "Woody", "Fresh", "Vanilla", "Citrus", "Long-Lasting"],
        "targets": ["Women", "Men", "Everyday Wear", "Evening Wear"],
        "sizes": ["3.4 fl oz", "1.7 fl oz", "8 fl oz", "0.33 fl oz"],
        "forms": ["Spray", "Oil", "Balm"],
    },
    "Tools & Accessories": {
        "path": ["Beauty & Personal Care", "Tools & Accessories"],
        "detail": "Recommended Uses For Product",
        "types": ["Makeup Brush Set", "Facial Roller", "Eyelash Curler", "Hair Dryer Brush", "Makeup Sponge",
                  "Tweezers"],
        "attributes": ["Professional", "Travel-Size", "Ergonomic", "Rose Quartz", "Latex-Free", "Stainless Steel"],
        "targets": ["Travel", "Beginners", "Professional Use", "Daily Use"],
        "sizes": ["1 Count", "12 Pieces", "4 Pack", "2 Count"],
        "forms": ["Brush", "Tool", "Set"],
    },
}

AMAZON_BRANDS = [
    "Lumora", "Aveline", "Pure Petal", "Glow Theory", "Verdana", "Solene", "Mira Botanics", "Kindred Skin", "Nuvelle",
    "Clair & Co", "Oakridge Naturals", "Bellamy", "Sora Beauty", "Halden", "True Bloom", "Velvet Fox", "Coral Bay",
    "Northwind", "Saffron Lane", "Juniper Lab", "Opaline", "Marisol", "Everly", "Ivy Grove", "Luxe Lab", "Amberly",
    "Cedar & Sage", "Fernwood", "Bright Theory", "Silk Road Beauty", "Wildhaven", "Pearl Harbor Co", "Rosalind",
    "Tideline", "Meadow Muse", "Calder", "Orchid Row", "Sunday Ritual", "Brisa", "Lark & Linen", "Moonwell",
    "Ashby", "Goldleaf", "Palomar", "Nimbus", "Harlow", "Willowby", "Vita Bloom", "Kestrel", "Azalea Skin",
]

GOOGLE_GROUPS: dict[str, dict[str, Any]] = {
    "Food": {
        "types": [("Mexican restaurant", "Taqueria"), ("Italian restaurant", "Trattoria"),
                  ("Pizza restaurant", "Pizza"), ("Sushi restaurant", "Sushi"), ("Thai restaurant", "Thai Kitchen"),
                  ("Indian restaurant", "Curry House"), ("Chinese restaurant", "Wok"),
                  ("Hamburger restaurant", "Burgers"), ("Barbecue restaurant", "BBQ"),
                  ("Vegan restaurant", "Vegan Kitchen"), ("Breakfast restaurant", "Diner"),
                  ("Seafood restaurant", "Fish House")],
        "extra": "Restaurant",
        "attributes": ["cozy", "family-friendly", "affordable", "upscale", "quick", "authentic", "lively",
                       "quiet"],
        "misc": {"Service options": ["Dine-in", "Takeout", "Delivery"], "Offerings": ["Comfort food", "Vegetarian options"]},
    },
    "Drinks": {
        "types": [("Coffee shop", "Coffee"), ("Bakery", "Bakery"), ("Bar", "Tavern"), ("Brewery", "Brewing Co."),
                  ("Wine bar", "Wine Bar"), ("Ice cream shop", "Creamery"), ("Tea house", "Tea House")],
        "extra": "Cafe",
        "attributes": ["cozy", "trendy", "quiet", "lively", "pet-friendly", "affordable", "spacious"],
        "misc": {"Service options": ["Dine-in", "Takeout"], "Atmosphere": ["Casual", "Cozy"]},
    },
    "Services": {
        "types": [("Hair salon", "Salon"), ("Nail salon", "Nails"), ("Barber shop", "Barbershop"),
                  ("Auto repair shop", "Auto Repair"), ("Car wash", "Car Wash"), ("Dentist", "Dental"),
                  ("Veterinarian", "Animal Hospital"), ("Laundromat", "Laundromat"), ("Gym", "Fitness"),
                  ("Yoga studio", "Yoga")],
        "extra": "Service establishment",
        "attributes": ["friendly", "affordable", "professional", "quick", "clean", "upscale"],
        "misc": {"Accessibility": ["Wheelchair accessible entrance"], "Planning": ["Appointments recommended"]},
    },
    "Shopping": {
        "types": [("Grocery store", "Market"), ("Hardware store", "Hardware"), ("Book store", "Books"),
                  ("Florist", "Flowers"), ("Pet store", "Pet Supply"), ("Thrift store", "Thrift"),
                  ("Clothing store", "Boutique"), ("Gift shop", "Gifts")],
        "extra": "Store",
        "attributes": ["affordable", "well-stocked", "locally owned", "friendly", "spacious", "upscale"],
        "misc": {"Service options": ["In-store shopping", "Curbside pickup"], "Payments": ["Debit cards", "Credit cards"]},
    },
    "Leisure": {
        "types": [("Park", "Park"), ("Museum", "Museum"), ("Movie theater", "Cinema"), ("Bowling alley", "Lanes"),
                  ("Hotel", "Inn"), ("Campground", "Campground")],
        "extra": "Tourist attraction",
        "attributes": ["family-friendly", "quiet", "clean", "scenic", "affordable", "spacious"],
        "misc": {"Accessibility": ["Wheelchair accessible parking lot"], "Amenities": ["Restroom", "Good for kids"]},
    },
}

GOOGLE_NAME_WORDS = [
    "Maple", "Riverside", "Green Mountain", "Blue Door", "Old Mill", "Main Street", "Cedar", "Harbor", "Lakeside",
    "Sunrise", "Golden", "Red Barn", "Stone Bridge", "Pine Hill", "Village", "Northside", "Brookside", "Elm Street",
    "Union", "Copper Kettle", "Rosa's", "Tony's", "Mama Lu's", "Sal's", "Lucky", "Wildflower", "Summit", "Valley",
    "Hometown", "Corner", "Twin Oaks", "Silver Birch", "Oak & Ash", "Foxglove", "Heritage", "Bluebird", "Parkside",
    "Meadowbrook", "Iron Horse", "Little",
]
FIRST_NAMES = [
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth", "William",
    "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Chris", "Karen", "Daniel", "Lisa",
    "Matthew", "Nancy", "Anthony", "Sandra", "Mark", "Ashley", "Steven", "Emily", "Paul", "Donna", "Andrew",
    "Michelle", "Joshua", "Carol", "Kevin", "Amanda", "Brian", "Melissa", "Maria", "Jose", "Wei", "Priya", "Ahmed",
]
LAST_NAMES = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Thompson",
    "White", "Harris", "Clark", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Nguyen",
    "Hill", "Green", "Adams", "Baker", "Nelson", "Patel", "Kim", "Chen", "Rivera",
]
TOWNS = ["Springfield", "Fairview", "Riverton", "Greenville", "Franklin", "Clinton", "Georgetown", "Madison",
         "Salem", "Ashland", "Milford", "Oakdale", "Burlington", "Bristol", "Dover", "Hudson"]
STREETS = ["Main St", "Church St", "Maple Ave", "Oak St", "Park Ave", "Elm St", "Pine St", "Washington St",
           "Route 7", "Lake Rd", "Hill St", "Center St", "Union St", "River Rd", "Mill St", "Broadway"]
STATES = {  # name -> (abbreviation, latitude, longitude, zip prefix)
    "Vermont": ("VT", 44.0, -72.7, "05"), "Alaska": ("AK", 61.2, -149.9, "99"), "Delaware": ("DE", 39.0, -75.5, "19"),
    "Hawaii": ("HI", 21.3, -157.8, "96"), "Wyoming": ("WY", 42.8, -107.3, "82"), "Maine": ("ME", 44.7, -69.4, "04"),
    "New_York": ("NY", 40.7, -74.0, "10"), "California": ("CA", 36.8, -119.4, "9"), "Texas": ("TX", 31.0, -99.9, "7"),
}
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

# Review templates per rating (index 0 = 1 star). "{p}" = item phrase, "{a}" = attribute, "{t}" = type (lower case).
AMAZON_OPENERS = [
    ["I regret buying this {t}.", "Do not waste your money on this {t}.", "I returned this {t} after two days.",
     "Terrible experience with this {t}."],
    ["I was disappointed with this {t}.", "Not impressed by this {t}.", "I wanted to like this {t}, but no.",
     "This {t} did not work for me."],
    ["I have mixed feelings about this {t}.", "This {t} is okay and does the job.", "Nothing special about this {t}.",
     "I expected a bit more from this {t}."],
    ["I really like this {t}.", "Pretty happy with this {t}.", "I have used this {t} for a few weeks and it works well.",
     "This {t} is good value."],
    ["I absolutely love this {t}!", "So happy I bought this {t}.", "Best {t} I have tried in years.",
     "This {t} exceeded my expectations."],
]
AMAZON_CLAIMS = [
    ["It claims to be {a}, but it is not.", "Not {a} at all.", "Supposedly {a}, which is a joke."],
    ["It is not as {a} as advertised.", "Barely {a}.", "I bought it because it is {a}, but I am not convinced."],
    ["It is somewhat {a}, but not as much as I hoped.", "Reasonably {a}.", "It is {a}, I guess."],
    ["It is nicely {a}.", "Genuinely {a}, as described.", "I like that it is {a}."],
    ["It is truly {a}.", "Really {a}, just as described.", "Love that it is {a}!"],
]
AMAZON_CLOSERS = [
    ["Save your money.", "Would not recommend.", "Returning it."],
    ["Would not buy again.", "Not worth the price.", "Look elsewhere."],
    ["It is fine for the price.", "Might try something else next time.", "Average overall."],
    ["Would buy again.", "Recommended.", "Nice packaging too."],
    ["Will buy again!", "Highly recommend!", "Great price too."],
]
AMAZON_TITLES = [
    ["One Star", "Terrible", "Waste of money", "Do not buy this {t}"],
    ["Two Stars", "Disappointed", "Not great", "Not worth it"],
    ["Three Stars", "It is okay", "Average {t}", "Meh"],
    ["Four Stars", "Really nice {t}", "Works well", "Good value"],
    ["Five Stars", "Love it!", "Holy grail {t}", "Best {t} ever"],
]
GOOGLE_OPENERS = [
    ["Worst {t} in town.", "Terrible experience at this {t}.", "Avoid this {t}."],
    ["Disappointing visit to this {t}.", "Not impressed by this {t}.", "This {t} has gone downhill."],
    ["Decent {t}, nothing special.", "This {t} is okay.", "Average {t}."],
    ["Good {t}, we will be back.", "Really nice {t}.", "Solid {t} with friendly staff."],
    ["Best {t} around!", "We love this {t}!", "Amazing {t}, highly recommend."],
]
GOOGLE_CLAIMS = [
    ["Not {a} at all.", "They say it is {a}, it is not.", "Anything but {a}."],
    ["Not very {a}.", "Less {a} than expected.", "Hardly {a}."],
    ["Somewhat {a}.", "Reasonably {a}.", "Fairly {a}."],
    ["Nice and {a}.", "Pleasantly {a}.", "Quite {a}."],
    ["Wonderfully {a}!", "So {a}!", "Perfectly {a}."],
]
RATING_PROBS_ON = np.array([0.02, 0.03, 0.08, 0.27, 0.60])  # on-interest items
RATING_PROBS_NOISE = np.array([0.12, 0.13, 0.20, 0.25, 0.30])  # noise / popular items


def _check_vocab() -> None:
    def walk(x: Any) -> None:
        if isinstance(x, str):
            if not x.isascii() or '"' in x or "\\" in x or any(ord(ch) < 32 for ch in x):
                raise AssertionError(f"vocabulary string needs escaping: {x!r}")
        elif isinstance(x, dict):
            for k, v in x.items():
                walk(k)
                walk(v)
        elif isinstance(x, (list, tuple)):
            for v in x:
                walk(v)

    walk([AMAZON_GROUPS, AMAZON_BRANDS, GOOGLE_GROUPS, GOOGLE_NAME_WORDS, FIRST_NAMES, LAST_NAMES, AMAZON_OPENERS,
          AMAZON_CLAIMS, AMAZON_CLOSERS, AMAZON_TITLES, GOOGLE_OPENERS, GOOGLE_CLAIMS])


_check_vocab()


def amazon_cluster_catalogue() -> list[dict[str, str]]:
    """All possible Amazon clusters (product type × attribute) in a fixed order."""
    return [
        {"group": g, "type": t, "attribute": a, "label": f"{a} {t}"}
        for g, spec in AMAZON_GROUPS.items()
        for t in spec["types"]
        for a in spec["attributes"]
    ]


def google_cluster_catalogue() -> list[dict[str, str]]:
    """All possible Google clusters (business type × attribute) in a fixed order."""
    return [
        {"group": g, "type": t, "attribute": a, "label": f"{a} {t}"}
        for g, spec in GOOGLE_GROUPS.items()
        for t, _ in spec["types"]
        for a in spec["attributes"]
    ]


# ----------------------------------------------------------------------------------------------------------------
# Config and result
# ----------------------------------------------------------------------------------------------------------------


class SynthConfig(StrictModel):
    """What ``bluerec data synth`` generates. Same config (seed included) → byte-identical files."""

    domain: Literal["amazon", "google", "both"] = "amazon"
    n_users: int = Field(2000, ge=1)  # per domain
    n_items: int = Field(1000, ge=2, le=2_000_000)  # per domain (all are in the meta file; a few may get no review)
    min_interactions: int = Field(5, ge=3)  # per user, before any k-core
    max_interactions: int = Field(40, ge=3)
    mean_interactions: float = Field(10.0, gt=0)  # mean length before the cap at max_interactions (exponential tail)
    n_interests: int = Field(60, ge=4)  # interest clusters in the catalogue
    min_user_interests: int = Field(2, ge=2, le=MAX_USER_INTERESTS)
    max_user_interests: int = Field(4, ge=2, le=MAX_USER_INTERESTS)
    drift: float = Field(0.9, ge=0.0, le=1.0)  # 0: static mixture of all interests; 1: sharp old → current switch
    noise: float = Field(0.1, ge=0.0, le=1.0)  # share of popularity-sampled off-interest interactions
    item_skew: float = Field(0.6, ge=0.0, le=3.0)  # Zipf exponent of item popularity inside a cluster
    cluster_skew: float = Field(0.8, ge=0.0, le=3.0)  # Zipf exponent of cluster popularity
    seed: int = 0
    category: str = Field("All_Beauty", pattern=r"^[A-Za-z0-9_]+$")  # Amazon file name <category>.jsonl.gz
    state: str = Field("Vermont", pattern=r"^[A-Za-z0-9_]+$")  # Google file name review-<state>.json.gz
    compress_level: int = Field(1, ge=0, le=9)

    @model_validator(mode="after")
    def _check(self) -> "SynthConfig":
        if self.max_interactions < self.min_interactions:
            raise ValueError(f"max_interactions ({self.max_interactions}) < min_interactions ({self.min_interactions})")
        if self.max_user_interests < self.min_user_interests:
            raise ValueError(
                f"max_user_interests ({self.max_user_interests}) < min_user_interests ({self.min_user_interests})"
            )
        if self.n_interests < self.max_user_interests:
            raise ValueError(f"n_interests ({self.n_interests}) < max_user_interests ({self.max_user_interests})")
        for dom in self.domains:
            avail = len(amazon_cluster_catalogue() if dom == "amazon" else google_cluster_catalogue())
            if self.n_interests > avail:
                raise ValueError(f"n_interests ({self.n_interests}) exceeds the {avail} clusters of the {dom} catalogue")
        if self.n_items < self.n_interests:
            raise ValueError(f"n_items ({self.n_items}) < n_interests ({self.n_interests}): every cluster needs an item")
        return self

    @property
    def domains(self) -> list[str]:
        return ["amazon", "google"] if self.domain == "both" else [self.domain]


def _length_pmf(config: SynthConfig) -> np.ndarray:
    """P(L = min + j), j = 0..max-min: a discretised exponential, truncated into the last bucket."""
    span = config.max_interactions - config.min_interactions
    scale = max(config.mean_interactions - config.min_interactions, 1e-6)
    q = math.exp(-1.0 / scale)
    j = np.arange(span + 1, dtype=np.float64)
    pmf = (1.0 - q) * q**j
    pmf[-1] = q**span  # everything beyond the cap
    return pmf


def expected_interactions_per_user(config: SynthConfig) -> float:
    """Exact expectation of a user's number of reviews (use it to size ``n_users`` for a target review count)."""
    pmf = _length_pmf(config)
    return float(np.dot(pmf, np.arange(len(pmf)) + config.min_interactions))


@dataclass
class SynthResult:
    """Paths written and counts. ``files`` keys: ``<domain>/reviews``, ``<domain>/meta``, ``truth``."""

    out_dir: Path
    files: dict[str, Path]
    counts: dict[str, dict[str, int]]  # domain -> {"users", "items", "reviews"}
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)  # "<domain>/reviews" etc. -> seconds

    @property
    def n_reviews(self) -> int:
        return sum(c["reviews"] for c in self.counts.values())

    def source(self, domain: str | None = None) -> "SourceConfig":
        """A :class:`bluerec.data.config.SourceConfig` reading what was written for ``domain`` (default: the only one)."""
        from bluerec.data.config import SourceConfig

        if domain is None:
            if len(self.counts) != 1:
                raise ValueError(f"several domains were written ({sorted(self.counts)}); name one")
            domain = next(iter(self.counts))
        fmt = {"amazon": "amazon2023", "google": "google_local"}[domain]
        return SourceConfig(format=fmt, reviews=[self.files[f"{domain}/reviews"]], meta=[self.files[f"{domain}/meta"]])

    def to_json(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "files": {k: str(v) for k, v in self.files.items()},
            "counts": self.counts,
            "seconds": round(self.seconds, 3),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }


# ----------------------------------------------------------------------------------------------------------------
# Random helpers
# ----------------------------------------------------------------------------------------------------------------

_DOMAIN_CODE = {"amazon": 1, "google": 2}
_B32 = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", dtype=np.uint8)
_B36 = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", dtype=np.uint8)
_DIG = np.frombuffer(b"0123456789", dtype=np.uint8)
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _rng(config: SynthConfig, domain: str, *stream: int) -> np.random.Generator:
    return np.random.default_rng([config.seed & 0xFFFFFFFF, config.seed >> 32 & 0xFFFFFFFF, _DOMAIN_CODE[domain], *stream])


def _random_codes(rng: np.random.Generator, n: int, alphabet: np.ndarray, length: int) -> np.ndarray:
    idx = rng.integers(0, len(alphabet), size=(n, length), dtype=np.uint8)
    return alphabet[idx].view(f"S{length}").reshape(n)


def _unique_codes(make: Callable[[int], np.ndarray], n: int, taken: np.ndarray | None = None) -> np.ndarray:
    """``n`` distinct codes (and distinct from ``taken``), order = draw order (deterministic)."""
    out = np.empty(0, dtype=make(1).dtype)
    while len(out) < n:
        cand = np.concatenate([out, make(int((n - len(out)) * 1.05) + 16)])
        _, first = np.unique(cand, return_index=True)
        keep = np.sort(first)
        cand = cand[keep]
        if taken is not None and len(taken):
            cand = cand[~np.isin(cand, taken)]
        out = cand[:n]
    return out


def _zipf(n: int, skew: float) -> np.ndarray:
    return 1.0 / np.arange(1, n + 1, dtype=np.float64) ** skew


def _to_str_list(codes: np.ndarray) -> list[str]:
    return [c.decode("ascii") for c in codes.tolist()]


# ----------------------------------------------------------------------------------------------------------------
# World: catalogue + users (all arrays, all deterministic)
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class _World:
    domain: str
    clusters: list[dict[str, str]]
    item_cluster: np.ndarray  # internal item index -> cluster (items are stored cluster-contiguous)
    cluster_start: np.ndarray  # (C + 1,) first internal item of each cluster
    item_cum: np.ndarray  # cumulative popularity weights (global order)
    item_cum_ex: np.ndarray  # exclusive prefix (len n_items + 1)
    item_ids: list[str]  # external id (parent_asin / gmap_id) per internal item
    lengths: np.ndarray  # per user
    interests: np.ndarray  # (U, 4) cluster ids, old first, padded with -1
    weights: np.ndarray  # (U, 4) within-group weights, 0 for padding
    is_old: np.ndarray  # (U, 4) bool
    n_interests: np.ndarray  # (U,)
    switch: np.ndarray  # (U,)
    t_start: np.ndarray  # (U,) ms
    t_span: np.ndarray  # (U,) ms
    user_ids: list[str]


def _build_world(config: SynthConfig, domain: str) -> _World:
    rng = _rng(config, domain, 0)
    catalogue = amazon_cluster_catalogue() if domain == "amazon" else google_cluster_catalogue()
    pick = np.sort(rng.choice(len(catalogue), size=config.n_interests, replace=False))
    clusters = [catalogue[i] for i in pick]
    n_c, n_i, n_u = config.n_interests, config.n_items, config.n_users

    # cluster popularity (random rank order) and sizes ~ popularity^0.8, every cluster >= 1 item
    cluster_pop = _zipf(n_c, config.cluster_skew)[rng.permutation(n_c)]
    cluster_pop /= cluster_pop.sum()
    share = cluster_pop**0.8
    share /= share.sum()
    extra = n_i - n_c
    sizes = 1 + np.floor(share * extra).astype(np.int64)
    rest = n_i - sizes.sum()
    if rest > 0:
        sizes[np.argsort(-(share * extra - np.floor(share * extra)), kind="stable")[:rest]] += 1
    cluster_start = np.concatenate([[0], np.cumsum(sizes)])
    item_cluster = np.repeat(np.arange(n_c), sizes)
    # item weight = cluster popularity * normalised within-cluster Zipf
    w = np.empty(n_i, dtype=np.float64)
    for c in range(n_c):
        z = _zipf(int(sizes[c]), config.item_skew)
        w[cluster_start[c] : cluster_start[c + 1]] = cluster_pop[c] * z / z.sum()
    item_cum = np.cumsum(w)
    item_cum_ex = np.concatenate([[0.0], item_cum])

    if domain == "amazon":
        ids = _unique_codes(lambda k: np.char.add(b"B0", _random_codes(rng, k, _B36, 8)), n_i)
    else:
        def gmap(k: int) -> np.ndarray:
            a = _random_codes(rng, k, _HEX, 16)
            b = _random_codes(rng, k, _HEX, 16)
            return np.char.add(np.char.add(np.char.add(b"0x", a), b":0x"), b)

        ids = _unique_codes(gmap, n_i)
    item_ids = _to_str_list(ids)

    # users
    pmf = _length_pmf(config)
    lengths = config.min_interactions + rng.choice(len(pmf), size=n_u, p=pmf)
    k = rng.integers(config.min_user_interests, config.max_user_interests + 1, size=n_u)
    cp_cum = np.cumsum(cluster_pop)
    interests = np.minimum(np.searchsorted(cp_cum, rng.random((n_u, MAX_USER_INTERESTS)) * cp_cum[-1]), n_c - 1)
    slots = np.arange(MAX_USER_INTERESTS)
    for attempt in range(21):  # redraw users whose active interests repeat a cluster
        srt = np.sort(np.where(slots[None, :] < k[:, None], interests, -1 - slots[None, :]), axis=1)
        bad = np.nonzero((srt[:, 1:] == srt[:, :-1]).any(axis=1))[0]
        if not len(bad):
            break
        if attempt < 20:
            draw = rng.random((len(bad), MAX_USER_INTERESTS)) * cp_cum[-1]
            interests[bad] = np.minimum(np.searchsorted(cp_cum, draw), n_c - 1)
        else:  # few clusters: weighted sampling without replacement (Gumbel top-k) for the rest
            keys = np.log(cluster_pop)[None, :] + rng.gumbel(size=(len(bad), n_c))
            interests[bad] = np.argsort(-keys, axis=1, kind="stable")[:, :MAX_USER_INTERESTS]
    active = slots[None, :] < k[:, None]
    n_old = k // 2
    is_old = slots[None, :] < n_old[:, None]
    g = rng.gamma(2.0, size=(n_u, MAX_USER_INTERESTS)) * active
    old_sum = (g * is_old).sum(axis=1, keepdims=True)
    cur_sum = (g * (active & ~is_old)).sum(axis=1, keepdims=True)
    weights = np.where(is_old, g / np.maximum(old_sum, 1e-12), g / np.maximum(cur_sum, 1e-12)) * active
    interests = np.where(active, interests, -1)
    switch = rng.uniform(*SWITCH_RANGE, size=n_u)

    if domain == "amazon":
        lo, hi = 1_420_070_400_000, 1_693_526_400_000  # 2015-01-01 .. 2023-09-01
        uid = _unique_codes(
            lambda k_: np.char.add(
                np.char.add(b"A", _random_codes(rng, k_, np.frombuffer(b"EFGH", dtype=np.uint8), 1)),
                _random_codes(rng, k_, _B32, 26),
            ),
            n_u,
        )
    else:
        lo, hi = 1_451_606_400_000, 1_631_232_000_000  # 2016-01-01 .. 2021-09-10
        uid = _unique_codes(lambda k_: np.char.add(b"1", _random_codes(rng, k_, _DIG, 20)), n_u)
    day = 86_400_000
    t_span = (rng.uniform(60, 1500, size=n_u) * day).astype(np.int64)
    t_start = lo + (rng.random(n_u) * (hi - lo - t_span)).astype(np.int64)
    return _World(
        domain=domain, clusters=clusters, item_cluster=item_cluster, cluster_start=cluster_start, item_cum=item_cum,
        item_cum_ex=item_cum_ex, item_ids=item_ids, lengths=lengths.astype(np.int64), interests=interests,
        weights=weights, is_old=is_old & active, n_interests=k, switch=switch, t_start=t_start, t_span=t_span,
        user_ids=_to_str_list(uid),
    )


def _p_current(t: np.ndarray, switch: np.ndarray, drift: float) -> np.ndarray:
    return (1.0 - drift) / 2.0 + drift / (1.0 + np.exp(-(t - switch) / SWITCH_WIDTH))


def interest_weights(truth_user: dict[str, Any], t: float, drift: float) -> dict[int, float]:
    """Mixture weight of each interest cluster of one truth user (see :func:`load_truth`) at relative time ``t``."""
    p = float(_p_current(np.array([t]), np.array([truth_user["switch"]]), drift)[0])
    out = {}
    for j, (c, w) in enumerate(zip(truth_user["interests"], truth_user["weights"])):
        out[int(c)] = w * ((1.0 - p) if j < truth_user["n_old"] else p)
    return out


@dataclass
class _Rows:
    user: np.ndarray
    item: np.ndarray
    ts: np.ndarray
    rating: np.ndarray  # 1..5
    noise: np.ndarray


def _sample_items(world: _World, cluster: np.ndarray, u: np.ndarray) -> np.ndarray:
    lo = world.item_cum_ex[world.cluster_start[cluster]]
    hi = world.item_cum_ex[world.cluster_start[cluster + 1]]
    idx = np.searchsorted(world.item_cum, lo + u * (hi - lo), side="right")
    return np.clip(idx, world.cluster_start[cluster], world.cluster_start[cluster + 1] - 1)


def _sample_popular(world: _World, u: np.ndarray) -> np.ndarray:
    idx = np.searchsorted(world.item_cum, u * world.item_cum[-1], side="right")
    return np.minimum(idx, len(world.item_cum) - 1)


def _generate_rows(config: SynthConfig, world: _World, u0: int, u1: int, rng: np.random.Generator) -> _Rows:
    lengths = world.lengths[u0:u1]
    n = int(lengths.sum())
    user = np.repeat(np.arange(u0, u1), lengths)
    starts = np.cumsum(lengths) - lengths
    pos = np.arange(n) - np.repeat(starts, lengths)
    t = pos / np.repeat(np.maximum(lengths - 1, 1), lengths)
    p_cur = _p_current(t, world.switch[user], config.drift)
    w = world.weights[user] * np.where(world.is_old[user], (1.0 - p_cur)[:, None], p_cur[:, None])
    cum = np.cumsum(w, axis=1)
    r = rng.random(n) * cum[:, -1]
    slot = np.minimum((cum < r[:, None]).sum(axis=1), world.n_interests[user] - 1)
    cluster = world.interests[user, slot]
    noise = rng.random(n) < config.noise
    item = _sample_items(world, cluster, rng.random(n))
    nz = np.nonzero(noise)[0]
    item[nz] = _sample_popular(world, rng.random(len(nz)))
    # re-draw repeated (user, item) pairs a few times; the rare leftovers are realistic duplicates
    n_items = len(world.item_ids)
    for _ in range(4):
        key = user.astype(np.int64) * n_items + item
        order = np.argsort(key, kind="stable")
        dup = order[1:][key[order][1:] == key[order][:-1]]
        if not len(dup):
            break
        redraw = _sample_items(world, cluster[dup], rng.random(len(dup)))
        item[dup] = np.where(noise[dup], _sample_popular(world, rng.random(len(dup))), redraw)
    # timestamps: exponential gaps scaled into the user's span; + pos keeps them strictly increasing
    gaps = rng.exponential(size=n)
    cs = np.cumsum(gaps)
    before = np.repeat(cs[starts] - gaps[starts], lengths)
    within = cs - before
    total = np.repeat(within[starts + lengths - 1] + rng.exponential(size=len(lengths)), lengths)
    ts = world.t_start[user] + (within / total * world.t_span[user]).astype(np.int64) + pos
    # ratings
    u = rng.random(n)
    rating = 1 + np.where(
        noise,
        np.searchsorted(np.cumsum(RATING_PROBS_NOISE), u * RATING_PROBS_NOISE.sum()),
        np.searchsorted(np.cumsum(RATING_PROBS_ON), u * RATING_PROBS_ON.sum()),
    )
    rating = np.minimum(rating, 5)
    perm = rng.permutation(n)  # files are not sorted by user or time
    return _Rows(user=user[perm], item=item[perm], ts=ts[perm], rating=rating[perm], noise=noise[perm])


def _chunks(world: _World) -> list[tuple[int, int]]:
    """Consecutive user ranges of about CHUNK_ROWS reviews."""
    cs = np.cumsum(world.lengths)
    out, u0 = [], 0
    n_u = len(world.lengths)
    while u0 < n_u:
        base = cs[u0 - 1] if u0 else 0
        u1 = int(np.searchsorted(cs, base + CHUNK_ROWS, side="right"))
        u1 = max(u1, u0 + 1)
        out.append((u0, min(u1, n_u)))
        u0 = min(u1, n_u)
    return out


# ----------------------------------------------------------------------------------------------------------------
# Line assembly with Arrow
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class _Templates:
    prefix: pa.Array
    suffix: pa.Array
    slot: np.ndarray  # per template: index into the slot names, -1 = none
    start: np.ndarray  # per rating (0..4): first template
    count: np.ndarray


def _templates(per_rating: list[list[str]], names: Sequence[str]) -> _Templates:
    prefix, suffix, slot, start, count = [], [], [], [], []
    for group in per_rating:
        start.append(len(prefix))
        count.append(len(group))
        for tpl in group:
            for j, name in enumerate(names):
                mark = "{" + name + "}"
                if mark in tpl:
                    a, b = tpl.split(mark, 1)
                    prefix.append(a)
                    suffix.append(b)
                    slot.append(j)
                    break
            else:
                prefix.append(tpl)
                suffix.append("")
                slot.append(-1)
    return _Templates(pa.array(prefix, pa.string()), pa.array(suffix, pa.string()), np.array(slot),
                      np.array(start), np.array(count))


def _render(tpl: _Templates, rating: np.ndarray, values: Sequence[pa.Array], rng: np.random.Generator) -> list[Any]:
    """Pieces (to be joined) of one templated field per row; ``values[j]`` are the per-row slot values."""
    ri = rating - 1
    idx = tpl.start[ri] + (rng.random(len(ri)) * tpl.count[ri]).astype(np.int64)
    take = pa.array(idx)
    if not values:
        return [tpl.prefix.take(take), tpl.suffix.take(take)]
    slot = tpl.slot[idx]
    if len(values) == 1 and (tpl.slot >= 0).all():
        mid: Any = values[0]
    else:
        mid = ""
        for j, v in enumerate(values):
            mid = pc.if_else(pa.array(slot == j), v, mid)
    return [tpl.prefix.take(take), mid, tpl.suffix.take(take)]


def _join(parts: list[Any]) -> pa.Buffer:
    """Concatenate the per-row pieces into one buffer of newline-terminated lines."""
    return _buffer(pc.binary_join_element_wise(*parts, ""))


def _buffer(out: pa.Array) -> pa.Buffer:
    """The character data of a string array as one buffer (zero-copy slice): its rows, concatenated."""
    if out.null_count:
        raise AssertionError("null in generated line")  # pragma: no cover
    bufs = out.buffers()
    off_dtype = np.int64 if pa.types.is_large_string(out.type) else np.int32
    off = np.frombuffer(bufs[1], dtype=off_dtype)[out.offset : out.offset + len(out) + 1]
    return bufs[2].slice(int(off[0]), int(off[-1] - off[0]))


class _Formatter:
    """Per-domain precomputed fragments; ``lines(rows, rng)`` returns one chunk of JSONL bytes."""

    def __init__(self, world: _World):
        self.world = world

    def lines(self, rows: _Rows, rng: np.random.Generator) -> pa.Buffer:  # pragma: no cover - abstract
        raise NotImplementedError


class _AmazonFormatter(_Formatter):
    def __init__(self, world: _World, variant_asin: list[str]):
        super().__init__(world)
        self.asins = _cat('"asin": "', _s(variant_asin), '", "parent_asin": "', _s(world.item_ids), '"')
        self.type_l = pa.array([world.clusters[c]["type"].lower() for c in world.item_cluster], pa.string())
        self.attr_l = pa.array([world.clusters[c]["attribute"].lower() for c in world.item_cluster], pa.string())
        self.users = pa.array(world.user_ids, pa.string())
        self.rating = pa.array(["1.0", "2.0", "3.0", "4.0", "5.0"], pa.string())
        self.bool = pa.array(["false", "true"], pa.string())
        self.titles = _templates(AMAZON_TITLES, ["t"])
        self.openers = _templates(AMAZON_OPENERS, ["t"])
        self.claims = _templates(AMAZON_CLAIMS, ["a"])
        self.closers = _templates(AMAZON_CLOSERS, [])

    def lines(self, rows: _Rows, rng: np.random.Generator) -> pa.Buffer:
        n = len(rows.item)
        it = pa.array(rows.item)
        ptype = self.type_l.take(it)
        attr = self.attr_l.take(it)
        helpful = np.minimum(rng.geometric(0.55, size=n) - 1, 999)
        verified = (rng.random(n) < 0.9).astype(np.int64)
        parts = [
            '{"rating": ', self.rating.take(pa.array(rows.rating - 1)),
            ', "title": "', *_render(self.titles, rows.rating, [ptype], rng),
            '", "text": "', *_render(self.openers, rows.rating, [ptype], rng),
            " ", *_render(self.claims, rows.rating, [attr], rng),
            " ", *_render(self.closers, rows.rating, [], rng),
            '", "images": [], ', self.asins.take(it),
            ', "user_id": "', self.users.take(pa.array(rows.user)),
            '", "timestamp": ', pc.cast(pa.array(rows.ts), pa.string()),
            ', "helpful_vote": ', pc.cast(pa.array(helpful), pa.string()),
            ', "verified_purchase": ', self.bool.take(pa.array(verified)),
            "}\n",
        ]
        return _join(parts)


class _GoogleFormatter(_Formatter):
    def __init__(self, world: _World, user_names: pa.Array):
        super().__init__(world)
        self.gmap = pa.array(world.item_ids, pa.string())
        self.type_l = pa.array([world.clusters[c]["type"].lower() for c in world.item_cluster], pa.string())
        self.attr_l = pa.array([world.clusters[c]["attribute"] for c in world.item_cluster], pa.string())
        self.users = pa.array(world.user_ids, pa.string())
        self.names = user_names
        self.rating = pa.array(["1", "2", "3", "4", "5"], pa.string())
        self.openers = _templates(GOOGLE_OPENERS, ["t"])
        self.claims = _templates(GOOGLE_CLAIMS, ["a"])

    def lines(self, rows: _Rows, rng: np.random.Generator) -> pa.Buffer:
        n = len(rows.item)
        it = pa.array(rows.item)
        users = pa.array(rows.user)
        text = pc.binary_join_element_wise(
            '"', *_render(self.openers, rows.rating, [self.type_l.take(it)], rng),
            " ", *_render(self.claims, rows.rating, [self.attr_l.take(it)], rng), '"', "",
        )
        has_text = pa.array(rng.random(n) < 0.62)
        parts = [
            '{"user_id": "', self.users.take(users),
            '", "name": "', self.names.take(users),
            '", "time": ', pc.cast(pa.array(rows.ts), pa.string()),
            ', "rating": ', self.rating.take(pa.array(rows.rating - 1)),
            ', "text": ', pc.if_else(has_text, text, "null"),
            ', "pics": null, "resp": null, "gmap_id": "', self.gmap.take(it),
            '"}\n',
        ]
        return _join(parts)


# ----------------------------------------------------------------------------------------------------------------
# Item meta
# ----------------------------------------------------------------------------------------------------------------


def _s(values: Sequence[str]) -> pa.Array:
    return pa.array(list(values), pa.string())


def _pick(vocab: pa.Array, idx: np.ndarray) -> pa.Array:
    return vocab.take(pa.array(np.asarray(idx, dtype=np.int64)))


def _ints(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(np.asarray(values, dtype=np.int64)), pa.string())


def _cat(*parts: Any) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _when(mask: np.ndarray, yes: Any, no: Any) -> pa.Array:
    return pc.if_else(pa.array(np.asarray(mask, dtype=bool)), yes, no)


def _decimal(value: np.ndarray, places: int) -> pa.Array:
    """Fixed-point JSON numbers from integers scaled by 10**places (always with a fraction: stays a float)."""
    value = np.asarray(value, dtype=np.int64)
    sign = _pick(_s(["", "-"]), (value < 0).astype(np.int64))
    mag = np.abs(value)
    frac = pc.utf8_lpad(_ints(mag % 10**places), width=places, padding="0")
    return _cat(sign, _ints(mag // 10**places), ".", frac)


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _flat_vocab(groups: list[str], key: str, spec: dict[str, dict[str, Any]]) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """Concatenate ``spec[g][key]`` over groups: (values, offset per group, count per group)."""
    values: list[str] = []
    off, cnt = [], []
    for g in groups:
        off.append(len(values))
        cnt.append(len(spec[g][key]))
        values.extend(spec[g][key])
    return _s(values), np.array(off), np.array(cnt)


MetaLines = Callable[[np.ndarray], pa.Array]
"""Meta JSON lines (``\\n``-terminated) of the given internal item indices; all randomness is drawn beforehand."""


def _amazon_meta(config: SynthConfig, world: _World) -> tuple[list[str], MetaLines]:
    """(variant asin per item, meta line builder) — vectorised with Arrow, built in chunks to bound memory."""
    rng = _rng(config, "amazon", 1)
    n = len(world.item_ids)
    taken = np.array([s.encode() for s in world.item_ids])
    variants = _to_str_list(_unique_codes(lambda k: np.char.add(b"B0", _random_codes(rng, k, _B36, 8)), n, taken))
    has_variant = (rng.random(n) < 0.3).tolist()
    variant_asin = [v if hv else p for v, hv, p in zip(variants, has_variant, world.item_ids)]
    del taken, variants

    groups = list(AMAZON_GROUPS)
    group_of = np.array([groups.index(c["group"]) for c in world.clusters])[world.item_cluster]
    attr_v = _s([c["attribute"] for c in world.clusters])
    attr_lv = _s([c["attribute"].lower() for c in world.clusters])
    attr_uv = _s([c["attribute"].upper() for c in world.clusters])
    art_v = _s([_article(c["attribute"]) for c in world.clusters])
    ptype_v = _s([c["type"] for c in world.clusters])
    ptype_lv = _s([c["type"].lower() for c in world.clusters])
    group_lv = _s([x.lower() for x in groups])
    detail_v = _s([AMAZON_GROUPS[x]["detail"] for x in groups])
    path_v = _s([json.dumps(AMAZON_GROUPS[x]["path"]) for x in groups])
    brand_v = _s(AMAZON_BRANDS)
    vocab = {key: _flat_vocab(groups, key, AMAZON_GROUPS) for key in ("targets", "sizes", "forms")}
    ids_v = _s(world.item_ids)
    p_all = rng.random((n, 6))
    brand_all = rng.integers(0, len(AMAZON_BRANDS), n)
    price_all = rng.lognormal(math.log(1800), 0.6, n).astype(np.int64) + 99
    number_all = np.minimum(rng.lognormal(3.5, 1.5, n).astype(np.int64) + 1, 250_000)
    avg10_all = np.clip(np.round(rng.normal(42.5, 3.5, n)), 10, 50).astype(np.int64)
    main_category = config.category.replace("_", " ")

    def lines(idx: np.ndarray) -> pa.Array:
        p, g, c_idx = p_all[idx], group_of[idx], world.item_cluster[idx]
        attr, attr_l, ptype, ptype_l = _pick(attr_v, c_idx), _pick(attr_lv, c_idx), _pick(ptype_v, c_idx), _pick(ptype_lv, c_idx)

        def choose(key: str, col: int) -> pa.Array:
            values, off, cnt = vocab[key]
            return _pick(values, off[g] + (p[:, col] * cnt[g]).astype(np.int64))

        target, size, form = choose("targets", 0), choose("sizes", 1), choose("forms", 2)
        target_l = pc.utf8_lower(target)
        brand = _pick(brand_v, brand_all[idx])
        title = _when(
            p[:, 3] < 0.6,
            _cat(brand, " ", attr, " ", ptype, " for ", target, ", ", size),
            _cat(brand, " ", ptype, " - ", attr, " Formula for ", target, " (", size, ")"),
        )
        f1 = _cat('"', _pick(attr_uv, c_idx), ": ", _pick(art_v, c_idx), " ", attr_l, " ", ptype_l, " made for ",
                  target_l, '."')
        f2 = _cat('"EASY TO USE: apply daily as part of your ', _pick(group_lv, g), ' routine."')
        f3 = _cat('"WHAT YOU GET: ', size, " of ", brand, " ", ptype_l, '."')
        features = _when(
            p[:, 4] <= 0.15, "[]",
            _when(p[:, 4] <= 0.5, _cat("[", f1, ", ", f2, "]"), _cat("[", f1, ", ", f2, ", ", f3, "]")),
        )
        description = _when(
            p[:, 5] < 0.35,
            _cat('["', brand, " ", ptype, " is ", attr_l, " and gentle, designed for ", target_l, '."]'),
            "[]",
        )
        dims = _cat(
            ', "Package Dimensions": "', _ints(2 + (p[:, 5] * 6).astype(np.int64)), " x 2 x 1.5 inches; ",
            _ints(1 + (p[:, 2] * 9).astype(np.int64)), ' Ounces"',
        )
        details = _cat(
            '{"Brand": "', brand, '", "Item Form": "', form, '", "', _pick(detail_v, g), '": "', target,
            '", "Special Feature": "', attr, '", "Unit Count": "', size, '"', _when(p[:, 5] > 0.5, dims, ""), "}",
        )
        return _cat(
            '{"main_category": "', main_category, '", "title": "', title,
            '", "average_rating": ', _decimal(avg10_all[idx], 1), ', "rating_number": ', _ints(number_all[idx]),
            ', "features": ', features, ', "description": ', description,
            ', "price": ', _when(p[:, 1] > 0.25, _decimal(price_all[idx], 2), "null"),
            ', "images": [], "videos": [], "store": "', brand,
            '", "categories": ', _when(p[:, 0] > 0.4, _pick(path_v, g), "[]"),
            ', "details": ', details, ', "parent_asin": "', _pick(ids_v, idx), '", "bought_together": null}\n',
        )

    return variant_asin, lines


def _google_meta(config: SynthConfig, world: _World) -> MetaLines:
    rng = _rng(config, "google", 1)
    n = len(world.item_ids)
    abbr, lat0, lon0, zip0 = STATES.get(config.state, ("US", 39.8, -98.6, "6"))
    groups = list(GOOGLE_GROUPS)
    group_of = np.array([groups.index(c["group"]) for c in world.clusters])[world.item_cluster]
    nouns = {t: noun for spec in GOOGLE_GROUPS.values() for t, noun in spec["types"]}
    ctype_v = _s([c["type"] for c in world.clusters])
    ctype_lv = _s([c["type"].lower() for c in world.clusters])
    noun_v = _s([nouns[c["type"]] for c in world.clusters])
    attr_v = _s([c["attribute"] for c in world.clusters])
    art_v = _s([_article(c["attribute"]).capitalize() for c in world.clusters])
    extra_v = _s([GOOGLE_GROUPS[x]["extra"] for x in groups])
    misc_v = _s([json.dumps(GOOGLE_GROUPS[x]["misc"]) for x in groups])
    words_v, towns_v, streets_v = _s(GOOGLE_NAME_WORDS), _s(TOWNS), _s(STREETS)
    hours_v = _s([json.dumps([[d, f"{o}AM\u2013{c}PM"] for d in DAYS]) for o in range(6, 11) for c in range(5, 11)])
    price_v = _s(['"$"', '"$$"', '"$$$"'])
    ids_v = _s(world.item_ids)
    food_groups = [groups.index("Food"), groups.index("Drinks")]
    p_all = rng.random((n, 8))
    lat_all = np.round((lat0 + rng.normal(0, 0.6, n)) * 1e7).astype(np.int64)
    lon_all = np.round((lon0 + rng.normal(0, 0.6, n)) * 1e7).astype(np.int64)
    num_all = np.minimum(rng.lognormal(3.2, 1.2, n).astype(np.int64) + 1, 20_000)
    avg10_all = np.clip(np.round(rng.normal(43, 3.5, n)), 10, 50).astype(np.int64)
    word_all = rng.integers(0, len(GOOGLE_NAME_WORDS), n)
    street_no_all = rng.integers(1, 2000, n)
    rel_u_all = rng.random((n, 4))

    def lines(idx: np.ndarray) -> pa.Array:
        p, g, c_idx = p_all[idx], group_of[idx], world.item_cluster[idx]
        ctype, attr = _pick(ctype_v, c_idx), _pick(attr_v, c_idx)
        name = _cat(_pick(words_v, word_all[idx]), " ", _pick(noun_v, c_idx))
        town = _pick(towns_v, (p[:, 0] * len(TOWNS)).astype(np.int64))
        street = _pick(streets_v, (p[:, 1] * len(STREETS)).astype(np.int64))
        width = 5 - len(zip0)
        zip_tail = pc.utf8_lpad(_ints((p[:, 2] * 10**width).astype(np.int64)), width=width, padding="0")
        open_h, close_h = 6 + (p[:, 3] * 5).astype(np.int64), 5 + (p[:, 4] * 6).astype(np.int64)
        has_hours = p[:, 5] > 0.2
        # "people also search for": other places of the same cluster
        start = world.cluster_start[c_idx]
        size = world.cluster_start[c_idx + 1] - start
        rel = start[:, None] + (rel_u_all[idx] * np.maximum(size - 1, 1)[:, None]).astype(np.int64)
        rel = np.where(rel >= idx[:, None], rel + 1, rel)
        rel_ok = np.all(rel < (start + size)[:, None], axis=1) & (size > 1) & (p[:, 7] > 0.1)
        rel = np.where(rel_ok[:, None], rel, 0)
        related = _cat('["', _pick(ids_v, rel[:, 0]), '", "', _pick(ids_v, rel[:, 1]), '", "',
                       _pick(ids_v, rel[:, 2]), '", "', _pick(ids_v, rel[:, 3]), '"]')
        gid = _pick(ids_v, idx)
        return _cat(
            '{"name": "', name, '", "address": "', name, ", ", _ints(street_no_all[idx]), " ", street, ", ", town,
            ", ", abbr, " ", zip0, zip_tail, '", "gmap_id": "', gid,
            '", "description": ',
            _when(p[:, 6] < 0.4,
                  _cat('"', _pick(art_v, c_idx), " ", attr, " ", _pick(ctype_lv, c_idx), " in ", town, '."'), "null"),
            ', "latitude": ', _decimal(lat_all[idx], 7), ', "longitude": ', _decimal(lon_all[idx], 7),
            ', "category": ',
            _when(p[:, 7] < 0.6, _cat('["', ctype, '", "', _pick(extra_v, g), '"]'), _cat('["', ctype, '"]')),
            ', "avg_rating": ', _decimal(avg10_all[idx], 1), ', "num_of_reviews": ', _ints(num_all[idx]),
            ', "price": ',
            _when(np.isin(g, food_groups) & (p[:, 3] < 0.7),
                  _pick(price_v, np.minimum((p[:, 2] * 3).astype(np.int64), 2)), "null"),
            ', "hours": ', _when(has_hours, _pick(hours_v, (open_h - 6) * 6 + (close_h - 5)), "null"),
            ', "MISC": ', _when(p[:, 6] > 0.2, _pick(misc_v, g), "null"),
            ', "state": ', _when(has_hours, _cat('"Open \\u22c5 Closes ', _ints(close_h), 'PM"'), "null"),
            ', "relative_results": ', _when(rel_ok, related, "null"),
            ', "url": "https://www.google.com/maps/place//data=!4m2!3m1!1s', gid, '?authuser=-1&hl=en&gl=us"}\n',
        )

    return lines


def _google_user_names(config: SynthConfig, n_users: int) -> pa.Array:
    rng = _rng(config, "google", 2)
    first = _pick(_s(FIRST_NAMES), rng.integers(0, len(FIRST_NAMES), n_users))
    li = rng.integers(0, len(LAST_NAMES), n_users)
    last = _pick(_s(LAST_NAMES), li)
    initial = _pick(_s([x[0] + "." for x in LAST_NAMES]), li)
    return _when(rng.random(n_users) < 0.5, _cat(first, " ", last), _cat(first, " ", initial))


# ----------------------------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------------------------


def _deflate_block(data: Any, level: int) -> bytes:
    comp = zlib.compressobj(level, zlib.DEFLATED, -15)
    return comp.compress(data) + comp.flush(zlib.Z_SYNC_FLUSH)


class _GzipWriter:
    """Single-member gzip written pigz-style: each block is deflated independently (in a thread pool — zlib releases
    the GIL) and ends on a byte boundary (sync flush), so the concatenation is one valid deflate stream.

    Deterministic whatever the thread timing: blocks are written in order, mtime is 0 and the header carries a fixed
    name (not the temporary file's)."""

    def __init__(self, path: Path, header_name: str, level: int, workers: int = 2):
        self._level = level
        self._fh = open(path, "wb")
        flags, name = (0x08, header_name.encode("latin-1") + b"\0") if header_name else (0, b"")
        xfl = 4 if level == 1 else 2 if level == 9 else 0
        self._fh.write(b"\x1f\x8b\x08" + bytes([flags]) + b"\0\0\0\0" + bytes([xfl, 255]) + name)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="synth-gzip")
        self._pending: deque[Future[bytes]] = deque()
        self._max_pending = workers + 1
        self._crc = 0
        self._size = 0

    def write(self, buf: Any) -> None:
        view = memoryview(buf).cast("B")
        self._crc = zlib.crc32(view, self._crc)
        self._size += view.nbytes
        self._pending.append(self._pool.submit(_deflate_block, view, self._level))
        while len(self._pending) > self._max_pending:
            self._fh.write(self._pending.popleft().result())

    def abort(self) -> None:
        for fut in self._pending:
            fut.cancel()
        self._pending.clear()
        self._pool.shutdown(wait=True)
        self._fh.close()

    def close(self) -> None:
        try:
            while self._pending:
                self._fh.write(self._pending.popleft().result())
            self._fh.write(zlib.compressobj(self._level, zlib.DEFLATED, -15).flush(zlib.Z_FINISH))
            self._fh.write(struct.pack("<II", self._crc & 0xFFFFFFFF, self._size & 0xFFFFFFFF))
        finally:
            for fut in self._pending:
                fut.cancel()
            self._pool.shutdown(wait=True)
            self._fh.close()


def _write_meta(path: Path, lines: MetaLines, order: np.ndarray, level: int) -> None:
    with atomic_path(path) as tmp:
        writer = _GzipWriter(tmp, path.name.removesuffix(".gz"), level)
        try:
            for i in range(0, len(order), META_CHUNK):
                writer.write(_buffer(lines(order[i : i + META_CHUNK])))
        except BaseException:
            writer.abort()
            raise
        writer.close()


def _write_reviews(
    config: SynthConfig, world: _World, fmt: _Formatter, path: Path, progress: Progress | None, stage: str
) -> int:
    total = int(world.lengths.sum())
    done = 0
    with atomic_path(path) as tmp:
        writer = _GzipWriter(tmp, path.name.removesuffix(".gz"), config.compress_level)
        try:
            for ci, (u0, u1) in enumerate(_chunks(world)):
                rng = _rng(config, world.domain, 2, ci)
                rows = _generate_rows(config, world, u0, u1, rng)
                writer.write(fmt.lines(rows, rng))
                done += len(rows.item)
                if progress is not None:
                    progress(stage, done, total)
        except BaseException:
            writer.abort()
            raise
        writer.close()
    return done


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _truth_section(world: _World, files: dict[str, str]) -> str:
    """One domain of ``truth.json`` as compact JSON text, built column by column (bounded memory)."""
    k = world.n_interests
    cur_w = np.where(world.is_old | (world.interests < 0), -1.0, world.weights)
    current_top = world.interests[np.arange(len(k)), cur_w.argmax(axis=1)]
    kl = k.tolist()
    parts = [
        '{"clusters":', _json(world.clusters),
        ',"items":{"ids":', _json(world.item_ids), ',"cluster":', _json(world.item_cluster.tolist()),
        '},"users":{"ids":', _json(world.user_ids),
        ',"n_interactions":', _json(world.lengths.tolist()),
        ',"interests":', _json([row[:kk] for row, kk in zip(world.interests.tolist(), kl)]),
        ',"weights":', _json([row[:kk] for row, kk in zip(np.round(world.weights, 4).tolist(), kl)]),
        ',"n_old":', _json((k // 2).tolist()),
        ',"switch":', _json(np.round(world.switch, 4).tolist()),
        ',"current_top":', _json(current_top.tolist()),
        '},"files":', _json(files), "}",
    ]
    return "".join(parts)


def write_synth(config: SynthConfig, out_dir: str | Path, progress: Progress | None = None) -> SynthResult:
    """Generate the configured domains under ``out_dir`` (``amazon/``, ``google/``) plus ``truth.json``.

    ``progress(stage, done, total)`` is called after each chunk (stages ``"<domain> meta"``, ``"<domain> reviews"``)."""
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    files: dict[str, Path] = {}
    counts: dict[str, dict[str, int]] = {}
    timings: dict[str, float] = {}
    header = {
        "version": TRUTH_VERSION,
        "config": config.model_dump(mode="json"),
        "model": {
            "p_current": "(1 - drift) / 2 + drift * sigmoid((t - switch) / switch_width), t = position / (n - 1)",
            "switch_width": SWITCH_WIDTH,
            "interest_order": "the first n_old interests are old, the rest current; weights sum to 1 per group",
        },
    }
    sections: list[str] = []
    for domain in config.domains:
        t1 = time.perf_counter()
        world = _build_world(config, domain)
        if domain == "amazon":
            reviews = out_dir / "amazon" / f"{config.category}.jsonl.gz"
            meta = out_dir / "amazon" / f"meta_{config.category}.jsonl.gz"
            variant_asin, meta_lines = _amazon_meta(config, world)
            fmt: _Formatter = _AmazonFormatter(world, variant_asin)
            del variant_asin
        else:
            reviews = out_dir / "google" / f"review-{config.state}.json.gz"
            meta = out_dir / "google" / f"meta-{config.state}.json.gz"
            meta_lines = _google_meta(config, world)
            fmt = _GoogleFormatter(world, _google_user_names(config, config.n_users))
        order = _rng(config, domain, 3).permutation(config.n_items)  # meta is not grouped by cluster
        _write_meta(meta, meta_lines, order, config.compress_level)
        del meta_lines, order
        pa.default_memory_pool().release_unused()
        if progress is not None:
            progress(f"{domain} meta", config.n_items, config.n_items)
        timings[f"{domain}/setup"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        n_reviews = _write_reviews(config, world, fmt, reviews, progress, f"{domain} reviews")
        timings[f"{domain}/reviews"] = time.perf_counter() - t2
        del fmt
        pa.default_memory_pool().release_unused()
        files[f"{domain}/reviews"] = reviews
        files[f"{domain}/meta"] = meta
        counts[domain] = {"users": config.n_users, "items": config.n_items, "reviews": n_reviews}
        rel = {"reviews": reviews.relative_to(out_dir).as_posix(), "meta": meta.relative_to(out_dir).as_posix()}
        sections.append(f"{_json(domain)}:{_truth_section(world, rel)}")
        del world
    truth_path = out_dir / "truth.json"
    write_text_atomic(truth_path, _json(header)[:-1] + ',"domains":{' + ",".join(sections) + "}}\n")
    files["truth"] = truth_path
    return SynthResult(out_dir=out_dir, files=files, counts=counts, seconds=time.perf_counter() - t0, timings=timings)


def load_truth(path: str | Path, domain: str = "amazon") -> dict[str, Any]:
    """Read ``truth.json`` and return one domain as ``{"clusters", "item_cluster": {item_id: c},
    "users": {user_id: {"interests", "weights", "n_old", "switch", "current_top", "n_interactions"}}, "drift"}``."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    dom = data["domains"][domain]
    u = dom["users"]
    users = {
        uid: {"interests": i, "weights": w, "n_old": o, "switch": s, "current_top": c, "n_interactions": n}
        for uid, i, w, o, s, c, n in zip(
            u["ids"], u["interests"], u["weights"], u["n_old"], u["switch"], u["current_top"], u["n_interactions"]
        )
    }
    return {
        "clusters": dom["clusters"],
        "item_cluster": dict(zip(dom["items"]["ids"], dom["items"]["cluster"])),
        "users": users,
        "drift": data["config"]["drift"],
        "files": dom["files"],
    }
