//! Names for addresses: the binaries a recording touched, opened once each,
//! their DWARF read with `addr2line` (inlined frames included) and their
//! symbol tables as a fallback; kernel addresses from `/proc/kallsyms`.
//!
//! Separate debug files are found the way gdb and perf find them: by the
//! binary's build id under `/usr/lib/debug/.build-id/` (Debian's `*-dbg`
//! packages, e.g. glibc's `libc6-dbg`).

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;
use object::{Object, ObjectSection, ObjectSegment};

mod plt;

/// Bytes of a mapped binary: a section or segment, shared with the unwinder
/// and the DWARF reader without copying.
#[derive(Clone)]
pub(crate) struct Bytes {
    map: Arc<Data>,
    range: Range<usize>,
}

/// A binary's bytes: its file mapped, or a copy (the vdso, which is no file).
pub(crate) enum Data {
    Mapped(Mmap),
    Copied(Vec<u8>),
}

impl std::ops::Deref for Data {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Data::Mapped(map) => map,
            Data::Copied(bytes) => bytes,
        }
    }
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.map[self.range.clone()]
    }
}

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bytes({:?})", self.range)
    }
}

// SAFETY: the bytes live in the `Arc`'s allocation (a mapping, or a vector
// that is never changed), which moving or cloning a `Bytes` does not move.
unsafe impl gimli::StableDeref for Bytes {}
// SAFETY: a clone shares the same allocation, so it derefs to the same bytes.
unsafe impl gimli::CloneStableDeref for Bytes {}

/// How the DWARF is read: sections of the mapped file, or decompressed copies.
type Reader = gimli::EndianReader<gimli::RunTimeEndian, Bytes>;

/// Decompressed debug sections may take at most this many times the size of
/// the file (real ones compress 3 to 10 times)…
pub(crate) const MAX_INFLATION: u64 = 64;
/// …and at most this much in all (1 GiB): a binary that claims more (a
/// decompression bomb, or a giant with compressed DWARF) is named from its
/// symbol table, with one warning.
pub(crate) const MAX_DECOMPRESSED: u64 = 1 << 30;

/// Files mapped for symbols are refused above this size (64 GiB): they are
/// mapped, not read, so this only keeps offsets sane.
const MAX_MAPPED: u64 = 64 << 30;

/// A section's stated address range and its bytes.
pub(crate) struct Section {
    /// Where the section says it is (its SVMA range).
    pub svma: Range<u64>,
    /// Its contents, if stored in the file.
    pub data: Option<Bytes>,
}

/// One ELF file that samples fell in: its unwind sections, its load
/// segments and, once first needed, its debug info.
pub(crate) struct Binary {
    /// The path as the recording named it.
    pub path: PathBuf,
    /// Short name for frames without a symbol: `[libfoo.so]`.
    pub unknown: Arc<str>,
    map: Option<Arc<Data>>,
    /// `(file offset, size, SVMA)` of each load segment.
    segments: Vec<(u64, u64, u64)>,
    debug: Debug,
    /// Names already looked up, by SVMA: root-most first.
    cache: HashMap<u64, Arc<[Arc<str>]>>,
    /// Its PLT stubs, read when an address no symbol covers is first met.
    stubs: Option<plt::Stubs>,
}

/// A function at an address, with its source line there: what pprof's
/// lines hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SourceFrame {
    /// As people read it (as [`Binary::frames`] names it).
    pub name: Arc<str>,
    /// As the binary states it (mangled).
    pub system_name: Arc<str>,
    /// Its source file, as the DWARF names it (with its compilation
    /// folder), if known.
    pub file: Option<Arc<str>>,
    /// Its line there (for a function others were inlined into, the line
    /// of the call); 0 if unknown.
    pub line: u32,
}

/// Where a binary's names come from.
enum DebugInfo {
    /// Its own DWARF (the user's programs, with Rust's standard library):
    /// functions and the functions inlined into them; its symbol table for
    /// addresses the DWARF does not cover.
    Dwarf(Box<addr2line::Context<Reader>>, SymbolTable),
    /// The symbol table of a system library's separate debug file (glibc's
    /// from `libc6-dbg`): function names without reading, and decompressing,
    /// its DWARF.
    Symbols(SymbolTable),
}

/// Debug info is read on another thread from the moment a binary is mapped,
/// while samples are read on this one.
enum Debug {
    Loading(std::thread::JoinHandle<Option<DebugInfo>>),
    Ready(Option<DebugInfo>),
}

