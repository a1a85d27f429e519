//! Creating a tier's venv: `python -I -m venv --without-pip` with nothing of the caller's
//! environment, then pip unpacked from the wheels ensurepip would install and byte-compiled (its
//! bytecode copied from the system tier where that has the same files), or ensurepip itself
//! when those wheels cannot be used.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _, Result};

use crate::python::bootstrap::Seed;
use crate::python::pyvenv::PyvenvCfg;
use crate::sys::fsutil::root_controlled;
use crate::tier::Tier;

/// Where a new venv's pip comes from besides its Python's own wheels.
#[derive(Clone, Debug, Default)]
pub struct PipFrom {
    /// The venv is root's: only wheels nobody else can write are unpacked.
    pub as_root: bool,
    /// A venv of root's (the system tier's) whose bytecode is copied for the sources it has
    /// byte for byte, instead of compiling them ([`crate::python::bytecode::from_seed`]).
    pub seed: Option<PathBuf>,
}

/// Creates the venv of a tier with pip in it, as `python -m venv` does.
pub fn create_venv(tier: &Tier, python: &Path, inherit_system: bool, from: &PipFrom) -> Result<()> {
    create_venv_with(tier, python, inherit_system, true, from)
}

/// Creates the venv of a tier with `python -m venv --without-pip`; `with_pip` then places pip
/// (and, before Python 3.12, setuptools) from the wheels ensurepip would install, unpacked
/// natively ([`crate::python::bootstrap`]) and byte-compiled as pip's install does, falling back
/// to ensurepip itself when they cannot be found or used. Without `with_pip`, pip comes from
/// the store.
pub fn create_venv_with(
    tier: &Tier,
    python: &Path,
    inherit_system: bool,
    with_pip: bool,
    from: &PipFrom,
) -> Result<()> {
    if with_pip && from.as_root {
        wheel_sources_roots_alone(python)?;
    }
    run_venv(tier, python, inherit_system, false)?;
    if !with_pip {
        return Ok(());
    }
    match place_pip(tier, python, from) {
        Ok(true) => return Ok(()),
        Ok(false) => log::info!("no pip wheel of this Python found: running ensurepip"),
        Err(e) if e.is::<NotRootsAlone>() => {
            // No half-made venv is left for the next command to take for a tier.
            let venv = tier.venv();
            if let Err(rm) = std::fs::remove_dir_all(&venv) {
                log::warn!("{}: cannot remove: {rm}", venv.display());
            }
            return Err(e);
        }
        Err(e) => log::warn!("placing pip from its wheel failed ({e:#}): running ensurepip"),
    }
    let venv = tier.venv();
    std::fs::remove_dir_all(&venv)
        .with_context(|| format!("{}: cannot remove to start again", venv.display()))?;
    run_venv(tier, python, inherit_system, true)
}

/// Places the wheels ensurepip would install into the new venv of `tier` (made by `python`).
/// `Ok(false)`: there are none to use; [`NotRootsAlone`] (as root): one can be changed by
/// another account.
fn place_pip(tier: &Tier, python: &Path, from: &PipFrom) -> Result<bool> {
    let as_root = from.as_root;
    let venv = absolute_venv(tier)?;
    let Some(cfg) = PyvenvCfg::read(&venv) else {
        return Ok(false);
    };
    let Some((major, minor)) = cfg.major_minor() else {
        return Ok(false);
    };
    let Some(home) = cfg.home() else {
        return Ok(false);
    };
    // `home` is the folder of the interpreter; its standard library is `../lib/pythonX.Y`, as
    // for a `sys.prefix` that is its parent.
    let Some(prefix) = home.parent() else {
        return Ok(false);
    };
    let stdlib = prefix.join("lib").join(format!("python{major}.{minor}"));
    let Some(found) = crate::python::ensurepip::wheels(&stdlib, (major, minor)) else {
        return Ok(false);
    };
    let mut opened = open_wheels(found.install.iter().chain(&found.copy), as_root)?;
    let copies = opened.split_off(found.install.len());
    let wheels = found.install;
    let site_packages = venv
        .join("lib")
        .join(format!("python{major}.{minor}"))
        .join("site-packages");
    let bin = venv.join("bin");
    // pip names `sys.executable` on its scripts' `#!` line: ensurepip runs in
    // `<venv>/bin/<the name venv was run with>`.
    let exe_name = python
        .file_name()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("python3"));
    let interpreter = bin.join(exe_name);
    if !copies.is_empty() {
        copy_wheels(copies.into_iter().zip(&found.copy), &venv)?;
    }
    let pip_version = wheels
        .iter()
        .filter_map(|w| w.file_name()?.to_str()?.strip_prefix("pip-"))
        .filter_map(|rest| rest.split('-').next()?.parse::<pep440_rs::Version>().ok())
        .next();
    let late_import =
        pip_version.is_some_and(|v| v >= "25.2".parse::<pep440_rs::Version>().expect("a version"));
    let flavour = crate::python::bytecode::Flavour::of_stdlib(&stdlib);
    let seeds = seeds(from, prefix, (major, minor));
    let target = crate::python::bootstrap::Target {
        site_packages: &site_packages,
        bin: &bin,
        python: &interpreter,
        version: (major, minor),
        late_import,
        seeds: &seeds,
        flavour: flavour.as_ref(),
    };
    let mut unpacked = Vec::new();
    for (file, wheel) in opened.into_iter().zip(&wheels) {
        unpacked.push(crate::python::bootstrap::install_wheel(
            file, wheel, &target,
        )?);
        log::info!("placed {} in {}", wheel.display(), site_packages.display());
    }
    let left: Vec<PathBuf> = unpacked.iter().flat_map(|u| u.sources.clone()).collect();
    let mut taken = std::collections::BTreeMap::<PathBuf, usize>::new();
    for (site, n) in unpacked.iter().flat_map(|u| &u.taken) {
        *taken.entry(site.clone()).or_insert(0) += n;
    }
    let taken: String = taken
        .iter()
        .map(|(site, n)| format!(", {n} taken from {}", site.display()))
        .collect();
    log::info!("bytecode: {} modules to compile{taken}", left.len());
    crate::python::bytecode::compile(&bin.join("python"), &left)?;
    let tag = flavour
        .as_ref()
        .map_or_else(|| format!("cpython-{major}{minor}"), |f| f.tag.clone());
    for u in unpacked {
        u.finish(&target, &tag)?;
    }
    drop_without_pip(&venv)?;
    Ok(true)
}

