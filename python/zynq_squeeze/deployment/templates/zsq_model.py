"""zsq_model.py - run a zynq-squeeze model bundle from Python (ctypes, Python 3.6+).

A thin wrapper of the bundle's C API (zsq_model.h, libzsq_model.so). Needs only the
standard library; when numpy is installed (imported on first use) inputs may be any
array-like and outputs are numpy arrays.

    from zsq_model import ZsqModel
    with ZsqModel("model.zsqm", lib="./libzsq_model.so") as m:
        print(m.inputs, m.outputs)      # [IOInfo(name='data', shape=(1, 3, 224, 224)), ...]
        outputs = m.run(x)              # one float32 array per output, in m.outputs order
        print(m.stats)                  # Stats(total_ms=..., accel_ms=..., accel_cycles=...)

Inputs: a numpy array (or nested list) of exactly the input's shape, converted to float32
C-contiguous (copied only when it is not already); or a flat list / array('f') of exactly
the input's number of elements. Outputs: numpy float32 arrays of the output shapes, or
flat array('f') without numpy.

Every failure raises ZsqModelError with .code (ZSQ_MODEL_ERR_*, or a runtime or
accelerator code passed through) and .message. The library keeps one model per process
(static buffers: a second open raises ZSQ_MODEL_ERR_BUSY); runs on one ZsqModel are
serialized by a lock.

    python3 zsq_model.py model.zsqm [--lib ./libzsq_model.so] [--runs N]
prints the inputs and outputs and times N runs on zero inputs.
"""
import array
import ctypes
import os
import threading
from collections import namedtuple

__all__ = ["ZsqModel", "ZsqModelError", "IOInfo", "Stats", "ZSQ_MODEL_OK",
           "ZSQ_MODEL_ERR_ARG", "ZSQ_MODEL_ERR_FILE", "ZSQ_MODEL_ERR_FORMAT",
           "ZSQ_MODEL_ERR_MISMATCH", "ZSQ_MODEL_ERR_BUSY", "ZSQ_MODEL_ERR_STEP",
           "ZSQ_MODEL_ERR_NOMEM"]

# zsq_model.h
ZSQ_MODEL_OK = 0
ZSQ_MODEL_ERR_ARG = -200       # null pointer, bad index (here also: wrong input count / shape)
ZSQ_MODEL_ERR_FILE = -201      # cannot open / read the model file (here also: the library)
ZSQ_MODEL_ERR_FORMAT = -202    # bad magic, version, size, section table or CRC-32
ZSQ_MODEL_ERR_MISMATCH = -203  # the file was made for another executor (model id)
ZSQ_MODEL_ERR_BUSY = -204      # a model is already open in this process
ZSQ_MODEL_ERR_STEP = -205      # a CPU operator or offloaded function failed
ZSQ_MODEL_ERR_NOMEM = -206     # the file does not fit in memory
ZSQ_MODEL_MAX_NDIM = 6
_ERRLEN = 1024

IOInfo = namedtuple("IOInfo", "name shape")
IOInfo.__doc__ = "An input or output: name (str) and shape (tuple of int); float32."
Stats = namedtuple("Stats", "total_ms accel_ms accel_cycles")
Stats.__doc__ = ("One run: total_ms (wall clock, ms), accel_ms (inside the offloaded "
                 "functions, ms), accel_cycles (accelerator PL cycles, summed).")


class ZsqModelError(RuntimeError):
    """A failure of the model library (or of this wrapper's checks): .code, .message."""

    def __init__(self, code, message):
        self.code = int(code)
        self.message = str(message)
        super(ZsqModelError, self).__init__(self.code, self.message)

    def __str__(self):
        return "%s (code %d)" % (self.message, self.code)


class _IO(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("ndim", ctypes.c_int),
                ("shape", ctypes.c_int64 * ZSQ_MODEL_MAX_NDIM), ("elements", ctypes.c_int64)]


