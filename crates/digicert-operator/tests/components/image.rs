//! The container image's build, run for real without a Docker engine: the build
//! context is assembled from the repository as Docker assembles it (.dockerignore),
//! the Dockerfile's build stage runs in it (ARG, WORKDIR, COPY, and RUN with its
//! cache mounts), and the binary the final stage copies out of that stage must run.
//!
//! The RUN commands run with `/bin/sh -c`, as Docker runs them, on this machine: its
//! Rust toolchain stands for the `rust` image's, its cargo registry cache for the
//! registry cache mount. The build argument `CARGO_PROFILE=dev` is passed as
//! `docker build --build-arg` passes it (an environment variable of RUN), so the
//! build is a debug one. The `target/` cache mount is target/image-build/, kept
//! between runs as Docker keeps a cache mount: a second run is incremental.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn repo_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

// ----------------------------------------------------------------- .dockerignore

/// A rule of a .dockerignore: a cleaned pattern, and whether it admits again (`!`).
#[derive(Debug, PartialEq)]
struct Rule {
    pattern: String,
    admit: bool,
}

/// The rules of a .dockerignore, read as BuildKit reads them: a line starting with
/// `#` is a comment, surrounding white space and blank lines go, `!` admits again, and
/// each pattern is cleaned (Go's filepath.Clean) with a leading `/` dropped.
fn parse_dockerignore(text: &str) -> Vec<Rule> {
    let mut rules = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = if i == 0 {
            line.trim_start_matches('\u{feff}')
        } else {
            line
        };
        if line.starts_with('#') {
            continue;
        }
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (admit, pattern) = match line.strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, line),
        };
        assert!(!pattern.is_empty(), "illegal exclusion pattern: {line:?}");
        let mut pattern = clean(pattern);
        if pattern.len() > 1 && pattern.starts_with('/') {
            pattern.remove(0);
        }
        rules.push(Rule { pattern, admit });
    }
    rules
}

/// Go's filepath.Clean for `/`-separated paths.
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            part => parts.push(part),
        }
    }
    let joined = parts.join("/");
    if rooted {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".into()
    } else {
        joined
    }
}

/// Whether all of `name` matches `pattern`, as Docker's pattern matcher decides: Go's
/// filepath.Match syntax (`*` and `?` within one path element, `[...]` classes with
/// ranges and `^` negation, `\` escapes) and `**` for any number of elements.
fn glob_match(pattern: &[char], name: &[char]) -> bool {
    match pattern {
        [] => name.is_empty(),
        ['*', '*', rest @ ..] => {
            let rest = rest.strip_prefix(&['/']).unwrap_or(rest);
            // `**` at the end takes everything; elsewhere it is `(.*/)?`: nothing, or
            // anything up to a `/`.
            rest.is_empty()
                || glob_match(rest, name)
                || (0..name.len()).any(|i| name[i] == '/' && glob_match(rest, &name[i + 1..]))
        }
        ['*', rest @ ..] => (0..=name.len())
            .take_while(|&i| i == 0 || name[i - 1] != '/')
            .any(|i| glob_match(rest, &name[i..])),
        ['?', rest @ ..] => {
            matches!(name, [c, tail @ ..] if *c != '/' && glob_match(rest, tail))
        }
        ['[', rest @ ..] => {
            let (in_class, after) = class(rest, name.first().copied());
            in_class && glob_match(after, &name[1..])
        }
        ['\\', escaped, rest @ ..] => {
            matches!(name, [c, tail @ ..] if c == escaped && glob_match(rest, tail))
        }
        ['\\'] => panic!("a .dockerignore pattern ends in \\"),
        [p, rest @ ..] => matches!(name, [c, tail @ ..] if c == p && glob_match(rest, tail)),
    }
}

