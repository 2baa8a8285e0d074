/*
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

/** The connector ABI version this header describes. */
#define WEIR_CONNECTOR_ABI_MAJOR 1
#define WEIR_CONNECTOR_ABI_MINOR 2

/**
 * What `WeirPluginHeader.layout_fingerprint` must hold: computed by the sdk from the
 * definitions below (on 64-bit targets). The host refuses a plugin whose fingerprint
 * differs.
 */
#define WEIR_LAYOUT_FINGERPRINT UINT64_C(0xbcdfba351d18a030)

/** The eight bytes `WeirPluginHeader.magic` holds, as an initializer. */
#define WEIR_MAGIC { 'W', 'E', 'I', 'R', 'P', 'L', 'U', 'G' }

/** The version of weir-sdk this header comes from, for `WeirPluginHeader.sdk_version`. */
#define WEIR_SDK_VERSION "0.1.0"

/** The name of the function a plugin exports (see `WeirMetadataFn`). */
#define WEIR_METADATA_SYMBOL "weir_plugin_metadata"

/** Number of function pointers in `WeirConnectorVtable`, `drop` included. */
#define WEIR_CONNECTOR_VTABLE_LEN 8

/* Forward declarations. */
typedef struct WeirAbiVersion WeirAbiVersion;
typedef struct WeirAbiSlice WeirAbiSlice;
typedef struct WeirPluginHeader WeirPluginHeader;
typedef struct WeirConnectorPluginDecl WeirConnectorPluginDecl;
typedef struct WeirErrorReport WeirErrorReport;
typedef struct WeirErrorSink WeirErrorSink;
typedef struct WeirHostApi WeirHostApi;
typedef struct WeirLogRecord WeirLogRecord;
typedef struct WeirCreateArgs WeirCreateArgs;
typedef struct WeirEventId WeirEventId;
typedef struct WeirRawEvent WeirRawEvent;
typedef struct WeirEventWriter WeirEventWriter;
typedef struct WeirPullArgs WeirPullArgs;
typedef struct WeirRawEventView WeirRawEventView;
typedef struct WeirSinkArgs WeirSinkArgs;
typedef struct WeirNotifyArgs WeirNotifyArgs;
typedef struct WeirConnectArgs WeirConnectArgs;
typedef struct WeirFeedback WeirFeedback;
typedef struct WeirFeedbackArgs WeirFeedbackArgs;
typedef struct WeirCloseArgs WeirCloseArgs;
typedef struct WeirExtensionArgs WeirExtensionArgs;
typedef struct WeirConnectorVtable WeirConnectorVtable;

/**
 * Which kind of plugin a header describes; each kind has its own ABI version.
 */
typedef uint32_t WeirPluginKind;
/**
 * A connector plugin: its header is the start of a `WeirConnectorPluginDecl`.
 */
#define WEIR_PLUGIN_KIND_CONNECTOR ((WeirPluginKind)UINT32_C(1))

/**
 * The panic strategy a plugin was compiled with.
 */
typedef uint32_t WeirPanicStrategy;
/**
 * `panic = "unwind"`: panics are caught inside the plugin and reported as errors.
 */
#define WEIR_PANIC_STRATEGY_UNWIND ((WeirPanicStrategy)UINT32_C(1))
/**
 * `panic = "abort"`: any panic kills the whole host process; such plugins are refused.
 */
#define WEIR_PANIC_STRATEGY_ABORT ((WeirPanicStrategy)UINT32_C(2))

/**
 * Bit set of what a connector can do.
 */
typedef uint32_t WeirCapabilities;
/**
 * No bit set.
 */
#define WEIR_CAPABILITIES_NONE ((WeirCapabilities)UINT32_C(0))
/**
 * The connector produces events (`WeirConnectorVtable.pull`).
 */
#define WEIR_CAPABILITIES_SOURCE ((WeirCapabilities)UINT32_C(1))
/**
 * The connector consumes events (`WeirConnectorVtable.sink_batch`).
 */
#define WEIR_CAPABILITIES_SINK ((WeirCapabilities)UINT32_C(2))
/**
 * Every bit defined by this ABI version.
 */
#define WEIR_CAPABILITIES_ALL ((WeirCapabilities)UINT32_C(3))

/**
 * The result of a call across the boundary.
 */
typedef uint32_t WeirCallStatus;
/**
 * The call succeeded.
 */
#define WEIR_CALL_STATUS_OK ((WeirCallStatus)UINT32_C(0))
/**
 * The connector returned an error; details went to the call's `WeirErrorSink`.
 */
