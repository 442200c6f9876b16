//! Catalog look-ups remembered for one transaction. A chunk of upload rows asks for the
//! same few pages again and again; both backends answer repeats from here. A page write
//! forgets the answers it may change, and only those: a file that creates products
//! writes a page every few rows, and emptying the whole cache each time would send the
//! chunk's other rows back to the database one look-up at a time.

use std::collections::HashMap;

use onestock_core::model::DetailPage;
use onestock_core::types::{Asin, StoreCode};

#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) enum PageQuery {
    Page(Asin, StoreCode),
    OfAsin(Asin),
    ByIdentifier(String),
}

#[derive(Default)]
pub(crate) struct PageCache {
    answers: HashMap<PageQuery, Vec<DetailPage>>,
    /// The queries whose answer holds the page: a write of the page forgets them. May
    /// name queries already forgotten.
    holding: HashMap<(Asin, StoreCode), Vec<PageQuery>>,
}

impl PageCache {
    pub(crate) fn get(&self, query: &PageQuery) -> Option<Vec<DetailPage>> {
        self.answers.get(query).cloned()
    }

    pub(crate) fn contains(&self, query: &PageQuery) -> bool {
        self.answers.contains_key(query)
    }

    /// Remembers the answer and gives it back.
    pub(crate) fn put(&mut self, query: PageQuery, pages: Vec<DetailPage>) -> Vec<DetailPage> {
        for page in &pages {
            self.holding
                .entry((page.asin.clone(), page.store.clone()))
                .or_default()
                .push(query.clone());
        }
        self.answers.insert(query, pages.clone());
        pages
    }

    /// Forgets every answer that writing `page` (new, or replacing the page of its ASIN
    /// and store) may change: the answers that held the page as it was (its old
    /// identifiers among them), the page itself, its ASIN's pages, and its identifiers'
    /// pages, which may not have held it before.
    pub(crate) fn forget(&mut self, page: &DetailPage) {
        let key = (page.asin.clone(), page.store.clone());
        for query in self.holding.remove(&key).unwrap_or_default() {
            self.answers.remove(&query);
        }
        self.answers.remove(&PageQuery::Page(key.0, key.1));
        self.answers.remove(&PageQuery::OfAsin(page.asin.clone()));
        for id in &page.identifiers {
            self.answers
                .remove(&PageQuery::ByIdentifier(id.value.clone()));
        }
    }
}

/// A page for the tests: its ASIN in the title, one UPC per value.
#[cfg(test)]
pub(crate) fn test_page(asin: &str, store: &str, values: &[&str]) -> DetailPage {
    use onestock_core::model::Identifier;
    DetailPage {
        asin: Asin::parse(asin).expect("asin"),
        store: StoreCode::parse(store).expect("store"),
        title: format!("mug {asin}"),
        brand: "Acme".into(),
        description: String::new(),
        language: "en".into(),
        product_type: "DRINKWARE".into(),
        identifiers: values
            .iter()
            .map(|v| Identifier {
                kind: "UPC".into(),
                value: (*v).into(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::test_page as page;
    use super::*;

    fn by(value: &str) -> PageQuery {
        PageQuery::ByIdentifier(value.into())
    }

    #[test]
    fn a_page_write_forgets_what_it_may_change_and_keeps_the_rest() {
        let mut cache = PageCache::default();
        let us = page("B0MUG00001", "US", &["036000291452"]);
        let ca = page("B0MUG00001", "CA", &["036000291452"]);
        let other = page("B0MUG00009", "US", &["012345678905"]);
        let asin = us.asin.clone();
        cache.put(by("036000291452"), vec![ca.clone(), us.clone()]);
        cache.put(by("012345678905"), vec![other.clone()]);
        cache.put(by("987654321012"), Vec::new());
        cache.put(by("400638133393"), Vec::new());
        cache.put(
            PageQuery::Page(asin.clone(), us.store.clone()),
            vec![us.clone()],
        );
        cache.put(
            PageQuery::Page(asin.clone(), ca.store.clone()),
            vec![ca.clone()],
        );
        cache.put(
            PageQuery::OfAsin(asin.clone()),
            vec![ca.clone(), us.clone()],
        );

        // The US page is replaced: it drops its old UPC and takes one that had no page.
        cache.forget(&page("B0MUG00001", "US", &["987654321012"]));
        assert!(!cache.contains(&by("036000291452")), "held the old page");
        assert!(!cache.contains(&by("987654321012")), "the new identifier");
        assert!(!cache.contains(&PageQuery::Page(asin.clone(), us.store.clone())));
        assert!(!cache.contains(&PageQuery::OfAsin(asin.clone())));
        // Answers the write cannot change stay.
        assert_eq!(cache.get(&by("012345678905")), Some(vec![other]));
        assert_eq!(cache.get(&by("400638133393")), Some(Vec::new()));
        assert_eq!(
            cache.get(&PageQuery::Page(asin.clone(), ca.store.clone())),
            Some(vec![ca.clone()])
        );

        // A new page in another store forgets its identifier's answer, which named only
        // the pages of the other stores.
        cache.put(by("036000291452"), vec![ca.clone()]);
        cache.forget(&page("B0MUG00001", "MX", &["036000291452"]));
        assert!(!cache.contains(&by("036000291452")));
        assert_eq!(
            cache.get(&PageQuery::Page(asin, ca.store.clone())),
            Some(vec![ca])
        );
    }
}