/// A `[...]` class (`pattern` starts after the `[`): whether `c` is in it, and the
/// pattern after the `]`. Docker refuses a malformed class; so does this.
fn class(pattern: &[char], c: Option<char>) -> (bool, &[char]) {
    let (negated, mut p) = match pattern {
        ['^', rest @ ..] => (true, rest),
        _ => (false, pattern),
    };
    let mut found = false;
    let mut first = true;
    loop {
        if let [']', rest @ ..] = p
            && !first
        {
            return (c.is_some() && found != negated, rest);
        }
        let lo = class_char(&mut p);
        let hi = match p {
            ['-', next, ..] if *next != ']' => {
                p = &p[1..];
                class_char(&mut p)
            }
            _ => lo,
        };
        found |= c.is_some_and(|c| lo <= c && c <= hi);
        first = false;
    }
}

fn class_char(p: &mut &[char]) -> char {
    let (c, rest) = match *p {
        ['\\', c, rest @ ..] => (*c, rest),
        ['\\'] | [] => panic!("an unterminated [ in a .dockerignore pattern"),
        [c, rest @ ..] => (*c, rest),
    };
    *p = rest;
    c
}

fn matches(pattern: &str, path: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let path: Vec<char> = path.chars().collect();
    glob_match(&pattern, &path)
}

/// Whether the context leaves out `path` (relative, `/`-separated), as Docker's
/// MatchesOrParentMatches decides: rules apply in order, each one that matches the
/// path or one of its parent directories sets the verdict, and rules that could not
/// change the verdict are not looked at.
fn excluded(rules: &[Rule], path: &str) -> bool {
    let parents: Vec<&str> = path.match_indices('/').map(|(i, _)| &path[..i]).collect();
    let mut excluded = false;
    for rule in rules {
        if rule.admit != excluded {
            continue;
        }
        if matches(&rule.pattern, path) || parents.iter().any(|p| matches(&rule.pattern, p)) {
            excluded = !rule.admit;
        }
    }
    excluded
}

/// Copies the build context of `dir` under `rules` into `into`: every file, symlink
/// and directory that is not left out, files with their mode and modification time
/// (Docker keeps both). A left-out directory is entered only when a `!` rule may admit
/// something in it (Docker's shortcut: it spares walking target/ and .git).
fn assemble_context(dir: &Path, rules: &[Rule], into: &Path) {
    let may_admit_below = |path: &str| {
        rules.iter().filter(|r| r.admit).any(|r| {
            r.pattern.contains(['*', '?', '[', '\\'])
                || format!("{}/", r.pattern).starts_with(&format!("{path}/"))
        })
    };
    let mut pending = vec![String::new()];
    while let Some(rel) = pending.pop() {
        for entry in std::fs::read_dir(dir.join(&rel)).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().expect("a UTF-8 file name");
            let path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let kind = entry.file_type().unwrap();
            let out = excluded(rules, &path);
            if kind.is_dir() {
                if !out {
                    std::fs::create_dir_all(into.join(&path)).unwrap();
                }
                if !out || may_admit_below(&path) {
                    pending.push(path);
                }
            } else if !out {
                copy_entry(&dir.join(&path), &into.join(&path));
            }
        }
    }
}

/// Copies a file (with its mode and modification time) or a symlink (as a symlink),
/// making its parent directories.
fn copy_entry(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    let meta = std::fs::symlink_metadata(from).unwrap();
    if meta.file_type().is_symlink() {
        std::os::unix::fs::symlink(std::fs::read_link(from).unwrap(), to).unwrap();
    } else {
        assert!(
            meta.is_file(),
            "{}: neither file nor symlink",
            from.display()
        );
        std::fs::copy(from, to).unwrap();
        let file = std::fs::File::options().write(true).open(to).unwrap();
        file.set_modified(meta.modified().unwrap()).unwrap();
    }
}

/// Copies the tree `from` (a directory: its contents) into `to`.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            copy_entry(&entry.path(), &target);
        }
    }
}

/// Every path under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(rel) = pending.pop() {
        for entry in std::fs::read_dir(dir.join(&rel)).unwrap() {
            let entry = entry.unwrap();
            let path = rel.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                pending.push(path.clone());
            }
            out.push(path.to_str().unwrap().to_string());
        }
    }
    out.sort();
    out
}

