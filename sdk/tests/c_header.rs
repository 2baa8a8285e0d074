//! The C header for the connector ABI, `sdk/include/weir_connector.h`, is generated from
//! `src/abi.rs`: this test generates it again and fails on any difference, so the header
//! cannot drift from the Rust definitions. Run with `WEIR_BLESS=1` to rewrite it after a
//! change to the ABI.
//!
//! Types come from the source (read with `syn`): every `#[repr(C)]` struct, every
//! `#[repr(transparent)]` integer newtype with its constants, the function pointer type
//! aliases, and the vtable from the `ConnectorFfi` trait (as `thin_trait_object` lays it
//! out: one pointer per method in order, `drop` last). Values the compiler computes (the
//! ABI version, the layout fingerprint, every struct's size and alignment) come from this
//! build of the sdk; the header asserts the sizes and alignments, so a C compiler that lays
//! a struct out differently refuses to build the plugin.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use syn::{Attribute, Expr, Fields, FnArg, Item, ReturnType, Type};
use weir_sdk::abi;

const HEADER: &str = "include/weir_connector.h";

/// Size, alignment and field offsets of a `repr(C)` type, as this build of the sdk has it.
struct Layout {
    size: usize,
    align: usize,
    fields: Vec<(&'static str, usize)>,
}

/// Every `repr(C)` type with its fields, in order (checked against `src/abi.rs`, so the
/// list cannot go stale).
fn layouts() -> BTreeMap<&'static str, Layout> {
    macro_rules! layouts {
        ($($ty:ident { $($field:ident),* }),* $(,)?) => {
            BTreeMap::from([$((
                stringify!($ty),
                Layout {
                    size: size_of::<abi::$ty>(),
                    align: align_of::<abi::$ty>(),
                    fields: vec![$((stringify!($field), std::mem::offset_of!(abi::$ty, $field))),*],
                },
            )),*])
        };
    }
    layouts![
        AbiVersion { major, minor },
        AbiSlice { ptr, len },
        PluginHeader {
            magic,
            header_size,
            kind,
            abi,
            decl_size,
            layout_fingerprint,
            panic_strategy,
            target,
            sdk_version,
            name,
            version
        },
        ConnectorPluginDecl {
            header,
            capabilities,
            vtable,
            create
        },
        ErrorReport {
            kind,
            message,
            location,
            field_path
        },
        ErrorSink { ctx, report },
        HostApi {
            struct_size,
            ctx,
            log,
            request_shutdown,
            max_level,
            waker_new,
            waker_clone,
            waker_wake,
            waker_drop,
            pull_after
        },
        LogRecord {
            level,
            target,
            message
        },
        CreateArgs {
            error,
            config,
            connector_id,
            host,
            bound_as,
            instance
        },
        EventId { stream, pull },
        RawEvent {
            bytes,
            stream,
            meta
        },
        EventWriter {
            ctx,
            push,
            end_stream
        },
        PullArgs {
            error,
            writer,
            max_events,
            hint
        },
        RawEventView {
            bytes,
            id,
            ingest_ns,
            meta
        },
        SinkArgs {
            error,
            events,
            len,
            replies,
            processed,
            circuit
        },
        NotifyArgs { error, notice },
        ConnectArgs {
            error,
            attempt,
            connected
        },
        Feedback { id, kind },
        FeedbackArgs { error, items, len },
        CloseArgs { error },
        ExtensionArgs { id, table },
        ConnectorVtable {
            connect,
            notify,
            pull,
            source_feedback,
            sink_batch,
            close,
            extension,
            drop
        },
    ]
}

/// `CallStatus` → `WeirCallStatus`.
fn c_name(rust: &str) -> String {
    format!("Weir{rust}")
}

/// `CallStatus` → `CALL_STATUS`.
fn screaming(rust: &str) -> String {
    let mut out = String::new();
    for (i, c) in rust.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// The doc comment of an item, without Rust's link syntax.
fn docs(attrs: &[Attribute]) -> Vec<String> {
    let mut lines = Vec::new();
    for attr in attrs {
        if !attr.path().is_ident("doc") {
            continue;
        }
        if let syn::Meta::NameValue(nv) = &attr.meta
            && let Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) = &nv.value
        {
            lines.push(unlink(s.value().strip_prefix(' ').unwrap_or(&s.value())));
        }
    }
    lines
}

