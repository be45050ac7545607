//! Names for PLT stubs, the few instructions through which a binary calls a
//! function of another (or, for IFUNCs such as glibc's `memcpy`, of itself).
//!
//! No symbol covers them, so a sample that lands in one would read as
//! `[libc.so.6]`. Each stub jumps through a GOT slot; the dynamic relocation
//! that fills that slot names the function: its symbol, or for an IFUNC the
//! resolver's address. The stub is then named `memcpy@plt`, as `objdump` does.

use std::collections::HashMap;
use std::sync::Arc;

use object::elf;
use object::read::elf::{ElfFile64, SectionHeader};
use object::{Endianness, Object, ObjectSection, ObjectSymbol, ObjectSymbolTable};

/// A binary's PLT stubs, by address.
#[derive(Default)]
pub(crate) struct Stubs {
    /// `(start, end, name)`, sorted by start.
    stubs: Vec<(u64, u64, Arc<str>)>,
}

/// A PLT section larger than this (65,536 stubs of 16 bytes; glibc has 60,
/// large programs a few thousand) is no linker's: its stubs are left
/// unnamed rather than indexed.
const MAX_PLT_BYTES: usize = 1 << 20;

/// The name of a stub whose target could not be told (a PLT's header, or a
/// layout not decoded here), as perf names it.
const UNRESOLVED: &str = "@plt";

impl Stubs {
    /// The stubs of the 64-bit ELF image `data` (x86-64 or AArch64); an
    /// IFUNC's resolver is named by `symbol_at`, from the binary's symbols.
    pub fn read(data: &[u8], symbol_at: impl Fn(u64) -> Option<Arc<str>>) -> Stubs {
        let Ok(file) = ElfFile64::<Endianness>::parse(data) else {
            return Stubs::default();
        };
        let decode = match file.architecture() {
            object::Architecture::X86_64 => x86_64_slot,
            object::Architecture::Aarch64 => aarch64_slot,
            _ => return Stubs::default(),
        };
        let slots = slot_names(&file, symbol_at);
        let endian = file.endian();
        let unresolved: Arc<str> = Arc::from(UNRESOLVED);
        let mut stubs = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        for section in file.sections() {
            let name = section.name().unwrap_or_default();
            // Each PLT section once: a crafted file could list one many times.
            if !matches!(name, ".plt" | ".plt.sec" | ".plt.got" | ".iplt") || seen.contains(&name) {
                continue;
            }
            seen.push(name);
            let Ok(bytes) = section.data() else { continue };
            if bytes.len() > MAX_PLT_BYTES {
                continue;
            }
            // Stubs are 8 or 16 bytes; a file that says otherwise (or
            // nothing, as some linkers do) gets the usual size for the section.
            let entry: usize = match section.elf_section_header().sh_entsize(endian) {
                size @ (8 | 16) => size as usize,
                _ if name == ".plt.got" => 8,
                _ => 16,
            };
            let mut addr = section.address();
            for code in bytes.chunks(entry) {
                let name = decode(code, addr)
                    .and_then(|slot| slots.get(&slot))
                    .map_or_else(|| unresolved.clone(), |name| name.clone());
                let end = addr.wrapping_add(code.len() as u64);
                stubs.push((addr, end, name));
                addr = end;
            }
        }
        stubs.sort_by_key(|s| s.0);
        Stubs { stubs }
    }

    /// The stub containing `svma`, if it is in a PLT.
    pub fn find(&self, svma: u64) -> Option<Arc<str>> {
        let i = self.stubs.partition_point(|s| s.0 <= svma).checked_sub(1)?;
        let (_, end, name) = &self.stubs[i];
        (svma < *end).then(|| name.clone())
    }
}

/// `memcpy@plt` for each GOT slot a dynamic relocation fills with a function.
fn slot_names(
    file: &ElfFile64<Endianness>,
    symbol_at: impl Fn(u64) -> Option<Arc<str>>,
) -> HashMap<u64, Arc<str>> {
    let irelative = match file.architecture() {
        object::Architecture::Aarch64 => elf::R_AARCH64_IRELATIVE,
        _ => elf::R_X86_64_IRELATIVE,
    };
    let dynsym = file.dynamic_symbol_table();
    let mut names = HashMap::new();
    for (slot, reloc) in file.dynamic_relocations().into_iter().flatten() {
        let name = match reloc.target() {
            object::RelocationTarget::Symbol(index) => dynsym
                .as_ref()
                .and_then(|table| table.symbol_by_index(index).ok())
                .and_then(|symbol| symbol.name().ok().map(Arc::<str>::from)),
            object::RelocationTarget::Absolute
                if reloc.flags() == (object::RelocationFlags::Elf { r_type: irelative }) =>
            {
                u64::try_from(reloc.addend()).ok().and_then(&symbol_at)
            }
            _ => None,
        };
        if let Some(name) = name.filter(|n| !n.is_empty()) {
            names.insert(slot, Arc::from(format!("{name}@plt")));
        }
    }
    names
}

