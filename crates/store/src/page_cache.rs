//! Catalog look-ups remembered for one transaction. A chunk of upload rows asks for the
//! same few pages again and again; both backends answer repeats from here. Emptied by
//! every page write.

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
pub(crate) struct PageCache(HashMap<PageQuery, Vec<DetailPage>>);

impl PageCache {
    pub(crate) fn get(&self, query: &PageQuery) -> Option<Vec<DetailPage>> {
        self.0.get(query).cloned()
    }

    pub(crate) fn contains(&self, query: &PageQuery) -> bool {
        self.0.contains_key(query)
    }

    /// Remembers the answer and gives it back.
    pub(crate) fn put(&mut self, query: PageQuery, pages: Vec<DetailPage>) -> Vec<DetailPage> {
        self.0.insert(query, pages.clone());
        pages
    }

    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }
}
