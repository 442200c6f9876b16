-- The index of R3's "nearly the same title" look-up, built once migration 4 has filled
-- every page's key. (store, brand_lower) is its prefix, so the old index goes.
-- IF [NOT] EXISTS: a database migrated by an early build of migration 4 already has it.
DROP INDEX IF EXISTS catalog_page_brand;
CREATE INDEX IF NOT EXISTS catalog_page_title ON catalog_page (store, brand_lower, title_key);
-- Every page has its key now; a server of an older version, which writes pages without
-- one, fails loudly instead of leaving pages the check cannot find.
ALTER TABLE catalog_page ALTER COLUMN title_key SET NOT NULL;
