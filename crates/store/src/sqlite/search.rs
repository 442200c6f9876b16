//! Keyword search with work bounded whatever the catalog's size.
//!
//! FTS5's `bm25` ranks every page that matches, and before the first page it counts
//! each term's pages by walking the term's whole list: a word on half a million of a
//! million pages cost 190 ms a search (`onestock bench-search`). So a term on more than
//! [`COMMON_TERM_PAGES`] pages is a *common* term, and a query with one is answered with
//! bounded work:
//!
//! - pages with one of the query's other (rare) terms are all candidates;
//! - of the pages found by common terms alone, the first [`COMMON_TERM_PAGES`] of the
//!   store (oldest first, among the first [`COMMON_MATCHES_SCANNED_MAX`] matches of all
//!   stores) are candidates too;
//! - the candidates are ranked here by FTS5's BM25 formula: first by the rare terms'
//!   score, so a page with a rare term comes before any page with common terms only,
//!   then by the common terms' score, then by ASIN.
//!
//! A query without a common term is answered by FTS5 as before, ranking every match.

use std::collections::HashMap;

use onestock_core::storage::{StoreError, StoreResult};
use onestock_core::types::StoreCode;
use rusqlite::{Connection, params};

use super::codec::db_err;

/// Pages a term may be on and still be ranked page by page; on more, it is a common
/// term (above). Ranking 1,000 candidates takes about a millisecond.
pub(crate) const COMMON_TERM_PAGES: usize = 1_000;

/// Matches of the common terms read at most, over all stores, to find a store's
/// candidates: a store with few of them gets fewer candidates rather than a walk of the
/// whole list.
const COMMON_MATCHES_SCANNED_MAX: usize = 20 * COMMON_TERM_PAGES;

/// BM25's parameters, FTS5's defaults.
const K1: f64 = 1.2;
const B: f64 = 0.75;

/// A term as an FTS5 string, so no user text is read as FTS syntax.
pub(crate) fn quoted(term: &str) -> String {
    format!("\"{}\"", term.replace('"', "\"\""))
}

/// Each term's pages, counted up to one past [`COMMON_TERM_PAGES`].
pub(crate) fn bounded_counts(conn: &Connection, terms: &[String]) -> StoreResult<Vec<usize>> {
    let mut st = conn
        .prepare_cached(
            "SELECT count(*) FROM (SELECT 1 FROM catalog_search
              WHERE catalog_search MATCH ?1 LIMIT ?2)",
        )
        .map_err(db_err)?;
    terms
        .iter()
        .map(|t| {
            st.query_row(params![quoted(t), (COMMON_TERM_PAGES + 1) as i64], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as usize)
            .map_err(db_err)
            .or_else(|e| match e {
                // FTS5 refusing a term (punctuation only) is a term on no page.
                StoreError::Other(why) if why.contains("fts5") => Ok(0),
                e => Err(e),
            })
        })
        .collect()
}