impl Binary {
    /// Opens `path`; a binary that is gone or not ELF still gets frames named
    /// after the file.
    pub fn open(path: &Path) -> Binary {
        Binary::open_in(path, Path::new("/"))
    }

    /// Opens `path` as found under `root`, a folder that holds the files
    /// of the machine the recording was made on at their paths (`/` for
    /// this one): the binary at `root/path`, its separate debug file under
    /// `root/usr/lib/debug`.
    pub fn open_in(recorded: &Path, root: &Path) -> Binary {
        let rerooted;
        let path = if root == Path::new("/") {
            recorded
        } else {
            rerooted = root.join(recorded.strip_prefix("/").unwrap_or(recorded));
            &rerooted
        };
        let name = path
            .file_name()
            .map_or_else(|| path.to_string_lossy(), |n| n.to_string_lossy());
        let mut binary = Binary {
            path: path.to_path_buf(),
            unknown: Arc::from(format!("[{name}]")),
            map: None,
            segments: Vec::new(),
            debug: Debug::Ready(None),
            cache: HashMap::new(),
            stubs: None,
        };
        // Not through a symlink someone else planted, not a FIFO (which
        // would block us for good): a regular file, or no file.
        let Ok(file) = crate::sys::safe_fs::open_file(path, MAX_MAPPED) else {
            return binary;
        };
        // SAFETY: the file is mapped read-only; a binary rewritten while we
        // read it (a rebuild during post-processing) yields wrong names at
        // worst, as it would for perf.
        let Ok(map) = (unsafe { Mmap::map(&file) }) else {
            return binary;
        };
        binary.load(Arc::new(Data::Mapped(map)), root);
        binary
    }

    /// The vdso, the kernel's code mapped into every process: the same image
    /// in the profiled program as in this one, so ours is read. For a
    /// recording of another machine (`root` other than `/`), the image
    /// saved as `root/[vdso]`, if any: ours would be another kernel's.
    pub fn vdso_in(root: &Path) -> Binary {
        if root == Path::new("/") {
            return Binary::vdso();
        }
        let mut binary = Binary::open_in(Path::new("/[vdso]"), root);
        binary.path = PathBuf::from("[vdso]");
        binary.unknown = Arc::from("[vdso]");
        binary
    }

    /// This process's vdso.
    fn vdso() -> Binary {
        let mut binary = Binary {
            path: PathBuf::from("[vdso]"),
            unknown: Arc::from("[vdso]"),
            map: None,
            segments: Vec::new(),
            debug: Debug::Ready(None),
            cache: HashMap::new(),
            stubs: None,
        };
        if let Some(bytes) = own_vdso() {
            binary.load(Arc::new(Data::Copied(bytes)), Path::new("/"));
        }
        binary
    }

    fn load(&mut self, map: Arc<Data>, root: &Path) {
        let binary = self;
        if let Ok(obj) = object::File::parse(&map[..]) {
            binary.segments = obj
                .segments()
                .map(|s| {
                    let (offset, size) = s.file_range();
                    (offset, size, s.address())
                })
                .collect();
            binary.map = Some(map.clone());
            let path = binary.path.clone();
            let root = root.to_path_buf();
            binary.debug =
                Debug::Loading(std::thread::spawn(move || load_debug(&path, &map, &root)));
        }
    }

    /// The stated address (SVMA) of file offset `offset`, from the load segments.
    pub fn svma_of_offset(&self, offset: u64) -> Option<u64> {
        const PAGE: u64 = 4096;
        // Segments can share a page: the mapping starts in the last one
        // that begins at or before it.
        self.segments
            .iter()
            .filter(|(off, size, _)| offset >= off & !(PAGE - 1) && offset < off + size)
            .max_by_key(|(off, _, _)| *off)
            .map(|(off, _, svma)| svma.wrapping_sub(*off).wrapping_add(offset))
    }

    /// A section by name, for the unwinder.
    pub fn section(&self, name: &str) -> Option<Section> {
        let map = self.map.as_ref()?;
        let obj = object::File::parse(&map[..]).ok()?;
        let section = obj.section_by_name(name)?;
        let data = section.file_range().map(|(offset, size)| Bytes {
            map: map.clone(),
            range: offset as usize..(offset + size) as usize,
        });
        Some(Section {
            svma: section.address()..section.address() + section.size(),
            data,
        })
    }

    /// Whether the file could be opened and parsed.
    pub fn is_loaded(&self) -> bool {
        self.map.is_some()
    }