#[test]
fn dockerignore_lines_are_read_as_docker_reads_them() {
    let rules = parse_dockerignore(
        "\u{feff}# a comment\n\n  *.md  \n ! README.md\n/src/../docs/\n./a//b/\n#!kept\n \\#x\n",
    );
    let rule = |pattern: &str, admit| Rule {
        pattern: pattern.into(),
        admit,
    };
    assert_eq!(
        rules,
        [
            rule("*.md", false),
            rule("README.md", true),
            rule("docs", false),
            rule("a/b", false),
            rule("\\#x", false),
        ]
    );
    assert_eq!(clean("../a/./b/.."), "../a");
    assert_eq!(clean("/.."), "/");
    assert_eq!(clean("./"), ".");
}

#[test]
fn patterns_match_as_go_filepath_match_with_double_stars() {
    let yes = [
        ("*", "Cargo.toml"),
        ("*.rs", "main.rs"),
        ("src/*.rs", "src/main.rs"),
        ("src/?ain.rs", "src/main.rs"),
        ("src/[lm]ain.rs", "src/main.rs"),
        ("src/[a-z]ain.rs", "src/main.rs"),
        ("src/[^x]ain.rs", "src/main.rs"),
        ("\\*", "*"),
        ("**/*.rs", "main.rs"),
        ("**/*.rs", "a/b/main.rs"),
        ("src/**", "src/a/b"),
        ("**", "anything/at/all"),
        ("a/**/b", "a/b"),
        ("a/**/b", "a/x/y/b"),
    ];
    for (pattern, name) in yes {
        assert!(matches(pattern, name), "{pattern} should match {name}");
    }
    let no = [
        ("*", "src/main.rs"),
        ("*.rs", "src/main.rs"),
        ("src/*.rs", "src/a/b.rs"),
        ("src/?ain.rs", "src/ain.rs"),
        ("?", "/"),
        ("src/[^m]ain.rs", "src/main.rs"),
        ("src/[a-l]ain.rs", "src/main.rs"),
        ("\\*", "x"),
        ("src", "src2"),
        ("a/**/b", "a/x/c"),
    ];
    for (pattern, name) in no {
        assert!(!matches(pattern, name), "{pattern} should not match {name}");
    }
}

#[test]
fn the_last_matching_rule_decides_for_a_path_and_what_is_below_it() {
    let rules = parse_dockerignore("*\n!Cargo.toml\n!src/\nsrc/secret.rs\n");
    for (path, out) in [
        ("Cargo.toml", false),
        ("Cargo.lock", true),
        ("src", false),
        ("src/main.rs", false),
        ("src/a/b.rs", false),
        ("src/secret.rs", true),
        ("target/debug/x", true),
        ("srcx/main.rs", true),
    ] {
        assert_eq!(excluded(&rules, path), out, "{path}");
    }
    // Docker's documented example.
    let rules = parse_dockerignore("*.md\n!README*.md\nREADME-secret.md\n");
    for (path, out) in [
        ("CHANGES.md", true),
        ("README.md", false),
        ("README-public.md", false),
        ("README-secret.md", true),
        ("docs/x.md", false),
    ] {
        assert_eq!(excluded(&rules, path), out, "{path}");
    }
}

#[test]
fn a_context_is_assembled_from_what_the_rules_admit() {
    let repo = tempfile::tempdir().unwrap();
    for file in [
        "Cargo.toml",
        "README.md",
        "src/main.rs",
        "src/secret.rs",
        "src/a/b.rs",
        "target/debug/big",
        "docs/keep/x.md",
        "docs/drop/y.md",
    ] {
        let path = repo.path().join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, file).unwrap();
    }
    let rules = parse_dockerignore("*\n!Cargo.toml\n!src\nsrc/secret.rs\n!docs/keep/\n");
    let context = tempfile::tempdir().unwrap();
    assemble_context(repo.path(), &rules, context.path());
    assert_eq!(
        tree(context.path()),
        [
            "Cargo.toml",
            "docs",
            "docs/keep",
            "docs/keep/x.md",
            "src",
            "src/a",
            "src/a/b.rs",
            "src/main.rs",
        ]
    );
    assert_eq!(
        std::fs::read_to_string(context.path().join("src/a/b.rs")).unwrap(),
        "src/a/b.rs"
    );
}

