//! Which plan a catalog search takes on PostgreSQL.
//!
//! PostgreSQL finds a query's matches through the GIN index on `catalog_page.search`,
//! as a bitmap: every entry of every word is read before the first page. For a word on
//! a large share of the pages that is hundreds of thousands of entries (25–30 ms at a
//! million pages), while a plain scan of the table finds the 1,000 matches that are
//! ranked (`SEARCH_CANDIDATES_MAX`) within a few thousand rows (2–5 ms). For rare words
//! it is the other way round (1 ms against 200 ms). The planner's estimate for the
//! query (an OR of its four language forms) is far off, so the choice is made here,
//! from the words' shares of pages in PostgreSQL's own statistics
//! (`pg_stats.most_common_elems`, kept by ANALYZE and autovacuum). Both plans rank the
//! same matches: the store's first 1,000 in the table's order. See docs/scaling.md,
//! "Catalog search at a million pages".

use std::collections::HashMap;
use std::time::{Duration, Instant};

use onestock_core::catalog::stem_terms;

/// The scan pays when a query's matches are expected on at least this share of pages:
/// 1,000 matches then come within 20,000 rows.
pub(super) const SCAN_MATCH_SHARE_MIN: f64 = 0.05;
/// How long the words' shares are kept before they are read again.
pub(super) const TERM_STATS_TTL: Duration = Duration::from_secs(600);
/// Words of a query looked at, at most (a longer query takes the index).
const QUERY_WORDS_MAX: usize = 8;

/// The share of catalog pages each common lexeme is on, as PostgreSQL last measured.
pub(crate) struct TermStats {
    pub(super) loaded: Instant,
    pub(super) share: HashMap<String, f64>,
}

/// The statement that reads the shares: lexemes and frequencies side by side (the
/// frequency array has three more values, minimum, maximum and nulls, which pair with
/// no lexeme).
pub(super) const TERM_STATS: &str = "SELECT u.lexeme, u.share::float8
     FROM pg_stats s,
          unnest(s.most_common_elems::text::text[], s.most_common_elem_freqs)
            AS u(lexeme, share)
    WHERE s.schemaname = current_schema() AND s.tablename = 'catalog_page'
      AND s.attname = 'search' AND u.lexeme IS NOT NULL";

/// Whether `query` is better answered by scanning the table: plain words only (no
/// quotes, `or` or `-`, whose meaning the estimate below ignores), each common, and
/// together expected on at least `SCAN_MATCH_SHARE_MIN` of the pages (words counted
/// as independent).
pub(super) fn scan_pays(query: &str, share: &HashMap<String, f64>) -> bool {
    if share.is_empty() || query.contains('"') || query.contains('-') {
        return false;
    }
    let words: Vec<String> = query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    if words.is_empty() || words.len() > QUERY_WORDS_MAX || words.iter().any(|w| w == "or") {
        return false;
    }
    let mut expected = 1.0;
    for word in &words {
        // The word as each language's configuration stores it; the commonest counts.
        let mut forms = vec![word.clone()];
        for language in ["en", "fr", "es"] {
            forms.extend(stem_terms(word, language));
        }
        let best = forms
            .iter()
            .filter_map(|f| share.get(f))
            .fold(0.0_f64, |a, &b| a.max(b));
        expected *= best;
    }
    expected >= SCAN_MATCH_SHARE_MIN
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shares() -> HashMap<String, f64> {
        [
            ("kax", 0.45),
            ("lox", 0.26),
            ("tex", 0.077),
            ("rux", 0.108),
            ("mug", 0.2),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    #[test]
    fn common_words_scan_and_rare_or_mixed_ones_take_the_index() {
        let s = shares();
        assert!(scan_pays("kax", &s));
        assert!(scan_pays("KAX lox", &s)); // 0.45 × 0.26 = 0.117
        assert!(scan_pays("mugs", &s)); // stemmed to "mug"
        assert!(!scan_pays("tex rux", &s)); // 0.008
        assert!(!scan_pays("kax tekamorx", &s)); // a word without statistics is rare
        assert!(!scan_pays("\"kax lox\"", &s));
        assert!(!scan_pays("kax -lox", &s));
        assert!(!scan_pays("kax or lox", &s));
        assert!(!scan_pays("", &s));
        assert!(!scan_pays("kax", &HashMap::new())); // no statistics yet
    }
}
