//! Two rules of ARCHITECTURE.md, checked on the source of the library
//! crates (`crates/{store,formats,manifest,pack,datasets,server,slice}/src`):
//!
//! * their message strings name no command-line flag: no string literal
//!   holds `--` followed by a letter (the CLI adds its flags as context);
//! * they read no environment variable outside a function named `from_env`.
//!
//! Comments and `#[cfg(test)]` items (and the files of `#[cfg(test)]`
//! modules) are left out. The source is read with a small Rust lexer:
//! comments, strings (raw, byte and C strings too), char literals and
//! lifetimes are told apart, so a `--` in a comment or a `"` in a char
//! literal cannot fool it. Every offender is listed as `file:line`.

use std::fmt;
use std::path::{Path, PathBuf};

/// The library crates: everything but the binary and this crate.
const LIBRARIES: [&str; 7] = [
    "store", "formats", "manifest", "pack", "datasets", "server", "slice",
];

#[test]
fn library_messages_name_no_command_line_flag() {
    let offenders = scan_libraries(flag_mentions);
    assert!(
        offenders.is_empty(),
        "{} library string(s) name a command-line flag; the library says what is wrong \
         and the CLI adds its flag as context:\n{}",
        offenders.len(),
        list(&offenders)
    );
}

#[test]
fn libraries_read_the_environment_only_in_from_env() {
    let offenders = scan_libraries(environment_reads);
    assert!(
        offenders.is_empty(),
        "{} environment read(s) outside a `fn from_env`:\n{}",
        offenders.len(),
        list(&offenders)
    );
}

/// The scanner itself finds what the two rules forbid, and nothing in
/// comments, tests, char literals or `from_env`.
#[test]
fn the_scanner_finds_offenders_and_only_them() {
    let src = r####"
//! Docs may say --profile.
/// So may item docs: --endpoint.
fn message() -> String {
    let q = '"'; let _e = '\''; // quotes in char literals open no string
    let _l: &'static str = "a lifetime is no char literal";
    /* block comments /* nest */ and say "--hidden" */
    format!("use --single-writer {q}")
}
#[error("bad key (see --date-key)")]
struct E;
const RAW: &str = r#"raw "--raw-flag" text"#;
const BYTES: &[u8] = b"--bytes";
const SQL: &str = "-- a SQL comment, and a range 1--2";
fn from_env() -> Self {
    let v = std::env::var("OK_HERE");
    Self { v, s: "--inside-from-env" }
}
fn elsewhere() {
    let _ = std::env::var_os("NOT_HERE");
    let _ = env!("CARGO_PKG_VERSION");
    let _ = option_env!("MY_SETTING");
    dotenvy::dotenv().ok();
}
use std::env::vars;
#[cfg(test)]
mod tests {
    fn t() { let _ = std::env::var("IN_TESTS"); let _ = "--in-tests"; }
}
#[cfg(test)]
fn helper() { let _ = "--test-helper"; }
#[cfg(test)]
mod more_tests;
fn after() -> &'static str { "multi
line --second-line" }
"####;
    let file = Path::new("lib.rs");
    let tokens = lex(src);
    let flags: Vec<String> = flag_mentions(file, &tokens)
        .into_iter()
        .map(|o| format!("{}: {}", o.line, o.text))
        .collect();
    assert_eq!(
        flags,
        [
            "8: \"use --single-writer {q}\"",
            "10: \"bad key (see --date-key)\"",
            "12: r#\"raw \"--raw-flag\" text\"#",
            "13: b\"--bytes\"",
            "17: \"--inside-from-env\"",
            "35: \"multi\nline --second-line\"",
        ]
    );
    let env: Vec<String> = environment_reads(file, &tokens)
        .into_iter()
        .map(|o| format!("{}: {}", o.line, o.text))
        .collect();
    assert_eq!(
        env,
        [
            "20: env::var_os",
            "22: option_env!(\"MY_SETTING\")",
            "23: dotenvy",
            "25: env::vars",
        ]
    );
    assert_eq!(
        test_module_files(file, &tokens),
        [PathBuf::from("more_tests.rs"), PathBuf::from("more_tests")]
    );
}

// ---------------------------------------------------------------------------
// The rules.

/// One forbidden thing at one place.
struct Offender {
    file: PathBuf,
    line: usize,
    text: String,
}

