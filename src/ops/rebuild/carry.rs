//! Carrying a tier's set over to the new Python's venv: what goes (the old Python's own
//! distributions are left to the new venv's, unless something carried needs them), pure-Python
//! distributions placed from the store into the new `lib/python3.X` and byte-compiled by the new
//! Python with their RECORD rewritten, the rest (compiled, editable, not in the store)
//! reinstalled by pip at the same version.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{anyhow, Context as _, Result};

use super::report::fresh_venv_freeze;
use crate::context::Context;
use crate::python::freeze::{freeze_map, requirement_name};
use crate::python::inventory::{Distribution, MetadataFormat, PackageSet};
use crate::sys::fsutil::TierLock;
use crate::tier::history::Log;
use crate::tier::store::{self, Store, StoreEntry};
use crate::tier::Tier;
use crate::ui::Ui;

/// How one distribution comes back.
pub enum How {
    /// Pure Python: placed from this store entry.
    Store(PathBuf, Box<StoreEntry>),
    /// Reinstalled by pip (compiled, editable, or not in the store).
    Pip,
}

/// The set the old Python's venv brought by itself: the newest rebuild's `own`, else the first
/// init's after, else the baseline snapshot.
pub fn old_own(tier: &Tier, log: &Log) -> BTreeMap<String, String> {
    if let Some(freeze) = fresh_venv_freeze(log) {
        return freeze_map(&freeze);
    }
    crate::tier::snapshot::snapshot_path(tier, crate::tier::snapshot::BASELINE)
        .ok()
        .and_then(|p| crate::sys::fsutil::read_regular_to_string(&p).ok())
        .map(|t| freeze_map(&t))
        .unwrap_or_default()
}

/// The distributions of the old venv that go to the new one, each with how; and the lines left
/// to the new Python's venv (the old venv's own, pip and setuptools, unless something carried
/// over declares it needs them).
pub fn sort_out(
    old_set: &PackageSet,
    own: &BTreeMap<String, String>,
    store: &Store,
) -> (Vec<(String, String, How)>, Vec<String>) {
    let carried_names: BTreeSet<String> = old_set
        .requirement_map()
        .into_iter()
        .filter(|(name, line)| own.get(name) != Some(line))
        .map(|(name, _)| name)
        .collect();
    let needed: BTreeSet<String> = carried_names
        .iter()
        .filter_map(|n| old_set.dists.get(n))
        .flat_map(crate::python::depcheck::declared_requirements)
        .map(|r| requirement_name(&r))
        .collect();
    let mut carry = Vec::new();
    let mut replaced = Vec::new();
    for (name, line) in old_set.requirement_map() {
        if !carried_names.contains(&name) && !needed.contains(&name) {
            replaced.push(line);
            continue;
        }
        let how = old_set
            .dists
            .get(&name)
            .and_then(|d| pure_entry(store, d, &line))
            .map_or(How::Pip, |(dir, entry)| How::Store(dir, Box::new(entry)));
        carry.push((name, line, how));
    }
    (carry, replaced)
}

/// The venv-relative `lib/python3.X/` of the old Python and of the new one.
pub struct Libs {
    pub old: String,
    pub new: String,
}

/// Places what the store can give into the new venv (at `venv`, whose set is `new_map`);
/// returns what was placed and the lines pip reinstalls (those placing failed for included).
pub fn place_all(
    ui: &Ui,
    store: &Store,
    carry: Vec<(String, String, How)>,
    new_map: &BTreeMap<String, String>,
    venv: &Path,
    libs: &Libs,
) -> (Vec<Placed>, Vec<String>) {
    let mut placed = Vec::new();
    let mut via_pip = Vec::new();
    for (name, line, how) in carry {
        match new_map.get(&name) {
            Some(l) if *l == line => continue,
            // The new venv has another version of it (pip): pip swaps it.
            Some(_) => {
                via_pip.push(line);
                continue;
            }
            None => {}
        }
        match how {
            How::Store(dir, entry) => {
                match place(store, &dir, &entry, venv, &libs.old, &libs.new) {
                    Ok(p) => placed.push(p),
                    Err(e) => {
                        ui.warn(&format!("{line}: {e:#}; reinstalling it with pip"));
                        via_pip.push(line);
                    }
                }
            }
            How::Pip => via_pip.push(line),
        }
    }
    (placed, via_pip)
}

/// The store entry of an installed distribution when it is pure Python and sound to place.
fn pure_entry(store: &Store, dist: &Distribution, line: &str) -> Option<(PathBuf, StoreEntry)> {
    if dist.format != MetadataFormat::DistInfo || dist.is_editable() || line.starts_with("-e ") {
        return None;
    }
    let (dir, entry) = store.entry_for_installed(dist)?;
    is_pure(&dir, &entry).then_some((dir, entry))
}

