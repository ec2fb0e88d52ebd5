/* main.c — the lens command-line program: dispatches to subcommands, and holds the option helpers they share. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
    "usage: lens <command> [options]\n"
    "\n"
    "commands:\n"
    "  classify  classify images with a model and print the top labels\n"
    "  run       run a model on a .npy tensor and write the output .npy\n"
    "  info      describe a model: inputs, outputs, parameters, ops, memory\n"
    "  bench     time a model: load, latency, throughput, memory, time per layer\n"
    "\n"
    "Run 'lens <command> --help' for a command's options.\n";

void cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("lens: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_fail_last(void) {
    cli_error("%s", lens_last_error());
    return CLI_EXIT_RUNTIME;
}

int cli_flag(const char *arg, const char *short_name, const char *long_name) {
    return (short_name && !strcmp(arg, short_name)) || (long_name && !strcmp(arg, long_name));
}

int cli_option_value(int argc, char **argv, int *i, const char *short_name, const char *long_name, const char **value) {
    const char *arg = argv[*i];
    size_t n = long_name ? strlen(long_name) : 0;
    if (long_name && !strncmp(arg, long_name, n) && arg[n] == '=') {
        *value = arg + n + 1;
        return 1;
    }
    if (!cli_flag(arg, short_name, long_name)) return 0;
    if (*i + 1 >= argc) {
        cli_error("option %s needs a value", arg);
        return -1;
    }
    *value = argv[++*i];
    return 1;
}

int cli_parse_int(const char *option, const char *text, long min, long max, long *out) {
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max) {
        cli_error("%s: '%s' is not an integer in %ld..%ld", option, text, min, max);
        return 0;
    }
    *out = v;
    return 1;
}

int cli_parse_float(const char *option, const char *text, float *out) {
    char *end;
    errno = 0;
    float v = strtof(text, &end);
    if (errno || end == text || *end || !isfinite(v)) {
        cli_error("%s: '%s' is not a number", option, text);
        return 0;
    }
    *out = v;
    return 1;
}

int cli_parse_float3(const char *option, const char *text, float out[3]) {
    char *end;
    const char *p = text;
    for (int k = 0; k < 3; k++) {
        errno = 0;
        out[k] = strtof(p, &end);
        if (errno || end == p || !isfinite(out[k]) || (k < 2 && *end != ',') || (k == 2 && *end)) {
            cli_error("%s: '%s' is not three comma-separated numbers", option, text);
            return 0;
        }
        p = end + 1;
    }
    return 1;
}

void cli_json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *)(s ? s : ""); *c; c++) {
        if (*c == '"' || *c == '\\') fprintf(f, "\\%c", *c);
        else if (*c == '\n') fputs("\\n", f);
        else if (*c == '\t') fputs("\\t", f);
        else if (*c < 0x20) fprintf(f, "\\u%04x", *c);
        else fputc(*c, f);
    }
    fputc('"', f);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fputs(usage, stderr);
        return CLI_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (cli_flag(cmd, "-h", "--help") || !strcmp(cmd, "help")) {
        fputs(usage, stdout);
        return CLI_EXIT_OK;
    }
    if (!strcmp(cmd, "classify")) return cmd_classify(argc - 1, argv + 1);
    if (!strcmp(cmd, "run")) return cmd_run(argc - 1, argv + 1);
    if (!strcmp(cmd, "info")) return cmd_info(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench")) return cmd_bench(argc - 1, argv + 1);
    cli_error("unknown command '%s'", cmd);
    fputs(usage, stderr);
    return CLI_EXIT_USAGE;
}
