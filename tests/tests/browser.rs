//! The web app in a real browser: Debian's headless Chromium driven by `playwright-core`
//! (`tests/js/browser/app.test.mjs`) against the real relay with demo data. The script runs
//! each role's main flow, the offline flow and the killed-tab flow, and saves 360×640
//! screenshots under `test-output/browser/`.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use caresync_tests::RelayProcess;
use caresync_tests::js::require_js_packages;
use caresync_tests::relay::workspace_root;

/// The whole browser script's budget; each step inside has its own shorter timeout.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(240);
const CHROMIUM: &str = "/usr/bin/chromium";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_app_works_for_every_role_offline_and_after_a_killed_tab() -> anyhow::Result<()> {
    let root = workspace_root()?;
    if !root.join("web-demo/pkg/caresync_wasm.js").is_file() {
        bail!("web-demo/pkg is not built: run scripts/test.sh (it builds the wasm first)");
    }
    if !Path::new(CHROMIUM).is_file() {
        bail!("{CHROMIUM} is missing: scripts/test.sh installs Debian's chromium");
    }
    let js = require_js_packages()?;
    let relay = RelayProcess::start_with(&["--demo"])?;
    let out = root.join("test-output").join("browser");
    std::fs::create_dir_all(&out).context("cannot make the screenshot folder")?;

    let run = tokio::process::Command::new("node")
        .arg(js.join("browser").join("app.test.mjs"))
        .arg(relay.http_base())
        .arg(&out)
        .env("CHROMIUM", CHROMIUM)
        .current_dir(&js)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(BROWSER_TIMEOUT, run)
        .await
        .context("the browser tests did not finish in time")?
        .context("cannot run node")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    if !output.status.success() {
        bail!(
            "browser tests failed ({}):\n{stdout}\n{stderr}\nrelay log:\n{}",
            output.status,
            relay.output()
        );
    }
    Ok(())
}
