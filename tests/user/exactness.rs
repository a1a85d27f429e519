//! The exactness oracle (issue 12): random, seeded sequences of pip operations and in-place
//! edits interleaved with undo, redo, `undo --to`, snapshot, restore and clean, on wheels built
//! here that overlap in files (two distributions shipping `jwt/`, two shipping `cv/`), ship
//! top-level modules (whose byte-code lands in the shared `site-packages/__pycache__`),
//! scripts, data and headers. After every step the whole venv tree (path, type, mode, size,
//! sha256, link target) is compared with the tree recorded for the state the history claims.
//!
//! The index is cut off (`--no-index --find-links`, and a dead index URL). A failure prints the
//! seed and the steps, shrunk to a shorter sequence that still fails when it can find one.
//!
//! Knobs: `PYCTL_ORACLE_SEEDS` (comma-separated, default three fixed seeds),
//! `PYCTL_ORACLE_STEPS` (steps per seed, default 60), `PYCTL_ORACLE_SHRINK=0` skips shrinking.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use common::{text, wheel, Tier};

/// One node of a venv tree.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Dir {
        mode: u32,
    },
    File {
        mode: u32,
        size: u64,
        sha256: String,
    },
    Link {
        target: String,
    },
}

/// venv-relative path → node.
type Tree = BTreeMap<String, Node>;

/// `sha256=<urlsafe base64, no padding>`, as RECORD writes it.
fn record_hash(data: &[u8]) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    format!(
        "sha256={}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(data))
    )
}

fn read_tree(venv: &Path) -> Tree {
    let mut tree = Tree::new();
    for e in walkdir::WalkDir::new(venv).min_depth(1) {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(venv).unwrap().display().to_string();
        let meta = e.path().symlink_metadata().unwrap();
        let mode = meta.mode() & 0o7777;
        let node = if meta.file_type().is_symlink() {
            Node::Link {
                target: std::fs::read_link(e.path()).unwrap().display().to_string(),
            }
        } else if meta.is_dir() {
            Node::Dir { mode }
        } else {
            let data = std::fs::read(e.path()).unwrap();
            Node::File {
                mode,
                size: meta.len(),
                sha256: record_hash(&data),
            }
        };
        tree.insert(rel, node);
    }
    tree
}

/// Which distributions' RECORDs name each venv-relative path, with the hash each gives.
fn owners(tree: &Tree, venv: &Path) -> BTreeMap<String, Vec<(String, Option<String>)>> {
    let mut out: BTreeMap<String, Vec<(String, Option<String>)>> = BTreeMap::new();
    for path in tree.keys() {
        let Some(dist_info) = path.strip_suffix("/RECORD") else {
            continue;
        };
        if !dist_info.ends_with(".dist-info") {
            continue;
        }
        let Ok(record) = std::fs::read_to_string(venv.join(path)) else {
            continue;
        };
        let site = Path::new(dist_info).parent().unwrap();
        for row in record.lines() {
            let cols: Vec<&str> = row.split(',').collect();
            let mut full = site.to_path_buf();
            for comp in Path::new(cols[0]).components() {
                match comp {
                    std::path::Component::ParentDir => {
                        full.pop();
                    }
                    other => full.push(other),
                }
            }
            let hash = cols.get(1).filter(|h| !h.is_empty()).map(|h| h.to_string());
            out.entry(full.display().to_string())
                .or_default()
                .push((dist_info.to_string(), hash));
        }
    }
    out
}

/// A tree and who owns what in it.
#[derive(Debug, Clone)]
struct State {
    tree: Tree,
    owners: BTreeMap<String, Vec<(String, Option<String>)>>,
}

