//! The module graph of `src/` has no cycle.
//!
//! Every `.rs` file under `src/` is a node; an edge `a -> b` means `a` names an item that `b`
//! defines (in a `use` tree or as an inline path: `crate::..`, `super::..`, `self::..`, or a child
//! module's name). A name a `mod.rs` only re-exports resolves to the file that defines it, so a
//! parent that declares and re-exports its children is not a hub that ties them into a cycle.
//! `#[cfg(test)]` items are left out: tests may reach anywhere.
//!
//! `cargo test --test layering -- --nocapture` prints the layers (leaves first), the order
//! `docs/architecture.md` draws.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// One file of `src/`.
struct Module {
    /// `["pool", "job"]` for `src/pool/job.rs`, `["pool"]` for `src/pool/mod.rs`, `[]` for `lib.rs`.
    path: Vec<String>,
    /// Source with comments, strings and `#[cfg(test)]` items removed.
    code: String,
    /// Every `use` path of the file, expanded: (alias, absolute path).
    uses: Vec<(String, Vec<String>)>,
    /// The paths of private `use`s: those the file's own code uses. A `pub use` or
    /// `pub(crate) use` only names an item for others, who are resolved to its definer.
    private_uses: Vec<Vec<String>>,
}

fn main_src() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn collect(dir: &Path, prefix: &[String], out: &mut Vec<(Vec<String>, String)>) {
    let mut entries: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if p.is_dir() {
            let mut sub = prefix.to_vec();
            sub.push(name);
            collect(&p, &sub, out);
        } else if let Some(stem) = name.strip_suffix(".rs") {
            let mut path = prefix.to_vec();
            if stem != "mod" && stem != "lib" {
                path.push(stem.to_string());
            }
            out.push((path, fs::read_to_string(&p).unwrap()));
        }
    }
}

/// Comments, string and char literals blanked out (lengths kept).
fn strip(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if b[i] == b'r'
            && (b.get(i + 1) == Some(&b'"') || b.get(i + 1) == Some(&b'#'))
            && (i == 0 || !is_ident(b[i - 1]))
        {
            // Raw string r"..", r#".."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push(b[i]);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == b'"'
                    && b[j + 1..].iter().take(hashes).filter(|&&c| c == b'#').count() == hashes
                {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push(b' ');
            i = j;
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push(b' ');
        } else if b[i] == b'\'' && (b.get(i + 2) == Some(&b'\'') || b.get(i + 1) == Some(&b'\\')) {
            // A char literal ('x', '\n', '\''); a lifetime has no closing quote.
            i += 1;
            while i < b.len() && b[i] != b'\'' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push(b' ');
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// `#[cfg(test)]` items removed: from the attribute to the `;` or the matching `}` of the item.
fn drop_test_items(code: &str) -> String {
    let mut s = code.to_string();
    while let Some(at) = s.find("#[cfg(test)]") {
        let b = s.as_bytes();
        let mut i = at + "#[cfg(test)]".len();
        let mut depth = 0usize;
        let mut end = b.len();
        while i < b.len() {
            match b[i] {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i + 1;
                        break;
                    }
                }
                b';' if depth == 0 => {
                    end = i + 1;
                    break;
                }
                _ => {}
            }
            i += 1;
        }
        s.replace_range(at..end, "");
    }
    s
}

/// `code` with its `use` items blanked, so that only paths in code remain.
fn without_uses(code: &str) -> String {
    let mut s = code.to_string();
    let mut i = 0;
    while let Some(off) = s[i..].find("use ") {
        let at = i + off;
        i = at + 4;
        if at > 0 && is_ident(s.as_bytes()[at - 1]) {
            continue;
        }
        let Some(end) = s[at..].find(';') else { break };
        s.replace_range(at..at + end, &" ".repeat(end));
    }
    s
}

/// Every `use` tree in `code`, expanded to (alias, path as written, re-exported?).
fn use_paths(code: &str) -> Vec<(String, Vec<String>, bool)> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(off) = code[i..].find("use ") {
        let at = i + off;
        i = at + 4;
        if at > 0 && is_ident(b[at - 1]) {
            continue;
        }
        let Some(end) = code[i..].find(';') else { break };
        let tree = code[i..i + end].split_whitespace().collect::<Vec<_>>().join(" ");
        let before = code[..at].trim_end();
        // The item's visibility: what stands between the previous item's end and `use`.
        let vis = before.rsplit([';', '}', '{', ']']).next().unwrap_or("");
        let public = vis.trim().starts_with("pub");
        let mut one = Vec::new();
        expand(&tree, &[], &mut one);
        out.extend(one.into_iter().map(|(a, p)| (a, p, public)));
        i += end;
    }
    out
}

