//! Tidy checks over the repository's sources, run by `cargo test --workspace`.
//!
//! * Every `.rs` file under `crates/` and `xtask/` (tests and benches included) starts with a `//!` comment.
//! * No `#[ignore]` and no `#[should_panic]` under `crates/`: a test runs, and states the error it expects.
//! * Every dependency on a `petrel-*` crate in a `Cargo.toml` under `crates/` is inherited from the workspace
//!   (`workspace = true`), so versions and paths are declared once in the root `Cargo.toml`.
//! * Every crate's normal `petrel-*` dependencies point down the layers drawn in `docs/architecture.md`.

use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// All files below `dir` whose name ends with `suffix`, skipping build output and hidden directories.
fn files_with_suffix(dir: &Path, suffix: &str, out: &mut Vec<PathBuf>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                files_with_suffix(&path, suffix, out);
            }
        } else if name.ends_with(suffix) {
            out.push(path);
        }
    }
}

fn relative(path: &Path) -> String {
    let root = root().canonicalize().expect("workspace root");
    let path = path.canonicalize().unwrap_or_else(|_| path.to_owned());
    path.strip_prefix(&root).unwrap_or(&path).display().to_string()
}

fn assert_no_problems(what: &str, problems: &[String]) {
    assert!(problems.is_empty(), "tidy: {what}:\n  {}", problems.join("\n  "));
}

#[test]
fn every_rust_file_starts_with_an_inner_doc_comment() {
    let mut files = Vec::new();
    for dir in ["crates", "xtask"] {
        files_with_suffix(&root().join(dir), ".rs", &mut files);
    }
    assert!(!files.is_empty(), "tidy found no Rust files; is the workspace root right?");
    let problems: Vec<String> = files
        .iter()
        .filter(|file| {
            let text = fs::read_to_string(file).unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
            !text.trim_start_matches('\u{feff}').starts_with("//!")
        })
        .map(|file| relative(file))
        .collect();
    assert_no_problems("these files do not start with a `//!` doc comment saying what they are for", &problems);
}

#[test]
fn no_ignored_or_should_panic_tests_in_crates() {
    let mut files = Vec::new();
    files_with_suffix(&root().join("crates"), ".rs", &mut files);
    let mut problems = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            for attr in ["#[ignore", "#[should_panic"] {
                if code.contains(attr) {
                    problems.push(format!("{}:{}: {}", relative(file), n + 1, line.trim()));
                }
            }
        }
    }
    assert_no_problems(
        "`#[ignore]` / `#[should_panic]` are not allowed (run the test; assert on the returned error)",
        &problems,
    );
}

/// The dependency tables of a manifest: `[dependencies]`, `[dev-dependencies]`, `[build-dependencies]` and
/// their `[target.'cfg(..)'.*]` forms.
fn is_dependency_table(header: &str) -> bool {
    let header = header.trim_matches(|c| c == '[' || c == ']').trim();
    let last = header.rsplit('.').next().unwrap_or(header);
    matches!(last, "dependencies" | "dev-dependencies" | "build-dependencies")
}

/// Problems with the `petrel-*` entries of one manifest.
fn petrel_dependency_problems(manifest: &str, name: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut in_deps = false;
    // `[dependencies.petrel-x]` tables: (line number, crate, saw `workspace = true`).
    let mut table_dep: Option<(usize, String, bool)> = None;
    fn close_table(table_dep: &mut Option<(usize, String, bool)>, problems: &mut Vec<String>, name: &str) {
        if let Some((n, krate, false)) = table_dep.take() {
            problems.push(format!("{name}:{n}: `{krate}` must be `{krate}.workspace = true`"));
        }
    }
    for (i, raw) in manifest.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or_default().trim();
        if line.starts_with('[') {
            close_table(&mut table_dep, &mut problems, name);
            in_deps = is_dependency_table(line);
            let header = line.trim_matches(|c| c == '[' || c == ']').trim();
            if let Some((table, krate)) = header.rsplit_once('.')
                && is_dependency_table(table)
                && krate.trim_matches('"').starts_with("petrel-")
            {
                table_dep = Some((i + 1, krate.trim_matches('"').to_owned(), false));
            }
            continue;
        }
        if let Some((_, _, seen)) = table_dep.as_mut() {
            let compact: String = line.chars().filter(|c| !c.is_whitespace()).collect();
            if compact == "workspace=true" {
                *seen = true;
            }
            continue;
        }
        if !in_deps || line.is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else { continue };
        let key = key.trim();
        let krate = key.split('.').next().unwrap_or(key).trim_matches('"');
        if !krate.starts_with("petrel-") {
            continue;
        }
        let compact: String = line.chars().filter(|c| !c.is_whitespace()).collect();
        let inherited = (key.ends_with(".workspace") && value.trim() == "true")
            || (value.trim_start().starts_with('{') && compact.contains("workspace=true"));
        if !inherited {
            problems.push(format!("{name}:{}: `{krate}` must be `{krate}.workspace = true`", i + 1));
        }
    }
    close_table(&mut table_dep, &mut problems, name);
    problems
}