/// A wheel root would put into its venv that another account can change: ensurepip would
/// take it too (and Debian 11's pip imports every wheel of its folder), so root's venv is not
/// made at all.
#[derive(Debug, thiserror::Error)]
#[error(
    "{0}: it or a folder above it can be written by another account; root's venv is not made \
     with it (ensurepip would use it too): make it root's alone (chown root, chmod go-w)"
)]
struct NotRootsAlone(PathBuf);

/// Each wheel, opened; as root, [`NotRootsAlone`] for the first that is not root's alone.
fn open_wheels<'a>(
    wheels: impl Iterator<Item = &'a PathBuf>,
    as_root: bool,
) -> Result<Vec<std::fs::File>> {
    let mut opened = Vec::new();
    for wheel in wheels {
        let file = std::fs::File::open(wheel)
            .with_context(|| format!("{}: cannot open", wheel.display()))?;
        if as_root && !root_alone(&file, wheel) {
            return Err(NotRootsAlone(wheel.clone()).into());
        }
        opened.push(file);
    }
    Ok(opened)
}

/// Copies wheels (opened, with their paths) into `<venv>/share/python-wheels` as Debian 11's
/// ensurepip does: new files by the same names, with the umask's default mode.
fn copy_wheels<'a>(
    wheels: impl Iterator<Item = (std::fs::File, &'a PathBuf)>,
    venv: &Path,
) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let folder = venv.join("share").join("python-wheels");
    std::fs::create_dir_all(&folder)
        .with_context(|| format!("{}: cannot create", folder.display()))?;
    for (mut from, path) in wheels {
        let dest = folder.join(path.file_name().context("a wheel's name")?);
        let mut to = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o666)
            .open(&dest)
            .with_context(|| format!("{}: cannot create", dest.display()))?;
        std::io::copy(&mut from, &mut to)
            .with_context(|| format!("cannot copy {} to {}", path.display(), dest.display()))?;
    }
    Ok(())
}

/// Where a new venv's bytecode may be copied from, in order: the site-packages of `from`'s seed
/// venv when it runs the same Python version, then the site folders of the Python installed at
/// `prefix` itself, where the distribution's own pip is (Debian's python3-pip in
/// `lib/python3/dist-packages`, Fedora's and Arch's in `lib/pythonX.Y/site-packages`); each
/// only when nobody but root can change it.
fn seeds(from: &PipFrom, prefix: &Path, version: (u64, u64)) -> Vec<Seed> {
    let (major, minor) = version;
    let tier = from.seed.as_deref().and_then(|venv| {
        (PyvenvCfg::read(venv)?.major_minor()? == version).then(|| Seed {
            site: venv
                .join("lib")
                .join(format!("python{major}.{minor}"))
                .join("site-packages"),
            listed: true,
        })
    });
    let own = [
        prefix.join("lib/python3/dist-packages"),
        prefix
            .join("lib")
            .join(format!("python{major}.{minor}"))
            .join("site-packages"),
    ]
    .into_iter()
    .map(|site| Seed {
        site,
        listed: false,
    });
    tier.into_iter()
        .chain(own)
        .filter(|seed| seed.site.is_dir() && root_controlled(&seed.site))
        .collect()
}

/// The venv now has what `python -m venv` gives: its `pyvenv.cfg` says so too. `venv` writes the
/// options it was run with on the `command` line (`create_configuration` in CPython's
/// `Lib/venv/__init__.py`, 3.11 and later); `--without-pip` is one word of it.
fn drop_without_pip(venv: &Path) -> Result<()> {
    let path = venv.join("pyvenv.cfg");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let fixed: String = text
        .split_inclusive('\n')
        .map(|line| match line.strip_prefix("command = ") {
            Some(_) => line.replacen(" --without-pip ", " ", 1),
            None => line.to_string(),
        })
        .collect();
    if fixed != text {
        std::fs::write(&path, fixed)
            .with_context(|| format!("{}: cannot write", path.display()))?;
    }
    Ok(())
}

