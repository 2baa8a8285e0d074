//! The mapped image of a loaded plugin: its loadable segments, used to check that every
//! pointer the plugin hands out points into its own code or data.

use std::ffi::c_void;
use std::ops::Range;

/// The loadable segments of one shared object, as mapped in this process.
#[derive(Debug, Clone)]
pub(crate) struct Image {
    /// The load bias: address = bias + ELF virtual address.
    pub(crate) bias: usize,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone)]
struct Segment {
    range: Range<usize>,
    readable: bool,
    executable: bool,
}

/// What a range of memory must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Data the host reads.
    Read,
    /// Code the host calls.
    Execute,
}

impl Access {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Access::Read => "readable",
            Access::Execute => "executable",
        }
    }
}

impl Image {
    /// The image of the shared object that contains `address`, or `None` if no loaded
    /// object does.
    pub(crate) fn containing(address: usize) -> Option<Image> {
        struct Search {
            address: usize,
            found: Option<Image>,
        }
        /// The `dl_iterate_phdr` callback.
        ///
        /// # Safety
        /// `info` must be valid for the call and `data` must point to a `Search`.
        unsafe extern "C" fn visit(
            info: *mut libc::dl_phdr_info,
            _size: libc::size_t,
            data: *mut c_void,
        ) -> libc::c_int {
            // SAFETY: `data` is the `&mut Search` passed to `dl_iterate_phdr` below, which
            // outlives the iteration; nothing else aliases it during the callback.
            let search = unsafe { &mut *data.cast::<Search>() };
            // SAFETY: glibc passes a valid `dl_phdr_info` for the duration of the callback.
            let info = unsafe { &*info };
            let phdrs: &[libc::Elf64_Phdr] = if info.dlpi_phdr.is_null() || info.dlpi_phnum == 0 {
                &[]
            } else {
                // SAFETY: `dlpi_phdr` points to `dlpi_phnum` program headers of the object,
                // valid for the duration of the callback.
                unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum.into()) }
            };
            let bias = info.dlpi_addr as usize;
            let segments: Vec<Segment> = phdrs
                .iter()
                .filter(|p| p.p_type == libc::PT_LOAD)
                .map(|p| {
                    let start = bias.wrapping_add(p.p_vaddr as usize);
                    Segment {
                        range: start..start.wrapping_add(p.p_memsz as usize),
                        readable: p.p_flags & libc::PF_R != 0,
                        executable: p.p_flags & libc::PF_X != 0,
                    }
                })
                .collect();
            if segments.iter().any(|s| s.range.contains(&search.address)) {
                search.found = Some(Image { bias, segments });
                1
            } else {
                0
            }
        }
        let mut search = Search {
            address,
            found: None,
        };
        // SAFETY: `visit` only dereferences what glibc passes it and our `search`, which
        // lives across the call. `dl_iterate_phdr` holds the loader lock during iteration,
        // so the program headers cannot be unmapped while we read them.
        unsafe { libc::dl_iterate_phdr(Some(visit), (&raw mut search).cast()) };
        search.found
    }

    /// Whether `[address, address + len)` lies inside one segment with the given access.
    pub(crate) fn contains(&self, address: usize, len: usize, access: Access) -> bool {
        let Some(end) = address.checked_add(len.max(1)) else {
            return false;
        };
        address != 0
            && self.segments.iter().any(|s| {
                s.range.start <= address
                    && end <= s.range.end
                    && match access {
                        Access::Read => s.readable,
                        Access::Execute => s.executable,
                    }
            })
    }
}
