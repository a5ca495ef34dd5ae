//! The documentation's links hold: every relative link and `#anchor` in `README.md`,
//! `docs/*.md`, `bench/README.md` and `samples/collab/README.md` points at a file that exists in
//! the repository and, for an anchor, at a heading that exists (GitHub's heading ids); and the
//! README stays a front door of at most 200 lines.
//!
//! Links are `[text](target)`, `![alt](target)` and reference definitions `[label]: target`;
//! `http(s)://…` and `mailto:` targets are not checked, nor anything inside fenced code blocks
//! or inline code. Standard library only: `cargo test --locked --test docs_links`.

use std::collections::HashMap;
use std::fs;
use std::path::{Component, Path, PathBuf};

/// The README is the front door; the manual is in docs/.
const README_MAX_LINES: usize = 200;

/// The checked files, relative to the repository root (plus every `docs/*.md`).
const CHECKED: &[&str] = &["README.md", "bench/README.md", "samples/collab/README.md"];

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `README.md`, the other listed files and every markdown file in `docs/`, sorted.
fn documentation(root: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = CHECKED.iter().map(|f| root.join(f)).collect();
    let docs = fs::read_dir(root.join("docs")).expect("docs/ exists");
    let mut pages: Vec<PathBuf> = docs
        .map(|entry| entry.expect("docs/ entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    pages.sort();
    assert!(!pages.is_empty(), "docs/ has no markdown page");
    files.extend(pages);
    files
}

#[test]
fn readme_is_at_most_200_lines() {
    let text = fs::read_to_string(repository().join("README.md")).expect("README.md");
    let lines = text.lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines; the front door keeps to {README_MAX_LINES} (move detail into docs/)"
    );
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let root = repository();
    let mut problems = Vec::new();
    let mut checked = 0;
    for file in documentation(&root) {
        let text = fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        checked += links(&text).len();
        problems.extend(check_file(&root, &file, &text));
    }
    assert!(
        checked > 50,
        "only {checked} links found: is the link parser broken?"
    );
    assert!(
        problems.is_empty(),
        "{} broken documentation link(s):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------------
// The checker.

/// One link: the (1-based) line it is on and its destination as written.
#[derive(Debug, PartialEq, Eq)]
struct Link {
    line: usize,
    target: String,
}

/// Every problem with the links of `file` (whose text is `text`), one line each.
fn check_file(root: &Path, file: &Path, text: &str) -> Vec<String> {
    let shown = file
        .strip_prefix(root)
        .unwrap_or(file)
        .display()
        .to_string();
    let mut problems = Vec::new();
    let mut anchors_of: HashMap<PathBuf, Vec<String>> = HashMap::new();
    for link in links(text) {
        if let Err(reason) = check_link(root, file, text, &link.target, &mut anchors_of) {
            problems.push(format!("{shown}:{}: ({}) {reason}", link.line, link.target));
        }
    }
    problems
}

fn check_link(
    root: &Path,
    file: &Path,
    text: &str,
    target: &str,
    anchors_of: &mut HashMap<PathBuf, Vec<String>>,
) -> Result<(), String> {
    let lower = target.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("mailto:")
    {
        return Ok(());
    }
    if target.is_empty() {
        return Err("empty link target".into());
    }
    if target.contains("://") {
        return Err("a URL scheme other than http(s) or mailto".into());
    }
    let (path, anchor) = match target.split_once('#') {
        Some((path, anchor)) => (path, Some(anchor)),
        None => (target, None),
    };
    let path = percent_decode(path.split_once('?').map_or(path, |(p, _)| p));
    let resolved = if path.is_empty() {
        file.to_path_buf()
    } else if path.starts_with('/') {
        return Err("absolute path: links must be relative to the linking file".into());
    } else {
        normalize(&file.parent().expect("a file has a folder").join(&path))
    };
    if !resolved.starts_with(root) {
        return Err("points outside the repository".into());
    }
    if !resolved.exists() {
        return Err(format!(
            "no such file: {}",
            resolved.strip_prefix(root).unwrap_or(&resolved).display()
        ));
    }
    let Some(anchor) = anchor else { return Ok(()) };
    let is_markdown = resolved.extension().is_some_and(|ext| ext == "md");
    if !is_markdown {
        // GitHub's line anchors (#L10, #L10-L20) are fine on source files.
        return if is_line_anchor(anchor) {
            Ok(())
        } else {
            Err("an anchor into a file that is not markdown".into())
        };
    }
    let anchors = anchors_of.entry(resolved.clone()).or_insert_with(|| {
        if resolved == file {
            anchors(text)
        } else {
            anchors(&fs::read_to_string(&resolved).unwrap_or_default())
        }
    });
    if anchors.iter().any(|a| a == anchor) {
        Ok(())
    } else {
        Err(format!(
            "no heading with anchor #{anchor} in {} (has: {})",
            resolved.strip_prefix(root).unwrap_or(&resolved).display(),
            anchors.join(", ")
        ))
    }
}

/// `a/./b/../c` → `a/c`, without touching the file system (so a missing file stays reportable).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn is_line_anchor(anchor: &str) -> bool {
    let line = |s: &str| {
        s.strip_prefix('L')
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    match anchor.split_once('-') {
        Some((a, b)) => line(a) && line(b),
        None => line(anchor),
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        if let (b'%', Some(byte)) = (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The lines outside fenced code blocks, with their 1-based numbers.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut lines = Vec::new();
    let mut fence: Option<(char, usize)> = None;
    for (i, line) in text.lines().enumerate() {
        let marker = fence_marker(line);
        match (fence, marker) {
            (None, Some((ch, len, _))) => fence = Some((ch, len)),
            (None, None) => lines.push((i + 1, line)),
            (Some((ch, len)), Some((c, l, rest_blank))) if c == ch && l >= len && rest_blank => {
                fence = None;
            }
            (Some(_), _) => {}
        }
    }
    lines
}

/// A fence line: up to three spaces, then three or more backticks or tildes. Gives the fence
/// character, its length, and whether nothing but blanks follows (a closing fence's condition).
fn fence_marker(line: &str) -> Option<(char, usize, bool)> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    if indent > 3 {
        return None;
    }
    let rest = &line[indent..];
    let ch = rest.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let len = rest.chars().take_while(|c| *c == ch).count();
    (len >= 3).then(|| (ch, len, rest[len..].trim().is_empty()))
}

/// The line with its inline code spans blanked out (a span is a run of backticks up to the next
/// run of the same length; an unclosed run is literal text).
fn without_code_spans(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '`' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|c| **c == '`').count();
        let mut j = i + run;
        let mut closed = None;
        while j < chars.len() {
            if chars[j] == '`' {
                let other = chars[j..].iter().take_while(|c| **c == '`').count();
                if other == run {
                    closed = Some(j + other);
                    break;
                }
                j += other;
            } else {
                j += 1;
            }
        }
        match closed {
            Some(end) => {
                out.push(' ');
                i = end;
            }
            None => {
                out.extend(&chars[i..i + run]);
                i += run;
            }
        }
    }
    out
}

/// Every link destination outside code: inline links and images `](target)`, and reference
/// definitions `[label]: target`.
fn links(text: &str) -> Vec<Link> {
    let mut found = Vec::new();
    for (number, line) in prose_lines(text) {
        let line = without_code_spans(line);
        if let Some(target) = reference_definition(&line) {
            found.push(Link {
                line: number,
                target,
            });
            continue;
        }
        let mut rest = line.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            if let Some((target, used)) = destination(after) {
                found.push(Link {
                    line: number,
                    target,
                });
                rest = &after[used..];
            } else {
                rest = after;
            }
        }
    }
    found
}

/// `[label]: target` at the start of a line (up to three spaces in).
fn reference_definition(line: &str) -> Option<String> {
    let trimmed = line.trim_start_matches(' ');
    if line.len() - trimmed.len() > 3 || !trimmed.starts_with('[') || trimmed.starts_with("[^") {
        return None;
    }
    let close = trimmed.find("]:")?;
    if close < 2 {
        return None;
    }
    let target = trimmed[close + 2..].split_whitespace().next()?;
    Some(
        target
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_string(),
    )
}

/// The destination at the start of `text` (what follows `](`): `<…>`, or up to the closing
/// parenthesis (balanced) or the first blank (a title follows). Gives it and the bytes used.
fn destination(text: &str) -> Option<(String, usize)> {
    let start = text.len() - text.trim_start().len();
    let text_from = &text[start..];
    if let Some(inner) = text_from.strip_prefix('<') {
        let end = inner.find('>')?;
        return Some((inner[..end].to_string(), start + 1 + end + 1));
    }
    let mut depth = 0usize;
    for (i, c) in text_from.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return Some((text_from[..i].to_string(), start + i + 1)),
            ')' => depth -= 1,
            c if c.is_whitespace() => {
                // A title: the destination ends here; the link must still close on this line.
                return text_from[i..]
                    .find(')')
                    .map(|close| (text_from[..i].to_string(), start + i + close + 1));
            }
            _ => {}
        }
    }
    None
}

