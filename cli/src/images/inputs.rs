//! Which files a batch reads: a directory's image files, or a glob's matches.

use std::path::{Path, PathBuf};

use crate::error::CliError;

/// The extensions a directory's files are taken for.
const IMAGE_EXTENSIONS: [&str; 6] = ["png", "jpg", "jpeg", "webp", "tif", "tiff"];

/// The files `input` names, sorted: a directory's files with an image extension, or the
/// matches of a glob whose `*` and `?` are in the last component.
pub(crate) fn list(input: &str) -> Result<Vec<PathBuf>, CliError> {
    let path = Path::new(input);
    let io = |source| CliError::ImagesIo { action: "read", path: path.to_path_buf(), source };
    let mut files = Vec::new();
    if path.is_dir() {
        for e in std::fs::read_dir(path).map_err(io)? {
            let p = e.map_err(io)?.path();
            let ext = p.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
            if p.is_file() && ext.is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str())) {
                files.push(p);
            }
        }
    } else if input.contains(['*', '?']) {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let pattern = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if dir.to_string_lossy().contains(['*', '?']) {
            return Err(CliError::ImagesInput {
                input: input.to_string(),
                fix: "put wildcards only in the file name part: 'dir/*.png'",
            });
        }
        let io = |source| CliError::ImagesIo { action: "read", path: dir.to_path_buf(), source };
        for e in std::fs::read_dir(dir).map_err(io)? {
            let p = e.map_err(io)?.path();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if p.is_file() && matches(pattern.as_bytes(), name.as_bytes()) {
                files.push(p);
            }
        }
    } else if path.is_file() {
        files.push(path.to_path_buf());
    } else {
        return Err(CliError::ImagesInput {
            input: input.to_string(),
            fix: "give an existing directory, file, or a glob such as 'photos/*.jpg'",
        });
    }
    files.sort();
    Ok(files)
}

/// Whether `name` matches `pattern`, where `*` is any run of bytes and `?` any one byte.
pub(crate) fn matches(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|i| matches(rest, &name[i..])),
        Some((&p, rest)) => name
            .split_first()
            .is_some_and(|(&n, tail)| (p == b'?' || p == n) && matches(rest, tail)),
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn glob_matching() {
        assert!(matches(b"*.png", b"a.png"));
        assert!(matches(b"a?c*", b"abc.jpg"));
        assert!(!matches(b"*.png", b"a.jpg"));
        assert!(!matches(b"a?", b"a"));
    }
}
