"""Emit the C++ glue between TVM and the accelerator runtime (tvm-ffi C ABI).

One exported ``__tvm_ffi_<symbol>`` per offloaded function. It checks its arguments
(count, tensor type, float32, shape, CPU, compact, aligned), quantizes each input image
(NCHW float -> HWC int8, channels padded to groups of 8: the engine's activation words;
a NaN or an infinity is a ValueError naming the input and the element, before anything
runs), runs the instruction stream through ``hls_runtime`` and dequantizes the outputs.
Tensors are read and written at ``data + byte_offset`` (views). Every failure is raised
as a tvm-ffi error (a Python exception), never an abort. The
instructions and the packed weights+params are binary blobs linked into the object with
``.incbin`` (or, in a deployment bundle, sections of the model file its executor opened:
``zsq_model_blob``); an init function, run once through ``TVMFFIHandleInitOnce`` on the
first call, hands them to the runtime and validates them. ``zsq_glue_cycles`` sums the
accelerator cycles of every run (the bundle's executor reports them).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .lower import LoweredFunction, boundary_factors
from .safe_text import safe_text


@dataclass
class GlueFunction:
    """What the glue needs about one offloaded function and its built program."""

    lowered: LoweredFunction
    n_insn: int
    arena_words: int
    input_offsets: list[int]   # word offsets in the arena
    output_offsets: list[int]
    input_words: list[int]     # their sizes (words): the only ranges a board copies per run
    output_words: list[int]
    blob_files: dict[str, str]  # role ("insn", "wgt") -> file name
    wgt_words: int
    timing: dict[str, int]     # rd_latency, wr_latency, outstanding, beat_x100 (simulation)
    # per input: None, or the conv geometry whose patches the glue writes (first_layer)
    input_patches: list[dict | None]
    summary: list[str]  # one line per layer for the header comment


def _c_float(v) -> str:
    """An exact C float literal (hex) of a float32 value, with its decimal for readers."""
    f = float(np.float32(v))
    return f"{f.hex()}f /* {f:.9g} */"


PRELUDE = r"""
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <math.h>
#include <mutex>
#include <tvm/ffi/c_api.h>
#include "zsq_runtime.h"

/* One accelerator, one arena per function, static: calls that TVM makes from several
 * threads (the VM releases the GIL) take turns. */
static std::mutex zsq_glue_lock;

/* Accelerator cycles of every run so far (summed under the lock): a bundle's executor
 * reports them per inference. */
extern "C" { int64_t zsq_glue_cycles = 0; }

/* Raise a Python exception of type `kind` through tvm-ffi and return -1. */
static int zsq_raise(const char *kind, const char *msg) {
  TVMFFIErrorSetRaisedFromCStr(kind, msg);
  return -1;
}

/* The DLTensor behind a tvm-ffi argument (a Tensor object or a raw DLTensor*). */
static DLTensor *zsq_tensor_arg(const TVMFFIAny *a) {
  if (a->type_index == kTVMFFIDLTensorPtr) return (DLTensor *)a->v_ptr;
  if (a->type_index == kTVMFFITensor) return TVMFFITensorGetDLTensorPtr(a->v_obj);
  return NULL;
}

static void zsq_shape_str(char *buf, size_t n, int ndim, const int64_t *shape) {
  size_t k = (size_t)snprintf(buf, n, "(");
  for (int i = 0; i < ndim && k < n; ++i)
    k += (size_t)snprintf(buf + k, n - k, i ? ", %lld" : "%lld", (long long)shape[i]);
  if (k < n) snprintf(buf + k, n - k, ndim == 1 ? ",)" : ")");
}

/* The first float of a tensor: DLPack puts views at data + byte_offset. */
static float *zsq_data(const DLTensor *t) { return (float *)((char *)t->data + t->byte_offset); }

