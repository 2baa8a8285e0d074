//! Steps 1 and 2 of loading: screen the file and its dynamic symbol table without running
//! any of its code.

use std::fs::File;
use std::path::Path;

use object::{Architecture, BinaryFormat, Object, ObjectKind, ObjectSymbol, ReadCache, SymbolKind};
use weir_sdk::abi::{METADATA_SYMBOL, METADATA_SYMBOL_PREFIX};

use crate::error::LoadError;

/// Smallest file that can be an ELF shared object with a dynamic symbol table.
pub(crate) const MIN_FILE_SIZE: u64 = 64;
/// Largest plugin file accepted (1 GiB): anything larger is not a connector plugin.
pub(crate) const MAX_FILE_SIZE: u64 = 1 << 30;

/// What the symbol table says about the metadata function.
#[derive(Debug, Clone)]
pub(crate) struct MetadataSymbol {
    /// Its name: [`METADATA_SYMBOL`], or (ABI 1.2 on) that with a suffix.
    pub(crate) name: String,
    /// The symbol's value: its address relative to the image's load bias.
    pub(crate) address: u64,
}

/// Whether `name` is the metadata symbol of some ABI version: [`METADATA_SYMBOL`] itself
/// (1.0, 1.1) or [`METADATA_SYMBOL_PREFIX`] and a suffix (1.2 on).
fn is_metadata_symbol(name: &[u8]) -> bool {
    name == METADATA_SYMBOL.as_bytes()
        || (name.len() > METADATA_SYMBOL_PREFIX.len()
            && name.starts_with(METADATA_SYMBOL_PREFIX.as_bytes()))
}

/// Checks that `file` is a regular ELF shared object for this machine that exports one
/// metadata function ([`METADATA_SYMBOL`], bare or with a suffix). Reads only the headers
/// and the dynamic symbol table.
pub(crate) fn screen(file: &Path) -> Result<MetadataSymbol, LoadError> {
    let io = |source| LoadError::Io {
        file: file.to_owned(),
        source,
    };
    let metadata = std::fs::metadata(file).map_err(io)?;
    if !metadata.is_file() {
        return Err(LoadError::NotAFile {
            file: file.to_owned(),
        });
    }
    let size = metadata.len();
    if !(MIN_FILE_SIZE..=MAX_FILE_SIZE).contains(&size) {
        return Err(LoadError::BadSize {
            file: file.to_owned(),
            size,
            min: MIN_FILE_SIZE,
            max: MAX_FILE_SIZE,
        });
    }
    let cache = ReadCache::new(File::open(file).map_err(io)?);
    let not_shared = |reason: String| LoadError::NotSharedObject {
        file: file.to_owned(),
        reason,
    };
    let object = object::File::parse(&cache).map_err(|e| not_shared(e.to_string()))?;
    if object.format() != BinaryFormat::Elf {
        return Err(not_shared(format!(
            "{:?} file, expected ELF",
            object.format()
        )));
    }
    if object.architecture() != HOST_ARCHITECTURE
        || object.is_64() != cfg!(target_pointer_width = "64")
    {
        return Err(not_shared(format!(
            "built for {:?} ({}-bit), this host is {:?} ({}-bit)",
            object.architecture(),
            if object.is_64() { 64 } else { 32 },
            HOST_ARCHITECTURE,
            usize::BITS
        )));
    }
    if object.kind() != ObjectKind::Dynamic {
        return Err(not_shared(format!(
            "{:?} ELF file, expected a shared object",
            object.kind()
        )));
    }
    let symbols: Vec<_> = object
        .dynamic_symbols()
        .filter(|s| s.is_definition() && s.name_bytes().is_ok_and(is_metadata_symbol))
        .collect();
    let symbol = match symbols.as_slice() {
        [symbol] => symbol,
        [] => {
            return Err(LoadError::MissingMetadataSymbol {
                file: file.to_owned(),
                symbol: METADATA_SYMBOL,
            });
        }
        several => {
            return Err(LoadError::SeveralMetadataSymbols {
                file: file.to_owned(),
                symbols: several
                    .iter()
                    .map(|s| {
                        String::from_utf8_lossy(s.name_bytes().unwrap_or_default()).into_owned()
                    })
                    .collect(),
            });
        }
    };
    let name = String::from_utf8_lossy(symbol.name_bytes().unwrap_or_default()).into_owned();
    if symbol.kind() != SymbolKind::Text {
        let found = match symbol.kind() {
            SymbolKind::Data => "a data object (a `static`?)".to_owned(),
            SymbolKind::Tls => "a thread-local".to_owned(),
            other => format!("{other:?}").to_lowercase(),
        };
        return Err(LoadError::MetadataSymbolNotFunction {
            file: file.to_owned(),
            symbol: name,
            found,
        });
    }
    Ok(MetadataSymbol {
        address: symbol.address(),
        name,
    })
}

#[cfg(target_arch = "x86_64")]
const HOST_ARCHITECTURE: Architecture = Architecture::X86_64;
#[cfg(target_arch = "aarch64")]
const HOST_ARCHITECTURE: Architecture = Architecture::Aarch64;
#[cfg(target_arch = "x86")]
const HOST_ARCHITECTURE: Architecture = Architecture::I386;
#[cfg(target_arch = "arm")]
const HOST_ARCHITECTURE: Architecture = Architecture::Arm;
#[cfg(target_arch = "riscv64")]
const HOST_ARCHITECTURE: Architecture = Architecture::Riscv64;