/// The GOT slot an x86-64 stub at `addr` jumps through: `jmp *disp(%rip)`,
/// after an optional `endbr64` and `bnd` prefix.
fn x86_64_slot(code: &[u8], addr: u64) -> Option<u64> {
    const ENDBR64: [u8; 4] = [0xf3, 0x0f, 0x1e, 0xfa];
    const BND: u8 = 0xf2;
    let mut at = if code.starts_with(&ENDBR64) { 4 } else { 0 };
    if code.get(at) == Some(&BND) {
        at += 1;
    }
    if code.get(at..at + 2)? != [0xff, 0x25] {
        return None;
    }
    let disp = i32::from_le_bytes(code.get(at + 2..at + 6)?.try_into().ok()?);
    Some(
        addr.wrapping_add(at as u64 + 6)
            .wrapping_add_signed(i64::from(disp)),
    )
}

/// The GOT slot an AArch64 stub at `addr` loads its target from:
/// `adrp x16, page; ldr x17, [x16, #offset]`, after an optional `bti c`.
fn aarch64_slot(code: &[u8], addr: u64) -> Option<u64> {
    const BTI_C: u32 = 0xd503_245f;
    let insn = |i: usize| {
        let bytes = code.get(i * 4..i * 4 + 4)?;
        Some(u32::from_le_bytes(bytes.try_into().ok()?))
    };
    let first = usize::from(insn(0)? == BTI_C);
    let (adrp, ldr) = (insn(first)?, insn(first + 1)?);
    // `adrp x16` and `ldr x17, [x16, #imm]`, registers included.
    if adrp & 0x9f00_001f != 0x9000_0010 || ldr & 0xffc0_03ff != 0xf940_0211 {
        return None;
    }
    let pages = i64::from(((adrp >> 5) & 0x7_ffff) << 2 | (adrp >> 29) & 3);
    // 21 signed bits of 4 KiB pages.
    let delta = pages << 43 >> 31;
    let pc = addr.wrapping_add(4 * first as u64);
    let offset = u64::from((ldr >> 10) & 0xfff) * 8;
    Some(
        (pc & !0xfff)
            .wrapping_add_signed(delta)
            .wrapping_add(offset),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x86_64_stubs_jump_through_their_slot() {
        // `jmp *0x151c2(%rip)` at 0x3854d0 (objdump: slot 0x39a698).
        let lazy = [0xff, 0x25, 0xc2, 0x51, 0x01, 0x00, 0x68, 0, 0, 0, 0, 0xe9];
        assert_eq!(x86_64_slot(&lazy, 0x3854d0), Some(0x39a698));
        // `endbr64; bnd jmp *-0x10(%rip)` (.plt.sec): slot 11 bytes in, minus 16.
        let ibt = [
            0xf3, 0x0f, 0x1e, 0xfa, 0xf2, 0xff, 0x25, 0xf0, 0xff, 0xff, 0xff,
        ];
        assert_eq!(x86_64_slot(&ibt, 0x1000), Some(0x1000 + 11 - 16));
        // A lazy PLT's `push; jmp rel32` has no slot.
        assert_eq!(x86_64_slot(&[0x68, 0, 0, 0, 0, 0xe9], 0x1000), None);
    }

    #[test]
    fn aarch64_stubs_load_from_their_slot() {
        // adrp x16, 0x410000; ldr x17, [x16, #8]; add x16, x16, #8; br x17
        let stub: Vec<u8> = [0x9000_0090_u32, 0xf940_0611, 0x9100_2210, 0xd61f_0220]
            .iter()
            .flat_map(|i| i.to_le_bytes())
            .collect();
        assert_eq!(aarch64_slot(&stub, 0x400490), Some(0x410008));
        let bti: Vec<u8> = 0xd503_245f_u32
            .to_le_bytes()
            .into_iter()
            .chain(stub)
            .collect();
        assert_eq!(aarch64_slot(&bti, 0x40048c), Some(0x410008));
        // stp x16, x30, [sp, #-16]! (a PLT header's first instruction).
        assert_eq!(aarch64_slot(&0xa9bf_7bf0_u32.to_le_bytes(), 0x400470), None);
    }

    /// Each stub of this test binary's PLT (a Rust program calls glibc
    /// through it) is named after a function glibc exports.
    #[test]
    fn this_test_binary_names_its_stubs_after_their_functions() {
        let data = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let stubs = Stubs::read(&data, |_| None);
        let named: Vec<&str> = stubs
            .stubs
            .iter()
            .map(|s| &*s.2)
            .filter(|n| *n != UNRESOLVED)
            .collect();
        assert!(
            named.iter().any(|n| n.ends_with("@plt") && n.len() > 4),
            "{named:?}"
        );
        let (start, end, name) = &stubs.stubs[stubs.stubs.len() - 1];
        assert_eq!(stubs.find(end - 1).as_ref(), Some(name));
        assert_eq!(stubs.find(*start).as_ref(), Some(name));
        assert_eq!(stubs.find(*end), None);
    }
}
