//! pip put into a new venv without ensurepip: the wheels `python -m ensurepip` would install
//! ([`crate::python::ensurepip`] finds them), unpacked natively the way pip installs a wheel, so
//! a new tier costs `python -m venv --without-pip` plus an unzip instead of a pip run that
//! compiles every module.
//!
//! How pip installs a wheel (the binary distribution format spec,
//! <https://packaging.python.org/en/latest/specifications/binary-distribution-format/>, and
//! pip's `operations/install/wheel.py`): every file of a purelib wheel goes under
//! site-packages, executable when its zip entry says so; console scripts are written from
//! `entry_points.txt` (pip's own as `pip`, `pip3`, `pip3.X`); `INSTALLER` says `pip`,
//! `REQUESTED` marks what was asked for, and RECORD lists every file with its hash, sorted, in
//! CSV with `\r\n` line ends, bytecode rows included once the caller has it
//! ([`crate::python::bytecode`]).
//! Anything this does not cover (a `.data` folder, a platlib wheel, an entry point it cannot
//! read) is an error, and the caller falls back to ensurepip.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context as _, Result};

use crate::python::bytecode::{from_seed, pyc_path, seed_record, Flavour};
use crate::python::metadata::Headers;
use crate::python::record::{hash_field, parse_record, RecordRow};
use crate::python::scripts::{console_scripts, script_text};

/// The largest member a wheel ensurepip installs may have (pip's and setuptools' are at most a
/// few MB).
const MAX_MEMBER: u64 = 64 << 20;

/// Where a wheel goes, and what the scripts it makes run.
pub struct Target<'a> {
    /// The venv's (absolute) site-packages folder.
    pub site_packages: &'a Path,
    /// The venv's `bin`.
    pub bin: &'a Path,
    /// The interpreter console scripts name on their `#!` line, as pip writes `sys.executable`
    /// (ensurepip runs in `<venv>/bin/<name of the interpreter venv was run with>`).
    pub python: &'a Path,
    /// (major, minor) of that interpreter: pip's scripts are `pip3` and `pip3.X`.
    pub version: (u64, u64),
    /// Whether the installing pip (the bundled one) is 25.2 or later, whose distlib imports the
    /// entry point inside the `__main__` guard.
    pub late_import: bool,
    /// Root-owned site folders of the same Python whose bytecode is taken for the modules they
    /// have byte for byte ([`crate::python::bytecode::from_seed`]), the first that fits, and
    /// what that bytecode must carry.
    pub seeds: &'a [Seed],
    pub flavour: Option<&'a Flavour>,
}

/// A site folder whose bytecode a new venv may copy.
#[derive(Clone, Debug)]
pub struct Seed {
    pub site: PathBuf,
    /// A venv pip or pyctl wrote: a `.pyc` is taken only when the RECORD of its distribution
    /// there lists it (RECORD is written after the bytecode). A distribution's own site folder
    /// (`/usr/lib/python3/dist-packages`) has none of that; its bytecode was written by
    /// `py_compile` or the package manager, each of which renames a whole file into place.
    pub listed: bool,
}

/// A wheel unpacked by [`install_wheel`], its RECORD not written yet: that waits for the
/// bytecode of its modules ([`Unpacked::finish`]).
pub struct Unpacked {
    /// The `.dist-info` folder's name.
    pub dist_info: String,
    /// The `.py` files it placed (absolute) that have no bytecode yet: to byte-compile.
    pub sources: Vec<PathBuf>,
    /// How many modules got their bytecode from each seed, by its site folder.
    pub taken: BTreeMap<PathBuf, usize>,
    rows: Vec<[String; 3]>,
    record_name: String,
    made: HashSet<PathBuf>,
}

impl Unpacked {
    /// Writes RECORD as pip does once it has compiled: every file, plus the bytecode (`TAG`:
    /// `sys.implementation.cache_tag`) each compiled source now has ([`bytecode_row`]).
    pub fn finish(mut self, target: &Target, tag: &str) -> Result<String> {
        for source in &self.sources {
            let Some(pyc) = pyc_path(source, tag).filter(|p| p.is_file()) else {
                continue;
            };
            self.rows.push(bytecode_row(target, &pyc));
        }
        write_record(self.rows, &self.record_name, target, &mut self.made)?;
        Ok(self.dist_info)
    }
}

