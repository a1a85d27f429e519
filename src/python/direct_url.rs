//! `*.dist-info/direct_url.json` (PEP 610, "Recording the Direct URL Origin of installed
//! distributions"): where a URL, VCS or editable install came from, and the direct reference
//! `pip freeze` prints for it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A PEP 610 `direct_url.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectUrl {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subdirectory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcs_info: Option<VcsInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive_info: Option<ArchiveInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir_info: Option<DirInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VcsInfo {
    pub vcs: String,
    pub commit_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_revision: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveInfo {
    /// The legacy `"<algorithm>=<hex>"` field; pip's freeze prints only this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashes: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirInfo {
    #[serde(default)]
    pub editable: bool,
}

impl DirectUrl {
    /// PEP 610 says exactly one of the three info keys is present; anything else is invalid and,
    /// like pip, we then ignore the file.
    pub fn is_valid(&self) -> bool {
        let infos = [
            self.vcs_info.is_some(),
            self.archive_info.is_some(),
            self.dir_info.is_some(),
        ];
        infos.iter().filter(|x| **x).count() == 1
    }

    pub fn is_editable(&self) -> bool {
        self.dir_info.as_ref().is_some_and(|d| d.editable)
    }

    /// The PEP 440 direct reference pip's freeze prints (`direct_url_as_pep440_direct_reference`).
    pub fn as_direct_reference(&self, name: &str) -> String {
        let mut req = format!("{name} @ ");
        let mut fragments = Vec::new();
        if let Some(vcs) = &self.vcs_info {
            req.push_str(&format!("{}+{}@{}", vcs.vcs, self.url, vcs.commit_id));
        } else {
            req.push_str(&self.url);
            if let Some(hash) = self.archive_info.as_ref().and_then(|a| a.hash.as_ref()) {
                fragments.push(hash.clone());
            }
        }
        if let Some(sub) = &self.subdirectory {
            fragments.push(format!("subdirectory={sub}"));
        }
        if !fragments.is_empty() {
            req.push('#');
            req.push_str(&fragments.join("&"));
        }
        req
    }
}

/// `file:///a%20b` → `/a b`; `None` for anything that is not a local file URL.
pub fn file_url_to_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("file://")?;
    let path = rest.strip_prefix("localhost").unwrap_or(rest);
    let decoded = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .ok()?;
    Some(PathBuf::from(decoded.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_reference_matches_pip() {
        let du = DirectUrl {
            url: "https://example.org/x.tar.gz".into(),
            subdirectory: Some("sub".into()),
            vcs_info: None,
            archive_info: Some(ArchiveInfo {
                hash: Some("sha256=abc".into()),
                hashes: None,
            }),
            dir_info: None,
        };
        assert_eq!(
            du.as_direct_reference("x"),
            "x @ https://example.org/x.tar.gz#sha256=abc&subdirectory=sub"
        );
        let vcs = DirectUrl {
            url: "https://example.org/r.git".into(),
            subdirectory: None,
            vcs_info: Some(VcsInfo {
                vcs: "git".into(),
                commit_id: "deadbeef".into(),
                requested_revision: None,
            }),
            archive_info: None,
            dir_info: None,
        };
        assert_eq!(
            vcs.as_direct_reference("r"),
            "r @ git+https://example.org/r.git@deadbeef"
        );
    }

    #[test]
    fn file_urls_decode() {
        assert_eq!(
            file_url_to_path("file:///tmp/a%20b").unwrap(),
            PathBuf::from("/tmp/a b")
        );
        assert!(file_url_to_path("https://x").is_none());
    }
}
