"""Python binding of lipo's C API through ctypes (no compilation).

    import lipo
    model = lipo.Model("model.lipo")          # lipo.Model(): the default bundle
    model.predict("CCO")                      # float; raises lipo.LipoError on failure
    model.predict_batch(["CCO", "not_a_smiles"])   # [float, None] with errors="none"
    model.predict_detail("CCO")               # Prediction(value, sd, domain, in_domain)

The shared library is found through the LIPO_LIBRARY environment variable (a path to
liblipo.so), then beside this package (PREFIX/lib of `scripts/install.sh PREFIX`, or the
source tree's target/release/), then the system's library search path.
"""

import ctypes
import ctypes.util
import json
import math
import os
from pathlib import Path
from typing import NamedTuple, Optional

__all__ = [
    "LipoError",
    "Model",
    "Prediction",
    "train",
    "export",
    "version",
    "library_path",
    "default_model_path",
]

_STATUS_NAMES = {
    0: "ok",
    1: "invalid argument",
    2: "invalid SMILES",
    3: "unusable data",
    4: "I/O error",
    5: "unusable model",
    6: "runtime error",
    7: "training failed",
    8: "cancelled",
    9: "not supported by this build",
    10: "internal error",
}

ABI_VERSION = 1


class Prediction(NamedTuple):
    """One molecule's prediction with what the bundle says about trusting it. `sd` (calibrated
    standard deviation), `domain` (applicability-domain score: mean distance to the nearest
    training molecules) and `in_domain` (domain at most the bundle's threshold) come from an
    ensemble bundle; they are None for a single model."""

    value: float
    sd: Optional[float] = None
    domain: Optional[float] = None
    in_domain: Optional[bool] = None


class _CPrediction(ctypes.Structure):
    _fields_ = [
        ("value", ctypes.c_double),
        ("sd", ctypes.c_double),
        ("domain", ctypes.c_double),
        ("in_domain", ctypes.c_int),
    ]

    def to_python(self):
        if self.in_domain < 0:
            return Prediction(self.value)
        return Prediction(self.value, self.sd, self.domain, self.in_domain == 1)


