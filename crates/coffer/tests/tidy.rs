//! Checks that ARCHITECTURE.md stays true of the code (rust-analyzer's `tidy.rs` is the
//! model): every crate is in the crates table; each crate depends on exactly the Coffer
//! crates the dependency-rules table lists for it; only `coffer-api-s3` uses s3s; and every
//! source file opens with a `//!` doc saying what it is.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/coffer sits two levels below the workspace root")
        .to_path_buf()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Every crate of the workspace: package name → its folder.
fn crates() -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    let dir = workspace().join("crates");
    for entry in std::fs::read_dir(&dir).expect("crates/") {
        let path = entry.expect("crates/ entry").path();
        let manifest = path.join("Cargo.toml");
        if manifest.is_file() {
            out.insert(package_name(&read(&manifest)), path);
        }
    }
    out
}

fn package_name(manifest: &str) -> String {
    section(manifest, "package")
        .into_iter()
        .find_map(|l| {
            l.strip_prefix("name")
                .and_then(|r| r.trim_start().strip_prefix('='))
                .map(|v| v.trim().trim_matches('"').to_owned())
        })
        .expect("a [package] name")
}

/// The lines of one `[name]` section of a manifest.
fn section<'a>(manifest: &'a str, name: &str) -> Vec<&'a str> {
    let header = format!("[{name}]");
    manifest
        .lines()
        .skip_while(|l| l.trim() != header)
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with('['))
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// The names a manifest section depends on.
fn dependencies(manifest: &str, name: &str) -> BTreeSet<String> {
    section(manifest, name)
        .into_iter()
        .filter_map(|l| l.split(['=', '.']).next())
        .map(|n| n.trim().to_owned())
        .collect()
}

/// The rows of the markdown table that follows `heading` in ARCHITECTURE.md: cells of each
/// row after the header and separator.
fn table(architecture: &str, heading: &str) -> Vec<Vec<String>> {
    architecture
        .lines()
        .skip_while(|l| l.trim() != heading)
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|row| {
            row.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_owned())
                .collect()
        })
        .collect()
}

/// The crate names (`coffer-…` in backticks) a cell names.
fn crate_names(cell: &str) -> BTreeSet<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .filter(|n| n.starts_with("coffer"))
        .map(str::to_owned)
        .collect()
}

fn architecture() -> String {
    read(&workspace().join("ARCHITECTURE.md"))
}

#[test]
fn every_crate_is_in_the_crates_table() {
    let listed: BTreeSet<String> = table(&architecture(), "## Crates")
        .iter()
        .flat_map(|row| crate_names(&row[0]))
        .collect();
    let actual: BTreeSet<String> = crates().into_keys().collect();
    assert_eq!(
        listed, actual,
        "ARCHITECTURE.md's crates table and crates/ disagree"
    );
}

#[test]
fn crates_depend_only_on_what_the_dependency_rules_allow() {
    let rules: BTreeMap<String, BTreeSet<String>> = table(&architecture(), "## Dependency rules")
        .iter()
        .map(|row| {
            let name = crate_names(&row[0])
                .into_iter()
                .next()
                .unwrap_or_else(|| panic!("a dependency-rules row names no crate: {row:?}"));
            (name, crate_names(&row[1]))
        })
        .collect();
    let mut wrong = Vec::new();
    for (name, dir) in crates() {
        let manifest = read(&dir.join("Cargo.toml"));
        let actual: BTreeSet<String> = dependencies(&manifest, "dependencies")
            .into_iter()
            .filter(|d| d.starts_with("coffer"))
            .collect();
        match rules.get(&name) {
            None => wrong.push(format!(
                "{name}: no row in ARCHITECTURE.md's dependency rules"
            )),
            Some(allowed) if *allowed != actual => wrong.push(format!(
                "{name}: depends on {actual:?}, ARCHITECTURE.md allows {allowed:?}"
            )),
            Some(_) => {}
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("source dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every `.rs` file of every crate: sources, tests, examples, benches.
fn all_rust_files() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in crates().values() {
        for sub in ["src", "tests", "examples", "benches"] {
            if dir.join(sub).is_dir() {
                sources(&dir.join(sub), &mut out);
            }
        }
    }
    out
}

#[test]
fn only_the_s3_api_crate_knows_s3s() {
    let mut wrong = Vec::new();
    for (name, dir) in crates() {
        if name == "coffer-api-s3" {
            continue;
        }
        let manifest = read(&dir.join("Cargo.toml"));
        for kind in ["dependencies", "dev-dependencies"] {
            if dependencies(&manifest, kind).contains("s3s") {
                wrong.push(format!("{name} lists s3s in [{kind}]"));
            }
        }
    }
    let s3_api = workspace().join("crates").join("api-s3");
    for file in all_rust_files() {
        if file.starts_with(&s3_api) {
            continue;
        }
        // (Spelled in two halves, so that this file does not name it.)
        let (path, import) = (concat!("s3s", "::"), concat!("use ", "s3s"));
        if read(&file)
            .lines()
            .any(|l| !l.trim_start().starts_with("//") && (l.contains(path) || l.contains(import)))
        {
            wrong.push(format!("{} uses s3s", file.display()));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_source_file_opens_with_a_module_doc() {
    let missing: Vec<String> = all_rust_files()
        .into_iter()
        .filter(|f| !read(f).starts_with("//!"))
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "these files do not open with a //! line:\n{}",
        missing.join("\n")
    );
}
