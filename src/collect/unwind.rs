//! From a sample to its call stack's addresses: the kernel's frame-pointer
//! chain as recorded, or, with `--call-graph dwarf`, the user stack copy
//! unwound with `framehop` from each binary's DWARF CFI (`.eh_frame`),
//! falling back to frame pointers where a binary has none.
//!
//! Each process's executable mappings are followed from the recording's
//! mmap, fork and exec records, so that an address can be turned into a
//! binary and the address that binary states (its SVMA).

use std::collections::BTreeMap;

use foldhash::HashMap;
use std::path::{Path, PathBuf};

use framehop::aarch64::{CacheAarch64, PtrAuthMask, UnwindRegsAarch64, UnwinderAarch64};
use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
use framehop::{ExplicitModuleSectionInfo, FrameAddress, Module, Unwinder as _};
use linux_perf_data::linux_perf_event_reader::constants::{
    PERF_CONTEXT_KERNEL, PERF_CONTEXT_MAX, PERF_CONTEXT_USER,
};
use linux_perf_data::linux_perf_event_reader::Regs;

use crate::symbolize::{Binary, Bytes};

/// The instruction set a recording was made on. It decides which registers
/// perf copied with each sample and how return addresses are read, so it
/// comes from the recording (perf.data's `arch` header), not from the machine
/// that reads it: an arm64 recording unwinds on x86-64 too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arch {
    /// x86-64 (`x86_64` in perf's header).
    X86_64,
    /// 64-bit Arm (`aarch64`, or `arm64` as some perf builds write it).
    Aarch64,
}

impl Arch {
    /// The machine this process runs on (where a recording's header does
    /// not say).
    pub fn host() -> Arch {
        if cfg!(target_arch = "aarch64") {
            Arch::Aarch64
        } else {
            Arch::X86_64
        }
    }

    /// The architecture perf's `arch` header names (`uname -m`), if we unwind it.
    pub fn from_perf(name: &str) -> Option<Arch> {
        match name {
            "x86_64" | "amd64" => Some(Arch::X86_64),
            "aarch64" | "arm64" => Some(Arch::Aarch64),
            _ => None,
        }
    }

    /// A user address as recorded, with arm64 pointer-authentication bits
    /// (above the highest code address) cleared. The kernel strips them
    /// from frame-pointer chains already; this keeps that true for any
    /// recording.
    fn strip(self, addr: u64, max_code_address: u64) -> u64 {
        match self {
            Arch::X86_64 => addr,
            Arch::Aarch64 => pac_mask(max_code_address).strip_ptr_auth(addr),
        }
    }
}

/// The bits of an arm64 code address that are address: those up to the
/// highest known code address (none known yet: all of them; framehop's own
/// constructor would shift by 64 then).
fn pac_mask(max_code_address: u64) -> PtrAuthMask {
    match max_code_address {
        0 => PtrAuthMask::new_no_strip(),
        max => PtrAuthMask::from_max_known_address(max),
    }
}

/// One process's unwinder, for its recording's architecture.
#[derive(Clone)]
enum ArchUnwinder {
    X86_64(UnwinderX86_64<Bytes>),
    Aarch64(UnwinderAarch64<Bytes>),
}

impl ArchUnwinder {
    fn new(arch: Arch) -> ArchUnwinder {
        match arch {
            Arch::X86_64 => ArchUnwinder::X86_64(UnwinderX86_64::new()),
            Arch::Aarch64 => ArchUnwinder::Aarch64(UnwinderAarch64::new()),
        }
    }

    fn add_module(&mut self, module: Module<Bytes>) {
        match self {
            ArchUnwinder::X86_64(u) => u.add_module(module),
            ArchUnwinder::Aarch64(u) => u.add_module(module),
        }
    }

    fn remove_module(&mut self, start: u64) {
        match self {
            ArchUnwinder::X86_64(u) => u.remove_module(start),
            ArchUnwinder::Aarch64(u) => u.remove_module(start),
        }
    }

    fn max_known_code_address(&self) -> u64 {
        match self {
            ArchUnwinder::X86_64(u) => u.max_known_code_address(),
            ArchUnwinder::Aarch64(u) => u.max_known_code_address(),
        }
    }
}