/// The anchors GitHub gives the headings of a markdown text, in order.
fn anchors(text: &str) -> Vec<String> {
    let mut occurrences: HashMap<String, usize> = HashMap::new();
    let mut anchors = Vec::new();
    for (_, line) in prose_lines(text) {
        let Some(heading) = atx_heading(line) else {
            continue;
        };
        let original = slug(&heading_text(heading));
        let mut anchor = original.clone();
        while occurrences.contains_key(&anchor) {
            let count = occurrences.get_mut(&original).expect("counted");
            *count += 1;
            anchor = format!("{original}-{count}");
        }
        occurrences.insert(anchor.clone(), 0);
        anchors.push(anchor);
    }
    anchors
}

/// The text of an ATX heading (`# …` to `###### …`, up to three spaces in), without a closing
/// run of `#`.
fn atx_heading(line: &str) -> Option<&str> {
    let trimmed = line.trim_start_matches(' ');
    if line.len() - trimmed.len() > 3 {
        return None;
    }
    let level = trimmed.chars().take_while(|c| *c == '#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = &trimmed[level..];
    if !(rest.is_empty() || rest.starts_with(' ') || rest.starts_with('\t')) {
        return None;
    }
    let rest = rest.trim();
    let without_closing = rest.trim_end_matches('#');
    Some(
        if without_closing.is_empty() || without_closing.ends_with(' ') {
            without_closing.trim_end()
        } else {
            rest
        },
    )
}

/// A heading's text as GitHub renders it, for its anchor: links and images give their text.
fn heading_text(heading: &str) -> String {
    let mut out = String::new();
    let mut rest = heading;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find("](").map(|c| open + c) else {
            break;
        };
        let Some((_, used)) = destination(&rest[close + 2..]) else {
            break;
        };
        let before = rest[..open].strip_suffix('!').unwrap_or(&rest[..open]);
        out.push_str(before);
        out.push_str(&rest[open + 1..close]);
        rest = &rest[close + 2 + used..];
    }
    out.push_str(rest);
    out
}

