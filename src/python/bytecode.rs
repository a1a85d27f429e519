//! Bytecode for sources pyctl placed itself, as pip's install leaves it: one
//! `__pycache__/NAME.TAG.pyc` per module, in timestamp mode (the header holds the source's mtime
//! and size), listed in RECORD. Without it Python writes the bytecode at a module's first import,
//! and a tier's tree would change under a plain `pip --version`.
//!
//! Two ways to get it: [`compile`] runs the new venv's Python (`compileall`, as pip does), and
//! [`copy_from_seed`] takes the bytecode another venv of the same Python already has for a
//! source of the same content (a user's first tier from the system tier's pip), which costs a
//! copy instead of a compile. A copied `.pyc` is only used when its header matches this Python
//! (magic number) and the seed's own source (mtime, size), and the two sources are byte for byte
//! the same; the placed source then gets the mtime the header names, so Python accepts it.

use std::io::Write as _;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context as _, Result};

/// What a `.pyc` of one Python must carry: its `sys.implementation.cache_tag` (`cpython-311`)
/// and the magic number its header starts with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flavour {
    pub tag: String,
    pub magic: [u8; 4],
}

impl Flavour {
    /// Read from the bytecode of the standard library's `os` module (`stdlib/__pycache__/
    /// os.TAG.pyc`), which every installed CPython has compiled; `None` when there is none
    /// or two of them.
    pub fn of_stdlib(stdlib: &Path) -> Option<Flavour> {
        let mut found = None;
        for entry in std::fs::read_dir(stdlib.join("__pycache__"))
            .ok()?
            .flatten()
        {
            let name = entry.file_name();
            let name = name.to_str()?;
            let Some(tag) = name
                .strip_prefix("os.")
                .and_then(|rest| rest.strip_suffix(".pyc"))
            else {
                continue;
            };
            // `os.cpython-311.opt-1.pyc` is the same module optimized.
            if tag.contains('.') {
                continue;
            }
            if found.is_some() {
                return None;
            }
            let data = std::fs::read(entry.path()).ok()?;
            let magic: [u8; 4] = data.get(..4)?.try_into().ok()?;
            found = Some(Flavour {
                tag: tag.to_string(),
                magic,
            });
        }
        found
    }
}

/// Where Python keeps the bytecode of `source` (`importlib.util.cache_from_source`).
pub fn pyc_path(source: &Path, tag: &str) -> Option<PathBuf> {
    let stem = source.file_stem()?.to_str()?;
    Some(
        source
            .parent()?
            .join("__pycache__")
            .join(format!("{stem}.{tag}.pyc")),
    )
}

