-- R3's "nearly the same title" check read every page of the brand in the store and
-- normalised each title in Rust: quadratic over a file that creates a brand's products.
-- Each page now keeps its normalised title (onestock_core::catalog::normalize_title),
-- and the check is one index look-up.
--
-- The normalisation folds accents and units, which SQL cannot repeat, so the keys of the
-- pages already here are filled in Rust right after this script, in the same
-- transaction (`fill_title_keys`). A new page always gets its key when written.
ALTER TABLE catalog_page ADD COLUMN title_key text COLLATE "C";
-- (store, brand_lower) is this index's prefix, so the old index is not needed.
DROP INDEX catalog_page_brand;
CREATE INDEX catalog_page_title ON catalog_page (store, brand_lower, title_key);
