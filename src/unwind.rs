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
use std::path::Path;

use framehop::{ExplicitModuleSectionInfo, FrameAddress, Module, Unwinder as _};
use linux_perf_data::linux_perf_event_reader::constants::{
    PERF_CONTEXT_KERNEL, PERF_CONTEXT_MAX, PERF_CONTEXT_USER,
};
use linux_perf_data::linux_perf_event_reader::Regs;

use crate::symbols::{Binary, Bytes};

#[cfg(target_arch = "x86_64")]
mod arch {
    pub use framehop::x86_64::{
        CacheX86_64 as Cache, UnwindRegsX86_64 as UnwindRegs, UnwinderX86_64 as Unwinder,
    };
    use linux_perf_data::linux_perf_event_reader::Regs;

    /// perf's x86_64 register numbers: BP, SP, IP.
    pub fn start(regs: &Regs, _max_code_address: u64) -> Option<(u64, UnwindRegs)> {
        let (bp, sp, ip) = (regs.get(6)?, regs.get(7)?, regs.get(8)?);
        Some((ip, UnwindRegs::new(ip, sp, bp)))
    }

    /// perf's x86_64 stack pointer.
    pub fn sp(regs: &Regs) -> Option<u64> {
        regs.get(7)
    }
}

#[cfg(target_arch = "aarch64")]
mod arch {
    pub use framehop::aarch64::{
        CacheAarch64 as Cache, UnwindRegsAarch64 as UnwindRegs, UnwinderAarch64 as Unwinder,
    };
    use linux_perf_data::linux_perf_event_reader::Regs;

    /// perf's arm64 register numbers: X29 (FP), LR, SP, PC. Return
    /// addresses may carry pointer-authentication bits: those above the
    /// highest code address are stripped.
    pub fn start(regs: &Regs, max_code_address: u64) -> Option<(u64, UnwindRegs)> {
        let (fp, lr, sp, pc) = (regs.get(29)?, regs.get(30)?, regs.get(31)?, regs.get(32)?);
        let mask = framehop::aarch64::PtrAuthMask::from_max_known_address(max_code_address);
        Some((pc, UnwindRegs::new_with_ptr_auth_mask(mask, lr, sp, fp)))
    }

    /// perf's arm64 stack pointer.
    pub fn sp(regs: &Regs) -> Option<u64> {
        regs.get(31)
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

#[derive(Clone, Default)]
struct Process {
    /// Executable mappings by start address.
    maps: BTreeMap<u64, Mapping>,
    unwinder: arch::Unwinder<Bytes>,
}

/// The processes of a recording, their mappings and the binaries they use.
pub(crate) struct Processes {
    procs: HashMap<i32, Process>,
    /// Every binary seen, opened once.
    pub binaries: Vec<Binary>,
    by_path: HashMap<Vec<u8>, BinaryId>,
    cache: arch::Cache,
    /// Stacks whose unwinding stopped before a thread's first frame.
    pub truncated: u64,
}

impl Processes {
    /// No processes yet.
    pub fn new() -> Processes {
        Processes {
            procs: HashMap::default(),
            binaries: Vec::new(),
            by_path: HashMap::default(),
            cache: arch::Cache::new(),
            truncated: 0,
        }
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
        let parent = self.procs.get(&ppid).cloned().unwrap_or_default();
        self.procs.insert(pid, parent);
        true
    }

    /// `pid` ran exec: its old mappings are gone.
    pub fn exec(&mut self, pid: i32) {
        self.procs.insert(pid, Process::default());
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
                    Binary::vdso()
                } else {
                    Binary::open(Path::new(os))
                };
                self.binaries.push(binary);
                let id = self.binaries.len() - 1;
                self.by_path.insert(path.to_vec(), id);
                id
            }
        };
        let binary = &self.binaries[id];
        let Some(svma) = binary.svma_of_offset(pgoff) else {
            // Not parsable: frames will be named after the file.
            let process = self.procs.entry(pid).or_default();
            process.maps.insert(
                start,
                Mapping {
                    end,
                    binary: id,
                    base: start.wrapping_sub(pgoff),
                },
            );
            return true;
        };
        let base = start.wrapping_sub(svma);
        let module = unwind_module(binary, start..end, base);
        let process = self.procs.entry(pid).or_default();
        // A mapping over an old one replaces it.
        let stale: Vec<u64> = process
            .maps
            .range(..end)
            .filter(|(&s, m)| m.end > start && s < end)
            .map(|(&s, _)| s)
            .collect();
        for s in stale {
            process.maps.remove(&s);
            process.unwinder.remove_module(s);
        }
        process.maps.insert(
            start,
            Mapping {
                end,
                binary: id,
                base,
            },
        );
        if let Some(module) = module {
            process.unwinder.add_module(module);
        }
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
        let lookup = if return_address {
            addr.saturating_sub(1)
        } else {
            addr
        };
        let Some(process) = self.procs.get(&pid) else {
            return Frame::Unknown;
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
        let max_code_address = process.unwinder.max_known_code_address();
        let (Some((pc, unwind_regs)), Some(sp)) =
            (arch::start(regs, max_code_address), arch::sp(regs))
        else {
            return;
        };
        let mut read_stack = |addr: u64| -> Result<u64, ()> {
            let offset = addr.checked_sub(sp).ok_or(())? as usize;
            let bytes = stack.get(offset..offset + 8).ok_or(())?;
            Ok(u64::from_ne_bytes(bytes.try_into().map_err(|_| ())?))
        };
        let mut iter =
            process
                .unwinder
                .iter_frames(pc, unwind_regs, &mut self.cache, &mut read_stack);
        let mut addrs: Vec<FrameAddress> = Vec::with_capacity(64);
        let complete = loop {
            match iter.next() {
                Ok(Some(frame)) => addrs.push(frame),
                Ok(None) => break true,
                Err(_) => break false,
            }
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