/// Whether a stored distribution is pure Python: its WHEEL says `Root-Is-Purelib: true` and
/// every tag is `*-none-any` ("The .dist-info directory", binary distribution format), and it
/// holds no extension module.
fn is_pure(dir: &Path, entry: &StoreEntry) -> bool {
    let wheel = dir.join("files").join(&entry.dist_info).join("WHEEL");
    let Ok(text) = crate::sys::fsutil::read_regular_to_string(&wheel) else {
        return false;
    };
    let wheel = crate::python::metadata::Headers::parse(text.as_bytes());
    let purelib = wheel
        .get("Root-Is-Purelib")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let mut tags = wheel.get_all("Tag").peekable();
    if tags.peek().is_none() || !tags.all(|t| t.trim().ends_with("-none-any")) {
        return false;
    }
    let extension = |p: &str| p.ends_with(".so") || p.contains(".so.") || p.ends_with(".pyd");
    purelib && !entry.files.iter().any(|f| extension(&f.path))
}

/// Byte-code pip or Python wrote for one version: never carried to another.
fn is_cached_bytecode(path: &str) -> bool {
    path.ends_with(".pyc") && path.split('/').any(|c| c == "__pycache__")
}

/// `lib/python3.11/...` → `lib/python3.13/...`; other paths (`bin/`, `share/`) unchanged.
fn reroot(path: &str, old_lib: &str, new_lib: &str) -> String {
    match path.strip_prefix(old_lib) {
        Some(rest) => format!("{new_lib}{rest}"),
        None => path.to_string(),
    }
}

/// One placed distribution, for the byte-code and RECORD step.
pub struct Placed {
    pub line: String,
    /// The new venv-relative `.dist-info`.
    dist_info: String,
    /// The store's RECORD of it.
    record: PathBuf,
    /// Placed `.py` files under the new site-packages (absolute).
    sources: Vec<PathBuf>,
}

/// Places a pure distribution's files from the store into the new venv, re-rooted, without
/// byte-code and without RECORD (written once the new byte-code exists).
fn place(
    store: &Store,
    dir: &Path,
    entry: &StoreEntry,
    venv: &Path,
    old_lib: &str,
    new_lib: &str,
) -> Result<Placed> {
    Store::verify(dir, entry).map_err(|e| anyhow!("{e}"))?;
    let files = dir.join("files");
    let record = format!("{}/RECORD", entry.dist_info);
    let metadata = format!("{}/METADATA", entry.dist_info);
    let new_dist_info = reroot(&entry.dist_info, old_lib, new_lib);
    let mut sources = Vec::new();
    // METADATA last: a kill never leaves a distribution that looks installed without its files
    // (a kill is undone whole anyway, by putting the old venv back).
    let mut order: Vec<&store::StoredFile> = entry
        .files
        .iter()
        .filter(|f| f.path != record && f.path != metadata && !is_cached_bytecode(&f.path))
        .collect();
    order.extend(entry.files.iter().filter(|f| f.path == metadata));
    for file in order {
        let rel = file.venv_path(dir)?;
        let new_rel = reroot(&file.path, old_lib, new_lib);
        let dest = venv.join(&new_rel);
        store.put_back(&files.join(rel), &dest)?;
        if new_rel.starts_with(new_lib) && new_rel.ends_with(".py") {
            sources.push(dest);
        }
    }
    Ok(Placed {
        line: entry.line.clone(),
        dist_info: new_dist_info,
        record: files.join(&record),
        sources,
    })
}

/// Byte-compiles the placed sources with the new venv's Python, as pip does at install.
pub fn compile(venv: &Path, placed: &[Placed]) -> Result<()> {
    let sources: Vec<PathBuf> = placed.iter().flat_map(|p| p.sources.clone()).collect();
    crate::python::bytecode::compile(&venv.join("bin/python"), &sources)
}