impl fmt::Display for Offender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.text)
    }
}

fn list(offenders: &[Offender]) -> String {
    offenders
        .iter()
        .map(|o| format!("  {o}\n"))
        .collect::<String>()
}

/// String literals with `--` followed by a letter, outside test items.
fn flag_mentions(file: &Path, tokens: &[Token]) -> Vec<Offender> {
    let mut out = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let Kind::Str(body) = &t.kind else { continue };
        if in_test_item(tokens, i) {
            continue;
        }
        let bytes = body.as_bytes();
        let hit = (0..bytes.len().saturating_sub(2))
            .find(|&k| &bytes[k..k + 2] == b"--" && bytes[k + 2].is_ascii_alphabetic());
        if let Some(k) = hit {
            out.push(Offender {
                file: file.to_path_buf(),
                line: t.line + body[..k].matches('\n').count(),
                text: t.text.clone(),
            });
        }
    }
    out
}

/// Reads of environment variables outside `fn from_env` and test items:
/// `env::var`, `env::var_os`, `env::vars`, `env::vars_os`, `dotenvy`, and
/// `env!` / `option_env!` of anything but cargo's own `CARGO_*` build
/// variables (a package's version is not configuration).
fn environment_reads(file: &Path, tokens: &[Token]) -> Vec<Offender> {
    let allowed = from_env_bodies(tokens);
    let mut out = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let text = match &t.kind {
            Kind::Ident(id) if id == "dotenvy" => Some("dotenvy".to_string()),
            Kind::Ident(id) if id == "env" => {
                match (tokens.get(i + 1), tokens.get(i + 2), tokens.get(i + 3)) {
                    (
                        Some(p),
                        Some(Token {
                            kind: Kind::Ident(f),
                            ..
                        }),
                        _,
                    ) if p.is_punct("::")
                        && matches!(f.as_str(), "var" | "var_os" | "vars" | "vars_os") =>
                    {
                        Some(format!("env::{f}"))
                    }
                    _ => macro_read(tokens, i),
                }
            }
            Kind::Ident(id) if id == "option_env" => macro_read(tokens, i),
            _ => None,
        };
        let Some(text) = text else { continue };
        if allowed.iter().any(|r| r.contains(&i)) || in_test_item(tokens, i) {
            continue;
        }
        out.push(Offender {
            file: file.to_path_buf(),
            line: t.line,
            text,
        });
    }
    out
}

/// `env!("X")` or `option_env!("X")` at `i`, unless `X` is a `CARGO_*` variable.
fn macro_read(tokens: &[Token], i: usize) -> Option<String> {
    let bang = tokens.get(i + 1)?;
    let open = tokens.get(i + 2)?;
    if !(bang.is_punct("!") && open.is_punct("(")) {
        return None;
    }
    match tokens.get(i + 3).map(|t| &t.kind) {
        Some(Kind::Str(name)) if name.starts_with("CARGO_") => None,
        Some(Kind::Str(_)) => Some(format!("{}!({})", tokens[i].text, tokens[i + 3].text)),
        _ => Some(format!("{}!(…)", tokens[i].text)),
    }
}

// ---------------------------------------------------------------------------
// Items: test items, `from_env` bodies, test module files.

/// Token ranges of test items: whatever follows a `#[cfg(test)]` (or a
/// `cfg(all(test, …))`) attribute up to the end of that item.
fn test_items(tokens: &[Token]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if let Some(after) = cfg_test_attribute(tokens, i) {
            let end = item_end(tokens, after);
            out.push(i..end);
            i = end;
        } else {
            i += 1;
        }
    }
    out
}

fn in_test_item(tokens: &[Token], i: usize) -> bool {
    // Files are small: recomputing per query keeps the code simple.
    test_items(tokens).iter().any(|r| r.contains(&i))
}

/// If a `#[cfg(…)]` attribute that enables only under `test` starts at `i`,
/// the index after it.
fn cfg_test_attribute(tokens: &[Token], i: usize) -> Option<usize> {
    if !(tokens[i].is_punct("#") && tokens.get(i + 1)?.is_punct("[")) {
        return None;
    }
    if !tokens.get(i + 2)?.is_ident("cfg") {
        return None;
    }
    let close = matching(tokens, i + 1)?;
    let inner = &tokens[i + 3..close];
    let test = inner.iter().any(|t| t.is_ident("test"));
    let negated = inner.iter().any(|t| t.is_ident("not") || t.is_ident("any"));
    (test && !negated).then_some(close + 1)
}

