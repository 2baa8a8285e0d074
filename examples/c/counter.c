/*
 * ccounter: a Weir connector plugin written in C, against sdk/include/weir_connector.h.
 *
 * As a source it produces `count` events, "c 0", "c 1", ... (10 by default), then ends its
 * stream and finishes; it counts the acks and fails it gets back. As a sink it acks every
 * event except one whose bytes are exactly `fail`. On stop it logs what it saw.
 *
 *   [connector.config]
 *   count = 5
 *
 * Build: cc -std=c11 -O2 -shared -fPIC -fvisibility=hidden -I sdk/include \
 *           examples/c/counter.c -o libccounter.so
 * (the tests build it so, see host/tests/c_plugin.rs).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weir_connector.h"

#define EXPORT __attribute__((visibility("default")))

/* A string literal as the initializer of a WeirAbiSlice (without its NUL). */
#define SLICE(literal) {(const uint8_t *)(literal), sizeof(literal) - 1}

/* One instance. Its first field points to the vtable: the host reads that word. */
typedef struct Counter {
    const WeirConnectorVtable *vtable;
    uint64_t next;
    uint64_t count;
    uint64_t acked;
    uint64_t failed;
    uint64_t received;
    /* The host's services, as far as this header knows them (see copy_host). */
    WeirHostApi host;
} Counter;

static const WeirConnectorVtable VTABLE;

/* Reports one error of `kind` through the call's error sink. */
static void report(WeirErrorSink sink, WeirErrorKind kind, const char *message,
                   const char *field_path) {
    if (sink.report == NULL) {
        return;
    }
    WeirErrorReport error = {
        .kind = kind,
        .message = {(const uint8_t *)message, strlen(message)},
        .location = {NULL, 0},
        .field_path = {(const uint8_t *)field_path, strlen(field_path)},
    };
    sink.report(sink.ctx, &error);
}

/* Copies the fields of the host's HostApi that its struct_size covers; the others stay
 * zero (absent), so a newer or older host is read correctly. */
static void copy_host(WeirHostApi *copy, const WeirHostApi *host) {
    memset(copy, 0, sizeof *copy);
    if (host == NULL) {
        return;
    }
    size_t size = host->struct_size < sizeof *copy ? host->struct_size : sizeof *copy;
    memcpy(copy, host, size);
}

static void log_info(const Counter *self, const char *message) {
    const WeirHostApi *host = &self->host;
    /* Fields the host's struct_size did not cover are zero: no log, level off. */
    if (host->log == NULL || host->max_level < WEIR_LOG_LEVEL_INFO) {
        return;
    }
    WeirLogRecord record = {
        .level = WEIR_LOG_LEVEL_INFO,
        .target = SLICE("ccounter"),
        .message = {(const uint8_t *)message, strlen(message)},
    };
    host->log(host->ctx, &record);
}

/* Skips JSON whitespace. */
static const char *skip(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
        p++;
    }
    return p;
}

/* Reads the config: `{}` or `{"count": N}`. Returns 0, or reports why not and returns -1.
 * (A real plugin would use a JSON library; this one knows its one key.) */
static int parse_config(WeirAbiSlice config, uint64_t *count, WeirErrorSink sink) {
    const char *p = (const char *)config.ptr;
    const char *end = p + config.len;
    *count = 10;
    p = skip(p, end);
    if (p == end || *p != '{') {
        report(sink, WEIR_ERROR_KIND_CONFIG, "the config must be a table", "");
        return -1;
    }
    p = skip(p + 1, end);
    if (p < end && *p == '}') {
        return 0;
    }
    static const char key[] = "\"count\"";
    if ((size_t)(end - p) < sizeof key - 1 || memcmp(p, key, sizeof key - 1) != 0) {
        report(sink, WEIR_ERROR_KIND_CONFIG, "unknown field: ccounter has only `count`", "");
        return -1;
    }
    p = skip(p + sizeof key - 1, end);
    if (p == end || *p != ':') {
        report(sink, WEIR_ERROR_KIND_CONFIG, "expected `:` after \"count\"", "[\"count\"]");
        return -1;
    }
    p = skip(p + 1, end);
    uint64_t value = 0;
    const char *digits = p;
    while (p < end && *p >= '0' && *p <= '9') {
        uint64_t digit = (uint64_t)(*p - '0');
        if (value > (UINT64_MAX - digit) / 10) {
            report(sink, WEIR_ERROR_KIND_CONFIG, "`count` does not fit in 64 bits", "[\"count\"]");
            return -1;
        }
        value = value * 10 + digit;
        p++;
    }
    if (p == digits) {
        report(sink, WEIR_ERROR_KIND_CONFIG, "`count` must be a non-negative integer",
               "[\"count\"]");
        return -1;
    }
    p = skip(p, end);
    if (p == end || *p != '}' || skip(p + 1, end) != end) {
        report(sink, WEIR_ERROR_KIND_CONFIG, "unknown field: ccounter has only `count`", "");
        return -1;
    }
    *count = value;
    return 0;
}

static WeirCallStatus create(WeirCreateArgs *args) {
    uint64_t count;
    if (parse_config(args->config, &count, args->error) != 0) {
        return WEIR_CALL_STATUS_ERROR;
    }
    Counter *self = calloc(1, sizeof *self);
    if (self == NULL) {
        report(args->error, WEIR_ERROR_KIND_CONNECTOR, "out of memory", "");
        return WEIR_CALL_STATUS_ERROR;
    }
    self->vtable = &VTABLE;
    self->count = count;
    copy_host(&self->host, args->host);
    args->instance = self;
    return WEIR_CALL_STATUS_OK;
}

