//! The exact text of every JSON number of a body, by JSON pointer, so that a price sent
//! as a number (`"value_with_tax": 19.99`) is read as the decimal it spells, never
//! through `f64`. Uses serde_json's `RawValue`, which changes nothing else's parsing
//! (unlike the crate-wide `arbitrary_precision` feature).

use std::collections::HashMap;

use serde_json::value::RawValue;

/// Nesting this walk follows; serde_json refuses deeper bodies (its recursion limit)
/// before they get here.
const DEPTH_MAX: usize = 128;

/// JSON pointer (`/attributes/purchasable_offer/0/...`) → the number's text.
pub fn exact_numbers(body: &[u8]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    if let Ok(text) = std::str::from_utf8(body)
        && let Ok(raw) = serde_json::from_str::<&RawValue>(text)
    {
        walk(raw, String::new(), 0, &mut out);
    }
    out
}

fn walk(raw: &RawValue, path: String, depth: usize, out: &mut HashMap<String, String>) {
    if depth > DEPTH_MAX {
        return;
    }
    let text = raw.get().trim();
    match text.as_bytes().first() {
        Some(b'{') => {
            if let Ok(map) = serde_json::from_str::<HashMap<String, &RawValue>>(text) {
                for (k, v) in map {
                    walk(v, format!("{path}/{}", escape(&k)), depth + 1, out);
                }
            }
        }
        Some(b'[') => {
            if let Ok(items) = serde_json::from_str::<Vec<&RawValue>>(text) {
                for (i, v) in items.into_iter().enumerate() {
                    walk(v, format!("{path}/{i}"), depth + 1, out);
                }
            }
        }
        Some(c) if *c == b'-' || c.is_ascii_digit() => {
            out.insert(path, text.to_owned());
        }
        _ => {}
    }
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_their_text() {
        let body = br#"{"a": [{"v": 19.99}, {"v": 0.1e1}], "b": {"c/d": -3}, "s": "1.5"}"#;
        let n = exact_numbers(body);
        assert_eq!(n.get("/a/0/v").map(String::as_str), Some("19.99"));
        assert_eq!(n.get("/a/1/v").map(String::as_str), Some("0.1e1"));
        assert_eq!(n.get("/b/c~1d").map(String::as_str), Some("-3"));
        assert_eq!(n.get("/s"), None);
        assert!(exact_numbers(b"{").is_empty());
    }
}