/* 0 when `t` is a compact, float-aligned float32 CPU tensor of exactly `shape`; else raises. */
static int zsq_check_tensor(const char *fn, const char *role, int idx, const DLTensor *t,
                            int ndim, const int64_t *shape) {
  char want[128], got[128], msg[512];
  zsq_shape_str(want, sizeof want, ndim, shape);
  if (t == NULL) {
    snprintf(msg, sizeof msg, "%s: %s %d is not a tensor (expected float32 %s)", fn, role, idx, want);
    return zsq_raise("TypeError", msg);
  }
  if (t->dtype.code != kDLFloat || t->dtype.bits != 32 || t->dtype.lanes != 1) {
    snprintf(msg, sizeof msg, "%s: %s %d must be float32 of shape %s, got dtype code %d bits %d",
             fn, role, idx, want, (int)t->dtype.code, (int)t->dtype.bits);
    return zsq_raise("TypeError", msg);
  }
  int same = t->ndim == ndim;
  for (int i = 0; same && i < ndim; ++i) same = t->shape[i] == shape[i];
  if (!same) {
    zsq_shape_str(got, sizeof got, t->ndim, t->shape);
    snprintf(msg, sizeof msg, "%s: %s %d has shape %s, expected shape %s", fn, role, idx, got, want);
    return zsq_raise("ValueError", msg);
  }
  if (t->device.device_type != kDLCPU) {
    snprintf(msg, sizeof msg, "%s: %s %d is not on the CPU", fn, role, idx);
    return zsq_raise("ValueError", msg);
  }
  if (t->strides != NULL) {
    int64_t expect = 1;
    for (int i = ndim - 1; i >= 0; --i) {
      if (shape[i] != 1 && t->strides[i] != expect) {
        snprintf(msg, sizeof msg, "%s: %s %d is not compact (row-major)", fn, role, idx);
        return zsq_raise("ValueError", msg);
      }
      expect *= shape[i];
    }
  }
  if ((uintptr_t)zsq_data(t) % sizeof(float) != 0) {
    snprintf(msg, sizeof msg, "%s: %s %d is not aligned to float32 (byte_offset %llu)", fn,
             role, idx, (unsigned long long)t->byte_offset);
    return zsq_raise("ValueError", msg);
  }
  return 0;
}

/* A NaN or an infinity has no int8 value (the cast is undefined): the call is refused
 * before anything runs, naming the flat element index. */
static int zsq_raise_nonfinite(const char *fn, int idx, long long elem) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: input %d contains NaN or Inf at element %lld; the int8 "
           "accelerator cannot represent them", fn, idx, elem);
  return zsq_raise("ValueError", msg);
}

/* Index of the first non-finite value of x[0..n), or -1. */
static long long zsq_first_nonfinite(const float *x, long long n) {
  for (long long i = 0; i < n; ++i)
    if (!isfinite(x[i])) return i;
  return -1;
}

/* NCHW float -> HWC int8 with `cs` bytes per pixel (channels padded to the engine's
 * 8-channel words): q = saturate(rint(x * inv_scale)) (round half to even). Returns the
 * flat index of the first NaN / infinity (reading in flat order, it is the lowest), or -1. */
static long long zsq_quantize(const float *x, int c, int h, int w, int cs, float inv_scale,
                              int8_t *q) {
  for (int ci = 0; ci < c; ++ci)
    for (int p = 0; p < h * w; ++p) {
      const float xv = x[ci * h * w + p];
      if (!isfinite(xv)) return (long long)ci * h * w + p;
      float v = nearbyintf(xv * inv_scale);
      v = v > 127.0f ? 127.0f : (v < -128.0f ? -128.0f : v);
      q[p * cs + ci] = (int8_t)v;
    }
  return -1;
}

/* NCHW float image -> int8 patches of a conv (codegen/first_layer.py): channel
 * (ky*kw + kx)*c + ci of output pixel (oy, ox) is x[ci][oy*sy - pt + ky][ox*sx - pl + kx],
 * 0 outside the image; `cs` bytes per output pixel. Reads pixels several times and some
 * never: the caller checks the image with zsq_first_nonfinite first. */
