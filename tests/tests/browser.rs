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

    // The script's output goes to a file, so that a run stopped by the timeout still shows
    // how far it got.
    let log_path = out.join("run.log");
    let log = std::fs::File::create(&log_path).context("cannot create the browser log")?;
    let log_err = log.try_clone().context("cannot share the browser log")?;
    let mut child = tokio::process::Command::new("node")
        .arg(js.join("browser").join("app.test.mjs"))
        .arg(relay.http_base())
        .arg(&out)
        .env("CHROMIUM", CHROMIUM)
        .current_dir(&js)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .kill_on_drop(true)
        .spawn()
        .context("cannot run node")?;
    let finished = tokio::time::timeout(BROWSER_TIMEOUT, child.wait()).await;
    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
    println!("{output}");
    match finished {
        Err(_) => {
            let _ = child.kill().await;
            bail!(
                "the browser tests did not finish in {} s; their output so far is above; relay log:\n{}",
                BROWSER_TIMEOUT.as_secs(),
                relay.output()
            );
        }
        Ok(status) => {
            let status = status.context("cannot wait for node")?;
            if !status.success() {
                bail!(
                    "browser tests failed ({status}); their output is above; relay log:\n{}",
                    relay.output()
                );
            }
        }
    }
    Ok(())
}
