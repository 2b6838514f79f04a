/*
 * zsq_infer - run a zynq-squeeze model bundle (no Python, no TVM runtime).
 *
 *   zsq_infer MODEL.zsqm [-i INPUT.npy|.raw]... [-o OUTPUT.npy|.raw]... [-n REPEATS] [-q]
 *
 * -i   one per model input, in order: a .npy file (float32 '<f4', C order, exactly the
 *      model's shape) or raw float32 (any other name; exactly the input's size). Without
 *      -i every input is zeros.
 * -o   one per model output (in order, fewer is fine): .npy with the model's shape, or raw.
 *      Outputs without -o are summarized on stdout (argmax and its value).
 * -n   run the model REPEATS times (1..1000000) on the same inputs.
 * -q   print nothing but errors.
 * Prints per run: total ms, ms inside the offloaded functions, accelerator cycles. On any
 * failure (also: stdout cannot be written) prints one line "zsq_infer: error: ..." on
 * stderr and exits non-zero (2: usage).
 */
#define _POSIX_C_SOURCE 200809L
#define _FILE_OFFSET_BITS 64
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "zsq_model.h"

#define MAX_IO 16
#define NPY_MAX_HEADER (1 << 20)   /* numpy writes < 4 KiB; anything huge is not ours */
#define NPY_MAX_DIMS 32

static const char usage[] =
    "usage: zsq_infer MODEL.zsqm [-i INPUT.npy|.raw]... [-o OUTPUT.npy|.raw]... "
    "[-n REPEATS] [-q]\n";

static int fail(int code, const char *fmt, ...) {
  char msg[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  for (char *p = msg; *p; ++p)
    if (*p == '\n' || *p == '\r') *p = ' '; /* one line, whatever the message holds */
  fprintf(stderr, "zsq_infer: error: %s\n", msg);
  return code;
}

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void shape_text(char *buf, size_t n, int ndim, const int64_t *shape) {
  size_t k = (size_t)snprintf(buf, n, "(");
  for (int i = 0; i < ndim && k < n; ++i)
    k += (size_t)snprintf(buf + k, n - k, i ? ", %lld" : "%lld", (long long)shape[i]);
  if (k < n) snprintf(buf + k, n - k, ndim == 1 ? ",)" : ")");
}

/* The whole file at `path` (malloc'd, *size bytes), at most `limit` bytes; NULL + message. */
static uint8_t *read_file(const char *path, uint64_t limit, uint64_t *size, char *why, size_t n) {
  struct stat st;
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    snprintf(why, n, "%s: %s", path, strerror(errno));
    return NULL;
  }
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    fclose(f);
    snprintf(why, n, "%s: not a regular file", path);
    return NULL;
  }
  if ((uint64_t)st.st_size > limit) {
    fclose(f);
    snprintf(why, n, "%s: %llu bytes, more than the %llu this input can take", path,
             (unsigned long long)st.st_size, (unsigned long long)limit);
    return NULL;
  }
  *size = (uint64_t)st.st_size;
  uint8_t *buf = (uint8_t *)malloc(*size ? (size_t)*size : 1);
  if (buf == NULL || fread(buf, 1, (size_t)*size, f) != (size_t)*size) {
    free(buf);
    fclose(f);
    snprintf(why, n, "%s: cannot read %llu bytes", path, (unsigned long long)*size);
    return NULL;
  }
  fclose(f);
  return buf;
}

/* ---- .npy header: a Python dict literal with descr, fortran_order and shape ---- */
typedef struct {
  const char *p;
} npy_lex;

static void npy_ws(npy_lex *lx) {
  while (*lx->p == ' ' || *lx->p == '\t') ++lx->p;
}

/* a quoted string ('...' or "...") into out (at most n-1 chars); 0 on success */
static int npy_string(npy_lex *lx, char *out, size_t n) {
  npy_ws(lx);
  char q = *lx->p;
  if (q != '\'' && q != '"') return -1;
  ++lx->p;
  size_t k = 0;
  while (*lx->p && *lx->p != q) {
    if (*lx->p == '\\' || k + 1 >= n) return -1; /* no escapes in the keys and dtypes we take */
    out[k++] = *lx->p++;
  }
  if (*lx->p != q) return -1;
  ++lx->p;
  out[k] = '\0';
  return 0;
}

static int npy_char(npy_lex *lx, char c) {
  npy_ws(lx);
  if (*lx->p != c) return -1;
  ++lx->p;
  return 0;
}