#define WEIR_CALL_STATUS_ERROR ((WeirCallStatus)UINT32_C(1))
/**
 * The connector panicked; message and location went to the `WeirErrorSink`. The
 * instance is poisoned: it refuses every further call but `drop`.
 */
#define WEIR_CALL_STATUS_PANICKED ((WeirCallStatus)UINT32_C(2))
/**
 * The instance panicked earlier and refuses the call.
 */
#define WEIR_CALL_STATUS_POISONED ((WeirCallStatus)UINT32_C(3))
/**
 * The connector does not implement this side (for example `pull` on a sink).
 */
#define WEIR_CALL_STATUS_UNSUPPORTED ((WeirCallStatus)UINT32_C(4))

/**
 * What kind of error an `WeirErrorReport` describes.
 */
typedef uint32_t WeirErrorKind;
/**
 * An error returned by the connector's code.
 */
#define WEIR_ERROR_KIND_CONNECTOR ((WeirErrorKind)UINT32_C(1))
/**
 * The config did not deserialize into the connector's config type.
 */
#define WEIR_ERROR_KIND_CONFIG ((WeirErrorKind)UINT32_C(2))
/**
 * A panic caught inside the plugin.
 */
#define WEIR_ERROR_KIND_PANIC ((WeirErrorKind)UINT32_C(3))
/**
 * An error returned by the connector's code that retrying cannot fix (the connector
 * made it with `Error::permanent`): the host stops the connector for good.
 */
#define WEIR_ERROR_KIND_PERMANENT ((WeirErrorKind)UINT32_C(4))

/**
 * Severity of a `WeirLogRecord`, ordered like `tracing::Level` (1 = error ... 5 = trace).
 */
typedef uint32_t WeirLogLevel;
/**
 * Nothing is logged.
 */
#define WEIR_LOG_LEVEL_OFF ((WeirLogLevel)UINT32_C(0))
/**
 * An error.
 */
#define WEIR_LOG_LEVEL_ERROR ((WeirLogLevel)UINT32_C(1))
/**
 * A warning.
 */
#define WEIR_LOG_LEVEL_WARN ((WeirLogLevel)UINT32_C(2))
/**
 * Information.
 */
#define WEIR_LOG_LEVEL_INFO ((WeirLogLevel)UINT32_C(3))
/**
 * Debugging detail.
 */
#define WEIR_LOG_LEVEL_DEBUG ((WeirLogLevel)UINT32_C(4))
/**
 * Very verbose detail.
 */
#define WEIR_LOG_LEVEL_TRACE ((WeirLogLevel)UINT32_C(5))

/**
 * What a source says after a pull.
 */
typedef uint32_t WeirPullHint;
/**
 * More events may be ready right away: pull again.
 */
#define WEIR_PULL_HINT_READY ((WeirPullHint)UINT32_C(0))
/**
 * Nothing right now: the host backs off before the next pull.
 */
#define WEIR_PULL_HINT_EMPTY ((WeirPullHint)UINT32_C(1))
/**
 * The source will never produce another event.
 */
#define WEIR_PULL_HINT_FINISHED ((WeirPullHint)UINT32_C(2))

/**
 * Whether the sink delivered an event.
 */
typedef uint32_t WeirReplyCode;
/**
 * No explicit verdict: the host acks automatically.
 */
#define WEIR_REPLY_CODE_AUTO ((WeirReplyCode)UINT32_C(0))
/**
 * Delivered.
 */
#define WEIR_REPLY_CODE_ACK ((WeirReplyCode)UINT32_C(1))
/**
 * Not delivered; the source may resend.
 */
#define WEIR_REPLY_CODE_FAIL ((WeirReplyCode)UINT32_C(2))

/**
 * A sink's request to move its circuit breaker, or to leave it.
 */
typedef uint32_t WeirCircuitChange;
/**
 * Leave the breaker as it is.
 */
#define WEIR_CIRCUIT_CHANGE_NONE ((WeirCircuitChange)UINT32_C(0))
/**
 * Close the breaker: stop sending to this sink (its sources are paused).
 */
#define WEIR_CIRCUIT_CHANGE_CLOSE ((WeirCircuitChange)UINT32_C(1))
/**
 * Open the breaker: resume sending.
 */
#define WEIR_CIRCUIT_CHANGE_OPEN ((WeirCircuitChange)UINT32_C(2))

/**
 * Lifecycle notices and circuit-breaker notifications sent to a connector.
 */
typedef uint32_t WeirNotice;
/**
 * The connector starts running (after a successful connect).
 */
