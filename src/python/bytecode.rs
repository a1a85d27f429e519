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
use std::ffi::OsStr;
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt as _;
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
/// environment), as pip does at install, split across the cores: one `compileall` per share of
/// about the same bytes (`compileall -j` only spreads a folder walk, not a list read from
/// stdin). A module this Python cannot compile is left, as pip leaves it: the others are
/// compiled.
pub fn compile(python: &Path, sources: &[PathBuf]) -> Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Below ~64 modules a second interpreter's start costs more than it saves.
    let shares = cores.min(8).min(sources.len().div_ceil(64)).max(1);
    let lists = share_out(sources, shares);
    for result in crate::sys::parallel::map(&lists, |list| compile_list(python, list)) {
        result?;
    }
    Ok(())
}

/// `sources` dealt into `shares` newline-separated lists (the names' own bytes) of about the
/// same total size, largest file first to the lightest list; empty lists dropped. A name with a
/// newline in it, or blank at either end, cannot be listed: that module is left without
/// bytecode.
fn share_out(sources: &[PathBuf], shares: usize) -> Vec<Vec<u8>> {
    let mut sized: Vec<(u64, &[u8])> = sources
        .iter()
        .map(|s| s.as_os_str().as_bytes())
        // compileall reads a line per name and strips it.
        .filter(|name| {
            !name.contains(&b'\n')
                && !name.first().is_some_and(u8::is_ascii_whitespace)
                && !name.last().is_some_and(u8::is_ascii_whitespace)
        })
        .map(|name| {
            (
                std::fs::metadata(OsStr::from_bytes(name)).map_or(0, |m| m.len()),
                name,
            )
        })
        .collect();
    sized.sort_by_key(|s| std::cmp::Reverse(s.0));
    let mut lists = vec![(0u64, Vec::new()); shares.max(1)];
    for (size, name) in sized {
        if let Some(lightest) = lists.iter_mut().min_by_key(|(total, _)| *total) {
            lightest.0 += size.max(1);
            lightest.1.extend_from_slice(name);
            lightest.1.push(b'\n');
        }
    }
    lists
        .into_iter()
        .map(|(_, list)| list)
        .filter(|list| !list.is_empty())
        .collect()
}