/* a tuple of non-negative integers: "()", "(3,)", "(1, 2)" */
static int npy_shape(npy_lex *lx, int *ndim, int64_t *shape) {
  if (npy_char(lx, '(') != 0) return -1;
  *ndim = 0;
  for (;;) {
    npy_ws(lx);
    if (*lx->p == ')') {
      ++lx->p;
      return 0;
    }
    if (!isdigit((unsigned char)*lx->p) || *ndim == NPY_MAX_DIMS) return -1;
    int64_t v = 0;
    while (isdigit((unsigned char)*lx->p)) {
      if (v > (INT64_C(1) << 40)) return -1; /* no real tensor has such a dimension */
      v = v * 10 + (*lx->p++ - '0');
    }
    shape[(*ndim)++] = v;
    npy_ws(lx);
    if (*lx->p == ',') {
      ++lx->p;
    } else if (*lx->p != ')' || *ndim == 1) {
      return -1; /* "(3)" is an integer, not a tuple */
    }
  }
}

/* Parse a .npy file in buf[0..size): float32 C-order data at *data; the shape. */
static int npy_parse(const char *path, const uint8_t *buf, uint64_t size, int *ndim,
                     int64_t *shape, const uint8_t **data, uint64_t *data_bytes, char *why,
                     size_t n) {
  static const uint8_t magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  if (size < 10 || memcmp(buf, magic, 6) != 0) {
    snprintf(why, n, "%s: not a .npy file (bad magic)", path);
    return -1;
  }
  uint64_t hlen, start;
  if (buf[6] == 1) {
    hlen = (uint64_t)buf[8] | (uint64_t)buf[9] << 8;
    start = 10;
  } else if ((buf[6] == 2 || buf[6] == 3) && size >= 12) {
    hlen = (uint64_t)buf[8] | (uint64_t)buf[9] << 8 | (uint64_t)buf[10] << 16 |
           (uint64_t)buf[11] << 24;
    start = 12;
  } else {
    snprintf(why, n, "%s: unsupported .npy version %d.%d", path, buf[6], buf[7]);
    return -1;
  }
  if (hlen > NPY_MAX_HEADER || hlen > size - start) {
    snprintf(why, n, "%s: .npy header of %llu bytes runs past the end of the file", path,
             (unsigned long long)hlen);
    return -1;
  }
  char *text = (char *)malloc((size_t)hlen + 1);
  if (text == NULL) {
    snprintf(why, n, "%s: out of memory", path);
    return -1;
  }
  memcpy(text, buf + start, (size_t)hlen);
  text[hlen] = '\0';
  int ok = 1;
  for (uint64_t i = 0; ok && i < hlen; ++i)
    ok = text[i] == '\n' || (text[i] >= 0x20 && text[i] < 0x7F);
  char descr[16] = "", key[32];
  int fortran = -1, have_shape = 0;
  npy_lex lx = {text};
  if (ok) ok = npy_char(&lx, '{') == 0;
  while (ok) {
    npy_ws(&lx);
    if (*lx.p == '}') break;
    ok = npy_string(&lx, key, sizeof key) == 0 && npy_char(&lx, ':') == 0;
    if (!ok) break;
    npy_ws(&lx);
    if (strcmp(key, "descr") == 0 && descr[0] == '\0') {
      ok = npy_string(&lx, descr, sizeof descr) == 0 && descr[0] != '\0';
    } else if (strcmp(key, "fortran_order") == 0 && fortran < 0) {
      if (strncmp(lx.p, "False", 5) == 0) fortran = 0, lx.p += 5;
      else if (strncmp(lx.p, "True", 4) == 0) fortran = 1, lx.p += 4;
      else ok = 0;
    } else if (strcmp(key, "shape") == 0 && !have_shape) {
      ok = npy_shape(&lx, ndim, shape) == 0;
      have_shape = 1;
    } else {
      ok = 0; /* an unknown or repeated key */
    }
    npy_ws(&lx);
    if (ok && *lx.p == ',') ++lx.p;
    else if (ok && *lx.p != '}') ok = 0;
  }
  if (ok) {
    ++lx.p; /* '}' */
    while (*lx.p == ' ' || *lx.p == '\n') ++lx.p;
    ok = *lx.p == '\0' && descr[0] != '\0' && fortran >= 0 && have_shape;
  }
  free(text);
  if (!ok) {
    snprintf(why, n, "%s: malformed .npy header", path);
    return -1;
  }
  if (strcmp(descr, "<f4") != 0) {
    snprintf(why, n, "%s: dtype '%s' is not float32 ('<f4'): convert with "
             "x.astype(numpy.float32)", path, descr);
    return -1;
  }
  if (fortran) {
    snprintf(why, n, "%s: Fortran-order array: save numpy.ascontiguousarray(x)", path);
    return -1;
  }
  *data = buf + start + hlen;
  *data_bytes = size - start - hlen;
  return 0;
}