/// Writes a placed distribution's RECORD: the stored rows less the old byte-code, plus the new
/// byte-code with its hash and size ("Recording installed projects").
pub fn write_record(venv: &Path, placed: &Placed, cache_tag: &str) -> Result<()> {
    let bytes = std::fs::read(&placed.record)
        .with_context(|| format!("{}: cannot read", placed.record.display()))?;
    let rows = crate::python::record::parse_record(&bytes)?;
    let dist_info = venv.join(&placed.dist_info);
    let site = dist_info
        .parent()
        .context("a .dist-info without a parent")?;
    let mut out = csv::WriterBuilder::new()
        .has_headers(false)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    let record_rel = format!(
        "{}/RECORD",
        dist_info.file_name().unwrap_or_default().to_string_lossy()
    );
    for row in rows
        .iter()
        .filter(|r| !is_cached_bytecode(&r.path) && r.path != record_rel)
    {
        out.write_record([
            row.path.as_str(),
            row.hash.as_deref().unwrap_or(""),
            &row.size.map(|s| s.to_string()).unwrap_or_default(),
        ])?;
    }
    for source in &placed.sources {
        let Some(pyc) = crate::python::bytecode::pyc_path(source, cache_tag) else {
            continue;
        };
        let Ok(meta) = std::fs::metadata(&pyc) else {
            continue;
        };
        let Ok(rel) = pyc.strip_prefix(site) else {
            continue;
        };
        out.write_record([
            rel.to_string_lossy().as_ref(),
            &store::file_hash(&pyc)?,
            &meta.len().to_string(),
        ])?;
    }
    out.write_record([record_rel.as_str(), "", ""])?;
    let text = out.into_inner().map_err(|e| anyhow!("{e}"))?;
    crate::sys::fsutil::write_atomic(&dist_info.join("RECORD"), &text)
}

/// `pip install --no-deps` of each line at its version: all together from the recorded wheel
/// folders first, then one by one (folders, then the index). Output is kept off the terminal
/// (the command the user asked for prints next); returns the lines that could not be installed.
pub fn pip_reinstall(
    ctx: &Context,
    venv: &Path,
    lock: &TierLock,
    find_links: &[PathBuf],
    lines: &[String],
) -> Result<Vec<String>> {
    if lines.is_empty() {
        return Ok(Vec::new());
    }
    let find_links: Vec<&PathBuf> = find_links
        .iter()
        .filter(|d| d.is_dir() && (!ctx.is_root() || crate::sys::fsutil::root_controlled(d)))
        .collect();
    let run = |offline: bool, reqs: &[String]| -> Result<bool> {
        let mut cmd = crate::sys::pip::command(ctx, venv, crate::sys::pip::PipFor::Tier);
        cmd.args([
            "install",
            "--no-deps",
            "--disable-pip-version-check",
            "--no-input",
            "-q",
        ]);
        if offline {
            cmd.arg("--no-index");
            for dir in &find_links {
                cmd.arg("--find-links").arg(dir);
            }
        }
        for line in reqs {
            match line.strip_prefix("-e ") {
                Some(path) => cmd.args(["-e", path.trim()]),
                None => cmd.arg(line),
            };
        }
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("{}: cannot run pip", venv.display()))?;
        if !out.status.success() {
            log::info!(
                "pip install {}: {}",
                reqs.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(out.status.success())
    };
    // pip holds the tier lock while it runs: pyctl killed meanwhile, nothing else (the
    // recovery that puts the old venv back included) starts before pip is done.
    lock.keep_across_exec()?;
    let result = (|| {
        if !find_links.is_empty() && run(true, lines)? {
            return Ok(Vec::new());
        }
        let mut missing = Vec::new();
        for line in lines {
            let one = std::slice::from_ref(line);
            let done = (!find_links.is_empty() && run(true, one)?) || run(false, one)?;
            if !done {
                missing.push(line.clone());
            }
        }
        Ok(missing)
    })();
    lock.close_on_exec()?;
    result
}

/// The baseline snapshot says what a new venv holds: when it still holds the old Python's own
/// set, it now holds the new one's. A baseline the user wrote is left alone.
pub fn rewrite_baseline(
    tier: &Tier,
    old_own: &BTreeMap<String, String>,
    new: &PackageSet,
) -> Result<()> {
    let path = crate::tier::snapshot::snapshot_path(tier, crate::tier::snapshot::BASELINE)?;
    let Ok(text) = crate::sys::fsutil::read_regular_to_string(&path) else {
        return Ok(());
    };
    if freeze_map(&text) == *old_own {
        crate::tier::snapshot::write_snapshot(
            tier,
            crate::tier::snapshot::BASELINE,
            new,
            &crate::sys::clock::now_timestamp(),
            None,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rerooting_and_bytecode() {
        assert_eq!(
            reroot(
                "lib/python3.11/site-packages/a/__init__.py",
                "lib/python3.11/",
                "lib/python3.13/"
            ),
            "lib/python3.13/site-packages/a/__init__.py"
        );
        assert_eq!(
            reroot("bin/tool", "lib/python3.11/", "lib/python3.13/"),
            "bin/tool"
        );
        assert!(is_cached_bytecode(
            "lib/python3.11/site-packages/a/__pycache__/x.cpython-311.pyc"
        ));
        assert!(!is_cached_bytecode("lib/python3.11/site-packages/a/x.pyc"));
    }
}
