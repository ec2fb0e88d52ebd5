/* linalg.c — placeholder table until the family lands. */
#include "ops.h"

const op_def ops_table_linalg[] = {{0}};
