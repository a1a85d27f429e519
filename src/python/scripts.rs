//! Console scripts as pip writes them for a wheel it installs: the names it gives them (its
//! own renaming of `pip*` and `easy_install*` for the running Python) and the text distlib
//! writes for each.

use std::path::Path;

use anyhow::{bail, Result};

/// The console scripts pip makes from `entry_points.txt` (`[console_scripts]` and
/// `[gui_scripts]`), with pip's own renaming (`get_console_script_specs`, as when ensurepip
/// runs with `--default-pip`): `pip`, `pipX` and `pipX.Y` for the running Python instead of the
/// wheel's `pip*`, likewise `easy_install` and `easy_install-X.Y`.
pub fn console_scripts(entry_points: &str, version: (u64, u64)) -> Result<Vec<(String, String)>> {
    let mut scripts: Vec<(String, String)> = Vec::new();
    let mut section = String::new();
    for line in entry_points.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_string();
            continue;
        }
        if section != "console_scripts" && section != "gui_scripts" {
            continue;
        }
        let Some((name, spec)) = line.split_once('=') else {
            bail!("entry_points.txt: {line:?} is not NAME = SPEC");
        };
        let name = name.trim();
        // Word characters, `.`, `+` and `-` only: a name that is a path could lead out of
        // `bin`. The error leaves the venv to ensurepip.
        let plain = |c: char| c.is_alphanumeric() || matches!(c, '_' | '.' | '+' | '-');
        if name.is_empty() || name == "." || name == ".." || !name.chars().all(plain) {
            bail!("entry_points.txt: {name:?} is not a script name");
        }
        scripts.push((name.to_string(), spec.trim().to_string()));
    }
    let (major, minor) = version;
    let take = |scripts: &mut Vec<(String, String)>, name: &str| {
        scripts
            .iter()
            .position(|(n, _)| n == name)
            .map(|i| scripts.remove(i).1)
    };
    let mut out = Vec::new();
    if let Some(spec) = take(&mut scripts, "pip") {
        out.push(("pip".to_string(), spec.clone()));
        out.push((format!("pip{major}"), spec.clone()));
        out.push((format!("pip{major}.{minor}"), spec));
        scripts.retain(|(n, _)| !is_versioned(n, "pip", ""));
    }
    if let Some(spec) = take(&mut scripts, "easy_install") {
        out.push(("easy_install".to_string(), spec.clone()));
        out.push((format!("easy_install-{major}.{minor}"), spec));
        scripts.retain(|(n, _)| !is_versioned(n, "easy_install", "-"));
    }
    out.extend(scripts);
    Ok(out)
}

/// `pip`, `pip3`, `pip3.11` (sep `""`), or `easy_install-3.11` (sep `-`): pip's
/// `pip(\d+(\.\d+)?)?$` and `easy_install(-\d+\.\d+)?$`.
fn is_versioned(name: &str, base: &str, sep: &str) -> bool {
    let Some(rest) = name.strip_prefix(base) else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    let Some(rest) = rest.strip_prefix(sep) else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match rest.split_once('.') {
        Some((a, b)) => digits(a) && digits(b),
        None => sep.is_empty() && digits(rest),
    }
}

/// Whether distlib writes `#!PYTHON` for `python` as it is (no space in it, and the line fits
/// Linux's 127 bytes), rather than the `/bin/sh` line that runs it.
fn simple_shebang(python: &Path) -> bool {
    let exe = python.to_string_lossy();
    !exe.contains(' ') && exe.len() + 3 <= 127
}