/// GitHub's heading id (github-slugger): lower case; letters, digits, `-` and `_` kept, each
/// space becomes `-`, everything else is dropped.
fn slug(text: &str) -> String {
    text.trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The checker's own tests: it must find what is broken, and only that.

#[test]
fn slugs_are_githubs() {
    let cases = [
        ("Quick start", "quick-start"),
        (
            "Using it from a Fluid app (`@fluidframework/azure-client` 2.x)",
            "using-it-from-a-fluid-app-fluidframeworkazure-client-2x",
        ),
        (
            "Easy Auth (`AUTH_MODE=easyauth`)",
            "easy-auth-auth_modeeasyauth",
        ),
        ("`deploy/deploy`", "deploydeploy"),
        (
            "Protocol mode: why forwarding",
            "protocol-mode-why-forwarding",
        ),
        ("What was validated, and how", "what-was-validated-and-how"),
        (
            "Self-hosted Fluid (Routerlicious)",
            "self-hosted-fluid-routerlicious",
        ),
        ("Caching and outages", "caching-and-outages"),
    ];
    for (heading, anchor) in cases {
        assert_eq!(slug(&heading_text(heading)), anchor, "{heading}");
    }
    assert_eq!(
        heading_text("See [the docs](docs/x.md) now"),
        "See the docs now"
    );
    assert_eq!(
        anchors("# A\n## A\n### A ##\n```\n# A\n```\n## A-1\n"),
        ["a", "a-1", "a-2", "a-1-1"]
    );
}

#[test]
fn percent_escapes_decode() {
    assert_eq!(percent_decode("two%20windows.png%"), "two windows.png%");
    assert_eq!(percent_decode("%zz%é"), "%zz%é");
}

#[test]
fn links_outside_code_are_found() {
    let text = "See [a](a.md), ![b](img/b.png \"title\") and `[c](c.md)`.\n\
                ```md\n[d](d.md)\n```\n\
                ~~~\n[e](e.md)\n~~~\n\
                [f]: f.md#x\n\
                [g](<with space.md>) [h](h.md#y) [i](https://example.com) (j)\n";
    let found = links(text);
    let found: Vec<(usize, &str)> = found.iter().map(|l| (l.line, l.target.as_str())).collect();
    assert_eq!(
        found,
        [
            (1, "a.md"),
            (1, "img/b.png"),
            (8, "f.md#x"),
            (9, "with space.md"),
            (9, "h.md#y"),
            (9, "https://example.com"),
        ]
    );
}

#[test]
fn broken_links_and_anchors_are_reported() {
    let root = std::env::temp_dir().join(format!("docs_links_{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(root.join("docs")).expect("temp docs/");
    fs::write(root.join("src.rs"), "fn main() {}\n").expect("src.rs");
    fs::write(root.join("docs/b.md"), "# B page\n\n## Settings\n").expect("b.md");
    let a = "# A\n\n## Here\n\
             [ok](docs/b.md) [ok](docs/b.md#settings) [ok](#here) [ok](src.rs#L1) [ok](docs/)\n\
             [bad](docs/missing.md)\n\
             [bad](docs/b.md#nowhere)\n\
             [bad](#not-here)\n\
             [bad](src.rs#main)\n\
             [bad](../outside.md)\n\
             ```\n[ignored](docs/missing.md)\n```\n";
    fs::write(root.join("README.md"), a).expect("README.md");

    let problems = check_file(&root, &root.join("README.md"), a);
    let _ = fs::remove_dir_all(&root);
    let lines: Vec<&str> = problems
        .iter()
        .map(|p| p.split_once(' ').map_or(p.as_str(), |(at, _)| at))
        .collect();
    assert_eq!(
        lines,
        [
            "README.md:5:",
            "README.md:6:",
            "README.md:7:",
            "README.md:8:",
            "README.md:9:"
        ],
        "{problems:#?}"
    );
    assert!(
        problems[0].contains("no such file: docs/missing.md"),
        "{}",
        problems[0]
    );
    assert!(
        problems[1].contains("no heading with anchor #nowhere"),
        "{}",
        problems[1]
    );
    assert!(problems[2].contains("#not-here"), "{}", problems[2]);
    assert!(problems[3].contains("not markdown"), "{}", problems[3]);
    assert!(
        problems[4].contains("outside the repository"),
        "{}",
        problems[4]
    );
}