/// framehop's rule cache, for the recording's architecture.
enum ArchCache {
    X86_64(Box<CacheX86_64>),
    Aarch64(Box<CacheAarch64>),
}

impl ArchCache {
    fn new(arch: Arch) -> ArchCache {
        match arch {
            Arch::X86_64 => ArchCache::X86_64(Box::new(CacheX86_64::new())),
            Arch::Aarch64 => ArchCache::Aarch64(Box::new(CacheAarch64::new())),
        }
    }
}

/// perf's register numbers (`arch/*/include/uapi/asm/perf_regs.h`).
mod regs {
    /// x86-64: BP, SP, IP.
    pub const X86_64_BP: u64 = 6;
    pub const X86_64_SP: u64 = 7;
    pub const X86_64_IP: u64 = 8;
    /// arm64: X29 (the frame pointer), LR (X30), SP, PC.
    pub const ARM64_FP: u64 = 29;
    pub const ARM64_LR: u64 = 30;
    pub const ARM64_SP: u64 = 31;
    pub const ARM64_PC: u64 = 32;
}

/// Walks `unwinder` from `pc` and `regs` over the stack `read_stack` reads,
/// pushing each frame's address. Returns whether it reached the stack's end.
fn walk<U, F>(
    unwinder: &U,
    pc: u64,
    regs: U::UnwindRegs,
    cache: &mut U::Cache,
    read_stack: &mut F,
    addrs: &mut Vec<FrameAddress>,
) -> bool
where
    U: framehop::Unwinder,
    F: FnMut(u64) -> Result<u64, ()>,
{
    let mut iter = unwinder.iter_frames(pc, regs, cache, read_stack);
    loop {
        match iter.next() {
            Ok(Some(frame)) => addrs.push(frame),
            Ok(None) => return true,
            Err(_) => return false,
        }
    }
}

/// Index of a binary in [`Processes::binaries`].
pub(crate) type BinaryId = usize;

/// One frame of a stack, leaf first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Frame {
    /// A kernel address.
    Kernel(u64),
    /// An address inside a binary, as the binary states it (already moved
    /// back into the call instruction for return addresses).
    User(BinaryId, u64),
    /// A user address in no known mapping (JIT code, a torn stack).
    Unknown,
}

#[derive(Clone)]
struct Mapping {
    end: u64,
    binary: BinaryId,
    /// AVMA of the binary's SVMA 0.
    base: u64,
}

#[derive(Clone)]
struct Process {
    /// Executable mappings by start address.
    maps: BTreeMap<u64, Mapping>,
    unwinder: ArchUnwinder,
}

impl Process {
    fn new(arch: Arch) -> Process {
        Process {
            maps: BTreeMap::new(),
            unwinder: ArchUnwinder::new(arch),
        }
    }

    /// `binaries[binary]` is mapped at `start..end`, its SVMA 0 at `base`.
    fn map(&mut self, start: u64, end: u64, binary: BinaryId, base: u64, binaries: &[Binary]) {
        self.maps.insert(start, Mapping { end, binary, base });
        if let Some(module) = unwind_module(&binaries[binary], start..end, base) {
            self.unwinder.add_module(module);
        }
    }

    /// Whatever was mapped in `start..end` is gone, as a new mapping over
    /// it replaces it; the parts of old mappings outside it stay. (The
    /// kernel maps an ELF interpreter's whole span first and trims it after,
    /// so on arm64 the vdso lands inside ld.so's first, too long, mapping:
    /// dropping all of ld.so then would lose its frames.)
    fn unmap(&mut self, start: u64, end: u64, binaries: &[Binary]) {
        let overlapping: Vec<(u64, Mapping)> = self
            .maps
            .range(..end)
            .filter(|(_, m)| m.end > start)
            .map(|(&s, m)| (s, m.clone()))
            .collect();
        for (old_start, old) in overlapping {
            self.maps.remove(&old_start);
            self.unwinder.remove_module(old_start);
            if old_start < start {
                self.map(old_start, start, old.binary, old.base, binaries);
            }
            if old.end > end {
                self.map(end, old.end, old.binary, old.base, binaries);
            }
        }
    }
}