static WeirCallStatus counter_connect(void *instance, WeirConnectArgs *args) {
    (void)instance;
    args->connected = WEIR_CONNECTED_YES;
    return WEIR_CALL_STATUS_OK;
}

static WeirCallStatus counter_notify(void *instance, WeirNotifyArgs *args) {
    Counter *self = instance;
    switch (args->notice) {
    case WEIR_NOTICE_START:
    case WEIR_NOTICE_PAUSE:
    case WEIR_NOTICE_RESUME:
    case WEIR_NOTICE_DRAIN:
    case WEIR_NOTICE_CIRCUIT_CLOSED:
    case WEIR_NOTICE_CIRCUIT_OPENED:
        return WEIR_CALL_STATUS_OK;
    case WEIR_NOTICE_STOP: {
        char message[160];
        snprintf(message, sizeof message,
                 "ccounter stopping: produced %llu (acked %llu, failed %llu), received %llu",
                 (unsigned long long)self->next, (unsigned long long)self->acked,
                 (unsigned long long)self->failed, (unsigned long long)self->received);
        log_info(self, message);
        return WEIR_CALL_STATUS_OK;
    }
    default:
        /* A notice from a newer host: an error, never a guess. */
        report(args->error, WEIR_ERROR_KIND_CONNECTOR, "unknown notice", "");
        return WEIR_CALL_STATUS_ERROR;
    }
}

static WeirCallStatus counter_pull(void *instance, WeirPullArgs *args) {
    Counter *self = instance;
    uint32_t pushed = 0;
    char text[32];
    while (self->next < self->count && pushed < args->max_events) {
        int len = snprintf(text, sizeof text, "c %llu", (unsigned long long)self->next);
        WeirRawEvent event = {
            .bytes = {(const uint8_t *)text, (size_t)len},
            .stream = 0,
            .meta = {NULL, 0},
        };
        /* The host copies the bytes during the call. */
        args->writer.push(args->writer.ctx, &event);
        self->next++;
        pushed++;
    }
    if (self->next == self->count) {
        args->writer.end_stream(args->writer.ctx, 0);
        args->hint = WEIR_PULL_HINT_FINISHED;
    } else {
        args->hint = WEIR_PULL_HINT_READY;
    }
    return WEIR_CALL_STATUS_OK;
}

static WeirCallStatus counter_source_feedback(void *instance, WeirFeedbackArgs *args) {
    Counter *self = instance;
    for (size_t i = 0; i < args->len; i++) {
        switch (args->items[i].kind) {
        case WEIR_FEEDBACK_KIND_ACK:
            self->acked++;
            break;
        case WEIR_FEEDBACK_KIND_FAIL:
            self->failed++;
            break;
        default:
            report(args->error, WEIR_ERROR_KIND_CONNECTOR, "unknown feedback kind", "");
            return WEIR_CALL_STATUS_ERROR;
        }
    }
    return WEIR_CALL_STATUS_OK;
}

static WeirCallStatus counter_sink_batch(void *instance, WeirSinkArgs *args) {
    Counter *self = instance;
    /* A batch of no events is a tick (the circuit breaker is never closed here). */
    for (size_t i = 0; i < args->len; i++) {
        const WeirRawEventView *event = &args->events[i];
        int fail = event->bytes.len == 4 && memcmp(event->bytes.ptr, "fail", 4) == 0;
        args->replies[i] = fail ? WEIR_REPLY_CODE_FAIL : WEIR_REPLY_CODE_ACK;
        self->received++;
    }
    args->processed = args->len;
    args->circuit = WEIR_CIRCUIT_CHANGE_NONE;
    return WEIR_CALL_STATUS_OK;
}

static WeirCallStatus counter_close(void *instance, WeirCloseArgs *args) {
    (void)instance;
    (void)args;
    /* Nothing to release but the instance itself, which `drop` frees. */
    return WEIR_CALL_STATUS_OK;
}

static WeirCallStatus counter_extension(void *instance, WeirExtensionArgs *args) {
    (void)instance;
    args->table = NULL;
    return WEIR_CALL_STATUS_OK;
}

static void counter_drop(void *instance) {
    free(instance);
}

static const WeirConnectorVtable VTABLE = {
    .connect = counter_connect,
    .notify = counter_notify,
    .pull = counter_pull,
    .source_feedback = counter_source_feedback,
    .sink_batch = counter_sink_batch,
    .close = counter_close,
    .extension = counter_extension,
    .drop = counter_drop,
};

static const WeirConnectorPluginDecl DECL = {
    .header =
        {
            .magic = WEIR_MAGIC,
            .header_size = sizeof(WeirPluginHeader),
            .kind = WEIR_PLUGIN_KIND_CONNECTOR,
            .abi = {WEIR_CONNECTOR_ABI_MAJOR, WEIR_CONNECTOR_ABI_MINOR},
            .decl_size = sizeof(WeirConnectorPluginDecl),
            .layout_fingerprint = WEIR_LAYOUT_FINGERPRINT,
            /* Nothing unwinds out of C: the host is never unwound into. */
            .panic_strategy = WEIR_PANIC_STRATEGY_UNWIND,
            .target = SLICE(WEIR_TARGET),
            .sdk_version = SLICE(WEIR_SDK_VERSION),
            .name = SLICE("ccounter"),
            .version = SLICE("0.1.0"),
        },
    .capabilities = WEIR_CAPABILITIES_SOURCE | WEIR_CAPABILITIES_SINK,
    .vtable = &VTABLE,
    .create = create,
};

/* The one exported symbol (WEIR_METADATA_SYMBOL). */
EXPORT const WeirPluginHeader *weir_plugin_metadata(WeirErrorSink error) {
    (void)error;
    return &DECL.header;
}