/* Read input `idx` from path into x (io->elements floats). */
static int read_input(const char *path, int idx, const zsq_model_io_t *io, float *x) {
  char why[400], want[160], got[160];
  const uint64_t bytes = (uint64_t)io->elements * sizeof(float);
  uint64_t size = 0;
  uint8_t *buf = read_file(path, bytes + NPY_MAX_HEADER + 16, &size, why, sizeof why);
  if (buf == NULL) return fail(1, "%s", why);
  const uint8_t *data = buf;
  uint64_t data_bytes = size;
  shape_text(want, sizeof want, io->ndim, io->shape);
  if (ends_with(path, ".npy")) {
    int ndim = 0;
    int64_t shape[NPY_MAX_DIMS];
    if (npy_parse(path, buf, size, &ndim, shape, &data, &data_bytes, why, sizeof why) != 0) {
      free(buf);
      return fail(1, "%s", why);
    }
    int same = ndim == io->ndim;
    for (int i = 0; same && i < ndim; ++i) same = shape[i] == io->shape[i];
    if (!same) {
      shape_text(got, sizeof got, ndim, shape);
      free(buf);
      return fail(1, "%s: shape %s is not the shape %s of input %d '%s'", path, got, want,
                  idx, io->name);
    }
  }
  if (data_bytes != bytes) {
    free(buf);
    return fail(1, "%s: %llu data bytes, input %d '%s' %s float32 takes %llu", path,
                (unsigned long long)data_bytes, idx, io->name, want, (unsigned long long)bytes);
  }
  memcpy(x, data, (size_t)bytes); /* little-endian float32 on the board and the host */
  free(buf);
  return 0;
}

static int write_output(const char *path, int idx, const zsq_model_io_t *io, const float *y) {
  FILE *f = fopen(path, "wb");
  if (f == NULL) return fail(1, "%s: %s", path, strerror(errno));
  int ok = 1;
  if (ends_with(path, ".npy")) {
    char head[256], shape[160];
    shape_text(shape, sizeof shape, io->ndim, io->shape);
    int len = snprintf(head, sizeof head,
                       "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }", shape);
    int total = (10 + len + 1 + 63) / 64 * 64; /* numpy pads the header to 64 bytes */
    int pad = total - 10 - len - 1;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                             (unsigned char)((total - 10) & 0xFF),
                             (unsigned char)((total - 10) >> 8)};
    ok = total - 10 < 65536 && fwrite(pre, 1, 10, f) == 10 &&
         fwrite(head, 1, (size_t)len, f) == (size_t)len;
    for (int i = 0; ok && i < pad; ++i) ok = fputc(' ', f) != EOF;
    ok = ok && fputc('\n', f) != EOF;
  }
  ok = ok && fwrite(y, sizeof(float), (size_t)io->elements, f) == (size_t)io->elements;
  ok = (fclose(f) == 0) && ok;
  return ok ? 0 : fail(1, "%s: cannot write output %d", path, idx);
}

static int parse_repeats(const char *s, long *out) {
  char *end = NULL;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v < 1 || v > 1000000) return -1;
  *out = v;
  return 0;
}