// ----------------------------------------------------------------- the Dockerfile

/// An instruction of a Dockerfile: its keyword (upper case), its leading `--flags`,
/// and the rest of its text.
#[derive(Debug)]
struct Instruction {
    keyword: String,
    flags: Vec<String>,
    args: String,
}

/// The instructions of a Dockerfile: comment lines (also inside a continued
/// instruction) and blank lines left out, a line ending in `\` joined to the next as
/// Docker joins them (the backslash and the line break go).
fn parse_dockerfile(text: &str) -> Vec<Instruction> {
    assert!(
        !text.lines().any(|l| l.trim_start().starts_with("# escape")),
        "an escape directive: not read here"
    );
    let mut instructions = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        match line.trim_end().strip_suffix('\\') {
            Some(head) => pending.push_str(head),
            None => {
                pending.push_str(line);
                instructions.push(instruction(&std::mem::take(&mut pending)));
            }
        }
    }
    assert!(pending.trim().is_empty(), "the Dockerfile ends in a `\\`");
    instructions
}

fn instruction(text: &str) -> Instruction {
    let text = text.trim();
    let (keyword, mut rest) = text.split_at(text.find(char::is_whitespace).unwrap_or(text.len()));
    let mut flags = Vec::new();
    loop {
        let s = rest.trim_start();
        if !s.starts_with("--") {
            rest = s;
            break;
        }
        let end = s.find(char::is_whitespace).unwrap_or(s.len());
        flags.push(s[..end].to_string());
        rest = &s[end..];
    }
    assert!(!rest.contains("<<"), "a heredoc: not read here: {text}");
    Instruction {
        keyword: keyword.to_ascii_uppercase(),
        flags,
        args: rest.to_string(),
    }
}

struct Stage {
    name: Option<String>,
    instructions: Vec<Instruction>,
}

fn stages(instructions: Vec<Instruction>) -> Vec<Stage> {
    let mut stages: Vec<Stage> = Vec::new();
    for i in instructions {
        if i.keyword == "FROM" {
            assert!(i.flags.is_empty(), "FROM {:?}: not read here", i.flags);
            let words: Vec<&str> = i.args.split_whitespace().collect();
            let name = match words[..] {
                [_] => None,
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some(name.to_string()),
                _ => panic!("FROM {}: not read here", i.args),
            };
            stages.push(Stage {
                name,
                instructions: Vec::new(),
            });
        } else {
            stages
                .last_mut()
                .unwrap_or_else(|| panic!("{} before the first FROM", i.keyword))
                .instructions
                .push(i);
        }
    }
    stages
}

/// Where a container path (absolute) is in the stage's file system at `root`.
fn in_root(root: &Path, path: &Path) -> PathBuf {
    assert!(path.is_absolute(), "{}", path.display());
    root.join(path.strip_prefix("/").unwrap())
}

/// The `rust` image's CARGO_HOME: its registry cache mount is this machine's cargo
/// registry cache, which the build here uses anyway.
const RUST_IMAGE_REGISTRY: &str = "/usr/local/cargo/registry";

