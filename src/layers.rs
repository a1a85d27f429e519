//! The layer rules of `src/`, checked by reading every `crate::` path in the source.
//!
//! Each folder is a layer and may use only the layers listed for it in [`LAYERS`]; with the
//! layers in that order nothing reaches upward, and a module-level cycle is refused too (two
//! files of one layer must not use each other). The size limits (no file over 700 lines, no
//! function over 100) are checked here as well; the files and functions in [`OVER_LIMIT`] are
//! the known debt, to be split, and the test fails once one of them is back under its limit so
//! the list only shrinks.

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

    /// A layer (a folder of `src/`, or a file at its top) and the layers it may use.
    const LAYERS: &[(&str, &[&str])] = &[
        ("context", &[]),
        ("exit_codes", &[]),
        ("ui", &["context"]),
        ("sys", &["context", "ui"]),
        ("python", &["context", "ui", "sys"]),
        ("tier", &["context", "ui", "sys", "python"]),
        (
            "ops",
            &["context", "exit_codes", "ui", "sys", "python", "tier"],
        ),
        ("cli", &["context", "ui"]),
        (
            "commands",
            &[
                "context",
                "exit_codes",
                "ui",
                "sys",
                "python",
                "tier",
                "ops",
                "cli",
            ],
        ),
    ];

    /// Files over 700 lines and functions over 100 lines, by `path` or `path:function`.
    const OVER_LIMIT: &[&str] = &[];

    const MAX_FILE_LINES: usize = 700;
    const MAX_FN_LINES: usize = 100;

    fn src() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
    }

    /// Every `.rs` file below `src/`, as a path relative to it.
    fn files() -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut todo = vec![src()];
        while let Some(dir) = todo.pop() {
            for item in std::fs::read_dir(&dir).unwrap() {
                let path = item.unwrap().path();
                if path.is_dir() {
                    todo.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    out.push(path.strip_prefix(src()).unwrap().to_path_buf());
                }
            }
        }
        out.sort();
        out
    }

    /// The module path of a file: `tier/mod.rs` -> `tier`, `tier/store.rs` -> `tier::store`.
    fn module_of(file: &Path) -> String {
        let mut parts: Vec<String> = file
            .with_extension("")
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        if parts.last().is_some_and(|p| p == "mod") {
            parts.pop();
        }
        parts.join("::")
    }

    /// The code of a file without comments and without its test module.
    fn code(text: &str) -> String {
        let body = match text.find("#[cfg(test)]\nmod tests") {
            Some(i) => &text[..i],
            None => text,
        };
        body.lines()
            .map(|l| match l.find("//") {
                Some(i) => &l[..i],
                None => l,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Every path `crate::a::b...` in `code`, with `crate::{a::x, b::{c, d}}` groups expanded
    /// into their parts.
    fn crate_paths(code: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let before = rest[..i].chars().last();
            rest = &rest[i + "crate::".len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
                continue;
            }
            expand(rest, String::new(), &mut out);
        }
        out
    }

    /// Reads one path (or group of paths) at the start of `text`, after `prefix`.
    fn expand(text: &str, prefix: String, out: &mut Vec<String>) {
        let text = text.trim_start();
        if let Some(group) = text.strip_prefix('{') {
            let mut depth = 0;
            let mut start = 0;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        expand(&group[start..i], prefix.clone(), out);
                        return;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        expand(&group[start..i], prefix.clone(), out);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            return;
        }
        let ident: String = text
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if ident.is_empty() || ident == "self" {
            if !prefix.is_empty() {
                out.push(prefix);
            }
            return;
        }
        let path = if prefix.is_empty() {
            ident.clone()
        } else {
            format!("{prefix}::{ident}")
        };
        match text[ident.len()..].strip_prefix("::") {
            Some(more) => expand(more, path, out),
            None => out.push(path),
        }
    }

    /// The module a path names: its longest prefix that is a module of `src/`.
    fn target(path: &str, modules: &BTreeSet<String>) -> Option<String> {
        let parts: Vec<&str> = path.split("::").collect();
        (1..=parts.len())
            .rev()
            .map(|n| parts[..n].join("::"))
            .find(|m| modules.contains(m))
    }

    fn layer(module: &str) -> &str {
        module.split("::").next().unwrap()
    }

    /// Module -> modules it uses (itself and `lib`, `main` and this file left out).
    fn graph() -> BTreeMap<String, BTreeSet<String>> {
        let files = files();
        let modules: BTreeSet<String> = files.iter().map(|f| module_of(f)).collect();
        let mut graph = BTreeMap::new();
        for file in &files {
            let from = module_of(file);
            if ["lib", "main", "layers"].contains(&from.as_str()) {
                continue;
            }
            let text = std::fs::read_to_string(src().join(file)).unwrap();
            let used: BTreeSet<String> = crate_paths(&code(&text))
                .iter()
                .filter_map(|p| target(p, &modules))
                .filter(|m| *m != from)
                .collect();
            graph.insert(from, used);
        }
        graph
    }

    fn edges_against_layers(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
        let allowed: BTreeMap<&str, &[&str]> = LAYERS.iter().copied().collect();
        let mut bad = Vec::new();
        for (from, used) in graph {
            let Some(may) = allowed.get(layer(from)) else {
                bad.push(format!("{from}: its layer is not in LAYERS"));
                continue;
            };
            for to in used {
                if layer(to) != layer(from) && !may.contains(&layer(to)) {
                    bad.push(format!("{from} -> {to}"));
                }
            }
        }
        bad
    }

    /// A cycle in `graph`, as `a -> b -> a`, if there is one.
    fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<String> {
        fn visit(
            node: &str,
            graph: &BTreeMap<String, BTreeSet<String>>,
            done: &mut BTreeSet<String>,
            stack: &mut Vec<String>,
        ) -> Option<String> {
            if let Some(i) = stack.iter().position(|s| s == node) {
                let mut path = stack[i..].to_vec();
                path.push(node.to_string());
                return Some(path.join(" -> "));
            }
            if done.contains(node) {
                return None;
            }
            stack.push(node.to_string());
            for next in graph.get(node).into_iter().flatten() {
                if let Some(c) = visit(next, graph, done, stack) {
                    return Some(c);
                }
            }
            stack.pop();
            done.insert(node.to_string());
            None
        }
        let mut done = BTreeSet::new();
        graph
            .keys()
            .find_map(|n| visit(n, graph, &mut done, &mut Vec::new()))
    }

    #[test]
    fn no_module_uses_a_layer_above_its_own() {
        let bad = edges_against_layers(&graph());
        assert!(
            bad.is_empty(),
            "edges against the layer table:\n{}",
            bad.join("\n")
        );
    }

    #[test]
    fn modules_use_each_other_without_cycles() {
        assert_eq!(cycle(&graph()), None);
    }

    #[test]
    fn the_checks_see_an_upward_edge_and_a_cycle() {
        let mut graph = graph();
        graph
            .get_mut("sys::fsutil")
            .unwrap()
            .insert("ops::transaction".to_string());
        assert_eq!(
            edges_against_layers(&graph),
            ["sys::fsutil -> ops::transaction"]
        );
        assert!(cycle(&graph).is_some());
        let paths = crate_paths("use crate::{a::b, c::{self, d::E}};\nx = crate::f::g(1);");
        assert_eq!(paths, ["a::b", "c", "c::d::E", "f::g"]);
    }

    /// Top-level and `impl` functions longer than the limit, as `path:name`.
    fn long_functions(file: &Path, text: &str) -> Vec<String> {
        let lines: Vec<&str> = text.lines().collect();
        let mut out = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let trimmed = line.trim_start();
            let indent = line.len() - trimmed.len();
            let Some(pos) = trimmed.find("fn ") else {
                continue;
            };
            let head = &trimmed[..pos];
            if !head
                .split_whitespace()
                .all(|w| ["pub", "pub(crate)", "const", "unsafe", "async", "extern"].contains(&w))
            {
                continue;
            }
            let closing = format!("{}}}", " ".repeat(indent));
            let Some(len) = lines[i..].iter().position(|l| *l == closing) else {
                continue;
            };
            if len + 1 > MAX_FN_LINES {
                let name: String = trimmed[pos + 3..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                out.push(format!("{}:{name}", file.display()));
            }
        }
        out
    }

    #[test]
    fn files_and_functions_stay_within_their_size_limits() {
        let mut over = BTreeSet::new();
        for file in files() {
            let text = std::fs::read_to_string(src().join(&file)).unwrap();
            if text.lines().count() > MAX_FILE_LINES {
                over.insert(file.display().to_string());
            }
            over.extend(long_functions(&file, &text));
        }
        let known: BTreeSet<String> = OVER_LIMIT.iter().map(|s| s.to_string()).collect();
        let new: Vec<_> = over.difference(&known).collect();
        let fixed: Vec<_> = known.difference(&over).collect();
        assert!(new.is_empty(), "over the size limits: {new:?}");
        assert!(
            fixed.is_empty(),
            "within the limits now, take off OVER_LIMIT: {fixed:?}"
        );
    }
}
