//! The command line's HTTP client: `onestock upload` sends a file to a running server,
//! follows its processing with a progress bar and saves the report beside the file.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

/// Data rows in a text file (lines that are not blank, not preamble, minus the header):
/// only for the progress bar's length, so an estimate is fine.
fn estimate_rows(bytes: &[u8]) -> Option<u64> {
    if bytes.starts_with(b"PK\x03\x04") {
        return None;
    }
    let rows = bytes
        .split(|b| *b == b'\n')
        .filter(|l| {
            let t = l.trim_ascii();
            !t.is_empty() && !t.starts_with(b"#") && !t.starts_with(b"TemplateType=")
        })
        .count() as u64;
    Some(rows.saturating_sub(1))
}

fn error_text(body: &Value) -> String {
    match (
        body["error"]["code"].as_str(),
        body["error"]["message"].as_str(),
    ) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        _ => body.to_string(),
    }
}

pub async fn upload(
    url: &str,
    token: &str,
    store: &str,
    file: &Path,
    poll: Duration,
) -> anyhow::Result<()> {
    let bytes = tokio::fs::read(file)
        .await
        .with_context(|| format!("read {}", file.display()))?;
    let total = estimate_rows(&bytes);
    let client = reqwest::Client::new();
    let base = url.trim_end_matches('/');
    let resp = client
        .post(format!("{base}/v1/uploads?store={store}"))
        .bearer_auth(token)
        .body(bytes)
        .send()
        .await
        .with_context(|| format!("send the file to {base}"))?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if status.as_u16() != 202 {
        bail!(
            "the server refused the file ({status}): {}",
            error_text(&body)
        );
    }
    let upload_id = body["upload_id"].as_str().unwrap_or_default().to_owned();
    let bar = match total {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} rows {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(upload_id.clone());
    let final_state = loop {
        let resp = client
            .get(format!("{base}/v1/uploads/{upload_id}"))
            .bearer_auth(token)
            .send()
            .await
            .context("ask the upload's status")?;
        let state: Value = resp.json().await.context("read the upload's status")?;
        bar.set_position(state["records_processed"].as_u64().unwrap_or(0));
        match state["status"].as_str() {
            Some("DONE") | Some("FATAL") => break state,
            Some(_) => tokio::time::sleep(poll).await,
            None => bail!("unexpected answer: {}", error_text(&state)),
        }
    };
    bar.finish_and_clear();
    let report = client
        .get(format!("{base}/v1/uploads/{upload_id}/report"))
        .bearer_auth(token)
        .send()
        .await
        .context("fetch the report")?
        .text()
        .await?;
    let report_path = file.with_extension("report.txt");
    tokio::fs::write(&report_path, &report)
        .await
        .with_context(|| format!("write {}", report_path.display()))?;
    println!(
        "upload {upload_id}: {} — {} processed, {} successful, {} failed",
        final_state["status"].as_str().unwrap_or("?"),
        final_state["records_processed"],
        final_state["records_successful"],
        final_state["records_failed"]
    );
    if let Some(e) = final_state["error"].as_str() {
        println!("error: {e}");
    }
    println!("report saved to {}", report_path.display());
    if final_state["status"] == "FATAL" {
        bail!("the file could not be processed");
    }
    Ok(())
}
