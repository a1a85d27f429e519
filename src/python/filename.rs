//! Distribution file names: the one place a wheel's or an sdist's file name is split into its
//! project and version.
//!
//! A wheel is `{name}-{version}(-{build tag})?-{python tag}-{abi tag}-{platform tag}.whl` (the
//! binary distribution format spec,
//! <https://packaging.python.org/en/latest/specifications/binary-distribution-format/>): five or
//! six parts, none empty, no `-` inside one (a name or version with a dash in it is written with
//! `_`), and a build tag starts with a digit. An sdist is `{name}-{version}.tar.gz` (or an older
//! `.zip`, `.tar.bz2`, `.tgz`); its name may hold dashes, so the version is after the last one.

/// The parts of a wheel file name, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WheelName<'a> {
    /// As written (`My_Pkg`): `names::canonical_name` compares it.
    pub name: &'a str,
    pub version: &'a str,
    pub build: Option<&'a str>,
    pub python: &'a str,
    pub abi: &'a str,
    pub platform: &'a str,
}

/// A file name that is not a wheel's, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{file:?} is not a wheel file name ({reason}; a wheel is named \
     NAME-VERSION[-BUILD]-PYTHON-ABI-PLATFORM.whl)"
)]
pub struct NotAWheelName {
    pub file: String,
    pub reason: String,
}

impl<'a> WheelName<'a> {
    /// Splits `file` (a file name, no folder) into its parts.
    pub fn parse(file: &'a str) -> Result<WheelName<'a>, NotAWheelName> {
        let bad = |reason: String| NotAWheelName {
            file: file.to_string(),
            reason,
        };
        let stem = file
            .strip_suffix(".whl")
            .ok_or_else(|| bad("it does not end in .whl".into()))?;
        let parts: Vec<&str> = stem.split('-').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad("one of its parts is empty".into()));
        }
        let (name, version, build, tags) = match parts[..] {
            [name, version, python, abi, platform] => {
                (name, version, None, [python, abi, platform])
            }
            [name, version, build, python, abi, platform] => {
                if !build.starts_with(|c: char| c.is_ascii_digit()) {
                    return Err(bad(format!(
                        "its build tag {build:?} does not start with a digit"
                    )));
                }
                (name, version, Some(build), [python, abi, platform])
            }
            _ => {
                return Err(bad(format!(
                    "{} parts between dashes, not 5 or 6",
                    parts.len()
                )))
            }
        };
        let [python, abi, platform] = tags;
        Ok(WheelName {
            name,
            version,
            build,
            python,
            abi,
            platform,
        })
    }
}

/// The name and version of an sdist file name (`my-pkg-1.0.tar.gz` → `my-pkg`, `1.0`); `None`
/// when it has no sdist ending or no dash.
pub fn sdist_name_version(file: &str) -> Option<(&str, &str)> {
    [".tar.gz", ".zip", ".tar.bz2", ".tgz"]
        .iter()
        .find_map(|ext| file.strip_suffix(ext))
        .and_then(|stem| stem.rsplit_once('-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wheel_names_split_into_their_parts() {
        let w = WheelName::parse("My_Pkg-1.0.post1-py3-none-any.whl").unwrap();
        assert_eq!(
            (w.name, w.version, w.build, w.python, w.abi, w.platform),
            ("My_Pkg", "1.0.post1", None, "py3", "none", "any")
        );
        let w = WheelName::parse("pip-24.0-1b-py2.py3-none-manylinux_2_17_x86_64.whl").unwrap();
        assert_eq!(w.build, Some("1b"));
        assert_eq!(w.python, "py2.py3");
        assert_eq!(w.platform, "manylinux_2_17_x86_64");
    }

    #[test]
    fn bad_wheel_names_say_what_is_wrong() {
        for (file, reason) in [
            ("pip-24.0-py3-none-any.zip", "does not end in .whl"),
            ("pip-24.0.whl", "2 parts between dashes, not 5 or 6"),
            ("a-b-1.0-1-py3-none-any.whl", "7 parts between dashes"),
            (
                "pip-24.0-x1-py3-none-any.whl",
                "build tag \"x1\" does not start with a digit",
            ),
            ("pip--py3-none-any.whl", "one of its parts is empty"),
            (".whl", "one of its parts is empty"),
        ] {
            let err = WheelName::parse(file).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(reason), "{file}: {text}");
            assert!(text.contains(&format!("{file:?}")), "{text}");
        }
    }

    #[test]
    fn sdist_versions_follow_the_last_dash() {
        assert_eq!(
            sdist_name_version("my-pkg-1.0.tar.gz"),
            Some(("my-pkg", "1.0"))
        );
        assert_eq!(sdist_name_version("x-2.zip"), Some(("x", "2")));
        assert_eq!(sdist_name_version("x-2.tgz"), Some(("x", "2")));
        assert_eq!(sdist_name_version("nodash.tar.gz"), None);
        assert_eq!(sdist_name_version("x-1.0-py3-none-any.whl"), None);
    }
}
