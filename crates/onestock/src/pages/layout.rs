//! The frame of every page: the header with the seller's name and "Sign out", the
//! navigation, the store switcher, the message left by the last form, and the styles
//! and script of `/assets`.

use maud::{DOCTYPE, Markup, html};
use onestock_core::region::{Region, Store};
use onestock_core::types::StoreCode;

use super::Pages;
use super::session::{Flash, Session};

/// The store switcher's value for "All stores".
pub const ALL_STORES: &str = "all";

/// What the store switcher shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreChoice {
    All,
    One(StoreCode),
}

impl StoreChoice {
    pub fn value(&self) -> &str {
        match self {
            StoreChoice::All => ALL_STORES,
            StoreChoice::One(c) => c.as_str(),
        }
    }

    /// The store a page about one store shows: the chosen one, or the region's first.
    pub fn one<'r>(&self, region: &'r Region) -> Option<&'r Store> {
        match self {
            StoreChoice::One(c) => region.store(c.as_str()).ok(),
            StoreChoice::All => region.stores.first(),
        }
    }
}

/// The store a page shows: the one asked for in the address (remembered in the
/// session, so the choice is kept while moving between pages), else the remembered one,
/// else the region's first store.
pub fn choose_store(pages: &Pages, session: &Session, asked: Option<&str>) -> StoreChoice {
    let region = pages.app.service.region();
    let parse = |raw: &str| -> Option<StoreChoice> {
        if raw.eq_ignore_ascii_case(ALL_STORES) {
            Some(StoreChoice::All)
        } else {
            region
                .store(raw)
                .ok()
                .map(|s| StoreChoice::One(s.code.clone()))
        }
    };
    if let Some(choice) = asked.and_then(parse) {
        pages.sessions.set_store(session, choice.value());
        return choice;
    }
    session
        .store
        .as_deref()
        .and_then(parse)
        .or_else(|| {
            region
                .stores
                .first()
                .map(|s| StoreChoice::One(s.code.clone()))
        })
        .unwrap_or(StoreChoice::All)
}

/// Which part of the site a page belongs to, for the navigation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Inventory,
    AddProduct,
    Upload,
}

/// Everything the frame of a signed-in page needs.
pub struct Chrome<'a> {
    pub pages: &'a Pages,
    pub session: &'a Session,
    pub section: Section,
    /// The store switcher's current value.
    pub store: StoreChoice,
    /// Where the switcher sends its choice (the page's own path).
    pub path: &'a str,
    /// Whether "All stores" makes sense on this page.
    pub all_stores: bool,
    pub flash: Option<Flash>,
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · onestock Seller Central" }
            link rel="stylesheet" href="/assets/app.css";
            script src="/assets/app.js" defer {}
        }
    }
}

/// A page without a session (sign-in, errors).
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.top {
                    div.brand { a href="/" { "onestock" } span.muted { " Seller Central" } }
                }
                main { (body) }
            }
        }
    }
}

/// The anti-forgery field of a changing form.
pub fn csrf(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// A flash message box.
pub fn notice(flash: &Flash) -> Markup {
    html! {
        div class={ "notice " (if flash.ok { "ok" } else { "error" }) } role=(if flash.ok { "status" } else { "alert" }) {
            @if let Some(code) = &flash.code { strong.code { (code) } " " }
            (flash.text)
        }
    }
}

/// A signed-in page.
pub fn page(title: &str, chrome: Chrome<'_>, body: Markup) -> Markup {
    let region = chrome.pages.app.service.region();
    let nav = |section: Section, href: &str, label: &str| {
        html! {
            a href=(href) class=[(chrome.section == section).then_some("current")] { (label) }
        }
    };
    let top_flash = chrome.flash.as_ref().filter(|f| f.target.is_none());
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.top {
                    div.brand { a href="/" { "onestock" } span.muted { " Seller Central" } }
                    nav.main {
                        (nav(Section::Inventory, "/", "Manage Inventory"))
                        (nav(Section::AddProduct, "/add-product", "Add a product"))
                        (nav(Section::Upload, "/upload-products", "Add Products via Upload"))
                    }
                    div.who {
                        span.muted { (chrome.session.seller_name) }
                        form.inline method="post" action="/sign-out" {
                            (csrf(chrome.session))
                            button.link type="submit" { "Sign out" }
                        }
                    }
                }
                div.switcher {
                    form.inline #store-switcher method="get" action=(chrome.path) {
                        label for="store" { "Store" }
                        select #store name="store" data-autosubmit="1" {
                            @for s in &region.stores {
                                option value=(s.code.as_str()) selected[chrome.store.value() == s.code.as_str()] { (s.name) }
                            }
                            @if chrome.all_stores {
                                option value=(ALL_STORES) selected[chrome.store == StoreChoice::All] { "All stores" }
                            }
                        }
                        button.secondary type="submit" { "Go" }
                    }
                }
                main {
                    @if let Some(f) = top_flash { (notice(f)) }
                    (body)
                }
            }
        }
    }
}