    /// The frames at `svma`, root-most first: the function, then the
    /// functions inlined into it down to the one whose code it is.
    pub fn frames(&mut self, svma: u64, inline: bool) -> Arc<[Arc<str>]> {
        if let Some(hit) = self.cache.get(&svma) {
            return hit.clone();
        }
        if let Debug::Loading(_) = self.debug {
            let Debug::Loading(thread) = std::mem::replace(&mut self.debug, Debug::Ready(None))
            else {
                unreachable!("matched above")
            };
            self.debug = Debug::Ready(thread.join().ok().flatten());
        }
        let mut names: Vec<Arc<str>> = Vec::new();
        if let Debug::Ready(Some(DebugInfo::Dwarf(ref ctx, _))) = self.debug {
            // Split DWARF (`.dwo`, `.dwp` files) is not loaded: those are
            // opened by names the binary states, and the skeleton names the
            // function anyway.
            if let Ok(mut frames) = ctx.find_frames(svma).skip_all_loads() {
                while let Ok(Some(frame)) = frames.next() {
                    if let Some(name) = frame.function.as_ref().and_then(|f| f.raw_name().ok()) {
                        names.push(Arc::from(demangle(&name)));
                    }
                }
            }
        }
        // A PLT stub before the symbol table: no symbol covers a stub, and
        // the nearest symbol below it would name it after an unrelated function.
        if names.is_empty() {
            names.extend(self.stub(svma));
        }
        if names.is_empty() {
            if let Debug::Ready(Some(ref debug)) = self.debug {
                names.extend(debug.symbol(svma));
            }
        }
        if names.is_empty() {
            names.push(self.unknown.clone());
        }
        if !inline && names.len() > 1 {
            // The function whose code this is comes last; the rest were inlined into it.
            names.drain(..names.len() - 1);
        }
        names.reverse();
        let names: Arc<[Arc<str>]> = names.into();
        self.cache.insert(svma, names.clone());
        names
    }

    /// Debug info, once read (waits for the thread reading it).
    fn debug_info(&mut self) -> Option<&DebugInfo> {
        if let Debug::Loading(_) = self.debug {
            let Debug::Loading(thread) = std::mem::replace(&mut self.debug, Debug::Ready(None))
            else {
                unreachable!("matched above")
            };
            self.debug = Debug::Ready(thread.join().ok().flatten());
        }
        match &self.debug {
            Debug::Ready(Some(debug)) => Some(debug),
            _ => None,
        }
    }

    /// The functions at `svma` with their source lines, innermost first (as
    /// pprof lists a location's lines): the function whose code it is, then
    /// each function it was inlined into, with the line of the call, up to
    /// the outermost. The same functions as [`Binary::frames`] names (with
    /// `inline` false, the outermost alone); file and line are known where
    /// the binary has DWARF.
    pub fn source_frames(&mut self, svma: u64, inline: bool) -> Vec<SourceFrame> {
        let mut out = Vec::new();
        if let Some(DebugInfo::Dwarf(ctx, _)) = self.debug_info() {
            if let Ok(mut frames) = ctx.find_frames(svma).skip_all_loads() {
                while let Ok(Some(frame)) = frames.next() {
                    let Some(raw) = frame.function.as_ref().and_then(|f| f.raw_name().ok()) else {
                        continue;
                    };
                    let (file, line) = frame
                        .location
                        .map_or((None, 0), |l| (l.file.map(Arc::from), l.line.unwrap_or(0)));
                    out.push(SourceFrame {
                        name: Arc::from(demangle(&raw)),
                        system_name: Arc::from(&*raw),
                        file,
                        line,
                    });
                }
            }
        }
        if out.is_empty() {
            // No DWARF here: named as `frames` names it, without a file.
            let name = self.frames(svma, false).last().cloned();
            let raw = match self.debug_info() {
                Some(debug) => debug.raw_symbol(svma),
                None => None,
            };
            let name = name.unwrap_or_else(|| self.unknown.clone());
            out.push(SourceFrame {
                system_name: raw.filter(|r| demangle(r) == *name).unwrap_or(name.clone()),
                name,
                file: None,
                line: 0,
            });
        }
        if !inline && out.len() > 1 {
            out.drain(..out.len() - 1);
        }
        out
    }

