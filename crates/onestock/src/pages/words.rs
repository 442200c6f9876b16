//! The words the pages show for the API's values (SPEC section 7 fixes some of them:
//! "Active", "Inactive", "Out of stock", "Closed", "Not yet started", "In queue", ...).

use onestock_core::model::{InactiveReason, LedgerReason, UploadStatus};
use onestock_core::rules::ListingView;
use onestock_core::types::{Condition, Fulfillment, ShareMode, StoreCode};

pub fn condition(c: Condition) -> &'static str {
    match c {
        Condition::New => "New",
        Condition::Refurbished => "Refurbished",
        Condition::UsedLikeNew => "Used - Like New",
        Condition::UsedVeryGood => "Used - Very Good",
        Condition::UsedGood => "Used - Good",
        Condition::UsedAcceptable => "Used - Acceptable",
        Condition::CollectibleLikeNew => "Collectible - Like New",
        Condition::CollectibleVeryGood => "Collectible - Very Good",
        Condition::CollectibleGood => "Collectible - Good",
        Condition::CollectibleAcceptable => "Collectible - Acceptable",
    }
}

pub fn reason(r: InactiveReason) -> &'static str {
    match r {
        InactiveReason::OutOfStock => "Out of stock",
        InactiveReason::Closed => "Closed",
        InactiveReason::NotYetStarted => "Not yet started",
    }
}

/// "Active", or "Inactive" with its reasons.
pub fn status(v: &ListingView) -> String {
    if v.active {
        "Active".to_owned()
    } else {
        let reasons: Vec<&str> = v.reasons.iter().map(|r| reason(*r)).collect();
        format!("Inactive: {}", reasons.join(", "))
    }
}

/// "Shared with CA, MX", "Unique offer" or "Not shared".
pub fn sharing(v: &ListingView) -> String {
    match v.share {
        ShareMode::Unique => "Unique offer".to_owned(),
        ShareMode::Existing => {
            let others: Vec<&str> = v
                .pool_stores
                .iter()
                .filter(|s| **s != v.store)
                .map(|s| s.as_str())
                .collect();
            if others.is_empty() {
                "Not shared".to_owned()
            } else {
                format!("Shared with {}", others.join(", "))
            }
        }
    }
}

pub fn fulfillment(f: Fulfillment) -> &'static str {
    match f {
        Fulfillment::Merchant => "Fulfilled by merchant",
        Fulfillment::Marketplace => "Fulfilled by marketplace",
    }
}

pub fn ledger_reason(r: LedgerReason) -> &'static str {
    match r {
        LedgerReason::Order => "Order",
        LedgerReason::Cancel => "Order cancelled",
        LedgerReason::Set => "Quantity set",
        LedgerReason::Adjust => "Adjusted",
        LedgerReason::Upload => "Upload",
        LedgerReason::Delete => "Deleted",
    }
}

pub fn upload_status(s: UploadStatus) -> &'static str {
    match s {
        UploadStatus::InQueue => "In queue",
        UploadStatus::InProgress => "In progress",
        UploadStatus::Done => "Done",
        UploadStatus::Fatal => "Fatal",
    }
}

pub fn codes(stores: &[StoreCode]) -> String {
    stores
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A time as people read it, in UTC: `2025-06-01 12:00 UTC`.
pub fn time(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A date for a date field: `2030-01-31`.
pub fn date(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

/// A detail-page language as people read it: "English (en)"; the code alone for
/// languages this table does not name.
pub fn language(code: &str) -> String {
    let name = match code {
        "en" => "English",
        "fr" => "French",
        "es" => "Spanish",
        "de" => "German",
        "it" => "Italian",
        "pt" => "Portuguese",
        "nl" => "Dutch",
        "sv" => "Swedish",
        "pl" => "Polish",
        "tr" => "Turkish",
        "ja" => "Japanese",
        "zh" => "Chinese",
        "ar" => "Arabic",
        "hi" => "Hindi",
        _ => return code.to_owned(),
    };
    format!("{name} ({code})")
}
