/* cmd_bench.c — `lens bench`: load time, per-run latency (min/p50/p90), images per second and peak RSS of a model on
 * random input, optionally with the time per layer and op type. Measures; checks nothing. */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli.h"
#include "core/core.h"

static const char help[] =
    "usage: lens bench -m MODEL [-b BATCH] [-t THREADS] [-n RUNS] [--warmup N] [--json] [--per-op]\n"
    "\n"
    "Times MODEL on random input of its own shape (dynamic batch = BATCH, other dynamic dims = 224).\n"
    "Reports load time, latency per run (min, p50, p90), images per second and peak RSS.\n"
    "\n"
    "  -m, --model FILE   the model (.onnx)\n"
    "  -b, --batch N      batch size (default 1)\n"
    "  -t, --threads N    worker threads (default: physical cores)\n"
    "  -n, --runs N       timed runs (default 20)\n"
    "      --warmup N     untimed runs first (default 3)\n"
    "      --json         one JSON line\n"
    "      --per-op       add the time per op type and the slowest layers\n"
    "  -h, --help         show this help\n";

/* Peak resident memory of this process in MB. VmHWM, because getrusage's maximum is inherited across exec from a
 * parent that forked (e.g. a Python driver that had loaded a model). */
static double peak_rss_mb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) break;
    if (f) fclose(f);
    if (kb < 0) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        kb = ru.ru_maxrss;
    }
    return (double)kb / 1024.0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int cmd_bench(int argc, char **argv) {
    const char *model_path = NULL, *value;
    long batch = 1, threads = 0, runs = 20, warmup = 3;
    int json = 0, per_op = 0;
    for (int i = 1; i < argc; i++) {
        int r;
        if (cli_flag(argv[i], "-h", "--help")) {
            fputs(help, stdout);
            return CLI_EXIT_OK;
        }
        if (cli_flag(argv[i], NULL, "--json")) json = 1;
        else if (cli_flag(argv[i], NULL, "--per-op")) per_op = 1;
        else if ((r = cli_option_value(argc, argv, &i, "-m", "--model", &model_path))) {
            if (r < 0) return CLI_EXIT_USAGE;
        } else if ((r = cli_option_value(argc, argv, &i, "-b", "--batch", &value))) {
            if (r < 0 || !cli_parse_int("--batch", value, 1, 4096, &batch)) return CLI_EXIT_USAGE;
        } else if ((r = cli_option_value(argc, argv, &i, "-t", "--threads", &value))) {
            if (r < 0 || !cli_parse_int("--threads", value, 1, 256, &threads)) return CLI_EXIT_USAGE;
        } else if ((r = cli_option_value(argc, argv, &i, "-n", "--runs", &value))) {
            if (r < 0 || !cli_parse_int("--runs", value, 1, 1000000, &runs)) return CLI_EXIT_USAGE;
        } else if ((r = cli_option_value(argc, argv, &i, NULL, "--warmup", &value))) {
            if (r < 0 || !cli_parse_int("--warmup", value, 0, 1000000, &warmup)) return CLI_EXIT_USAGE;
        } else {
            cli_error(argv[i][0] == '-' ? "bench: unknown option '%s'" : "bench: unexpected argument '%s'", argv[i]);
            fputs(help, stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (!model_path) {
        cli_error("bench: -m MODEL is required");
        fputs(help, stderr);
        return CLI_EXIT_USAGE;
    }
    lens_model_options opts = {.threads = (int)threads};
    lens_model *model;
    double t0 = core_now();
    if (lens_model_load(model_path, &opts, &model)) return cli_fail_last();
    double load_ms = (core_now() - t0) * 1e3;

    lens_tensor_info in;
    lens_model_input_info(model, 0, &in);
    lens_tensor input = {.rank = in.rank};
    int64_t numel = 1;
    for (int d = 0; d < in.rank; d++) {
        input.dims[d] = d == 0 ? batch : in.dims[d] >= 0 ? in.dims[d] : 224;
        numel *= input.dims[d];
    }
    int rc = CLI_EXIT_OK;
    double *times = calloc((size_t)runs, sizeof *times);
    input.data = malloc(sizeof(float) * (size_t)(numel > 0 ? numel : 1));
    if (!times || !input.data) {
        cli_error("bench: out of memory");
        rc = CLI_EXIT_RUNTIME;
    }
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (int64_t i = 0; !rc && i < numel; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        input.data[i] = (float)((seed >> 40) & 0xffff) / 32768.0f - 1.0f;
    }
    for (long r = 0; !rc && r < warmup + runs; r++) {
        if (r == warmup && per_op) lens_model_set_profiling(model, 1);
        lens_tensor out;
        double start = core_now();
        if (lens_model_run(model, &input, &out)) {
            rc = cli_fail_last();
            break;
        }
        if (r >= warmup) times[r - warmup] = (core_now() - start) * 1e3;
        free(out.data);
    }
    if (!rc) {
        double total = 0;
        for (long r = 0; r < runs; r++) total += times[r];
        qsort(times, (size_t)runs, sizeof *times, cmp_double);
        double min = times[0], p50 = times[runs / 2], p90 = times[(runs * 9) / 10 < runs ? (runs * 9) / 10 : runs - 1];
        double ips = (double)batch * (double)runs / (total / 1e3);
        double rss_mb = peak_rss_mb();
        if (json) {
            printf("{\"model\": ");
            cli_json_string(stdout, model_path);
            printf(", \"batch\": %ld, \"threads\": %d, \"load_ms\": %.3f, \"latency_ms\": {\"min\": %.3f, \"p50\": %.3f, "
                   "\"p90\": %.3f}, \"images_per_s\": %.2f, \"peak_rss_mb\": %.1f",
                   batch, threads ? (int)threads : core_physical_cores(), load_ms, min, p50, p90, ips, rss_mb);
            if (per_op) {
                char *report = lens_model_profile_report(model, 1);
                if (report) {
                    report[strcspn(report, "\n")] = 0;
                    printf(", \"profile\": %s", report);
                }
                free(report);
            }
            printf("}\n");
        } else {
            printf("model:       %s\nbatch:       %ld\nthreads:     %d\nload:        %.1f ms\n"
                   "latency:     min %.2f ms, p50 %.2f ms, p90 %.2f ms (%ld runs)\nthroughput:  %.1f images/s\n"
                   "peak RSS:    %.1f MB\n",
                   model_path, batch, threads ? (int)threads : core_physical_cores(), load_ms, min, p50, p90, runs,
                   ips, rss_mb);
            if (per_op) {
                char *report = lens_model_profile_report(model, 0);
                if (report) fputs(report, stdout);
                free(report);
            }
        }
    }
    free(times);
    free(input.data);
    lens_model_free(model);
    return rc;
}
