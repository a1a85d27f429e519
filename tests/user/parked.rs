//! Parked trees (issue 15): the folders an undo or clean moved aside are kept whole by the
//! background deletion and moved back by the next restore, but only while every folder and file
//! in them is as it was parked; anything changed there is linked from the store instead. Each
//! case compares the whole venv tree (paths, modes, sizes, content) with the tree before the
//! undo.

use crate::common;

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

use common::tree::{differences, tree};
use common::{ok, wheel, Tier};

/// The parked tree of `parkme` and each of its folders (piece dir → venv-relative folder).
fn parked(t: &Tier) -> Option<(PathBuf, BTreeMap<String, String>)> {
    let root = t.root().join(".parked");
    let items: Vec<String> = std::fs::read_dir(&root)
        .map(|r| {
            r.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        items.iter().all(|n| !n.starts_with('.')),
        "no claim or half-parked tree is left: {items:?}"
    );
    let name = items.iter().find(|n| n.starts_with("parkme-1.0-"))?;
    let dir = root.join(name);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("parked.json")).unwrap()).unwrap();
    let pieces = manifest["pieces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["dir"].as_str().unwrap().to_string(),
                p["rel"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    Some((dir, pieces))
}

/// The parked copy of the venv-relative folder ending in `suffix`.
fn piece(t: &Tier, suffix: &str) -> PathBuf {
    let (dir, pieces) = parked(t).expect("parkme is parked");
    let (d, _) = pieces
        .iter()
        .find(|(_, rel)| rel.ends_with(suffix))
        .unwrap_or_else(|| panic!("no parked {suffix}: {pieces:?}"));
    dir.join(d)
}

#[test]
fn a_parked_tree_goes_back_whole_unless_something_in_it_changed() {
    let t = Tier::new();
    let f = |p: &str, c: &str| (p.to_string(), c.to_string());
    wheel(
        &t.wheels(),
        "parkme",
        "1.0",
        &[],
        &[
            f("parkme/__init__.py", "from . import sub\n"),
            f("parkme/sub/__init__.py", "X = 1\n"),
            f("parkme/sub/a.py", "A = 'a'\n"),
            f("parkme/sub/b.txt", "some data\n"),
            f("parkme/data/x.json", "{}\n"),
            f("parkme_top.py", "TOP = 1\n"),
        ],
    );
    t.install(&["parkme"]);
    let venv = t.venv();
    // Byte-code Python writes by itself (not in RECORD): dropped when parked, as a restore
    // from the store would not bring it either.
    ok(
        "python -O",
        t.command(&venv.join("bin/python"))
            .args(["-O", "-c", "import parkme.sub.a"])
            .output()
            .unwrap(),
    );
    let site = t.site_packages();
    let own_pyc: Vec<PathBuf> = walkdir::WalkDir::new(&venv)
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| e.into_path())
        .filter(|p| p.to_string_lossy().contains(".opt-1."))
        .collect();
    assert!(!own_pyc.is_empty(), "python -O wrote its byte-code");
    for p in &own_pyc {
        std::fs::remove_file(p).unwrap();
    }
    let want = tree(&venv);
    for p in own_pyc
        .iter()
        .filter(|p| p.starts_with(site.join("parkme")))
    {
        std::fs::write(p, b"written by python").unwrap();
        t.give_away(p);
    }
    t.hide_wheels();

    type Tamper = Box<dyn Fn(&Tier)>;
    let cases: Vec<(&str, Tamper)> = vec![
        ("nothing changed", Box::new(|_| {})),
        (
            "a file added to a parked folder",
            Box::new(|t| {
                let p = piece(t, "/parkme").join("sub/stray.py");
                std::fs::write(&p, "STRAY = 1\n").unwrap();
                t.give_away(&p);
            }),
        ),
        (
            "a parked file removed",
            Box::new(|t| std::fs::remove_file(piece(t, "/parkme").join("sub/a.py")).unwrap()),
        ),
        (
            "a parked file replaced by a copy (another inode)",
            Box::new(|t| {
                let p = piece(t, "/parkme").join("sub/b.txt");
                let bytes = std::fs::read(&p).unwrap();
                let mode = p.metadata().unwrap().permissions().mode();
                std::fs::remove_file(&p).unwrap();
                std::fs::write(&p, bytes).unwrap();
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
                t.give_away(&p);
            }),
        ),
        (
            "a parked folder's mode changed",
            Box::new(|t| {
                let p = piece(t, "/parkme").join("data");
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700)).unwrap();
            }),
        ),
        (
            "the .dist-info's RECORD removed",
            Box::new(|t| {
                std::fs::remove_file(piece(t, ".dist-info").join("RECORD")).unwrap();
            }),
        ),
    ];
    for (what, tamper) in cases {
        t.pyctl_ok(&["undo"]);
        t.settle();
        let (_, pieces) = parked(&t).unwrap_or_else(|| panic!("{what}: parkme is not parked"));
        let rels: Vec<&String> = pieces.values().collect();
        for folder in ["/parkme", "/parkme-1.0.dist-info", "/__pycache__"] {
            assert!(
                rels.iter().any(|r| r.ends_with(folder)),
                "{what}: {folder} is parked (site-packages' __pycache__ held parkme_top's \
                 alone): {rels:?}"
            );
        }
        assert!(!site.join("parkme").exists(), "{what}: undone");
        let parked_ino = piece(&t, "/parkme").metadata().unwrap().ino();
        tamper(&t);
        t.pyctl_ok(&["redo"]);
        t.settle();
        let diff = differences(&want, &tree(&venv));
        assert!(diff.is_empty(), "{what}:\n{}", diff.join("\n"));
        assert!(
            parked(&t).is_none(),
            "{what}: the parked tree was used or dropped"
        );
        let now_ino = site.join("parkme").metadata().unwrap().ino();
        if what == "nothing changed" {
            assert_eq!(now_ino, parked_ino, "the parked folder itself went back");
        }
        // Every installed file is the store's again (its link count counts the store's name).
        let a = site.join("parkme/sub/a.py").metadata().unwrap();
        assert!(a.nlink() >= 2, "{what}: a.py is the stored file");
    }

    // After clean, the whole venv's folders are parked, and restore takes them.
    t.pyctl_ok(&["snapshot", "full"]);
    t.pyctl_ok(&["clean"]);
    t.settle();
    assert!(
        parked(&t).is_some(),
        "parked from the venv clean moved aside"
    );
    t.pyctl_ok(&["restore", "full"]);
    t.settle();
    let diff = differences(&want, &tree(&venv));
    assert!(diff.is_empty(), "restore after clean:\n{}", diff.join("\n"));
}
