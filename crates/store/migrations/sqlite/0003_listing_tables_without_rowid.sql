-- Pools and store listings as tables keyed by their primary key (WITHOUT ROWID). As
-- rowid tables every insert wrote three B-trees (the rows, the key's index, the other
-- index), and a 1,000,000-row upload creates 700,000 of each. The rows are small (a
-- few short columns), as SQLite advises for such tables.
--
-- A pool is always looked up with its SKU (a SKU's state is read and written whole,
-- sqlite/tx.rs), so its key leads with the SKU and it needs no other index: one B-tree
-- instead of three. Keyed (seller_id, pool_id) with an index on (seller_id, sku), the
-- planner would read a seller's every pool through the key for each look-up by SKU.
-- Pool ids stay unique: they come from the `pool` counter.

CREATE TABLE pool_keyed (
    seller_id TEXT NOT NULL,
    pool_id INTEGER NOT NULL,
    sku TEXT NOT NULL,
    shared INTEGER NOT NULL,
    quantity INTEGER NOT NULL CHECK (quantity >= 0),
    condition TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (seller_id, sku, pool_id)
) WITHOUT ROWID;
INSERT INTO pool_keyed (seller_id, pool_id, sku, shared, quantity, condition, version)
    SELECT seller_id, pool_id, sku, shared, quantity, condition, version FROM pool;
DROP TABLE pool;
ALTER TABLE pool_keyed RENAME TO pool;

CREATE TABLE store_listing_keyed (
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
) WITHOUT ROWID;
INSERT INTO store_listing_keyed (seller_id, sku, store, asin, pool_id, price, fulfillment,
        start_selling_at, closed)
    SELECT seller_id, sku, store, asin, pool_id, price, fulfillment, start_selling_at,
           closed FROM store_listing;
DROP TABLE store_listing;
ALTER TABLE store_listing_keyed RENAME TO store_listing;
CREATE INDEX store_listing_asin ON store_listing (store, asin);