/// Runs `stage` as `docker build` would, with the file system of its container at
/// `root`, the build context at `context`, the `--build-arg`s `build_args`, and the
/// cache mounts kept under `caches`. Returns how long its RUN steps took.
fn run_stage(
    stage: &Stage,
    context: &Path,
    root: &Path,
    build_args: &BTreeMap<&str, &str>,
    caches: &Path,
) -> std::time::Duration {
    let declared: BTreeSet<&str> = stage
        .instructions
        .iter()
        .filter(|i| i.keyword == "ARG")
        .map(|i| i.args.split('=').next().unwrap())
        .collect();
    for name in build_args.keys() {
        assert!(
            declared.contains(name),
            "the build argument {name} is not declared by an ARG of the stage"
        );
    }
    let mut workdir = PathBuf::from("/");
    let mut args: BTreeMap<String, String> = BTreeMap::new();
    let mut ran = std::time::Duration::ZERO;
    for i in &stage.instructions {
        match i.keyword.as_str() {
            "ARG" => {
                let (name, default) = match i.args.split_once('=') {
                    Some((name, default)) => (name, Some(default)),
                    None => (i.args.as_str(), None),
                };
                assert!(
                    !name.contains(char::is_whitespace)
                        && !default.is_some_and(|d| d.contains(['"', '\'', '$'])),
                    "ARG {}: not read here",
                    i.args
                );
                if let Some(value) = build_args.get(name).copied().or(default) {
                    args.insert(name.to_string(), value.to_string());
                }
            }
            "WORKDIR" => {
                assert!(!i.args.contains('$'), "WORKDIR {}: not read here", i.args);
                workdir = workdir.join(i.args.trim());
                std::fs::create_dir_all(in_root(root, &workdir)).unwrap();
            }
            "COPY" => {
                assert!(i.flags.is_empty(), "COPY {:?}: not read here", i.flags);
                let words: Vec<&str> = i.args.split_whitespace().collect();
                assert!(
                    words.len() >= 2
                        && !i.args.starts_with('[')
                        && !i.args.contains(['*', '?', '[', '$']),
                    "COPY {}: not read here",
                    i.args
                );
                let (dest, sources) = words.split_last().unwrap();
                let dest_path = in_root(root, &workdir.join(dest));
                let into_dir = dest.ends_with('/') || sources.len() > 1 || dest_path.is_dir();
                for source in sources {
                    let from = context.join(clean(&format!("/{source}")).trim_start_matches('/'));
                    assert!(
                        from.exists(),
                        "COPY {source}: not in the build context (.dockerignore leaves it out)"
                    );
                    if from.is_dir() {
                        copy_tree(&from, &dest_path);
                    } else if into_dir {
                        copy_entry(&from, &dest_path.join(from.file_name().unwrap()));
                    } else {
                        copy_entry(&from, &dest_path);
                    }
                }
            }
            "RUN" => ran += run(i, root, &workdir, &args, caches),
            other => panic!("{other} in the build stage: not read here"),
        }
    }
    ran
}

/// A RUN step: its cache mounts in place, its command run with `/bin/sh -c` in the
/// working directory with the stage's ARGs in its environment; the mounts go after it.
fn run(
    i: &Instruction,
    root: &Path,
    workdir: &Path,
    args: &BTreeMap<String, String>,
    caches: &Path,
) -> std::time::Duration {
    // The command runs on this machine, not in the stage's file system: a path outside
    // the working directory would be this machine's.
    let absolute: Vec<&str> = i
        .args
        .split(|c: char| c.is_whitespace() || "\"';&|()".contains(c))
        .filter(|w| w.starts_with('/'))
        .collect();
    assert!(
        absolute.is_empty(),
        "RUN uses absolute paths {absolute:?}: the build here needs paths relative to WORKDIR"
    );
    let mut mounts = Vec::new();
    for flag in &i.flags {
        let spec = flag
            .strip_prefix("--mount=")
            .unwrap_or_else(|| panic!("RUN {flag}: not read here"));
        let options: BTreeMap<&str, &str> = spec
            .split(',')
            .map(|o| o.split_once('=').unwrap_or((o, "")))
            .collect();
        assert_eq!(
            options.keys().copied().collect::<Vec<_>>(),
            ["target", "type"],
            "RUN {flag}: not read here"
        );
        assert_eq!(options["type"], "cache", "RUN {flag}: not read here");
        let target = options["target"];
        if target == RUST_IMAGE_REGISTRY {
            continue;
        }
        let at = in_root(root, &workdir.join(target));
        assert!(
            !at.exists(),
            "the cache mount {target} would hide what the stage has there"
        );
        let cache = caches.join(target.trim_start_matches('/'));
        std::fs::create_dir_all(&cache).unwrap();
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&cache, &at).unwrap();
        mounts.push(at);
    }
    // Docker's environment is the image's; this machine's toolchain needs its own.
    let passed: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| {
            matches!(
                k.as_str(),
                "PATH"
                    | "HOME"
                    | "CARGO_HOME"
                    | "RUSTUP_HOME"
                    | "RUSTUP_TOOLCHAIN"
                    | "SSL_CERT_FILE"
                    | "SSL_CERT_DIR"
                    | "http_proxy"
                    | "https_proxy"
                    | "no_proxy"
                    | "HTTP_PROXY"
                    | "HTTPS_PROXY"
                    | "NO_PROXY"
            )
        })
        .collect();
    let started = Instant::now();
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(&i.args)
        .current_dir(in_root(root, workdir))
        .env_clear()
        .envs(passed)
        .envs(args)
        .output()
        .expect("/bin/sh runs");
    let took = started.elapsed();
    for at in mounts {
        std::fs::remove_file(at).unwrap();
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(40).collect();
    assert!(
        out.status.success(),
        "RUN {} failed ({}):\n{}",
        i.args,
        out.status,
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    );
    took
}

