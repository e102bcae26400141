//! The repository stands on its own. No file in it (source, tests, scripts, documents)
//! points at a document that is not in the repository: what keygate promises is
//! `docs/CONTRACT.md`, and comments and documents point there by heading. And every link to
//! a heading of one of its Markdown files (`docs/CONTRACT.md#order-of-checks`, or
//! `(#order-of-checks)` inside a Markdown file) names a heading that exists, so that
//! renaming a heading without its links fails here.
//!
//! The files are those git knows (tracked, and untracked but not ignored), or every file
//! outside `target/` and hidden directories when this is not a git checkout. Binary files
//! (a NUL byte, or not UTF-8) are skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::process::Command;

/// Markdown file names that a file uses as data (a file it writes), not as a pointer to a
/// document: the file, and the name (spelled so that this file does not contain it).
const NOT_DOCUMENTS: &[(&str, &str)] = &[("tests/cli/scan.rs", concat!("notes", ".md"))];
/// Files that package managers write (not read for references).
const LOCK_FILES: [&str; 2] = ["package-lock.json", "Cargo.lock"];

/// The name the outside document went by, spelled so that this file does not contain it.
const OUTSIDE_DOCUMENT_NAME: &str = concat!("SP", "EC");
/// The directory the outside document lived in, spelled likewise.
const OUTSIDE_DIRECTORY: &str = concat!("/sha", "red/");
const SECTION_SIGN: char = '\u{a7}';
/// The Markdown extension, for names the self-test makes up.
const MD: &str = ".md";

fn repository_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Paths relative to `root` of the files to check.
fn repository_files(root: &Path) -> Vec<String> {
    let listed = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["ls-files", "-z", "--cached", "--others", "--exclude-standard"])
        .output()
        .ok()
        .filter(|output| output.status.success());
    match listed {
        Some(output) => String::from_utf8_lossy(&output.stdout).split('\0').filter(|path| !path.is_empty()).map(str::to_string).collect(),
        None => {
            let mut files = Vec::new();
            walk(root, root, &mut files);
            files
        }
    }
}

fn walk(root: &Path, directory: &Path, files: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(directory) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if path.is_dir() {
            let skipped = name.starts_with('.') || (directory == root && name == "target");
            if !skipped {
                walk(root, &path, files);
            }
        } else if let Ok(relative) = path.strip_prefix(root) {
            files.push(relative.to_string_lossy().replace('\\', "/"));
        }
    }
}

/// The text of a file, `None` for a binary (or vanished) one.
fn text_of(path: &Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    if bytes.contains(&0) {
        return None;
    }
    String::from_utf8(bytes).ok()
}

fn is_word_character(character: char) -> bool {
    character.is_alphanumeric() || character == '_'
}

/// Byte offsets where `word` stands as a whole word in `line` (`ignore_case`: ASCII case).
fn whole_word_matches(line: &str, word: &str, ignore_case: bool) -> Vec<usize> {
    let haystack = if ignore_case { line.to_ascii_lowercase() } else { line.to_string() };
    let needle = if ignore_case { word.to_ascii_lowercase() } else { word.to_string() };
    haystack
        .match_indices(&needle)
        .map(|(start, _)| start)
        .filter(|&start| {
            let before = line[..start].chars().next_back();
            let after = line[start + needle.len()..].chars().next();
            !before.is_some_and(is_word_character) && !after.is_some_and(is_word_character)
        })
        .collect()
}

/// Whether `word` (or its plural) is followed in `line` by a space and a digit, as in a
/// numbered reference; `unless_before`: not when that text stands shortly before it (an
/// RFC's sections are public).
fn numbered_reference(line: &str, word: &str, unless_before: Option<&str>) -> bool {
    [word.to_string(), format!("{word}s")].iter().any(|form| {
        whole_word_matches(line, form, true).into_iter().any(|start| {
            let after = &line[start + form.len()..];
            let numbered = after.strip_prefix(' ').and_then(|rest| rest.chars().next()).is_some_and(|next| next.is_ascii_digit());
            let window_start = line[..start].char_indices().rev().nth(23).map_or(0, |(index, _)| index);
            let excused = unless_before.is_some_and(|text| line[window_start..start].contains(text));
            numbered && !excused
        })
    })
}

/// What in `line` points at a document outside the repository, if anything.
fn outside_reference(line: &str) -> Option<String> {
    if !whole_word_matches(line, OUTSIDE_DOCUMENT_NAME, false).is_empty() {
        return Some(format!("names the outside document '{OUTSIDE_DOCUMENT_NAME}'; point at docs/CONTRACT.md instead"));
    }
    if let Some((index, _)) = line.match_indices(SECTION_SIGN).next() {
        let rest = line[index + SECTION_SIGN.len_utf8()..].trim_start();
        if rest.starts_with(|character: char| character.is_ascii_digit()) {
            return Some(format!("cites a numbered section with '{SECTION_SIGN}'"));
        }
    }
    if line.contains(OUTSIDE_DIRECTORY) {
        return Some(format!("names a path under '{OUTSIDE_DIRECTORY}', outside the repository"));
    }
    if numbered_reference(line, "rule", None) {
        return Some("cites a numbered rule; name it by its heading in docs/CONTRACT.md".into());
    }
    if numbered_reference(line, "section", Some("RFC")) {
        return Some("cites a numbered section of no document in the repository; link a heading instead".into());
    }
    None
}

/// GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens.
fn heading_slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|character| match character {
            ' ' => Some('-'),
            '-' | '_' => Some(character),
            _ if character.is_alphanumeric() => Some(character),
            _ => None,
        })
        .collect()
}

/// The anchors of a Markdown text: its headings' slugs (a repeated one numbered as GitHub
/// does) and explicit `<a id="...">` / `<a name="...">` targets.
fn markdown_anchors(text: &str) -> BTreeSet<String> {
    let mut anchors = BTreeSet::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut in_fence = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        let level = line.chars().take_while(|&character| character == '#').count();
        if (1..=6).contains(&level) && line[level..].starts_with(' ') {
            let slug = heading_slug(&line[level..]);
            let count = seen.entry(slug.clone()).or_insert(0);
            anchors.insert(if *count == 0 { slug.clone() } else { format!("{slug}-{count}") });
            *count += 1;
        }
        for attribute in ["id=\"", "name=\""] {
            for (index, _) in line.match_indices(&format!("<a {attribute}")) {
                let value = &line[index + 3 + attribute.len()..];
                if let Some(end) = value.find('"') {
                    anchors.insert(value[..end].to_string());
                }
            }
        }
    }
    anchors
}

/// A Markdown file named in a text, with the heading it links to, if any.
#[derive(Debug, PartialEq, Eq)]
struct MarkdownReference {
    line: usize,
    path: String,
    anchor: Option<String>,
}

fn is_path_character(character: char) -> bool {
    character.is_ascii_alphanumeric() || matches!(character, '_' | '.' | '/' | '-')
}

fn is_anchor_character(character: char) -> bool {
    character.is_alphanumeric() || matches!(character, '_' | '-')
}

/// Every Markdown file name in `text` (not in a URL), with the `#anchor` after it if there
/// is one, and in a Markdown file every `](#anchor)` link to one of its own headings (with
/// an empty path).
fn markdown_references(text: &str, is_markdown: bool) -> Vec<MarkdownReference> {
    let mut references = Vec::new();
    for (number, line) in text.lines().enumerate() {
        for (index, _) in line.match_indices(".md") {
            let after = &line[index + 3..];
            if after.starts_with(is_path_character) && !after.starts_with('.') && !after.starts_with('/') {
                continue;
            }
            let start = line[..index].char_indices().rev().take_while(|&(_, character)| is_path_character(character)).last();
            let Some((start, _)) = start else { continue };
            let path = &line[start..index + 3];
            let in_url = path.starts_with("//") || line[..start].ends_with(':');
            let bare_extension = path.starts_with('.') && !path.starts_with("./") && !path.starts_with("../");
            if in_url || bare_extension {
                continue;
            }
            let anchor = after
                .strip_prefix('#')
                .map(|rest| rest.chars().take_while(|&character| is_anchor_character(character)).collect::<String>())
                .filter(|anchor| !anchor.is_empty());
            references.push(MarkdownReference { line: number + 1, path: path.to_string(), anchor });
        }
        if is_markdown {
            for (index, _) in line.match_indices("](#") {
                let anchor: String = line[index + 3..].chars().take_while(|&character| is_anchor_character(character)).collect();
                references.push(MarkdownReference { line: number + 1, path: String::new(), anchor: Some(anchor) });
            }
        }
    }
    references
}

/// `path` joined to `base` with `.` and `..` resolved; `None` when it climbs above the root.
fn normalised(base: &Path, path: &str) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for component in base.join(path).components() {
        match component {
            Component::Normal(part) => parts.push(part.to_string_lossy().to_string()),
            Component::ParentDir => {
                parts.pop()?;
            }
            _ => {}
        }
    }
    Some(parts.join("/"))
}

/// The repository file a reference from `from` names: a path from the root or from the
/// referring file's directory, or, for a bare file name, a file of that name anywhere.
fn resolve<'a>(from: &str, reference: &str, files: &'a BTreeSet<String>) -> Option<&'a String> {
    let directory = Path::new(from).parent().unwrap_or(Path::new(""));
    let candidates = [normalised(Path::new(""), reference), normalised(directory, reference)];
    if let Some(found) = candidates.iter().flatten().find_map(|candidate| files.get(candidate)) {
        return Some(found);
    }
    if reference.contains('/') {
        return None;
    }
    files.iter().find(|file| file.rsplit('/').next() == Some(reference))
}