/// `[`X`](path)` and `[`X`]` → `` `X` ``.
fn unlink(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find("[`") {
        let Some(end) = rest[start..].find("`]") else {
            break;
        };
        out.push_str(&rest[..start]);
        out.push_str(&rest[start + 1..start + end + 1]);
        rest = &rest[start + end + 2..];
        if rest.starts_with('(')
            && let Some(close) = rest.find(')')
        {
            rest = &rest[close + 1..];
        }
    }
    out.push_str(rest);
    out
}

fn comment(out: &mut String, indent: &str, lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    writeln!(out, "{indent}/**").unwrap();
    for line in lines {
        if line.is_empty() {
            writeln!(out, "{indent} *").unwrap();
        } else {
            writeln!(out, "{indent} * {}", line.replace("*/", "* /")).unwrap();
        }
    }
    writeln!(out, "{indent} */").unwrap();
}

/// Whether the item is compiled with the sdk's default features (every `__*-for-tests`
/// feature off).
fn enabled(attrs: &[Attribute]) -> bool {
    attrs.iter().filter(|a| a.path().is_ident("cfg")).all(|a| {
        let cfg = a
            .meta
            .require_list()
            .unwrap()
            .tokens
            .to_string()
            .replace(' ', "");
        if cfg.starts_with("feature=") || cfg.starts_with("all(feature=") {
            false
        } else if cfg.starts_with("not(feature=") || cfg.starts_with("not(any(feature=") {
            true
        } else {
            panic!("cfg the header generator does not know: {cfg}")
        }
    })
}

fn repr(attrs: &[Attribute]) -> Option<String> {
    attrs.iter().find(|a| a.path().is_ident("repr")).map(|a| {
        a.meta
            .require_list()
            .unwrap()
            .tokens
            .to_string()
            .replace(' ', "")
    })
}

/// A Rust type as C, around `name` (a declarator: a field or parameter name, or empty).
fn c_type(ty: &Type, name: &str) -> String {
    match ty {
        Type::Path(path) => {
            let last = path.path.segments.last().unwrap();
            let ident = last.ident.to_string();
            if ident == "Option" {
                // `Option<extern fn>`: a nullable function pointer.
                let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
                    panic!("Option without its argument");
                };
                let Some(syn::GenericArgument::Type(inner @ Type::BareFn(_))) = args.args.first()
                else {
                    panic!("Option of something other than a function pointer");
                };
                return c_type(inner, name);
            }
            let base = match ident.as_str() {
                "u8" => "uint8_t".to_owned(),
                "u16" => "uint16_t".to_owned(),
                "u32" => "uint32_t".to_owned(),
                "u64" => "uint64_t".to_owned(),
                "usize" => "size_t".to_owned(),
                "c_void" => "void".to_owned(),
                other => c_name(other),
            };
            join(&base, name)
        }
        Type::Ptr(ptr) => {
            let constness = if ptr.const_token.is_some() {
                "const "
            } else {
                ""
            };
            pointer(&ptr.elem, constness, name)
        }
        Type::Reference(reference) => {
            let constness = if reference.mutability.is_none() {
                "const "
            } else {
                ""
            };
            pointer(&reference.elem, constness, name)
        }
        Type::Array(array) => {
            let Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Int(len),
                ..
            }) = &array.len
            else {
                panic!("array length that is not a literal");
            };
            c_type(&array.elem, &format!("{name}[{}]", len.base10_digits()))
        }
        Type::BareFn(function) => {
            let params: Vec<String> = function
                .inputs
                .iter()
                .map(|arg| {
                    let name = arg
                        .name
                        .as_ref()
                        .map(|(ident, _)| ident.to_string())
                        .unwrap_or_default();
                    c_type(&arg.ty, &name)
                })
                .collect();
            let params = if params.is_empty() {
                "void".to_owned()
            } else {
                params.join(", ")
            };
            returning(&function.output, &format!("(*{name})({params})"))
        }
        other => panic!(
            "type the header generator does not know: {}",
            quote::quote!(#other)
        ),
    }
}

