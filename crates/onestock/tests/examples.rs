//! The files of `examples/` against `onestock serve --demo`, as a newcomer tries them:
//! the real binary serves a fresh demo database, `onestock upload` sends each file for
//! the store examples/README.md names, and every row is applied; the one file named
//! "with-errors" fails the rows its README entry describes.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Each example with the store it is for (examples/README.md), in the README's order.
const EXAMPLES: &[(&str, &str)] = &[
    ("inventory-small.tsv", "US"),
    ("inventory-windows1252.tsv", "US"),
    ("inventory.csv", "MX"),
    ("inventory.xlsx", "CA"),
    ("inventory-loader-CA.txt", "CA"),
    ("price-quantity-CA-windows1252.csv", "CA"),
];
const WITH_ERRORS: (&str, &str) = ("inventory-with-errors.tsv", "US");

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// `onestock serve --demo` on a free port in `dir`; stopped when dropped.
struct DemoServer {
    child: Child,
    url: String,
    token: String,
}

impl Drop for DemoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_demo(dir: &Path) -> DemoServer {
    let mut child = Command::new(env!("CARGO_BIN_EXE_onestock"))
        .args(["serve", "--demo", "--listen", "127.0.0.1:0"])
        .current_dir(dir)
        .env_remove("ONESTOCK_DATABASE_URL")
        .env_remove("ONESTOCK_OPERATOR_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start onestock serve --demo");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let (mut url, mut token) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = Vec::new();
    while url.is_none() || token.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = rx.recv_timeout(left) else {
            let _ = child.kill();
            panic!("the demo server did not start; it printed: {seen:#?}");
        };
        if let Some(rest) = line.strip_prefix("onestock serving on ") {
            url = rest.split_whitespace().next().map(str::to_owned);
        }
        if let Some((_, t)) = line.split_once(", token ") {
            token = Some(t.trim().to_owned());
        }
        seen.push(line);
    }
    DemoServer {
        child,
        url: url.expect("url"),
        token: token.expect("token"),
    }
}

/// `onestock upload --store S FILE` (waits for DONE): (exit code, stdout + stderr, report).
fn upload(server: &DemoServer, dir: &Path, name: &str, store: &str) -> (i32, String, String) {
    let file = dir.join(name);
    std::fs::copy(examples_dir().join(name), &file).expect("copy the example");
    let out = Command::new(env!("CARGO_BIN_EXE_onestock"))
        .args(["upload", "--store", store, "--url", &server.url, "--token"])
        .arg(&server.token)
        .arg(&file)
        .current_dir(dir)
        .env_remove("ONESTOCK_URL")
        .env_remove("ONESTOCK_TOKEN")
        .output()
        .expect("run onestock upload");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report = std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{name}.")) && n.ends_with(".report.txt"))
        })
        .map(|p| std::fs::read_to_string(p).expect("report"))
        .unwrap_or_default();
    (out.status.code().unwrap_or(-1), said, report)
}

/// The (record, sku, code) of each report line below the header.
fn failed_rows(report: &str) -> Vec<(String, String, String)> {
    report
        .lines()
        .skip_while(|l| !l.starts_with("original-record-number"))
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            (c[0].to_owned(), c[1].to_owned(), c[2].to_owned())
        })
        .collect()
}

#[test]
fn every_example_uploads_to_the_demo_without_a_failed_row_and_the_errors_file_fails_its_rows() {
    // Every file of examples/ is in one of the two lists.
    let mut listed: Vec<&str> = EXAMPLES.iter().map(|(n, _)| *n).collect();
    listed.push(WITH_ERRORS.0);
    listed.push("README.md");
    listed.sort();
    let mut present: Vec<String> = std::fs::read_dir(examples_dir())
        .expect("examples/")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        // Reports `onestock upload` saved beside the examples a person tried by hand.
        .filter(|name| !name.ends_with(".report.txt"))
        .collect();
    present.sort();
    assert_eq!(present, listed, "examples/ and this test's lists");
    let readme = std::fs::read_to_string(examples_dir().join("README.md")).expect("README");
    for name in listed.iter().filter(|n| **n != "README.md") {
        assert!(readme.contains(name), "examples/README.md describes {name}");
    }

    let dir = tempfile::tempdir().expect("dir");
    let server = serve_demo(dir.path());
    for (name, store) in EXAMPLES {
        let (code, said, report) = upload(&server, dir.path(), name, store);
        assert!(said.contains("DONE"), "{name}: {said}");
        assert_eq!(failed_rows(&report), [], "{name} for {store}: {report}");
        assert_eq!(code, 0, "{name}: {said}");
    }

    let (name, store) = WITH_ERRORS;
    let (code, said, report) = upload(&server, dir.path(), name, store);
    assert!(said.contains("DONE"), "{name}: {said}");
    assert_ne!(code, 0, "{name}: {said}");
    let codes: Vec<(String, String)> = failed_rows(&report)
        .into_iter()
        .map(|(record, _, code)| (record, code))
        .collect();
    let want = [
        ("2", "INVALID_IDENTIFIER"),
        ("3", "ASIN_NOT_IN_STORE"),
        ("4", "SKU_ASIN_MISMATCH"),
        ("5", "INVALID_PRICE"),
        ("6", "INVALID_QUANTITY"),
        ("7", "SHARING_NOT_AVAILABLE"),
        ("9", "NOT_FOUND"),
    ]
    .map(|(r, c)| (r.to_owned(), c.to_owned()));
    assert_eq!(codes, want, "{report}");
    // The report speaks the file's words, never the API's.
    assert!(report.contains("inventory-sharing"), "{report}");
    assert!(!report.contains("share:"), "{report}");
    assert!(!report.contains("/v1/"), "{report}");
}