class _Stats(ctypes.Structure):
    _fields_ = [("total_ms", ctypes.c_double), ("accel_ms", ctypes.c_double),
                ("accel_cycles", ctypes.c_int64)]


_FLOATP = ctypes.POINTER(ctypes.c_float)
_ERRP = ctypes.POINTER(ctypes.c_char)
_np = None


def _numpy():
    """numpy, or None when it is not installed (imported on first use only)."""
    global _np
    if _np is None:
        try:
            import numpy
            _np = numpy
        except ImportError:
            _np = False
    return _np or None


def _prod(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def _load(lib):
    """The CDLL for ``lib``: as given (relative to the working directory), else the file
    of that name next to this script (the bundle's directory)."""
    lib = os.fspath(lib)
    cands = [lib]
    if not os.path.isabs(lib):
        here = os.path.dirname(os.path.abspath(__file__))
        cands.append(os.path.join(here, os.path.basename(lib)))
    # an existing file is loaded by its absolute path (a bare name would make dlopen
    # search the system's library path instead of this directory)
    path = next((os.path.abspath(c) for c in cands if os.path.exists(c)), lib)
    try:
        dll = ctypes.CDLL(path)
    except OSError as e:
        raise ZsqModelError(ZSQ_MODEL_ERR_FILE, "cannot load %s: %s" % (lib, e)) from None
    try:
        dll.zsq_model_open.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p),
                                       _ERRP, ctypes.c_size_t]
        dll.zsq_model_open.restype = ctypes.c_int
        for f in (dll.zsq_model_num_inputs, dll.zsq_model_num_outputs):
            f.argtypes = [ctypes.c_void_p]
            f.restype = ctypes.c_int
        for f in (dll.zsq_model_input, dll.zsq_model_output):
            f.argtypes = [ctypes.c_void_p, ctypes.c_int]
            f.restype = ctypes.POINTER(_IO)
        dll.zsq_model_run.argtypes = [ctypes.c_void_p, ctypes.POINTER(_FLOATP),
                                      ctypes.POINTER(_FLOATP), ctypes.POINTER(_Stats),
                                      _ERRP, ctypes.c_size_t]
        dll.zsq_model_run.restype = ctypes.c_int
        dll.zsq_model_close.argtypes = [ctypes.c_void_p]
        dll.zsq_model_close.restype = None
        dll.zsq_model_strerror.argtypes = [ctypes.c_int]
        dll.zsq_model_strerror.restype = ctypes.c_char_p
    except AttributeError as e:
        raise ZsqModelError(ZSQ_MODEL_ERR_FILE, "%s is not a zsq_model library: %s" % (path, e)) from None
    return dll


def _text(b):
    return b.decode("utf-8", "replace") if b else ""


def _nested(seq):
    """(flat list, shape) of a nested list/tuple of numbers; ValueError if ragged."""
    if not isinstance(seq, (list, tuple)):
        return [seq], ()
    if not seq:
        return [], (0,)
    parts = [_nested(s) for s in seq]
    inner = parts[0][1]
    if any(p[1] != inner for p in parts):
        raise ValueError("ragged nested sequence")
    return [v for p in parts for v in p[0]], (len(seq),) + inner