/// One `compileall` over the newline-separated `list`. A module it cannot compile is said and
/// left (exit status 1, the error on its output); a `compileall` that crashed (a traceback or a
/// fatal error, a signal, another status) is an error naming the Python.
fn compile_list(python: &Path, list: &[u8]) -> Result<()> {
    let mut child = Command::new(python)
        .env_clear()
        .env("PATH", crate::sys::pip::ROOT_PATH)
        // Warnings off, as pip compiles: a `SyntaxWarning` of an old module is not a crash.
        .args(["-I", "-W", "ignore", "-m", "compileall", "-q", "-i", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("{}: cannot run", python.display()))?;
    // Waited for even when the list could not be written: its status says why.
    let written = child.stdin.take().map(|mut stdin| stdin.write_all(list));
    let out = child
        .wait_with_output()
        .with_context(|| format!("{} -m compileall: cannot wait for it", python.display()))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let crashed = match out.status.code() {
        Some(0) => false,
        Some(1) => stderr.contains("Traceback") || stderr.contains("Fatal Python error"),
        _ => true,
    };
    if crashed {
        anyhow::bail!(
            "{} -m compileall failed ({}): {}",
            python.display(),
            out.status,
            stderr.trim()
        );
    }
    if let Some(Err(e)) = written {
        return Err(e).with_context(|| format!("{}: cannot write to compileall", python.display()));
    }
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
    let (data, _) = read_root_only(seed_site, &pyc_path(&seed_source, &flavour.tag)?)?;
    let header = Header::parse(&data)?;
    if header.magic != flavour.magic
        || header.flags != 0
        || u64::from(header.size) != source.len() as u64 & 0xffff_ffff
    {
        return None;
    }
    // The source too is read only if it is root's alone: whoever can write it can make it the
    // wheel's again, mtime and all, after root compiled something else from it.
    let (seed_text, meta) = read_root_only(seed_site, &seed_source)?;
    if seed_text != source || u64::from(header.mtime) != (meta.mtime() as u64) & 0xffff_ffff {
        return None;
    }
    Some((data, UNIX_EPOCH + Duration::from_secs(header.mtime.into())))
}

/// The bytes and status of `file`, below the root-controlled folder `site`, when it and every
/// folder between are root's, not links, and nobody else can write them: bytecode is code, and
/// what one account left in a distribution's site folder (a `chown`ed package folder, a link
/// out of it) must not become another's.
fn read_root_only(site: &Path, file: &Path) -> Option<(Vec<u8>, std::fs::Metadata)> {
    let mut at = site.to_path_buf();
    let mut last = None;
    for part in file.strip_prefix(site).ok()?.components() {
        let std::path::Component::Normal(name) = part else {
            return None;
        };
        at.push(name);
        let meta = std::fs::symlink_metadata(&at).ok()?;
        if meta.file_type().is_symlink() || meta.uid() != 0 || meta.mode() & 0o022 != 0 {
            return None;
        }
        last = Some(meta);
    }
    let meta = last.filter(|m| m.is_file())?;
    Some((std::fs::read(&at).ok()?, meta))
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
        refused_unless_root_only(&seed, &seed_sources[0], &seed_pyc, &flavour);
        assert!(from_seed(&seed, &rel("same.py"), b"X = 1\n", &flavour).is_some());

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

    /// Bytecode another account could have written is not taken: the `.pyc`, its folder or
    /// its seed source writable by the group, either one a link, or (as root) owned by
    /// someone else. Each case is put back after.
    fn refused_unless_root_only(
        seed: &Path,
        seed_source: &Path,
        seed_pyc: &Path,
        flavour: &Flavour,
    ) {
        let rel = |f: &str| PathBuf::from("pkg").join(f);
        let refused = || from_seed(seed, &rel("same.py"), b"X = 1\n", flavour).is_none();
        use std::os::unix::fs::PermissionsExt;
        let set_mode = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };
        set_mode(seed_pyc, 0o664);
        assert!(refused());
        set_mode(seed_pyc, 0o644);
        set_mode(seed_pyc.parent().unwrap(), 0o775);
        assert!(refused());
        set_mode(seed_pyc.parent().unwrap(), 0o755);
        let copy = seed.parent().unwrap().join("copy.pyc");
        std::fs::rename(seed_pyc, &copy).unwrap();
        std::os::unix::fs::symlink(&copy, seed_pyc).unwrap();
        assert!(refused());
        std::fs::remove_file(seed_pyc).unwrap();
        std::fs::rename(&copy, seed_pyc).unwrap();
        if nix::unistd::geteuid().is_root() {
            std::os::unix::fs::chown(seed_pyc, Some(65534), None).unwrap();
            assert!(refused());
            std::os::unix::fs::chown(seed_pyc, Some(0), None).unwrap();
        }
        // Nor bytecode whose seed source someone else could write (and put back as it was
        // once root had compiled theirs), or whose source is a link.
        set_mode(seed_source, 0o666);
        assert!(refused());
        set_mode(seed_source, 0o644);
        let source_copy = seed.parent().unwrap().join("same-copy.py");
        std::fs::rename(seed_source, &source_copy).unwrap();
        std::os::unix::fs::symlink(&source_copy, seed_source).unwrap();
        assert!(refused());
        std::fs::remove_file(seed_source).unwrap();
        std::fs::rename(&source_copy, seed_source).unwrap();
    }

    /// A `compileall` that crashed (here a stand-in Python that writes a traceback and exits
    /// with status 1) is an error naming that Python and saying what it wrote; the status a
    /// module that does not compile gives (1, at most a warning on stderr) is not.
    #[test]
    fn a_crashed_compileall_is_an_error() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("m.py");
        std::fs::write(&source, "X = 1\n").unwrap();
        let fake = |name: &str, body: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, format!("#!/bin/sh\ncat >/dev/null\n{body}\n")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            path
        };
        let crashed = fake("crashed", "echo 'Traceback: boom' >&2; exit 1");
        let err = compile(&crashed, std::slice::from_ref(&source)).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains(&*crashed.to_string_lossy()), "{text}");
        assert!(text.contains("Traceback: boom"), "{text}");
        let killed = fake("killed", "kill -9 $$");
        assert!(compile(&killed, std::slice::from_ref(&source)).is_err());
        let broken_module = fake(
            "broken",
            "echo '*** Error compiling m.py'; echo 'SyntaxWarning: invalid escape' >&2; exit 1",
        );
        compile(&broken_module, std::slice::from_ref(&source)).unwrap();
    }

    /// The sources are dealt out whole and balanced, and every one of them is compiled, each
    /// share by its own `compileall`; one that does not compile is left without bytecode.
    #[test]
    fn compile_splits_the_work_and_compiles_every_module() {
        let dir = tempfile::tempdir().unwrap();
        let mut sources = Vec::new();
        for i in 0..200 {
            let path = dir.path().join(format!("m{i}.py"));
            std::fs::write(&path, "X = 1\n".repeat(1 + i % 7)).unwrap();
            sources.push(path);
        }
        let bad = dir.path().join("bad.py");
        std::fs::write(&bad, "def (:\n").unwrap();
        sources.push(bad.clone());
        let lists = share_out(&sources, 3);
        assert_eq!(lists.len(), 3);
        let text: Vec<String> = lists
            .iter()
            .map(|l| String::from_utf8(l.clone()).unwrap())
            .collect();
        let mut dealt: Vec<&str> = text.iter().flat_map(|l| l.lines()).collect();
        dealt.sort_unstable();
        let mut all: Vec<String> = sources.iter().map(|s| s.display().to_string()).collect();
        all.sort_unstable();
        assert_eq!(dealt, all);
        let sizes: Vec<usize> = text.iter().map(|l| l.lines().count()).collect();
        assert!(sizes.iter().all(|&n| n > 40), "{sizes:?}");

        compile(Path::new("/usr/bin/python3"), &sources).unwrap();
        let cache: Vec<String> = std::fs::read_dir(dir.path().join("__pycache__"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        for i in 0..200 {
            assert!(
                cache.iter().any(|n| n.starts_with(&format!("m{i}."))),
                "m{i} not compiled"
            );
        }
        assert!(!cache.iter().any(|n| n.starts_with("bad.")));
    }
}
