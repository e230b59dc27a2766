//! `/proc/<pid>/maps`: the one reader and parser of a process's mappings.
//!
//! Each line is `start-end perms offset dev inode [pathname]`, the first five fields separated by
//! single spaces, then padding, then the pathname, which may hold spaces, may end in
//! ` (deleted)` (the file was unlinked, as `/proc/self/exe` then also says), may be a pseudo-name
//! (`[stack]`, `[vdso]`, `[heap]`) and is absent for anonymous mappings. The kernel writes a
//! newline in a path as `\012`, so one mapping is always one line.

use std::io;

/// One mapping, borrowed from the text it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mapping<'a> {
    /// First address.
    pub(crate) start: usize,
    /// One past the last address.
    pub(crate) end: usize,
    /// `rwxp`-style permissions, e.g. `r-xp`.
    pub(crate) perms: &'a str,
    /// The pathname as the kernel wrote it (with ` (deleted)` if so), `""` when anonymous.
    pub(crate) path: &'a str,
}

impl Mapping<'_> {
    /// Whether the mapping may be executed.
    pub(crate) fn is_executable(&self) -> bool {
        self.perms.as_bytes().get(2) == Some(&b'x')
    }

    /// Whether the mapping is backed by a file (its path is absolute), not anonymous or a
    /// pseudo-name such as `[vdso]`.
    pub(crate) fn is_file(&self) -> bool {
        self.path.starts_with('/')
    }
}

/// Parses one line; `None` for a line that is not a mapping.
pub(crate) fn parse_line(line: &str) -> Option<Mapping<'_>> {
    let mut fields = line.splitn(6, ' ');
    let (range, perms) = (fields.next()?, fields.next()?);
    // offset, dev, inode: present in every line, not needed here.
    fields.nth(2)?;
    let path = fields.next().unwrap_or("").trim_start();
    let (lo, hi) = range.split_once('-')?;
    let (start, end) = (usize::from_str_radix(lo, 16).ok()?, usize::from_str_radix(hi, 16).ok()?);
    Some(Mapping { start, end, perms, path })
}

/// The mappings of a `/proc/<pid>/maps` text, skipping lines that do not parse.
pub(crate) fn parse(maps: &str) -> impl Iterator<Item = Mapping<'_>> {
    maps.lines().filter_map(parse_line)
}

/// This process's `/proc/self/maps`, read whole (so the text is one consistent-enough snapshot
/// for the parser to borrow from).
pub(crate) fn read_self() -> io::Result<String> {
    std::fs::read_to_string("/proc/self/maps")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
00400000-00452000 r-xp 00000000 08:02 173521      /usr/bin/my prog
00651000-00652000 rw-p 00051000 08:02 173521      /usr/bin/my prog
55d0c0a00000-55d0c0b00000 r-xp 00001000 08:01 123 /tmp/old build (deleted)
7f0000000000-7f0000100000 r-xp 00000000 08:02 99  /usr/lib/libfoo.so
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0   [stack]
7ffd00100000-7ffd00102000 r-xp 00000000 00:00 0                          [vdso]
7ffe00000000-7ffe00001000 rw-p 00000000 00:00 0
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
";

    fn line(n: usize) -> Mapping<'static> {
        parse_line(MAPS.lines().nth(n).unwrap()).unwrap()
    }

    #[test]
    fn a_path_with_spaces_is_kept_whole() {
        let m = line(0);
        assert_eq!(
            (m.start, m.end, m.perms, m.path),
            (0x400000, 0x452000, "r-xp", "/usr/bin/my prog")
        );
        assert!(m.is_executable() && m.is_file());
        assert!(!line(1).is_executable() && line(1).is_file());
    }

    #[test]
    fn a_deleted_file_keeps_its_marker() {
        let m = line(2);
        assert_eq!(m.path, "/tmp/old build (deleted)");
        assert_eq!((m.start, m.end), (0x55d0c0a00000, 0x55d0c0b00000));
        assert!(m.is_file() && m.is_executable());
    }

    #[test]
    fn pseudo_and_anonymous_mappings_are_not_files() {
        let vdso = line(5);
        assert_eq!((vdso.path, vdso.is_executable(), vdso.is_file()), ("[vdso]", true, false));
        assert_eq!(line(4).path, "[stack]");
        let anon = line(6);
        assert_eq!((anon.start, anon.end, anon.path), (0x7ffe00000000, 0x7ffe00001000, ""));
        assert!(!anon.is_file() && !anon.is_executable());
        let vsyscall = line(7);
        assert_eq!(vsyscall.end, 0xffffffffff601000);
        assert!(vsyscall.is_executable() && !vsyscall.is_file());
    }

    #[test]
    fn every_line_parses_and_garbage_does_not() {
        assert_eq!(parse(MAPS).count(), MAPS.lines().count());
        for bad in ["", "garbage", "1000-2000 r-xp", "1000-zz r-xp 0 0 0 /x", "10002000 r-xp 0 0 0"]
        {
            assert_eq!(parse_line(bad), None, "{bad:?}");
        }
        // The kernel's own minimal anonymous line (no trailing space).
        assert!(parse_line("1000-2000 r-xp 00000000 00:00 0").is_some_and(|m| m.path.is_empty()));
    }

    #[test]
    fn this_process_maps_its_own_code_and_stack() {
        let text = read_self().unwrap();
        let f = this_process_maps_its_own_code_and_stack as fn() as usize;
        let at = |addr: usize| parse(&text).find(|m| (m.start..m.end).contains(&addr)).unwrap();
        let code = at(f);
        assert!(code.is_executable() && code.is_file(), "{code:?}");
        let local = 0u8;
        let stack = at(&local as *const u8 as usize);
        assert!(!stack.is_executable(), "{stack:?}");
    }
}