/// As root, before a venv is made with pip: every wheel `python`'s ensurepip could read, and
/// its folder, are root's alone. Whatever this or a later step decides (wheels placed natively,
/// ensurepip run after all), ensurepip picks among the names of those folders (the last by
/// name, every one of them on Debian 11), so another account that can add a file there, even
/// in a sticky folder, or change one, would choose root's pip. A link (to a folder or a wheel)
/// is judged by what it leads to; a dangling one could be made to lead anywhere.
fn wheel_sources_roots_alone(python: &Path) -> Result<()> {
    for folder in crate::python::ensurepip::sources(python)? {
        let Ok(real) = std::fs::canonicalize(&folder) else {
            if std::fs::symlink_metadata(&folder).is_ok() {
                return Err(NotRootsAlone(folder).into());
            }
            // Absent: whoever can write the nearest folder that exists could make it.
            let nearest = folder
                .ancestors()
                .skip(1)
                .find_map(|a| std::fs::canonicalize(a).ok());
            if !nearest.is_some_and(|a| root_controlled(&a)) {
                return Err(NotRootsAlone(folder).into());
            }
            continue;
        };
        if !root_controlled(&real) {
            return Err(NotRootsAlone(folder).into());
        }
        let entries =
            std::fs::read_dir(&real).with_context(|| format!("{}: cannot list", real.display()))?;
        for entry in entries {
            let path = entry
                .with_context(|| format!("{}: cannot list", real.display()))?
                .path();
            if !std::fs::canonicalize(&path).is_ok_and(|p| root_controlled(&p)) {
                return Err(NotRootsAlone(path).into());
            }
        }
    }
    Ok(())
}

/// Whether an opened file, and every folder above its path, are root's and nobody else can
/// write them: the only wheels root unpacks.
fn root_alone(file: &std::fs::File, path: &Path) -> bool {
    file.metadata()
        .is_ok_and(|m| m.is_file() && m.uid() == 0 && m.mode() & 0o022 == 0)
        && root_controlled(path)
}

/// The venv's path as `venv` makes it absolute (`os.path.abspath`: `..` folded without
/// looking at the file system), which its scripts' `#!` lines name.
fn absolute_venv(tier: &Tier) -> Result<PathBuf> {
    let venv = std::path::absolute(tier.venv()).context("the venv's path")?;
    Ok(crate::sys::fsutil::normalize_path(&venv))
}

/// `python -I -m venv [--system-site-packages] [--without-pip] VENV`.
fn run_venv(tier: &Tier, python: &Path, inherit_system: bool, with_pip: bool) -> Result<()> {
    let mut cmd = Command::new(python);
    // `-I` isolates this interpreter only: venv runs ensurepip in a child that reads the
    // environment (the user site of `HOME` or `PYTHONUSERBASE`, whose `.pth` files run code).
    // Nothing of the caller's is needed to make a venv, so the child gets none of it: as root
    // under `sudo -E` that user site would be the caller's.
    cmd.env_clear().env("PATH", crate::sys::pip::ROOT_PATH);
    cmd.args(["-I", "-m", "venv"]);
    if inherit_system {
        cmd.arg("--system-site-packages");
    }
    if !with_pip {
        cmd.arg("--without-pip");
    }
    // venv's ensurepip runs pip as `python -c CODE` (Debian 11's, without `-I`), which puts the
    // working folder first on the import path: it is `/`, never the caller's.
    let venv = absolute_venv(tier)?;
    cmd.arg(&venv).current_dir("/");
    let out = cmd
        .output()
        .with_context(|| format!("{}: cannot run", python.display()))?;
    if !out.status.success() {
        bail!(
            "`{} -m venv {}` failed: {}\n(on Debian and Ubuntu the venv module is in the \
             python3-venv package)",
            python.display(),
            tier.venv().display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_unpacks_only_wheels_nobody_else_can_write() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let wheel = dir.path().join("pip-1.0-py3-none-any.whl");
        std::fs::write(&wheel, b"zip").unwrap();
        let set = |p: &Path, mode: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        let usable = || root_alone(&std::fs::File::open(&wheel).unwrap(), &wheel);
        set(dir.path(), 0o755);
        set(&wheel, 0o644);
        // Only root's own files qualify: when the tests do not run as root, nothing does.
        assert_eq!(usable(), nix::unistd::geteuid().is_root());
        set(&wheel, 0o664);
        assert!(!usable(), "group-writable wheel");
        set(&wheel, 0o644);
        set(dir.path(), 0o777);
        assert!(!usable(), "world-writable folder");
        set(dir.path(), 0o755);
        if nix::unistd::geteuid().is_root() {
            std::os::unix::fs::lchown(&wheel, Some(1), None).unwrap();
            assert!(!usable(), "another account's wheel");
        }
    }
}