static void zsq_quantize_patches(const float *x, int c, int h, int w, int kh, int kw, int sy,
                                 int sx, int pt, int pl, int oh, int ow, int cs,
                                 float inv_scale, int8_t *q) {
  for (int oy = 0; oy < oh; ++oy)
    for (int ox = 0; ox < ow; ++ox) {
      int8_t *d = q + ((size_t)oy * ow + ox) * cs;
      for (int ky = 0; ky < kh; ++ky)
        for (int kx = 0; kx < kw; ++kx) {
          const int y = oy * sy - pt + ky, xx = ox * sx - pl + kx;
          const int inside = y >= 0 && y < h && xx >= 0 && xx < w;
          for (int ci = 0; ci < c; ++ci) {
            float v = inside ? nearbyintf(x[(size_t)ci * h * w + (size_t)y * w + xx] * inv_scale) : 0.0f;
            v = v > 127.0f ? 127.0f : (v < -128.0f ? -128.0f : v);
            d[(ky * kw + kx) * c + ci] = (int8_t)v;
          }
        }
    }
}

/* HWC int8 (`cs` bytes per pixel) -> NCHW float: y = (q - zp) * scale (zp: the tensor's
 * zero point, -128 after a ReLU; the integer difference is exact in float). */
static void zsq_dequantize(const int8_t *q, int c, int h, int w, int cs, float scale, int zp, float *y) {
  for (int ci = 0; ci < c; ++ci)
    for (int p = 0; p < h * w; ++p) y[ci * h * w + p] = (float)((int)q[p * cs + ci] - zp) * scale;
}
"""


# Emitted only when an input is split (a build without it keeps its sources byte for byte).
SPLIT_PRELUDE = r"""
/* The two-plane input (codegen/lower.py INPUT_SPLIT): of v = x * inv_scale, hi =
 * saturate(rint(v)) is channel ci and lo = saturate(rint((v - hi) * lo_factor)) channel
 * c + ci (the residual at scale / lo_factor; v - hi and the power-of-two multiply are
 * exact). Writes the pair for one value at q[0] and q[c]. */
static inline void zsq_split(float xv, float inv_scale, float lo_factor, int c, int8_t *q) {
  const float v = xv * inv_scale;
  float hi = nearbyintf(v);
  hi = hi > 127.0f ? 127.0f : (hi < -128.0f ? -128.0f : hi);
  float lo = nearbyintf((v - hi) * lo_factor);
  lo = lo > 127.0f ? 127.0f : (lo < -128.0f ? -128.0f : lo);
  q[0] = (int8_t)hi;
  q[c] = (int8_t)lo;
}

/* zsq_quantize with two planes: 2c channels per pixel (hi then lo), `cs` bytes per pixel. */
static long long zsq_quantize_split(const float *x, int c, int h, int w, int cs, float inv_scale,
                                    float lo_factor, int8_t *q) {
  for (int ci = 0; ci < c; ++ci)
    for (int p = 0; p < h * w; ++p) {
      const float xv = x[ci * h * w + p];
      if (!isfinite(xv)) return (long long)ci * h * w + p;
      zsq_split(xv, inv_scale, lo_factor, c, q + (size_t)p * cs + ci);
    }
  return -1;
}

/* zsq_quantize_patches with two planes: the patch channels of the 2c-channel image, channel
 * (ky*kw + kx)*2c + ci (hi) and + c + ci (lo); 0 outside the image. The caller checks the
 * image with zsq_first_nonfinite first. */