fn expand(tree: &str, prefix: &[String], out: &mut Vec<(String, Vec<String>)>) {
    let tree = tree.trim().trim_start_matches("::").trim();
    if let Some(open) = tree.find('{') {
        let mut base = prefix.to_vec();
        base.extend(
            tree[..open].split("::").map(str::trim).filter(|s| !s.is_empty()).map(String::from),
        );
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let mut depth = 0;
        let mut start = 0;
        for (k, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&inner[start..k], &base, out);
                    start = k + 1;
                }
                _ => {}
            }
        }
        if start < inner.len() {
            expand(&inner[start..], &base, out);
        }
        return;
    }
    if tree.is_empty() {
        return;
    }
    let (path, alias) = match tree.split_once(" as ") {
        Some((p, a)) => (p, Some(a.trim())),
        None => (tree, None),
    };
    let mut full = prefix.to_vec();
    for seg in path.split("::").map(str::trim).filter(|s| !s.is_empty()) {
        if seg == "self" && !full.is_empty() {
            continue;
        }
        full.push(seg.to_string());
    }
    let alias = alias.map(String::from).unwrap_or_else(|| full.last().cloned().unwrap_or_default());
    out.push((alias, full));
}

/// Inline paths `a::b::c` in `code` whose first segment is `crate`, `super`, `self` or a child
/// module of `m`.
fn inline_paths(code: &str, children: &BTreeSet<String>) -> Vec<Vec<String>> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if is_ident(b[i]) && (i == 0 || (!is_ident(b[i - 1]) && b[i - 1] != b':')) {
            let mut segs = Vec::new();
            let mut j = i;
            loop {
                let s = j;
                while j < b.len() && is_ident(b[j]) {
                    j += 1;
                }
                segs.push(code[s..j].to_string());
                if b[j..].starts_with(b"::") && b.get(j + 2).is_some_and(|&c| is_ident(c)) {
                    j += 2;
                } else {
                    break;
                }
            }
            let first = segs[0].as_str();
            if segs.len() > 1
                && (first == "crate"
                    || first == "super"
                    || first == "self"
                    || children.contains(first))
            {
                out.push(segs);
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

/// `written` (relative to module `at`) made absolute, or `None` for an external crate.
fn absolute(
    at: &[String],
    is_dir: bool,
    written: &[String],
    children: &BTreeSet<String>,
) -> Option<Vec<String>> {
    let mut base: Vec<String>;
    let mut rest = written;
    match written.first().map(String::as_str) {
        Some("crate") => {
            base = Vec::new();
            rest = &written[1..];
        }
        Some("self") => {
            base = at.to_vec();
            rest = &written[1..];
            // `self` in a file module `a/b.rs` is `a::b`; nothing to adjust.
            let _ = is_dir;
        }
        Some("super") => {
            base = at.to_vec();
            while rest.first().map(String::as_str) == Some("super") {
                base.pop();
                rest = &rest[1..];
            }
        }
        Some(first) if children.contains(first) => base = at.to_vec(),
        _ => return None,
    }
    base.extend(rest.iter().cloned());
    Some(base)
}

struct Graph {
    modules: Vec<Module>,
    index: BTreeMap<Vec<String>, usize>,
}

impl Graph {
    fn load() -> Graph {
        let mut files = Vec::new();
        collect(&main_src(), &[], &mut files);
        let index: BTreeMap<Vec<String>, usize> =
            files.iter().enumerate().map(|(i, (p, _))| (p.clone(), i)).collect();
        let mut modules = Vec::new();
        for (path, src) in files {
            let code = drop_test_items(&strip(&src));
            let children = children_of(&index, &path);
            let mut uses = Vec::new();
            let mut private_uses = Vec::new();
            for (alias, p, public) in use_paths(&code) {
                if let Some(a) = absolute(&path, true, &p, &children) {
                    if !public {
                        private_uses.push(a.clone());
                    }
                    uses.push((alias, a));
                }
            }
            modules.push(Module { path, code, uses, private_uses });
        }
        Graph { modules, index }
    }

    /// The file that defines what `abs` names (following re-exports), or `None` if it is not
    /// in this crate.
    fn resolve(&self, abs: &[String], depth: usize) -> Option<usize> {
        if depth > 16 {
            return None;
        }
        let (mut len, mut m) = (0, *self.index.get(&Vec::new())?);
        for k in 1..=abs.len() {
            if let Some(&i) = self.index.get(&abs[..k]) {
                (len, m) = (k, i);
            }
        }
        if let Some(name) = abs.get(len) {
            // `name` is an item of module `m`, or an import of it (a re-export).
            if let Some((_, target)) = self.modules[m].uses.iter().find(|(alias, _)| alias == name)
            {
                let mut t = target.clone();
                t.extend(abs[len + 1..].iter().cloned());
                if t != abs {
                    return self.resolve(&t, depth + 1);
                }
            }
        }
        Some(m)
    }

    /// Edges `from -> to` with one example path each.
    fn edges(&self) -> BTreeMap<(usize, usize), String> {
        let mut edges = BTreeMap::new();
        for (i, m) in self.modules.iter().enumerate() {
            let children = children_of(&self.index, &m.path);
            let mut paths = m.private_uses.clone();
            for p in inline_paths(&without_uses(&m.code), &children) {
                if let Some(a) = absolute(&m.path, true, &p, &children) {
                    paths.push(a);
                }
            }
            for p in paths {
                let Some(t) = self.resolve(&p, 0) else { continue };
                if t != i && !self.modules[t].path.is_empty() {
                    edges.entry((i, t)).or_insert_with(|| p.join("::"));
                }
            }
        }
        edges
    }

    fn name(&self, i: usize) -> String {
        let p = &self.modules[i].path;
        if p.is_empty() { "lib".into() } else { p.join("::") }
    }
}

fn children_of(index: &BTreeMap<Vec<String>, usize>, path: &[String]) -> BTreeSet<String> {
    index
        .keys()
        .filter(|k| k.len() == path.len() + 1 && k.starts_with(path))
        .map(|k| k.last().unwrap().clone())
        .collect()
}

/// Tarjan's strongly connected components.
fn sccs(n: usize, adj: &[Vec<usize>]) -> Vec<Vec<usize>> {
    struct St<'a> {
        adj: &'a [Vec<usize>],
        idx: Vec<Option<usize>>,
        low: Vec<usize>,
        on: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    fn visit(s: &mut St, v: usize) {
        s.idx[v] = Some(s.next);
        s.low[v] = s.next;
        s.next += 1;
        s.stack.push(v);
        s.on[v] = true;
        for k in 0..s.adj[v].len() {
            let w = s.adj[v][k];
            match s.idx[w] {
                None => {
                    visit(s, w);
                    s.low[v] = s.low[v].min(s.low[w]);
                }
                Some(iw) if s.on[w] => s.low[v] = s.low[v].min(iw),
                _ => {}
            }
        }
        if Some(s.low[v]) == s.idx[v] {
            let mut comp = Vec::new();
            loop {
                let w = s.stack.pop().unwrap();
                s.on[w] = false;
                comp.push(w);
                if w == v {
                    break;
                }
            }
            s.out.push(comp);
        }
    }
    let mut s = St {
        adj,
        idx: vec![None; n],
        low: vec![0; n],
        on: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if s.idx[v].is_none() {
            visit(&mut s, v);
        }
    }
    s.out
}

#[test]
fn src_module_graph_has_no_cycle() {
    let g = Graph::load();
    let n = g.modules.len();
    assert!(n > 20, "found only {n} files under src/");
    let edges = g.edges();
    let mut adj = vec![Vec::new(); n];
    for &(a, b) in edges.keys() {
        adj[a].push(b);
    }
    let mut report = String::new();
    for comp in sccs(n, &adj).into_iter().filter(|c| c.len() > 1) {
        let set: BTreeSet<usize> = comp.iter().copied().collect();
        let mut names: Vec<String> = comp.iter().map(|&i| g.name(i)).collect();
        names.sort();
        report += &format!("\ncycle among {}:\n", names.join(", "));
        for (&(a, b), via) in &edges {
            if set.contains(&a) && set.contains(&b) {
                report += &format!("  {} -> {}   (via {via})\n", g.name(a), g.name(b));
            }
        }
    }
    assert!(report.is_empty(), "the module graph of src/ has cycles:{report}");

    // Layers: a module's layer is one more than the highest layer it depends on.
    let mut layer = vec![usize::MAX; n];
    fn depth(v: usize, adj: &[Vec<usize>], layer: &mut [usize]) -> usize {
        if layer[v] == usize::MAX {
            layer[v] = adj[v].iter().map(|&w| depth(w, adj, layer) + 1).max().unwrap_or(0);
        }
        layer[v]
    }
    for v in 0..n {
        depth(v, &adj, &mut layer);
    }
    let top = layer.iter().copied().max().unwrap_or(0);
    for l in 0..=top {
        let mut names: Vec<String> = (0..n).filter(|&v| layer[v] == l).map(|v| g.name(v)).collect();
        names.sort();
        println!("layer {l}: {}", names.join(", "));
    }
}

#[test]
fn the_parser_sees_the_edges_it_must() {
    // Spot checks against hand-read facts, so the cycle check cannot pass by seeing nothing.
    let g = Graph::load();
    let edges = g.edges();
    let has = |a: &str, b: &str| edges.keys().any(|&(x, y)| g.name(x) == a && g.name(y) == b);
    assert!(has("array", "segment"), "array uses the segment layer");
    assert!(has("sync::mutex", "sync::robust"), "Mutex is built on the robust lock");
    assert!(edges.keys().all(|&(_, y)| g.name(y) != "lib"), "nothing depends on lib.rs");
    let uses =
        use_paths("use crate::{a::{B, c::D as E}, f};\npub(crate) use super::g::*;\npub use h::I;");
    let got: Vec<String> = uses
        .iter()
        .map(|(a, p, public)| format!("{a}={}{}", p.join("::"), if *public { " pub" } else { "" }))
        .collect();
    assert_eq!(
        got,
        ["B=crate::a::B", "E=crate::a::c::D", "f=crate::f", "*=super::g::* pub", "I=h::I pub"]
    );
}