fn pointer(elem: &Type, constness: &str, name: &str) -> String {
    let inner = c_type(elem, "");
    join(&format!("{constness}{inner} *"), name)
}

fn returning(output: &ReturnType, declarator: &str) -> String {
    match output {
        ReturnType::Default => format!("void {declarator}"),
        ReturnType::Type(_, ty) => c_type(ty, declarator),
    }
}

fn join(base: &str, name: &str) -> String {
    if name.is_empty() {
        base.trim_end().to_owned()
    } else if base.ends_with('*') {
        format!("{base}{name}")
    } else {
        format!("{base} {name}")
    }
}

/// The types a struct holds by value (which must be defined before it in C).
fn by_value(ty: &Type, out: &mut BTreeSet<String>) {
    match ty {
        Type::Path(path) => {
            out.insert(path.path.segments.last().unwrap().ident.to_string());
        }
        Type::Array(array) => by_value(&array.elem, out),
        _ => {}
    }
}

/// Evaluates a newtype constant: `Self(1)`, or `Self(Self::A.0 | Self::B.0)`.
fn value(expr: &Expr, known: &BTreeMap<String, u64>) -> u64 {
    match expr {
        Expr::Call(call) => value(&call.args[0], known),
        Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(int),
            ..
        }) => int.base10_parse().unwrap(),
        Expr::Binary(binary) if matches!(binary.op, syn::BinOp::BitOr(_)) => {
            value(&binary.left, known) | value(&binary.right, known)
        }
        Expr::Field(field) => {
            let Expr::Path(path) = &*field.base else {
                panic!("constant the header generator does not know");
            };
            known[&path.path.segments.last().unwrap().ident.to_string()]
        }
        Expr::Paren(paren) => value(&paren.expr, known),
        other => panic!(
            "constant the header generator does not know: {}",
            quote::quote!(#other)
        ),
    }
}

/// A `repr(transparent)` integer newtype and its constants (name, docs, value).
struct Newtype {
    name: String,
    docs: Vec<String>,
    constants: Vec<(String, Vec<String>, u64)>,
}

struct Struct {
    name: String,
    docs: Vec<String>,
    fields: Vec<(String, Type, Vec<String>)>,
}