    /// The binary's build id (`NT_GNU_BUILD_ID`), in hex.
    pub fn build_id(&self) -> Option<String> {
        let map = self.map.as_ref()?;
        let obj = object::File::parse(&map[..]).ok()?;
        let id = obj.build_id().ok()??;
        Some(id.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The load segment that holds `svma`: `(file offset, size, SVMA)`.
    pub fn segment_of(&self, svma: u64) -> Option<(u64, u64, u64)> {
        self.segments
            .iter()
            .find(|(_, size, start)| svma >= *start && svma - start < (*size).max(1))
            .copied()
    }

    /// The PLT stub at `svma`: `memcpy@plt`.
    fn stub(&mut self, svma: u64) -> Option<Arc<str>> {
        let map = self.map.as_ref()?;
        let debug = match &self.debug {
            Debug::Ready(Some(debug)) => Some(debug),
            _ => None,
        };
        self.stubs
            .get_or_insert_with(|| plt::Stubs::read(map, |addr| debug?.function_at(addr)))
            .find(svma)
    }
}

impl DebugInfo {
    /// The function symbol containing `svma`.
    fn symbol(&self, svma: u64) -> Option<Arc<str>> {
        match self {
            DebugInfo::Dwarf(_, table) | DebugInfo::Symbols(table) => table.find(svma),
        }
    }

    /// The raw (mangled) name of the function symbol containing `svma`.
    fn raw_symbol(&self, svma: u64) -> Option<Arc<str>> {
        match self {
            DebugInfo::Dwarf(_, table) | DebugInfo::Symbols(table) => table.find_raw(svma),
        }
    }

    /// The function that starts at `svma` exactly (an IFUNC's resolver).
    fn function_at(&self, svma: u64) -> Option<Arc<str>> {
        match self {
            DebugInfo::Dwarf(_, table) | DebugInfo::Symbols(table) => table.starting_at(svma),
        }
    }
}

/// Opens the DWARF of the binary at `path` (mapped as `map`), from its
/// separate debug file when one is installed under `root`.
fn load_debug(path: &Path, map: &Arc<Data>, root: &Path) -> Option<DebugInfo> {
    if let Data::Copied(bytes) = &**map {
        return SymbolTable::of(bytes).map(DebugInfo::Symbols);
    }
    let obj = object::File::parse(&map[..]).ok()?;
    let separate = obj
        .build_id()
        .ok()
        .flatten()
        .and_then(|id| separate_debug_file(root, id));
    if let Some(table) = separate.and_then(|debug| SymbolTable::read(&debug)) {
        return Some(DebugInfo::Symbols(table));
    }
    let symbols = SymbolTable::of(&map[..]).unwrap_or_default();
    match dwarf_of(&obj, map) {
        Ok(ctx) => Some(DebugInfo::Dwarf(Box::new(ctx), symbols)),
        Err(DwarfError::TooBig(claimed)) => {
            crate::say!(
                "rust-flamegraph: warning: {}: its compressed debug info claims {:.1} MB \
                 uncompressed, more than the {:.1} MB read for a file of {:.1} MB (at most \
                 {MAX_INFLATION}x its size, {} MiB in all): its DWARF is skipped (no inlined \
                 frames), its functions are named from its symbol table",
                path.display(),
                claimed as f64 / 1e6,
                decompression_cap(map.len()) as f64 / 1e6,
                map.len() as f64 / 1e6,
                MAX_DECOMPRESSED >> 20,
            );
            Some(DebugInfo::Symbols(symbols))
        }
        Err(DwarfError::Unreadable) => Some(DebugInfo::Symbols(symbols)),
    }
}

/// Why a binary's DWARF is not used.
enum DwarfError {
    /// Its compressed sections claim more than [`decompression_cap`] (the total claimed).
    TooBig(u64),
    /// It cannot be parsed.
    Unreadable,
}

/// The most a file of `size` bytes may decompress to: [`MAX_INFLATION`]
/// times its size, at most [`MAX_DECOMPRESSED`].
fn decompression_cap(size: usize) -> u64 {
    (size as u64)
        .saturating_mul(MAX_INFLATION)
        .min(MAX_DECOMPRESSED)
}

/// The DWARF of `obj` (mapped as `map`), read in place; compressed sections
/// are decompressed only if their stated sizes, together, are within
/// [`decompression_cap`] (checked before anything is allocated). Nothing is
/// opened by name: split DWARF is not loaded.
fn dwarf_of(
    obj: &object::File<'_>,
    map: &Arc<Data>,
) -> Result<addr2line::Context<Reader>, DwarfError> {
    let endian = if obj.is_little_endian() {
        gimli::RunTimeEndian::Little
    } else {
        gimli::RunTimeEndian::Big
    };
    let reader = |map: Arc<Data>, range: Range<usize>| {
        gimli::EndianReader::new(Bytes { map, range }, endian)
    };
    let cap = decompression_cap(map.len());
    let empty = Arc::new(Data::Copied(Vec::new()));
    let mut claimed = 0u64;
    let dwarf = gimli::Dwarf::load(|id| -> Result<Reader, DwarfError> {
        let Some(section) = obj.section_by_name(id.name()) else {
            return Ok(reader(empty.clone(), 0..0));
        };
        let compressed = section
            .compressed_file_range()
            .map_err(|_| DwarfError::Unreadable)?;
        if compressed.format == object::CompressionFormat::None {
            let Some((offset, size)) = section.file_range() else {
                return Ok(reader(empty.clone(), 0..0)); // SHT_NOBITS
            };
            let start = usize::try_from(offset).map_err(|_| DwarfError::Unreadable)?;
            let end =
                usize::try_from(offset.saturating_add(size)).map_err(|_| DwarfError::Unreadable)?;
            if end > map.len() {
                return Err(DwarfError::Unreadable);
            }
            return Ok(reader(map.clone(), start..end));
        }
        claimed = claimed.saturating_add(compressed.uncompressed_size);
        if claimed > cap {
            // Go on adding up what is claimed, for the warning; decompress nothing.
            return Ok(reader(empty.clone(), 0..0));
        }
        let data = section
            .uncompressed_data()
            .map_err(|_| DwarfError::Unreadable)?
            .into_owned();
        let len = data.len();
        Ok(reader(Arc::new(Data::Copied(data)), 0..len))
    })?;
    if claimed > cap {
        return Err(DwarfError::TooBig(claimed));
    }
    let mut dwarf = dwarf;
    dwarf.populate_abbreviations_cache(gimli::AbbreviationsCacheStrategy::Duplicates);
    addr2line::Context::from_dwarf(dwarf).map_err(|_| DwarfError::Unreadable)
}

/// Function symbols by address, one name per address.
#[derive(Default)]
pub(crate) struct SymbolTable {
    /// `(start, end, name)`, sorted by start.
    functions: Vec<(u64, u64, Arc<str>)>,
    /// Each function's name as the table states it (mangled), where it
    /// reads otherwise demangled: by index in `functions`.
    raw: HashMap<usize, Arc<str>>,
}

impl SymbolTable {
    /// The function symbols of the ELF file at `path`.
    fn read(path: &Path) -> Option<SymbolTable> {
        let file = crate::sys::safe_fs::open_file(path, MAX_MAPPED).ok()?;
        // SAFETY: mapped read-only, for the duration of this call.
        let map = unsafe { Mmap::map(&file) }.ok()?;
        SymbolTable::of(&map)
    }

    /// The function symbols of an ELF image (`.symtab`, else `.dynsym`).
    fn of(data: &[u8]) -> Option<SymbolTable> {
        use object::ObjectSymbol;
        let obj = object::File::parse(data).ok()?;
        let symbols: Vec<object::Symbol> = if obj.symbols().next().is_some() {
            obj.symbols().collect()
        } else {
            obj.dynamic_symbols().collect()
        };
        let mut all: Vec<(u64, u64, bool, &str)> = symbols
            .iter()
            .filter(|s| s.kind() == object::SymbolKind::Text && s.address() != 0)
            .filter_map(|s| Some((s.address(), s.size(), s.is_global(), s.name().ok()?)))
            .collect();
        // Aliases share an address: the public name first (`free`, not
        // `__GI___libc_free` or `cfree@GLIBC_2.2.5`).
        all.sort_by_key(|&(addr, _, global, name)| {
            let underscores = name.len() - name.trim_start_matches('_').len();
            (
                addr,
                !global,
                name.contains('@'),
                underscores,
                name.len(),
                name,
            )
        });
        all.dedup_by_key(|s| s.0);
        let starts: Vec<u64> = all.iter().map(|s| s.0).collect();
        let mut raw = HashMap::new();
        let functions = all
            .into_iter()
            .enumerate()
            .map(|(i, (addr, size, _, name))| {
                // `__libc_start_main@@GLIBC_2.34`: the version is no part of the name.
                let name = name.split('@').next().unwrap_or(name);
                // Assembly entry points (ld.so's `_start`) state no size:
                // they run up to the next symbol.
                let end = match size {
                    0 => starts.get(i + 1).copied().unwrap_or(addr + 1),
                    size => addr + size,
                };
                let demangled = demangle(name);
                if demangled != name {
                    raw.insert(i, Arc::from(name));
                }
                (addr, end, Arc::from(demangled))
            })
            .collect();
        Some(SymbolTable { functions, raw })
    }

    /// The function that starts at `svma`.
    fn starting_at(&self, svma: u64) -> Option<Arc<str>> {
        let i = self.functions.partition_point(|f| f.0 < svma);
        let (start, _, name) = self.functions.get(i)?;
        (*start == svma).then(|| name.clone())
    }

    /// The index of the function containing `svma`.
    fn index_of(&self, svma: u64) -> Option<usize> {
        let i = self
            .functions
            .partition_point(|f| f.0 <= svma)
            .checked_sub(1)?;
        (svma < self.functions[i].1).then_some(i)
    }

    /// The function containing `svma`.
    fn find(&self, svma: u64) -> Option<Arc<str>> {
        self.index_of(svma).map(|i| self.functions[i].2.clone())
    }

    /// The function containing `svma`, named as the table states it.
    fn find_raw(&self, svma: u64) -> Option<Arc<str>> {
        let i = self.index_of(svma)?;
        Some(self.raw.get(&i).unwrap_or(&self.functions[i].2).clone())
    }
}

/// This process's vdso image, copied from its memory (`/proc/self/mem`).
fn own_vdso() -> Option<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let line = maps.lines().find(|l| l.ends_with("[vdso]"))?;
    let (start, end) = line.split_whitespace().next()?.split_once('-')?;
    let (start, end) = (
        u64::from_str_radix(start, 16).ok()?,
        u64::from_str_radix(end, 16).ok()?,
    );
    let mut mem = std::fs::File::open("/proc/self/mem").ok()?;
    mem.seek(SeekFrom::Start(start)).ok()?;
    let mut bytes = vec![0; usize::try_from(end.checked_sub(start)?).ok()?];
    mem.read_exact(&mut bytes).ok()?;
    Some(bytes)
}

/// `root/usr/lib/debug/.build-id/ab/cdef….debug` for build id `abcdef…`, if installed.
fn separate_debug_file(root: &Path, build_id: &[u8]) -> Option<PathBuf> {
    let (first, rest) = build_id.split_first()?;
    let rest: String = rest.iter().map(|b| format!("{b:02x}")).collect();
    let path = root.join(format!("usr/lib/debug/.build-id/{first:02x}/{rest}.debug"));
    path.is_file().then_some(path)
}

/// A Rust or C name as people read it: `crate::module::Type::method`, generic
/// arguments kept, the hash dropped.
/// glibc's internal aliases (`__GI___libc_free`) read as the public name.
pub fn demangle(name: &str) -> String {
    demangled(name)
}

/// `name` without its generic arguments (`--short-names`):
/// `rayon_core::join::join_context::<…>::{closure#0}` reads
/// `rayon_core::join::join_context::{closure#0}`, `alloc::vec::Vec<T>::push`
/// reads `alloc::vec::Vec::push`. A qualified path keeps its qualifier,
/// shortened too: `<alloc::vec::Vec<u8> as core::ops::Drop>::drop` reads
/// `<alloc::vec::Vec as core::ops::Drop>::drop`. Deep generic Rust code has
/// names of hundreds of bytes, nearly all of them arguments.
pub fn short_name(name: &str) -> std::borrow::Cow<'_, str> {
    if !name.contains('<') {
        return std::borrow::Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len());
    let mut chars = name.chars().peekable();
    let mut previous = None;
    while let Some(c) = chars.next() {
        let generic = c == '<'
            && (previous.is_some_and(|p: char| p.is_alphanumeric() || p == '_')
                || out.ends_with("::"));
        if !generic {
            out.push(c);
            previous = Some(c);
            continue;
        }
        // Skip the balanced argument list (`->` inside is not a bracket).
        let mut depth = 1;
        let mut last = c;
        for c in chars.by_ref() {
            match c {
                '<' => depth += 1,
                '>' if last != '-' => depth -= 1,
                _ => {}
            }
            last = c;
            if depth == 0 {
                break;
            }
        }
        if out.ends_with("::") {
            out.truncate(out.len() - 2);
        }
        previous = out.chars().last();
    }
    std::borrow::Cow::Owned(out)
}