/// The differences between the tree a state claims and the venv as it is. A path that several
/// distributions of the claimed state own may hold any owner's bytes (which one wins depends on
/// install order, which the freeze does not say); a file its RECORD names that was missing in
/// the claimed tree (pip's own uninstall of a co-owner deletes it) may come back with its
/// owner's bytes. Everything else must be identical.
///
/// Byte-code RECORD lists without a hash (pip compiles it at install time, with the source's
/// mtime inside) must be there, with its mode, and be valid for the source beside it: two
/// installs of the same wheel give two sets of bytes, and the freeze cannot tell which one a
/// state had.
fn differences(claimed: &State, actual: &Tree, venv: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let paths: BTreeSet<&String> = claimed.tree.keys().chain(actual.keys()).collect();
    for path in paths {
        let want = claimed.tree.get(path);
        let got = actual.get(path);
        if want == got {
            continue;
        }
        let owned = claimed.owners.get(path.as_str());
        let unhashed = owned.is_some_and(|o| o.iter().all(|(_, h)| h.is_none()));
        if let (Some(Node::File { mode: a, .. }), Some(Node::File { mode: b, .. })) = (want, got) {
            if a == b && unhashed && pyc_fits_source(&venv.join(path)) {
                continue;
            }
        }
        let shared = owned.is_some_and(|o| o.len() > 1);
        let lenient = shared || (want.is_none() && owned.is_some());
        if lenient {
            let fits = match got {
                Some(Node::File { sha256, .. }) => owned
                    .unwrap()
                    .iter()
                    .any(|(_, h)| h.as_deref().is_none_or(|h| h == sha256)),
                None => want.is_none(),
                _ => false,
            };
            if fits {
                continue;
            }
        }
        // A folder only pip's uninstall had removed (empty once a co-owner's files went).
        if matches!(got, Some(Node::Dir { .. }))
            && want.is_none()
            && claimed
                .owners
                .keys()
                .any(|p| p.starts_with(&format!("{path}/")))
        {
            continue;
        }
        out.push(format!("{path}: claimed {want:?}, found {got:?}"));
    }
    out
}

/// Whether a timestamp-based `.pyc` names the mtime and size of the source beside its
/// `__pycache__` (what Python checks before using it).
fn pyc_fits_source(pyc: &Path) -> bool {
    let (Some(cache), Some(name)) = (pyc.parent(), pyc.file_name()) else {
        return false;
    };
    if cache.file_name().is_none_or(|n| n != "__pycache__") {
        return false;
    }
    let stem = name
        .to_string_lossy()
        .split('.')
        .next()
        .unwrap()
        .to_string();
    let source = cache.parent().unwrap().join(format!("{stem}.py"));
    let (Ok(bytes), Ok(meta)) = (std::fs::read(pyc), std::fs::metadata(&source)) else {
        return false;
    };
    if bytes.len() < 16 || bytes[4..8] != [0, 0, 0, 0] {
        return false;
    }
    let mtime = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
    let size = u32::from_le_bytes(bytes[12..16].try_into().unwrap());
    mtime == meta.mtime() as u32 && size == meta.len() as u32
}

/// The wheels: two versions of most, overlapping in files.
fn build_wheels(dir: &Path) {
    let f = |p: &str, c: &str| (p.to_string(), c.to_string());
    for v in ["1.0", "2.0"] {
        let data = format!("jwta-{v}.data");
        wheel(
            dir,
            "jwta",
            v,
            &[],
            &[
                f("jwt/__init__.py", &format!("FROM = 'jwta {v}'\n")),
                f("jwt/api_jws.py", &format!("def encode(): return 'a{v}'\n")),
                f("jwta_compat.py", &format!("V = '{v}'\n")),
                f(
                    &format!("{data}/scripts/jwta-cli"),
                    &format!("#!python\nprint('jwta {v}')\n"),
                ),
                f(
                    &format!("{data}/data/share/jwta/notes.txt"),
                    &format!("{v}\n"),
                ),
                f(&format!("{data}/headers/jwta.h"), &format!("/* {v} */\n")),
            ],
        );
    }
    for v in ["1.0", "1.1"] {
        wheel(
            dir,
            "jwtb",
            v,
            &[],
            &[
                f("jwt/__init__.py", &format!("FROM = 'jwtb {v}'\n")),
                f("jwt/jwt_b.py", &format!("B = '{v}'\n")),
                f(
                    &format!("jwtb-{v}.data/scripts/jwtb-cli"),
                    &format!("#!python\nprint('jwtb {v}')\n"),
                ),
            ],
        );
    }
    // Two builds of one package: the same `cv/__init__.py` bytes, one file each of their own.
    for (name, extra) in [("cvx", "gui"), ("cvx_headless", "headless")] {
        wheel(
            dir,
            name,
            "4.0",
            &[],
            &[
                f("cv/__init__.py", "from .core import *\n"),
                f("cv/core.py", &format!("KIND = '{extra}'\n")),
                f(&format!("cv/{extra}.py"), "X = 1\n"),
            ],
        );
    }
    for v in ["1.0", "2.0"] {
        let mut files = vec![f("solo.py", &format!("V = '{v}'\n"))];
        if v == "1.0" {
            files.push(f("solo_old.py", "OLD = True\n"));
        }
        wheel(dir, "solo", v, &[], &files);
    }
    wheel(
        dir,
        "needy",
        "1.0",
        &["solo>=1.0"],
        &[f("needy.py", "import solo\n")],
    );
}

