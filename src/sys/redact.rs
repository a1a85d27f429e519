//! Credentials out of every URL pyctl writes, prints or logs, as pip shows them: the password of
//! `https://user:TOKEN@host` becomes `****` (`user:****@host`), and a user name alone, which is
//! how tokens are often given (`https://TOKEN@host`), becomes `****@host`.
//!
//! URLs are found anywhere in a string (`--index-url=URL`, `-iURL`, `name @ URL`, a VCS URL,
//! free text): every `://` starts an authority that ends at the first `/`, `?`, `#`, white space
//! or quote (RFC 3986 section 3.2: userinfo never holds those unencoded), and a userinfo is what
//! comes before its last `@`.

use std::borrow::Cow;

const MASK: &str = "****";

/// `text` with the userinfo of every URL in it masked. Already masked text comes back unchanged.
pub fn redact(text: &str) -> Cow<'_, str> {
    if !text.contains("://") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut changed = false;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let end = authority_end(tail);
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(userinfo_end) => {
                let userinfo = &authority[..userinfo_end];
                let masked = mask_userinfo(userinfo);
                changed |= masked != userinfo;
                out.push_str(&masked);
                out.push_str(&authority[userinfo_end..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(text)
    }
}

/// Where the authority that starts `tail` ends: at the first `/`, `?`, `#`, quote or white space.
fn authority_end(tail: &str) -> usize {
    tail.find(|c: char| matches!(c, '/' | '?' | '#' | '"' | '\'') || c.is_whitespace())
        .unwrap_or(tail.len())
}

/// `user:secret` → `user:****`; `token` → `****`.
fn mask_userinfo(userinfo: &str) -> String {
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:{MASK}"),
        None => MASK.to_string(),
    }
}

/// Every string of a list, redacted.
pub fn redact_all(items: &[String]) -> Vec<String> {
    items.iter().map(|s| redact(s).into_owned()).collect()
}

/// Whether some URL in `text` still shows credentials (the property the fuzz target checks).
pub fn shows_credentials(text: &str) -> bool {
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let tail = &rest[at + 3..];
        let end = authority_end(tail);
        if let Some(userinfo_end) = tail[..end].rfind('@') {
            let userinfo = &tail[..userinfo_end];
            let masked = match userinfo.split_once(':') {
                Some((_, secret)) => secret == MASK,
                None => userinfo == MASK,
            };
            if !masked {
                return true;
            }
        }
        rest = &tail[end..];
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_is_masked_as_pip_masks_it() {
        let cases = [
            (
                "https://alice:TOKEN@host/simple",
                "https://alice:****@host/simple",
            ),
            (
                "--index-url=https://a:b@h/s",
                "--index-url=https://a:****@h/s",
            ),
            ("-ihttps://a:b@h/s", "-ihttps://a:****@h/s"),
            ("https://TOKEN@host/simple", "https://****@host/simple"),
            (
                "pkg @ https://u:p@h/pkg-1.0-py3-none-any.whl",
                "pkg @ https://u:****@h/pkg-1.0-py3-none-any.whl",
            ),
            (
                "git+https://u:p@github.com/o/r@v1#egg=r",
                "git+https://u:****@github.com/o/r@v1#egg=r",
            ),
            ("https://u:p@ss@h/x", "https://u:****@h/x"),
            (
                "pip install -i http://a:b@h1/s --extra-index-url https://c@h2",
                "pip install -i http://a:****@h1/s --extra-index-url https://****@h2",
            ),
            ("http://host/simple", "http://host/simple"),
            ("no url here", "no url here"),
            ("https://a:****@h/", "https://a:****@h/"),
        ];
        for (input, want) in cases {
            assert_eq!(redact(input), want, "{input}");
            assert!(!shows_credentials(&redact(input)), "{input}");
        }
        assert!(shows_credentials("x https://a:b@h"));
        assert!(
            !shows_credentials("https://h/a@b"),
            "@ in the path is not userinfo"
        );
    }
}