fn demangled(name: &str) -> String {
    match rustc_demangle::try_demangle(name) {
        Ok(d) => format!("{d:#}"),
        Err(_) => name
            .strip_prefix("__GI___libc_")
            .or_else(|| name.strip_prefix("__GI_"))
            .unwrap_or(name)
            .to_string(),
    }
}

/// Kernel symbols from `/proc/kallsyms`, when the kernel shows their
/// addresses (they read as zero under `kptr_restrict`).
#[derive(Debug, Default)]
pub(crate) struct Kernel {
    /// The file's text; names are cut from it when first looked up.
    text: String,
    /// `(address, name's byte range in text)`, sorted by address; empty when hidden.
    symbols: Vec<(u64, std::ops::Range<usize>)>,
    named: HashMap<usize, Arc<str>>,
    unnamed: Option<Arc<str>>,
}

impl Kernel {
    /// Reads `/proc/kallsyms` (or `path` in tests).
    pub fn load(path: &Path) -> Kernel {
        Kernel::parse(std::fs::read_to_string(path).unwrap_or_default())
    }

    /// Kernel symbols from a kallsyms file someone else gave (`--symfs`):
    /// read with the invoking user's rights, a regular file only, at most
    /// 256 MiB (a kernel's is about 10).
    pub fn load_given(path: &Path) -> Kernel {
        let text = crate::sys::safe_fs::open_input(path, crate::sys::safe_fs::Accept::Regular)
            .and_then(|file| crate::sys::safe_fs::read_bounded(file, 256 << 20))
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .unwrap_or_default();
        Kernel::parse(text)
    }