#[test]
fn no_file_points_outside_the_repository_and_every_heading_link_resolves() {
    let root = repository_root();
    let files: BTreeSet<String> = repository_files(&root).into_iter().filter(|file| root.join(file).is_file()).collect();
    // Lock files are written by package managers and name other projects' files (each
    // package's licence file): they are not ours to point anywhere.
    let is_lock_file = |file: &String| LOCK_FILES.iter().any(|lock| file.rsplit('/').next() == Some(*lock));
    assert!(files.contains("docs/CONTRACT.md"), "docs/CONTRACT.md is missing; the files seen: {}", files.len());
    let texts: BTreeMap<&String, String> =
        files.iter().filter(|file| !is_lock_file(file)).filter_map(|file| text_of(&root.join(file)).map(|text| (file, text))).collect();
    let mut anchors_of: BTreeMap<&String, BTreeSet<String>> = BTreeMap::new();
    let mut problems = Vec::new();
    for (file, text) in &texts {
        for (number, line) in text.lines().enumerate() {
            if let Some(problem) = outside_reference(line) {
                problems.push(format!("{file}:{}: {problem}: {}", number + 1, line.trim()));
            }
        }
        for reference in markdown_references(text, file.ends_with(".md")) {
            let name = reference.path.rsplit('/').next().unwrap_or_default();
            if NOT_DOCUMENTS.contains(&(file.as_str(), name)) {
                continue;
            }
            let target = if reference.path.is_empty() { Some(*file) } else { resolve(file, &reference.path, &files) };
            let Some(target) = target else {
                problems.push(format!("{file}:{}: names {}, which is not in the repository", reference.line, reference.path));
                continue;
            };
            let Some(anchor) = reference.anchor else { continue };
            let anchors =
                anchors_of.entry(target).or_insert_with(|| texts.get(target).map(|text| markdown_anchors(text)).unwrap_or_default());
            if !anchors.contains(&anchor) {
                problems.push(format!("{file}:{}: {target} has no heading for #{anchor}", reference.line));
            }
        }
    }
    assert!(problems.is_empty(), "{} problem(s):\n{}", problems.len(), problems.join("\n"));
}

#[test]
fn the_checks_catch_what_they_are_for() {
    let outside = [
        format!("see {OUTSIDE_DOCUMENT_NAME} section {}", 4),
        format!("// the {OUTSIDE_DOCUMENT_NAME}'s table"),
        format!("as {SECTION_SIGN}3 says"),
        format!("read /work{OUTSIDE_DIRECTORY}notes"),
        format!("/// Rule {}, Delete: final.", 5),
        format!("(rules {}-3 of the list)", 1),
        format!("(section {}: always within 1 s)", 8),
    ];
    for line in &outside {
        assert!(outside_reference(line).is_some(), "not caught: {line}");
    }
    let fine = [
        "hop-by-hop too (RFC 9110 section 7.6.1)",
        "see docs/CONTRACT.md: the account sees every key",
        "fn rule_1_creating_needs_a_role()",
        "a SPECTRUM of rules, sections and specs",
    ];
    for line in fine {
        assert_eq!(outside_reference(line), None, "{line}");
    }

    assert_eq!(heading_slug(" Refusals before a handler, and `/metrics`"), "refusals-before-a-handler-and-metrics");
    assert_eq!(heading_slug(" Plan keys (Token Plan and Coding Plan)"), "plan-keys-token-plan-and-coding-plan");
    let anchors = markdown_anchors("# Top\n## Rules\n```\n# not a heading\n```\n## Rules\n<a id=\"explicit\"></a>\n");
    assert_eq!(anchors, ["top", "rules", "rules-1", "explicit"].into_iter().map(String::from).collect());

    // Built at run time, so that the names this test makes up are not references of this file.
    let references = markdown_references(
        &format!("see [x](docs/CONTRACT{MD}#order-of-checks) and ../DECISIONS{MD}, https://x.example/README{MD}"),
        false,
    );
    assert_eq!(
        references,
        vec![
            MarkdownReference { line: 1, path: "docs/CONTRACT.md".into(), anchor: Some("order-of-checks".into()) },
            MarkdownReference { line: 1, path: format!("../DECISIONS{MD}"), anchor: None },
        ]
    );
    let files: BTreeSet<String> = ["docs/CONTRACT.md", "docs/DECISIONS.md", "README.md"].into_iter().map(String::from).collect();
    assert_eq!(resolve("docs/PERFORMANCE.md", "CONTRACT.md", &files).map(String::as_str), Some("docs/CONTRACT.md"));
    let climbing = format!("../../../docs/DECISIONS{MD}");
    assert_eq!(resolve("crates/server/src/settings.rs", &climbing, &files).map(String::as_str), Some("docs/DECISIONS.md"));
    assert_eq!(resolve("tests/x.py", &format!("reference/README{MD}"), &files), None);
}
