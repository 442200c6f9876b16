-- Report pages in report order (record, then order of appending), so that a large
-- report is read a page at a time instead of sorted whole for every page.
CREATE INDEX upload_report_order ON upload_report (upload_id, record, n);

-- A seller's uploads, newest first (GET /v1/uploads, the pages' past uploads).
CREATE INDEX upload_seller_newest ON upload (seller_id, upload_id);
