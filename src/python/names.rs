//! Project names and versions as the packaging specs compare them: PEP 503 names, requirement
//! lines keyed by that name, PEP 440 normal versions.

/// PEP 503 normalised project name: runs of `-`, `_` and `.` become one `-`, all lower case.
pub fn canonical_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_sep = false;
    for c in name.chars() {
        if c == '-' || c == '_' || c == '.' {
            if !in_sep {
                out.push('-');
            }
            in_sep = true;
        } else {
            if c.is_ascii() {
                out.push(c.to_ascii_lowercase());
            } else {
                out.extend(c.to_lowercase());
            }
            in_sep = false;
        }
    }
    out
}

/// A requirement or freeze line with its project name in PEP 503 form: two lines about the same
/// distribution spelled by different pips (`zope.interface==1.0`, `zope-interface==1.0`) have
/// the same key. Versions, URLs and editable paths are kept as written.
pub fn requirement_key(line: &str) -> String {
    let line = line.trim();
    if let Some(rest) = line.strip_prefix("-e ") {
        return match rest.split_once("#egg=") {
            Some((before, egg)) => {
                let end = egg.find('&').unwrap_or(egg.len());
                format!(
                    "-e {before}#egg={}{}",
                    canonical_name(&egg[..end]),
                    &egg[end..]
                )
            }
            None => line.to_string(),
        };
    }
    let end = line
        .find(['=', ' ', '@', '<', '>', '!', '~', ';', '['])
        .unwrap_or(line.len());
    format!("{}{}", canonical_name(&line[..end]), &line[end..])
}

/// PEP 440 normal form of a version string, or `None` if it is not a valid version.
pub fn normalize_version(raw: &str) -> Option<String> {
    raw.trim()
        .parse::<pep440_rs::Version>()
        .ok()
        .map(|v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirement_keys_ignore_the_spelling_of_names_only() {
        for (a, b) in [
            ("zope.interface==1.0", "zope-interface==1.0"),
            ("Typing_Extensions==4.16.0", "typing-extensions==4.16.0"),
            (
                "x.y @ file:///w/x_y-1.0-py3-none-any.whl",
                "X_Y @ file:///w/x_y-1.0-py3-none-any.whl",
            ),
            (
                "-e git+https://h/r.git@abc#egg=zope_interface&subdirectory=s",
                "-e git+https://h/r.git@abc#egg=zope.interface&subdirectory=s",
            ),
        ] {
            assert_eq!(requirement_key(a), requirement_key(b));
        }
        for (a, b) in [
            ("zope.interface==1.0", "zope.interface==1.0.0"),
            ("x @ file:///a/X.whl", "x @ file:///a/x.whl"),
            ("-e /src/Foo", "-e /src/foo"),
        ] {
            assert_ne!(requirement_key(a), requirement_key(b));
        }
    }

    #[test]
    fn canonical_names_follow_pep_503() {
        assert_eq!(canonical_name("Foo.Bar__baz"), "foo-bar-baz");
        assert_eq!(canonical_name("zope.interface"), "zope-interface");
        assert_eq!(canonical_name("A--B"), "a-b");
    }

    #[test]
    fn versions_are_normalised() {
        assert_eq!(
            normalize_version("1.0.0-alpha1").as_deref(),
            Some("1.0.0a1")
        );
        assert_eq!(normalize_version("1.0-post1").as_deref(), Some("1.0.post1"));
        assert_eq!(normalize_version("0!1.0").as_deref(), Some("1.0"));
        assert_eq!(normalize_version("not a version"), None);
    }
}