class LipoError(Exception):
    """A failed lipo call: `status` is the C status code, the message is lipo's."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.status_name = _STATUS_NAMES.get(status, f"status {status}")


def library_path():
    """Where liblipo is loaded from (see the module documentation)."""
    env = os.environ.get("LIPO_LIBRARY")
    if env:
        if not Path(env).is_file():
            raise OSError(f"LIPO_LIBRARY={env} does not exist")
        return env
    here = Path(__file__).resolve().parent
    for candidate in [
        here / "liblipo.so",
        here.parent.parent / "liblipo.so",  # an installed PREFIX/lib/python/lipo
        here.parent.parent.parent / "target" / "release" / "liblipo.so",  # the source tree
    ]:
        if candidate.is_file():
            return str(candidate)
    found = ctypes.util.find_library("lipo")
    if found:
        return found
    raise OSError(
        "liblipo.so not found: set LIPO_LIBRARY to its path "
        "(built by `cargo build --release` in target/release/)"
    )


_lib = None


def _library():
    global _lib
    if _lib is not None:
        return _lib
    lib = ctypes.CDLL(library_path())
    c = ctypes
    lib.lipo_version.restype = c.c_char_p
    lib.lipo_abi_version.restype = c.c_uint32
    lib.lipo_last_error.restype = c.c_char_p
    lib.lipo_string_free.argtypes = [c.c_void_p]
    lib.lipo_string_free.restype = None
    lib.lipo_model_open_with.argtypes = [c.c_char_p, c.c_char_p, c.POINTER(c.c_void_p)]
    lib.lipo_model_open_with.restype = c.c_int
    lib.lipo_model_close.argtypes = [c.c_void_p]
    lib.lipo_model_close.restype = None
    lib.lipo_model_info.argtypes = [c.c_void_p, c.POINTER(c.c_void_p)]
    lib.lipo_model_info.restype = c.c_int
    lib.lipo_predict.argtypes = [c.c_void_p, c.c_char_p, c.POINTER(c.c_double)]
    lib.lipo_predict.restype = c.c_int
    lib.lipo_predict_batch.argtypes = [
        c.c_void_p,
        c.POINTER(c.c_char_p),
        c.c_size_t,
        c.POINTER(c.c_double),
        c.POINTER(c.c_int),
    ]
    lib.lipo_predict_batch.restype = c.c_int
    # Functions added within ABI 1 are typed on first use (_function): with a liblipo built
    # before them, the rest of the binding still works and the missing function is named.
    _OPTIONAL.update(
        lipo_predict_detail=([c.c_void_p, c.c_char_p, c.POINTER(_CPrediction)], c.c_int),
        lipo_predict_detail_batch=(
            [c.c_void_p, c.POINTER(c.c_char_p), c.c_size_t, c.POINTER(_CPrediction), c.POINTER(c.c_int)],
            c.c_int,
        ),
        lipo_default_model_path=([c.POINTER(c.c_void_p)], c.c_int),
    )
    lib.lipo_train.argtypes = [c.c_char_p, _CALLBACK, c.c_void_p, c.POINTER(c.c_void_p)]
    lib.lipo_train.restype = c.c_int
    lib.lipo_export.argtypes = [c.c_char_p, c.c_char_p]
    lib.lipo_export.restype = c.c_int
    if lib.lipo_abi_version() != ABI_VERSION:
        raise OSError(
            f"liblipo ABI {lib.lipo_abi_version()} does not match this binding's {ABI_VERSION}"
        )
    _lib = lib
    return lib


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)

_OPTIONAL = {}


def _function(name):
    """A function of liblipo that older builds of ABI 1 lack, typed on first use."""
    lib = _library()
    try:
        f = getattr(lib, name)
    except AttributeError:
        raise LipoError(9, f"{library_path()} has no {name} (it is older than this binding)") from None
    f.argtypes, f.restype = _OPTIONAL[name]
    return f


def _check(status):
    if status != 0:
        message = _library().lipo_last_error().decode("utf-8", "replace")
        raise LipoError(status, message)


def _take_string(ptr):
    """Copies a string lipo returned and frees it."""
    if not ptr.value:
        return None
    try:
        return ctypes.string_at(ptr.value).decode("utf-8")
    finally:
        _library().lipo_string_free(ptr.value)


def _c_string(s, what, status=1):
    """`s` (str, bytes or a path) as bytes for C; one with a NUL byte would be cut short
    there, so it is refused with LipoError(status)."""
    b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    if b"\0" in b:
        raise LipoError(status, f"{what} {s!r} contains a NUL byte at position {b.index(0) + 1}")
    return b


def version():
    """lipo's version string."""
    return _library().lipo_version().decode()


def default_model_path():
    """The bundle Model() opens: LIPO_DEFAULT_BUNDLE when set, else lipo's shipped predictor;
    raises LipoError (status "unusable model") when there is none."""
    out = ctypes.c_void_p()
    status = _function("lipo_default_model_path")(ctypes.byref(out))
    path = _take_string(out)
    _check(status)
    return path