/// The processes of a recording, their mappings and the binaries they use.
pub(crate) struct Processes {
    procs: HashMap<i32, Process>,
    /// Every binary seen, opened once.
    pub binaries: Vec<Binary>,
    by_path: HashMap<Vec<u8>, BinaryId>,
    arch: Arch,
    cache: ArchCache,
    /// Where the recorded machine's files are (`/`: here).
    root: PathBuf,
    /// Stacks whose unwinding stopped before a thread's first frame.
    pub truncated: u64,
}

impl Processes {
    /// No processes yet; stacks unwound as on this machine's architecture
    /// until [`Processes::set_arch`] says otherwise.
    pub fn new() -> Processes {
        Processes {
            procs: HashMap::default(),
            binaries: Vec::new(),
            by_path: HashMap::default(),
            arch: Arch::host(),
            cache: ArchCache::new(Arch::host()),
            root: PathBuf::from("/"),
            truncated: 0,
        }
    }

    /// The recording was made on `arch`. Said before its first process
    /// record (perf's header comes first); processes seen before are
    /// forgotten, since their unwinders were for another architecture.
    pub fn set_arch(&mut self, arch: Arch) {
        if arch != self.arch {
            self.arch = arch;
            self.cache = ArchCache::new(arch);
            self.procs.clear();
        }
    }

    /// Binaries are read from under `root`, a folder holding the files of
    /// the machine the recording was made on at their paths (`/` by default).
    pub fn set_root(&mut self, root: &Path) {
        self.root = root.to_path_buf();
    }

    /// A binary opened ahead, for mappings of `path`.
    pub fn add_binary(&mut self, path: &[u8], binary: Binary) {
        self.binaries.push(binary);
        self.by_path.insert(path.to_vec(), self.binaries.len() - 1);
    }

    /// `pid` forked from `ppid` (threads share their process's mappings).
    /// Returns whether a process was added.
    pub fn fork(&mut self, pid: i32, ppid: i32) -> bool {
        if pid == ppid || self.procs.contains_key(&pid) {
            return false;
        }
        let parent = self
            .procs
            .get(&ppid)
            .cloned()
            .unwrap_or_else(|| Process::new(self.arch));
        self.procs.insert(pid, parent);
        true
    }

    /// `pid` ran exec: its old mappings are gone.
    pub fn exec(&mut self, pid: i32) {
        self.procs.insert(pid, Process::new(self.arch));
    }

    /// An executable mapping of `path` in `pid`. Returns whether it was
    /// kept (it was from a file, or the vdso).
    pub fn mmap(&mut self, pid: i32, start: u64, len: u64, pgoff: u64, path: &[u8]) -> bool {
        // Anonymous and special mappings ([stack], //anon, [heap]) have no
        // file to read; the vdso is named after itself.
        let vdso = path == b"[vdso]";
        let end = start.saturating_add(len);
        if pid == -1 || (path.first() != Some(&b'/') && !vdso) {
            return false;
        }
        let id = match self.by_path.get(path) {
            Some(&id) => id,
            None => {
                let os = std::ffi::OsStr::new(std::str::from_utf8(path).unwrap_or(""));
                let binary = if vdso {
                    Binary::vdso_in(&self.root)
                } else {
                    Binary::open_in(Path::new(os), &self.root)
                };
                self.binaries.push(binary);
                let id = self.binaries.len() - 1;
                self.by_path.insert(path.to_vec(), id);
                id
            }
        };
        let binary = &self.binaries[id];
        // Not parsable: frames will be named after the file.
        let base = match binary.svma_of_offset(pgoff) {
            Some(svma) => start.wrapping_sub(svma),
            None => start.wrapping_sub(pgoff),
        };
        let arch = self.arch;
        let process = self.procs.entry(pid).or_insert_with(|| Process::new(arch));
        process.unmap(start, end, &self.binaries);
        process.map(start, end, id, base, &self.binaries);
        true
    }