/// The distributions and the versions the wheels offer.
const DISTS: &[(&str, &[&str])] = &[
    ("jwta", &["1.0", "2.0"]),
    ("jwtb", &["1.0", "1.1"]),
    ("cvx", &["4.0"]),
    ("cvx_headless", &["4.0"]),
    ("solo", &["1.0", "2.0"]),
    ("needy", &["1.0"]),
];

/// A small deterministic generator (xorshift64*): the sequence is the seed's alone.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    }
}

/// One step of a sequence.
#[derive(Debug, Clone)]
enum Step {
    Install(String),
    Uninstall(String),
    Undo,
    Redo,
    /// `undo --to` the entry this many finished pip entries back.
    UndoTo(usize),
    Snapshot(String),
    Restore(String),
    Clean,
    /// Append to the nth owned file (mod the count), then put its mtime back.
    Edit(usize),
    /// Write the nth owned file anew as an editor that saves by rename does (a new inode),
    /// other bytes of the same size, the mtime put back.
    Replace(usize),
    /// Wait for the background deletion of what undo, redo, restore and clean moved aside, so
    /// that the next restore takes the folders it parked (without this step it races them).
    Settle,
}

fn generate(seed: u64, steps: usize) -> Vec<Step> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut out = Vec::new();
    let mut engines = 0;
    for _ in 0..steps {
        let step = match rng.below(20) {
            0..=6 => {
                let (name, versions) = DISTS[rng.below(DISTS.len())];
                Step::Install(format!("{name}=={}", versions[rng.below(versions.len())]))
            }
            7..=8 => Step::Uninstall(DISTS[rng.below(DISTS.len())].0.to_string()),
            9..=11 => Step::Undo,
            12..=13 => Step::Redo,
            14 => Step::UndoTo(rng.below(4)),
            15 => Step::Snapshot(format!("s{}", rng.below(2))),
            16 => Step::Restore(format!("s{}", rng.below(2))),
            17 => Step::Clean,
            18 => Step::Edit(rng.below(1000)),
            _ => Step::Replace(rng.below(1000)),
        };
        let engine = matches!(
            step,
            Step::Undo | Step::Redo | Step::UndoTo(_) | Step::Restore(_) | Step::Clean
        );
        out.push(step);
        // Every other engine step is followed by a wait for the background deletion (the
        // next restore takes the trees it parked); the others race it. Drawing nothing from
        // the generator keeps each seed's sequence of the other steps.
        if engine {
            engines += 1;
            if engines % 2 == 0 {
                out.push(Step::Settle);
            }
        }
    }
    out
}

/// The model: the claimed state of every history entry, and what the test knows.
struct Model<'a> {
    t: &'a Tier,
    venv: std::path::PathBuf,
    /// The claimed (pristine) state before and after each history entry.
    before: BTreeMap<u64, State>,
    after: BTreeMap<u64, State>,
    snapshots: BTreeMap<String, State>,
    /// The claimed state now: what the history says the venv holds, with original bytes.
    claimed: State,
    /// Files edited in place since the last engine operation: path → node after the edit.
    edited: BTreeMap<String, Node>,
    /// Ids of entries made by pip, oldest first (targets for `undo --to`).
    pip_ids: Vec<u64>,
}

