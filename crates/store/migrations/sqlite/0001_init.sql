-- onestock on SQLite: the first schema. Times are INTEGER unix microseconds (UTC),
-- prices TEXT (the decimal as written), keys seller first.

CREATE TABLE seller (
    seller_id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    token_sha256 TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    -- The seller's last event seq (events are numbered 1, 2, 3, ... per seller).
    event_seq INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE setting (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

-- Named counters: `pool` gives pool ids, unique across the region.
CREATE TABLE counter (
    name TEXT PRIMARY KEY NOT NULL,
    value INTEGER NOT NULL
);
INSERT INTO counter (name, value) VALUES ('pool', 0);

CREATE TABLE catalog_page (
    -- The rowid of the page's row in catalog_search.
    page_id INTEGER PRIMARY KEY,
    asin TEXT NOT NULL,
    store TEXT NOT NULL,
    title TEXT NOT NULL,
    brand TEXT NOT NULL,
    -- `brand` in lower case, for pages_by_brand.
    brand_lower TEXT NOT NULL,
    description TEXT NOT NULL,
    language TEXT NOT NULL,
    product_type TEXT NOT NULL,
    UNIQUE (asin, store)
);
CREATE INDEX catalog_page_brand ON catalog_page (store, brand_lower);

CREATE TABLE catalog_identifier (
    value TEXT NOT NULL,
    asin TEXT NOT NULL,
    store TEXT NOT NULL,
    kind TEXT NOT NULL,
    -- Position in the page's list of identifiers.
    n INTEGER NOT NULL,
    PRIMARY KEY (asin, store, n)
);
CREATE INDEX catalog_identifier_value ON catalog_identifier (value);

-- Search over title and brand: `terms` holds the words already stemmed in the page's
-- language (onestock_core::catalog::stem_terms), separated by spaces. Its rowid is
-- catalog_page.page_id.
CREATE VIRTUAL TABLE catalog_search USING fts5 (
    terms,
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TABLE pool (
    seller_id TEXT NOT NULL,
    pool_id INTEGER NOT NULL,
    sku TEXT NOT NULL,
    shared INTEGER NOT NULL,
    quantity INTEGER NOT NULL CHECK (quantity >= 0),
    condition TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (seller_id, pool_id)
);
CREATE INDEX pool_sku ON pool (seller_id, sku);

CREATE TABLE store_listing (
    seller_id TEXT NOT NULL,
    sku TEXT NOT NULL,
    store TEXT NOT NULL,
    asin TEXT NOT NULL,
    pool_id INTEGER NOT NULL,
    price TEXT NOT NULL,
    fulfillment TEXT NOT NULL,
    start_selling_at INTEGER,
    closed INTEGER NOT NULL,
    PRIMARY KEY (seller_id, sku, store)
);
CREATE INDEX store_listing_asin ON store_listing (store, asin);

-- No AUTOINCREMENT: ledger rows are never deleted, so the rowid (max + 1) already grows
-- without reuse, and AUTOINCREMENT would add a write to sqlite_sequence per entry.
CREATE TABLE ledger_entry (
    seq INTEGER PRIMARY KEY,
    seller_id TEXT NOT NULL,
    sku TEXT NOT NULL,
    pool_id INTEGER NOT NULL,
    at INTEGER NOT NULL,
    delta INTEGER NOT NULL,
    quantity_after INTEGER NOT NULL,
    reason TEXT NOT NULL,
    store TEXT NOT NULL,
    reference TEXT NOT NULL
);
CREATE INDEX ledger_entry_sku ON ledger_entry (seller_id, sku, seq);

-- A seller's events. Columns a kind does not have are NULL; `stores` is a
-- comma-separated list of store codes.
CREATE TABLE event (
    seller_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    sku TEXT NOT NULL,
    pool_id INTEGER,
    stores TEXT NOT NULL,
    quantity INTEGER,
    delta INTEGER,
    reason TEXT,
    status TEXT,
    PRIMARY KEY (seller_id, seq)
) WITHOUT ROWID;

-- `lines` and `results`: one line per order line, fields separated by tabs (SKUs hold
-- no control characters); see sqlite/codec.rs.
CREATE TABLE customer_order (
    store TEXT NOT NULL,
    order_id TEXT NOT NULL,
    lines TEXT NOT NULL,
    results TEXT NOT NULL,
    cancelled INTEGER NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (store, order_id)
) WITHOUT ROWID;

CREATE TABLE upload (
    upload_id TEXT PRIMARY KEY NOT NULL,
    seller_id TEXT NOT NULL,
    store TEXT NOT NULL,
    status TEXT NOT NULL,
    path TEXT NOT NULL,
    records_processed INTEGER NOT NULL,
    records_successful INTEGER NOT NULL,
    records_failed INTEGER NOT NULL,
    checkpoint INTEGER NOT NULL,
    error TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX upload_status ON upload (status, created_at, upload_id);

CREATE TABLE upload_report (
    upload_id TEXT NOT NULL,
    -- Order of appending within the upload.
    n INTEGER NOT NULL,
    record INTEGER NOT NULL,
    sku TEXT NOT NULL,
    code TEXT NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    PRIMARY KEY (upload_id, n)
);
