//! Which code addresses a worker accepts from the job descriptor.
//!
//! The control block lives in an anonymous shared mapping only the parent and its forked
//! workers hold, so nobody else can write a descriptor; this is the second line. Before calling a
//! trampoline and a kernel, a worker checks that both addresses lie inside a file-backed
//! executable mapping of its own address space (the program and its shared libraries, read once
//! from `/proc/self/maps`). A corrupt offset then fails the chunk with a message instead of
//! jumping into data, the stack or a JIT page. It cannot tell one function of the program from
//! another: that would need the parent to sign the descriptor, which buys nothing while only
//! the parent and its workers can write it.

/// The executable, file-backed address ranges of this process.
pub(crate) struct CodeRanges(Vec<(usize, usize)>);

impl CodeRanges {
    /// Reads this process's executable file mappings (empty if `/proc` cannot be read, which
    /// then refuses every address).
    pub(crate) fn of_this_process() -> CodeRanges {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
        CodeRanges(maps.lines().filter_map(parse_line).collect())
    }

    /// Whether `addr` lies in one of the ranges.
    pub(crate) fn contains(&self, addr: usize) -> bool {
        self.0.iter().any(|&(lo, hi)| (lo..hi).contains(&addr))
    }
}

/// `lo-hi perms offset dev inode path`: the range of an executable mapping of a file.
fn parse_line(line: &str) -> Option<(usize, usize)> {
    let mut f = line.split_whitespace();
    let (range, perms) = (f.next()?, f.next()?);
    let path = f.nth(3)?;
    if !perms.contains('x') || !path.starts_with('/') {
        return None;
    }
    let (lo, hi) = range.split_once('-')?;
    Some((usize::from_str_radix(lo, 16).ok()?, usize::from_str_radix(hi, 16).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn some_fn() -> u32 {
        std::hint::black_box(7)
    }

    #[test]
    fn functions_are_code_and_data_is_not() {
        let code = CodeRanges::of_this_process();
        assert!(code.contains(some_fn as fn() -> u32 as usize));
        assert!(code.contains(CodeRanges::contains as fn(&CodeRanges, usize) -> bool as usize));
        let heap = Box::new(0u64);
        assert!(!code.contains(&*heap as *const u64 as usize));
        let stack = 0u64;
        assert!(!code.contains(&stack as *const u64 as usize));
        assert!(!code.contains(0));
    }

    #[test]
    fn parses_maps_lines() {
        let l = "55d0c0a00000-55d0c0b00000 r-xp 00001000 08:01 123 /usr/bin/prog";
        assert_eq!(parse_line(l), Some((0x55d0c0a00000, 0x55d0c0b00000)));
        assert_eq!(parse_line("7ffd-7ffe r-xp 00000000 00:00 0 [vdso]"), None);
        assert_eq!(parse_line("1000-2000 rw-p 00000000 00:00 0 /x"), None);
        assert_eq!(parse_line("1000-2000 r-xp 00000000 00:00 0"), None);
    }
}