#[test]
fn petrel_dependencies_are_inherited_from_the_workspace() {
    let mut manifests = Vec::new();
    files_with_suffix(&root().join("crates"), "Cargo.toml", &mut manifests);
    manifests.retain(|m| m.file_name().is_some_and(|n| n == "Cargo.toml"));
    assert!(!manifests.is_empty(), "tidy found no Cargo.toml under crates/");
    let mut problems = Vec::new();
    for manifest in &manifests {
        let text = fs::read_to_string(manifest).unwrap_or_else(|e| panic!("cannot read {}: {e}", manifest.display()));
        problems.extend(petrel_dependency_problems(&text, &relative(manifest)));
    }
    assert_no_problems("path or version dependencies on workspace crates", &problems);
}

#[test]
fn petrel_dependency_check_recognises_each_form() {
    let good = "[dependencies]\npetrel-a.workspace = true\npetrel-b = { workspace = true, features = [\"x\"] }\n\
                serde = \"1\"\n[dev-dependencies.petrel-c]\nworkspace = true\n";
    assert!(petrel_dependency_problems(good, "good").is_empty());

    let bad = "[dependencies]\npetrel-a = { path = \"../a\" }\n[target.'cfg(unix)'.dev-dependencies]\n\
               petrel-b = \"0.1\"\n[dependencies.petrel-c]\npath = \"../c\"\n[features]\npetrel-d = []\n";
    let problems = petrel_dependency_problems(bad, "bad");
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems[0].contains("petrel-a") && problems[1].contains("petrel-b") && problems[2].contains("petrel-c"));
}

/// The layers of `docs/architecture.md` ("Layering"): each `layer N` line of its diagram, with the
/// `petrel-*` packages named on it.
fn documented_layers(doc: &str) -> std::collections::HashMap<String, u32> {
    let mut layers = std::collections::HashMap::new();
    for line in doc.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("layer") {
            continue;
        }
        let Some(n) = words.next().and_then(|w| w.parse::<u32>().ok()) else { continue };
        for word in words {
            if word.starts_with("petrel-") {
                layers.insert(word.trim_end_matches(|c: char| !c.is_alphanumeric()).to_owned(), n);
            }
        }
    }
    layers
}

/// The `petrel-*` crates a manifest names in its normal `[dependencies]` (not dev or build).
fn normal_petrel_dependencies(manifest: &str) -> Vec<String> {
    let mut deps = Vec::new();
    let mut in_deps = false;
    for raw in manifest.lines() {
        let line = raw.split('#').next().unwrap_or_default().trim();
        if line.starts_with('[') {
            let header = line.trim_matches(|c| c == '[' || c == ']').trim();
            in_deps = header == "dependencies" || header.ends_with(".dependencies") && !header.contains("dev-");
            if let Some(krate) = header.strip_prefix("dependencies.").filter(|k| k.starts_with("petrel-")) {
                deps.push(krate.to_owned());
            }
            continue;
        }
        if !in_deps {
            continue;
        }
        let key = line.split(['=', '.']).next().unwrap_or_default().trim().trim_matches('"');
        if key.starts_with("petrel-") {
            deps.push(key.to_owned());
        }
    }
    deps
}

/// Every workspace crate's normal dependencies point down the layers documented in
/// `docs/architecture.md`, and every crate is on the diagram.
#[test]
fn crate_dependencies_point_down_the_documented_layers() {
    let doc = fs::read_to_string(root().join("docs/architecture.md")).expect("docs/architecture.md");
    let layers = documented_layers(&doc);
    assert!(layers.len() >= 10, "tidy could not read the layer diagram: {layers:?}");
    let mut manifests = Vec::new();
    files_with_suffix(&root().join("crates"), "Cargo.toml", &mut manifests);
    manifests.push(root().join("tests/Cargo.toml"));
    let mut problems = Vec::new();
    for manifest in manifests.iter().filter(|m| m.file_name().is_some_and(|n| n == "Cargo.toml")) {
        let text = fs::read_to_string(manifest).expect("manifest");
        let Some(name) =
            text.lines().find_map(|l| l.trim().strip_prefix("name = ").map(|v| v.trim_matches('"').to_owned()))
        else {
            continue;
        };
        let Some(&layer) = layers.get(&name) else {
            problems.push(format!("{}: `{name}` is not on the layer diagram", relative(manifest)));
            continue;
        };
        for dep in normal_petrel_dependencies(&text) {
            match layers.get(&dep) {
                Some(&l) if l < layer => {}
                Some(&l) => problems.push(format!("{name} (layer {layer}) depends on {dep} (layer {l})")),
                None => problems.push(format!("{name} depends on {dep}, which is not on the layer diagram")),
            }
        }
    }
    assert_no_problems("dependencies that do not point down the documented layers", &problems);
}

#[test]
fn layer_check_reads_the_diagram_and_the_dependency_tables() {
    let layers = documented_layers("layer 2   petrel-b (note)   petrel-c\nlayer 1   petrel-a\nno layer petrel-x\n");
    assert_eq!(layers.get("petrel-b"), Some(&2));
    assert_eq!(layers.get("petrel-c"), Some(&2));
    assert_eq!(layers.get("petrel-a"), Some(&1));
    assert_eq!(layers.len(), 3);
    let manifest = "[package]\nname = \"petrel-b\"\n[dependencies]\npetrel-a.workspace = true\nserde = \"1\"\n\
                    [dev-dependencies]\npetrel-c.workspace = true\n[dependencies.petrel-d]\nworkspace = true\n";
    assert_eq!(normal_petrel_dependencies(manifest), vec!["petrel-a".to_owned(), "petrel-d".to_owned()]);
}
