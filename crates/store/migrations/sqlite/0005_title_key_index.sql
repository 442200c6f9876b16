-- The index of R3's "nearly the same title" look-up, built once migration 4 has filled
-- every page's key. (store, brand_lower) is its prefix, so the old index goes.
-- IF [NOT] EXISTS: a database migrated by an early build of migration 4 already has it.
DROP INDEX IF EXISTS catalog_page_brand;
CREATE INDEX IF NOT EXISTS catalog_page_title ON catalog_page (store, brand_lower, title_key);
-- Every page has its key now; a server of an older version, which writes pages without
-- one, fails loudly instead of leaving pages the check cannot find. (SQLite cannot make
-- an added column NOT NULL.)
CREATE TRIGGER catalog_page_title_key_required BEFORE INSERT ON catalog_page
WHEN NEW.title_key IS NULL
BEGIN
    SELECT RAISE(ABORT, 'catalog_page.title_key is missing: a server older than this database''s migration 4 is writing to it; stop it and use the new version');
END;