#define WEIR_NOTICE_START ((WeirNotice)UINT32_C(1))
/**
 * The connector is paused.
 */
#define WEIR_NOTICE_PAUSE ((WeirNotice)UINT32_C(2))
/**
 * The connector resumes after a pause.
 */
#define WEIR_NOTICE_RESUME ((WeirNotice)UINT32_C(3))
/**
 * The pipeline drains: no new work will arrive, finish what is in flight.
 */
#define WEIR_NOTICE_DRAIN ((WeirNotice)UINT32_C(4))
/**
 * The connector stops.
 */
#define WEIR_NOTICE_STOP ((WeirNotice)UINT32_C(5))
/**
 * A sink this source feeds closed its circuit breaker.
 */
#define WEIR_NOTICE_CIRCUIT_CLOSED ((WeirNotice)UINT32_C(6))
/**
 * Every sink this source feeds has its circuit breaker open again.
 */
#define WEIR_NOTICE_CIRCUIT_OPENED ((WeirNotice)UINT32_C(7))

/**
 * Whether a connect attempt succeeded, as the plugin reports it in `WeirConnectArgs`.
 *
 * An integer, not a `bool`: any byte but 0 and 1 in a `bool` is undefined behaviour, and
 * the plugin writes this value; an unknown value is a protocol error.
 */
typedef uint32_t WeirConnected;
/**
 * Not connected yet: retry later.
 */
#define WEIR_CONNECTED_NOT_YET ((WeirConnected)UINT32_C(0))
/**
 * Connected.
 */
#define WEIR_CONNECTED_YES ((WeirConnected)UINT32_C(1))

/**
 * A source's verdict for one of its events, as the sink reported it.
 */
typedef uint32_t WeirFeedbackKind;
/**
 * Delivered.
 */
#define WEIR_FEEDBACK_KIND_ACK ((WeirFeedbackKind)UINT32_C(1))
/**
 * Not delivered.
 */
#define WEIR_FEEDBACK_KIND_FAIL ((WeirFeedbackKind)UINT32_C(2))

/**
 * The type of the exported `WEIR_METADATA_SYMBOL` function.
 *
 * It returns a pointer to the plugin's `WeirPluginHeader` (the first field of a
 * kind-specific declaration such as `WeirConnectorPluginDecl`), or null after reporting an
 * error through `error`. It never unwinds.
 */
typedef const WeirPluginHeader *(*WeirMetadataFn)(WeirErrorSink error);

/**
 * A major.minor ABI version of one plugin kind.
 */
struct WeirAbiVersion {
    /**
     * Incremented for any change that is not an append-only addition.
     */
    uint16_t major;
    /**
     * Incremented for append-only additions within one major version.
     */
    uint16_t minor;
};

/**
 * A borrowed byte slice (or UTF-8 string) crossing the boundary.
 *
 * The side that builds it keeps the bytes alive for the duration of the call it is passed
 * to (or forever, for strings in a plugin's metadata).
 */
struct WeirAbiSlice {
    /**
     * First byte. When `len` is zero it may be null or dangling (the Rust sdk passes a
     * dangling, aligned pointer); a reader never dereferences it then.
     */
    const uint8_t *ptr;
    /**
     * Number of bytes.
     */
    size_t len;
};

/**
 * The fixed-layout header at the start of every plugin's metadata.
 *
 * The host reads nothing else from a plugin before this header has been checked. The first
 * four fields are frozen across all ABI majors of all plugin kinds.
 */
struct WeirPluginHeader {
    /**
     * Always `WEIR_MAGIC`.
     */
    uint8_t magic[8];
    /**
     * `sizeof(WeirPluginHeader)` as the plugin was compiled.
     */
    uint32_t header_size;
    /**
     * Which declaration follows this header.
     */
    WeirPluginKind kind;
    /**
     * The ABI version of `kind` the plugin was built against.
     */
    WeirAbiVersion abi;
    /**
     * Size of the whole kind-specific declaration, header included.
     */
    uint32_t decl_size;
    /**
     * `WEIR_LAYOUT_FINGERPRINT` as the plugin was compiled.
     */
    uint64_t layout_fingerprint;
    /**
     * The plugin's panic strategy; only `WEIR_PANIC_STRATEGY_UNWIND` is loadable.
     */
    WeirPanicStrategy panic_strategy;
    /**
     * The target triple the plugin was compiled for.
     */
    WeirAbiSlice target;
    /**
     * Version of `weir-sdk` the plugin was built with.
     */
    WeirAbiSlice sdk_version;
    /**
     * The plugin's name (by default its crate name).
     */
    WeirAbiSlice name;
    /**
     * The plugin's own version (by default its crate version).
     */
    WeirAbiSlice version;
};

