/* cmd_info.c — `lens info`: what a model is made of. */
#include <stdlib.h>

#include "cli.h"

static const char help[] =
    "usage: lens info -m MODEL [--json]\n"
    "\n"
    "Prints the model's format, inputs and outputs with shapes (-1 = dynamic), parameter count, weight bytes,\n"
    "op histogram and the activation memory planned at batch 1.\n"
    "\n"
    "  -m, --model FILE   the model (.onnx)\n"
    "      --json         one JSON object instead of text\n"
    "  -h, --help         show this help\n";

int cmd_info(int argc, char **argv) {
    const char *model_path = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        int r;
        if (cli_flag(argv[i], "-h", "--help")) {
            fputs(help, stdout);
            return CLI_EXIT_OK;
        }
        if (cli_flag(argv[i], NULL, "--json")) json = 1;
        else if ((r = cli_option_value(argc, argv, &i, "-m", "--model", &model_path))) {
            if (r < 0) return CLI_EXIT_USAGE;
        } else {
            cli_error(argv[i][0] == '-' ? "info: unknown option '%s'" : "info: unexpected argument '%s'", argv[i]);
            fputs(help, stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (!model_path) {
        cli_error("info: -m MODEL is required");
        fputs(help, stderr);
        return CLI_EXIT_USAGE;
    }
    lens_model_options opts = {.threads = 1};
    lens_model *model;
    if (lens_model_load(model_path, &opts, &model)) return cli_fail_last();
    char *text = lens_model_describe(model, json);
    int rc = CLI_EXIT_OK;
    if (text) fputs(text, stdout);
    else rc = cli_fail_last();
    free(text);
    lens_model_free(model);
    return rc;
}
