-- onestock on PostgreSQL, version 1.
-- Every table that belongs to a seller is keyed by seller_id first (docs/scaling.md).
-- Times are bigint unix microseconds (UTC); prices are text (exact decimals).
-- SKU columns use COLLATE "C" so their order is the byte order of UTF-8.

CREATE TABLE seller (
    seller_id    text PRIMARY KEY,
    name         text NOT NULL,
    token_sha256 text NOT NULL UNIQUE,
    created_at   bigint NOT NULL,
    -- The seller's last event seq: events are numbered 1, 2, 3, ... without gaps.
    event_seq    bigint NOT NULL DEFAULT 0
);

CREATE TABLE setting (
    key   text PRIMARY KEY,
    value text NOT NULL
);

CREATE TABLE catalog_page (
    asin         text NOT NULL,
    store        text NOT NULL,
    title        text NOT NULL,
    brand        text NOT NULL,
    brand_lower  text NOT NULL,
    description  text NOT NULL,
    language     text NOT NULL,
    product_type text NOT NULL,
    -- Title (weight A) and brand (weight B) in the page language's configuration.
    search       tsvector NOT NULL,
    PRIMARY KEY (asin, store)
);
CREATE INDEX catalog_page_brand ON catalog_page (store, brand_lower);
CREATE INDEX catalog_page_search ON catalog_page USING gin (search);

CREATE TABLE catalog_identifier (
    asin     text NOT NULL,
    store    text NOT NULL,
    position integer NOT NULL,
    kind     text NOT NULL,
    value    text NOT NULL,
    PRIMARY KEY (asin, store, position)
);
CREATE INDEX catalog_identifier_value ON catalog_identifier (value);

-- Pool ids are unique across the region.
CREATE SEQUENCE pool_id_seq;

CREATE TABLE pool (
    seller_id text NOT NULL,
    pool_id   bigint NOT NULL,
    sku       text COLLATE "C" NOT NULL,
    shared    boolean NOT NULL,
    quantity  bigint NOT NULL CHECK (quantity >= 0),
    condition text NOT NULL,
    version   bigint NOT NULL,
    PRIMARY KEY (seller_id, pool_id)
);
CREATE INDEX pool_sku ON pool (seller_id, sku);
-- At most one shared pool per SKU (R6): two processes starting it at once collide here.
CREATE UNIQUE INDEX pool_one_shared ON pool (seller_id, sku) WHERE shared;

CREATE TABLE store_listing (
    seller_id        text NOT NULL,
    sku              text COLLATE "C" NOT NULL,
    store            text NOT NULL,
    asin             text NOT NULL,
    pool_id          bigint NOT NULL,
    price            text NOT NULL,
    fulfillment      text NOT NULL,
    start_selling_at bigint,
    closed           boolean NOT NULL,
    PRIMARY KEY (seller_id, sku, store)
);
CREATE INDEX store_listing_asin ON store_listing (store, asin);

CREATE TABLE ledger_entry (
    seller_id      text NOT NULL,
    seq            bigserial,
    sku            text COLLATE "C" NOT NULL,
    pool_id        bigint NOT NULL,
    at             bigint NOT NULL,
    delta          bigint NOT NULL,
    quantity_after bigint NOT NULL,
    reason         text NOT NULL,
    store          text NOT NULL,
    reference      text NOT NULL,
    PRIMARY KEY (seller_id, seq)
);
CREATE INDEX ledger_entry_sku ON ledger_entry (seller_id, sku, seq);

CREATE TABLE event (
    seller_id text NOT NULL,
    seq       bigint NOT NULL,
    at        bigint NOT NULL,
    kind      text NOT NULL,
    sku       text COLLATE "C" NOT NULL,
    pool_id   bigint,
    -- Store codes joined with commas: "US,CA".
    stores    text NOT NULL,
    quantity  bigint,
    delta     bigint,
    reason    text,
    status    text,
    PRIMARY KEY (seller_id, seq)
);

-- The operator's orders span sellers: the one table not keyed by seller.
CREATE TABLE customer_order (
    store     text NOT NULL,
    order_id  text NOT NULL,
    -- One line per order line: seller \t sku \t quantity
    lines     text NOT NULL,
    -- One line per result: seller \t sku \t quantity \t pool \t quantity_after \t US,CA
    results   text NOT NULL,
    cancelled boolean NOT NULL,
    at        bigint NOT NULL,
    PRIMARY KEY (store, order_id)
);

CREATE TABLE upload (
    upload_id          text PRIMARY KEY,
    seller_id          text NOT NULL,
    store              text NOT NULL,
    status             text NOT NULL,
    path               text NOT NULL,
    records_processed  bigint NOT NULL,
    records_successful bigint NOT NULL,
    records_failed     bigint NOT NULL,
    checkpoint         bigint NOT NULL,
    error              text,
    created_at         bigint NOT NULL
);
CREATE INDEX upload_seller ON upload (seller_id, created_at);
CREATE INDEX upload_unfinished ON upload (created_at, upload_id)
    WHERE status IN ('IN_QUEUE', 'IN_PROGRESS');

CREATE TABLE upload_report (
    upload_id text NOT NULL,
    n         bigserial,
    record    bigint NOT NULL,
    sku       text NOT NULL,
    code      text NOT NULL,
    kind      text NOT NULL,
    message   text NOT NULL,
    PRIMARY KEY (upload_id, n)
);
