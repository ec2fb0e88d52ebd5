/* cli.h — shared pieces of the lens command-line program: subcommands, option parsing, error reporting. */
#ifndef LENS_CLI_H
#define LENS_CLI_H

#include <stdio.h>

#include "lens.h"

#define CLI_EXIT_OK 0
#define CLI_EXIT_RUNTIME 1
#define CLI_EXIT_USAGE 2

int cmd_classify(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_bench(int argc, char **argv);

/* Prints "lens: message" to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "lens: <lens_last_error()>" and returns CLI_EXIT_RUNTIME. */
int cli_fail_last(void);

/* Option parsing over argv[*i]: when argv[*i] is the option (short or long, "--long=value" too), stores its value
 * (the next argument, or after '='), advances *i and returns 1; returns -1 (after printing a usage error) when the
 * value is missing; 0 when argv[*i] is another option. */
int cli_option_value(int argc, char **argv, int *i, const char *short_name, const char *long_name, const char **value);
int cli_flag(const char *arg, const char *short_name, const char *long_name);
/* Parses integers and floats with range checks; on error prints a usage error naming the option and returns 0. */
int cli_parse_int(const char *option, const char *text, long min, long max, long *out);
int cli_parse_float(const char *option, const char *text, float *out);
/* "a,b,c" → three floats. */
int cli_parse_float3(const char *option, const char *text, float out[3]);

/* Writes s as a JSON string literal (with quotes). */
void cli_json_string(FILE *f, const char *s);

#endif