/// Unpacks the purelib wheel `file` (already opened and checked by the caller) into `target`
/// as pip does, as a requested distribution: every file, its scripts, INSTALLER and REQUESTED;
/// [`Unpacked::finish`] then writes its RECORD.
pub fn install_wheel(file: File, wheel: &Path, target: &Target) -> Result<Unpacked> {
    let mut zip = zip::ZipArchive::new(file)
        .with_context(|| format!("{}: not a zip archive", wheel.display()))?;
    let dist_info = dist_info_folder(&zip)
        .with_context(|| format!("{}: no single .dist-info folder", wheel.display()))?;
    let wheel_meta = Headers::parse(&read_entry(&mut zip, wheel, &format!("{dist_info}/WHEEL"))?);
    if !wheel_meta
        .get("Root-Is-Purelib")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        bail!("{}: not a purelib wheel", wheel.display());
    }
    let record_name = format!("{dist_info}/RECORD");
    let record = parse_record(&read_entry(&mut zip, wheel, &record_name)?)
        .with_context(|| format!("{}: {record_name}", wheel.display()))?;
    let mut made = HashSet::new();
    // Per seed: the rows of its RECORD of this distribution, or `None` when it is not asked
    // for; a listed seed without that RECORD is left out.
    let seed_rows: Vec<SeedRows> = target
        .seeds
        .iter()
        .filter_map(|seed| match seed.listed {
            true => Some((seed, Some(seed_record(&seed.site, &dist_info)?))),
            false => Some((seed, None)),
        })
        .collect();
    let (sources, seeded, taken) = unpack(
        &mut zip,
        wheel,
        &record,
        &record_name,
        target,
        &seed_rows,
        &mut made,
    )?;
    let mut rows: Vec<[String; 3]> = record
        .iter()
        .map(|r| {
            [
                r.path.clone(),
                r.hash.clone().unwrap_or_default(),
                r.size.map(|s| s.to_string()).unwrap_or_default(),
            ]
        })
        .collect();
    rows.extend(seeded);
    let name = format!("{dist_info}/entry_points.txt");
    let entry_points = match zip.by_name(&name) {
        Ok(mut e) => String::from_utf8(read_member(&mut e, wheel, &name)?)
            .with_context(|| format!("{}: {name}: not UTF-8", wheel.display()))?,
        Err(_) => String::new(),
    };
    for (script, target_spec) in console_scripts(&entry_points, target.version)? {
        let text =
            script_text(target.python, &target_spec, target.late_import).with_context(|| {
                format!("{}: entry point {script} = {target_spec}", wheel.display())
            })?;
        let path = target.bin.join(&script);
        write_script(&mut made, &path, text.as_bytes())?;
        rows.push(generated_row(target, &path, text.as_bytes()));
    }
    for (file, content) in [("INSTALLER", &b"pip\n"[..]), ("REQUESTED", &b""[..])] {
        let path = target.site_packages.join(&dist_info).join(file);
        write_new(&mut made, &path, content, false)?;
        rows.push(generated_row(target, &path, content));
    }
    Ok(Unpacked {
        dist_info,
        sources,
        taken,
        rows,
        record_name,
        made,
    })
}

/// The bytes of the zip entry `name` of `wheel`.
fn read_entry(zip: &mut zip::ZipArchive<File>, wheel: &Path, name: &str) -> Result<Vec<u8>> {
    let mut entry = zip
        .by_name(name)
        .with_context(|| format!("{}: no {name}", wheel.display()))?;
    read_member(&mut entry, wheel, name)
}

/// The bytes of one member. Its size is the archive's word: at most a bounded amount is
/// reserved, and the read stops at that size (a zip bomb is refused, not unpacked).
fn read_member(
    entry: &mut zip::read::ZipFile<'_, File>,
    wheel: &Path,
    name: &str,
) -> Result<Vec<u8>> {
    let size = entry.size();
    if size > MAX_MEMBER {
        bail!(
            "{}: {name}: {size} bytes, more than a pip wheel holds",
            wheel.display()
        );
    }
    let mut data = Vec::with_capacity(size.min(1 << 20) as usize);
    entry
        .take(size)
        .read_to_end(&mut data)
        .with_context(|| format!("{}: cannot read {name}", wheel.display()))?;
    Ok(data)
}

/// A seed and, for a listed one, the rows of its RECORD of the distribution being placed: path
/// → hash.
type SeedRows<'a> = (&'a Seed, Option<HashMap<String, Option<String>>>);

/// Bytecode a seed gives a placed source: the seed's site folder, the bytes, the mtime the
/// source must get, where it goes and its RECORD row.
type Taken<'a> = (
    &'a Path,
    Vec<u8>,
    std::time::SystemTime,
    PathBuf,
    [String; 3],
);

/// What [`unpack`] placed: the sources left without bytecode, the RECORD rows of the bytecode
/// taken from seeds, and how many modules each seed gave.
type Placed = (Vec<PathBuf>, Vec<[String; 3]>, BTreeMap<PathBuf, usize>);

