//! The web app's file lists that must name every module: the service worker's shell (or
//! the app does not start offline) and `index.html`'s `modulepreload` links (or a cold
//! open fetches the modules one level of imports after another). Both are written by
//! hand, so a new module must be added to both; this test says which is missing.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Context;
use caresync_tests::relay::workspace_root;

/// Every `.js` file under `web-demo/js`, as a path relative to `web-demo`.
fn modules(web: &Path) -> anyhow::Result<BTreeSet<String>> {
    let mut found = BTreeSet::new();
    let mut folders = vec![web.join("js")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).with_context(|| format!("{folder:?}"))? {
            let path = entry?.path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|ext| ext == "js") {
                let relative = path.strip_prefix(web)?.to_string_lossy().replace('\\', "/");
                found.insert(relative);
            }
        }
    }
    anyhow::ensure!(
        found.len() >= 10,
        "only {} modules found in {web:?}",
        found.len()
    );
    Ok(found)
}

#[test]
fn the_service_worker_and_index_html_name_every_module_of_the_app() -> anyhow::Result<()> {
    let web = workspace_root()?.join("web-demo");
    let modules = modules(&web)?;
    let sw = std::fs::read_to_string(web.join("sw.js"))?;
    let index = std::fs::read_to_string(web.join("index.html"))?;
    let not_cached: Vec<&String> = modules
        .iter()
        .filter(|module| !sw.contains(&format!("'{module}'")))
        .collect();
    let not_preloaded: Vec<&String> = modules
        .iter()
        .filter(|module| {
            !index.contains(&format!("<link rel=\"modulepreload\" href=\"{module}\">"))
        })
        .collect();
    anyhow::ensure!(
        not_cached.is_empty() && not_preloaded.is_empty(),
        "missing from sw.js SHELL: {not_cached:?}; missing from index.html modulepreload: {not_preloaded:?}"
    );
    Ok(())
}
