/* formats.h — the formats layer: importers that turn model files into lens's graph through the builder API, and
 * tensor files (serialized ONNX TensorProto, numpy .npy). Includes graph and below. Importers only build: the caller
 * runs graph_finalize. */
#ifndef LENS_FORMATS_H
#define LENS_FORMATS_H

#include "../graph/graph.h"

/* ---- ONNX ------------------------------------------------------------------------------------------------------ */

/* Loads an ONNX model file. The file is memory-mapped and the mapping is handed to the graph (graph_keep_mapping):
 * initializers whose raw_data is aligned for their dtype point into it, the rest are copied into graph memory.
 * External data files are resolved relative to the model's directory. On success *out owns everything: free it with
 * graph_free. On failure *out is NULL and the message starts with path: LENS_ERR_IO when the file cannot be opened
 * or read, LENS_ERR_FORMAT when it is malformed, LENS_ERR_UNSUPPORTED for valid models lens cannot represent (opset
 * outside 7..21, sparse initializers, string tensors, rank above TENSOR_MAX_RANK). */
lens_status onnx_load_file(const char *path, graph **out);

/* The same from a buffer the caller keeps ownership of: everything the graph needs is copied, so data may be freed
 * once this returns. source_name prefixes messages (NULL: "<memory>"); base_dir is where external data files are
 * looked up (NULL: external data is refused). */
lens_status onnx_load_memory(const void *data, size_t size, const char *source_name, const char *base_dir,
                             graph **out);

/* Reads a file holding one serialized TensorProto (as the ONNX backend tests' test_data_set_N/input_0.pb) into out:
 * its data is allocated from g's memory and lives as long as g. */
lens_status onnx_read_tensor_file(const char *path, graph *g, tensor *out);

/* ---- NumPy .npy -------------------------------------------------------------------------------------------------- */

/* Reads a .npy file (format 1.0, 2.0 or 3.0; C order; dtypes <f4 <f8 <f2 <i8 <i4 <i2 <u2 <u4 <u8 |u1 |i1 |b1). On
 * success out->data is malloc'd and the caller frees it with free(); on failure out->data is NULL. */
lens_status npy_read(const char *path, tensor *out);

/* Writes t as a .npy file (format 1.0) with any dtype npy_read accepts. */
lens_status npy_write(const char *path, const tensor *t);

#endif
