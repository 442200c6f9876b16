//! Python virtual environments under `target/` for the tests that run real Python tools
//! (the SP-API client libraries, schemathesis), with versions pinned in a requirements
//! file. An environment is made once and made again only when its requirements change;
//! a failed install fails the test that needs it.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Installing from PyPI on a fresh machine: a minute or two.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);

/// Runs a command to its end within `limit`: whether it succeeded, and its output.
pub async fn run(cmd: &mut tokio::process::Command, limit: Duration, what: &str) -> (bool, String) {
    cmd.kill_on_drop(true);
    let out = tokio::time::timeout(limit, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {limit:?}"))
        .unwrap_or_else(|e| panic!("{what}: could not start: {e}"));
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The environment `target/NAME` with `requirements` installed; its folder.
pub async fn venv(name: &str, requirements: &Path) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let venv = target.join(name);
    let python = venv.join("bin/python");
    let wanted = std::fs::read_to_string(requirements).expect("requirements file");
    let stamp = venv.join("onestock-requirements.txt");
    if python.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(&wanted) {
        return venv;
    }
    let (ok, out) = run(
        tokio::process::Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(&venv),
        INSTALL_TIMEOUT,
        "python3 -m venv",
    )
    .await;
    assert!(
        ok,
        "python3 -m venv failed (scripts/test installs python3-venv):\n{out}"
    );
    let (ok, out) = run(
        tokio::process::Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(requirements),
        INSTALL_TIMEOUT,
        "pip install -r requirements.txt",
    )
    .await;
    assert!(ok, "pip install failed:\n{out}");
    // Compiled once here, so runs never write bytecode into the environment at the same
    // time. A file that does not compile (test data of some package) only loses its
    // bytecode.
    let _ = run(
        tokio::process::Command::new(&python)
            .args(["-m", "compileall", "-q"])
            .arg(&venv),
        INSTALL_TIMEOUT,
        "python -m compileall",
    )
    .await;
    std::fs::write(&stamp, wanted).expect("stamp");
    venv
}