static void zsq_quantize_patches_split(const float *x, int c, int h, int w, int kh, int kw,
                                       int sy, int sx, int pt, int pl, int oh, int ow, int cs,
                                       float inv_scale, float lo_factor, int8_t *q) {
  for (int oy = 0; oy < oh; ++oy)
    for (int ox = 0; ox < ow; ++ox) {
      int8_t *d = q + ((size_t)oy * ow + ox) * cs;
      for (int ky = 0; ky < kh; ++ky)
        for (int kx = 0; kx < kw; ++kx) {
          const int y = oy * sy - pt + ky, xx = ox * sx - pl + kx;
          const int inside = y >= 0 && y < h && xx >= 0 && xx < w;
          for (int ci = 0; ci < c; ++ci)
            zsq_split(inside ? x[(size_t)ci * h * w + (size_t)y * w + xx] : 0.0f, inv_scale,
                      lo_factor, c, d + (ky * kw + kx) * 2 * c + ci);
        }
    }
}
"""


def _blob_asm(symbol: str, files: dict[str, str]) -> str:
    lines = ['__asm__(".section .rodata\\n"']
    for role, fname in sorted(files.items()):
        name = f"{symbol}_{role}"
        lines += [f'        ".balign 64\\n.global {name}\\n.hidden {name}\\n{name}:\\n"',
                  f'        ".incbin \\"{fname}\\"\\n"']
    lines.append('        ".previous\\n");')
    decls = [f'extern "C" const unsigned char {symbol}_{role}[];' for role in sorted(files)]
    return "\n".join(decls + lines)


def _cstride(c: int) -> int:
    """Bytes per pixel of an arena tensor with ``c`` channels (8-channel words)."""
    return -(-c // 8) * 8


def _ranges_init(offsets, words) -> str:
    return "{" + ", ".join(f"{{{int(o)}, {int(n)}}}" for o, n in zip(offsets, words)) + "}"


def _shape_init(shape) -> str:
    return "{" + ", ".join(str(int(s)) for s in shape) + "}"


def _program_source(g: GlueFunction, blobs: str) -> list[str]:
    """Init lines pointing the program at its instructions and weights: the blobs linked
    into this object, or the sections of the open model file (a deployment bundle)."""
    sym = g.lowered.symbol
    if blobs == "incbin":
        return [f"  p->insn = (const uint64_t *){sym}_insn;",
                f"  p->n_insn = {g.n_insn};",
                f"  p->wgt = (const uint64_t *){sym}_wgt;",
                f"  p->wgt_words = {g.wgt_words};"]
    out = []
    for role, field, words in (("insn", "insn", g.n_insn), ("wgt", "wgt", g.wgt_words)):
        out += ["  { uint64_t bytes = 0;",
                f'    p->{field} = (const uint64_t *)zsq_model_blob("{sym}.{role}", &bytes);',
                f"    if (p->{field} == NULL || bytes != {words * 8}ULL) {{",
                f'      return zsq_raise("RuntimeError", "{sym}: the model file has no section '
                f'{sym}.{role} of {words * 8} bytes");',
                "    } }"]
    return out + [f"  p->n_insn = {g.n_insn};", f"  p->wgt_words = {g.wgt_words};"]


def _split_call(g: GlueFunction, k: int, info, inv: str, dst: str) -> str:
    """The quantize call of split input ``k`` (``SPLIT_PRELUDE``): plain or patches."""
    c, h, w = info.float_shape
    src = f"zsq_data(t[{k}]) + n * {c * h * w}"
    lo = _c_float(info.split)
    pt = g.input_patches[k]
    if pt is None:  # (the factors on their own line: generated lines stay short)
        return (f"    {{ const long long bad = zsq_quantize_split({src}, {c}, {h}, {w}, "
                f"{_cstride(2 * c)},\n          {inv}, {lo}, {dst});\n"
                f"      if (bad >= 0) return zsq_raise_nonfinite(fn, {k}, n * {c * h * w} + bad); }}")
    return (f"    zsq_quantize_patches_split({src}, {c}, {h}, {w}, {pt['kh']}, {pt['kw']}, "
            f"{pt['sy']}, {pt['sx']}, {pt['pt']}, {pt['pl']}, {pt['oh']}, {pt['ow']}, "
            f"{_cstride(2 * c * pt['kh'] * pt['kw'])},\n        {inv}, {lo}, {dst});")


def emit_function(g: GlueFunction, blobs: str = "incbin") -> str:
    """The glue of one offloaded function (``blobs``: see ``emit_glue``)."""
    lf = g.lowered
    sym = lf.symbol
    nin, nout = len(lf.inputs), len(lf.outputs)
    out = [f"/* ---- {sym}: {len(lf.layers)} layers, batch {lf.batch} ----"]
    out += [f" *   {line}" for line in g.summary]
    out.append(" */")
    if blobs == "incbin":
        out.append(_blob_asm(sym, g.blob_files))
    out.append(f"static uint64_t {sym}_arena[{max(g.arena_words, 1)}] __attribute__((aligned(64)));")
    # the arena words the host writes (inputs) and reads (outputs): a board copies only these
    out.append(f"static const zsq_rt_range_t {sym}_in_ranges[{nin}] = "
               + _ranges_init(g.input_offsets, g.input_words) + ";")
    out.append(f"static const zsq_rt_range_t {sym}_out_ranges[{nout}] = "
               + _ranges_init(g.output_offsets, g.output_words) + ";")
    for k, (tid, shape) in enumerate(zip(lf.inputs, lf.input_shapes)):
        out.append(f"static const int64_t {sym}_in{k}_shape[{len(shape)}] = {_shape_init(shape)};")
    for k, (tid, shape) in enumerate(zip(lf.outputs, lf.output_shapes)):
        out.append(f"static const int64_t {sym}_out{k}_shape[{len(shape)}] = {_shape_init(shape)};")
    init = [
        "/* The constants (instructions, packed weights and params) are linked into this object;",
        " * this runs once, on the first call: it hands them to the runtime and validates them. */",
        f"static zsq_rt_program_t {sym}_program;",
        f"static void *{sym}_handle = NULL;",
        f"static int {sym}_init(void **out) {{",
        f"  zsq_rt_program_t *p = &{sym}_program;",
        *_program_source(g, blobs),
        f"  p->arena_words = {g.arena_words};",
        *[f"  p->{k} = {int(v)};" for k, v in sorted(g.timing.items())],
        "  char err[256], msg[400];",
        "  int rc = zsq_rt_validate(p, err, sizeof err);",
        "  if (rc != 0) {",
        f'    snprintf(msg, sizeof msg, "{sym}: invalid accelerator program (%d): %s", rc, err);',
        '    return zsq_raise("RuntimeError", msg);',
        "  }",
        "  *out = p;",
        "  return 0;",
        "}",
        "",
    ]
    body = init + [
        f'extern "C" __attribute__((visibility("default"))) int __tvm_ffi_{sym}(',
        "    void *self, const TVMFFIAny *args, int32_t nargs, TVMFFIAny *ret) {",
        "  (void)self; (void)ret;",
        f'  static const char fn[] = "{sym}";',
        f"  if (nargs != {nin + nout}) {{",
        "    char msg[160];",
        f'    snprintf(msg, sizeof msg, "%s: expected {nin} input(s) and {nout} output(s), got %d arguments", fn, (int)nargs);',
        '    return zsq_raise("TypeError", msg);',
        "  }",
        f"  DLTensor *t[{nin + nout}];",
        f"  for (int i = 0; i < {nin + nout}; ++i) t[i] = zsq_tensor_arg(&args[i]);",
    ]
    for k, shape in enumerate(lf.input_shapes):
        body.append(f'  if (zsq_check_tensor(fn, "input", {k}, t[{k}], {len(shape)}, {sym}_in{k}_shape)) return -1;')
    for k, shape in enumerate(lf.output_shapes):
        body.append(f'  if (zsq_check_tensor(fn, "output", {k}, t[{nin + k}], {len(shape)}, {sym}_out{k}_shape)) return -1;')
    body += [
        f"  if (TVMFFIHandleInitOnce(&{sym}_handle, {sym}_init) != 0) return -1;",
        f"  const zsq_rt_program_t *prog = (const zsq_rt_program_t *){sym}_handle;",
        "  char err[256];",
    ]
    # NaN / Inf: the plain quantizer checks as it reads image 0; the patch quantizer
    # (reads some pixels twice, some never) and the later images of a batch (quantized
    # after image 0 has run) are checked here, so that nothing runs
    for k, tid in enumerate(lf.inputs):
        c, h, w = lf.tensors[tid].float_shape
        chw = c * h * w
        skip = 0 if g.input_patches[k] is not None else chw
        if skip < lf.batch * chw:
            body += [f"  {{ const long long bad = zsq_first_nonfinite(zsq_data(t[{k}]) + {skip}, "
                     f"{lf.batch * chw - skip});",
                     f"    if (bad >= 0) return zsq_raise_nonfinite(fn, {k}, bad + {skip}); }}"]
    body += [
        # std::mutex::lock may throw: caught here, so no exception crosses the C ABI
        "  std::unique_lock<std::mutex> guard(zsq_glue_lock, std::defer_lock);",
        "  try { guard.lock(); } catch (...) {",
        '    return zsq_raise("RuntimeError", "zynq-squeeze glue: cannot take the accelerator lock");',
        "  }",
        f"  for (int64_t n = 0; n < {lf.batch}; ++n) {{",
    ]
    for k, tid in enumerate(lf.inputs):
        info = lf.tensors[tid]
        if info.zero_point:  # lower.assign_zero_points: inputs are symmetric
            raise ValueError(f"{lf.symbol}: input {tid} has zero point {info.zero_point}")
        c, h, w = info.float_shape
        inv = _c_float(boundary_factors(info.scale)[0])
        dst = f"(int8_t *)({sym}_arena + {g.input_offsets[k]})"
        pt = g.input_patches[k]
        if info.split:
            body.append(_split_call(g, k, info, inv, dst))
        elif pt is None:
            body.append(f"    {{ const long long bad = zsq_quantize(zsq_data(t[{k}]) + n * {c * h * w}, "
                        f"{c}, {h}, {w}, {_cstride(c)}, {inv}, {dst});")
            body.append(f"      if (bad >= 0) return zsq_raise_nonfinite(fn, {k}, n * {c * h * w} + bad); }}")
        else:
            body.append(f"    zsq_quantize_patches(zsq_data(t[{k}]) + n * {c * h * w}, {c}, "
                        f"{h}, {w}, {pt['kh']}, {pt['kw']}, {pt['sy']}, {pt['sx']}, {pt['pt']}, "
                        f"{pt['pl']}, {pt['oh']}, {pt['ow']}, {_cstride(c * pt['kh'] * pt['kw'])}, "
                        f"{inv}, {dst});")
    body += [
        "    zsq_rt_stats_t st;",
        f"    int rc = zsq_rt_run_io(prog, {sym}_arena, {sym}_in_ranges, {nin}, {sym}_out_ranges, "
        f"{nout}, &st, err, sizeof err);",
        "    if (rc != 0) {",
        "      char msg[400];",
        '      snprintf(msg, sizeof msg, "%s: accelerator error %d: %s", fn, rc, err);',
        '      return zsq_raise("RuntimeError", msg);',
        "    }",
        "    zsq_glue_cycles += st.cycles;",
    ]
    for k, tid in enumerate(lf.outputs):
        info = lf.tensors[tid]
        c, h, w = info.shape
        body.append(f"    zsq_dequantize((const int8_t *)({sym}_arena + {g.output_offsets[k]}), {c}, {h}, "
                    f"{w}, {_cstride(c)}, {_c_float(boundary_factors(info.scale)[1])}, "
                    f"{int(info.zero_point)}, zsq_data(t[{nin + k}]) + n * {c * h * w});")
    body += ["  }", "  return 0;", "}"]
    return "\n".join(out + body)


EXTERNAL_BLOBS = r"""
/* A deployment bundle: the programs are sections of the model file its executor opened. */
extern "C" const void *zsq_model_blob(const char *name, uint64_t *bytes);
"""


def emit_glue(model_name: str, board: str, functions: list[GlueFunction],
              blobs: str = "incbin") -> str:
    """The complete glue source for all offloaded functions of one model.

    ``blobs``: "incbin" links each program into the object (model.so); "external" takes
    it from ``zsq_model_blob("<symbol>.insn" / ".wgt")`` (a bundle's model file).
    """
    if blobs not in ("incbin", "external"):
        raise ValueError(f"glue blobs must be 'incbin' or 'external', got {blobs!r}")
    head = [
        "/*",
        f" * zynq-squeeze glue for model '{safe_text(model_name)}' (board {board}).",
        " * Generated code: tvm-ffi entry points of the offloaded functions. Do not edit.",
        f" * Functions: {', '.join(g.lowered.symbol for g in functions)}",
        " */",
    ]
    split = any(info.split for g in functions for info in g.lowered.tensors.values())
    prelude = (PRELUDE + (SPLIT_PRELUDE if split else "")
               + (EXTERNAL_BLOBS if blobs == "external" else ""))
    return ("\n".join(head) + prelude + "\n"
            + "\n\n".join(emit_function(g, blobs) for g in functions) + "\n")
