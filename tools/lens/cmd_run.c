/* cmd_run.c — `lens run`: the model's first input and output as NumPy .npy files, for checking numerics. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "formats/formats.h"

static const char help[] =
    "usage: lens run -m MODEL -i IN.npy -o OUT.npy [-t THREADS]\n"
    "\n"
    "Runs MODEL's first input to its first output. IN.npy must be float32 in C order with the shape the model\n"
    "expects (any batch size where the batch dimension is dynamic); OUT.npy is written as float32.\n"
    "\n"
    "  -m, --model FILE     the model (.onnx)\n"
    "  -i, --input FILE     input tensor (.npy, float32)\n"
    "  -o, --output FILE    where to write the output tensor (.npy)\n"
    "  -t, --threads N      worker threads (default: physical cores)\n"
    "  -h, --help           show this help\n";

int cmd_run(int argc, char **argv) {
    const char *model_path = NULL, *in_path = NULL, *out_path = NULL, *value;
    long threads = 0;
    for (int i = 1; i < argc; i++) {
        int r;
        if (cli_flag(argv[i], "-h", "--help")) {
            fputs(help, stdout);
            return CLI_EXIT_OK;
        }
        if ((r = cli_option_value(argc, argv, &i, "-m", "--model", &model_path))) {
            if (r < 0) return CLI_EXIT_USAGE;
        } else if ((r = cli_option_value(argc, argv, &i, "-i", "--input", &in_path))) {
            if (r < 0) return CLI_EXIT_USAGE;
        } else if ((r = cli_option_value(argc, argv, &i, "-o", "--output", &out_path))) {
            if (r < 0) return CLI_EXIT_USAGE;
        } else if ((r = cli_option_value(argc, argv, &i, "-t", "--threads", &value))) {
            if (r < 0 || !cli_parse_int("--threads", value, 1, 256, &threads)) return CLI_EXIT_USAGE;
        } else {
            cli_error(argv[i][0] == '-' ? "run: unknown option '%s'" : "run: unexpected argument '%s'", argv[i]);
            fputs(help, stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (!model_path || !in_path || !out_path) {
        cli_error("run: -m MODEL, -i IN.npy and -o OUT.npy are required");
        fputs(help, stderr);
        return CLI_EXIT_USAGE;
    }
    tensor in;
    if (npy_read(in_path, &in)) return cli_fail_last();
    if (in.dtype != LENS_DTYPE_FLOAT32) {
        cli_error("%s: dtype %s; lens run takes float32", in_path, dtype_name(in.dtype));
        free(in.data);
        return CLI_EXIT_RUNTIME;
    }
    lens_model_options opts = {.threads = (int)threads};
    lens_model *model;
    if (lens_model_load(model_path, &opts, &model)) {
        free(in.data);
        return cli_fail_last();
    }
    lens_tensor input = {.rank = in.rank, .data = in.data}, output;
    memcpy(input.dims, in.dims, sizeof(int64_t) * (size_t)in.rank);
    int rc = CLI_EXIT_OK;
    if (lens_model_run(model, &input, &output)) {
        rc = cli_fail_last();
    } else {
        tensor out = {.dtype = LENS_DTYPE_FLOAT32, .rank = output.rank, .data = output.data};
        memcpy(out.dims, output.dims, sizeof out.dims);
        if (npy_write(out_path, &out)) rc = cli_fail_last();
        free(output.data);
    }
    lens_model_free(model);
    free(in.data);
    return rc;
}