fn dockerfile_stages() -> Vec<Stage> {
    let text = std::fs::read_to_string(repo_root().join("Dockerfile")).unwrap();
    stages(parse_dockerfile(&text))
}

#[test]
fn the_dockerfile_is_read_with_its_continued_lines_and_flags() {
    let stages = stages(parse_dockerfile(
        "# syntax=docker/dockerfile:1\nFROM a AS b\nRUN --mount=type=cache,target=/t \\\n    # inside\n    echo 1 \\\n    && echo 2\nFROM c\nCOPY --from=b /x /y\n",
    ));
    assert_eq!(stages.len(), 2);
    assert_eq!(stages[0].name.as_deref(), Some("b"));
    let run = &stages[0].instructions[0];
    assert_eq!(run.keyword, "RUN");
    assert_eq!(run.flags, ["--mount=type=cache,target=/t"]);
    assert_eq!(run.args, "echo 1     && echo 2");
    assert_eq!(stages[1].name, None);
    assert_eq!(stages[1].instructions[0].flags, ["--from=b"]);
    assert_eq!(stages[1].instructions[0].args, "/x /y");
}

#[test]
fn a_plain_docker_build_is_a_release_build() {
    let stages = dockerfile_stages();
    let args: Vec<&str> = stages[0]
        .instructions
        .iter()
        .filter(|i| i.keyword == "ARG")
        .map(|i| i.args.as_str())
        .collect();
    assert_eq!(args, ["CARGO_PROFILE=release"]);
}

/// The stages that are images (they take files from a build stage), by name, each
/// with the build stage it takes from and the paths it takes.
fn image_stages(stages: &[Stage]) -> Vec<(String, String, Vec<String>)> {
    let mut images = Vec::new();
    for stage in stages {
        let mut from_stage = None;
        let mut sources = Vec::new();
        let copies: Vec<&Instruction> = stage
            .instructions
            .iter()
            .filter(|i| i.keyword == "COPY")
            .collect();
        if !copies.iter().any(|i| !i.flags.is_empty()) {
            continue; // a build stage: it copies the context
        }
        for i in copies {
            let [flag] = &i.flags[..] else {
                panic!("COPY {}: an image stage takes only from a stage", i.args)
            };
            let from = flag.strip_prefix("--from=").expect("COPY --from=STAGE");
            assert!(
                from_stage
                    .replace(from.to_string())
                    .is_none_or(|f| f == from),
                "one build stage per image"
            );
            let (source, _) = i.args.split_once(char::is_whitespace).unwrap();
            sources.push(source.to_string());
        }
        if let Some(from) = from_stage {
            let name = stage
                .name
                .clone()
                .expect("an image stage has a name (a --target)");
            images.push((name, from, sources));
        }
    }
    images
}