/// Writes every file of the wheel but its RECORD under site-packages, each checked against
/// its RECORD hash first, with a seed's bytecode where one fits.
fn unpack(
    zip: &mut zip::ZipArchive<File>,
    wheel: &Path,
    record: &[RecordRow],
    record_name: &str,
    target: &Target,
    seed_rows: &[SeedRows],
    made: &mut HashSet<PathBuf>,
) -> Result<Placed> {
    let mut sources = Vec::new();
    let mut seeded = Vec::new();
    let mut taken = BTreeMap::new();
    let hashes: BTreeMap<&str, &str> = record
        .iter()
        .filter_map(|r| r.hash.as_deref().map(|h| (r.path.as_str(), h)))
        .collect();
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i)?;
        if entry.is_dir() {
            continue;
        }
        let name = entry.name().to_string();
        let relative = safe_relative(&name)
            .with_context(|| format!("{}: unsafe path {name:?}", wheel.display()))?;
        if relative
            .components()
            .next()
            .is_some_and(|c| c.as_os_str().to_string_lossy().ends_with(".data"))
        {
            bail!("{}: {name}: .data folders are not handled", wheel.display());
        }
        if name == record_name {
            // Written last, as pip rewrites it.
            continue;
        }
        let data = read_member(&mut entry, wheel, &name)?;
        let Some(expected) = hashes.get(name.as_str()) else {
            bail!("{}: {name} is not in RECORD", wheel.display());
        };
        if *expected != sha256_field(&data) {
            bail!("{}: {name} does not match its RECORD hash", wheel.display());
        }
        // pip's `zip_item_is_executable`: a regular file's mode with an execute bit (the zip
        // crate makes a DOS entry's mode up: a folder's 0o775 must not count).
        let executable = entry
            .unix_mode()
            .is_some_and(|m| m & 0o170000 == 0o100000 && m & 0o111 != 0);
        let dest = target.site_packages.join(&relative);
        let file = write_new(made, &dest, &data, executable)?;
        if !name.ends_with(".py") {
            continue;
        }
        let Some((site, pyc, mtime, pyc_dest, row)) =
            seed_for(target, seed_rows, &relative, &dest, &data)
        else {
            sources.push(dest);
            continue;
        };
        // Python checks the bytecode against the source's mtime (and size): the source gets
        // the seed source's.
        file.set_modified(mtime)
            .with_context(|| format!("{}: cannot set its mtime", dest.display()))?;
        // Bytecode gets its source's mode less the execute bits, as Python's import system
        // writes it (`_calc_mode`, then `mode & 0o666`): what the umask leaves of 0o666.
        write_new(made, &pyc_dest, &pyc, false)?;
        seeded.push(row);
        *taken.entry(site.to_path_buf()).or_insert(0) += 1;
    }
    Ok((sources, seeded, taken))
}

/// The first seed's bytecode for the source `relative` (placed at `dest`, content `data`) that
/// [`from_seed`] finds usable and, for a listed seed, its RECORD (`seed_rows`) lists (with this
/// hash, when it gives one), so it is whole and was not being written: its bytes, the mtime the
/// source must get, where it goes and its RECORD row, after the seed's site folder.
fn seed_for<'a>(
    target: &Target,
    seed_rows: &[SeedRows<'a>],
    relative: &Path,
    dest: &Path,
    data: &[u8],
) -> Option<Taken<'a>> {
    let flavour = target.flavour?;
    let pyc_dest = pyc_path(dest, &flavour.tag)?;
    let row = bytecode_row(target, &pyc_dest);
    seed_rows.iter().find_map(|(seed, rows)| {
        let (pyc, mtime) = from_seed(&seed.site, relative, data, flavour)?;
        let listed = match rows {
            None => true,
            Some(rows) => match rows.get(&row[0])? {
                Some(hash) => *hash == sha256_field(&pyc),
                None => true,
            },
        };
        listed.then(|| {
            (
                seed.site.as_path(),
                pyc,
                mtime,
                pyc_dest.clone(),
                row.clone(),
            )
        })
    })
}

/// The RECORD row of bytecode as pip writes it: the path alone, no hash and no size (pip
/// compiles after unpacking and lists what it compiled that way).
fn bytecode_row(target: &Target, pyc: &Path) -> [String; 3] {
    [
        relative_to(pyc, target.site_packages),
        String::new(),
        String::new(),
    ]
}

/// Writes RECORD as pip does: what it installed, sorted, RECORD itself with no hash, in CSV with
/// `\r\n` line ends.
fn write_record(
    mut rows: Vec<[String; 3]>,
    record_name: &str,
    target: &Target,
    made: &mut HashSet<PathBuf>,
) -> Result<()> {
    rows.retain(|r| r[0] != record_name);
    rows.push([record_name.to_string(), String::new(), String::new()]);
    rows.sort();
    let mut out = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    for row in &rows {
        out.write_record(row)?;
    }
    let record_text = out.into_inner().context("writing RECORD")?;
    write_new(
        made,
        &target.site_packages.join(record_name),
        &record_text,
        false,
    )?;
    Ok(())
}

