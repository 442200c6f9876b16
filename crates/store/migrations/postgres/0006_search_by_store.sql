-- Catalog search reads one store's pages only: each page's words move to
-- catalog_search, partitioned by store, one partition (and so one GIN index and one
-- heap) per store. A search's word lists then hold only its store's pages, and a scan
-- for common words reads only its store's rows, each a fraction of a catalog_page row
-- (docs/scaling.md, "Catalog search at a million pages").
CREATE TABLE catalog_search (
    asin     text COLLATE "C" NOT NULL,
    store    text COLLATE "C" NOT NULL,
    language text NOT NULL,
    -- Title (weight A) and brand (weight B) in the page language's configuration.
    search   tsvector NOT NULL,
    PRIMARY KEY (asin, store)
) PARTITION BY LIST (store);

-- Makes the partition of store `code` if it has none; true when it already had one.
-- The server calls it before a connection's first page write in a store, so a store
-- added to the region file gets its partition with its first page. There is no
-- default partition: a page of a store without one is an error, never a slow search.
CREATE FUNCTION catalog_search_partition(code text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    part text := 'catalog_search_' || lower(code);
BEGIN
    IF to_regclass(quote_ident(part)) IS NOT NULL THEN
        RETURN true;
    END IF;
    -- Two servers writing a new store's first pages at once make it one after the other.
    PERFORM pg_advisory_xact_lock(8030889439795503976); -- "ossearch" in ASCII
    EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF catalog_search FOR VALUES IN (%L)',
                   part, code);
    RETURN false;
END $$;

SELECT catalog_search_partition(s.store) FROM (SELECT DISTINCT store FROM catalog_page) s;
INSERT INTO catalog_search (asin, store, language, search)
    SELECT asin, store, language, search FROM catalog_page;
-- Built after the copy: one sorted build per partition instead of a million inserts.
CREATE INDEX catalog_search_words ON catalog_search USING gin (search);

-- A server of an older version, which writes catalog_page.search, fails loudly instead
-- of writing pages that search cannot find.
DROP INDEX catalog_page_search;
ALTER TABLE catalog_page DROP COLUMN search;