int main(int argc, char **argv) {
  const char *model_path = NULL, *in_paths[MAX_IO], *out_paths[MAX_IO];
  int n_in = 0, n_out = 0, quiet = 0;
  long repeats = 1;
  for (int a = 1; a < argc; ++a) {
    const char *arg = argv[a];
    if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
      fputs(usage, stdout);
      return 0;
    } else if (strcmp(arg, "-q") == 0) {
      quiet = 1;
    } else if (strcmp(arg, "-i") == 0 || strcmp(arg, "-o") == 0 || strcmp(arg, "-n") == 0) {
      if (a + 1 >= argc) return fail(2, "option %s needs an argument", arg);
      const char *val = argv[++a];
      if (arg[1] == 'i') {
        if (n_in == MAX_IO) return fail(2, "more than %d inputs", MAX_IO);
        in_paths[n_in++] = val;
      } else if (arg[1] == 'o') {
        if (n_out == MAX_IO) return fail(2, "more than %d outputs", MAX_IO);
        out_paths[n_out++] = val;
      } else if (parse_repeats(val, &repeats) != 0) {
        return fail(2, "-n %s: expected a whole number of runs in [1, 1000000]", val);
      }
    } else if (arg[0] == '-' && arg[1] != '\0') {
      return fail(2, "unknown option %s (zsq_infer -h for usage)", arg);
    } else if (model_path == NULL) {
      model_path = arg;
    } else {
      return fail(2, "unexpected argument %s (one model file)", arg);
    }
  }
  if (model_path == NULL) return fail(2, "no model file given (zsq_infer -h for usage)");

  char err[600];
  zsq_model_t *m = NULL;
  int rc = zsq_model_open(model_path, &m, err, sizeof err);
  if (rc != ZSQ_MODEL_OK) return fail(1, "%s", err);
  const int ni = zsq_model_num_inputs(m), no = zsq_model_num_outputs(m);
  int status = 0;
  float *in[MAX_IO] = {NULL}, *out[MAX_IO] = {NULL};
  if (ni > MAX_IO || no > MAX_IO) {
    status = fail(1, "the model has %d inputs and %d outputs, zsq_infer takes %d", ni, no, MAX_IO);
  } else if (n_in != 0 && n_in != ni) {
    status = fail(2, "%d -i given, the model has %d input(s)", n_in, ni);
  } else if (n_out > no) {
    status = fail(2, "%d -o given, the model has %d output(s)", n_out, no);
  }
  for (int i = 0; status == 0 && i < ni; ++i) {
    const zsq_model_io_t *io = zsq_model_input(m, i);
    in[i] = (float *)calloc((size_t)io->elements, sizeof(float));
    if (in[i] == NULL) status = fail(1, "out of memory for input %d", i);
    else if (n_in) status = read_input(in_paths[i], i, io, in[i]);
  }
  for (int i = 0; status == 0 && i < no; ++i) {
    out[i] = (float *)calloc((size_t)zsq_model_output(m, i)->elements, sizeof(float));
    if (out[i] == NULL) status = fail(1, "out of memory for output %d", i);
  }
  double sum = 0.0, best = 0.0;
  for (long r = 0; status == 0 && r < repeats; ++r) {
    zsq_model_stats_t st;
    rc = zsq_model_run(m, (const float *const *)in, out, &st, err, sizeof err);
    if (rc != ZSQ_MODEL_OK) {
      status = fail(1, "run %ld: %s", r + 1, err);
      break;
    }
    sum += st.total_ms;
    best = r == 0 || st.total_ms < best ? st.total_ms : best;
    if (!quiet) {
      if (st.accel_cycles >= 0)
        printf("run %ld: total %.3f ms, accelerator %.3f ms, %lld accelerator cycles\n", r + 1,
               st.total_ms, st.accel_ms, (long long)st.accel_cycles);
      else
        printf("run %ld: total %.3f ms, accelerator %.3f ms\n", r + 1, st.total_ms, st.accel_ms);
    }
  }
  if (status == 0 && !quiet && repeats > 1)
    printf("%ld runs: mean %.3f ms, best %.3f ms\n", repeats, sum / (double)repeats, best);
  for (int i = 0; status == 0 && i < no; ++i) {
    const zsq_model_io_t *io = zsq_model_output(m, i);
    if (i < n_out) {
      status = write_output(out_paths[i], i, io, out[i]);
    } else if (!quiet && io->elements > 0) {
      int64_t arg = 0;
      for (int64_t k = 1; k < io->elements; ++k)
        if (out[i][k] > out[i][arg]) arg = k;
      printf("output %d '%s': argmax %lld (value %.6g)\n", i, io->name, (long long)arg,
             (double)out[i][arg]);
    }
  }
  for (int i = 0; i < MAX_IO; ++i) {
    free(in[i]);
    free(out[i]);
  }
  zsq_model_close(m);
  /* what was printed must have reached stdout (a full disk, a closed pipe): else the
   * exit status would claim results nobody got */
  errno = 0;
  if ((fflush(stdout) != 0 || ferror(stdout)) && status == 0)
    status = fail(1, "standard output: %s", errno ? strerror(errno) : "write error");
  return status;
}