class ZsqModel(object):
    """One opened model: ``ZsqModel(path, lib="./libzsq_model.so")``.

    ``inputs`` / ``outputs``: lists of IOInfo(name, shape). ``run(*arrays)``: one array per
    input, returns one float32 array per output. ``stats``: Stats of the last run (None
    before). ``close()`` (twice is fine) or use as a context manager.
    """

    def __init__(self, path="model.zsqm", lib="./libzsq_model.so"):
        self._h = None
        self._lock = threading.Lock()
        self._stats = None
        self._lib = _load(lib)
        self.path = os.fspath(path)
        err = ctypes.create_string_buffer(_ERRLEN)
        h = ctypes.c_void_p()
        rc = self._lib.zsq_model_open(os.fsencode(self.path), ctypes.byref(h), err, _ERRLEN)
        if rc != ZSQ_MODEL_OK:
            raise self._error(rc, err)
        if not h.value:
            raise ZsqModelError(ZSQ_MODEL_ERR_ARG, "zsq_model_open returned no model")
        self._h = h
        try:
            self.inputs = self._ios(self._lib.zsq_model_num_inputs, self._lib.zsq_model_input, "input")
            self.outputs = self._ios(self._lib.zsq_model_num_outputs, self._lib.zsq_model_output, "output")
        except ZsqModelError:
            self.close()
            raise

    def _error(self, rc, err=None):
        msg = _text(err.value) if err is not None else ""
        return ZsqModelError(rc, msg or _text(self._lib.zsq_model_strerror(rc)))

    def _ios(self, count, get, what):
        n = count(self._h)
        if n < 0:
            raise ZsqModelError(n, "cannot count the model's %ss: %s"
                                % (what, _text(self._lib.zsq_model_strerror(n))))
        out = []
        for k in range(n):
            p = get(self._h, k)
            if not p:
                raise ZsqModelError(ZSQ_MODEL_ERR_ARG, "%s %d: the library returned nothing" % (what, k))
            io = p.contents
            if not 0 <= io.ndim <= ZSQ_MODEL_MAX_NDIM:
                raise ZsqModelError(ZSQ_MODEL_ERR_FORMAT, "%s %d: ndim %d" % (what, k, io.ndim))
            shape = tuple(int(io.shape[i]) for i in range(io.ndim))
            # buffers are sized from the shape; the library writes `elements` floats
            if any(d < 0 for d in shape) or _prod(shape) != io.elements:
                raise ZsqModelError(ZSQ_MODEL_ERR_FORMAT, "%s %d: shape %s does not hold %d elements"
                                    % (what, k, shape, io.elements))
            out.append(IOInfo(_text(io.name), shape))
        return out

    # -- inputs and outputs ------------------------------------------------------------

    def _input(self, k, a, keep):
        """A float pointer to input ``k`` holding ``a``; ``keep`` receives what must stay
        alive until the call returns."""
        name, shape = self.inputs[k]
        n = _prod(shape)
        where = "input %d (%s)" % (k, name)
        np = _numpy()
        if isinstance(a, array.array):
            if a.typecode != "f":
                a = array.array("f", a)
            if len(a) != n:
                raise ZsqModelError(ZSQ_MODEL_ERR_ARG, "%s: %d floats given, %d expected (shape %s)"
                                    % (where, len(a), n, shape))
            keep.append(a)
            return ctypes.cast((ctypes.c_float * n).from_buffer(a), _FLOATP) if n else None
        if np is not None:
            try:
                x = np.asarray(a, dtype=np.float32)
            except (TypeError, ValueError) as e:
                raise ZsqModelError(ZSQ_MODEL_ERR_ARG, "%s: not an array of numbers (%s)" % (where, e)) from None
            flat_seq = isinstance(a, (list, tuple)) and x.ndim == 1
            if x.shape != shape and not (flat_seq and x.size == n):
                raise ZsqModelError(ZSQ_MODEL_ERR_ARG, "%s: shape %s given, %s expected"
                                    % (where, tuple(x.shape), shape))
            x = np.ascontiguousarray(x.reshape(shape))
            keep.append(x)
            return x.ctypes.data_as(_FLOATP)
        if not isinstance(a, (list, tuple)):
            raise ZsqModelError(ZSQ_MODEL_ERR_ARG, "%s: %s given; without numpy pass a list or "
                                "array('f')" % (where, type(a).__name__))
        try:
            flat, got = _nested(a)
            buf = array.array("f", flat)
        except (TypeError, ValueError) as e:
            raise ZsqModelError(ZSQ_MODEL_ERR_ARG, "%s: not a list of numbers (%s)" % (where, e)) from None
        if got != shape and not (len(got) == 1 and len(buf) == n):
            raise ZsqModelError(ZSQ_MODEL_ERR_ARG, "%s: shape %s given, %s expected" % (where, got, shape))
        return self._input(k, buf, keep)

    def _output(self, k, keep):
        shape = self.outputs[k].shape
        n = _prod(shape)
        np = _numpy()
        if np is not None:
            y = np.empty(shape, dtype=np.float32)
            keep.append(y)
            return y, y.ctypes.data_as(_FLOATP)
        y = array.array("f", bytes(4 * n))
        keep.append(y)
        return y, ctypes.cast((ctypes.c_float * n).from_buffer(y), _FLOATP) if n else None

    # -- API ---------------------------------------------------------------------------

    def run(self, *arrays):
        """Run the model on one array per input (see module doc); returns one float32
        array per output, in ``outputs`` order. Raises ZsqModelError."""
        if len(arrays) != len(self.inputs):
            raise ZsqModelError(ZSQ_MODEL_ERR_ARG, "the model takes %d input(s) (%s), %d given"
                                % (len(self.inputs), ", ".join(i.name for i in self.inputs),
                                   len(arrays)))
        keep = []
        ins = (_FLOATP * max(1, len(self.inputs)))()
        for k, a in enumerate(arrays):
            ins[k] = self._input(k, a, keep)
        outs = (_FLOATP * max(1, len(self.outputs)))()
        results = []
        for k in range(len(self.outputs)):
            y, p = self._output(k, keep)
            results.append(y)
            outs[k] = p
        st = _Stats()
        err = ctypes.create_string_buffer(_ERRLEN)
        with self._lock:
            if self._h is None:
                raise ZsqModelError(ZSQ_MODEL_ERR_ARG, "the model is closed")
            rc = self._lib.zsq_model_run(self._h, ins, outs, ctypes.byref(st), err, _ERRLEN)
        if rc != ZSQ_MODEL_OK:
            raise self._error(rc, err)
        self._stats = Stats(float(st.total_ms), float(st.accel_ms), int(st.accel_cycles))
        return results

    @property
    def stats(self):
        """Stats(total_ms, accel_ms, accel_cycles) of the last successful run, or None."""
        return self._stats

    @property
    def closed(self):
        return self._h is None

    def close(self):
        """Release the model (the library's buffers and devices); a second call does
        nothing."""
        with self._lock:
            h, self._h = self._h, None
            if h is not None:
                self._lib.zsq_model_close(h)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: the library may be gone already
            pass

    def __repr__(self):
        return "ZsqModel(%r, inputs=%s, outputs=%s%s)" % (
            self.path, [tuple(i) for i in getattr(self, "inputs", [])],
            [tuple(o) for o in getattr(self, "outputs", [])], ", closed" if self.closed else "")


def _main(argv=None):
    import argparse
    import time

    ap = argparse.ArgumentParser(prog="zsq_model.py",
                                 description="Open a model bundle, print its inputs and "
                                             "outputs and time runs on zero inputs.")
    ap.add_argument("model", nargs="?", default="model.zsqm")
    ap.add_argument("--lib", default="./libzsq_model.so")
    ap.add_argument("--runs", type=int, default=1)
    ns = ap.parse_args(argv)
    try:
        with ZsqModel(ns.model, lib=ns.lib) as m:
            for kind, items in (("input", m.inputs), ("output", m.outputs)):
                for k, io in enumerate(items):
                    print("%s %d: %s %s float32" % (kind, k, io.name, "x".join(map(str, io.shape))))
            zeros = [array.array("f", bytes(4 * _prod(i.shape))) for i in m.inputs]
            for r in range(max(0, ns.runs)):
                t0 = time.time()
                m.run(*zeros)
                s = m.stats
                print("run %d: %.3f ms (library: total %.3f ms, accelerator %.3f ms, %d cycles)"
                      % (r, (time.time() - t0) * 1e3, s.total_ms, s.accel_ms, s.accel_cycles))
    except ZsqModelError as e:
        print("zsq_model.py: error: %s" % e)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