/// The header, generated from `src/abi.rs` and this build of the sdk.
fn generate() -> String {
    let source = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/abi.rs"))
        .expect("reading src/abi.rs");
    let file = syn::parse_file(&source).expect("parsing src/abi.rs");
    let mut structs = Vec::new();
    let mut newtypes: Vec<Newtype> = Vec::new();
    let mut aliases = Vec::new();
    let mut vtable = None;
    let mut newtype_names = BTreeSet::new();
    for item in &file.items {
        match item {
            Item::Struct(item) if enabled(&item.attrs) => match repr(&item.attrs).as_deref() {
                Some("C") => {
                    let Fields::Named(fields) = &item.fields else {
                        panic!("repr(C) struct without named fields");
                    };
                    structs.push(Struct {
                        name: item.ident.to_string(),
                        docs: docs(&item.attrs),
                        fields: fields
                            .named
                            .iter()
                            .filter(|f| enabled(&f.attrs))
                            .map(|f| {
                                (
                                    f.ident.as_ref().unwrap().to_string(),
                                    f.ty.clone(),
                                    docs(&f.attrs),
                                )
                            })
                            .collect(),
                    });
                }
                Some("transparent") => {
                    newtype_names.insert(item.ident.to_string());
                    newtypes.push(Newtype {
                        name: item.ident.to_string(),
                        docs: docs(&item.attrs),
                        constants: Vec::new(),
                    });
                }
                _ => {}
            },
            Item::Impl(item) => {
                let Type::Path(path) = &*item.self_ty else {
                    continue;
                };
                let name = path.path.segments.last().unwrap().ident.to_string();
                let Some(newtype) = newtypes.iter_mut().find(|n| n.name == name) else {
                    continue;
                };
                let mut known = BTreeMap::new();
                for item in &item.items {
                    if let syn::ImplItem::Const(constant) = item {
                        let v = value(&constant.expr, &known);
                        known.insert(constant.ident.to_string(), v);
                        newtype.constants.push((
                            constant.ident.to_string(),
                            docs(&constant.attrs),
                            v,
                        ));
                    }
                }
            }
            Item::Type(alias) => aliases.push(alias.clone()),
            Item::Mod(module) if module.ident == "connector_ffi" => {
                for item in &module.content.as_ref().unwrap().1 {
                    if let Item::Trait(ffi) = item {
                        vtable = Some(ffi.clone());
                    }
                }
            }
            _ => {}
        }
    }
    let vtable = vtable.expect("the ConnectorFfi trait");
    let vtable_struct = Struct {
        name: "ConnectorVtable".to_owned(),
        docs: vec![
            "The functions of a connector instance, in the order the host expects them, `drop`"
                .to_owned(),
            "last. Every function takes the instance (whose first word points to this vtable) as"
                .to_owned(),
            "`self`, never unwinds, and returns a `WeirCallStatus` (`drop` returns nothing and"
                .to_owned(),
            "frees the instance).".to_owned(),
        ],
        fields: Vec::new(),
    };
    let layouts = layouts();
    // Every repr(C) type is measured, field by field (a new type or field must be added to
    // `layouts`).
    let mut declared: BTreeMap<String, Vec<String>> = structs
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                s.fields.iter().map(|(f, ..)| f.clone()).collect(),
            )
        })
        .collect();
    declared.insert(
        "ConnectorVtable".to_owned(),
        vtable
            .items
            .iter()
            .filter_map(|item| match item {
                syn::TraitItem::Fn(method) => Some(method.sig.ident.to_string()),
                _ => None,
            })
            .chain(["drop".to_owned()])
            .collect(),
    );
    let measured: BTreeMap<String, Vec<String>> = layouts
        .iter()
        .map(|(name, layout)| {
            (
                (*name).to_owned(),
                layout.fields.iter().map(|(f, _)| (*f).to_owned()).collect(),
            )
        })
        .collect();
    assert_eq!(
        declared, measured,
        "`layouts()` must list every repr(C) type of src/abi.rs with its fields in order"
    );

    let mut out = String::new();
    writeln!(
        out,
        "/** The connector ABI version this header describes. */\n#define WEIR_CONNECTOR_ABI_MAJOR {}\n#define WEIR_CONNECTOR_ABI_MINOR {}\n",
        abi::CONNECTOR_ABI.major,
        abi::CONNECTOR_ABI.minor
    )
    .unwrap();
    writeln!(
        out,
        "/**\n * What `WeirPluginHeader.layout_fingerprint` must hold: computed by the sdk from the\n * definitions below (on 64-bit targets). The host refuses a plugin whose fingerprint\n * differs.\n */\n#define WEIR_LAYOUT_FINGERPRINT UINT64_C(0x{:016x})\n",
        abi::LAYOUT_FINGERPRINT
    )
    .unwrap();
    writeln!(
        out,
        "/** The eight bytes `WeirPluginHeader.magic` holds, as an initializer. */\n#define WEIR_MAGIC {{ {} }}\n",
        abi::MAGIC
            .iter()
            .map(|b| format!("'{}'", *b as char))
            .collect::<Vec<_>>()
            .join(", ")
    )
    .unwrap();
    writeln!(
        out,
        "/** The version of weir-sdk this header comes from, for `WeirPluginHeader.sdk_version`. */\n#define WEIR_SDK_VERSION \"{}\"\n\n/** The name of the function a plugin exports (see `WeirMetadataFn`). */\n#define WEIR_METADATA_SYMBOL \"{}\"\n\n/** Number of function pointers in `WeirConnectorVtable`, `drop` included. */\n#define WEIR_CONNECTOR_VTABLE_LEN {}\n",
        weir_sdk::builtin::SDK_VERSION,
        abi::METADATA_SYMBOL,
        abi::CONNECTOR_VTABLE_LEN
    )
    .unwrap();

    out.push_str("/* Forward declarations. */\n");
    for s in structs.iter().chain([&vtable_struct]) {
        writeln!(out, "typedef struct {0} {0};", c_name(&s.name)).unwrap();
    }
    out.push('\n');

    for Newtype {
        name,
        docs,
        constants,
    } in &newtypes
    {
        comment(&mut out, "", docs);
        writeln!(out, "typedef uint32_t {};", c_name(name)).unwrap();
        for (constant, docs, v) in constants {
            comment(&mut out, "", docs);
            writeln!(
                out,
                "#define WEIR_{}_{constant} (({})UINT32_C({v}))",
                screaming(name),
                c_name(name)
            )
            .unwrap();
        }
        out.push('\n');
    }

    for alias in &aliases {
        comment(&mut out, "", &docs(&alias.attrs));
        writeln!(
            out,
            "typedef {};\n",
            c_type(&alias.ty, &c_name(&alias.ident.to_string()))
        )
        .unwrap();
    }

    // Structs, each after the ones it holds by value.
    let mut emitted: BTreeSet<String> = newtype_names.clone();
    emitted.extend(["u8", "u16", "u32", "u64", "usize"].map(str::to_owned));
    let mut pending: Vec<&Struct> = structs.iter().collect();
    while !pending.is_empty() {
        let ready = pending
            .iter()
            .position(|s| {
                let mut needs = BTreeSet::new();
                for (_, ty, _) in &s.fields {
                    by_value(ty, &mut needs);
                }
                needs.remove("Option");
                needs.iter().all(|n| emitted.contains(n))
            })
            .expect("structs that hold each other by value");
        let s = pending.remove(ready);
        comment(&mut out, "", &s.docs);
        writeln!(out, "struct {} {{", c_name(&s.name)).unwrap();
        for (field, ty, docs) in &s.fields {
            comment(&mut out, "    ", docs);
            writeln!(out, "    {};", c_type(ty, field)).unwrap();
        }
        writeln!(out, "}};\n").unwrap();
        emitted.insert(s.name.clone());
    }

    comment(&mut out, "", &vtable_struct.docs);
    writeln!(out, "struct WeirConnectorVtable {{").unwrap();
    for item in &vtable.items {
        let syn::TraitItem::Fn(method) = item else {
            continue;
        };
        let mut params = vec!["void *self".to_owned()];
        for input in &method.sig.inputs {
            if let FnArg::Typed(arg) = input {
                let syn::Pat::Ident(name) = &*arg.pat else {
                    panic!("pattern parameter");
                };
                params.push(c_type(&arg.ty, &name.ident.to_string()));
            }
        }
        comment(&mut out, "    ", &docs(&method.attrs));
        writeln!(
            out,
            "    {};",
            returning(
                &method.sig.output,
                &format!("(*{})({})", method.sig.ident, params.join(", "))
            )
        )
        .unwrap();
    }
    writeln!(
        out,
        "    /**\n     * Frees the instance (after `close`, or without it if the host never called it).\n     */\n    void (*drop)(void *self);\n}};\n"
    )
    .unwrap();

    out.push_str(
        "/* The layout of every struct as the sdk has it (64-bit targets): a compiler that lays\n * one out differently refuses to build the plugin. */\n",
    );
    for (name, layout) in &layouts {
        let c = c_name(name);
        writeln!(
            out,
            "WEIR_STATIC_ASSERT(sizeof({c}) == {} && WEIR_ALIGNOF({c}) == {}, \"{c}: size and alignment as in the Rust sdk\");",
            layout.size, layout.align
        )
        .unwrap();
        for (field, offset) in &layout.fields {
            writeln!(
                out,
                "WEIR_STATIC_ASSERT(offsetof({c}, {field}) == {offset}, \"{c}.{field}: offset as in the Rust sdk\");"
            )
            .unwrap();
        }
    }
    // What the docs call things, in C.
    let mut rename: BTreeMap<String, String> = BTreeMap::new();
    for s in &structs {
        rename.insert(s.name.clone(), c_name(&s.name));
        for (field, ..) in &s.fields {
            rename.insert(
                format!("{}::{field}", s.name),
                format!("{}.{field}", c_name(&s.name)),
            );
        }
    }
    for Newtype {
        name, constants, ..
    } in &newtypes
    {
        rename.insert(name.clone(), c_name(name));
        // `LogLevel(0)`: the constant of that value.
        for (constant, _, value) in constants {
            rename
                .entry(format!("{name}({value})"))
                .or_insert_with(|| format!("WEIR_{}_{constant}", screaming(name)));
        }
        for (constant, ..) in constants {
            rename.insert(
                format!("{name}::{constant}"),
                format!("WEIR_{}_{constant}", screaming(name)),
            );
        }
    }
    for alias in &aliases {
        let name = alias.ident.to_string();
        rename.insert(name.clone(), c_name(&name));
    }
    for item in &vtable.items {
        if let syn::TraitItem::Fn(method) = item {
            rename.insert(
                format!("ConnectorFfi::{}", method.sig.ident),
                format!("WeirConnectorVtable.{}", method.sig.ident),
            );
        }
    }
    rename.insert(
        "ConnectorVtable".to_owned(),
        "WeirConnectorVtable".to_owned(),
    );
    for constant in [
        "MAGIC",
        "METADATA_SYMBOL",
        "LAYOUT_FINGERPRINT",
        "CONNECTOR_VTABLE_LEN",
    ] {
        rename.insert(constant.to_owned(), format!("WEIR_{constant}"));
    }
    // Rust spellings a C reader has no use for.
    for s in &structs {
        rename.insert(
            format!("size_of::<{}>()", s.name),
            format!("sizeof({})", c_name(&s.name)),
        );
    }
    rename.insert("None".to_owned(), "NULL".to_owned());
    rename.insert("HostApi::copy_from".to_owned(), "memcpy".to_owned());
    let mut header = PREAMBLE.to_owned();
    header.push_str(&c_references(&out, &rename));
    header.push_str(POSTAMBLE);
    header
}