/// A console script as pip's vendored distlib (`ScriptMaker`, `SCRIPT_TEMPLATE`) writes it for
/// `module:attr`: a `#!` line naming the interpreter (through `/bin/sh` when that line would be
/// longer than 127 bytes or the path has a space), then the launcher.
pub fn script_text(python: &Path, spec: &str, late_import: bool) -> Result<String> {
    // Extras (`mod:func [extra]`) do not change the script.
    let spec = spec.split('[').next().unwrap_or(spec).trim();
    let Some((module, attr)) = spec.split_once(':') else {
        bail!("not module:attr");
    };
    let (module, attr) = (module.trim(), attr.trim());
    let ident = |s: &str| {
        !s.is_empty()
            && s.split('.').all(|p| {
                !p.is_empty()
                    && p.chars().all(|c| c.is_alphanumeric() || c == '_')
                    && !p.starts_with(|c: char| c.is_ascii_digit())
            })
    };
    if !ident(module) || !ident(attr) {
        bail!("not module:attr");
    }
    let import_name = attr.split('.').next().unwrap_or(attr);
    let exe = python.to_string_lossy();
    let shebang = if !simple_shebang(python) {
        let quoted = if exe.contains(' ') {
            format!("\"{exe}\"")
        } else {
            exe.to_string()
        };
        format!("#!/bin/sh\n'''exec' {quoted} \"$0\" \"$@\"\n' '''\n")
    } else {
        format!("#!{exe}\n")
    };
    let import = format!("from {module} import {import_name}\n");
    let (before_main, in_main) = if late_import {
        (String::new(), format!("    {import}"))
    } else {
        (import, String::new())
    };
    Ok(format!(
        "{shebang}# -*- coding: utf-8 -*-\n\
         import re\n\
         import sys\n\
         {before_main}\
         if __name__ == '__main__':\n\
         {in_main}    \
         sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n    \
         sys.exit({attr}())\n"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pip_scripts_follow_the_running_python() {
        let eps = "[console_scripts]\npip = pip._internal.cli.main:main\n\
                   pip3 = pip._internal.cli.main:main\npip3.10 = pip._internal.cli.main:main\n\
                   other = x.y:z\n[distutils.commands]\nfoo = a:b\n";
        let names: Vec<String> = console_scripts(eps, (3, 11))
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, ["pip", "pip3", "pip3.11", "other"]);
        let eps = "[console_scripts]\neasy_install = setuptools.command.easy_install:main\n\
                   easy_install-3.9 = setuptools.command.easy_install:main\n";
        let names: Vec<String> = console_scripts(eps, (3, 9))
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, ["easy_install", "easy_install-3.9"]);
        assert!(is_versioned("pip3.11", "pip", ""));
        assert!(!is_versioned("pipx", "pip", ""));
        assert!(!is_versioned("pip-3.11", "pip", ""));
        assert!(!is_versioned("easy_install3", "easy_install", "-"));
        for name in ["../x", "/etc/x", "a/b", "..", ".", "a b", ""] {
            let eps = format!("[console_scripts]\n{name} = m:f\n");
            assert!(console_scripts(&eps, (3, 11)).is_err(), "{name:?}");
        }
        let eps = "[gui_scripts]\nmy-tool.v2+x = m:f\n";
        assert!(console_scripts(eps, (3, 11)).is_ok());
    }

    #[test]
    fn scripts_are_what_distlib_writes() {
        let text = script_text(
            Path::new("/v/bin/python3"),
            "pip._internal.cli.main:main",
            false,
        )
        .unwrap();
        assert_eq!(
            text,
            "#!/v/bin/python3\n# -*- coding: utf-8 -*-\nimport re\nimport sys\n\
             from pip._internal.cli.main import main\nif __name__ == '__main__':\n    \
             sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n    \
             sys.exit(main())\n"
        );
        let spaced = script_text(Path::new("/a b/bin/python3"), "m:f", false).unwrap();
        assert!(
            spaced.starts_with("#!/bin/sh\n'''exec' \"/a b/bin/python3\" \"$0\" \"$@\"\n' '''\n")
        );
        let late = script_text(Path::new("/v/bin/python3"), "m:f", true).unwrap();
        assert!(
            late.contains("if __name__ == '__main__':\n    from m import f\n    sys.argv"),
            "{late}"
        );
        let long = format!("/{}/bin/python3", "x".repeat(120));
        assert!(script_text(Path::new(&long), "m:f", false)
            .unwrap()
            .starts_with("#!/bin/sh\n"));
        assert!(script_text(Path::new("/p"), "no_colon", false).is_err());
        assert!(script_text(Path::new("/p"), "m:f; import os", false).is_err());
    }
}