/**
 * The declaration of a connector plugin: what `WEIR_METADATA_SYMBOL` points at when
 * `header.kind` is `WEIR_PLUGIN_KIND_CONNECTOR`.
 */
struct WeirConnectorPluginDecl {
    /**
     * The common header, first so that it can be read before anything else.
     */
    WeirPluginHeader header;
    /**
     * Whether the connector is a source, a sink, or both.
     */
    WeirCapabilities capabilities;
    /**
     * The vtable every instance of this plugin points at.
     */
    const WeirConnectorVtable *vtable;
    /**
     * Creates an instance from its config. See `WeirCreateArgs`.
     */
    WeirCallStatus (*create)(WeirCreateArgs *args);
};

/**
 * One error, borrowed for the duration of the `WeirErrorSink.report` call.
 */
struct WeirErrorReport {
    /**
     * What happened.
     */
    WeirErrorKind kind;
    /**
     * Human-readable message (UTF-8).
     */
    WeirAbiSlice message;
    /**
     * For panics: `file:line:column`; otherwise empty.
     */
    WeirAbiSlice location;
    /**
     * For config errors: the path of the offending field as a JSON array of keys (strings)
     * and indices (integers), like `["a","b",2,"c"]`, so that a key holding `.` or `[`
     * stays whole; empty for the config document itself and for other errors.
     */
    WeirAbiSlice field_path;
};

/**
 * A host-provided callback that receives the details of a failed call.
 *
 * The host copies what it keeps: the plugin frees its own strings after `report` returns.
 */
struct WeirErrorSink {
    /**
     * Host state passed back to `report`.
     */
    void *ctx;
    /**
     * Called zero or more times during the call; `NULL` discards errors.
     */
    void (*report)(void *ctx, const WeirErrorReport *report);
};

/**
 * Services the host offers to a connector instance for its whole life.
 *
 * Grows only at the end: a plugin reads a field only when `struct_size` covers it.
 */
struct WeirHostApi {
    /**
     * `sizeof(WeirHostApi)` as the host was compiled.
     */
    size_t struct_size;
    /**
     * Host state passed back to every function. Valid until the instance is dropped.
     */
    const void *ctx;
    /**
     * Emits a log record in the host's log, tagged with the connector id. May also be
     * called with a null `ctx` for records logged outside any call (from a plugin's own
     * threads); the function itself stays valid as long as the host process.
     */
    void (*log)(const void *ctx, const WeirLogRecord *record);
    /**
     * Asks the host to shut the whole runtime down cleanly.
     */
    void (*request_shutdown)(const void *ctx);
    /**
     * The most verbose level the host's log shows (`WEIR_LOG_LEVEL_OFF`: none), so plugins do
     * not format records nobody will see.
     */
    WeirLogLevel max_level;
    /**
     * (1.1) Makes a waker for the instance: an owned handle (null if the host has none)
     * that any thread may wake at any time, even after the instance is gone (then waking
     * does nothing); released with `waker_drop`. Called during a call
     * of the instance. Taking one tells the host the source wakes it when it has events:
     * an `EMPTY` pull is then followed by the next one only when woken (or after a long
     * safety interval), not polled.
     */
    const void *(*waker_new)(const void *ctx);
    /**
     * (1.1) Another handle to the same waker. Any thread, any time, on a live handle.
     */
    const void *(*waker_clone)(const void *waker);
    /**
     * (1.1) Asks the host to pull the source soon. Any thread, any time, on a live handle;
     * cheap and coalesced (many wakes before a pull make one pull).
     */
    void (*waker_wake)(const void *waker);
    /**
     * (1.1) Releases a handle. Any thread, any time, once per handle.
     */
    void (*waker_drop)(const void *waker);
    /**
     * (1.1) Called during a pull that ends `EMPTY`: the source will have nothing before
     * `nanos` nanoseconds from now, so the host need not pull it sooner (a wake still
     * does). Ignored outside pulls and after a `READY` pull.
     */
    void (*pull_after)(const void *ctx, uint64_t nanos);
};

/**
 * One log record from a plugin, borrowed for the duration of `WeirHostApi.log`.
 */
struct WeirLogRecord {
    /**
     * Severity.
     */
    WeirLogLevel level;
    /**
     * Module path or other target of the record.
     */
    WeirAbiSlice target;
    /**
     * The formatted message.
     */
    WeirAbiSlice message;
};

/**
 * Arguments of `WeirConnectorPluginDecl.create`.
 */