/// The index after the item starting at `i`: its `;` or its closing `}`
/// at nesting depth zero (further attributes are part of the item).
fn item_end(tokens: &[Token], mut i: usize) -> usize {
    while i < tokens.len() {
        let t = &tokens[i];
        if t.is_punct(";") {
            return i + 1;
        }
        if t.is_punct("{") || t.is_punct("(") || t.is_punct("[") {
            let Some(close) = matching(tokens, i) else {
                return tokens.len();
            };
            if t.is_punct("{") {
                return close + 1;
            }
            i = close + 1;
            continue;
        }
        i += 1;
    }
    tokens.len()
}

/// The bodies of every `fn from_env`, as token ranges.
fn from_env_bodies(tokens: &[Token]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    for i in 0..tokens.len() {
        if tokens[i].is_ident("fn") && tokens.get(i + 1).is_some_and(|t| t.is_ident("from_env")) {
            // A declaration without a body (`fn from_env() -> Self;`) has none.
            let Some(open) = (i + 2..tokens.len())
                .find(|&k| tokens[k].is_punct("{") || tokens[k].is_punct(";"))
                .filter(|&k| tokens[k].is_punct("{"))
            else {
                continue;
            };
            let close = matching(tokens, open).unwrap_or(tokens.len());
            out.push(open..close);
        }
    }
    out
}

/// The paths (relative to the file's module folder) of `#[cfg(test)] mod x;`
/// modules: `x.rs` and the folder `x`.
fn test_module_files(file: &Path, tokens: &[Token]) -> Vec<PathBuf> {
    let dir = module_dir(file);
    let mut out = Vec::new();
    for r in test_items(tokens) {
        let item = &tokens[r.clone()];
        let Some(m) = item.iter().position(|t| t.is_ident("mod")) else {
            continue;
        };
        if let (
            Some(Token {
                kind: Kind::Ident(name),
                ..
            }),
            Some(semi),
        ) = (item.get(m + 1), item.get(m + 2))
        {
            if semi.is_punct(";") {
                out.push(dir.join(format!("{name}.rs")));
                out.push(dir.join(name));
            }
        }
    }
    out
}

/// The folder a file's `mod x;` declarations live in.
fn module_dir(file: &Path) -> PathBuf {
    let parent = file.parent().unwrap_or(Path::new("")).to_path_buf();
    match file.file_name().and_then(|n| n.to_str()) {
        Some("lib.rs" | "main.rs" | "mod.rs") => parent,
        _ => parent.join(file.file_stem().unwrap_or_default()),
    }
}

/// The index of the bracket closing the one at `open`.
fn matching(tokens: &[Token], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (k, t) in tokens.iter().enumerate().skip(open) {
        if t.is_punct("{") || t.is_punct("(") || t.is_punct("[") {
            depth += 1;
        } else if t.is_punct("}") || t.is_punct(")") || t.is_punct("]") {
            depth -= 1;
            if depth == 0 {
                return Some(k);
            }
        }
    }
    None
}

