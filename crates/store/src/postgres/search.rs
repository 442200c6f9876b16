//! Which plan a catalog search takes on PostgreSQL.
//!
//! A store's pages' words are in their own partition of `catalog_search` (migration 6),
//! with its own GIN index. PostgreSQL finds a query's matches through that index as a
//! bitmap: every entry of every word is read before the first page, so a query's cost
//! grows with its words' lists. A plain scan of the partition instead stops at the
//! 1,000 matches that are ranked (`SEARCH_CANDIDATES_MAX`), so its cost falls as the
//! matches get commoner. The planner's estimate for the query (an OR of its four
//! language forms) is far off, so the choice is made here: both costs are estimated
//! from the words' shares of the store's pages in PostgreSQL's own statistics
//! (`pg_stats.most_common_elems` of the store's partition, kept by autovacuum's
//! ANALYZE), and the cheaper plan is taken. Both plans rank the same matches: the
//! store's first 1,000 in the partition's order. See docs/scaling.md, "Catalog search
//! at a million pages".

use std::collections::HashMap;
use std::time::{Duration, Instant};

use onestock_core::catalog::stem_terms;

/// The cost model's parts, in microseconds, measured on 1,000,000 pages in three stores
/// (2026-12-02, a 2-core machine; only their ratios decide):
/// a row of the partition read and tested by the scan,
pub(super) const SCAN_ROW_US: f64 = 0.42;
/// an entry of a word's list read through the index,
pub(super) const INDEX_ENTRY_US: f64 = 0.075;
/// and what an index search costs besides its lists (reading and ranking its matches).
pub(super) const INDEX_START_US: f64 = 3_000.0;
/// How long a store's shares are kept before they are read again.
pub(super) const TERM_STATS_TTL: Duration = Duration::from_secs(600);
/// Words of a query looked at, at most (a longer query takes the index).
const QUERY_WORDS_MAX: usize = 8;

/// What PostgreSQL last measured of one store's partition: its pages, and the share of
/// them each common lexeme is on.
pub(crate) struct TermStats {
    pub(super) loaded: Instant,
    pub(super) pages: f64,
    pub(super) share: HashMap<String, f64>,
}

/// The statement that reads a partition's page count (`$1`: its name).
pub(super) const PARTITION_PAGES: &str = "SELECT c.reltuples::float8 FROM pg_class c
    WHERE c.relname = $1 AND c.relnamespace = current_schema()::regnamespace";

/// The statement that reads a partition's shares (`$1`: its name): lexemes and
/// frequencies side by side (the frequency array has three more values, minimum,
/// maximum and nulls, which pair with no lexeme).
pub(super) const TERM_STATS: &str = "SELECT u.lexeme, u.share::float8
     FROM pg_stats s,
          unnest(s.most_common_elems::text::text[], s.most_common_elem_freqs)
            AS u(lexeme, share)
    WHERE s.schemaname = current_schema() AND s.tablename = $1
      AND s.attname = 'search' AND u.lexeme IS NOT NULL";

/// The partition of `catalog_search` that holds a store's pages: the name
/// `catalog_search_partition` (migration 6) gives it, which this must match. A
/// mismatch finds no statistics, so every search takes the index, and
/// `a_common_word_search_scans_and_puts_the_planner_settings_back` fails.
pub(super) fn partition_of(store: &str) -> String {
    format!("catalog_search_{}", store.to_ascii_lowercase())
}

/// Whether `query` is cheaper to answer by scanning the store's partition than through
/// its index. Plain words only (quotes, `or` and `-` change what matches in ways the
/// estimate ignores; such a query takes the index). A word without statistics counts
/// as rare: its list is short, and few pages match it.
pub(super) fn scan_pays(query: &str, stats: &TermStats) -> bool {
    if stats.share.is_empty() || query.contains('"') || query.contains('-') {
        return false;
    }
    let mut words: Vec<String> = query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    // A word given twice matches the same pages as once.
    words.sort();
    words.dedup();
    if words.is_empty() || words.len() > QUERY_WORDS_MAX || words.iter().any(|w| w == "or") {
        return false;
    }
    let mut matching = 1.0; // the share of pages with every word (words independent)
    let mut entries = 0.0; // entries of the words' lists
    for word in &words {
        // The word as each language's configuration stores it; the commonest counts.
        let mut forms = vec![word.clone()];
        for language in ["en", "fr", "es"] {
            forms.extend(stem_terms(word, language));
        }
        let best = forms
            .iter()
            .filter_map(|f| stats.share.get(f))
            .fold(0.0_f64, |a, &b| a.max(b));
        matching *= best;
        entries += best * stats.pages;
    }
    if matching <= 0.0 {
        return false;
    }
    let scan = SCAN_ROW_US * super::tx::SEARCH_CANDIDATES_MAX as f64 / matching;
    let index = INDEX_START_US + INDEX_ENTRY_US * entries;
    scan < index
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats() -> TermStats {
        TermStats {
            loaded: Instant::now(),
            pages: 333_333.0,
            share: [
                ("kax", 0.45),
                ("lox", 0.25),
                ("mix", 0.176),
                ("nex", 0.135),
                ("rux", 0.108),
                ("sax", 0.092),
                ("tex", 0.078),
                ("clex", 0.05),
                ("mug", 0.2),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        }
    }

    /// The choices the measurements behind the model's parts made (docs/scaling.md).
    #[test]
    fn common_words_scan_and_rare_or_mixed_ones_take_the_index() {
        let s = stats();
        assert!(scan_pays("kax", &s));
        assert!(scan_pays("KAX lox", &s)); // 11 % of pages: 9,000 rows to scan
        assert!(scan_pays("rux kax", &s)); // 4.9 %, but two long lists
        assert!(scan_pays("mix mix", &s)); // as "mix" alone
        assert!(scan_pays("mugs", &s)); // stemmed to "mug"
        assert!(!scan_pays("tex", &s)); // one list of 26,000 entries
        assert!(!scan_pays("clex", &s));
        assert!(!scan_pays("mix sax", &s)); // 1.6 %: 62,000 rows to scan
        assert!(!scan_pays("kax tekamorx", &s)); // a word without statistics is rare
        assert!(!scan_pays("\"kax lox\"", &s));
        assert!(!scan_pays("kax -lox", &s));
        assert!(!scan_pays("kax or lox", &s));
        assert!(!scan_pays("", &s));
        let empty = TermStats {
            share: HashMap::new(),
            ..stats()
        };
        assert!(!scan_pays("kax", &empty)); // no statistics yet
    }

    #[test]
    fn partitions_are_named_by_store() {
        assert_eq!(partition_of("US"), "catalog_search_us");
    }
}