    /// The frames of a sample, leaf first, into `out`. Returns whether the
    /// stack was walked to its end (not cut short by a missing frame pointer
    /// or the end of the stack copy).
    pub fn frames(
        &mut self,
        pid: i32,
        ip: u64,
        callchain: &[u64],
        user: Option<(&Regs, &[u8])>,
        out: &mut Vec<Frame>,
    ) {
        out.clear();
        let mut in_kernel = false;
        let mut user_chain_seen = false;
        let mut first_user = true;
        for &addr in callchain {
            if addr >= PERF_CONTEXT_MAX {
                in_kernel = addr == PERF_CONTEXT_KERNEL;
                if addr == PERF_CONTEXT_USER {
                    user_chain_seen = true;
                    first_user = true;
                }
                continue;
            }
            if in_kernel {
                out.push(Frame::Kernel(addr));
            } else {
                let frame = self.user_frame(pid, addr, !first_user);
                first_user = false;
                out.push(frame);
            }
        }
        if let Some((regs, stack)) = user {
            self.unwind(pid, regs, stack, out);
        } else if !user_chain_seen && callchain.is_empty() && ip != 0 {
            out.push(self.user_frame(pid, ip, false));
        }
    }

    fn user_frame(&self, pid: i32, addr: u64, return_address: bool) -> Frame {
        let Some(process) = self.procs.get(&pid) else {
            return Frame::Unknown;
        };
        let addr = self
            .arch
            .strip(addr, process.unwinder.max_known_code_address());
        let lookup = if return_address {
            addr.saturating_sub(1)
        } else {
            addr
        };
        match process.maps.range(..=lookup).next_back() {
            Some((_, m)) if lookup < m.end => Frame::User(m.binary, lookup.wrapping_sub(m.base)),
            _ => Frame::Unknown,
        }
    }

    /// Unwinds the user stack copy of a `--call-graph dwarf` sample.
    fn unwind(&mut self, pid: i32, regs: &Regs, stack: &[u8], out: &mut Vec<Frame>) {
        let Some(process) = self.procs.get(&pid) else {
            out.push(Frame::Unknown);
            return;
        };
        let sp = match self.arch {
            Arch::X86_64 => regs.get(regs::X86_64_SP),
            Arch::Aarch64 => regs.get(regs::ARM64_SP),
        };
        let Some(sp) = sp else {
            return;
        };
        let mut read_stack = |addr: u64| -> Result<u64, ()> {
            let offset = usize::try_from(addr.checked_sub(sp).ok_or(())?).map_err(|_| ())?;
            let bytes = stack
                .get(offset..offset.checked_add(8).ok_or(())?)
                .ok_or(())?;
            Ok(u64::from_ne_bytes(bytes.try_into().map_err(|_| ())?))
        };
        let mut addrs: Vec<FrameAddress> = Vec::with_capacity(64);
        let complete = match (&process.unwinder, &mut self.cache) {
            (ArchUnwinder::X86_64(u), ArchCache::X86_64(cache)) => {
                let (Some(bp), Some(ip)) = (regs.get(regs::X86_64_BP), regs.get(regs::X86_64_IP))
                else {
                    return;
                };
                let start = UnwindRegsX86_64::new(ip, sp, bp);
                walk(u, ip, start, cache, &mut read_stack, &mut addrs)
            }
            (ArchUnwinder::Aarch64(u), ArchCache::Aarch64(cache)) => {
                let (Some(fp), Some(lr), Some(pc)) = (
                    regs.get(regs::ARM64_FP),
                    regs.get(regs::ARM64_LR),
                    regs.get(regs::ARM64_PC),
                ) else {
                    return;
                };
                // Return addresses may carry pointer-authentication bits:
                // those above the highest code address are cleared.
                let mask = pac_mask(u.max_known_code_address());
                let start = UnwindRegsAarch64::new_with_ptr_auth_mask(mask, lr, sp, fp);
                walk(u, pc, start, cache, &mut read_stack, &mut addrs)
            }
            // Processes and the cache are made for one architecture together.
            _ => unreachable!("the unwinder and its cache are for one architecture"),
        };
        if !complete {
            self.truncated += 1;
        }
        for frame in addrs {
            let f = self.user_frame(pid, frame.address(), frame.is_return_address());
            out.push(f);
        }
    }
}