struct WeirCreateArgs {
    /**
     * Where errors go.
     */
    WeirErrorSink error;
    /**
     * The connector's config as a UTF-8 JSON document.
     */
    WeirAbiSlice config;
    /**
     * The connector's id in the host's configuration.
     */
    WeirAbiSlice connector_id;
    /**
     * Host services for the instance's whole life, read during `create` only: the plugin
     * copies the fields it knows that `struct_size` covers (`memcpy`). A
     * pointer, not a value, so that `WeirHostApi` can grow without moving the fields after it.
     */
    const WeirHostApi *host;
    /**
     * How the pipeline uses the connector: `WEIR_CAPABILITIES_SOURCE` if it is bound as a
     * source (events flow from it), `WEIR_CAPABILITIES_SINK` if bound as a sink, both, or
     * neither (`WEIR_CAPABILITIES_NONE`, for example when a tool only validates the config).
     */
    WeirCapabilities bound_as;
    /**
     * Out: the new instance (a thin trait object whose first word points to the
     * plugin's `WeirConnectorVtable`), or null on error.
     */
    void *instance;
};

/**
 * Identifies one event produced by a source: its stream and the host-assigned pull id.
 */
struct WeirEventId {
    /**
     * The stream the event belongs to (0 by default).
     */
    uint64_t stream;
    /**
     * Monotonic per source, assigned by the host when the event is pushed.
     */
    uint64_t pull;
};

/**
 * One event as a source hands it to the host.
 */
struct WeirRawEvent {
    /**
     * The event's payload.
     */
    WeirAbiSlice bytes;
    /**
     * The stream it belongs to.
     */
    uint64_t stream;
    /**
     * Optional metadata (UTF-8 JSON object), empty when absent.
     */
    WeirAbiSlice meta;
};

/**
 * Host-provided writer a source appends events to during `WeirConnectorVtable.pull`.
 */
struct WeirEventWriter {
    /**
     * Host state passed back to each function; valid for the duration of the pull.
     */
    void *ctx;
    /**
     * Copies one event into the host's batch and returns the pull id assigned to it.
     */
    uint64_t (*push)(void *ctx, const WeirRawEvent *event);
    /**
     * Marks the end of one stream (its per-stream state in the host is flushed).
     */
    void (*end_stream)(void *ctx, uint64_t stream);
};

/**
 * Arguments of `WeirConnectorVtable.pull`.
 */
struct WeirPullArgs {
    /**
     * Where errors go.
     */
    WeirErrorSink error;
    /**
     * Where events go.
     */
    WeirEventWriter writer;
    /**
     * The most events the host wants in this call; the plugin may push fewer.
     */
    uint32_t max_events;
    /**
     * Out: what the source expects next.
     */
    WeirPullHint hint;
};

/**
 * One event as the host hands it to a sink.
 */
struct WeirRawEventView {
    /**
     * The encoded payload.
     */
    WeirAbiSlice bytes;
    /**
     * The event's id at its source.
     */
    WeirEventId id;
    /**
     * When the host ingested the event at its source, in nanoseconds since the Unix epoch.
     */
    uint64_t ingest_ns;
    /**
     * Optional metadata (UTF-8 JSON object), empty when absent.
     */
    WeirAbiSlice meta;
};

/**
 * Arguments of `WeirConnectorVtable.sink_batch`.
 *
 * A batch of zero events is a *tick*: the host sends ticks periodically while the sink's
 * circuit breaker is closed (no events reach it then), so that it can reopen it.
 */
struct WeirSinkArgs {
    /**
     * Where errors go.
     */
    WeirErrorSink error;
    /**
     * `len` events, borrowed for the call.
     */
    const WeirRawEventView *events;
    /**
     * Number of events.
     */
    size_t len;
    /**
     * `len` host-owned reply slots, set to `WEIR_REPLY_CODE_AUTO` by the host before the call.
     */
    WeirReplyCode *replies;
    /**
     * Out: how many events the sink processed (replies past it are meaningless).
     */
    size_t processed;
    /**
     * Out: the breaker change requested during the batch (the last one wins).
     */
    WeirCircuitChange circuit;
};

/**
 * Arguments of `WeirConnectorVtable.notify`.
 */
struct WeirNotifyArgs {
    /**
     * Where errors go.
     */
    WeirErrorSink error;
    /**
     * What happened.
     */
    WeirNotice notice;
};

/**
 * Arguments of `WeirConnectorVtable.connect`.
 */