    /// Kernel symbols from kallsyms' text.
    fn parse(text: String) -> Kernel {
        let base = text.as_ptr() as usize;
        let mut symbols: Vec<(u64, std::ops::Range<usize>)> = text
            .lines()
            .filter_map(|line| {
                let mut parts = line.splitn(4, ' ');
                let addr = u64::from_str_radix(parts.next()?, 16).ok()?;
                let kind = parts.next()?;
                let name = parts.next()?.split('\t').next()?;
                let start = name.as_ptr() as usize - base;
                (addr != 0 && matches!(kind, "t" | "T" | "w" | "W"))
                    .then_some((addr, start..start + name.len()))
            })
            .collect();
        // Aliases share an address (`clear_page`, `__pi_clear_page`): one
        // name for it, the same whatever else the table holds: the public
        // one (fewest leading underscores), then the shortest.
        symbols.sort_unstable_by_key(|(addr, range)| {
            let name = &text[range.clone()];
            let underscores = name.len() - name.trim_start_matches('_').len();
            (*addr, underscores, name.len(), name)
        });
        symbols.dedup_by_key(|s| s.0);
        Kernel {
            text,
            symbols,
            named: HashMap::new(),
            unnamed: None,
        }
    }

    /// Whether kernel frames can be named.
    pub fn named(&self) -> bool {
        !self.symbols.is_empty()
    }