class Model:
    """An exported bundle (NAME.lipo) opened for prediction; usable from many threads.
    Without a path, the default bundle (default_model_path()) is opened."""

    def __init__(self, path=None, threads=1, sessions=1, batch_size=64):
        lib = _library()
        if path is None:
            path = default_model_path()
        options = json.dumps({"threads": threads, "sessions": sessions, "batch_size": batch_size})
        handle = ctypes.c_void_p()
        _check(
            lib.lipo_model_open_with(_c_string(os.fsencode(path), "path"), options.encode(), ctypes.byref(handle))
        )
        self._handle = handle

    def close(self):
        """Releases the model (also done when it is garbage-collected)."""
        if getattr(self, "_handle", None) and self._handle.value:
            _library().lipo_model_close(self._handle)
            self._handle = None

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _live(self):
        if not getattr(self, "_handle", None):
            raise LipoError(1, "the model is closed")
        return self._handle

    def info(self):
        """The model's description as a dict: task, label statistics, version, and for an
        ensemble members, sd_scale, domain_threshold, domain_neighbours, training_molecules
        and out_of_fold_rmse (None for a single model)."""
        out = ctypes.c_void_p()
        _check(_library().lipo_model_info(self._live(), ctypes.byref(out)))
        return json.loads(_take_string(out))

    def predict(self, smiles):
        """The prediction for one SMILES; raises LipoError naming a bad SMILES."""
        value = ctypes.c_double()
        _check(
            _library().lipo_predict(self._live(), _c_string(smiles, "SMILES", 2), ctypes.byref(value))
        )
        return value.value

    def predict_batch(self, smiles, errors="raise"):
        """Predictions for a list of SMILES, in order. errors="raise" raises on the first bad
        molecule (after predicting all); "none" puts None in its place; "nan" puts NaN."""
        values = self._batch(_library().lipo_predict_batch, ctypes.c_double, smiles, errors)
        return [math.nan if v is _FAILED else v for v in values]

    def predict_detail(self, smiles):
        """The Prediction for one SMILES (value, and sd, domain, in_domain for an ensemble
        bundle); raises LipoError naming a bad SMILES."""
        out = _CPrediction()
        _check(
            _function("lipo_predict_detail")(self._live(), _c_string(smiles, "SMILES", 2), ctypes.byref(out))
        )
        return out.to_python()

    def predict_detail_batch(self, smiles, errors="raise"):
        """Predictions for a list of SMILES, in order, as predict_detail gives them. errors as
        for predict_batch; "nan" puts Prediction(nan) in place of a bad molecule."""
        got = self._batch(_function("lipo_predict_detail_batch"), _CPrediction, smiles, errors)
        return [p if p is None else Prediction(math.nan) if p is _FAILED else p.to_python() for p in got]

    def _batch(self, function, ctype, smiles, errors):
        """Runs a batch function: one ctype result per SMILES, None (errors="none") or _FAILED
        (errors="nan") for a bad molecule, or LipoError (errors="raise")."""
        if errors not in ("raise", "none", "nan"):
            raise ValueError(f"errors={errors!r} is not 'raise', 'none' or 'nan'")
        n = len(smiles)
        # A SMILES with a NUL byte is passed as "" (an invalid SMILES), never cut short.
        nul = {i: f"SMILES {s!r} contains a NUL byte" for i, s in enumerate(smiles) if "\0" in s}
        arr = (ctypes.c_char_p * n)(*[b"" if i in nul else s.encode("utf-8") for i, s in enumerate(smiles)])
        results = (ctype * n)()
        statuses = (ctypes.c_int * n)()
        _check(function(self._live(), arr, n, results, statuses))
        message = _library().lipo_last_error().decode("utf-8", "replace")
        out = []
        for i in range(n):
            if statuses[i] == 0:
                out.append(results[i])
            elif errors == "raise":
                raise LipoError(statuses[i], nul.get(i, message))
            else:
                out.append(None if errors == "none" else _FAILED)
        return out


_FAILED = object()


def train(job, progress=None):
    """Runs a training job (a dict or JSON text; see lipo_train in lipo.h) and returns its
    report as a dict. `progress(event: dict)` is called for every event; returning False
    cancels (LipoError with status "cancelled"; running the job again resumes it)."""
    text = job if isinstance(job, str) else json.dumps(job)
    raised = []

    def on_event(event_json, _user):
        if progress is None:
            return 0
        try:
            return 0 if progress(json.loads(event_json)) is not False else 1
        except BaseException as e:  # an exception must not cross the C boundary
            raised.append(e)
            return 1

    callback = _CALLBACK(on_event)
    out = ctypes.c_void_p()
    status = _library().lipo_train(_c_string(text, "job"), callback, None, ctypes.byref(out))
    report = _take_string(out)
    if raised:
        raise raised[0]
    _check(status)
    return json.loads(report)


def export(model_dir, out_path):
    """Exports a trained model folder as an ONNX bundle folder."""
    _check(
        _library().lipo_export(
            _c_string(os.fsencode(model_dir), "model_dir"), _c_string(os.fsencode(out_path), "out_path")
        )
    )