/// The one top-level `NAME-VERSION.dist-info` folder of a wheel.
fn dist_info_folder(zip: &zip::ZipArchive<File>) -> Option<String> {
    let mut found: Option<&str> = None;
    for name in zip.file_names() {
        let first = name.split('/').next()?;
        if first.ends_with(".dist-info") && name.len() > first.len() {
            match found {
                None => found = Some(first),
                Some(f) if f == first => {}
                Some(_) => return None,
            }
        }
    }
    found.map(str::to_string)
}

/// A zip entry name as a relative path with no `..`, no root and no empty parts.
fn safe_relative(name: &str) -> Option<PathBuf> {
    let path = Path::new(name);
    if name.contains('\\') || name.contains('\0') {
        return None;
    }
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(part) => out.push(part),
            _ => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// The RECORD hash field of bytes in memory.
fn sha256_field(data: &[u8]) -> String {
    // Reading a slice cannot fail.
    hash_field(data).unwrap_or_default()
}

/// A RECORD row for a file pip generated: its path relative to site-packages (`../../../bin/pip`
/// for a script), hash and size.
fn generated_row(target: &Target, path: &Path, content: &[u8]) -> [String; 3] {
    [
        relative_to(path, target.site_packages),
        sha256_field(content),
        content.len().to_string(),
    ]
}

/// `os.path.relpath(path, base)` for two absolute paths without `.` or `..`.
fn relative_to(path: &Path, base: &Path) -> String {
    let p: Vec<_> = path.components().collect();
    let b: Vec<_> = base.components().collect();
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut parts: Vec<String> = vec!["..".to_string(); b.len() - common];
    parts.extend(
        p[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    parts.join("/")
}

/// The process's umask, read from `/proc/self/status` (setting it to read it would race with
/// other threads); 022 when that cannot be read.
fn umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}

/// Creates a file that must not exist yet (never through a link), with its folders (each made
/// once: `made` remembers them). Executable zip entries get pip's mode: the umask's default plus
/// execute for everyone (`set_extracted_file_to_default_mode_plus_executable`).
fn write_new(
    made: &mut HashSet<PathBuf>,
    path: &Path,
    data: &[u8],
    executable: bool,
) -> Result<File> {
    if let Some(parent) = path.parent() {
        if !made.contains(parent) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("{}: cannot create", parent.display()))?;
            made.insert(parent.to_path_buf());
        }
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o666)
        .open(path)
        .with_context(|| format!("{}: cannot create", path.display()))?;
    file.write_all(data)
        .with_context(|| format!("{}: cannot write", path.display()))?;
    if executable {
        let mode = (0o777 & !umask()) | 0o111;
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("{}: cannot chmod", path.display()))?;
    }
    Ok(file)
}

/// A console script: mode as distlib's `set_mode` leaves it (read and execute for everyone).
fn write_script(made: &mut HashSet<PathBuf>, path: &Path, data: &[u8]) -> Result<()> {
    write_new(made, path, data, false)?;
    let mode = (0o666 & !umask()) | 0o555;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("{}: cannot chmod", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zip_names_must_stay_inside() {
        assert_eq!(
            safe_relative("pip/__init__.py"),
            Some(PathBuf::from("pip/__init__.py"))
        );
        for bad in ["/etc/passwd", "../x", "a/../../x", "", "a\\b"] {
            assert_eq!(safe_relative(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_member_larger_than_any_pip_wheel_has_is_refused_unread() {
        use zip::write::SimpleFileOptions;
        let dir = tempfile::tempdir().unwrap();
        let wheel = dir.path().join("pip-1.0-py3-none-any.whl");
        let mut zip = zip::ZipWriter::new(File::create(&wheel).unwrap());
        let deflated =
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("pip-1.0.dist-info/WHEEL", deflated).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..=MAX_MEMBER >> 20 {
            zip.write_all(&zeros).unwrap();
        }
        zip.finish().unwrap();
        let site = dir.path().join("site");
        let target = Target {
            site_packages: &site,
            bin: dir.path(),
            python: Path::new("/v/bin/python3"),
            version: (3, 11),
            late_import: false,
            seeds: &[],
            flavour: None,
        };
        let Err(err) = install_wheel(File::open(&wheel).unwrap(), &wheel, &target) else {
            panic!("unpacked");
        };
        assert!(
            format!("{err:#}").contains("more than a pip wheel holds"),
            "{err:#}"
        );
    }

    #[test]
    fn relative_paths_are_relpaths() {
        assert_eq!(
            relative_to(
                Path::new("/v/bin/pip"),
                Path::new("/v/lib/python3.11/site-packages")
            ),
            "../../../bin/pip"
        );
    }
}