    /// The name of the kernel function at `addr`; `[kernel]` when names are hidden.
    pub fn name(&mut self, addr: u64) -> Arc<str> {
        let i = self.symbols.partition_point(|s| s.0 <= addr);
        match i.checked_sub(1) {
            Some(i) => {
                let range = self.symbols[i].1.clone();
                let text = &self.text;
                self.named
                    .entry(i)
                    .or_insert_with(|| Arc::from(format!("{}_[k]", &text[range])))
                    .clone()
            }
            None => self
                .unnamed
                .get_or_insert_with(|| Arc::from("[kernel]"))
                .clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_drop_generic_arguments_and_keep_qualifiers() {
        for (full, short) in [
            ("demo::main", "demo::main"),
            ("alloc::vec::Vec<T>::push", "alloc::vec::Vec::push"),
            (
                "rayon_core::join::join_context::<rayon::iter::plumbing::bridge<u64, fn(u8) -> u8>::{closure#0}, u64>::{closure#0}",
                "rayon_core::join::join_context::{closure#0}",
            ),
            (
                "<alloc::vec::Vec<u8> as core::ops::drop::Drop>::drop",
                "<alloc::vec::Vec as core::ops::drop::Drop>::drop",
            ),
            ("core::ptr::drop_in_place::<std::thread::Packet<()>>", "core::ptr::drop_in_place"),
            ("[kernel]", "[kernel]"),
        ] {
            assert_eq!(short_name(full), short, "{full}");
        }
    }

    #[test]
    fn rust_names_keep_paths_and_generics_without_the_hash() {
        assert_eq!(
            demangle("_ZN4demo3run17h0123456789abcdefE"),
            "demo::run".to_string()
        );
        assert_eq!(
            demangle("_RNvMNtCs1234_4core5sliceSp4sortB4_"),
            "<[_]>::sort"
        );
        assert_eq!(demangle("malloc"), "malloc");
        assert_eq!(demangle("__GI___libc_free"), "free");
    }

    #[test]
    fn kernel_names_come_from_kallsyms_or_one_kernel_frame() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kallsyms");
        std::fs::write(
            &path,
            "ffffffff81000000 T _stext\nffffffff81000100 t do_syscall_64\nffffffff81000200 D data\n",
        )
        .unwrap();
        let mut k = Kernel::load(&path);
        assert!(k.named());
        assert_eq!(&*k.name(0xffffffff81000150), "do_syscall_64_[k]");
        // Aliases: the public name, whichever order the table lists them in.
        for table in [
            "ffff800080010000 T __pi_clear_page\nffff800080010000 T clear_page\nffff800080010100 T next\n",
            "ffff800080010000 T clear_page\nffff800080010000 T __pi_clear_page\nffff800080010100 T next\n",
        ] {
            std::fs::write(&path, table).unwrap();
            assert_eq!(&*Kernel::load(&path).name(0xffff800080010040), "clear_page_[k]");
        }
        // Another machine's (`--symfs`): a FIFO or a device there is not
        // waited on or read without end.
        let fifo = dir.path().join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        assert!(!Kernel::load_given(&fifo).named());
        assert!(!Kernel::load_given(Path::new("/dev/zero")).named());
        std::fs::write(&path, "0000000000000000 T _stext\n").unwrap();
        let mut hidden = Kernel::load(&path);
        assert!(!hidden.named());
        assert_eq!(&*hidden.name(0xffffffff81000150), "[kernel]");
    }

    #[test]
    fn this_test_binary_names_its_own_functions_with_paths() {
        let exe = std::env::current_exe().unwrap();
        let mut binary = Binary::open(&exe);
        assert!(binary.is_loaded());
        // The address of a function of ours, as the binary states it: find
        // it through the symbol table.
        let data = std::fs::read(&exe).unwrap();
        let obj = object::File::parse(&data[..]).unwrap();
        let sym = object::Object::symbols(&obj)
            .find(|s| {
                object::ObjectSymbol::name(s)
                    .is_ok_and(|n| demangle(n).ends_with("symbolize::demangle"))
            })
            .expect("demangle is in the symbol table");
        let frames = binary.frames(object::ObjectSymbol::address(&sym), true);
        assert!(
            frames.iter().any(|f| f.ends_with("symbolize::demangle")),
            "{frames:?}"
        );
    }
}

#[cfg(test)]
mod plt_tests {
    use super::*;

