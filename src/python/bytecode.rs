//! Bytecode for sources pyctl placed itself, as pip's install leaves it: one
//! `__pycache__/NAME.TAG.pyc` per module, in timestamp mode (the header holds the source's mtime
//! and size), listed in RECORD. Without it Python writes the bytecode at a module's first import,
//! and a tier's tree would change under a plain `pip --version`.
//!
//! Two ways to get it: [`compile`] runs the new venv's Python (`compileall`, as pip does), and
//! [`from_seed`] takes the bytecode another venv of the same Python already has for a source of
//! the same content (a user's first tier from the system tier's pip), which costs a copy instead
//! of a compile. A copied `.pyc` is only used when its header matches this Python (magic
//! number) and the seed's own source (mtime, size), and the two sources are byte for byte the
//! same; the placed source then gets the mtime the header names, so Python accepts it.

use std::collections::HashMap;
use std::io::Write as _;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

/// The bytecode the seed venv's site-packages `seed_site` has for its file `rel`, when this
/// Python can use it for a source whose content is `source`: the header carries this Python's
/// magic number, timestamp mode, and the seed source's own mtime and size (so it was compiled
/// from the seed source as it is now), and that source is byte for byte `source`. Returns the
/// bytecode and the mtime the placed source must then get for Python to accept it.
pub fn from_seed(
    seed_site: &Path,
    rel: &Path,
    source: &[u8],
    flavour: &Flavour,
) -> Option<(Vec<u8>, SystemTime)> {
    let seed_source = seed_site.join(rel);
    let data = std::fs::read(pyc_path(&seed_source, &flavour.tag)?).ok()?;
    let header = Header::parse(&data)?;
    if header.magic != flavour.magic
        || header.flags != 0
        || u64::from(header.size) != source.len() as u64 & 0xffff_ffff
    {
        return None;
    }
    let meta = std::fs::metadata(&seed_source).ok()?;
    if meta.len() != source.len() as u64
        || u64::from(header.mtime) != (meta.mtime() as u64) & 0xffff_ffff
        || std::fs::read(&seed_source).ok()? != source
    {
        return None;
    }
    Some((data, UNIX_EPOCH + Duration::from_secs(header.mtime.into())))
}

/// The rows of the RECORD of the seed's copy of the distribution `dist_info`: path → hash
/// (pip lists bytecode without one). `None` when the seed does not have it. Both pip and pyctl
/// write RECORD after the bytecode, and bytecode is only ever replaced whole (Python writes it
/// to a temporary file renamed into place): a `.pyc` RECORD lists is complete.
pub fn seed_record(site: &Path, dist_info: &str) -> Option<HashMap<String, Option<String>>> {
    let bytes = std::fs::read(site.join(dist_info).join("RECORD")).ok()?;
    Some(
        crate::python::record::parse_record(&bytes)
            .ok()?
            .into_iter()
            .map(|r| (r.path, r.hash))
            .collect(),
    )
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

    /// Real bytecode from the machine's Python: taken where it fits, refused where the source
    /// differs, where the seed's own source moved on, and for another Python's magic.
    #[test]
    fn seed_bytecode_is_taken_only_where_python_would_accept_it() {
        let python = Path::new("/usr/bin/python3");
        let dir = tempfile::tempdir().unwrap();
        let (seed, site) = (dir.path().join("seed"), dir.path().join("site"));
        for d in [&seed, &site] {
            std::fs::create_dir_all(d.join("pkg")).unwrap();
        }
        let files = ["same.py", "moved.py"];
        for f in files {
            std::fs::write(seed.join("pkg").join(f), "X = 1\n").unwrap();
        }
        let seed_sources: Vec<PathBuf> = files.iter().map(|f| seed.join("pkg").join(f)).collect();
        compile(python, &seed_sources).unwrap();
        let cache = std::fs::read_dir(seed.join("pkg/__pycache__"))
            .unwrap()
            .flatten()
            .next()
            .unwrap()
            .file_name();
        let tag = cache
            .to_string_lossy()
            .split('.')
            .nth(1)
            .unwrap()
            .to_string();
        let seed_pyc = pyc_path(&seed_sources[0], &tag).unwrap();
        let magic: [u8; 4] = std::fs::read(&seed_pyc).unwrap()[..4].try_into().unwrap();
        let flavour = Flavour { tag, magic };
        // The seed's `moved.py` changed after it was compiled (same size, later mtime).
        std::fs::write(&seed_sources[1], "X = 2\n").unwrap();
        std::fs::File::open(&seed_sources[1])
            .unwrap()
            .set_modified(SystemTime::now() + Duration::from_secs(5))
            .unwrap();
        let rel = |f: &str| PathBuf::from("pkg").join(f);
        assert!(from_seed(&seed, &rel("moved.py"), b"X = 2\n", &flavour).is_none());
        assert!(from_seed(&seed, &rel("same.py"), b"X = 3\n", &flavour).is_none());
        assert!(from_seed(&seed, &rel("absent.py"), b"X = 1\n", &flavour).is_none());
        let other = Flavour {
            magic: [0, 0, 0, 0],
            ..flavour.clone()
        };
        assert!(from_seed(&seed, &rel("same.py"), b"X = 1\n", &other).is_none());
        let (pyc, mtime) = from_seed(&seed, &rel("same.py"), b"X = 1\n", &flavour).unwrap();
        assert_eq!(pyc, std::fs::read(&seed_pyc).unwrap());

        // Placed with that mtime, Python takes the bytecode as valid: importing writes nothing.
        let source = site.join("pkg/same.py");
        std::fs::write(&source, "X = 1\n").unwrap();
        std::fs::File::open(&source)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        let placed = pyc_path(&source, &flavour.tag).unwrap();
        std::fs::create_dir_all(placed.parent().unwrap()).unwrap();
        std::fs::write(&placed, &pyc).unwrap();
        let before = std::fs::metadata(&placed).unwrap().modified().unwrap();
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
            std::fs::metadata(&placed).unwrap().modified().unwrap(),
            before
        );
    }
}
