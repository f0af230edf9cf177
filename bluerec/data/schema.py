"""The tables every stage exchanges.

Readers turn any source format into two *staged* DuckDB tables with fixed columns:

``staged_interactions``
    user_id VARCHAR, item_id VARCHAR, timestamp BIGINT (Unix **milliseconds**), rating DOUBLE (nullable),
    review_title VARCHAR (nullable), review_text VARCHAR (nullable),
    source_order BIGINT (position in the source: file index * 2^40 + line / list position; the tie-break
    for equal timestamps).

``staged_items``
    item_id VARCHAR, title VARCHAR, main_category VARCHAR, categories VARCHAR[], store VARCHAR,
    features VARCHAR[], description VARCHAR[], details VARCHAR (JSON text), price VARCHAR.
    Missing values are NULL / empty lists.

``bluerec data prepare`` turns them into a *prepared dataset* folder (see :mod:`bluerec.data.dataset`):

``items.parquet``          item_id, text (rendered item text), title, popularity (train+valid interaction count)
``interactions.parquet``   user_id, item_id, timestamp, rating, review_title, review_text, seq (0-based
                           chronological position), split ('train' | 'valid' | 'test')
``train|valid|test.parquet`` user_id, item_id (the target), timestamp, rating, seq, history (last N item ids,
                           oldest first), history_len (full, untruncated history length)
``manifest.json``          format version, config, counts, skipped records, source checksums
"""

from __future__ import annotations

STAGED_INTERACTIONS_DDL = """
CREATE OR REPLACE TABLE staged_interactions (
    user_id VARCHAR NOT NULL,
    item_id VARCHAR NOT NULL,
    timestamp BIGINT NOT NULL,
    rating DOUBLE,
    review_title VARCHAR,
    review_text VARCHAR,
    source_order BIGINT NOT NULL
)
"""

STAGED_ITEMS_DDL = """
CREATE OR REPLACE TABLE staged_items (
    item_id VARCHAR NOT NULL,
    title VARCHAR,
    main_category VARCHAR,
    categories VARCHAR[],
    store VARCHAR,
    features VARCHAR[],
    description VARCHAR[],
    details VARCHAR,
    price VARCHAR
)
"""

INTERACTION_COLUMNS = ("user_id", "item_id", "timestamp", "rating", "review_title", "review_text", "source_order")
ITEM_COLUMNS = ("item_id", "title", "main_category", "categories", "store", "features", "description", "details", "price")

SPLITS = ("train", "valid", "test")
FORMAT_VERSION = 1
SOURCE_ORDER_FILE_STRIDE = 1 << 40