/// Two images, the operator (the default target: the last stage) and the simulator,
/// each from a build stage of its own, so one never carries the other's program.
#[test]
fn the_dockerfile_builds_the_operator_by_default_and_the_simulator_as_a_target() {
    let stages = dockerfile_stages();
    let images = image_stages(&stages);
    let names: Vec<(&str, &str)> = images
        .iter()
        .map(|(name, from, _)| (name.as_str(), from.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("simulator", "build-simulator"),
            ("operator", "build-operator")
        ]
    );
    assert_eq!(stages.last().unwrap().name.as_deref(), Some("operator"));
}

/// The images' builds, for real: the context .dockerignore admits, each build stage's
/// steps in it, and the binary its image takes. The operator's binary holds none of
/// the simulator (not one of its source paths), and points whoever asks for it to
/// `certcentral-sim`.
#[test]
fn the_images_build_from_their_context_and_their_binaries_run() {
    let root_dir = repo_root();
    let rules = parse_dockerignore(
        &std::fs::read_to_string(root_dir.join(".dockerignore")).expect(".dockerignore"),
    );
    let work = tempfile::tempdir().unwrap();
    let context = work.path().join("context");
    std::fs::create_dir(&context).unwrap();
    assemble_context(&root_dir, &rules, &context);

    let files = tree(&context);
    let top: BTreeSet<&str> = files.iter().map(|f| f.split('/').next().unwrap()).collect();
    // Small: what the build reads and nothing else (never target/ or the tests).
    assert_eq!(
        top.into_iter().collect::<Vec<_>>(),
        ["Cargo.lock", "Cargo.toml", "crates"],
        "the build context"
    );
    assert!(
        !files.iter().any(|f| f.contains("/tests/")),
        "no integration tests in the context"
    );

    let stages = dockerfile_stages();
    for (image, build_name, sources) in image_stages(&stages) {
        let build = stages
            .iter()
            .find(|s| s.name.as_deref() == Some(build_name.as_str()))
            .unwrap_or_else(|| panic!("no stage {build_name}"));
        let fs = work.path().join(&build_name);
        let build_args = BTreeMap::from([("CARGO_PROFILE", "dev")]);
        let took = run_stage(
            build,
            &context,
            &fs,
            &build_args,
            &root_dir.join("target/image-build"),
        );
        eprintln!("{build_name}: the RUN steps took {took:.1?}");
        let [source] = &sources[..] else {
            panic!("{image}: one binary, not {sources:?}")
        };
        let binary = in_root(&fs, Path::new(source));
        let meta = std::fs::symlink_metadata(&binary)
            .unwrap_or_else(|_| panic!("the build stage left no {source}"));
        assert!(
            meta.is_file(),
            "{source}: a file in the stage, not in a cache mount"
        );
        let program = binary.file_name().unwrap().to_str().unwrap().to_string();
        let out = Command::new(&binary)
            .arg("--version")
            .output()
            .expect("the binary runs");
        assert!(out.status.success(), "{source} --version: {}", out.status);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{program} {}\n", env!("CARGO_PKG_VERSION"))
        );
        let bytes = std::fs::read(&binary).unwrap();
        let holds = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
        match image.as_str() {
            "operator" => {
                assert_eq!(program, "digicert-operator");
                assert!(
                    !holds("certcentral-sim/src/"),
                    "the operator's binary holds simulator code"
                );
                assert!(holds("digicert-operator/src/"), "the check can see sources");
                let out = Command::new(&binary)
                    .args(["simulator", "--listen", "127.0.0.1:0"])
                    .output()
                    .unwrap();
                assert!(!out.status.success());
                let stderr = String::from_utf8_lossy(&out.stderr);
                assert!(
                    stderr.contains("certcentral-sim --listen 127.0.0.1:0"),
                    "{stderr}"
                );
            }
            "simulator" => {
                assert_eq!(program, "certcentral-sim");
                assert!(!holds("digicert-operator/src/controller/"));
            }
            other => panic!("an image stage {other} this test does not know"),
        }
    }
}