impl<'a> Model<'a> {
    fn new(t: &'a Tier) -> Model<'a> {
        let venv = t.venv();
        let tree = read_tree(&venv);
        let claimed = State {
            owners: owners(&tree, &venv),
            tree,
        };
        let mut m = Model {
            t,
            venv,
            before: BTreeMap::new(),
            after: BTreeMap::new(),
            snapshots: BTreeMap::new(),
            claimed: claimed.clone(),
            edited: BTreeMap::new(),
            pip_ids: Vec::new(),
        };
        let init = t.last_id();
        m.before.insert(init, claimed.clone());
        m.after.insert(init, claimed);
        m
    }

    fn state_now(&self) -> State {
        let tree = read_tree(&self.venv);
        State {
            owners: owners(&tree, &self.venv),
            tree,
        }
    }

    /// The claimed state after a pip run: the venv as pip left it, with files edited before
    /// (and not rewritten by pip) counted as their originals.
    fn pristine(&self, mut now: State) -> State {
        for (path, edited) in &self.edited {
            if now.tree.get(path) == Some(edited) {
                if let Some(original) = self.claimed.tree.get(path) {
                    now.tree.insert(path.clone(), original.clone());
                }
            }
        }
        now
    }

    fn last_entry(&self) -> (u64, serde_json::Value) {
        let (id, before, _) = self.t.history().pop().unwrap();
        (id, before)
    }

    /// Runs one step; an Err is the oracle's finding.
    fn step(&mut self, step: &Step) -> Result<(), String> {
        let wheels = self.t.wheels();
        let wheels = wheels.to_str().unwrap();
        let last_before = self.t.last_id();
        match step {
            Step::Install(req) => {
                self.pip(&["install", "--no-index", "--find-links", wheels, req])?
            }
            Step::Uninstall(name) => {
                if !self.claimed_has(name) {
                    return Ok(());
                }
                self.pip(&["uninstall", "-y", name])?
            }
            Step::Settle => {
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
                while std::fs::read_dir(self.t.root())
                    .map_err(|e| e.to_string())?
                    .filter_map(Result::ok)
                    .any(|e| e.file_name().to_string_lossy().starts_with(".trash-"))
                {
                    if std::time::Instant::now() > deadline {
                        return Err("the background deletion did not end in 60 s".into());
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                return Ok(());
            }
            Step::Edit(n) => return self.edit(*n, false),
            Step::Replace(n) => return self.edit(*n, true),
            Step::Snapshot(name) => {
                let out = self.t.pyctl(&["-q", "snapshot", "--force", name]);
                if !out.status.success() {
                    return Err(format!("snapshot failed: {}", text(&out)));
                }
                self.snapshots.insert(name.clone(), self.claimed.clone());
                return Ok(());
            }
            Step::Undo | Step::Redo | Step::UndoTo(_) | Step::Restore(_) | Step::Clean => {
                return self.engine(step, last_before)
            }
        }
        // A pip operation: its entry's claimed states.
        let (id, _) = self.last_entry();
        if id == last_before {
            return Err("the pip operation was not recorded".into());
        }
        let now = self.pristine(self.state_now());
        self.before.insert(id, self.claimed.clone());
        self.after.insert(id, now.clone());
        // Edits pip did not rewrite stay edits; the claimed state keeps their originals.
        let actual = read_tree(&self.venv);
        self.edited
            .retain(|path, node| actual.get(path) == Some(node));
        self.claimed = now;
        self.pip_ids.push(id);
        Ok(())
    }

    fn claimed_has(&self, name: &str) -> bool {
        let prefix = format!("{}-", name.replace('-', "_"));
        self.claimed.tree.keys().any(|p| {
            Path::new(p)
                .file_name()
                .is_some_and(|f| f.to_string_lossy().starts_with(&prefix))
                && p.ends_with(".dist-info")
        })
    }

    fn pip(&self, args: &[&str]) -> Result<(), String> {
        let out = self.t.pip(args);
        if !out.status.success() {
            return Err(format!("pip {args:?} failed:\n{}", text(&out)));
        }
        Ok(())
    }

    fn edit(&mut self, n: usize, replace: bool) -> Result<(), String> {
        // Files a RECORD hashes (the user's editor does not care who owns what).
        let candidates: Vec<&String> = self
            .claimed
            .owners
            .iter()
            .filter(|(p, o)| {
                o.iter().any(|(_, h)| h.is_some())
                    && !p.contains(".dist-info/")
                    && !p.starts_with("bin/pip")
                    && matches!(self.claimed.tree.get(*p), Some(Node::File { .. }))
                    && !p.contains("site-packages/pip/")
                    && !p.contains("site-packages/setuptools/")
                    && !p.contains("site-packages/pkg_resources/")
                    && !p.contains("site-packages/_distutils_hack/")
            })
            .map(|(p, _)| p)
            .collect();
        if candidates.is_empty() {
            return Ok(());
        }
        let rel = candidates[n % candidates.len()].clone();
        let path = self.venv.join(&rel);
        let mtime = std::fs::metadata(&path)
            .map_err(|e| format!("{rel}: {e}"))?
            .modified()
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        // As the tier's owner would: append (or write a new file of the same size over it by
        // rename), then `touch` the mtime back so that nothing that trusts it can tell. A
        // refused write (a read-only file) leaves the file as it was.
        let script = if replace {
            "tr 'a-z' 'b-za' < \"$1\" > \"$1.new\" && mv -f \"$1.new\" \"$1\" && \
             touch -m -d \"@$2\" \"$1\""
        } else {
            "echo '# edited in place' >> \"$1\" 2>/dev/null && touch -m -d \"@$2\" \"$1\""
        };
        let out = self
            .t
            .command(Path::new("/bin/sh"))
            .args([
                "-c",
                script,
                "sh",
                path.to_str().unwrap(),
                &format!("{}.{:09}", mtime.as_secs(), mtime.subsec_nanos()),
            ])
            .output()
            .unwrap();
        let node = read_tree(&self.venv).remove(&rel).unwrap();
        if out.status.success() {
            self.edited.insert(rel, node);
        } else if Some(&node) != self.claimed.tree.get(&rel) {
            return Err(format!("a refused edit changed {rel}"));
        }
        Ok(())
    }

    /// Undo, redo, `undo --to`, restore or clean: the venv must be the claimed tree of its
    /// target, edits put back.
    fn engine(&mut self, step: &Step, last_before: u64) -> Result<(), String> {
        let (args, target): (Vec<String>, Option<State>) = match step {
            Step::Undo => (vec!["undo".into()], None),
            Step::Redo => (vec!["redo".into()], None),
            Step::UndoTo(back) => {
                if self.pip_ids.is_empty() {
                    return Ok(());
                }
                let id = self.pip_ids[self.pip_ids.len().saturating_sub(1 + back)];
                (
                    vec!["undo".into(), "--to".into(), id.to_string()],
                    Some(self.after[&id].clone()),
                )
            }
            Step::Restore(name) => match self.snapshots.get(name) {
                Some(s) => (vec!["restore".into(), name.clone()], Some(s.clone())),
                None => return Ok(()),
            },
            Step::Clean => {
                let init = *self.after.keys().next().unwrap();
                (vec!["clean".into()], Some(self.after[&init].clone()))
            }
            _ => unreachable!(),
        };
        let args_ref: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.t.pyctl(&args_ref);
        let output = text(&out);
        let (id, before) = self.last_entry();
        if id == last_before {
            // Nothing recorded: refused (nothing to undo or redo) or nothing to do.
            let refused = output.contains("nothing to redo")
                || output.contains("can be undone")
                || output.contains("nothing to do");
            if !refused {
                return Err(format!("pyctl {args:?} recorded nothing:\n{output}"));
            }
            if output.contains("nothing to do") {
                // The set is already the target's: the files must be too.
                if let Some(target) = target {
                    return self.check(&args, &target, &output);
                }
            }
            return Ok(());
        }
        if !out.status.success() {
            return Err(format!("pyctl {args:?} failed:\n{output}"));
        }
        let reverts: Vec<u64> = before["reverts"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_u64()).collect())
            .unwrap_or_default();
        let target = match (step, target) {
            (_, Some(t)) => t,
            (Step::Undo, None) => {
                let oldest = reverts.iter().min().ok_or("an undo reverting nothing")?;
                self.before
                    .get(oldest)
                    .cloned()
                    .ok_or(format!("undo reverts #{oldest}, which the model never saw"))?
            }
            (Step::Redo, None) => {
                let undo = reverts.first().ok_or("a redo reverting nothing")?;
                self.before
                    .get(undo)
                    .cloned()
                    .ok_or(format!("redo reverts #{undo}, which the model never saw"))?
            }
            _ => unreachable!(),
        };
        self.before.insert(id, self.claimed.clone());
        self.after.insert(id, target.clone());
        self.claimed = target.clone();
        self.edited.clear();
        self.check(&args, &target, &output)
    }

    fn check(&mut self, args: &[String], target: &State, output: &str) -> Result<(), String> {
        let actual = read_tree(&self.venv);
        let diffs = differences(target, &actual, &self.venv);
        if diffs.is_empty() {
            return Ok(());
        }
        Err(format!(
            "after pyctl {args:?} the venv is not the claimed tree ({} differences):\n  {}\n\
             pyctl said:\n{output}",
            diffs.len(),
            diffs.into_iter().take(25).collect::<Vec<_>>().join("\n  ")
        ))
    }
}

/// Runs a sequence on a new tier; the index of the failing step and the finding.
fn run(steps: &[Step]) -> Result<(), (usize, String)> {
    let t = Tier::new();
    build_wheels(&t.wheels());
    t.give_away(&t.wheels());
    let mut model = Model::new(&t);
    for (i, step) in steps.iter().enumerate() {
        model.step(step).map_err(|e| (i, e))?;
    }
    Ok(())
}

/// Drops steps one at a time while the sequence still fails (within five minutes): the
/// failure to look at is the short one.
fn shrink(mut steps: Vec<Step>) -> Vec<Step> {
    let budget = std::time::Instant::now() + std::time::Duration::from_secs(300);
    let mut i = 0;
    while i < steps.len() && std::time::Instant::now() < budget {
        let mut shorter = steps.clone();
        shorter.remove(i);
        if run(&shorter).is_err() {
            steps = shorter;
        } else {
            i += 1;
        }
    }
    steps
}

fn listing(steps: &[Step]) -> String {
    steps
        .iter()
        .enumerate()
        .map(|(i, s)| format!("  {i:3}: {s:?}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn undo_redo_restore_clean_give_back_the_exact_tree() {
    let seeds: Vec<u64> = std::env::var("PYCTL_ORACLE_SEEDS")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![12, 1207, 4242]);
    let steps: usize = std::env::var("PYCTL_ORACLE_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let shrinking = std::env::var("PYCTL_ORACLE_SHRINK").map_or(true, |v| v != "0");
    for seed in seeds {
        let sequence = generate(seed, steps);
        if let Err((at, finding)) = run(&sequence) {
            let failing = sequence[..=at].to_vec();
            let shrunk = if shrinking {
                shrink(failing.clone())
            } else {
                failing.clone()
            };
            let shrunk_finding = run(&shrunk).err().map(|(_, f)| f).unwrap_or_default();
            panic!(
                "seed {seed}: step {at} ({:?}) failed:\n{finding}\n\nsteps:\n{}\n\nshrunk to {} \
                 steps:\n{}\n\nwhich fails with:\n{shrunk_finding}\n\n(rerun: \
                 PYCTL_ORACLE_SEEDS={seed} PYCTL_ORACLE_STEPS={steps} cargo test --test exactness)",
                sequence[at],
                listing(&failing),
                shrunk.len(),
                listing(&shrunk),
            );
        }
    }
}

/// pip's uninstall leaves the folders a wheel's headers and data went into
/// (`include/site/python3.11`, `share`), empty: a move to a state from before the install takes
/// them away, and one to the state after the uninstall (undo, redo, or restore of a snapshot
/// taken then) brings them back.
#[test]
fn the_empty_folders_pips_uninstall_left_go_and_come_with_their_state() {
    let steps = [
        Step::Install("solo==1.0".into()),
        Step::Install("jwta==2.0".into()),
        Step::Uninstall("jwta".into()),
        Step::Snapshot("emptied".into()),
        Step::UndoTo(2),
        Step::UndoTo(0),
        Step::Undo,
        Step::Redo,
        Step::UndoTo(2),
        Step::Restore("emptied".into()),
    ];
    if let Err((at, finding)) = run(&steps) {
        panic!("step {at} ({:?}): {finding}", steps[at]);
    }
}