/// Byte-compiles `sources` with `python` (`-I -m compileall`, nothing of the caller's
/// environment), as pip does at install. A module this Python cannot compile is left, as pip
/// leaves it: the others are compiled.
pub fn compile(python: &Path, sources: &[PathBuf]) -> Result<()> {
    let list: String = sources
        .iter()
        .map(|s| format!("{}\n", s.display()))
        .collect();
    if list.is_empty() {
        return Ok(());
    }
    let mut child = Command::new(python)
        .env_clear()
        .env("PATH", crate::sys::pip::ROOT_PATH)
        .args(["-I", "-m", "compileall", "-q", "-i", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("{}: cannot run", python.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(list.as_bytes())
            .with_context(|| format!("{}: cannot write to compileall", python.display()))?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        log::warn!(
            "compileall: {}",
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }
    Ok(())
}

/// Gives each of `sources` (files under `site`) the bytecode the same file under `seed_site`
/// has, where it can be used (see the module's text); returns the sources left without
/// bytecode, for [`compile`].
pub fn copy_from_seed(
    site: &Path,
    seed_site: &Path,
    sources: &[PathBuf],
    flavour: &Flavour,
) -> Vec<PathBuf> {
    let mut left = Vec::new();
    let mut made = std::collections::HashSet::new();
    for source in sources {
        match copy_one(site, seed_site, source, flavour, &mut made) {
            Ok(true) => {}
            Ok(false) => left.push(source.clone()),
            Err(e) => {
                log::debug!("{}: bytecode not copied: {e:#}", source.display());
                left.push(source.clone());
            }
        }
    }
    left
}

/// One source of [`copy_from_seed`]: `Ok(false)` when the seed has nothing usable for it.
fn copy_one(
    site: &Path,
    seed_site: &Path,
    source: &Path,
    flavour: &Flavour,
    made: &mut std::collections::HashSet<PathBuf>,
) -> Result<bool> {
    let rel = source
        .strip_prefix(site)
        .context("a source outside site-packages")?;
    let seed_source = seed_site.join(rel);
    let (Some(seed_pyc), Some(pyc)) = (
        pyc_path(&seed_source, &flavour.tag),
        pyc_path(source, &flavour.tag),
    ) else {
        return Ok(false);
    };
    let Ok(data) = std::fs::read(&seed_pyc) else {
        return Ok(false);
    };
    let Some(header) = Header::parse(&data) else {
        return Ok(false);
    };
    let seed_meta = std::fs::metadata(&seed_source)?;
    let meta = std::fs::metadata(source)?;
    if header.magic != flavour.magic
        || header.flags != 0
        || u64::from(header.size) != seed_meta.len() & 0xffff_ffff
        || u64::from(header.mtime) != (seed_meta.mtime() as u64) & 0xffff_ffff
        || meta.len() != seed_meta.len()
        || std::fs::read(&seed_source)? != std::fs::read(source)?
    {
        return Ok(false);
    }
    let folder = pyc.parent().context("a .pyc without a folder")?;
    if !made.contains(folder) {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("{}: cannot create", folder.display()))?;
        made.insert(folder.to_path_buf());
    }
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&pyc)
        .with_context(|| format!("{}: cannot create", pyc.display()))?;
    out.write_all(&data)
        .with_context(|| format!("{}: cannot write", pyc.display()))?;
    std::fs::File::open(source)
        .and_then(|f| f.set_modified(UNIX_EPOCH + Duration::from_secs(header.mtime.into())))
        .with_context(|| format!("{}: cannot set its mtime", source.display()))?;
    Ok(true)
}

/// The 16-byte header of a `.pyc` (PEP 552): magic, flags (0: timestamp mode), then the
/// source's mtime and size, each truncated to 32 bits.
struct Header {
    magic: [u8; 4],
    flags: u32,
    mtime: u32,
    size: u32,
}

impl Header {
    fn parse(data: &[u8]) -> Option<Header> {
        let word = |at: usize| -> Option<[u8; 4]> { data.get(at..at + 4)?.try_into().ok() };
        Some(Header {
            magic: word(0)?,
            flags: u32::from_le_bytes(word(4)?),
            mtime: u32::from_le_bytes(word(8)?),
            size: u32::from_le_bytes(word(12)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pyc_paths_are_where_python_looks() {
        assert_eq!(
            pyc_path(Path::new("/s/pip/_internal/main.py"), "cpython-311"),
            Some(PathBuf::from(
                "/s/pip/_internal/__pycache__/main.cpython-311.pyc"
            ))
        );
    }

    /// Real bytecode from the machine's Python: copied where it fits, refused where the source
    /// differs, where the seed's own source moved on, and for another Python's magic.
    #[test]
    fn seed_bytecode_is_copied_only_where_python_would_accept_it() {
        let python = Path::new("/usr/bin/python3");
        let dir = tempfile::tempdir().unwrap();
        let (seed, site) = (dir.path().join("seed"), dir.path().join("site"));
        for d in [&seed, &site] {
            std::fs::create_dir_all(d.join("pkg")).unwrap();
        }
        let files = ["same.py", "differs.py", "moved.py"];
        for f in files {
            std::fs::write(seed.join("pkg").join(f), "X = 1\n").unwrap();
        }
        let seed_sources: Vec<PathBuf> = files.iter().map(|f| seed.join("pkg").join(f)).collect();
        compile(python, &seed_sources).unwrap();
        let tag_of = |p: &Path| {
            let name = std::fs::read_dir(p.parent().unwrap().join("__pycache__"))
                .unwrap()
                .flatten()
                .next()
                .unwrap()
                .file_name();
            let name = name.to_string_lossy().into_owned();
            name.split('.').nth(1).unwrap().to_string()
        };
        let tag = tag_of(&seed_sources[0]);
        let magic: [u8; 4] = std::fs::read(pyc_path(&seed_sources[0], &tag).unwrap()).unwrap()[..4]
            .try_into()
            .unwrap();
        let flavour = Flavour { tag, magic };
        // The seed's `moved.py` changed after it was compiled (same size, later mtime).
        let moved = &seed_sources[2];
        std::fs::write(moved, "X = 2\n").unwrap();
        std::fs::File::open(moved)
            .unwrap()
            .set_modified(std::time::SystemTime::now() + Duration::from_secs(5))
            .unwrap();
        std::fs::write(site.join("pkg/same.py"), "X = 1\n").unwrap();
        std::fs::write(site.join("pkg/differs.py"), "X = 3\n").unwrap();
        std::fs::write(site.join("pkg/moved.py"), "X = 2\n").unwrap();
        let sources: Vec<PathBuf> = files.iter().map(|f| site.join("pkg").join(f)).collect();
        let left = copy_from_seed(&site, &seed, &sources, &flavour);
        assert_eq!(left, sources[1..].to_vec());
        let copied = pyc_path(&sources[0], &flavour.tag).unwrap();
        assert_eq!(
            std::fs::read(&copied).unwrap(),
            std::fs::read(pyc_path(&seed_sources[0], &flavour.tag).unwrap()).unwrap()
        );
        assert_eq!(
            std::fs::metadata(&sources[0]).unwrap().mtime(),
            std::fs::metadata(&seed_sources[0]).unwrap().mtime()
        );
        assert!(!pyc_path(&sources[1], &flavour.tag).unwrap().exists());

        // Python takes the copied bytecode as valid: importing writes nothing new.
        let before = std::fs::metadata(&copied).unwrap().modified().unwrap();
        let out = Command::new(python)
            .args([
                "-I",
                "-c",
                "import sys; sys.path.insert(0, sys.argv[1]); import pkg.same",
            ])
            .arg(&site)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            std::fs::metadata(&copied).unwrap().modified().unwrap(),
            before
        );

        // Another Python's magic: nothing is copied.
        let other = Flavour {
            magic: [0, 0, 0, 0],
            ..flavour.clone()
        };
        std::fs::remove_file(&copied).unwrap();
        assert_eq!(
            copy_from_seed(&site, &seed, &sources[..1], &other),
            sources[..1].to_vec()
        );
    }
}