/// The unwind tables of `binary` mapped at `avma`, for framehop.
fn unwind_module(binary: &Binary, avma: std::ops::Range<u64>, base: u64) -> Option<Module<Bytes>> {
    if !binary.is_loaded() {
        return None;
    }
    let text = binary.section(".text");
    let eh_frame = binary.section(".eh_frame");
    let eh_frame_hdr = binary.section(".eh_frame_hdr");
    let got = binary.section(".got");
    let debug_frame = binary.section(".debug_frame");
    let info = ExplicitModuleSectionInfo {
        base_svma: 0,
        text_svma: text.as_ref().map(|s| s.svma.clone()),
        text: text.and_then(|s| s.data),
        got_svma: got.map(|s| s.svma),
        eh_frame_svma: eh_frame.as_ref().map(|s| s.svma.clone()),
        eh_frame: eh_frame.and_then(|s| s.data),
        eh_frame_hdr_svma: eh_frame_hdr.as_ref().map(|s| s.svma.clone()),
        eh_frame_hdr: eh_frame_hdr.and_then(|s| s.data),
        debug_frame: debug_frame.and_then(|s| s.data),
        stubs_svma: None,
        stub_helper_svma: None,
        unwind_info: None,
        text_segment_svma: None,
        text_segment: None,
    };
    Some(Module::new(
        binary.path.to_string_lossy().into_owned(),
        avma,
        base,
        info,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exe() -> Vec<u8> {
        std::env::current_exe()
            .unwrap()
            .into_os_string()
            .into_encoded_bytes()
    }

    #[test]
    fn a_mapping_inside_another_cuts_it_instead_of_replacing_it() {
        // As the arm64 kernel maps ld.so: its whole span first, then the
        // vdso inside it (the span is trimmed later, without a record).
        let mut procs = Processes::new();
        assert!(procs.mmap(7, 0x10_0000, 0x4_2000, 0, &exe()));
        assert!(procs.mmap(7, 0x13_c000, 0x2000, 0, &exe()));
        let before = procs.user_frame(7, 0x10_1000, false);
        assert!(matches!(before, Frame::User(_, 0x1000)), "{before:?}");
        let after = procs.user_frame(7, 0x13_f000, false);
        assert!(matches!(after, Frame::User(_, 0x3f000)), "{after:?}");
        let inside = procs.user_frame(7, 0x13_c800, false);
        assert!(matches!(inside, Frame::User(_, 0x800)), "{inside:?}");
        // A mapping over the whole of an old one still replaces it.
        assert!(procs.mmap(7, 0x10_0000, 0x4_2000, 0x1000, &exe()));
        assert_eq!(procs.procs[&7].maps.len(), 1);
    }

    #[test]
    fn the_recordings_architecture_decides_the_unwinder() {
        assert_eq!(Arch::from_perf("aarch64"), Some(Arch::Aarch64));
        assert_eq!(Arch::from_perf("x86_64"), Some(Arch::X86_64));
        assert_eq!(Arch::from_perf("riscv64"), None);
        let mut procs = Processes::new();
        procs.set_arch(Arch::Aarch64);
        assert!(procs.mmap(7, 0x10_0000, 0x1000, 0, &exe()));
        assert!(matches!(procs.procs[&7].unwinder, ArchUnwinder::Aarch64(_)));
        assert!(matches!(procs.cache, ArchCache::Aarch64(_)));
    }

    #[test]
    fn arm64_return_addresses_lose_their_authentication_bits() {
        // A 48-bit address space: bits above the highest code address are a
        // pointer-authentication code, not part of the address.
        let signed = 0x002d_ffff_b46c_d123;
        assert_eq!(
            Arch::Aarch64.strip(signed, 0xffff_b46d_5000),
            0xffff_b46c_d123
        );
        assert_eq!(Arch::X86_64.strip(signed, 0xffff_b46d_5000), signed);
        // No code mapped yet: nothing is known to strip.
        assert_eq!(Arch::Aarch64.strip(signed, 0), signed);
    }
}