// ---------------------------------------------------------------------------
// Walking the crates.

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `rule` over every `.rs` file under each library's `src`, skipping the
/// files of test modules; offenders named relative to the workspace.
fn scan_libraries(rule: fn(&Path, &[Token]) -> Vec<Offender>) -> Vec<Offender> {
    let root = workspace();
    let mut out = Vec::new();
    for krate in LIBRARIES {
        let src = root.join("crates").join(krate).join("src");
        assert!(src.is_dir(), "{} is missing", src.display());
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        files.sort();
        let mut excluded: Vec<PathBuf> = Vec::new();
        for file in &files {
            let text = std::fs::read_to_string(file)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
            let tokens = lex(&text);
            excluded.extend(test_module_files(file, &tokens));
            let shown = file.strip_prefix(&root).unwrap_or(file);
            if excluded.iter().any(|x| file.starts_with(x)) {
                continue;
            }
            out.extend(rule(shown, &tokens));
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("cannot list a folder entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

// ---------------------------------------------------------------------------
// A Rust lexer, just enough for the rules: identifiers, punctuation, string
// literals (with their text) and their lines; comments are dropped.

#[derive(Debug)]
enum Kind {
    Ident(String),
    /// The contents of a string literal (escapes left as written).
    Str(String),
    Punct(&'static str),
    /// Numbers, char literals, lifetimes: nothing the rules look at.
    Other,
}

#[derive(Debug)]
struct Token {
    kind: Kind,
    /// The line the token starts on (1-based).
    line: usize,
    /// The token as written.
    text: String,
}

impl Token {
    fn is_punct(&self, p: &str) -> bool {
        matches!(self.kind, Kind::Punct(q) if q == p)
    }

    fn is_ident(&self, name: &str) -> bool {
        matches!(&self.kind, Kind::Ident(id) if id == name)
    }
}

fn lex(src: &str) -> Vec<Token> {
    let chars: Vec<char> = src.chars().collect();
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let text = |from: usize, to: usize| chars[from..to].iter().collect::<String>();
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let start = i;
        let start_line = line;
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if chars[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if let Some((body_start, body_end, end)) = string_at(&chars, i) {
            let body = text(body_start, body_end);
            line += body.matches('\n').count();
            tokens.push(Token {
                kind: Kind::Str(body),
                line: start_line,
                text: text(start, end),
            });
            i = end;
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{1F600}') or a lifetime ('a).
            i = if next == Some('\\') {
                // Past the backslash and the escaped character (maybe a quote).
                let mut k = i + 3;
                while k < chars.len() && chars[k] != '\'' {
                    k += 1;
                }
                k + 1
            } else if chars.get(i + 2) == Some(&'\'') {
                i + 3
            } else {
                let mut k = i + 1;
                while k < chars.len() && (chars[k].is_alphanumeric() || chars[k] == '_') {
                    k += 1;
                }
                k
            };
            tokens.push(Token {
                kind: Kind::Other,
                line: start_line,
                text: text(start, i),
            });
        } else if c.is_alphabetic() || c == '_' {
            if c == 'r' && next == Some('#') {
                i += 2; // a raw identifier, r#type
            }
            let from = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(Token {
                kind: Kind::Ident(text(from, i)),
                line: start_line,
                text: text(start, i),
            });
        } else if c.is_ascii_digit() {
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.')
            {
                // `0..n` is a range, not a number with two points.
                if chars[i] == '.' && chars.get(i + 1) == Some(&'.') {
                    break;
                }
                i += 1;
            }
            tokens.push(Token {
                kind: Kind::Other,
                line: start_line,
                text: text(start, i),
            });
        } else {
            let punct: &'static str = match (c, next) {
                (':', Some(':')) => "::",
                ('#', _) => "#",
                ('!', _) => "!",
                ('(', _) => "(",
                (')', _) => ")",
                ('[', _) => "[",
                (']', _) => "]",
                ('{', _) => "{",
                ('}', _) => "}",
                (';', _) => ";",
                _ => "",
            };
            i += punct.len().max(1);
            tokens.push(Token {
                kind: Kind::Punct(punct),
                line: start_line,
                text: text(start, i),
            });
        }
    }
    tokens
}

/// If a string literal starts at `i` (`"…"`, `b"…"`, `c"…"`, `r#"…"#`,
/// `br"…"`, `cr"…"`): the start and end of its contents and the index after it.
fn string_at(chars: &[char], i: usize) -> Option<(usize, usize, usize)> {
    let mut k = i;
    // The prefix must start a token: `xb"` is an identifier then a string.
    if i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_') {
        return None;
    }
    if matches!(chars.get(k), Some('b' | 'c')) {
        k += 1;
    }
    let raw = chars.get(k) == Some(&'r');
    if raw {
        k += 1;
    }
    let mut hashes = 0;
    while raw && chars.get(k) == Some(&'#') {
        hashes += 1;
        k += 1;
    }
    if chars.get(k) != Some(&'"') {
        return None;
    }
    let body_start = k + 1;
    let mut j = body_start;
    while j < chars.len() {
        match chars[j] {
            '\\' if !raw => j += 2,
            '"' if (1..=hashes).all(|h| chars.get(j + h) == Some(&'#')) => {
                return Some((body_start, j, j + 1 + hashes));
            }
            _ => j += 1,
        }
    }
    Some((body_start, chars.len(), chars.len()))
}