/// Rewrites every `` `Rust::name` `` the docs mention to its C name.
fn c_references(text: &str, rename: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut parts = text.split('`');
    out.push_str(parts.next().unwrap_or_default());
    for (i, part) in parts.enumerate() {
        out.push('`');
        // Odd parts are inside backticks.
        if i % 2 == 0 {
            out.push_str(rename.get(part).map_or(part, String::as_str));
        } else {
            out.push_str(part);
        }
    }
    out
}

const PREAMBLE: &str = r#"/*
 * weir_connector.h: the C ABI of Weir connector plugins.
 *
 * GENERATED from weir-sdk's src/abi.rs by sdk/tests/c_header.rs: do not edit by hand
 * (`WEIR_BLESS=1 cargo test -p weir-sdk --test c_header` rewrites it after an ABI change;
 * without it, the test fails on any difference).
 *
 * A plugin is a shared library that exports one function, `weir_plugin_metadata` (type
 * `WeirMetadataFn`), returning a pointer to a static `WeirConnectorPluginDecl`. The host
 * checks the declaration (magic, sizes, ABI version, layout fingerprint, panic strategy,
 * target, every pointer inside the library's own image) before calling anything else.
 * examples/c/counter.c is a complete plugin.
 *
 * The rules the Rust sdk's `#[connector_plugin]` enforces for Rust authors, which a C
 * author keeps by hand:
 *
 * - Never unwind out of a function the host calls: no C++ exception, no longjmp across
 *   the boundary. Report a failure by returning WEIR_CALL_STATUS_ERROR after one or more
 *   `error.report` calls. Declare `panic_strategy = WEIR_PANIC_STRATEGY_UNWIND` (nothing
 *   unwinds into the host); WEIR_PANIC_STRATEGY_ABORT plugins are refused.
 * - Who frees what: each side frees what it allocated. The host owns every argument
 *   struct, the config and id strings, the events it hands to a sink, and the `HostApi`;
 *   the plugin copies what it keeps. The plugin owns its instance (allocated in `create`,
 *   freed by the vtable's `drop`, which the host calls exactly once) and the bytes it
 *   pushes (the host copies them during `push`).
 * - Lifetimes of slices: a `WeirAbiSlice` the host passes is valid for the duration of
 *   the call only (the `HostApi` for the instance's whole life). Strings in the
 *   declaration live as long as the library (static storage). `ptr` may be null or
 *   dangling when `len` is 0, and is never read then. Strings are UTF-8, not
 *   NUL-terminated.
 * - One call at a time per instance, from a thread of the host's choosing; return quickly
 *   (a source with nothing to say returns WEIR_PULL_HINT_EMPTY). Only the `HostApi`
 *   functions documented so may be called from other threads (logging, wakers).
 * - Values with a closed set of meanings are integers: treat an unknown one from the host
 *   as an error, never as undefined behaviour.
 * - `WeirPluginHeader.target` must be the host's target triple (WEIR_TARGET below), and
 *   `header_size` / `decl_size` the sizes of the structs as compiled here.
 */

#ifndef WEIR_CONNECTOR_H
#define WEIR_CONNECTOR_H

#include <stddef.h>
#include <stdint.h>

#if UINTPTR_MAX != UINT64_MAX
#error "weir_connector.h describes the ABI on 64-bit targets"
#endif

/** The target triple to put in `WeirPluginHeader.target` (the host's). */
#ifndef WEIR_TARGET
#if defined(__x86_64__) && defined(__linux__) && defined(__GLIBC__)
#define WEIR_TARGET "x86_64-unknown-linux-gnu"
#elif defined(__aarch64__) && defined(__linux__) && defined(__GLIBC__)
#define WEIR_TARGET "aarch64-unknown-linux-gnu"
#else
#error "weir_connector.h does not know this target's triple: define WEIR_TARGET (the host's) before including it"
#endif
#endif

/* The layout assertions at the end, in C11 and in C++11. */
#ifdef __cplusplus
#define WEIR_STATIC_ASSERT static_assert
#define WEIR_ALIGNOF alignof
#else
#define WEIR_STATIC_ASSERT _Static_assert
#define WEIR_ALIGNOF _Alignof
#endif

#ifdef __cplusplus
extern "C" {
#endif

"#;

const POSTAMBLE: &str = r#"
#ifdef __cplusplus
}
#endif

#endif /* WEIR_CONNECTOR_H */
"#;

#[test]
fn the_c_header_is_what_src_abi_rs_generates() {
    let header = generate();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(HEADER);
    if std::env::var_os("WEIR_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &header).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    if checked_in != header {
        let line = checked_in
            .lines()
            .zip(header.lines())
            .position(|(a, b)| a != b)
            .map_or_else(
                || checked_in.lines().count().min(header.lines().count()) + 1,
                |i| i + 1,
            );
        panic!(
            "sdk/{HEADER} differs from what src/abi.rs generates, from line {line}:\n  checked in: {:?}\n  generated:  {:?}\nrun `WEIR_BLESS=1 cargo test -p weir-sdk --test c_header` to rewrite it",
            checked_in.lines().nth(line - 1).unwrap_or("<end>"),
            header.lines().nth(line - 1).unwrap_or("<end>"),
        );
    }
}

/// Compiles a file that includes the header with `compiler` and `flags`, every warning an
/// error.
fn compile_including_the_header(compiler: &str, flags: &[&str], file: &str) {
    let dir = std::env::temp_dir().join(format!("weir-c-header-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let source = dir.join(file);
    std::fs::write(
        &source,
        "#include \"weir_connector.h\"\nint weir_header_included(void) { return WEIR_CONNECTOR_ABI_MAJOR; }\n",
    )
    .unwrap();
    let out = std::process::Command::new(compiler)
        .args(flags)
        .args(["-Wall", "-Wextra", "-Wpedantic", "-Werror", "-c", "-o"])
        .arg(dir.join(format!("{file}.o")))
        .arg("-I")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("include"))
        .arg(&source)
        .output()
        .unwrap_or_else(|e| panic!("running the compiler `{compiler}`: {e}"));
    assert!(
        out.status.success(),
        "{compiler} {flags:?} refused the header:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_c_header_compiles_as_c11_and_as_cpp17_with_every_warning_an_error() {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    compile_including_the_header(&cc, &["-std=c11"], "include.c");
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".to_owned());
    compile_including_the_header(&cxx, &["-std=c++17"], "include.cpp");
}
