-- Key columns compare as bytes (COLLATE "C"), as SKUs already did. Under a database's
-- locale collation (en_US.UTF-8, even C.UTF-8 on PostgreSQL 15) every index comparison
-- of a seller id, store, ASIN or order id went through the locale's string comparison:
-- in a profile of a large upload, PostgreSQL's one busy backend spent its time in
-- varstr_cmp and pg_newlocale_from_collation. Byte order is also SQLite's order, so
-- both backends list in the same order. Changing a column's collation rebuilds its
-- indexes; the rows are not rewritten.
ALTER TABLE seller
    ALTER COLUMN seller_id TYPE text COLLATE "C",
    ALTER COLUMN token_sha256 TYPE text COLLATE "C";
ALTER TABLE setting ALTER COLUMN key TYPE text COLLATE "C";
ALTER TABLE catalog_page
    ALTER COLUMN asin TYPE text COLLATE "C",
    ALTER COLUMN store TYPE text COLLATE "C",
    ALTER COLUMN brand_lower TYPE text COLLATE "C";
ALTER TABLE catalog_identifier
    ALTER COLUMN asin TYPE text COLLATE "C",
    ALTER COLUMN store TYPE text COLLATE "C",
    ALTER COLUMN value TYPE text COLLATE "C";
ALTER TABLE pool ALTER COLUMN seller_id TYPE text COLLATE "C";
ALTER TABLE store_listing
    ALTER COLUMN seller_id TYPE text COLLATE "C",
    ALTER COLUMN store TYPE text COLLATE "C",
    ALTER COLUMN asin TYPE text COLLATE "C";
ALTER TABLE ledger_entry ALTER COLUMN seller_id TYPE text COLLATE "C";
ALTER TABLE event ALTER COLUMN seller_id TYPE text COLLATE "C";
ALTER TABLE customer_order
    ALTER COLUMN store TYPE text COLLATE "C",
    ALTER COLUMN order_id TYPE text COLLATE "C";
ALTER TABLE upload
    ALTER COLUMN upload_id TYPE text COLLATE "C",
    ALTER COLUMN seller_id TYPE text COLLATE "C";
ALTER TABLE upload_report ALTER COLUMN upload_id TYPE text COLLATE "C";