    /// The frames named at each 8 bytes of the PLT stubs of the binary at
    /// `path` (after `.plt`'s header, which is shared by all).
    fn plt_names(path: &Path) -> Vec<Arc<str>> {
        let data = std::fs::read(path).unwrap();
        let obj = object::File::parse(&data[..]).unwrap();
        let mut binary = Binary::open(path);
        let mut names = Vec::new();
        for section in obj.sections() {
            if section.name().is_ok_and(|n| n.starts_with(".plt")) {
                let first = section.address() + if section.name() == Ok(".plt") { 16 } else { 0 };
                for addr in (first..section.address() + section.size()).step_by(8) {
                    names.push(binary.frames(addr, true).last().unwrap().clone());
                }
            }
        }
        assert!(!names.is_empty(), "{} has a PLT", path.display());
        names
    }

    /// glibc calls its own IFUNCs (`memcpy`, from `realloc`) through its PLT:
    /// a sample on such a stub reads as the function, never `[libc.so.6]`.
    #[test]
    fn glibc_plt_stubs_are_named_after_the_functions_they_call() {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let path = maps
            .lines()
            .filter_map(|l| l.split_whitespace().nth(5))
            .find(|p| p.ends_with("/libc.so.6"))
            .expect("this test links glibc");
        let names = plt_names(Path::new(path));
        assert!(
            names.iter().all(|n| n.ends_with("@plt") && n.len() > 4),
            "{names:?}"
        );
        assert!(names.iter().any(|n| &**n == "memcpy@plt"), "{names:?}");
    }

    /// A Rust program's own stubs (it calls glibc through them) have DWARF
    /// and symbols nearby, but neither names them: the stub does.
    #[test]
    fn a_rust_programs_plt_stubs_are_not_named_after_a_nearby_function() {
        let names = plt_names(&std::env::current_exe().unwrap());
        assert!(
            names.iter().all(|n| n.ends_with("@plt") && n.len() > 4),
            "{names:?}"
        );
    }
}
