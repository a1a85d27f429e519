//! Freeze lines (`name==version`, `name @ url`): reading them by name.

use std::path::Path;
/// An editable line's comment (`# Editable ... (name==1.0)`) names its project; a bare
/// `-e /path` line does not, so the comment's name is carried to the next line.
pub fn freeze_map(freeze: &str) -> std::collections::BTreeMap<String, String> {
    let mut map = std::collections::BTreeMap::new();
    let mut named_by_comment = None;
    for line in freeze.lines().filter(|l| !l.trim().is_empty()) {
        if line.starts_with('#') {
            named_by_comment = line
                .rfind('(')
                .and_then(|start| line[start + 1..].split(')').next())
                .filter(|inner| inner.contains("=="))
                .map(requirement_name);
            continue;
        }
        let name = match named_by_comment.take() {
            Some(name) if line.starts_with("-e ") => name,
            _ => requirement_name(line),
        };
        map.insert(name, line.to_string());
    }
    map
}

/// The canonical project name a freeze line is about.
pub fn requirement_name(line: &str) -> String {
    let line = line.trim();
    if let Some(rest) = line.strip_prefix("-e ") {
        if let Some((_, egg)) = rest.split_once("#egg=") {
            let egg = egg.split('&').next().unwrap_or(egg);
            return crate::python::inventory::canonical_name(egg);
        }
        let base = Path::new(rest.trim())
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        return crate::python::inventory::canonical_name(&base);
    }
    let end = line
        .find(['=', ' ', '@', '<', '>', '!', '~', ';', '['])
        .unwrap_or(line.len());
    crate::python::inventory::canonical_name(&line[..end])
}