/// The page ids of the best `limit` candidates, best first, for a query with a common
/// term (`counts` from [`bounded_counts`]).
pub(crate) fn bounded(
    conn: &Connection,
    store: &StoreCode,
    terms: &[String],
    counts: &[usize],
    limit: usize,
) -> StoreResult<Vec<i64>> {
    let common: Vec<bool> = counts.iter().map(|&n| n > COMMON_TERM_PAGES).collect();
    let expression = |want_common: bool| {
        (0..terms.len())
            .filter(|&i| common[i] == want_common)
            .map(|i| quoted(&terms[i]))
            .collect::<Vec<_>>()
            .join(" OR ")
    };
    // (page id, ASIN, indexed words) of each candidate, once.
    let mut candidates: Vec<(i64, String, String)> = Vec::new();
    let mut seen: HashMap<i64, ()> = HashMap::new();
    let mut add = |sql: &str, expression: String, bounded: bool| -> StoreResult<()> {
        if expression.is_empty() {
            return Ok(());
        }
        let mut st = conn.prepare_cached(sql).map_err(db_err)?;
        let mut rows = if bounded {
            st.query(params![
                expression,
                store.as_str(),
                COMMON_TERM_PAGES as i64,
                COMMON_MATCHES_SCANNED_MAX as i64
            ])
        } else {
            st.query(params![expression, store.as_str()])
        }
        .map_err(db_err)?;
        while let Some(row) = rows.next().map_err(db_err)? {
            let id: i64 = row.get(0).map_err(db_err)?;
            if seen.insert(id, ()).is_none() {
                candidates.push((id, row.get(1).map_err(db_err)?, row.get(2).map_err(db_err)?));
            }
        }
        Ok(())
    };
    // Each rare term is on at most COMMON_TERM_PAGES pages, so this is bounded too.
    add(
        "SELECT s.rowid, p.asin, s.terms FROM catalog_search s
          JOIN catalog_page p ON p.page_id = s.rowid
          WHERE catalog_search MATCH ?1 AND p.store = ?2",
        expression(false),
        false,
    )?;
    // The common terms' first matches of every store, at most ?4 of them, so that a
    // store with few of them does not walk the whole list.
    add(
        "SELECT s.page_id, p.asin, c.terms
           FROM (SELECT rowid AS page_id FROM catalog_search
                  WHERE catalog_search MATCH ?1 ORDER BY rowid LIMIT ?4) s
           JOIN catalog_page p ON p.page_id = s.page_id
           JOIN catalog_search c ON c.rowid = s.page_id
          WHERE p.store = ?2
          ORDER BY s.page_id LIMIT ?3",
        expression(true),
        true,
    )?;
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let pages: i64 = conn
        .query_row(
            "SELECT coalesce(max(page_id), 1) FROM catalog_page",
            [],
            |r| r.get(0),
        )
        .map_err(db_err)?;
    let pages = pages.max(1) as f64;
    // FTS5's idf, with its floor for a word on most pages.
    let idf: Vec<f64> = counts
        .iter()
        .map(|&n| {
            let n = n.min(COMMON_TERM_PAGES + 1) as f64;
            ((pages - n + 0.5) / (n + 0.5)).ln().max(1e-6)
        })
        .collect();
    let phrases: Vec<Vec<String>> = terms.iter().map(|t| tokens(t)).collect();
    let docs: Vec<(i64, String, Vec<String>)> = candidates
        .into_iter()
        .map(|(id, asin, text)| (id, asin, tokens(&text)))
        .collect();
    let average = docs.iter().map(|(_, _, d)| d.len()).sum::<usize>() as f64 / docs.len() as f64;
    let bm25 = |doc: &[String], want_common: bool| -> f64 {
        let length = doc.len() as f64;
        (0..terms.len())
            .filter(|&i| common[i] == want_common)
            .map(|i| {
                let tf = occurrences(doc, &phrases[i]) as f64;
                idf[i] * tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * length / average.max(1.0)))
            })
            .sum()
    };
    // The rare terms' score first, so a page with a rare term always comes before pages
    // with common terms only (a common term's true page count is not known, only that it
    // is above the bound); the common terms' score orders pages within that; then the
    // ASIN, as the exact path does.
    let mut scored: Vec<(f64, f64, &str, i64)> = docs
        .iter()
        .map(|(id, asin, doc)| (bm25(doc, false), bm25(doc, true), asin.as_str(), *id))
        .collect();
    scored.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then(b.1.total_cmp(&a.1))
            .then(a.2.cmp(b.2))
    });
    Ok(scored
        .into_iter()
        .take(limit)
        .map(|(_, _, _, id)| id)
        .collect())
}

/// Words as FTS5's `unicode61` tokenizer splits them: runs of letters and digits, in
/// lower case.
fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// How often `phrase` (consecutive tokens) occurs in `doc`.
fn occurrences(doc: &[String], phrase: &[String]) -> usize {
    if phrase.is_empty() || phrase.len() > doc.len() {
        return 0;
    }
    doc.windows(phrase.len()).filter(|w| *w == phrase).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_phrases() {
        let doc = tokens("Usb-C cable, usb-c CHARGER");
        assert_eq!(doc, ["usb", "c", "cable", "usb", "c", "charger"]);
        assert_eq!(occurrences(&doc, &tokens("usb-c")), 2);
        assert_eq!(occurrences(&doc, &tokens("charger")), 1);
        assert_eq!(occurrences(&doc, &tokens("")), 0);
    }
}