struct WeirConnectArgs {
    /**
     * Where errors go.
     */
    WeirErrorSink error;
    /**
     * 0 for the first attempt, then 1, 2, ... while connecting fails.
     */
    uint32_t attempt;
    /**
     * Out: whether the connector is connected (`WEIR_CONNECTED_NOT_YET` means "retry later").
     */
    WeirConnected connected;
};

/**
 * One ack or fail for a source.
 */
struct WeirFeedback {
    /**
     * The event.
     */
    WeirEventId id;
    /**
     * Ack or fail.
     */
    WeirFeedbackKind kind;
};

/**
 * Arguments of `WeirConnectorVtable.source_feedback`.
 */
struct WeirFeedbackArgs {
    /**
     * Where errors go.
     */
    WeirErrorSink error;
    /**
     * `len` verdicts, borrowed for the call.
     */
    const WeirFeedback *items;
    /**
     * Number of verdicts.
     */
    size_t len;
};

/**
 * Arguments of `WeirConnectorVtable.close`.
 */
struct WeirCloseArgs {
    /**
     * Where errors go (a panic in the connector's `Drop`).
     */
    WeirErrorSink error;
};

/**
 * Arguments of `WeirConnectorVtable.extension`.
 */
struct WeirExtensionArgs {
    /**
     * The extension table asked for (ids are listed in `crate::docs::abi_evolution`).
     */
    uint64_t id;
    /**
     * Out: the table, or null when the plugin does not have it.
     */
    const void *table;
};

/**
 * The functions of a connector instance, in the order the host expects them, `drop`
 * last. Every function takes the instance (whose first word points to this vtable) as
 * `self`, never unwinds, and returns a `WeirCallStatus` (`drop` returns nothing and
 * frees the instance).
 */
struct WeirConnectorVtable {
    /**
     * Connects (or reconnects). See `WeirConnectArgs`.
     */
    WeirCallStatus (*connect)(void *self, WeirConnectArgs *args);
    /**
     * Delivers a lifecycle or circuit-breaker notice. See `WeirNotice`.
     */
    WeirCallStatus (*notify)(void *self, WeirNotifyArgs *args);
    /**
     * Source side: appends up to `max_events` events to the host's batch.
     */
    WeirCallStatus (*pull)(void *self, WeirPullArgs *args);
    /**
     * Source side: acks and fails for events the source produced.
     */
    WeirCallStatus (*source_feedback)(void *self, WeirFeedbackArgs *args);
    /**
     * Sink side: a batch of events to deliver, one reply per event.
     */
    WeirCallStatus (*sink_batch)(void *self, WeirSinkArgs *args);
    /**
     * Drops the connector's state under the panic trap, so that a panic in its `Drop` is
     * reported. The instance refuses every call afterwards; `drop` frees the allocation.
     */
    WeirCallStatus (*close)(void *self, WeirCloseArgs *args);
    /**
     * Looks up an extension table added by a later minor version. Never fails.
     */
    WeirCallStatus (*extension)(void *self, WeirExtensionArgs *args);
    /**
     * Frees the instance (after `close`, or without it if the host never called it).
     */
    void (*drop)(void *self);
};

/* The layout of every struct as the sdk has it (64-bit targets): a compiler that lays
 * one out differently refuses to build the plugin. */
