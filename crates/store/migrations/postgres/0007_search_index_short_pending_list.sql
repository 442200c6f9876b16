-- The catalog_search GIN indexes keep a short pending list: 256 kB instead of
-- gin_pending_list_limit's 4 MB default. A GIN index gathers new entries in that list
-- and merges them into its word lists when the list is full (or at a vacuum); until
-- then every search reads the whole list. After a fill of 1,000,000 pages each store's
-- list held about 17,000 pages' words, and search p50 was 16 ms with it, 3.5 ms once
-- merged. With 256 kB: p50 2.9 to 4.4 ms right after the fill, and the fill took 176 s
-- against 166 s (no pending list at all, fastupdate off: 271 s, the same searches).
-- See docs/decisions.md, "Search plans on PostgreSQL".
--
-- A partitioned index's storage parameters cannot be altered, so it is built again
-- with them; partitions made later (catalog_search_partition) inherit them.
DROP INDEX catalog_search_words;
CREATE INDEX catalog_search_words ON catalog_search USING gin (search)
    WITH (gin_pending_list_limit = 256);