WEIR_STATIC_ASSERT(sizeof(WeirAbiSlice) == 16 && WEIR_ALIGNOF(WeirAbiSlice) == 8, "WeirAbiSlice: size and alignment as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirAbiSlice, ptr) == 0, "WeirAbiSlice.ptr: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirAbiSlice, len) == 8, "WeirAbiSlice.len: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(sizeof(WeirAbiVersion) == 4 && WEIR_ALIGNOF(WeirAbiVersion) == 2, "WeirAbiVersion: size and alignment as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirAbiVersion, major) == 0, "WeirAbiVersion.major: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirAbiVersion, minor) == 2, "WeirAbiVersion.minor: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(sizeof(WeirCloseArgs) == 16 && WEIR_ALIGNOF(WeirCloseArgs) == 8, "WeirCloseArgs: size and alignment as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirCloseArgs, error) == 0, "WeirCloseArgs.error: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(sizeof(WeirConnectArgs) == 24 && WEIR_ALIGNOF(WeirConnectArgs) == 8, "WeirConnectArgs: size and alignment as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirConnectArgs, error) == 0, "WeirConnectArgs.error: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirConnectArgs, attempt) == 16, "WeirConnectArgs.attempt: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirConnectArgs, connected) == 20, "WeirConnectArgs.connected: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(sizeof(WeirConnectorPluginDecl) == 128 && WEIR_ALIGNOF(WeirConnectorPluginDecl) == 8, "WeirConnectorPluginDecl: size and alignment as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirConnectorPluginDecl, header) == 0, "WeirConnectorPluginDecl.header: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirConnectorPluginDecl, capabilities) == 104, "WeirConnectorPluginDecl.capabilities: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirConnectorPluginDecl, vtable) == 112, "WeirConnectorPluginDecl.vtable: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirConnectorPluginDecl, create) == 120, "WeirConnectorPluginDecl.create: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(sizeof(WeirConnectorVtable) == 64 && WEIR_ALIGNOF(WeirConnectorVtable) == 8, "WeirConnectorVtable: size and alignment as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirConnectorVtable, connect) == 0, "WeirConnectorVtable.connect: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirConnectorVtable, notify) == 8, "WeirConnectorVtable.notify: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirConnectorVtable, pull) == 16, "WeirConnectorVtable.pull: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirConnectorVtable, source_feedback) == 24, "WeirConnectorVtable.source_feedback: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirConnectorVtable, sink_batch) == 32, "WeirConnectorVtable.sink_batch: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirConnectorVtable, close) == 40, "WeirConnectorVtable.close: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirConnectorVtable, extension) == 48, "WeirConnectorVtable.extension: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirConnectorVtable, drop) == 56, "WeirConnectorVtable.drop: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(sizeof(WeirCreateArgs) == 72 && WEIR_ALIGNOF(WeirCreateArgs) == 8, "WeirCreateArgs: size and alignment as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirCreateArgs, error) == 0, "WeirCreateArgs.error: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirCreateArgs, config) == 16, "WeirCreateArgs.config: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirCreateArgs, connector_id) == 32, "WeirCreateArgs.connector_id: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirCreateArgs, host) == 48, "WeirCreateArgs.host: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirCreateArgs, bound_as) == 56, "WeirCreateArgs.bound_as: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirCreateArgs, instance) == 64, "WeirCreateArgs.instance: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(sizeof(WeirErrorReport) == 56 && WEIR_ALIGNOF(WeirErrorReport) == 8, "WeirErrorReport: size and alignment as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirErrorReport, kind) == 0, "WeirErrorReport.kind: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirErrorReport, message) == 8, "WeirErrorReport.message: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirErrorReport, location) == 24, "WeirErrorReport.location: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirErrorReport, field_path) == 40, "WeirErrorReport.field_path: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(sizeof(WeirErrorSink) == 16 && WEIR_ALIGNOF(WeirErrorSink) == 8, "WeirErrorSink: size and alignment as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirErrorSink, ctx) == 0, "WeirErrorSink.ctx: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirErrorSink, report) == 8, "WeirErrorSink.report: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(sizeof(WeirEventId) == 16 && WEIR_ALIGNOF(WeirEventId) == 8, "WeirEventId: size and alignment as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirEventId, stream) == 0, "WeirEventId.stream: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirEventId, pull) == 8, "WeirEventId.pull: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(sizeof(WeirEventWriter) == 24 && WEIR_ALIGNOF(WeirEventWriter) == 8, "WeirEventWriter: size and alignment as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirEventWriter, ctx) == 0, "WeirEventWriter.ctx: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirEventWriter, push) == 8, "WeirEventWriter.push: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirEventWriter, end_stream) == 16, "WeirEventWriter.end_stream: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(sizeof(WeirExtensionArgs) == 16 && WEIR_ALIGNOF(WeirExtensionArgs) == 8, "WeirExtensionArgs: size and alignment as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirExtensionArgs, id) == 0, "WeirExtensionArgs.id: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirExtensionArgs, table) == 8, "WeirExtensionArgs.table: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(sizeof(WeirFeedback) == 24 && WEIR_ALIGNOF(WeirFeedback) == 8, "WeirFeedback: size and alignment as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirFeedback, id) == 0, "WeirFeedback.id: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirFeedback, kind) == 16, "WeirFeedback.kind: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(sizeof(WeirFeedbackArgs) == 32 && WEIR_ALIGNOF(WeirFeedbackArgs) == 8, "WeirFeedbackArgs: size and alignment as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirFeedbackArgs, error) == 0, "WeirFeedbackArgs.error: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirFeedbackArgs, items) == 16, "WeirFeedbackArgs.items: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirFeedbackArgs, len) == 24, "WeirFeedbackArgs.len: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(sizeof(WeirHostApi) == 80 && WEIR_ALIGNOF(WeirHostApi) == 8, "WeirHostApi: size and alignment as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirHostApi, struct_size) == 0, "WeirHostApi.struct_size: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirHostApi, ctx) == 8, "WeirHostApi.ctx: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirHostApi, log) == 16, "WeirHostApi.log: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirHostApi, request_shutdown) == 24, "WeirHostApi.request_shutdown: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirHostApi, max_level) == 32, "WeirHostApi.max_level: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirHostApi, waker_new) == 40, "WeirHostApi.waker_new: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirHostApi, waker_clone) == 48, "WeirHostApi.waker_clone: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirHostApi, waker_wake) == 56, "WeirHostApi.waker_wake: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirHostApi, waker_drop) == 64, "WeirHostApi.waker_drop: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirHostApi, pull_after) == 72, "WeirHostApi.pull_after: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(sizeof(WeirLogRecord) == 40 && WEIR_ALIGNOF(WeirLogRecord) == 8, "WeirLogRecord: size and alignment as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirLogRecord, level) == 0, "WeirLogRecord.level: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirLogRecord, target) == 8, "WeirLogRecord.target: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirLogRecord, message) == 24, "WeirLogRecord.message: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(sizeof(WeirNotifyArgs) == 24 && WEIR_ALIGNOF(WeirNotifyArgs) == 8, "WeirNotifyArgs: size and alignment as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirNotifyArgs, error) == 0, "WeirNotifyArgs.error: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirNotifyArgs, notice) == 16, "WeirNotifyArgs.notice: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(sizeof(WeirPluginHeader) == 104 && WEIR_ALIGNOF(WeirPluginHeader) == 8, "WeirPluginHeader: size and alignment as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirPluginHeader, magic) == 0, "WeirPluginHeader.magic: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirPluginHeader, header_size) == 8, "WeirPluginHeader.header_size: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirPluginHeader, kind) == 12, "WeirPluginHeader.kind: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirPluginHeader, abi) == 16, "WeirPluginHeader.abi: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirPluginHeader, decl_size) == 20, "WeirPluginHeader.decl_size: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirPluginHeader, layout_fingerprint) == 24, "WeirPluginHeader.layout_fingerprint: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirPluginHeader, panic_strategy) == 32, "WeirPluginHeader.panic_strategy: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirPluginHeader, target) == 40, "WeirPluginHeader.target: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirPluginHeader, sdk_version) == 56, "WeirPluginHeader.sdk_version: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirPluginHeader, name) == 72, "WeirPluginHeader.name: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirPluginHeader, version) == 88, "WeirPluginHeader.version: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(sizeof(WeirPullArgs) == 48 && WEIR_ALIGNOF(WeirPullArgs) == 8, "WeirPullArgs: size and alignment as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirPullArgs, error) == 0, "WeirPullArgs.error: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirPullArgs, writer) == 16, "WeirPullArgs.writer: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirPullArgs, max_events) == 40, "WeirPullArgs.max_events: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirPullArgs, hint) == 44, "WeirPullArgs.hint: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(sizeof(WeirRawEvent) == 40 && WEIR_ALIGNOF(WeirRawEvent) == 8, "WeirRawEvent: size and alignment as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirRawEvent, bytes) == 0, "WeirRawEvent.bytes: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirRawEvent, stream) == 16, "WeirRawEvent.stream: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirRawEvent, meta) == 24, "WeirRawEvent.meta: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(sizeof(WeirRawEventView) == 56 && WEIR_ALIGNOF(WeirRawEventView) == 8, "WeirRawEventView: size and alignment as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirRawEventView, bytes) == 0, "WeirRawEventView.bytes: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirRawEventView, id) == 16, "WeirRawEventView.id: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirRawEventView, ingest_ns) == 32, "WeirRawEventView.ingest_ns: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirRawEventView, meta) == 40, "WeirRawEventView.meta: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(sizeof(WeirSinkArgs) == 56 && WEIR_ALIGNOF(WeirSinkArgs) == 8, "WeirSinkArgs: size and alignment as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirSinkArgs, error) == 0, "WeirSinkArgs.error: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirSinkArgs, events) == 16, "WeirSinkArgs.events: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirSinkArgs, len) == 24, "WeirSinkArgs.len: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirSinkArgs, replies) == 32, "WeirSinkArgs.replies: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirSinkArgs, processed) == 40, "WeirSinkArgs.processed: offset as in the Rust sdk");
WEIR_STATIC_ASSERT(offsetof(WeirSinkArgs, circuit) == 48, "WeirSinkArgs.circuit: offset as in the Rust sdk");

#ifdef __cplusplus
}
#endif

#endif /* WEIR_CONNECTOR_H */
